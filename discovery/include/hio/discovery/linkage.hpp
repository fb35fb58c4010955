#pragma once
// Exact agglomerative (hierarchical) clustering with Euclidean distances, returning the linkage matrix
// exactly as scipy.cluster.hierarchy.linkage lays it out.

#include <hio/common/error.hpp>
#include <hio/discovery/matrix.hpp>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string_view>
#include <vector>

namespace hio::discovery {

// Time and memory for n observations of d features (beyond the input and the n - 1 rows of output). All
// are O(n² d) in the worst case; single and ward skip most full distances with a lower bound from 8
// principal coordinates (d >= 16), which changes no result.
// - single:   Prim's minimum spanning tree on the implicit complete graph: O(n) memory (8 principal
//   coordinates per observation).
// - complete, average: SciPy's nearest-neighbour chain on the full square distance matrix, so that every
//   read is a row: n² doubles (3.2 GB at n = 20,000; 7.2 GB at 30,000; 8 GB at 31,600). The distances
//   are computed on up to std::thread::hardware_concurrency() threads; the chain runs on the caller's.
// - ward:     the nearest-neighbour chain on cluster centroids and sizes: one n×d copy plus O(n) memory.
// Measured on a 2-core VM (experiments/discovery): n = 20,000, d = 59 in 3.2-3.6 CPU s (single, ward)
// and 5-6 CPU s over both cores, 3.3 s on the calling thread (complete, average).
enum class linkage_method { single, complete, average, ward };

std::string_view to_string(linkage_method method) noexcept;
// "single", "complete", "average" or "ward"; nullopt for anything else.
std::optional<linkage_method> parse_linkage_method(std::string_view name) noexcept;

// One row of SciPy's linkage matrix: clusters `first` < `second` merge at `distance` into a cluster of
// `size` observations. Observations are clusters 0..n-1; the cluster formed by row i is n + i.
struct linkage_step {
  std::size_t first = 0;
  std::size_t second = 0;
  double distance = 0;
  std::size_t size = 0;
  friend bool operator==(const linkage_step&, const linkage_step&) = default;
};

// SciPy's (n-1)×4 linkage matrix Z: rows in order of increasing distance (ties keep the order in which
// the algorithm found the merges, as SciPy's stable sort does), clusters numbered as SciPy numbers them.
struct linkage_matrix {
  std::size_t observations = 0;     // n
  std::vector<linkage_step> steps;  // n - 1 merges (none when n < 2)
};

// Clusters the rows of x. Distances are those SciPy reports: for ward, the Ward linkage distance
// sqrt(2 nA nB / (nA + nB)) * |cA - cB|; for average, the mean pairwise distance (UPGMA).
// The searches, tie rules and slot bookkeeping are SciPy's, so the result equals SciPy's in clusters and
// sizes, and in distances to rounding (~1e-15 relative). For single, complete and average that holds
// even where distances tie (duplicate rows, say). Ward computes distances from centroids, which round
// differently from SciPy's Lance-Williams updates (up to ~1e-12 relative), so where ward distances tie
// it may take another of the equally valid merges. Error (code 400) when x holds a NaN
// or infinite value; (code 413) when the memory cannot be had (see linkage_method). Where the system
// overcommits memory, an allocation too large for RAM may instead succeed and the process be killed
// later: callers check n against the memory they have before asking for complete or average.
result<linkage_matrix> linkage(const matrix& x, linkage_method method);

// The same for weighted observations: row i stands for weights[i] identical observations (a micro-cluster
// of that many points at its centre). Ward and average use the weights as initial cluster sizes; single
// and complete ignore them. The size column still counts rows, not weight. Error (code 400) when
// weights.size() != x.rows(), a weight is not positive and finite, or x holds a non-finite value.
result<linkage_matrix> linkage(const matrix& x, std::span<const double> weights, linkage_method method);

}  // namespace hio::discovery
