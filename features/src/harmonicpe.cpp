// The HarmonicPE definitions of the feature set (docs/features.md, "features:harmonicpe"). One
// realization is loaded as float64 rows [S][T][V] and columns [S][V][T]; every statistic is then a
// direct two-pass computation over one contiguous series. Where the original divides by zero (NumPy
// gives NaN or Inf) the value follows hio's rules for degenerate series (docs/features.md) instead.

#include "detail/harmonicpe.hpp"

#include "detail/element.hpp"
#include "detail/layout.hpp"

#include <algorithm>
#include <cmath>
#include <span>
#include <string>

namespace hio::features::detail {

namespace {

// Population moments and median of one series; a constant series has mean x[0] and sd exactly 0.
struct stats {
  double mean = 0, sd = 0, median = 0;
};

double sum_of(const double* x, std::size_t n) {
  double acc[4] = {0, 0, 0, 0};
  std::size_t i = 0;
  for (; i + 4 <= n; i += 4)
    for (std::size_t j = 0; j < 4; ++j) acc[j] += x[i + j];
  for (; i < n; ++i) acc[0] += x[i];
  return (acc[0] + acc[1]) + (acc[2] + acc[3]);
}

// Σ (x - mx)(y - my) over n values.
double cross_deviation(const double* x, double mx, const double* y, double my, std::size_t n) {
  double acc[4] = {0, 0, 0, 0};
  std::size_t i = 0;
  for (; i + 4 <= n; i += 4)
    for (std::size_t j = 0; j < 4; ++j) acc[j] += (x[i + j] - mx) * (y[i + j] - my);
  for (; i < n; ++i) acc[0] += (x[i] - mx) * (y[i] - my);
  return (acc[0] + acc[1]) + (acc[2] + acc[3]);
}

// Σ (x − mx)², Σ (y − my)², Σ (x − mx)(y − my) over n values, in one pass.
struct deviation_sums {
  double xx, yy, xy;
};
deviation_sums deviations(const double* x, double mx, const double* y, double my, std::size_t n) {
  double xx[4] = {0, 0, 0, 0}, yy[4] = {0, 0, 0, 0}, xy[4] = {0, 0, 0, 0};
  std::size_t i = 0;
  for (; i + 4 <= n; i += 4)
    for (std::size_t j = 0; j < 4; ++j) {
      const double dx = x[i + j] - mx, dy = y[i + j] - my;
      xx[j] += dx * dx;
      yy[j] += dy * dy;
      xy[j] += dx * dy;
    }
  for (; i < n; ++i) {
    const double dx = x[i] - mx, dy = y[i] - my;
    xx[0] += dx * dx;
    yy[0] += dy * dy;
    xy[0] += dx * dy;
  }
  const auto total = [](const double* a) { return (a[0] + a[1]) + (a[2] + a[3]); };
  return {total(xx), total(yy), total(xy)};
}

// The middle value, or the mean of the two middle values (np.median), of x[0..n) with values in [lo, hi].
// Integers in a range of at most 4n values (copy numbers) are counted; other series are selected from.
double median_of(const double* x, std::size_t n, double lo, double hi, harmonicpe_scratch& w) {
  const std::size_t k = (n - 1) / 2;  // the lower middle rank; the upper one is n / 2
  if (hi - lo <= 4.0 * static_cast<double>(n) && std::all_of(x, x + n, [](double v) { return v == std::floor(v); })) {
    w.counts.assign(static_cast<std::size_t>(hi - lo) + 1, 0);
    for (std::size_t i = 0; i < n; ++i) ++w.counts[static_cast<std::size_t>(x[i] - lo)];
    std::size_t below = 0, b = 0;
    while (below + w.counts[b] <= k) below += w.counts[b++];
    const double lower = lo + static_cast<double>(b);
    if (n % 2 == 1 || below + w.counts[b] > n / 2) return lower;
    below += w.counts[b++];
    while (w.counts[b] == 0) ++b;
    return (lower + (lo + static_cast<double>(b))) / 2;
  }
  w.median.assign(x, x + n);
  const auto mid = w.median.begin() + static_cast<std::ptrdiff_t>(n / 2);
  std::nth_element(w.median.begin(), mid, w.median.end());
  if (n % 2 == 1) return *mid;
  return (*std::max_element(w.median.begin(), mid) + *mid) / 2;
}

stats describe(const double* x, std::size_t n, harmonicpe_scratch& w, bool with_median = true) {
  const auto [lo, hi] = std::minmax_element(x, x + n);
  if (*lo == *hi) return {x[0], 0, x[0]};
  stats s;
  s.mean = sum_of(x, n) / static_cast<double>(n);
  s.sd = std::sqrt(cross_deviation(x, s.mean, x, s.mean, n) / static_cast<double>(n));
  if (with_median) s.median = median_of(x, n, *lo, *hi, w);
  return s;
}

// (σ − μ)/(σ + μ); 0 for an all-zero series.
double burstiness(const stats& s) { return s.sd + s.mean == 0 ? 0.0 : (s.sd - s.mean) / (s.sd + s.mean); }
// σ/μ; 0 when μ = 0.
double cv(const stats& s) { return s.mean == 0 ? 0.0 : s.sd / s.mean; }
// The original's skewness, (3μ − median)/σ; 0 when σ = 0.
double hpe_skew(const stats& s) { return s.sd == 0 ? 0.0 : (3 * s.mean - s.median) / s.sd; }

// Pearson correlation (np.corrcoef, clipped to [−1, 1]); 0 when either series is constant.
double correlation(const double* x, const stats& sx, const double* y, const stats& sy, std::size_t n) {
  if (sx.sd == 0 || sy.sd == 0) return 0;
  const double c = cross_deviation(x, sx.mean, y, sy.mean, n) / static_cast<double>(n) / sx.sd / sy.sd;
  return std::clamp(c, -1.0, 1.0);
}

// The original's autocorrelation norm: for each lag i = 1 … ⌊T/2⌋ − 1, the segments y[0, T−i) and
// y[i, T), each centred on its own mean and scaled by its own σ, give Σ (a − μa)(b − μb) / (T σa σb),
// i.e. their correlation times (T − i)/T; 0 for a lag where a segment is constant. The 2-norm of those.
double hpe_acf_norm(const double* y, std::size_t t) {
  if (t < 4) return 0;
  const std::size_t lags = t / 2 - 1;
  // The leading and trailing runs of equal values: a segment inside one of them is constant.
  std::size_t head = 1, tail = 1;
  while (head < t && y[head] == y[0]) ++head;
  while (tail < t && y[t - 1 - tail] == y[t - 1]) ++tail;
  double sum_sq = 0;
  for (std::size_t i = 1; i <= lags; ++i) {
    const std::size_t n = t - i;
    if (n <= head || n <= tail) continue;
    const double* a = y;
    const double* b = y + i;
    const double ma = sum_of(a, n) / static_cast<double>(n), mb = sum_of(b, n) / static_cast<double>(n);
    const auto [aa, bb, ab] = deviations(a, ma, b, mb, n);
    if (aa == 0 || bb == 0) continue;
    const double r = ab / (std::sqrt(aa) * std::sqrt(bb)) * (static_cast<double>(n) / static_cast<double>(t));
    sum_sq += r * r;
  }
  return std::sqrt(sum_sq);
}

// Norm, mean and population variance of a list, appended in that order.
void push_summaries(std::vector<double>& out, const std::vector<double>& l) {
  const double n = static_cast<double>(l.size());
  const double mean = sum_of(l.data(), l.size()) / n;
  out.push_back(std::sqrt(cross_deviation(l.data(), 0, l.data(), 0, l.size())));
  out.push_back(mean);
  out.push_back(cross_deviation(l.data(), mean, l.data(), mean, l.size()) / n);
}

}  // namespace

result<std::vector<double>> harmonicpe_realization(const npy_array& a, std::size_t r, harmonicpe_scratch& w) {
  const std::size_t S = a.species, T = a.timepoints, V = a.voxels;
  w.rows.resize(S * T * V);
  w.cols.resize(S * V * T);
  const std::size_t item = item_size(a.type);
  const bool swap = !native_order(a);
  bool finite = true;
  for (std::size_t s = 0; s < S; ++s)
    for (std::size_t t = 0; t < T; ++t) {
      double* row = &w.rows[(s * T + t) * V];
      if (!a.fortran_order) {
        const std::byte* p = a.payload.data() + a.index_of(r, s, t, 0) * item;
        for (std::size_t v = 0; v < V; ++v) row[v] = load_element(p + v * item, a.type, swap);
      } else {
        for (std::size_t v = 0; v < V; ++v) row[v] = a.at(r, s, t, v);
      }
      for (std::size_t v = 0; v < V; ++v) {
        finite = finite && std::isfinite(row[v]);
        w.cols[(s * V + v) * T + t] = row[v];
      }
    }
  const auto refuse = [r] {
    return make_error(errc::non_finite_input,
                      "the array holds NaN or Inf (or values whose sums overflow) in realization " + std::to_string(r));
  };
  if (!finite) return refuse();

  // Sm (per timepoint, summed over voxels) and SmT (per voxel, summed over time), with their moments, and
  // the moments of every row and column.
  std::vector<double> sm(S * T), smt(S * V);
  std::vector<stats> sm_st(S), smt_st(S), row_st(S * T), col_st(S * V);
  for (std::size_t s = 0; s < S; ++s) {
    for (std::size_t t = 0; t < T; ++t) {
      const double* row = &w.rows[(s * T + t) * V];
      sm[s * T + t] = sum_of(row, V);
      row_st[s * T + t] = describe(row, V, w);
    }
    for (std::size_t v = 0; v < V; ++v) {
      const double* col = &w.cols[(s * V + v) * T];
      smt[s * V + v] = sum_of(col, T);
      col_st[s * V + v] = describe(col, T, w);
    }
    for (double x : std::span<const double>(&sm[s * T], T)) finite = finite && std::isfinite(x);
    for (double x : std::span<const double>(&smt[s * V], V)) finite = finite && std::isfinite(x);
    if (!finite) return refuse();
    sm_st[s] = describe(&sm[s * T], T, w);
    smt_st[s] = describe(&smt[s * V], V, w, false);
  }

  std::vector<double> out;
  out.reserve(layout{S, false}.total());
  // Totals: each species' 9, then the correlations of its Sm with every later species' Sm.
  for (std::size_t s = 0; s < S; ++s) {
    const stats& m = sm_st[s];
    const stats& mt = smt_st[s];
    out.push_back(m.mean);
    out.push_back(burstiness(m));
    out.push_back(burstiness(mt));
    out.push_back(hpe_skew(m));
    out.push_back(cv(m));
    out.push_back(cv(mt));
    out.push_back(hpe_acf_norm(&sm[s * T], T));
    out.push_back(static_cast<double>(T) * m.sd);  // ‖|FFT(Sm − μ)|‖₂ = T·σ (Parseval)
    out.push_back(static_cast<double>(V) * mt.sd);
    for (std::size_t u = s + 1; u < S; ++u) out.push_back(correlation(&sm[s * T], m, &sm[u * T], sm_st[u], T));
  }
  // Per species: the per-timepoint and per-voxel correlations with every later species, then the lists.
  std::vector<double>& tp = w.list_a;
  std::vector<double>& vx = w.list_b;
  for (std::size_t s = 0; s < S; ++s) {
    for (std::size_t u = s + 1; u < S; ++u) {
      tp.resize(T);
      vx.resize(V);
      for (std::size_t t = 0; t < T; ++t)
        tp[t] = correlation(&w.rows[(s * T + t) * V], row_st[s * T + t], &w.rows[(u * T + t) * V], row_st[u * T + t], V);
      for (std::size_t v = 0; v < V; ++v)
        vx[v] = correlation(&w.cols[(s * V + v) * T], col_st[s * V + v], &w.cols[(u * V + v) * T], col_st[u * V + v], T);
      std::vector<double> both;
      push_summaries(both, tp);
      push_summaries(both, vx);
      // norm (timepoints), norm (voxels), variance (timepoints), variance (voxels)
      out.insert(out.end(), {both[0], both[3], both[2], both[5]});
    }
    for (double (*stat)(const stats&) : {burstiness, hpe_skew, cv}) {
      tp.resize(T);
      vx.resize(V);
      for (std::size_t t = 0; t < T; ++t) tp[t] = stat(row_st[s * T + t]);
      for (std::size_t v = 0; v < V; ++v) vx[v] = stat(col_st[s * V + v]);
      push_summaries(out, tp);
      push_summaries(out, vx);
    }
  }
  for (double& x : out)
    if (!std::isfinite(x)) x = 0;
  return out;
}

}  // namespace hio::features::detail
