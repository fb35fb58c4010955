// The FFT variants behind docs/features.md, "Speed": thread CPU time of the spectral set's transforms
// for 500 real series of length T (one (2, T, 250) realization), each variant timed in rounds that
// alternate with the others in one process (median and minimum of the rounds).
//
//   fft_time wisdom T WISDOM.inc...   r2c with FFTW_ESTIMATE against the plans of each wisdom file (the
//                                     raw string literal of features/src/detail/fft_wisdom.inc)
//   fft_time pairs T [patient]        500 r2c + power spectra against 250 c2c of two series each
//                                     (z = x + i y) + interleaving + separating the two power spectra
//   fft_time layouts T                with FFTW_PATIENT: single r2c, batches of 2 and 4 contiguous or
//                                     interleaved series, and one split-array c2c per pair
//
// Build: g++ -O2 -std=c++20 fft_time.cpp -o fft_time -lfftw3

#include <fftw3.h>

#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <fstream>
#include <functional>
#include <sstream>
#include <string>
#include <vector>

namespace {

double thread_ms() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) * 1e3 + static_cast<double>(ts.tv_nsec) / 1e6;
}

struct variant {
  std::string name;
  std::function<void()> run;  // the work for 500 series
  std::vector<double> ms;
};

void time_alternating(std::vector<variant>& vs, int rounds = 25) {
  for (auto& v : vs) v.run();  // warm-up
  for (int r = 0; r < rounds; ++r)
    for (auto& v : vs) {
      const double t0 = thread_ms();
      v.run();
      v.ms.push_back(thread_ms() - t0);
    }
  for (auto& v : vs) {
    std::sort(v.ms.begin(), v.ms.end());
    std::printf("%-40s median %.3f ms  min %.3f ms\n", v.name.c_str(), v.ms[v.ms.size() / 2], v.ms.front());
  }
}

std::string wisdom_of(const char* path) {
  std::ifstream f(path);
  std::stringstream ss;
  ss << f.rdbuf();
  const std::string s = ss.str();
  const auto b = s.find("hio_wisdom(");
  const auto e = s.find(")hio_wisdom\"");
  if (b == std::string::npos || e == std::string::npos) return {};
  return s.substr(b + 11, e - b - 11);
}

// The sum of the four lanes of `total` plus lane 0 of `peak`: keeps both loops' results alive and comparable.
__attribute__((target("avx2"))) double checksum(__m256d total, __m256d peak) {
  double t[4], q[4];
  _mm256_storeu_pd(t, total);
  _mm256_storeu_pd(q, peak);
  return t[0] + t[1] + t[2] + t[3] + q[0];
}

__attribute__((target("avx2"))) double power_r2c(const fftw_complex* X, int bins, double* pw) {
  __m256d total = _mm256_setzero_pd(), peak = total;
  for (int k = 1; k + 4 <= bins + 1; k += 4) {
    const __m256d a = _mm256_loadu_pd(&X[k][0]), b = _mm256_loadu_pd(&X[k + 2][0]);
    const __m256d p = _mm256_hadd_pd(_mm256_mul_pd(a, a), _mm256_mul_pd(b, b));
    _mm256_storeu_pd(pw + k, p);
    total = _mm256_add_pd(total, p);
    peak = _mm256_max_pd(peak, p);
  }
  return checksum(total, peak);
}

// Both power spectra of a pair from Z = FFT(x + i y): 4|X_k|^2 = |Z_k + conj(Z_{n-k})|^2 and
// 4|Y_k|^2 = |Z_k - conj(Z_{n-k})|^2, two bins of both series per step.
__attribute__((target("avx2"))) double power_pair(const fftw_complex* Z, int n, double* pw) {
  __m256d total = _mm256_setzero_pd(), peak = total;
  for (int k = 1; k + 2 <= n / 2 + 1; k += 2) {
    const __m256d zk = _mm256_loadu_pd(&Z[k][0]);
    __m256d zm = _mm256_loadu_pd(&Z[n - k - 1][0]);
    zm = _mm256_permute2f128_pd(zm, zm, 1);
    __m256d s = _mm256_add_pd(zk, zm), d = _mm256_sub_pd(zk, zm);
    s = _mm256_mul_pd(s, s);
    d = _mm256_mul_pd(d, d);
    const __m256d p = _mm256_hadd_pd(_mm256_blend_pd(s, d, 10), _mm256_blend_pd(d, s, 10));
    _mm256_storeu_pd(pw + 2 * k, p);
    total = _mm256_add_pd(total, p);
    peak = _mm256_max_pd(peak, p);
  }
  return checksum(total, peak);
}

volatile double sink = 0;

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: %s wisdom T FILE... | pairs T [patient] | layouts T\n", argv[0]);
    return 2;
  }
  const std::string mode = argv[1];
  const int n = std::atoi(argv[2]);
  double* in = fftw_alloc_real(static_cast<std::size_t>(8 * n));
  fftw_complex* out = fftw_alloc_complex(static_cast<std::size_t>(8 * n));
  const auto fill = [&] {
    for (int i = 0; i < 8 * n; ++i) in[i] = (i * 7919) % 13 - 6.0;
  };
  std::vector<variant> vs;
  std::vector<fftw_plan> plans;
  if (mode == "wisdom") {
    plans.push_back(fftw_plan_dft_r2c_1d(n, in, out, FFTW_ESTIMATE));
    vs.push_back({"r2c, FFTW_ESTIMATE", nullptr, {}});
    for (int a = 3; a < argc; ++a) {
      fftw_forget_wisdom();
      const std::string w = wisdom_of(argv[a]);
      if (w.empty() || !fftw_import_wisdom_from_string(w.c_str())) {
        std::fprintf(stderr, "%s: no wisdom\n", argv[a]);
        return 1;
      }
      fftw_plan p = fftw_plan_dft_r2c_1d(n, in, out, FFTW_WISDOM_ONLY | FFTW_PATIENT);
      if (!p) {
        std::fprintf(stderr, "%s: no plan for r2c %d\n", argv[a], n);
        return 1;
      }
      plans.push_back(p);
      vs.push_back({std::string("r2c, wisdom ") + argv[a], nullptr, {}});
    }
    for (std::size_t i = 0; i < plans.size(); ++i)
      vs[i].run = [p = plans[i]] {
        for (int k = 0; k < 500; ++k) fftw_execute(p);
      };
  } else if (mode == "pairs") {
    const unsigned flags = argc > 3 && std::string(argv[3]) == "patient" ? FFTW_PATIENT : FFTW_ESTIMATE;
    fftw_complex* z = fftw_alloc_complex(static_cast<std::size_t>(n));
    fftw_complex* Z = fftw_alloc_complex(static_cast<std::size_t>(n));
    std::vector<double> pw(static_cast<std::size_t>(2 * n + 8));
    fftw_plan r2c = fftw_plan_dft_r2c_1d(n, in, out, flags);
    fftw_plan c2c = fftw_plan_dft_1d(n, z, Z, FFTW_FORWARD, flags);
    fill();
    vs.push_back({"500 r2c + power", [&] {
                    for (int v = 0; v < 500; ++v) {
                      fftw_execute(r2c);
                      sink = sink + power_r2c(out, n / 2, pw.data());
                    }
                  }, {}});
    vs.push_back({"250 c2c + interleave + split power", [&] {
                    const double sx = std::ldexp(1.0, -3), sy = std::ldexp(1.0, -2);  // exact scalings
                    for (int v = 0; v < 250; ++v) {
                      for (int t = 0; t < n; ++t) z[t][0] = in[t] * sx, z[t][1] = in[n + t] * sy;
                      fftw_execute(c2c);
                      sink = sink + power_pair(Z, n, pw.data());
                    }
                  }, {}});
    std::printf("plans: %s\n", flags == FFTW_PATIENT ? "FFTW_PATIENT" : "FFTW_ESTIMATE");
  } else if (mode == "layouts") {
    struct layout {
      const char* name;
      int howmany, istride, idist, ostride, odist;
    };
    const int h = n / 2 + 1;
    for (const layout& l : {layout{"r2c x1", 1, 1, n, 1, h}, layout{"r2c x2 contiguous", 2, 1, n, 1, h},
                            layout{"r2c x2 interleaved", 2, 2, 1, 2, 1}, layout{"r2c x4 contiguous", 4, 1, n, 1, h},
                            layout{"r2c x4 interleaved", 4, 4, 1, 4, 1}}) {
      int nn = n;
      fftw_plan p = fftw_plan_many_dft_r2c(1, &nn, l.howmany, in, nullptr, l.istride, l.idist, out, nullptr, l.ostride,
                                           l.odist, FFTW_PATIENT);
      vs.push_back({l.name, [p, k = 500 / l.howmany] {
                      for (int i = 0; i < k; ++i) fftw_execute(p);
                    }, {}});
    }
    double* ri = fftw_alloc_real(static_cast<std::size_t>(n));
    double* ii = fftw_alloc_real(static_cast<std::size_t>(n));
    double* ro = fftw_alloc_real(static_cast<std::size_t>(n));
    double* io = fftw_alloc_real(static_cast<std::size_t>(n));
    fftw_iodim d{n, 1, 1};
    fftw_plan split = fftw_plan_guru_split_dft(1, &d, 0, nullptr, ri, ii, ro, io, FFTW_PATIENT);
    for (int i = 0; i < n; ++i) ri[i] = (i * 7919) % 13 - 6.0, ii[i] = (i * 31) % 7 - 3.0;
    vs.push_back({"250 split-array c2c", [split] {
                    for (int i = 0; i < 250; ++i) fftw_execute(split);
                  }, {}});
  } else {
    std::fprintf(stderr, "unknown mode %s\n", mode.c_str());
    return 2;
  }
  fill();
  time_alternating(vs);
  return 0;
}
