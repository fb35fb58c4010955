#pragma once
// Where to cut the tree: score the levels of a linkage (2, 3, ... clusters) on the data it was built from
// and keep the best. Pure; docs/discovery.md says why silhouette is the default and shows the measurements.

#include <hio/discovery/linkage.hpp>
#include <hio/discovery/matrix.hpp>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string_view>
#include <vector>

namespace hio::discovery {

enum class cut_criterion {
  mojena,             // upper-tail rule (Mojena 1977): every merge higher than mean + c·sd of all merge
                      // heights separates clusters
  silhouette,         // mean silhouette width (Rousseeuw 1987) of the observations: highest wins
  calinski_harabasz,  // between- over within-cluster dispersion, each per degree of freedom: highest wins
  widest_gap,         // the middle of the widest gap between consecutive merge distances
};

std::string_view to_string(cut_criterion c) noexcept;
// "mojena", "silhouette", "calinski-harabasz", "widest-gap"; nullopt otherwise.
std::optional<cut_criterion> parse_cut_criterion(std::string_view s) noexcept;

// One level of the tree: the cut into at most `clusters` clusters (cut_into) and its score.
struct cut_level {
  std::size_t clusters = 0;  // clusters this level actually has (fewer than asked when distances tie)
  double threshold = 0;      // the largest merge distance inside its clusters (cut_at_distance's argument)
  double score = 0;          // the criterion's value; for widest_gap the gap above `threshold`, for mojena
                             // the standardized height (h - mean) / sd of the merge above `threshold`
};

struct cut_options {
  cut_criterion criterion = cut_criterion::mojena;
  double mojena_c = 1.75;            // mojena: merges with a standardized height above this separate
  std::size_t max_clusters = 20;     // levels scored: 2 .. min(max_clusters, observations - 1)
  std::size_t silhouette_sample = 2000;  // silhouette over at most this many observations (evenly spaced)
};

struct cut_choice {
  cut_criterion criterion = cut_criterion::mojena;  // the one used (see mojena_min_leaves)
  std::vector<std::uint32_t> labels;  // per leaf of the tree, as cut_into
  std::size_t clusters = 1;
  double threshold = 0;
  double score = 0;                   // the chosen level's score (0 with fewer than three observations)
  std::vector<cut_level> levels;      // every level scored, by increasing number of clusters
};

// Below this many leaves mojena gives way to silhouette: in a small tree the few high merges inflate the
// standard deviation they are measured against (with m merges none can exceed (m - 1) / sqrt(m)), so
// nested splits would be missed.
inline constexpr std::size_t mojena_min_leaves = 16;

// The tree's leaves are the rows of x (leaf_of empty), or groups of them: row i is in leaf leaf_of[i] (the
// two-stage method's micro-clusters). The scores are those of the rows, each labelled as its leaf. The
// best-scoring level wins, the one with fewer clusters on a tie (mojena: the level with the most clusters
// whose upper merge scores above mojena_c, one cluster when none does); fewer than three leaves give one
// cluster.
// widest_gap considers every level of the tree (as before the other criteria existed), not only
// max_clusters. Cost: calinski_harabasz O(levels · rows · d); silhouette O(s² d) once for the distances
// of a sample of s = min(rows, silhouette_sample) rows plus O(levels · s²), memory s²/2 doubles (16 MB at
// 2000). The labels returned are the leaves'.
cut_choice choose_cut(const linkage_matrix& z, const matrix& x, std::span<const std::uint32_t> leaf_of,
                      const cut_options& options = {});

// The scores of one labelling of the rows of x (labels 1..k, one per row).
double silhouette_score(const matrix& x, std::span<const std::uint32_t> labels);
double calinski_harabasz_score(const matrix& x, std::span<const std::uint32_t> labels);

}  // namespace hio::discovery
