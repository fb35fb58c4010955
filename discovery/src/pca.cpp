#include "detail/pca.hpp"

#include <algorithm>
#include <cmath>
#include <numeric>

namespace hio::discovery::detail {
namespace {

// Cyclic Jacobi rotations on the symmetric d×d matrix a (row-major); on return its diagonal holds the
// eigenvalues and the columns of v the eigenvectors.
void jacobi_eigen(std::vector<double>& a, std::vector<double>& v, std::size_t d) {
  v.assign(d * d, 0.0);
  for (std::size_t i = 0; i < d; ++i) v[i * d + i] = 1.0;
  double total = 0;
  for (double e : a) total += e * e;
  for (int sweep = 0; sweep < 100; ++sweep) {
    double off = 0;
    for (std::size_t p = 0; p < d; ++p)
      for (std::size_t q = p + 1; q < d; ++q) off += 2 * a[p * d + q] * a[p * d + q];
    if (off <= 1e-30 * total || off == 0) return;
    for (std::size_t p = 0; p < d; ++p) {
      for (std::size_t q = p + 1; q < d; ++q) {
        const double apq = a[p * d + q];
        if (apq == 0) continue;
        const double theta = (a[q * d + q] - a[p * d + p]) / (2 * apq);
        const double t = (theta >= 0 ? 1.0 : -1.0) / (std::abs(theta) + std::sqrt(theta * theta + 1));
        const double c = 1 / std::sqrt(t * t + 1);
        const double s = t * c;
        for (std::size_t k = 0; k < d; ++k) {  // columns p and q
          const double akp = a[k * d + p];
          const double akq = a[k * d + q];
          a[k * d + p] = c * akp - s * akq;
          a[k * d + q] = s * akp + c * akq;
        }
        for (std::size_t k = 0; k < d; ++k) {  // rows p and q
          const double apk = a[p * d + k];
          const double aqk = a[q * d + k];
          a[p * d + k] = c * apk - s * aqk;
          a[q * d + k] = s * apk + c * aqk;
        }
        for (std::size_t k = 0; k < d; ++k) {
          const double vkp = v[k * d + p];
          const double vkq = v[k * d + q];
          v[k * d + p] = c * vkp - s * vkq;
          v[k * d + q] = s * vkp + c * vkq;
        }
      }
    }
  }
}
}  // namespace

principal_axes leading_axes(const matrix& x, std::size_t k) {
  const std::size_t n = x.rows();
  const std::size_t d = x.cols();
  principal_axes out{matrix(k, d), std::vector<double>(k, 0.0), std::vector<double>(d, 0.0)};
  if (n == 0 || d == 0) return out;
  for (std::size_t i = 0; i < n; ++i)
    for (std::size_t j = 0; j < d; ++j) out.mean[j] += x(i, j);
  for (double& m : out.mean) m /= static_cast<double>(n);
  std::vector<double> cov(d * d, 0.0);
  std::vector<double> centred(d);
  for (std::size_t i = 0; i < n; ++i) {
    for (std::size_t j = 0; j < d; ++j) centred[j] = x(i, j) - out.mean[j];
    for (std::size_t a = 0; a < d; ++a) {
      const double ca = centred[a];
      double* row = cov.data() + a * d;
      for (std::size_t b = a; b < d; ++b) row[b] += ca * centred[b];
    }
  }
  for (std::size_t a = 0; a < d; ++a)
    for (std::size_t b = a; b < d; ++b) cov[b * d + a] = cov[a * d + b] = cov[a * d + b] / static_cast<double>(n);
  std::vector<double> vectors;
  jacobi_eigen(cov, vectors, d);
  std::vector<std::size_t> order(d);
  std::iota(order.begin(), order.end(), std::size_t{0});
  std::stable_sort(order.begin(), order.end(), [&](std::size_t l, std::size_t r) { return cov[l * d + l] > cov[r * d + r]; });
  for (std::size_t axis = 0; axis < k && axis < d; ++axis) {
    const std::size_t col = order[axis];
    std::size_t largest = 0;
    for (std::size_t j = 1; j < d; ++j)
      if (std::abs(vectors[j * d + col]) > std::abs(vectors[largest * d + col])) largest = j;
    const double sign = vectors[largest * d + col] < 0 ? -1.0 : 1.0;
    for (std::size_t j = 0; j < d; ++j) out.axes(axis, j) = sign * vectors[j * d + col];
    out.variances[axis] = std::max(0.0, cov[col * d + col]);
  }
  return out;
}

}  // namespace hio::discovery::detail
