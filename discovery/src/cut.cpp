#include <hio/discovery/cut.hpp>

#include <hio/discovery/clusters.hpp>

#include <algorithm>
#include <cassert>
#include <cmath>
#include <limits>

namespace hio::discovery {
namespace {

std::uint32_t cluster_count(std::span<const std::uint32_t> labels) {
  return labels.empty() ? 0 : *std::max_element(labels.begin(), labels.end());
}

// Rows of a silhouette sample: all of them, or `limit` evenly spaced ones.
std::vector<std::size_t> sample_rows(std::size_t n, std::size_t limit) {
  const std::size_t s = std::min(n, std::max<std::size_t>(limit, 2));
  std::vector<std::size_t> rows(s);
  for (std::size_t t = 0; t < s; ++t) rows[t] = t * n / s;
  return rows;
}

// Euclidean distances between the sampled rows, upper triangle row after row.
class sample_distances {
 public:
  sample_distances(const matrix& x, std::vector<std::size_t> rows) : rows_(std::move(rows)) {
    const std::size_t s = rows_.size();
    d_.resize(s * (s - 1) / 2);
    std::size_t at = 0;
    for (std::size_t i = 0; i < s; ++i) {
      const auto a = x.row(rows_[i]);
      for (std::size_t j = i + 1; j < s; ++j) {
        const auto b = x.row(rows_[j]);
        double sum = 0;
        for (std::size_t c = 0; c < a.size(); ++c) sum += (a[c] - b[c]) * (a[c] - b[c]);
        d_[at++] = std::sqrt(sum);
      }
    }
  }
  std::size_t size() const noexcept { return rows_.size(); }
  std::size_t row(std::size_t i) const noexcept { return rows_[i]; }
  double operator()(std::size_t i, std::size_t j) const noexcept {
    if (i > j) std::swap(i, j);
    const std::size_t s = rows_.size();
    return d_[i * (2 * s - i - 1) / 2 + (j - i - 1)];
  }

 private:
  std::vector<std::size_t> rows_;
  std::vector<double> d_;
};

// Mean silhouette width over the sampled rows; a row alone in its cluster counts 0.
double silhouette_of(const sample_distances& d, std::span<const std::uint32_t> labels) {
  const std::size_t s = d.size();
  const std::uint32_t k = cluster_count(labels);
  if (k < 2 || s < 2) return 0;
  std::vector<double> members(k + 1, 0.0);  // per label, sampled rows in it
  for (std::size_t i = 0; i < s; ++i) members[labels[d.row(i)]] += 1;
  std::vector<double> sum(k + 1);
  double total = 0;
  for (std::size_t i = 0; i < s; ++i) {
    std::fill(sum.begin(), sum.end(), 0.0);
    for (std::size_t j = 0; j < s; ++j)
      if (j != i) sum[labels[d.row(j)]] += d(i, j);
    const std::uint32_t own = labels[d.row(i)];
    if (members[own] <= 1) continue;
    const double a = sum[own] / (members[own] - 1);
    double b = std::numeric_limits<double>::infinity();
    for (std::uint32_t c = 1; c <= k; ++c)
      if (c != own && members[c] > 0) b = std::min(b, sum[c] / members[c]);
    const double m = std::max(a, b);
    if (m > 0 && std::isfinite(b)) total += (b - a) / m;
  }
  return total / static_cast<double>(s);
}

// The midpoint of the widest gap between consecutive merge distances, and that gap (-1 without a gap).
std::pair<double, double> widest_gap(const linkage_matrix& z) {
  double best_gap = -1, threshold = std::numeric_limits<double>::infinity();
  for (std::size_t i = 0; i + 1 < z.steps.size(); ++i) {
    const double gap = z.steps[i + 1].distance - z.steps[i].distance;
    if (gap > best_gap) {
      best_gap = gap;
      threshold = z.steps[i].distance + gap / 2;
    }
  }
  return {threshold, best_gap};
}

}  // namespace

std::string_view to_string(cut_criterion c) noexcept {
  switch (c) {
    case cut_criterion::mojena: return "mojena";
    case cut_criterion::silhouette: return "silhouette";
    case cut_criterion::calinski_harabasz: return "calinski-harabasz";
    case cut_criterion::widest_gap: return "widest-gap";
  }
  return "?";
}

std::optional<cut_criterion> parse_cut_criterion(std::string_view s) noexcept {
  for (auto c : {cut_criterion::mojena, cut_criterion::silhouette, cut_criterion::calinski_harabasz,
                 cut_criterion::widest_gap})
    if (s == to_string(c)) return c;
  return std::nullopt;
}

double silhouette_score(const matrix& x, std::span<const std::uint32_t> labels) {
  assert(labels.size() == x.rows());
  if (x.rows() < 2) return 0;
  return silhouette_of(sample_distances(x, sample_rows(x.rows(), x.rows())), labels);
}

double calinski_harabasz_score(const matrix& x, std::span<const std::uint32_t> labels) {
  assert(labels.size() == x.rows());
  const std::size_t n = x.rows(), d = x.cols();
  const std::uint32_t k = cluster_count(labels);
  if (k < 2 || n <= k) return 0;
  std::vector<double> members(k + 1, 0.0), centre((k + 1) * d, 0.0), mean(d, 0.0);
  for (std::size_t i = 0; i < n; ++i) {
    members[labels[i]] += 1;
    const auto r = x.row(i);
    for (std::size_t c = 0; c < d; ++c) {
      centre[labels[i] * d + c] += r[c];
      mean[c] += r[c];
    }
  }
  for (std::size_t c = 0; c < d; ++c) mean[c] /= static_cast<double>(n);
  double between = 0, within = 0;
  for (std::uint32_t l = 1; l <= k; ++l) {
    if (members[l] == 0) continue;
    for (std::size_t c = 0; c < d; ++c) {
      double& m = centre[l * d + c];
      m /= members[l];
      between += members[l] * (m - mean[c]) * (m - mean[c]);
    }
  }
  for (std::size_t i = 0; i < n; ++i) {
    const auto r = x.row(i);
    for (std::size_t c = 0; c < d; ++c) {
      const double e = r[c] - centre[labels[i] * d + c];
      within += e * e;
    }
  }
  if (within <= 0) return between > 0 ? std::numeric_limits<double>::infinity() : 0;
  return (between / static_cast<double>(k - 1)) / (within / static_cast<double>(n - k));
}

cut_choice choose_cut(const linkage_matrix& z, const matrix& x, std::span<const std::uint32_t> leaf_of,
                      const cut_options& options) {
  const std::size_t n = z.observations;
  assert(leaf_of.empty() ? x.rows() == n : leaf_of.size() == x.rows());
  if (options.criterion == cut_criterion::mojena && n < mojena_min_leaves && n >= 3) {
    cut_options small = options;
    small.criterion = cut_criterion::silhouette;
    return choose_cut(z, x, leaf_of, small);
  }
  cut_choice out;
  out.criterion = options.criterion;
  if (n < 3) {
    out.labels.assign(n, 1);
    return out;
  }
  const std::vector<double> t = level_thresholds(z);
  // mojena: mean and sd of the logarithms of the positive merge heights (see standardized_height).
  double mean = 0, sd = 0, positive = 0;
  for (double h : t)
    if (h > 0) mean += std::log(h), positive += 1;
  if (positive > 0) mean /= positive;
  for (double h : t)
    if (h > 0) sd += (std::log(h) - mean) * (std::log(h) - mean);
  if (positive > 0) sd = std::sqrt(sd / positive);
  const auto standardized_height = [&](double h) { return h > 0 && sd > 0 ? (std::log(h) - mean) / sd : 0.0; };
  std::optional<sample_distances> distances;
  if (options.criterion == cut_criterion::silhouette)
    distances.emplace(x, sample_rows(x.rows(), options.silhouette_sample));
  std::vector<std::uint32_t> rows(leaf_of.empty() ? 0 : x.rows());  // the rows' labels, with leaf_of

  const std::size_t most = std::min(options.max_clusters, n - 1);
  std::size_t best = 0;
  std::vector<std::uint32_t> best_labels;
  for (std::size_t k = 2; k <= most; ++k) {
    auto labels = cut_at_distance(z, t[n - 1 - k]);
    const std::size_t got = cluster_count(labels);
    if (got < 2 || (!out.levels.empty() && got == out.levels.back().clusters)) continue;  // tied distances
    for (std::size_t i = 0; i < rows.size(); ++i) rows[i] = labels[leaf_of[i]];
    const std::span<const std::uint32_t> of_rows = leaf_of.empty() ? std::span<const std::uint32_t>(labels) : rows;
    cut_level level{got, t[n - 1 - k], 0};
    switch (options.criterion) {
      case cut_criterion::silhouette: level.score = silhouette_of(*distances, of_rows); break;
      case cut_criterion::calinski_harabasz: level.score = calinski_harabasz_score(x, of_rows); break;
      case cut_criterion::widest_gap: level.score = t[n - k] - t[n - 1 - k]; break;
      case cut_criterion::mojena: level.score = standardized_height(t[n - k]); break;
    }
    out.levels.push_back(level);
    const bool better = options.criterion == cut_criterion::mojena ? level.score > options.mojena_c
                                                                   : level.score > out.levels[best].score;
    if (out.levels.size() == 1 || better) {
      best = out.levels.size() - 1;
      best_labels = std::move(labels);
    }
  }
  if (options.criterion == cut_criterion::widest_gap) {
    const auto [threshold, gap] = widest_gap(z);
    out.labels = cut_at_distance(z, threshold);
    out.clusters = cluster_count(out.labels);
    out.threshold = threshold;
    out.score = gap;
    return out;
  }
  const bool none = options.criterion == cut_criterion::mojena &&
                    (out.levels.empty() || out.levels[best].score <= options.mojena_c);
  if (out.levels.empty() || none) {  // no level stands out (or every merge is at one distance)
    out.labels.assign(n, 1);
    return out;
  }
  out.labels = std::move(best_labels);
  out.clusters = out.levels[best].clusters;
  out.threshold = out.levels[best].threshold;
  out.score = out.levels[best].score;
  return out;
}

}  // namespace hio::discovery
