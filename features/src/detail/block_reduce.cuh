#pragma once
// Block-wide reductions and selection for the feature kernels. Every function must be called by all
// threads of the block (they synchronise) with blockDim.x a multiple of 32; the result reaches every
// thread. The reduction order is fixed for a given block size, so results are deterministic.

#include <cstdint>

namespace hio::features::detail {

struct block_scratch {
  double values[32];           // one partial per warp
  unsigned int histogram[256];  // radix select
  unsigned long long rank;     // radix select: remaining rank
  unsigned int digit;          // radix select: chosen digit
};

__device__ inline double warp_sum(double v) {
  for (int offset = 16; offset > 0; offset >>= 1) v += __shfl_down_sync(0xffffffffu, v, offset);
  return v;
}
__device__ inline double warp_min(double v) {
  for (int offset = 16; offset > 0; offset >>= 1) v = fmin(v, __shfl_down_sync(0xffffffffu, v, offset));
  return v;
}
__device__ inline double warp_max(double v) {
  for (int offset = 16; offset > 0; offset >>= 1) v = fmax(v, __shfl_down_sync(0xffffffffu, v, offset));
  return v;
}

enum class reduce_op { sum, min, max };

template <reduce_op op>
__device__ inline double warp_reduce(double v) {
  if constexpr (op == reduce_op::sum) return warp_sum(v);
  else if constexpr (op == reduce_op::min) return warp_min(v);
  else return warp_max(v);
}

template <reduce_op op>
__device__ double block_reduce(double v, block_scratch& s) {
  const unsigned lane = threadIdx.x & 31u, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
  v = warp_reduce<op>(v);
  __syncthreads();  // the previous reduction's result has been read by everyone
  if (lane == 0) s.values[warp] = v;
  __syncthreads();
  if (warp == 0) {
    double w = lane < warps ? s.values[lane] : s.values[0];  // padding with a member keeps min/max right
    if (op == reduce_op::sum && lane >= warps) w = 0;
    w = warp_reduce<op>(w);
    if (lane == 0) s.values[0] = w;
  }
  __syncthreads();
  return s.values[0];
}

__device__ inline double block_sum(double v, block_scratch& s) { return block_reduce<reduce_op::sum>(v, s); }
__device__ inline double block_min(double v, block_scratch& s) { return block_reduce<reduce_op::min>(v, s); }
__device__ inline double block_max(double v, block_scratch& s) { return block_reduce<reduce_op::max>(v, s); }

// Doubles as unsigned keys in the same order (no NaN here: the input was checked finite).
__device__ inline unsigned long long order_key(double d) {
  const unsigned long long u = static_cast<unsigned long long>(__double_as_longlong(d));
  return (u >> 63) ? ~u : (u | 0x8000000000000000ull);
}
__device__ inline double from_order_key(unsigned long long k) {
  const unsigned long long u = (k >> 63) ? (k & 0x7fffffffffffffffull) : ~k;
  return __longlong_as_double(static_cast<long long>(u));
}

// The value of rank k (0-based, k < n) among x[0..n): MSB radix select, eight passes of 8 bits.
__device__ double block_select(const double* x, unsigned long long n, unsigned long long k, block_scratch& s) {
  unsigned long long prefix = 0, mask = 0;
  for (int shift = 56; shift >= 0; shift -= 8) {
    for (unsigned i = threadIdx.x; i < 256; i += blockDim.x) s.histogram[i] = 0;
    __syncthreads();
    for (unsigned long long i = threadIdx.x; i < n; i += blockDim.x) {
      const unsigned long long key = order_key(x[i]);
      if ((key & mask) == prefix) atomicAdd(&s.histogram[(key >> shift) & 0xffu], 1u);
    }
    __syncthreads();
    if (threadIdx.x == 0) {
      unsigned long long below = 0;
      unsigned d = 0;
      while (d < 255 && below + s.histogram[d] <= k) below += s.histogram[d++];
      s.rank = k - below;
      s.digit = d;
    }
    __syncthreads();
    k = s.rank;
    prefix |= static_cast<unsigned long long>(s.digit) << shift;
    mask |= 0xffull << shift;
    __syncthreads();
  }
  return from_order_key(prefix);
}

}  // namespace hio::features::detail
