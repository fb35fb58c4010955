#pragma once
// The feature set with the definitions of the original HarmonicPE code (Services.g2 in batch.py of
// HASTE-project/HarmonicPE; docs/features.md, "features:harmonicpe"): a plain float64 implementation
// beside the optimised hio one, reached through extractor::extract with feature_definitions::harmonicpe.

#include <hio/features/npy.hpp>
#include <hio/features/result.hpp>

#include <cstddef>
#include <cstdint>
#include <vector>

namespace hio::features::detail {

// Buffers reused between calls, grown to the largest realization seen. Owned by one extractor.
struct harmonicpe_scratch {
  std::vector<double> rows;    // [S][T][V]: the realization as float64
  std::vector<double> cols;    // [S][V][T]: its transpose, each voxel's series contiguous
  std::vector<double> median;  // a copy of one series, for its median
  std::vector<std::uint32_t> counts;  // a histogram of one integer series, for its median
  std::vector<double> list_a, list_b;
};

// The features of realization r of `a`, in the order of feature_names(a.species, {.definitions =
// harmonicpe}). Error non_finite_input when the realization holds NaN or Inf or its sums overflow; no
// value returned is NaN or Inf (a feature that would be is 0).
result<std::vector<double>> harmonicpe_realization(const npy_array& a, std::size_t r, harmonicpe_scratch& w);

}  // namespace hio::features::detail
