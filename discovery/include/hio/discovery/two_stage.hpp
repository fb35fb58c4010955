#pragma once
// Clustering for many observations: mini-batch k-means condenses them into at most m micro-clusters,
// the micro-clusters' centres are clustered hierarchically (weighted by size), and labels flow back to
// the observations through their micro-cluster.

#include <hio/common/error.hpp>
#include <hio/discovery/linkage.hpp>
#include <hio/discovery/matrix.hpp>

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

namespace hio::discovery {

struct kmeans_options {
  std::size_t clusters = 2000;  // k: centres wanted (fewer when the seeding sample has fewer distinct rows)
  std::uint64_t seed = 1;       // seeds k-means++'s draws; same seed and sample, same centres
};

// Mini-batch k-means (Sculley, 2010) fed in batches, so the data never has to sit in memory twice: seed()
// runs k-means++ on a sample, each update() moves the centres toward one batch with per-centre learning
// rates 1/count, and assign()/accumulate() label rows and gather exact means in a final pass. Rows
// passed in must be finite (prepare() makes them so). Not thread-safe; const members may run on many
// threads at once. Owns its centres (k×d).
class mini_batch_kmeans {
 public:
  // k-means++ (D² sampling) on the rows of `sample`. Error (code 400) when the sample is empty, has no
  // columns, or holds a non-finite value.
  static result<mini_batch_kmeans> seed(const matrix& sample, const kmeans_options& options);

  // One mini-batch step: rows (row-major, cols() each) pull their nearest centres toward them.
  void update(std::span<const double> rows);

  // Index of the nearest centre of each row into `labels` (rows / cols() long), found by minimising
  // |c|² - 2 x·c, so a near-tie may go either way; lowest index on exact ties.
  void assign(std::span<const double> rows, std::span<std::uint32_t> labels) const;

  // assign(), plus adds each row to its centre's running sum and count (see take_means).
  void accumulate(std::span<const double> rows, std::span<std::uint32_t> labels);

  // The means of the rows accumulated per centre, in centre order, with their counts; centres that no
  // row was nearest to are left out and `renumber` (k long) maps old centre indices to new ones (or to
  // UINT32_MAX for a dropped one). Resets the sums.
  struct means {
    matrix centres;
    std::vector<std::size_t> counts;
    std::vector<std::uint32_t> renumber;
  };
  means take_means();

  const matrix& centres() const noexcept { return centres_; }
  std::size_t cols() const noexcept { return centres_.cols(); }

 private:
  explicit mini_batch_kmeans(matrix centres);
  void pack(std::size_t centre);

  matrix centres_;
  std::vector<double> panels_;         // centres_ in the kernels' panel layout, padded to whole panels
  std::vector<double> norms_;          // |centre|² per panel slot; +inf for padding
  std::vector<double> learned_;        // update(): rows each centre has absorbed so far
  std::vector<double> sums_;           // accumulate(): k×d running sums
  std::vector<std::size_t> counts_;    // accumulate(): rows per centre
  std::vector<std::uint32_t> scratch_; // update(): nearest centre of each batch row
};

struct two_stage_options {
  std::size_t micro_clusters = 2000;  // m: k-means centres (at most the number of observations)
  std::size_t batch_size = 2048;      // observations per mini-batch step
  std::size_t batches = 100;          // mini-batch steps, each on observations drawn at random
  std::size_t seed_sample = 0;        // observations drawn for k-means++; 0 means 3 m
  linkage_method method = linkage_method::ward;  // second stage; ward or average use the sizes as weights
  std::uint64_t seed = 1;             // seeds every random draw
};

struct two_stage_result {
  matrix centres;                        // micro-cluster centres: the mean of their observations
  std::vector<std::size_t> sizes;        // observations per micro-cluster (all positive)
  std::vector<std::uint32_t> micro;      // micro-cluster of each observation
  linkage_matrix tree;                   // linkage of the centres; its leaves are the micro-clusters
};

// Runs both stages on the rows of x (single threaded). Memory besides x: m×d centres and sums, one
// uint32 per observation, one batch, and a copy of the min(n, seed_sample) rows that seed k-means++ (so a
// second copy of x only when x is that small). Error (code 400) when x is empty, has no columns, holds a
// non-finite value, or micro_clusters is 0.
result<two_stage_result> two_stage_cluster(const matrix& x, const two_stage_options& options = {});

// Labels of observations from labels of micro-clusters (e.g. cut_into(result.tree, k)).
std::vector<std::uint32_t> propagate_labels(const two_stage_result& clustering,
                                            std::span<const std::uint32_t> micro_labels);

}  // namespace hio::discovery
