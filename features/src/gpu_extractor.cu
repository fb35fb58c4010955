// The feature set on a CUDA device, float64 throughout. Per tuple, on one stream: copy the payload,
// decode it to [G][T][V] doubles (G = R*S), transpose to [G][V][T], one block per row and per column
// for sums, moments and exact medians (radix select), one block per pair row/column for correlations,
// cuFFT D2Z batched over every voxel for the spectra, then one block per species and per pair writes
// the features, which are copied back to pinned memory. Definitions: docs/features.md.

#include <hio/features/gpu.hpp>

#include "detail/block_reduce.cuh"
#include "detail/cuda_check.cuh"
#include "detail/layout.hpp"

#include <cuda_runtime.h>
#include <cufft.h>

#include <algorithm>
#include <cmath>
#include <optional>
#include <string>
#include <vector>

namespace hio::features {
namespace {

using ull = unsigned long long;
using status = std::optional<error>;  // nullopt: success
using detail::block_scratch;

constexpr ull max_blocks = 1ull << 20;  // grid-stride loops cover the rest

unsigned grid_for(ull work) { return static_cast<unsigned>(std::max<ull>(1, std::min(work, max_blocks))); }

// ---------------------------------------------------------------------------------------------------
// Device code

__device__ inline unsigned short swap16(unsigned short u) { return static_cast<unsigned short>((u >> 8) | (u << 8)); }
__device__ inline unsigned swap32(unsigned u) { return __byte_perm(u, 0, 0x0123); }
__device__ inline ull swap64(ull u) {
  return (static_cast<ull>(swap32(static_cast<unsigned>(u))) << 32) | swap32(static_cast<unsigned>(u >> 32));
}

// Element i of a payload that starts at an allocation boundary (so every element is aligned).
__device__ inline double load_element(const unsigned char* raw, ull i, dtype type, bool swap) {
  switch (type) {
    case dtype::i1: return static_cast<signed char>(raw[i]);
    case dtype::u1: return raw[i];
    case dtype::i2: {
      unsigned short u = reinterpret_cast<const unsigned short*>(raw)[i];
      return static_cast<short>(swap ? swap16(u) : u);
    }
    case dtype::u2: {
      unsigned short u = reinterpret_cast<const unsigned short*>(raw)[i];
      return swap ? swap16(u) : u;
    }
    case dtype::i4: {
      unsigned u = reinterpret_cast<const unsigned*>(raw)[i];
      return static_cast<int>(swap ? swap32(u) : u);
    }
    case dtype::u4: {
      unsigned u = reinterpret_cast<const unsigned*>(raw)[i];
      return swap ? swap32(u) : u;
    }
    case dtype::f4: {
      unsigned u = reinterpret_cast<const unsigned*>(raw)[i];
      return __int_as_float(static_cast<int>(swap ? swap32(u) : u));
    }
    case dtype::i8: {
      ull u = reinterpret_cast<const ull*>(raw)[i];
      return static_cast<double>(static_cast<long long>(swap ? swap64(u) : u));
    }
    case dtype::u8: {
      ull u = reinterpret_cast<const ull*>(raw)[i];
      return static_cast<double>(swap ? swap64(u) : u);
    }
    case dtype::f8: {
      ull u = reinterpret_cast<const ull*>(raw)[i];
      return __longlong_as_double(static_cast<long long>(swap ? swap64(u) : u));
    }
  }
  return 0;
}

struct shape4 {
  ull r, s, t, v;
};

__global__ void decode_kernel(const unsigned char* raw, dtype type, bool swap, bool fortran, shape4 sh, double* x) {
  const ull n = sh.r * sh.s * sh.t * sh.v;
  for (ull idx = blockIdx.x * static_cast<ull>(blockDim.x) + threadIdx.x; idx < n;
       idx += static_cast<ull>(gridDim.x) * blockDim.x) {
    ull file = idx;
    if (fortran) {
      const ull v = idx % sh.v;
      ull rest = idx / sh.v;
      const ull t = rest % sh.t;
      rest /= sh.t;
      const ull s = rest % sh.s, r = rest / sh.s;
      file = r + sh.r * (s + sh.s * (t + sh.t * v));
    }
    x[idx] = load_element(raw, file, type, swap);
  }
}

// y[g][v][t] = x[g][t][v], through 32 x 32 tiles in shared memory.
__global__ void transpose_kernel(const double* x, double* y, ull groups, ull T, ull V) {
  __shared__ double tile[32][33];
  const ull tiles_v = (V + 31) / 32, tiles_t = (T + 31) / 32;
  for (ull g = blockIdx.z; g < groups; g += gridDim.z)
    for (ull ty = blockIdx.y; ty < tiles_t; ty += gridDim.y)
      for (ull tx = blockIdx.x; tx < tiles_v; tx += gridDim.x) {
        const ull t0 = ty * 32, v0 = tx * 32;
        for (unsigned j = threadIdx.y; j < 32; j += blockDim.y) {
          const ull t = t0 + j, v = v0 + threadIdx.x;
          if (t < T && v < V) tile[j][threadIdx.x] = x[(g * T + t) * V + v];
        }
        __syncthreads();
        for (unsigned j = threadIdx.y; j < 32; j += blockDim.y) {
          const ull v = v0 + j, t = t0 + threadIdx.x;
          if (v < V && t < T) y[(g * V + v) * T + t] = tile[threadIdx.x][j];
        }
        __syncthreads();
      }
}

__device__ inline double burstiness(double mean, double sd) { return sd + mean == 0 ? 0.0 : (sd - mean) / (sd + mean); }
__device__ inline double skew(double mean, double sd, double median) { return sd == 0 ? 0.0 : 3 * (mean - median) / sd; }
__device__ inline double cv(double mean, double sd) { return mean == 0 ? 0.0 : sd / mean; }

struct series_outputs {
  double* sum = nullptr;
  double* mean = nullptr;
  double* sd = nullptr;
  double* burstiness = nullptr;
  double* skew = nullptr;
  double* cv = nullptr;
  double* centered = nullptr;  // [count][len]: the series minus its mean (all 0 for a constant series)
  int* non_finite = nullptr;   // set to 1 when a series' sum is not finite
  bool median = true;          // compute the median (for skew)
};

// One block per series of `len` contiguous values: the same rules as the CPU's describe().
__global__ void series_kernel(const double* data, ull count, ull len, series_outputs out) {
  __shared__ block_scratch scratch;
  for (ull series = blockIdx.x; series < count; series += gridDim.x) {
    const double* x = data + series * len;
    double sum = 0, lo = INFINITY, hi = -INFINITY;
    for (ull i = threadIdx.x; i < len; i += blockDim.x) {
      sum += x[i];
      lo = fmin(lo, x[i]);
      hi = fmax(hi, x[i]);
    }
    sum = detail::block_sum(sum, scratch);
    lo = detail::block_min(lo, scratch);
    hi = detail::block_max(hi, scratch);
    const bool finite = isfinite(sum);
    double mean = 0, sd = 0, median = 0;
    if (!finite) {
      if (threadIdx.x == 0 && out.non_finite) *out.non_finite = 1;
    } else if (lo == hi) {
      mean = median = x[0];
    } else {
      const double n = static_cast<double>(len);
      mean = sum / n;
      double squares = 0;
      for (ull i = threadIdx.x; i < len; i += blockDim.x) squares += (x[i] - mean) * (x[i] - mean);
      sd = sqrt(detail::block_sum(squares, scratch) / n);
      if (out.median) {
        const ull k0 = (len - 1) / 2, k1 = len / 2;
        const double upper = detail::block_select(x, len, k1, scratch);
        const double lower = k0 == k1 ? upper : detail::block_select(x, len, k0, scratch);
        median = (lower + upper) / 2;
      }
    }
    if (threadIdx.x == 0) {
      if (out.sum) out.sum[series] = sum;
      if (out.mean) out.mean[series] = mean;
      if (out.sd) out.sd[series] = sd;
      if (out.burstiness) out.burstiness[series] = burstiness(mean, sd);
      if (out.skew) out.skew[series] = skew(mean, sd, median);
      if (out.cv) out.cv[series] = cv(mean, sd);
    }
    if (out.centered)
      for (ull i = threadIdx.x; i < len; i += blockDim.x) out.centered[series * len + i] = sd != 0 ? x[i] - mean : 0.0;
    __syncthreads();
  }
}

// Pair p (numbered (0,1), (0,2), ..., (1,2), ...) of S species.
__device__ inline void pair_species(ull p, ull S, ull& s, ull& u) {
  ull first = 0;
  s = 0;
  while (first + (S - 1 - s) <= p) {
    first += S - 1 - s;
    ++s;
  }
  u = s + 1 + (p - first);
}

__device__ double correlation(const double* x, const double* y, ull len, double mx, double my, double sx, double sy,
                              block_scratch& scratch) {
  if (sx == 0 || sy == 0) return 0;  // uniform across the block
  double acc = 0;
  for (ull i = threadIdx.x; i < len; i += blockDim.x) acc += (x[i] - mx) * (y[i] - my);
  const double r = detail::block_sum(acc, scratch) / (static_cast<double>(len) * sx * sy);
  return fmin(1.0, fmax(-1.0, r));
}

// For every realization r, pair p and series i < n: the correlation of series i of both species.
// data is [R][S][n][len]; out is [R][P][n].
__global__ void pair_kernel(const double* data, ull R, ull S, ull n, ull len, const double* mean, const double* sd,
                            double* out) {
  __shared__ block_scratch scratch;
  const ull P = S * (S - 1) / 2, total = R * P * n;
  for (ull b = blockIdx.x; b < total; b += gridDim.x) {
    const ull i = b % n, rp = b / n, p = rp % P, r = rp / P;
    ull s, u;
    pair_species(p, S, s, u);
    const ull gx = (r * S + s) * n + i, gy = (r * S + u) * n + i;
    const double c = correlation(data + gx * len, data + gy * len, len, mean[gx], mean[gy], sd[gx], sd[gy], scratch);
    if (threadIdx.x == 0) out[b] = c;
    __syncthreads();
  }
}

// acf[g][k-1] for lags k = 1 .. max_lag of Sm (the usual estimator, normalised by the lag-0 sum).
__global__ void acf_kernel(const double* sm, ull groups, ull T, ull max_lag, const double* mean, const double* sd,
                           double* acf) {
  __shared__ block_scratch scratch;
  for (ull b = blockIdx.x; b < groups * max_lag; b += gridDim.x) {
    const ull g = b / max_lag, k = b % max_lag + 1;
    double value = 0;
    if (sd[g] != 0) {
      const double* x = sm + g * T;
      const double m = mean[g];
      double c0 = 0, ck = 0;
      for (ull t = threadIdx.x; t < T; t += blockDim.x) {
        c0 += (x[t] - m) * (x[t] - m);
        if (t + k < T) ck += (x[t] - m) * (x[t + k] - m);
      }
      c0 = detail::block_sum(c0, scratch);
      ck = detail::block_sum(ck, scratch);
      value = ck / c0;
    }
    if (threadIdx.x == 0) acf[b] = value;
    __syncthreads();
  }
}

// Dominant period and its share of the power, per voxel, from the one-sided spectrum (T/2 + 1 bins).
__global__ void spectral_kernel(const cufftDoubleComplex* spectrum, ull count, ull T, const double* sd, double* period,
                                double* share) {
  __shared__ block_scratch scratch;
  const ull bins = T / 2, stride = T / 2 + 1;
  for (ull b = blockIdx.x; b < count; b += gridDim.x) {
    double per = 0, sh = 0;
    if (sd[b] != 0 && bins >= 1) {
      const cufftDoubleComplex* X = spectrum + b * stride;
      double peak = 0, total = 0;
      for (ull k = 1 + threadIdx.x; k <= bins; k += blockDim.x) {
        const double p = X[k].x * X[k].x + X[k].y * X[k].y;
        peak = fmax(peak, p);
        total += p;
      }
      peak = detail::block_max(peak, scratch);
      total = detail::block_sum(total, scratch);
      if (total > 0) {
        const double threshold = (1 - detail::peak_tie_tolerance) * peak;
        double first = INFINITY;
        for (ull k = 1 + threadIdx.x; k <= bins; k += blockDim.x) {
          const double p = X[k].x * X[k].x + X[k].y * X[k].y;
          if (p >= threshold) first = fmin(first, static_cast<double>(k));
        }
        first = detail::block_min(first, scratch);
        per = static_cast<double>(T) / first;
        sh = peak / total;
      }
    }
    if (threadIdx.x == 0) {
      period[b] = per;
      share[b] = sh;
    }
    __syncthreads();
  }
}

struct summary {
  double norm, mean, var;
};

__device__ summary summarise(const double* l, ull n, block_scratch& scratch) {
  double squares = 0, sum = 0;
  for (ull i = threadIdx.x; i < n; i += blockDim.x) {
    squares += l[i] * l[i];
    sum += l[i];
  }
  squares = detail::block_sum(squares, scratch);
  sum = detail::block_sum(sum, scratch);
  const double mean = sum / static_cast<double>(n);
  double deviations = 0;
  for (ull i = threadIdx.x; i < n; i += blockDim.x) deviations += (l[i] - mean) * (l[i] - mean);
  deviations = detail::block_sum(deviations, scratch);
  return {sqrt(squares), mean, deviations / static_cast<double>(n)};
}

// Everything the final kernels read; arrays indexed by group g = r * S + s unless noted.
struct final_inputs {
  ull R, S, T, V, max_lag, features, per_species;
  bool spectral;
  const double *sm, *sm_mean, *sm_sd, *sm_burstiness, *sm_skew, *sm_cv;  // sm: [G][T]
  const double *smt_sd, *smt_burstiness, *smt_cv;
  const double* acf;                   // [G][max_lag]
  const double* tp;                    // [3][G][T]: burstiness, skew, cv per timepoint
  const double* vx;                    // [3][G][V]: per voxel
  const double *period, *share;        // [G][V]
  const double *tp_corr, *vx_corr;     // [R][P][T], [R][P][V]
};

__global__ void species_kernel(final_inputs in, double* out) {
  __shared__ block_scratch scratch;
  const ull G = in.R * in.S;
  for (ull g = blockIdx.x; g < G; g += gridDim.x) {
    const ull r = g / in.S, s = g % in.S;
    double* f = out + r * in.features + s * in.per_species;
    if (threadIdx.x == 0) {
      f[detail::f_mean_sm] = in.sm_mean[g];
      f[detail::f_burstiness_sm] = in.sm_burstiness[g];
      f[detail::f_burstiness_smt] = in.smt_burstiness[g];
      f[detail::f_skew_sm] = in.sm_skew[g];
      f[detail::f_cv_sm] = in.sm_cv[g];
      f[detail::f_cv_smt] = in.smt_cv[g];
      f[detail::f_fft_norm_sm] = static_cast<double>(in.T) * in.sm_sd[g];
      f[detail::f_fft_norm_smt] = static_cast<double>(in.V) * in.smt_sd[g];
    }
    double acf_squares = 0;
    if (in.max_lag >= 1) {
      for (ull k = threadIdx.x; k < in.max_lag; k += blockDim.x) acf_squares += in.acf[g * in.max_lag + k] * in.acf[g * in.max_lag + k];
      acf_squares = detail::block_sum(acf_squares, scratch);
    }
    if (threadIdx.x == 0) f[detail::f_acf_norm_sm] = sqrt(acf_squares);
    for (int stat = 0; stat < 3; ++stat) {
      const summary st = summarise(in.tp + (stat * G + g) * in.T, in.T, scratch);
      const summary sv = summarise(in.vx + (stat * G + g) * in.V, in.V, scratch);
      if (threadIdx.x == 0) {
        f[detail::f_tp_first + detail::list_offset(stat, detail::l_norm)] = st.norm;
        f[detail::f_tp_first + detail::list_offset(stat, detail::l_mean)] = st.mean;
        f[detail::f_tp_first + detail::list_offset(stat, detail::l_var)] = st.var;
        f[detail::f_vx_first + detail::list_offset(stat, detail::l_norm)] = sv.norm;
        f[detail::f_vx_first + detail::list_offset(stat, detail::l_mean)] = sv.mean;
        f[detail::f_vx_first + detail::list_offset(stat, detail::l_var)] = sv.var;
      }
    }
    if (in.spectral) {
      const summary per = summarise(in.period + g * in.V, in.V, scratch);
      const summary sh = summarise(in.share + g * in.V, in.V, scratch);
      double peaked = 0;
      for (ull v = threadIdx.x; v < in.V; v += blockDim.x) peaked += in.share[g * in.V + v] > detail::peaked_share ? 1 : 0;
      peaked = detail::block_sum(peaked, scratch);
      if (threadIdx.x == 0) {
        f[detail::f_spec_period_mean] = per.mean;
        f[detail::f_spec_period_std] = sqrt(per.var);
        f[detail::f_spec_share_mean] = sh.mean;
        f[detail::f_spec_peaked_fraction] = peaked / static_cast<double>(in.V);
      }
    }
    __syncthreads();
  }
}

__global__ void pair_final_kernel(final_inputs in, double* out) {
  __shared__ block_scratch scratch;
  const ull P = in.S * (in.S - 1) / 2;
  for (ull b = blockIdx.x; b < in.R * P; b += gridDim.x) {
    const ull r = b / P, p = b % P;
    ull s, u;
    pair_species(p, in.S, s, u);
    const ull gs = r * in.S + s, gu = r * in.S + u;
    double* f = out + r * in.features + in.S * in.per_species + p * detail::per_pair;
    const double c = correlation(in.sm + gs * in.T, in.sm + gu * in.T, in.T, in.sm_mean[gs], in.sm_mean[gu], in.sm_sd[gs],
                                 in.sm_sd[gu], scratch);
    const summary st = summarise(in.tp_corr + b * in.T, in.T, scratch);
    const summary sv = summarise(in.vx_corr + b * in.V, in.V, scratch);
    if (threadIdx.x == 0) {
      f[detail::f_corr_sm] = c;
      f[detail::f_tp_corr_norm] = st.norm;
      f[detail::f_tp_corr_var] = st.var;
      f[detail::f_vx_corr_norm] = sv.norm;
      f[detail::f_vx_corr_var] = sv.var;
    }
    __syncthreads();
  }
}

// ---------------------------------------------------------------------------------------------------
// Host side

template <class T>
struct device_array {
  T* ptr = nullptr;
  std::size_t capacity = 0;  // elements

  status reserve(std::size_t n) {
    if (n <= capacity) return std::nullopt;
    if (ptr) cudaFree(ptr);
    ptr = nullptr;
    capacity = 0;
    HIO_CUDA_TRY(cudaMalloc(&ptr, std::max<std::size_t>(n, 1) * sizeof(T)));
    capacity = n;
    return std::nullopt;
  }
  void release() noexcept {
    if (ptr) cudaFree(ptr);
    ptr = nullptr;
    capacity = 0;
  }
};

template <class T>
struct host_array {
  T* ptr = nullptr;
  std::size_t capacity = 0;

  status reserve(std::size_t n) {
    if (n <= capacity) return std::nullopt;
    if (ptr) cudaFreeHost(ptr);
    ptr = nullptr;
    capacity = 0;
    HIO_CUDA_TRY(cudaMallocHost(&ptr, std::max<std::size_t>(n, 1) * sizeof(T)));
    capacity = n;
    return std::nullopt;
  }
  void release() noexcept {
    if (ptr) cudaFreeHost(ptr);
    ptr = nullptr;
    capacity = 0;
  }
};

double median_of(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : (v[(v.size() - 1) / 2] + v[v.size() / 2]) / 2;
}

}  // namespace

struct gpu_extractor::impl {
  int device = 0;
  unsigned block = 256;
  std::string name;
  cudaStream_t stream = nullptr;
  cudaEvent_t start = nullptr, stop = nullptr;
  double last_ms = 0;

  device_array<unsigned char> raw;
  device_array<double> x, y, small;
  device_array<cufftDoubleComplex> spectrum;
  device_array<int> flag;
  host_array<double> out;
  host_array<int> host_flag;

  cufftHandle plan = 0;
  bool have_plan = false;
  ull plan_t = 0, plan_batch = 0;

  ~impl() {
    cudaSetDevice(device);
    if (have_plan) cufftDestroy(plan);
    raw.release();
    x.release();
    y.release();
    small.release();
    spectrum.release();
    flag.release();
    out.release();
    host_flag.release();
    if (start) cudaEventDestroy(start);
    if (stop) cudaEventDestroy(stop);
    if (stream) cudaStreamDestroy(stream);
  }

  status ensure_plan(ull T, ull batch) {
    if (have_plan && plan_t == T && plan_batch == batch) return std::nullopt;
    if (have_plan) cufftDestroy(plan);
    have_plan = false;
    int n = static_cast<int>(T);
    HIO_CUFFT_TRY(cufftPlanMany(&plan, 1, &n, nullptr, 1, n, nullptr, 1, n / 2 + 1, CUFFT_D2Z, static_cast<int>(batch)));
    have_plan = true;
    plan_t = T;
    plan_batch = batch;
    return std::nullopt;
  }

  result<std::vector<double>> run(const npy_array& a, const detail::layout& lay, cudaStream_t st);
};

result<std::vector<double>> gpu_extractor::impl::run(const npy_array& a, const detail::layout& lay, cudaStream_t st) {
  const ull R = a.realizations, S = a.species, T = a.timepoints, V = a.voxels, G = R * S, P = lay.pairs();
  const ull N = G * T * V, F = lay.total(), max_lag = T / 2 >= 1 ? T / 2 - 1 : 0;
  const bool spectral = lay.spectral && T >= 2;
  if (spectral && (T > 0x7fffffffull || G * V > 0x7fffffffull))
    return make_error(errc::invalid_argument, "the array is too large for one cuFFT plan (T or R*S*V over 2^31)");

  if (auto e = raw.reserve(a.payload.size())) return *e;
  if (auto e = x.reserve(N)) return *e;
  if (auto e = y.reserve(N)) return *e;
  if (spectral) {
    if (auto e = spectrum.reserve(G * V * (T / 2 + 1))) return *e;
    if (auto e = ensure_plan(T, G * V)) return *e;
  }
  // The small arrays, carved from one allocation.
  const ull small_sizes[] = {G * T,     G * T,     G * T,     3 * G * T, G * V,          G * V,   G * V,
                             3 * G * V, R * P * T, R * P * V, 5 * G,     3 * G,          G * V,   G * V,
                             F * R,     G * std::max<ull>(max_lag, 1)};
  ull small_total = 0;
  for (ull n : small_sizes) small_total += n;
  if (auto e = small.reserve(small_total)) return *e;
  double* cursor = small.ptr;
  auto carve = [&cursor](ull n) {
    double* p = cursor;
    cursor += n;
    return p;
  };
  double* sm = carve(G * T);
  double* row_mean = carve(G * T);
  double* row_sd = carve(G * T);
  double* tp = carve(3 * G * T);
  double* smt = carve(G * V);
  double* col_mean = carve(G * V);
  double* col_sd = carve(G * V);
  double* vx = carve(3 * G * V);
  double* tp_corr = carve(R * P * T);
  double* vx_corr = carve(R * P * V);
  double* sm_stats = carve(5 * G);  // mean, sd, burstiness, skew, cv
  double* smt_stats = carve(3 * G);  // sd, burstiness, cv
  double* period = carve(G * V);
  double* share = carve(G * V);
  double* features = carve(F * R);
  double* acf = carve(G * std::max<ull>(max_lag, 1));
  if (auto e = flag.reserve(1)) return *e;
  if (auto e = out.reserve(F * R)) return *e;
  if (auto e = host_flag.reserve(1)) return *e;

  HIO_CUDA_TRY(cudaEventRecord(start, st));
  HIO_CUDA_TRY(cudaMemcpyAsync(raw.ptr, a.payload.data(), a.payload.size(), cudaMemcpyHostToDevice, st));
  HIO_CUDA_TRY(cudaMemsetAsync(flag.ptr, 0, sizeof(int), st));
  HIO_CUDA_TRY(cudaMemsetAsync(features, 0, F * R * sizeof(double), st));

  const bool swap = item_size(a.type) > 1 && a.big_endian;
  decode_kernel<<<grid_for((N + block - 1) / block), block, 0, st>>>(raw.ptr, a.type, swap, a.fortran_order,
                                                                       shape4{R, S, T, V}, x.ptr);
  HIO_CUDA_TRY_LAUNCH();
  const dim3 tiles(static_cast<unsigned>(std::min<ull>((V + 31) / 32, 65535)),
                   static_cast<unsigned>(std::min<ull>((T + 31) / 32, 65535)), static_cast<unsigned>(std::min<ull>(G, 65535)));
  transpose_kernel<<<tiles, dim3(32, 8), 0, st>>>(x.ptr, y.ptr, G, T, V);
  HIO_CUDA_TRY_LAUNCH();

  series_outputs rows;
  rows.sum = sm;
  rows.mean = row_mean;
  rows.sd = row_sd;
  rows.burstiness = tp;
  rows.skew = tp + G * T;
  rows.cv = tp + 2 * G * T;
  rows.non_finite = flag.ptr;
  series_kernel<<<grid_for(G * T), block, 0, st>>>(x.ptr, G * T, V, rows);
  HIO_CUDA_TRY_LAUNCH();
  if (P > 0) {
    pair_kernel<<<grid_for(R * P * T), block, 0, st>>>(x.ptr, R, S, T, V, row_mean, row_sd, tp_corr);
    HIO_CUDA_TRY_LAUNCH();
  }
  // x is free from here: the columns' centered series (the FFT input) go there.
  series_outputs cols;
  cols.sum = smt;
  cols.mean = col_mean;
  cols.sd = col_sd;
  cols.burstiness = vx;
  cols.skew = vx + G * V;
  cols.cv = vx + 2 * G * V;
  cols.centered = spectral ? x.ptr : nullptr;
  series_kernel<<<grid_for(G * V), block, 0, st>>>(y.ptr, G * V, T, cols);
  HIO_CUDA_TRY_LAUNCH();
  if (P > 0) {
    pair_kernel<<<grid_for(R * P * V), block, 0, st>>>(y.ptr, R, S, V, T, col_mean, col_sd, vx_corr);
    HIO_CUDA_TRY_LAUNCH();
  }

  series_outputs sm_out;
  sm_out.mean = sm_stats;
  sm_out.sd = sm_stats + G;
  sm_out.burstiness = sm_stats + 2 * G;
  sm_out.skew = sm_stats + 3 * G;
  sm_out.cv = sm_stats + 4 * G;
  series_kernel<<<grid_for(G), block, 0, st>>>(sm, G, T, sm_out);
  HIO_CUDA_TRY_LAUNCH();
  series_outputs smt_out;
  smt_out.sd = smt_stats;
  smt_out.burstiness = smt_stats + G;
  smt_out.cv = smt_stats + 2 * G;
  smt_out.median = false;
  series_kernel<<<grid_for(G), block, 0, st>>>(smt, G, V, smt_out);
  HIO_CUDA_TRY_LAUNCH();
  if (max_lag >= 1) {
    acf_kernel<<<grid_for(G * max_lag), block, 0, st>>>(sm, G, T, max_lag, sm_stats, sm_stats + G, acf);
    HIO_CUDA_TRY_LAUNCH();
  }
  if (spectral) {
    HIO_CUFFT_TRY(cufftSetStream(plan, st));
    HIO_CUFFT_TRY(cufftExecD2Z(plan, x.ptr, spectrum.ptr));
    spectral_kernel<<<grid_for(G * V), block, 0, st>>>(spectrum.ptr, G * V, T, col_sd, period, share);
    HIO_CUDA_TRY_LAUNCH();
  } else if (lay.spectral) {
    HIO_CUDA_TRY(cudaMemsetAsync(period, 0, G * V * sizeof(double), st));
    HIO_CUDA_TRY(cudaMemsetAsync(share, 0, G * V * sizeof(double), st));
  }

  final_inputs in{};
  in.R = R;
  in.S = S;
  in.T = T;
  in.V = V;
  in.max_lag = max_lag;
  in.features = F;
  in.per_species = lay.per_species();
  in.spectral = lay.spectral;
  in.sm = sm;
  in.sm_mean = sm_stats;
  in.sm_sd = sm_stats + G;
  in.sm_burstiness = sm_stats + 2 * G;
  in.sm_skew = sm_stats + 3 * G;
  in.sm_cv = sm_stats + 4 * G;
  in.smt_sd = smt_stats;
  in.smt_burstiness = smt_stats + G;
  in.smt_cv = smt_stats + 2 * G;
  in.acf = acf;
  in.tp = tp;
  in.vx = vx;
  in.period = period;
  in.share = share;
  in.tp_corr = tp_corr;
  in.vx_corr = vx_corr;
  species_kernel<<<grid_for(G), block, 0, st>>>(in, features);
  HIO_CUDA_TRY_LAUNCH();
  if (P > 0) {
    pair_final_kernel<<<grid_for(R * P), block, 0, st>>>(in, features);
    HIO_CUDA_TRY_LAUNCH();
  }
  HIO_CUDA_TRY(cudaMemcpyAsync(out.ptr, features, F * R * sizeof(double), cudaMemcpyDeviceToHost, st));
  HIO_CUDA_TRY(cudaMemcpyAsync(host_flag.ptr, flag.ptr, sizeof(int), cudaMemcpyDeviceToHost, st));
  HIO_CUDA_TRY(cudaEventRecord(stop, st));
  HIO_CUDA_TRY(cudaEventSynchronize(stop));
  float ms = 0;
  HIO_CUDA_TRY(cudaEventElapsedTime(&ms, start, stop));
  last_ms = ms;
  if (*host_flag.ptr)
    return make_error(errc::non_finite_input, "the array holds NaN or Inf (or values whose sums overflow)");
  std::vector<double> values(out.ptr, out.ptr + F * R);
  for (double& v : values)
    if (!std::isfinite(v)) v = 0;
  return values;
}

result<std::unique_ptr<gpu_extractor>> gpu_extractor::create(const gpu_options& o) {
  const int devices = cuda_device_count();
  if (devices == 0) return make_error(errc::no_device, "no CUDA device: no driver, or cudaGetDeviceCount found none");
  if (o.device < 0 || o.device >= devices)
    return make_error(errc::no_device, "CUDA device " + std::to_string(o.device) + " does not exist (" +
                                           std::to_string(devices) + " present)");
  if (o.block_size < 64 || o.block_size > 1024 || (o.block_size & (o.block_size - 1)) != 0)
    return make_error(errc::invalid_argument, "gpu_options.block_size must be a power of two from 64 to 1024");
  auto p = std::make_unique<impl>();
  p->device = o.device;
  p->block = static_cast<unsigned>(o.block_size);
  HIO_CUDA_TRY(cudaSetDevice(o.device));
  cudaDeviceProp prop{};
  HIO_CUDA_TRY(cudaGetDeviceProperties(&prop, o.device));
  p->name = prop.name;
  HIO_CUDA_TRY(cudaStreamCreateWithFlags(&p->stream, cudaStreamNonBlocking));
  HIO_CUDA_TRY(cudaEventCreate(&p->start));
  HIO_CUDA_TRY(cudaEventCreate(&p->stop));
  return std::unique_ptr<gpu_extractor>(new gpu_extractor(std::move(p)));
}

gpu_extractor::gpu_extractor(std::unique_ptr<impl> p) : impl_(std::move(p)) {}
gpu_extractor::~gpu_extractor() = default;

result<std::vector<realization_features>> gpu_extractor::extract(const npy_array& a, const options& o, cuda_stream stream) {
  if (o.definitions != feature_definitions::hio)
    return make_error(errc::invalid_argument, "the GPU kernels implement only the hio feature set; use the CPU "
                                              "extractor for the harmonicpe definitions");
  auto names = feature_names(a.species, o);
  if (!names) return names.error();
  if (a.timepoints == 0 || a.voxels == 0 || a.species == 0 || a.realizations == 0 ||
      a.payload.size() != a.element_count() * item_size(a.type))
    return make_error(errc::invalid_argument, "the array is empty or its payload does not match its shape");
  HIO_CUDA_TRY(cudaSetDevice(impl_->device));
  const detail::layout lay{a.species, o.spectral};
  auto values = impl_->run(a, lay, stream ? stream : impl_->stream);
  if (!values) return values.error();
  auto shared_names = std::make_shared<const std::vector<std::string>>(std::move(*names));
  const std::size_t F = lay.total();
  std::vector<realization_features> out;
  out.reserve(a.realizations);
  for (std::size_t r = 0; r < a.realizations; ++r)
    out.push_back(realization_features{shared_names, std::vector<double>(values->begin() + static_cast<std::ptrdiff_t>(r * F),
                                                                        values->begin() + static_cast<std::ptrdiff_t>((r + 1) * F))});
  return out;
}

double gpu_extractor::last_device_ms() const noexcept { return impl_->last_ms; }
std::string gpu_extractor::device_name() const { return impl_->name; }

result<gpu_ceilings> gpu_extractor::measure_ceilings(std::size_t bytes, int runs) {
  if (bytes == 0 || runs < 1) return make_error(errc::invalid_argument, "measure_ceilings needs bytes > 0 and runs > 0");
  HIO_CUDA_TRY(cudaSetDevice(impl_->device));
  host_array<unsigned char> host;
  device_array<unsigned char> a, b;
  struct cleanup {
    host_array<unsigned char>& h;
    device_array<unsigned char>& x;
    device_array<unsigned char>& y;
    ~cleanup() {
      h.release();
      x.release();
      y.release();
    }
  } guard{host, a, b};
  if (auto e = host.reserve(bytes)) return *e;
  if (auto e = a.reserve(bytes)) return *e;
  if (auto e = b.reserve(bytes)) return *e;
  std::fill(host.ptr, host.ptr + bytes, static_cast<unsigned char>(1));
  cudaStream_t st = impl_->stream;
  auto time_copy = [&](void* dst, const void* src, cudaMemcpyKind kind, double& ms_out) -> status {
    HIO_CUDA_TRY(cudaEventRecord(impl_->start, st));
    HIO_CUDA_TRY(cudaMemcpyAsync(dst, src, bytes, kind, st));
    HIO_CUDA_TRY(cudaEventRecord(impl_->stop, st));
    HIO_CUDA_TRY(cudaEventSynchronize(impl_->stop));
    float ms = 0;
    HIO_CUDA_TRY(cudaEventElapsedTime(&ms, impl_->start, impl_->stop));
    ms_out = ms;
    return std::nullopt;
  };
  std::vector<double> h2d, d2d;
  for (int i = 0; i < runs + 3; ++i) {
    double ms = 0;
    if (auto e = time_copy(a.ptr, host.ptr, cudaMemcpyHostToDevice, ms)) return *e;
    if (i >= 3) h2d.push_back(ms);
    if (auto e = time_copy(b.ptr, a.ptr, cudaMemcpyDeviceToDevice, ms)) return *e;
    if (i >= 3) d2d.push_back(ms);
  }
  gpu_ceilings c;
  c.device_name = impl_->name;
  const double gb = static_cast<double>(bytes) / 1e9;
  c.host_to_device_gbps = gb / (median_of(h2d) / 1e3);
  c.device_memory_gbps = 2 * gb / (median_of(d2d) / 1e3);
  return c;
}

}  // namespace hio::features
