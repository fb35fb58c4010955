#include <hio/discovery/clusters.hpp>

#include "detail/kernels.hpp"
#include "detail/pca.hpp"

#include <algorithm>
#include <cassert>
#include <cmath>
#include <limits>
#include <unordered_map>
#include <utility>

namespace hio::discovery {
namespace {

// The largest merge distance within each merge's subtree (its distance, unless rounding made a child's
// larger), as SciPy's get_max_dist_for_each_cluster.
std::vector<double> subtree_max(const linkage_matrix& z) {
  const std::size_t n = z.observations;
  std::vector<double> most(z.steps.size());
  for (std::size_t i = 0; i < z.steps.size(); ++i) {
    const linkage_step& s = z.steps[i];
    double m = s.distance;
    for (std::size_t child : {s.first, s.second}) {
      if (child >= n) {
        assert(child - n < i);
        m = std::max(m, most[child - n]);
      }
    }
    most[i] = m;
  }
  return most;
}

double comb2(double v) { return v * (v - 1) / 2; }

}  // namespace

std::vector<std::size_t> leaf_order(const linkage_matrix& z) {
  const std::size_t n = z.observations;
  std::vector<std::size_t> order;
  order.reserve(n);
  std::vector<std::size_t> stack;
  if (n > 0) stack.push_back(2 * n - 2);
  while (!stack.empty()) {
    const std::size_t node = stack.back();
    stack.pop_back();
    if (node < n) {
      order.push_back(node);
    } else {
      stack.push_back(z.steps[node - n].second);
      stack.push_back(z.steps[node - n].first);
    }
  }
  return order;
}

std::vector<std::uint32_t> cut_at_distance(const linkage_matrix& z, double threshold) {
  const std::size_t n = z.observations;
  std::vector<std::uint32_t> labels(n, 0);
  const std::vector<double> most = subtree_max(z);
  std::uint32_t count = 0;
  // A node at most `threshold` starts a cluster; its leaves follow it immediately in pre-order.
  std::vector<std::size_t> stack;
  if (n > 0) stack.push_back(2 * n - 2);
  while (!stack.empty()) {
    const std::size_t node = stack.back();
    stack.pop_back();
    if (node < n) {
      labels[node] = ++count;
      continue;
    }
    const std::size_t step = node - n;
    if (most[step] <= threshold) {
      ++count;
      std::vector<std::size_t> inner{node};
      while (!inner.empty()) {
        const std::size_t m = inner.back();
        inner.pop_back();
        if (m < n) {
          labels[m] = count;
        } else {
          inner.push_back(z.steps[m - n].first);
          inner.push_back(z.steps[m - n].second);
        }
      }
      continue;
    }
    stack.push_back(z.steps[step].second);
    stack.push_back(z.steps[step].first);
  }
  return labels;
}

std::vector<std::uint32_t> cut_into(const linkage_matrix& z, std::size_t clusters) {
  const std::size_t n = z.observations;
  if (n == 0) return {};
  clusters = std::clamp<std::size_t>(clusters, 1, n);
  if (clusters == n) {
    std::vector<std::uint32_t> labels(n);
    const std::vector<std::size_t> order = leaf_order(z);
    for (std::size_t i = 0; i < n; ++i) labels[order[i]] = static_cast<std::uint32_t>(i + 1);
    return labels;
  }
  return cut_at_distance(z, level_thresholds(z)[n - 1 - clusters]);
}

std::vector<double> level_thresholds(const linkage_matrix& z) {
  std::vector<double> most = subtree_max(z);
  std::sort(most.begin(), most.end());
  return most;
}

std::vector<std::size_t> cluster_sizes(std::span<const std::uint32_t> labels) {
  std::vector<std::size_t> sizes;
  for (std::uint32_t l : labels) {
    assert(l >= 1);
    if (l > sizes.size()) sizes.resize(l, 0);
    ++sizes[l - 1];
  }
  return sizes;
}

std::vector<cluster_summary> summarize(const matrix& x, std::span<const std::uint32_t> labels) {
  assert(labels.size() == x.rows());
  const std::size_t d = x.cols();
  const std::vector<std::size_t> sizes = cluster_sizes(labels);
  std::vector<cluster_summary> out(sizes.size());
  for (std::size_t c = 0; c < out.size(); ++c) {
    out[c].label = static_cast<std::uint32_t>(c + 1);
    out[c].size = sizes[c];
    out[c].centroid.assign(d, 0.0);
  }
  for (std::size_t i = 0; i < x.rows(); ++i) {
    auto& centroid = out[labels[i] - 1].centroid;
    const auto row = x.row(i);
    for (std::size_t j = 0; j < d; ++j) centroid[j] += row[j];
  }
  for (auto& s : out)
    if (s.size > 0)
      for (double& v : s.centroid) v /= static_cast<double>(s.size);
  const auto& k = detail::kernels();
  std::vector<double> best(out.size(), std::numeric_limits<double>::infinity());
  for (std::size_t i = 0; i < x.rows(); ++i) {
    const std::size_t c = labels[i] - 1;
    const double dist = k.squared_distance(x.row(i).data(), out[c].centroid.data(), d);
    if (dist < best[c]) {
      best[c] = dist;
      out[c].representative = i;
    }
  }
  return out;
}

projection project_2d(const matrix& x) {
  const std::size_t n = x.rows();
  const std::size_t d = x.cols();
  detail::principal_axes pa = detail::leading_axes(x, 2);
  projection p{matrix(n, 2), std::move(pa.axes), {pa.variances[0], pa.variances[1]}, std::move(pa.mean)};
  for (std::size_t i = 0; i < n; ++i) {
    for (std::size_t axis = 0; axis < 2; ++axis) {
      double s = 0;
      for (std::size_t j = 0; j < d; ++j) s += (x(i, j) - p.mean[j]) * p.axes(axis, j);
      p.points(i, axis) = s;
    }
  }
  return p;
}

double adjusted_rand_index(std::span<const std::uint32_t> a, std::span<const std::uint32_t> b) {
  assert(a.size() == b.size());
  const std::size_t n = a.size();
  if (n < 2) return 1.0;
  std::unordered_map<std::uint64_t, double> pairs;
  std::unordered_map<std::uint32_t, double> rows;
  std::unordered_map<std::uint32_t, double> cols;
  for (std::size_t i = 0; i < n; ++i) {
    pairs[(std::uint64_t{a[i]} << 32) | b[i]] += 1;
    rows[a[i]] += 1;
    cols[b[i]] += 1;
  }
  double index = 0;
  for (const auto& [key, count] : pairs) index += comb2(count);
  double sum_a = 0;
  for (const auto& [key, count] : rows) sum_a += comb2(count);
  double sum_b = 0;
  for (const auto& [key, count] : cols) sum_b += comb2(count);
  const double expected = sum_a * sum_b / comb2(static_cast<double>(n));
  const double most = (sum_a + sum_b) / 2;
  if (most == expected) return 1.0;
  return (index - expected) / (most - expected);
}

}  // namespace hio::discovery
