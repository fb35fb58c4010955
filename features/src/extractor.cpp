// CPU reference implementation of the feature set (docs/features.md). One realization is read once, a
// few rows at a time, into a transposed float64 copy Y[s][v][t]; per-timepoint statistics come from the
// rows, per-voxel statistics, medians and FFTs from the contiguous columns of Y.

#include <hio/features/features.hpp>

#include "detail/element.hpp"
#include "detail/layout.hpp"

#include <fftw3.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <map>
#include <mutex>

namespace hio::features {
namespace {

using detail::layout;

// FFTW's planner is not thread-safe (execution is): every plan is made and destroyed under this lock.
std::mutex& fftw_planner_mutex() {
  static std::mutex m;
  return m;
}

struct fftw_deleter {
  void operator()(void* p) const noexcept { fftw_free(p); }
};
template <class T>
using fftw_ptr = std::unique_ptr<T[], fftw_deleter>;
template <class T>
fftw_ptr<T> fftw_array(std::size_t n) {
  return fftw_ptr<T>(static_cast<T*>(fftw_malloc(sizeof(T) * std::max<std::size_t>(n, 1))));
}

// Smallest 2^a 3^b 5^c 7^d >= n: sizes FFTW transforms fastest.
std::size_t fast_fft_size(std::size_t n) {
  for (std::size_t m = std::max<std::size_t>(n, 1);; ++m) {
    std::size_t r = m;
    for (std::size_t f : {2, 3, 5, 7})
      while (r % f == 0) r /= f;
    if (r == 1) return m;
  }
}

// The FFTs for one series length T, with the arrays they were planned on.
class fft_plans {
 public:
  fft_plans(std::size_t t, unsigned flags)
      : t_(t), acf_len_(fast_fft_size(2 * t)), series_(fftw_array<double>(t)), spectrum_(fftw_array<fftw_complex>(t / 2 + 1)),
        acf_(fftw_array<double>(acf_len_)), acf_spectrum_(fftw_array<fftw_complex>(acf_len_ / 2 + 1)) {
    std::lock_guard lock(fftw_planner_mutex());
    const int n = static_cast<int>(t), l = static_cast<int>(acf_len_);
    voxel_ = fftw_plan_dft_r2c_1d(n, series_.get(), spectrum_.get(), flags);
    acf_forward_ = fftw_plan_dft_r2c_1d(l, acf_.get(), acf_spectrum_.get(), flags);
    acf_backward_ = fftw_plan_dft_c2r_1d(l, acf_spectrum_.get(), acf_.get(), flags);
  }
  ~fft_plans() {
    std::lock_guard lock(fftw_planner_mutex());
    fftw_destroy_plan(voxel_);
    fftw_destroy_plan(acf_forward_);
    fftw_destroy_plan(acf_backward_);
  }
  fft_plans(const fft_plans&) = delete;
  fft_plans& operator=(const fft_plans&) = delete;

  // Real FFT of series() (T values) into spectrum() (T/2 + 1 bins).
  double* series() { return series_.get(); }
  const fftw_complex* spectrum() const { return spectrum_.get(); }
  void transform_series() { fftw_execute(voxel_); }

  // sum_{i} x[i] x[i+k] for k = 0 .. max_lag, by zero-padded FFT (max_lag < T).
  void autocovariance(const double* x, std::size_t max_lag, double* out) {
    std::fill(acf_.get(), acf_.get() + acf_len_, 0.0);
    std::copy(x, x + t_, acf_.get());
    fftw_execute(acf_forward_);
    for (std::size_t k = 0; k <= acf_len_ / 2; ++k) {
      const double p = acf_spectrum_[k][0] * acf_spectrum_[k][0] + acf_spectrum_[k][1] * acf_spectrum_[k][1];
      acf_spectrum_[k][0] = p;
      acf_spectrum_[k][1] = 0;
    }
    fftw_execute(acf_backward_);
    const double scale = 1.0 / static_cast<double>(acf_len_);
    for (std::size_t k = 0; k <= max_lag; ++k) out[k] = acf_[k] * scale;
  }

 private:
  std::size_t t_, acf_len_;
  fftw_ptr<double> series_;
  fftw_ptr<fftw_complex> spectrum_;
  fftw_ptr<double> acf_;
  fftw_ptr<fftw_complex> acf_spectrum_;
  fftw_plan voxel_ = nullptr, acf_forward_ = nullptr, acf_backward_ = nullptr;
};

// The hot loops run on four lanes held in two 16-byte vectors (GCC/Clang vector extension; SSE2 on
// baseline x86-64). Four independent accumulators also break the add latency chain; the summation
// order is fixed, so results do not depend on the instruction set.
typedef double lane_pair __attribute__((vector_size(16)));

inline lane_pair load_pair(const double* p) {
  lane_pair v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
inline double lane_sum(lane_pair a, lane_pair b) { return (a[0] + a[1]) + (b[0] + b[1]); }

inline double squared_deviations(const double* x, std::size_t n, double mean) {
  lane_pair a = {0, 0}, b = {0, 0};
  std::size_t i = 0;
  for (; i + 4 <= n; i += 4) {
    const lane_pair d0 = load_pair(x + i) - mean, d1 = load_pair(x + i + 2) - mean;
    a += d0 * d0;
    b += d1 * d1;
  }
  for (; i < n; ++i) a[0] += (x[i] - mean) * (x[i] - mean);
  return lane_sum(a, b);
}

inline double cross_deviations(const double* x, const double* y, std::size_t n, double mx, double my) {
  lane_pair a = {0, 0}, b = {0, 0};
  std::size_t i = 0;
  for (; i + 4 <= n; i += 4) {
    a += (load_pair(x + i) - mx) * (load_pair(y + i) - my);
    b += (load_pair(x + i + 2) - mx) * (load_pair(y + i + 2) - my);
  }
  for (; i < n; ++i) a[0] += (x[i] - mx) * (y[i] - my);
  return lane_sum(a, b);
}

inline double sum(const double* x, std::size_t n) {
  lane_pair a = {0, 0}, b = {0, 0};
  std::size_t i = 0;
  for (; i + 4 <= n; i += 4) {
    a += load_pair(x + i);
    b += load_pair(x + i + 2);
  }
  for (; i < n; ++i) a[0] += x[i];
  return lane_sum(a, b);
}

struct scan_result {
  double sum = 0, lo = 0, hi = 0;
  bool integral = false;  // every value is an integer (set by the caller)
};

// One pass: sum, minimum, maximum. A non-finite sum means a NaN or Inf among the values (or overflow);
// lo and hi are then meaningless.
inline scan_result scan(const double* x, std::size_t n) {
  lane_pair a = {0, 0}, b = {0, 0}, lo = {x[0], x[0]}, hi = lo, lo2 = lo, hi2 = lo;
  std::size_t i = 0;
  for (; i + 4 <= n; i += 4) {
    const lane_pair v = load_pair(x + i), w = load_pair(x + i + 2);
    a += v;
    b += w;
    lo = v < lo ? v : lo;
    hi = v > hi ? v : hi;
    lo2 = w < lo2 ? w : lo2;
    hi2 = w > hi2 ? w : hi2;
  }
  lo = lo2 < lo ? lo2 : lo;
  hi = hi2 > hi ? hi2 : hi;
  scan_result r;
  r.lo = std::min(lo[0], lo[1]);
  r.hi = std::max(hi[0], hi[1]);
  for (; i < n; ++i) {
    a[0] += x[i];
    r.lo = std::min(r.lo, x[i]);
    r.hi = std::max(r.hi, x[i]);
  }
  r.sum = lane_sum(a, b);
  return r;
}

// Whether every value is an integer: (v + 1.5 * 2^52) - 1.5 * 2^52 rounds |v| < 2^51 to an integer.
inline bool all_integral(const double* x, std::size_t n) {
  constexpr double m = 6755399441055744.0;
  typedef std::int64_t mask_pair __attribute__((vector_size(16)));
  mask_pair f0 = {0, 0}, f1 = {0, 0};
  std::size_t i = 0;
  for (; i + 4 <= n; i += 4) {
    const lane_pair v = load_pair(x + i), w = load_pair(x + i + 2);
    f0 |= ((v + m) - m) != v;
    f1 |= ((w + m) - m) != w;
  }
  f0 |= f1;
  bool ok = f0[0] == 0 && f0[1] == 0;
  for (; i < n; ++i) ok &= ((x[i] + m) - m) == x[i];
  return ok;
}

// Exact medians without sorting: a histogram over [lo, hi] finds the bins holding the two middle ranks;
// only those bins' values are selected. Integers in a small range need the histogram alone. Bins are a
// monotone function of the value, so ranks are preserved.
class median_finder {
 public:
  void reserve(std::size_t n) {
    if (values_.size() < n + 1) values_.resize(n + 1);
  }

  // Median of x[0..n), n >= 1, lo < hi (a constant series needs no median).
  double operator()(const double* x, std::size_t n, const scan_result& s) {
    const std::size_t k0 = (n - 1) / 2, k1 = n / 2;  // ranks of the middle values (equal for odd n)
    if (n < 48) return select(x, n, k0, k1, false);
    if (s.integral && s.lo > -0x1p50 && s.hi < 0x1p50 && s.hi - s.lo < static_cast<double>(4 * n + 256)) {
      const std::size_t bins = static_cast<std::size_t>(s.hi - s.lo) + 1;
      // int32 conversions are single instructions (size_t ones are not); bins < 2^31 here.
      const double lo = s.lo;
      count(x, n, bins, [lo](double v) { return static_cast<std::uint32_t>(static_cast<std::int32_t>(v - lo)); },
            [lo](lane_pair v) { return __builtin_convertvector(v - lo, index_pair); });
      std::size_t b0, b1, below;
      find_bins(k0, k1, b0, b1, below);
      return ((s.lo + static_cast<double>(b0)) + (s.lo + static_cast<double>(b1))) / 2;
    }
    const std::size_t bins = std::clamp<std::size_t>(n / 4, 16, 2048);
    const double scale = static_cast<double>(bins) / (s.hi - s.lo);
    if (!std::isfinite(scale) || scale <= 0) return select(x, n, k0, k1, false);
    const double top = static_cast<double>(bins - 1);
    const auto bin = [lo = s.lo, scale, top](double v) {
      return static_cast<std::uint32_t>(static_cast<std::int32_t>(std::min((v - lo) * scale, top)));
    };
    const auto bin2 = [lo = s.lo, scale, top](lane_pair v) {
      const lane_pair b = (v - lo) * scale;
      return __builtin_convertvector(b < top ? b : top, index_pair);
    };
    count(x, n, bins, bin, bin2);
    std::size_t b0, b1, below;
    find_bins(k0, k1, b0, b1, below);
    // Keep the values of bins b0 .. b1: (b - b0) as unsigned <= b1 - b0, two values per conversion.
    const std::uint32_t first = static_cast<std::uint32_t>(b0), width = static_cast<std::uint32_t>(b1 - b0);
    std::size_t m = 0, i = 0;
    for (; i + 2 <= n; i += 2) {
      const index_pair b = bin2(load_pair(x + i));
      values_[m] = x[i];
      m += static_cast<std::uint32_t>(b[0]) - first <= width;
      values_[m] = x[i + 1];
      m += static_cast<std::uint32_t>(b[1]) - first <= width;
    }
    for (; i < n; ++i) {
      const std::uint32_t b = bin(x[i]);
      values_[m] = x[i];
      m += b >= b0 && b <= b1;
    }
    return select(values_.data(), m, k0 - below, k1 - below, true);
  }

 private:
  typedef std::int32_t index_pair __attribute__((vector_size(8)));

  // bin maps one value to its bin, bin2 two values at once (packed conversions); both agree.
  template <class Bin, class Bin2>
  void count(const double* x, std::size_t n, std::size_t bins, Bin bin, Bin2 bin2) {
    // Four interleaved histograms: repeated values would otherwise serialise on one counter.
    counts_.assign(4 * bins, 0);
    std::uint32_t* c0 = counts_.data();
    std::uint32_t* c1 = c0 + bins;
    std::uint32_t* c2 = c1 + bins;
    std::uint32_t* c3 = c2 + bins;
    std::size_t i = 0;
    for (; i + 4 <= n; i += 4) {
      const index_pair b01 = bin2(load_pair(x + i)), b23 = bin2(load_pair(x + i + 2));
      ++c0[static_cast<std::uint32_t>(b01[0])];
      ++c1[static_cast<std::uint32_t>(b01[1])];
      ++c2[static_cast<std::uint32_t>(b23[0])];
      ++c3[static_cast<std::uint32_t>(b23[1])];
    }
    for (; i < n; ++i) ++c0[bin(x[i])];
    for (std::size_t b = 0; b < bins; ++b) c0[b] += c1[b] + c2[b] + c3[b];
  }

  void find_bins(std::size_t k0, std::size_t k1, std::size_t& b0, std::size_t& b1, std::size_t& below) {
    std::size_t cum = 0, b = 0;
    while (cum + counts_[b] <= k0) cum += counts_[b++];
    b0 = b;
    below = cum;
    while (cum + counts_[b] <= k1) cum += counts_[b++];
    b1 = b;
  }

  // Values of ranks r0 <= r1 (r1 <= r0 + 1) of v[0..n), averaged. Copies v into values_ unless in_place.
  double select(const double* v, std::size_t n, std::size_t r0, std::size_t r1, bool in_place) {
    double* w = values_.data();
    if (!in_place) std::copy(v, v + n, w);
    std::nth_element(w, w + r1, w + n);
    const double upper = w[r1];
    const double lower = r0 == r1 ? upper : *std::max_element(w, w + r1);
    return (lower + upper) / 2;
  }

  std::vector<double> values_;
  std::vector<std::uint32_t> counts_;
};

struct moments {
  double sum = 0;
  double mean = 0;
  double sd = 0;      // population standard deviation; exactly 0 for a constant series
  double median = 0;
};

// A constant series (min == max) has mean = its value and sd = 0 exactly, so that degenerate features
// do not depend on rounding.
inline moments describe(const double* x, std::size_t n, median_finder* median, bool integral) {
  moments m;
  scan_result s = scan(x, n);
  s.integral = integral;
  m.sum = s.sum;
  if (!std::isfinite(s.sum)) return m;  // the caller refuses the realization
  if (s.lo == s.hi) {
    m.mean = m.median = x[0];
    return m;
  }
  const double count = static_cast<double>(n);
  m.mean = m.sum / count;
  m.sd = std::sqrt(squared_deviations(x, n, m.mean) / count);
  if (median) m.median = (*median)(x, n, s);
  return m;
}

inline double burstiness(const moments& m) { return m.sd + m.mean == 0 ? 0.0 : (m.sd - m.mean) / (m.sd + m.mean); }
inline double skew(const moments& m) { return m.sd == 0 ? 0.0 : 3 * (m.mean - m.median) / m.sd; }
inline double cv(const moments& m) { return m.mean == 0 ? 0.0 : m.sd / m.mean; }

inline double correlation(const double* x, const double* y, std::size_t n, const moments& mx, const moments& my) {
  if (mx.sd == 0 || my.sd == 0) return 0;
  const double r = cross_deviations(x, y, n, mx.mean, my.mean) / (static_cast<double>(n) * mx.sd * my.sd);
  return std::clamp(r, -1.0, 1.0);
}

struct summary {
  double norm = 0, mean = 0, var = 0;
};
inline summary summarise(const double* x, std::size_t n) {
  summary s;
  double squares = 0;
  for (std::size_t i = 0; i < n; ++i) squares += x[i] * x[i];
  s.norm = std::sqrt(squares);
  s.mean = sum(x, n) / static_cast<double>(n);
  s.var = squared_deviations(x, n, s.mean) / static_cast<double>(n);
  return s;
}

// Reads `count` rows [r][s][t0 .. t0+count) of V values as doubles into out (count x V).
void load_rows(const npy_array& a, std::size_t r, std::size_t s, std::size_t t0, std::size_t count, double* out) {
  const std::size_t v_count = a.voxels;
  if (!a.fortran_order && detail::native_order(a)) {
    const std::size_t first = ((r * a.species + s) * a.timepoints + t0) * v_count;
    const std::size_t n = count * v_count;
    const std::byte* p = a.payload.data() + first * item_size(a.type);
    switch (a.type) {
      case dtype::f8: std::memcpy(out, p, n * sizeof(double)); return;
      case dtype::f4:
        for (std::size_t i = 0; i < n; ++i) {
          float f;
          std::memcpy(&f, p + 4 * i, 4);
          out[i] = f;
        }
        return;
      case dtype::i4:
        for (std::size_t i = 0; i < n; ++i) {
          std::int32_t k;
          std::memcpy(&k, p + 4 * i, 4);
          out[i] = k;
        }
        return;
      default:
        for (std::size_t i = 0; i < n; ++i) out[i] = detail::load_element(p + i * item_size(a.type), a.type, false);
        return;
    }
  }
  for (std::size_t i = 0; i < count; ++i)
    for (std::size_t v = 0; v < v_count; ++v) out[i * v_count + v] = a.at(r, s, t0 + i, v);
}

// Reads voxels [v0, v0+count) of [r][s] as `count` contiguous columns of T doubles (out: count x T),
// straight from the payload's native layout: the realization is never transposed as a whole.
void load_cols(const npy_array& a, std::size_t r, std::size_t s, std::size_t v0, std::size_t count, double* out) {
  const std::size_t T = a.timepoints, V = a.voxels;
  if (!a.fortran_order && detail::native_order(a) && (a.type == dtype::f4 || a.type == dtype::f8 || a.type == dtype::i4)) {
    const std::size_t first = (r * a.species + s) * T * V + v0;
    const std::byte* p = a.payload.data() + first * item_size(a.type);
    const auto gather = [&](auto tag) {
      using E = decltype(tag);
      const std::size_t row_bytes = V * sizeof(E);
      std::size_t t = 0;
      for (; t + 4 <= T; t += 4) {
        const std::byte* q = p + t * row_bytes;
        for (std::size_t j = 0; j < count; ++j) {
          E e0, e1, e2, e3;
          std::memcpy(&e0, q + j * sizeof(E), sizeof(E));
          std::memcpy(&e1, q + row_bytes + j * sizeof(E), sizeof(E));
          std::memcpy(&e2, q + 2 * row_bytes + j * sizeof(E), sizeof(E));
          std::memcpy(&e3, q + 3 * row_bytes + j * sizeof(E), sizeof(E));
          double* o = out + j * T + t;
          o[0] = static_cast<double>(e0);
          o[1] = static_cast<double>(e1);
          o[2] = static_cast<double>(e2);
          o[3] = static_cast<double>(e3);
        }
      }
      for (; t < T; ++t)
        for (std::size_t j = 0; j < count; ++j) {
          E e;
          std::memcpy(&e, p + t * row_bytes + j * sizeof(E), sizeof(E));
          out[j * T + t] = static_cast<double>(e);
        }
    };
    switch (a.type) {
      case dtype::f4: gather(float{}); return;
      case dtype::f8: gather(double{}); return;
      default: gather(std::int32_t{}); return;
    }
  }
  for (std::size_t j = 0; j < count; ++j)
    for (std::size_t t = 0; t < T; ++t) out[j * T + t] = a.at(r, s, t, v0 + j);
}

}  // namespace

// Voxels gathered per column pass: 16 float32 values are one 64-byte line of each input row.
constexpr std::size_t col_block = 16;

struct extractor::impl {
  extractor_options options;
  std::map<std::size_t, std::unique_ptr<fft_plans>> plans;  // by series length T

  // Scratch, grown to the largest realization seen.
  std::vector<double> cols;      // [S][col_block][T] columns being processed
  std::vector<double> rows;      // [S][block][V] rows being read
  median_finder median;
  std::vector<moments> row_m;    // [S][block] moments of the rows being read
  std::vector<moments> col_m;    // [S][V]
  std::vector<double> sm, smt;   // [S][T], [S][V]
  std::vector<double> tp, vx;    // [S][3][T], [S][3][V]: burstiness, skew, cv lists
  std::vector<double> tp_corr;   // [P][T]
  std::vector<double> vx_corr;   // [P][V]
  std::vector<double> period, share, power, acov;

  fft_plans& plans_for(std::size_t t) {
    auto& p = plans[t];
    if (!p) p = std::make_unique<fft_plans>(t, options.measure_plans ? FFTW_MEASURE : FFTW_ESTIMATE);
    return *p;
  }

  result<std::vector<double>> realization(const npy_array& a, std::size_t r, const layout& lay);
};

result<std::vector<double>> extractor::impl::realization(const npy_array& a, std::size_t r, const layout& lay) {
  const std::size_t S = a.species, T = a.timepoints, V = a.voxels;
  constexpr std::size_t block = 32;  // rows per read
  const std::size_t b = std::min(block, T);

  // Medians of integers take a faster path. Integer dtypes hold integers; float arrays are checked block
  // by block as they are read, so integral[s] covers every row read so far of species s.
  const bool integer_type = a.type != dtype::f4 && a.type != dtype::f8;
  std::vector<char> integral(S, integer_type ? 1 : 0);

  // Rows: per-timepoint statistics, Sm, pair correlations across voxels; fill Y.
  for (std::size_t t0 = 0; t0 < T; t0 += block) {
    const std::size_t n = std::min(block, T - t0);
    for (std::size_t s = 0; s < S; ++s) {
      double* rb = rows.data() + s * b * V;
      load_rows(a, r, s, t0, n, rb);
      if (!integer_type) integral[s] = (t0 == 0 || integral[s]) && all_integral(rb, n * V);
      for (std::size_t i = 0; i < n; ++i) {
        const double* row = rb + i * V;
        const moments m = describe(row, V, &median, integral[s]);
        row_m[s * b + i] = m;
        const std::size_t t = t0 + i;
        sm[s * T + t] = m.sum;
        tp[(s * 3 + 0) * T + t] = burstiness(m);
        tp[(s * 3 + 1) * T + t] = skew(m);
        tp[(s * 3 + 2) * T + t] = cv(m);
      }
    }
    for (std::size_t s = 0, p = 0; s < S; ++s)
      for (std::size_t u = s + 1; u < S; ++u, ++p)
        for (std::size_t i = 0; i < n; ++i)
          tp_corr[p * T + t0 + i] = correlation(rows.data() + (s * b + i) * V, rows.data() + (u * b + i) * V, V,
                                                row_m[s * b + i], row_m[u * b + i]);
  }
  for (std::size_t i = 0; i < S * T; ++i)
    if (!std::isfinite(sm[i]))
      return make_error(errc::non_finite_input, "the array holds NaN or Inf (or values whose sums overflow) in realization " +
                                                    std::to_string(r));

  // Columns: per-voxel statistics, SmT, spectra, pair correlations across time.
  fft_plans* fft = lay.spectral && T >= 2 ? &plans_for(T) : nullptr;
  const std::size_t bins = T / 2;  // frequencies k = 1 .. T/2
  for (std::size_t v0 = 0; v0 < V; v0 += col_block) {
    const std::size_t nv = std::min(col_block, V - v0);
    for (std::size_t s = 0; s < S; ++s) load_cols(a, r, s, v0, nv, cols.data() + s * col_block * T);
    for (std::size_t s = 0; s < S; ++s) {
      for (std::size_t v = v0; v < v0 + nv; ++v) {
        const double* col = cols.data() + (s * col_block + (v - v0)) * T;
        const moments m = describe(col, T, &median, integral[s]);
        col_m[s * V + v] = m;
        smt[s * V + v] = m.sum;
        vx[(s * 3 + 0) * V + v] = burstiness(m);
        vx[(s * 3 + 1) * V + v] = skew(m);
        vx[(s * 3 + 2) * V + v] = cv(m);
        if (!lay.spectral) continue;
        period[s * V + v] = share[s * V + v] = 0;
        if (!fft || m.sd == 0) continue;
        double* in = fft->series();
        for (std::size_t t = 0; t < T; ++t) in[t] = col[t] - m.mean;
        fft->transform_series();
        const fftw_complex* X = fft->spectrum();
        // Four running totals and maxima (fixed order: deterministic) instead of one latency chain.
        double t4[4] = {0, 0, 0, 0}, p4[4] = {0, 0, 0, 0};
        double* pw = power.data();
        std::size_t k = 1;
        for (; k + 4 <= bins + 1; k += 4)
          for (std::size_t j = 0; j < 4; ++j) {
            const double p = X[k + j][0] * X[k + j][0] + X[k + j][1] * X[k + j][1];
            pw[k + j] = p;
            t4[j] += p;
            p4[j] = p > p4[j] ? p : p4[j];
          }
        for (; k <= bins; ++k) {
          const double p = X[k][0] * X[k][0] + X[k][1] * X[k][1];
          pw[k] = p;
          t4[0] += p;
          p4[0] = p > p4[0] ? p : p4[0];
        }
        const double total = (t4[0] + t4[1]) + (t4[2] + t4[3]);
        const double peak = std::max(std::max(p4[0], p4[1]), std::max(p4[2], p4[3]));
        if (total == 0) continue;
        const double threshold = (1 - detail::peak_tie_tolerance) * peak;
        std::size_t k_peak = 1;
        while (pw[k_peak] < threshold) ++k_peak;
        period[s * V + v] = static_cast<double>(T) / static_cast<double>(k_peak);
        share[s * V + v] = peak / total;
      }
    }
    for (std::size_t s = 0, p = 0; s < S; ++s)
      for (std::size_t u = s + 1; u < S; ++u, ++p)
        for (std::size_t v = v0; v < v0 + nv; ++v)
          vx_corr[p * V + v] = correlation(cols.data() + (s * col_block + (v - v0)) * T,
                                           cols.data() + (u * col_block + (v - v0)) * T, T, col_m[s * V + v], col_m[u * V + v]);
  }

  std::vector<double> out(lay.total(), 0.0);
  std::vector<moments> sm_m(S);
  for (std::size_t s = 0; s < S; ++s) {
    double* f = out.data() + lay.species_offset(s);
    const double* sms = sm.data() + s * T;
    const moments ms = describe(sms, T, &median, false);
    const moments mt = describe(smt.data() + s * V, V, nullptr, false);
    sm_m[s] = ms;
    f[detail::f_mean_sm] = ms.mean;
    f[detail::f_burstiness_sm] = burstiness(ms);
    f[detail::f_burstiness_smt] = burstiness(mt);
    f[detail::f_skew_sm] = skew(ms);
    f[detail::f_cv_sm] = cv(ms);
    f[detail::f_cv_smt] = cv(mt);
    f[detail::f_fft_norm_sm] = static_cast<double>(T) * ms.sd;  // Parseval: ||FFT(x - mean)|| = n sd
    f[detail::f_fft_norm_smt] = static_cast<double>(V) * mt.sd;
    const std::size_t max_lag = T / 2 >= 1 ? T / 2 - 1 : 0;
    if (max_lag >= 1 && ms.sd != 0) {
      std::vector<double>& centered = power;  // reused: T values
      for (std::size_t t = 0; t < T; ++t) centered[t] = sms[t] - ms.mean;
      plans_for(T).autocovariance(centered.data(), max_lag, acov.data());
      const double c0 = squared_deviations(sms, T, ms.mean);
      double squares = 0;
      for (std::size_t k = 1; k <= max_lag; ++k) squares += (acov[k] / c0) * (acov[k] / c0);
      f[detail::f_acf_norm_sm] = std::sqrt(squares);
    }
    for (int stat = 0; stat < 3; ++stat) {
      const summary st = summarise(tp.data() + (s * 3 + static_cast<std::size_t>(stat)) * T, T);
      const summary sv = summarise(vx.data() + (s * 3 + static_cast<std::size_t>(stat)) * V, V);
      f[detail::f_tp_first + detail::list_offset(stat, detail::l_norm)] = st.norm;
      f[detail::f_tp_first + detail::list_offset(stat, detail::l_mean)] = st.mean;
      f[detail::f_tp_first + detail::list_offset(stat, detail::l_var)] = st.var;
      f[detail::f_vx_first + detail::list_offset(stat, detail::l_norm)] = sv.norm;
      f[detail::f_vx_first + detail::list_offset(stat, detail::l_mean)] = sv.mean;
      f[detail::f_vx_first + detail::list_offset(stat, detail::l_var)] = sv.var;
    }
    if (lay.spectral) {
      const summary per = summarise(period.data() + s * V, V);
      const summary sh = summarise(share.data() + s * V, V);
      std::size_t peaked = 0;
      for (std::size_t v = 0; v < V; ++v) peaked += share[s * V + v] > detail::peaked_share;
      f[detail::f_spec_period_mean] = per.mean;
      f[detail::f_spec_period_std] = std::sqrt(per.var);
      f[detail::f_spec_share_mean] = sh.mean;
      f[detail::f_spec_peaked_fraction] = static_cast<double>(peaked) / static_cast<double>(V);
    }
  }
  for (std::size_t s = 0, p = 0; s < S; ++s)
    for (std::size_t u = s + 1; u < S; ++u, ++p) {
      double* f = out.data() + lay.pair_offset(p);
      f[detail::f_corr_sm] = correlation(sm.data() + s * T, sm.data() + u * T, T, sm_m[s], sm_m[u]);
      const summary st = summarise(tp_corr.data() + p * T, T);
      const summary sv = summarise(vx_corr.data() + p * V, V);
      f[detail::f_tp_corr_norm] = st.norm;
      f[detail::f_tp_corr_var] = st.var;
      f[detail::f_vx_corr_norm] = sv.norm;
      f[detail::f_vx_corr_var] = sv.var;
    }
  for (double& x : out)
    if (!std::isfinite(x)) x = 0;
  return out;
}

extractor::extractor(extractor_options o) : impl_(std::make_unique<impl>()) { impl_->options = o; }
extractor::~extractor() = default;
extractor::extractor(extractor&&) noexcept = default;
extractor& extractor::operator=(extractor&&) noexcept = default;

result<std::vector<realization_features>> extractor::extract(const npy_array& a, const options& o) {
  auto names = feature_names(a.species, o);
  if (!names) return names.error();
  const std::size_t S = a.species, T = a.timepoints, V = a.voxels;
  if (T == 0 || V == 0 || S == 0 || a.realizations == 0 || a.payload.size() != a.element_count() * item_size(a.type))
    return make_error(errc::invalid_argument, "the array is empty or its payload does not match its shape");
  const layout lay{S, o.spectral};
  const std::size_t P = lay.pairs(), b = std::min<std::size_t>(32, T);
  impl& m = *impl_;
  const auto grow = [](auto& v, std::size_t n) {
    if (v.size() < n) v.resize(n);
  };
  grow(m.cols, S * col_block * T);
  grow(m.rows, S * b * V);
  m.median.reserve(std::max(T, V));
  grow(m.row_m, S * b);
  grow(m.col_m, S * V);
  grow(m.sm, S * T);
  grow(m.smt, S * V);
  grow(m.tp, S * 3 * T);
  grow(m.vx, S * 3 * V);
  grow(m.tp_corr, P * T);
  grow(m.vx_corr, P * V);
  grow(m.period, S * V);
  grow(m.share, S * V);
  grow(m.power, T + 1);
  grow(m.acov, T / 2 + 1);

  auto shared_names = std::make_shared<const std::vector<std::string>>(std::move(*names));
  std::vector<realization_features> out;
  out.reserve(a.realizations);
  for (std::size_t r = 0; r < a.realizations; ++r) {
    auto values = m.realization(a, r, lay);
    if (!values) return values.error();
    out.push_back(realization_features{shared_names, std::move(*values)});
  }
  return out;
}

result<std::vector<realization_features>> extract(const npy_array& a, const options& o) {
  extractor e;
  return e.extract(a, o);
}

}  // namespace hio::features
