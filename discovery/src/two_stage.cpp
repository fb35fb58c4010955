#include <hio/discovery/two_stage.hpp>

#include "detail/kernels.hpp"
#include "detail/random.hpp"

#include <algorithm>
#include <cassert>
#include <cmath>
#include <limits>
#include <string>
#include <unordered_set>
#include <utility>

namespace hio::discovery {
namespace {

constexpr double inf = std::numeric_limits<double>::infinity();
constexpr std::size_t pass_rows = 4096;  // rows per nearest_centres call in a full pass

error bad_input(std::string message) { return make_error(400, std::move(message)); }

std::size_t whole_panels(std::size_t k) {
  return (k + detail::panel_width - 1) / detail::panel_width * detail::panel_width;
}

bool all_finite(const matrix& x) {
  return std::all_of(x.values().begin(), x.values().end(), [](double v) { return std::isfinite(v); });
}

}  // namespace

mini_batch_kmeans::mini_batch_kmeans(matrix centres)
    : centres_(std::move(centres)),
      panels_(whole_panels(centres_.rows()) * centres_.cols(), 0.0),
      norms_(whole_panels(centres_.rows()), inf),
      learned_(centres_.rows(), 1.0),
      sums_(centres_.rows() * centres_.cols(), 0.0),
      counts_(centres_.rows(), 0) {
  for (std::size_t c = 0; c < centres_.rows(); ++c) pack(c);
}

void mini_batch_kmeans::pack(std::size_t centre) {
  const std::size_t d = centres_.cols();
  const std::size_t panel = centre / detail::panel_width;
  const std::size_t lane = centre % detail::panel_width;
  const auto row = centres_.row(centre);
  double norm = 0;
  for (std::size_t j = 0; j < d; ++j) {
    panels_[(panel * d + j) * detail::panel_width + lane] = row[j];
    norm += row[j] * row[j];
  }
  norms_[centre] = norm;
}

result<mini_batch_kmeans> mini_batch_kmeans::seed(const matrix& sample, const kmeans_options& options) {
  if (sample.empty() || sample.cols() == 0) return bad_input("k-means: the seeding sample is empty");
  if (!all_finite(sample)) return bad_input("k-means: the seeding sample holds a NaN or infinite value");
  if (options.clusters == 0) return bad_input("k-means: zero clusters asked for");
  const auto& k = detail::kernels();
  const std::size_t s = sample.rows();
  const std::size_t d = sample.cols();
  const std::size_t wanted = std::min(options.clusters, s);
  detail::random_source random(options.seed);
  std::vector<std::size_t> chosen{random.below(s)};
  std::vector<double> nearest(s);
  for (std::size_t i = 0; i < s; ++i) nearest[i] = k.squared_distance(sample.row(i).data(), sample.row(chosen[0]).data(), d);
  while (chosen.size() < wanted) {
    double total = 0;
    for (double v : nearest) total += v;
    if (!(total > 0)) break;  // every sample row coincides with a centre
    const double target = random.uniform() * total;
    double running = 0;
    std::size_t pick = s;
    for (std::size_t i = 0; i < s; ++i) {
      running += nearest[i];
      if (running > target && nearest[i] > 0) {
        pick = i;
        break;
      }
    }
    if (pick == s)  // rounding left the target past the end: take the last row still at a distance
      for (std::size_t i = s; i-- > 0;)
        if (nearest[i] > 0) {
          pick = i;
          break;
        }
    chosen.push_back(pick);
    const double* c = sample.row(pick).data();
    for (std::size_t i = 0; i < s; ++i) {
      const double dist = k.squared_distance_bounded(sample.row(i).data(), c, d, nearest[i]);
      if (dist < nearest[i]) nearest[i] = dist;
    }
  }
  matrix centres(chosen.size(), d);
  for (std::size_t c = 0; c < chosen.size(); ++c) std::copy_n(sample.row(chosen[c]).data(), d, centres.row(c).data());
  return mini_batch_kmeans(std::move(centres));
}

void mini_batch_kmeans::assign(std::span<const double> rows, std::span<std::uint32_t> labels) const {
  const std::size_t d = cols();
  assert(d > 0 && rows.size() % d == 0 && labels.size() == rows.size() / d);
  detail::kernels().nearest_centres(rows.data(), labels.size(), panels_.data(), norms_.data(), norms_.size(), d,
                                    labels.data());
}

void mini_batch_kmeans::update(std::span<const double> rows) {
  const std::size_t d = cols();
  scratch_.resize(rows.size() / d);
  assign(rows, scratch_);
  for (std::size_t i = 0; i < scratch_.size(); ++i) {
    const std::size_t c = scratch_[i];
    const double rate = 1.0 / (learned_[c] += 1.0);
    auto centre = centres_.row(c);
    const double* x = rows.data() + i * d;
    for (std::size_t j = 0; j < d; ++j) centre[j] += rate * (x[j] - centre[j]);
  }
  std::sort(scratch_.begin(), scratch_.end());
  scratch_.erase(std::unique(scratch_.begin(), scratch_.end()), scratch_.end());
  for (std::uint32_t c : scratch_) pack(c);
}

void mini_batch_kmeans::accumulate(std::span<const double> rows, std::span<std::uint32_t> labels) {
  const std::size_t d = cols();
  assign(rows, labels);
  for (std::size_t i = 0; i < labels.size(); ++i) {
    double* sum = sums_.data() + labels[i] * d;
    const double* x = rows.data() + i * d;
    for (std::size_t j = 0; j < d; ++j) sum[j] += x[j];
    ++counts_[labels[i]];
  }
}

mini_batch_kmeans::means mini_batch_kmeans::take_means() {
  const std::size_t d = cols();
  means out;
  out.renumber.assign(centres_.rows(), std::numeric_limits<std::uint32_t>::max());
  std::size_t used = 0;
  for (std::size_t c = 0; c < centres_.rows(); ++c)
    if (counts_[c] > 0) out.renumber[c] = static_cast<std::uint32_t>(used++);
  out.centres = matrix(used, d);
  out.counts.resize(used);
  for (std::size_t c = 0; c < centres_.rows(); ++c) {
    if (counts_[c] == 0) continue;
    const std::size_t to = out.renumber[c];
    out.counts[to] = counts_[c];
    for (std::size_t j = 0; j < d; ++j) out.centres(to, j) = sums_[c * d + j] / static_cast<double>(counts_[c]);
  }
  std::fill(sums_.begin(), sums_.end(), 0.0);
  std::fill(counts_.begin(), counts_.end(), 0);
  return out;
}

result<two_stage_result> two_stage_cluster(const matrix& x, const two_stage_options& options) {
  if (x.empty() || x.cols() == 0) return bad_input("two-stage clustering: no observations or no features");
  if (options.micro_clusters == 0) return bad_input("two-stage clustering: zero micro-clusters asked for");
  if (!all_finite(x)) return bad_input("two-stage clustering: the data holds a NaN or infinite value");
  const std::size_t n = x.rows();
  const std::size_t d = x.cols();
  const std::size_t m = std::min(options.micro_clusters, n);
  detail::random_source random(options.seed);

  // Seeding sample: distinct rows (Floyd's algorithm), in row order.
  const std::size_t wanted = std::min(n, options.seed_sample > 0 ? options.seed_sample : 3 * m);
  std::vector<std::size_t> rows;
  if (wanted == n) {
    rows.resize(n);
    for (std::size_t i = 0; i < n; ++i) rows[i] = i;
  } else {
    std::unordered_set<std::size_t> taken;
    for (std::size_t j = n - wanted; j < n; ++j) {
      const std::size_t t = random.below(j + 1);
      taken.insert(taken.contains(t) ? j : t);
    }
    rows.assign(taken.begin(), taken.end());
    std::sort(rows.begin(), rows.end());
  }
  auto gather = [&](const std::vector<std::size_t>& which) {
    matrix out(which.size(), d);
    for (std::size_t i = 0; i < which.size(); ++i) std::copy_n(x.row(which[i]).data(), d, out.row(i).data());
    return out;
  };
  auto seeded = mini_batch_kmeans::seed(gather(rows), {m, random.next()});
  if (!seeded) return seeded.error();
  mini_batch_kmeans kmeans = std::move(*seeded);

  std::vector<double> batch(options.batch_size * d);
  for (std::size_t b = 0; b < options.batches && options.batch_size > 0; ++b) {
    for (std::size_t i = 0; i < options.batch_size; ++i)
      std::copy_n(x.row(random.below(n)).data(), d, batch.data() + i * d);
    kmeans.update(batch);
  }
  std::vector<double>().swap(batch);

  two_stage_result out;
  out.micro.resize(n);
  for (std::size_t i = 0; i < n; i += pass_rows) {
    const std::size_t count = std::min(pass_rows, n - i);
    kmeans.accumulate({x.data() + i * d, count * d}, {out.micro.data() + i, count});
  }
  auto means = kmeans.take_means();
  for (std::uint32_t& label : out.micro) label = means.renumber[label];
  out.centres = std::move(means.centres);
  out.sizes = std::move(means.counts);
  std::vector<double> weights(out.sizes.begin(), out.sizes.end());
  auto tree = linkage(out.centres, weights, options.method);
  if (!tree) return tree.error();
  out.tree = std::move(*tree);
  return out;
}

std::vector<std::uint32_t> propagate_labels(const two_stage_result& clustering,
                                            std::span<const std::uint32_t> micro_labels) {
  assert(micro_labels.size() == clustering.sizes.size());
  std::vector<std::uint32_t> labels(clustering.micro.size());
  for (std::size_t i = 0; i < labels.size(); ++i) labels[i] = micro_labels[clustering.micro[i]];
  return labels;
}

}  // namespace hio::discovery
