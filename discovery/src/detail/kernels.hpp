#pragma once
// The inner loops of the discovery algorithms, built three times (baseline x86-64, AVX2, AVX-512) and
// chosen once at run time. All builds sum in the same order and none contracts to FMA, so they return the
// same bits.

#include <cstddef>
#include <cstdint>

namespace hio::discovery::detail {

// Principal coordinates per candidate in the linkage's lower-bound filter.
inline constexpr std::size_t floor_width = 8;

// Panels of 4 centres, dimension-major: centre 4p + c, dimension j sits at [(p * d + j) * 4 + c].
inline constexpr std::size_t panel_width = 4;

struct kernel_table {
  // Squared Euclidean distance of a and b (d doubles each).
  double (*squared_distance)(const double* a, const double* b, std::size_t d);
  // As squared_distance, but returns early with a partial sum once that exceeds `bound`; the result is
  // exact whenever it is at most `bound`.
  double (*squared_distance_bounded)(const double* a, const double* b, std::size_t d, double bound);
  // Distances of rows i0 .. i0 + count - 1 of the row-major matrix x (d columns) to its rows j0 .. j1 - 1:
  // out[r * stride + (j - j0)] = sqrt(squared_distance(x_(i0 + r), x_j)), the same bits.
  void (*distance_rows)(const double* x, std::size_t d, std::size_t i0, std::size_t count, std::size_t j0,
                        std::size_t j1, double* out, std::size_t stride);
  // For each of `count` rows (row-major, d each), the centre minimising |c|² - 2 x·c (lowest index on
  // ties), given panels as above and norms[c] = |c|² (+inf for padding). k is a multiple of panel_width.
  void (*nearest_centres)(const double* rows, std::size_t count, const double* panels, const double* norms,
                          std::size_t k, std::size_t d, std::uint32_t* labels);
  // out[p] = sum over c < floor_width of (coords[c * stride + p] - query[c])², for p < count.
  void (*projected_gaps)(const double* coords, std::size_t stride, std::size_t count, const double* query,
                         double* out);
};

const kernel_table& kernels() noexcept;

extern const kernel_table baseline_kernels;
extern const kernel_table avx2_kernels;    // only on x86-64
extern const kernel_table avx512_kernels;  // only on x86-64

}  // namespace hio::discovery::detail
