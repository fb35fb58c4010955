#pragma once
// The bodies of the kernels in kernels.hpp. Included by exactly one .cpp per instruction set, which
// defines HIO_KERNEL_QUERY_BLOCK (rows per distance_rows pass, at most 4) and HIO_KERNEL_ROW_BLOCK
// (rows per nearest_centres pass) to suit its register count, and HIO_KERNEL_WIDE8 where 8-double
// vectors are native (distance_rows then sums 8 lanes at once, in the same order). Everything here has
// internal linkage, so the builds never replace each other's functions.

#include "detail/kernels.hpp"

#include <cmath>
#include <cstring>
#include <limits>

// The 4-double vectors never cross a call boundary (everything here is inlined or internal), so the
// baseline build's ABI note about passing them without AVX does not apply.
#pragma GCC diagnostic ignored "-Wpsabi"

namespace hio::discovery::detail {
namespace {

using v4d = double __attribute__((vector_size(32)));
using v4l = long long __attribute__((vector_size(32)));

inline __attribute__((always_inline)) v4d load4(const double* p) noexcept {
  v4d v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

#ifdef HIO_KERNEL_WIDE8
using v8d = double __attribute__((vector_size(64)));

inline __attribute__((always_inline)) v8d load8(const double* p) noexcept {
  v8d v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
#endif

inline __attribute__((always_inline)) double lane_sum(v4d s) noexcept { return (s[0] + s[1]) + (s[2] + s[3]); }

// The one summation order every distance follows: two 4-lane accumulators over blocks of 8, one more
// block of 4 into the first, the lanes reduced pairwise, then the last d % 4 terms one by one.
template <bool bounded>
inline __attribute__((always_inline)) double squared_distance_impl(const double* a, const double* b,
                                                                   std::size_t d, double bound) noexcept {
  v4d acc0 = {0, 0, 0, 0};
  v4d acc1 = {0, 0, 0, 0};
  std::size_t j = 0;
  for (; j + 8 <= d; j += 8) {
    const v4d t0 = load4(a + j) - load4(b + j);
    const v4d t1 = load4(a + j + 4) - load4(b + j + 4);
    acc0 += t0 * t0;
    acc1 += t1 * t1;
    if constexpr (bounded) {
      if ((j & 15) == 8) {
        const double partial = lane_sum(acc0 + acc1);
        if (partial > bound) return partial;
      }
    }
  }
  if (j + 4 <= d) {
    const v4d t0 = load4(a + j) - load4(b + j);
    acc0 += t0 * t0;
    j += 4;
  }
  double sum = lane_sum(acc0 + acc1);
  for (; j < d; ++j) {
    const double t = a[j] - b[j];
    sum += t * t;
  }
  return sum;
}

double squared_distance(const double* a, const double* b, std::size_t d) {
  return squared_distance_impl<false>(a, b, d, 0.0);
}

double squared_distance_bounded(const double* a, const double* b, std::size_t d, double bound) {
  return squared_distance_impl<true>(a, b, d, bound);
}

// Q rows i0 .. i0 + Q - 1 against rows j0 .. j1 - 1, in squared_distance's summation order.
template <std::size_t Q>
void distance_block(const double* x, std::size_t d, std::size_t i0, std::size_t j0, std::size_t j1, double* out,
                    std::size_t stride) {
  const double* q[Q];
  for (std::size_t r = 0; r < Q; ++r) q[r] = x + (i0 + r) * d;
  for (std::size_t jrow = j0; jrow < j1; ++jrow) {
    const double* b = x + jrow * d;
    v4d acc[Q][2] = {};
    std::size_t j = 0;
#ifdef HIO_KERNEL_WIDE8
    // One 8-lane accumulator per row: lanes 0-3 are acc[r][0], lanes 4-7 acc[r][1], the same sums.
    v8d wide[Q] = {};
    for (; j + 8 <= d; j += 8) {
      const v8d b8 = load8(b + j);
#pragma GCC unroll 4
      for (std::size_t r = 0; r < Q; ++r) {
        const v8d t = load8(q[r] + j) - b8;
        wide[r] += t * t;
      }
    }
    for (std::size_t r = 0; r < Q; ++r) {
      std::memcpy(&acc[r][0], &wide[r], sizeof(v4d));
      std::memcpy(&acc[r][1], reinterpret_cast<const char*>(&wide[r]) + sizeof(v4d), sizeof(v4d));
    }
#else
    for (; j + 8 <= d; j += 8) {
      const v4d b0 = load4(b + j);
      const v4d b1 = load4(b + j + 4);
#pragma GCC unroll 4
      for (std::size_t r = 0; r < Q; ++r) {
        const v4d t0 = load4(q[r] + j) - b0;
        const v4d t1 = load4(q[r] + j + 4) - b1;
        acc[r][0] += t0 * t0;
        acc[r][1] += t1 * t1;
      }
    }
#endif
    const bool four = j + 4 <= d;
    if (four) {
      const v4d b0 = load4(b + j);
#pragma GCC unroll 4
      for (std::size_t r = 0; r < Q; ++r) {
        const v4d t0 = load4(q[r] + j) - b0;
        acc[r][0] += t0 * t0;
      }
      j += 4;
    }
    for (std::size_t r = 0; r < Q; ++r) {
      double sum = lane_sum(acc[r][0] + acc[r][1]);
      for (std::size_t t = j; t < d; ++t) {
        const double diff = q[r][t] - b[t];
        sum += diff * diff;
      }
      out[r * stride + (jrow - j0)] = std::sqrt(sum);
    }
  }
}

void distance_rows(const double* x, std::size_t d, std::size_t i0, std::size_t count, std::size_t j0, std::size_t j1,
                   double* out, std::size_t stride) {
  while (count > 0) {
    const std::size_t take = count < HIO_KERNEL_QUERY_BLOCK ? count : HIO_KERNEL_QUERY_BLOCK;
    switch (take) {
      case 1: distance_block<1>(x, d, i0, j0, j1, out, stride); break;
      case 2: distance_block<2>(x, d, i0, j0, j1, out, stride); break;
      case 3: distance_block<3>(x, d, i0, j0, j1, out, stride); break;
      default: distance_block<4>(x, d, i0, j0, j1, out, stride); break;
    }
    i0 += take;
    count -= take;
    out += take * stride;
  }
}

// R rows against every panel of 4 centres; per row and lane the best score and its centre so far.
template <std::size_t R>
void nearest_block(const double* rows, const double* panels, const double* norms, std::size_t k, std::size_t d,
                   std::uint32_t* labels) {
  constexpr double inf = std::numeric_limits<double>::infinity();
  v4d best[R];
  v4d best_index[R];
#pragma GCC unroll 8
  for (std::size_t r = 0; r < R; ++r) {
    best[r] = v4d{inf, inf, inf, inf};
    best_index[r] = v4d{0, 1, 2, 3};
  }
  for (std::size_t p = 0; p * panel_width < k; ++p) {
    const double* panel = panels + p * d * panel_width;
    v4d acc[R] = {};
    for (std::size_t j = 0; j < d; ++j) {
      const v4d c = load4(panel + j * panel_width);
#pragma GCC unroll 8
      for (std::size_t r = 0; r < R; ++r) acc[r] += rows[r * d + j] * c;
    }
    const v4d norm = load4(norms + p * panel_width);
    const double base = static_cast<double>(p * panel_width);
    const v4d index = v4d{base, base + 1, base + 2, base + 3};
#pragma GCC unroll 8
    for (std::size_t r = 0; r < R; ++r) {
      const v4d score = norm - 2.0 * acc[r];
      const v4l better = score < best[r];
      best[r] = better ? score : best[r];
      best_index[r] = better ? index : best_index[r];
    }
  }
  for (std::size_t r = 0; r < R; ++r) {
    double value = best[r][0];
    double index = best_index[r][0];
    for (int lane = 1; lane < 4; ++lane) {
      if (best[r][lane] < value || (best[r][lane] == value && best_index[r][lane] < index)) {
        value = best[r][lane];
        index = best_index[r][lane];
      }
    }
    labels[r] = static_cast<std::uint32_t>(index);
  }
}

void nearest_centres(const double* rows, std::size_t count, const double* panels, const double* norms,
                     std::size_t k, std::size_t d, std::uint32_t* labels) {
  std::size_t i = 0;
  for (; i + HIO_KERNEL_ROW_BLOCK <= count; i += HIO_KERNEL_ROW_BLOCK)
    nearest_block<HIO_KERNEL_ROW_BLOCK>(rows + i * d, panels, norms, k, d, labels + i);
  for (; i < count; ++i) nearest_block<1>(rows + i * d, panels, norms, k, d, labels + i);
}

void projected_gaps(const double* coords, std::size_t stride, std::size_t count, const double* query, double* out) {
  std::size_t p = 0;
  for (; p + 4 <= count; p += 4) {
    v4d acc = {0, 0, 0, 0};
#pragma GCC unroll 8
    for (std::size_t c = 0; c < floor_width; ++c) {
      const v4d t = load4(coords + c * stride + p) - query[c];
      acc += t * t;
    }
    std::memcpy(out + p, &acc, sizeof acc);
  }
  for (; p < count; ++p) {
    double acc = 0;
    for (std::size_t c = 0; c < floor_width; ++c) {
      const double t = coords[c * stride + p] - query[c];
      acc += t * t;
    }
    out[p] = acc;
  }
}

constexpr kernel_table make_table() noexcept {
  return {&squared_distance, &squared_distance_bounded, &distance_rows, &nearest_centres, &projected_gaps};
}

}  // namespace
}  // namespace hio::discovery::detail
