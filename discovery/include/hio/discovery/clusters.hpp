#pragma once
// Flat clusters from a linkage matrix, and what a user looks at: leaf order, sizes, a representative
// per cluster, a 2-D projection, and the adjusted Rand index to compare two clusterings.
//
// Cluster labels are 1..k, numbered in order of first appearance in leaf_order() (so clusters read
// left to right along the dendrogram). SciPy's fcluster finds the same clusters but numbers them by its
// own traversal; the two agree up to renumbering.

#include <hio/discovery/linkage.hpp>
#include <hio/discovery/matrix.hpp>

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

namespace hio::discovery {

// The observations in dendrogram order (scipy.cluster.hierarchy.leaves_list: pre-order, `first` child
// before `second`).
std::vector<std::size_t> leaf_order(const linkage_matrix& z);

// fcluster(Z, threshold, 'distance'): observations whose cophenetic distance is at most `threshold`
// share a cluster.
std::vector<std::uint32_t> cut_at_distance(const linkage_matrix& z, double threshold);

// fcluster(Z, clusters, 'maxclust'): the lowest cut that leaves at most `clusters` clusters (fewer when
// merge distances tie at the cut). `clusters` is clamped to 1..n.
std::vector<std::uint32_t> cut_into(const linkage_matrix& z, std::size_t clusters);

// The distances the levels of the tree are cut at, ascending: cut_at_distance(z, t[n - 1 - k]) is
// cut_into(z, k) for 1 <= k < n (each merge's largest distance within its subtree, sorted).
std::vector<double> level_thresholds(const linkage_matrix& z);

// sizes[k - 1] is the number of observations labelled k.
std::vector<std::size_t> cluster_sizes(std::span<const std::uint32_t> labels);

struct cluster_summary {
  std::uint32_t label = 0;
  std::size_t size = 0;
  std::size_t representative = 0;  // the member (row of x) nearest the centroid; lowest row on ties
  std::vector<double> centroid;     // mean of the members' rows
};

// One summary per label 1..k (a label with no member gets size 0 and representative 0). labels.size()
// must equal x.rows() and labels must be 1-based.
std::vector<cluster_summary> summarize(const matrix& x, std::span<const std::uint32_t> labels);

// Principal-component projection onto two axes.
struct projection {
  matrix points;                   // n×2: (x_i - mean) · axis, for each of the two axes
  matrix axes;                     // 2×d unit principal axes (the second is zero when d = 1)
  std::array<double, 2> variances; // population variance of the data along each axis (eigenvalues)
  std::vector<double> mean;        // column means subtracted before projecting
};

// Deterministic: eigenvectors of the population covariance by cyclic Jacobi rotations, sorted by
// decreasing eigenvalue; each axis's sign makes its largest-magnitude component positive (the first such
// component on ties). O(n d² + d³) time, O(d²) memory besides the result.
projection project_2d(const matrix& x);

// Adjusted Rand index (Hubert and Arabie, 1985) of two labellings of the same observations: 1 for
// identical partitions (whatever the numbering), about 0 for independent ones. 1 when both put every
// observation in one cluster, or each in its own. a.size() must equal b.size().
double adjusted_rand_index(std::span<const std::uint32_t> a, std::span<const std::uint32_t> b);

}  // namespace hio::discovery
