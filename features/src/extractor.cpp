// CPU reference implementation of the feature set (docs/features.md). One realization is read a few rows
// at a time for the per-timepoint statistics, then 8 voxels at a time into contiguous float64 columns
// for the per-voxel statistics, medians and FFTs. The hot loops (detail/kernels.inc) are compiled twice,
// for the x86-64 baseline and for AVX2, and chosen at run time; both give bit-identical features.

#include <hio/features/features.hpp>

#include "detail/element.hpp"
#include "detail/fft_wisdom.hpp"
#include "detail/harmonicpe.hpp"
#include "detail/layout.hpp"

#include <fftw3.h>

#if defined(__SSE2__)
#include <immintrin.h>
#define HIO_KERNEL_SSE2 1
#else
#define HIO_KERNEL_SSE2 0
#endif

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <map>
#include <mutex>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

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

// The shipped wisdom is imported into FFTW's process-wide store once, before the first plan: from then
// on every plan of a covered problem (length, direction, placement, alignment) is built from it, whatever
// the planning flags. Called with the planner mutex held.
bool shipped_wisdom_imported = false;  // guarded by fftw_planner_mutex()

void import_shipped_wisdom() {
  if (shipped_wisdom_imported) return;
  shipped_wisdom_imported = true;
  // A failed import (wisdom of another FFTW version) leaves FFTW_ESTIMATE plans: slower, still deterministic.
  (void)fftw_import_wisdom_from_string(detail::shipped_fft_wisdom());
}

// How plans are made: from the shipped wisdom where it covers the problem, else FFTW_ESTIMATE (both fixed
// by the inputs alone); `measure` (extractor_options::measure_plans) times candidates where no wisdom
// applies; `patient` and `exhaustive` (the wisdom tool, hio-features-wisdom) time them more thoroughly.
enum class plan_mode { shipped, measure, patient, exhaustive };

template <class Make>
fftw_plan make_plan(plan_mode mode, Make make, bool* from_wisdom = nullptr) {
  switch (mode) {
    case plan_mode::shipped:
      if (fftw_plan p = make(FFTW_WISDOM_ONLY | FFTW_PATIENT)) {
        if (from_wisdom) *from_wisdom = true;
        return p;
      }
      return make(FFTW_ESTIMATE);
    case plan_mode::measure: return make(FFTW_MEASURE);
    case plan_mode::patient: return make(FFTW_PATIENT);
    case plan_mode::exhaustive: return make(FFTW_EXHAUSTIVE);
  }
  return make(FFTW_ESTIMATE);
}

// The FFTs for one series length T, with the arrays they were planned on (FFTW_MALLOC alignment: wisdom is
// specific to the arrays' alignment).
class fft_plans {
 public:
  fft_plans(std::size_t t, plan_mode mode)
      : t_(t), acf_len_(fast_fft_size(2 * t)), series_(fftw_array<double>(t)), spectrum_(fftw_array<fftw_complex>(t / 2 + 1)),
        acf_(fftw_array<double>(acf_len_)), acf_spectrum_(fftw_array<fftw_complex>(acf_len_ / 2 + 1)) {
    std::lock_guard lock(fftw_planner_mutex());
    if (mode == plan_mode::shipped || mode == plan_mode::measure) import_shipped_wisdom();
    const int n = static_cast<int>(t), l = static_cast<int>(acf_len_);
    double* series = series_.get();
    double* acf = acf_.get();
    fftw_complex* spectrum = spectrum_.get();
    fftw_complex* acf_spectrum = acf_spectrum_.get();
    voxel_ = make_plan(
        mode, [&](unsigned f) { return fftw_plan_dft_r2c_1d(n, series, spectrum, f); }, &voxel_from_wisdom_);
    acf_forward_ = make_plan(mode, [&](unsigned f) { return fftw_plan_dft_r2c_1d(l, acf, acf_spectrum, f); });
    acf_backward_ = make_plan(mode, [&](unsigned f) { return fftw_plan_dft_c2r_1d(l, acf_spectrum, acf, f); });
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
  bool voxel_plan_from_wisdom() const { return voxel_from_wisdom_; }
  std::string describe_voxel_plan() const {
    char* text = fftw_sprint_plan(voxel_);
    std::string out = text ? text : "";
    fftw_free(text);
    return out;
  }

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
  bool voxel_from_wisdom_ = false;
};

struct scan_result {
  double sum = 0, lo = 0, hi = 0;
  bool integral = false;  // every value is an integer (set by the caller)
};

struct moments {
  double sum = 0;
  double mean = 0;
  double sd = 0;      // population standard deviation; exactly 0 for a constant series
  double median = 0;
};

inline double burstiness(const moments& m) { return m.sd + m.mean == 0 ? 0.0 : (m.sd - m.mean) / (m.sd + m.mean); }
inline double skew(const moments& m) { return m.sd == 0 ? 0.0 : 3 * (m.mean - m.median) / m.sd; }
inline double cv(const moments& m) { return m.mean == 0 ? 0.0 : m.sd / m.mean; }

struct summary {
  double norm = 0, mean = 0, var = 0;
};

struct median_scratch {
  std::vector<double> values;         // candidates for the middle ranks
  std::vector<std::uint32_t> counts;  // four interleaved histograms
};

constexpr std::size_t row_block = 8;   // rows per block: [S][8][V] doubles stay in L1 for V = 250
constexpr std::size_t col_block = 8;  // voxels gathered per column pass: [S][8][T] doubles stay in L2 (16: 2 % slower)

// Scratch, grown to the largest realization seen.
struct scratch {
  std::vector<double> cols;      // [S][col_block][T] columns being processed
  std::vector<double> rows;      // [S][row_block][V] rows being read
  median_scratch median;
  std::vector<moments> row_m;    // [S][row_block] moments of the rows being read
  std::vector<moments> col_m;    // [S][V]
  std::vector<double> sm, smt;   // [S][T], [S][V]
  std::vector<double> tp, vx;    // [S][3][T], [S][3][V]: burstiness, skew, cv lists
  std::vector<double> tp_corr;   // [P][T]
  std::vector<double> vx_corr;   // [P][V]
  std::vector<double> period, share, power, acov;
};

namespace isa_baseline {
#define HIO_KERNEL_AVX2 0
#include "detail/kernels.inc"
#undef HIO_KERNEL_AVX2
}  // namespace isa_baseline

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define HIO_FEATURES_HAVE_AVX2 1
#pragma GCC push_options
#pragma GCC target("avx2")
namespace isa_avx2 {
#define HIO_KERNEL_AVX2 1
#include "detail/kernels.inc"
#undef HIO_KERNEL_AVX2
}  // namespace isa_avx2
#pragma GCC pop_options
#else
#define HIO_FEATURES_HAVE_AVX2 0
#endif

#if HIO_FEATURES_HAVE_AVX2
bool processor_has_avx2() {
  static const bool has = __builtin_cpu_supports("avx2");
  return has;
}
#endif

}  // namespace

struct extractor::impl {
  extractor_options options;
  std::map<std::size_t, std::unique_ptr<fft_plans>> plans;  // by series length T
  scratch work;
  detail::harmonicpe_scratch harmonicpe_work;  // feature_definitions::harmonicpe (src/harmonicpe.cpp)

  fft_plans& plans_for(std::size_t t) {
    auto& p = plans[t];
    if (!p) p = std::make_unique<fft_plans>(t, options.measure_plans ? plan_mode::measure : plan_mode::shipped);
    return *p;
  }

  result<std::vector<double>> realization(const npy_array& a, std::size_t r, const layout& lay) {
    fft_plans* fft = a.timepoints >= 2 ? &plans_for(a.timepoints) : nullptr;
#if HIO_FEATURES_HAVE_AVX2
    if (options.avx2 && processor_has_avx2()) return isa_avx2::realization(work, a, r, lay, fft);
#endif
    return isa_baseline::realization(work, a, r, lay, fft);
  }
};

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
  if (o.definitions == feature_definitions::harmonicpe) {
    auto shared_names = std::make_shared<const std::vector<std::string>>(std::move(*names));
    std::vector<realization_features> out;
    out.reserve(a.realizations);
    for (std::size_t r = 0; r < a.realizations; ++r) {
      auto values = detail::harmonicpe_realization(a, r, impl_->harmonicpe_work);
      if (!values) return values.error();
      out.push_back(realization_features{shared_names, std::move(*values)});
    }
    return out;
  }
  const layout lay{S, o.spectral};
  const std::size_t P = lay.pairs(), b = std::min(row_block, T);
  scratch& m = impl_->work;
  const auto grow = [](auto& v, std::size_t n) {
    if (v.size() < n) v.resize(n);
  };
  grow(m.cols, S * col_block * T);
  grow(m.rows, S * b * V);
  grow(m.median.values, std::max(T, V) + 4);  // + 4: the compressing store writes four values
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
    auto values = impl_->realization(a, r, lay);
    if (!values) return values.error();
    out.push_back(realization_features{shared_names, std::move(*values)});
  }
  return out;
}

result<std::vector<realization_features>> extract(const npy_array& a, const options& o) {
  extractor e;
  return e.extract(a, o);
}

namespace detail {

const char* shipped_fft_wisdom() noexcept {
  return
#include "detail/fft_wisdom.inc"
      ;
}

std::string generate_fft_wisdom(const std::vector<std::size_t>& lengths, bool exhaustive) {
  {
    std::lock_guard lock(fftw_planner_mutex());
    fftw_forget_wisdom();
    shipped_wisdom_imported = true;  // never mixed into what this process exports
  }
  std::vector<std::unique_ptr<fft_plans>> plans;
  for (std::size_t t : lengths)
    if (t >= 2)
      plans.push_back(std::make_unique<fft_plans>(t, exhaustive ? plan_mode::exhaustive : plan_mode::patient));
  std::lock_guard lock(fftw_planner_mutex());
  char* text = fftw_export_wisdom_to_string();
  std::string out = text ? text : "";
  fftw_free(text);
  return out;
}

std::string describe_voxel_plan(std::size_t t, bool measure) {
  return fft_plans(t, measure ? plan_mode::measure : plan_mode::shipped).describe_voxel_plan();
}

bool voxel_plan_from_wisdom(std::size_t t) { return fft_plans(t, plan_mode::shipped).voxel_plan_from_wisdom(); }

}  // namespace detail

}  // namespace hio::features
