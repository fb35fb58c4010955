// One extractor on one of hio-features-bench's tuples: the features of the first call (written to
// --dump as "name value" lines with 17 digits, for bitwise comparisons between builds) and the median
// and minimum thread CPU time per realization over --runs further calls. Built and run by
// cpu_compare.sh against two builds of hio::features.
//
//   cpu_time [--kind counts|real|f8|i4|u2] [--shape 2x3000x250] [--runs N] [--seed S] [--dump FILE]
//            [--no-spectral] [--baseline]

#include <hio/features/features.hpp>
#include <hio/features/npy.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <random>
#include <string>
#include <vector>

using namespace hio::features;

namespace {

// The values of hio-features-bench (features/bench.cpp): per-voxel level, a periodic component, noise,
// 10 % empty. Repeated here, not shared, because cpu_compare.sh also builds this file against an older
// checkout's objects, where no shared helper exists.
std::vector<double> bench_values(std::size_t n, std::uint64_t seed, bool integral) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  std::vector<double> x(n);
  const double period = 3 + 40 * unit(rng);
  for (std::size_t i = 0; i < n; ++i) {
    const double v = 6 * unit(rng) + 3 * std::sin(6.283185307179586 * static_cast<double>(i % 1009) / period) + 4;
    x[i] = unit(rng) < 0.1 ? 0 : integral ? std::floor(v) : v;
  }
  return x;
}

double thread_cpu_ms() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) * 1e3 + static_cast<double>(ts.tv_nsec) / 1e6;
}

}  // namespace

int main(int argc, char** argv) {
  int runs = 20;
  std::string kind = "counts", dump;
  std::uint64_t seed = 7;
  bool spectral = true, baseline = false;
  std::vector<std::size_t> shape = {2, 3000, 250};
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    const bool more = i + 1 < argc;
    if (a == "--runs" && more) runs = std::max(0, std::atoi(argv[++i]));
    else if (a == "--kind" && more) kind = argv[++i];
    else if (a == "--dump" && more) dump = argv[++i];
    else if (a == "--seed" && more) seed = std::strtoull(argv[++i], nullptr, 10);
    else if (a == "--no-spectral") spectral = false;
    else if (a == "--baseline") baseline = true;
    else if (a == "--shape" && more) {
      shape.clear();
      const std::string s = argv[++i];
      for (std::size_t p = 0; p < s.size();) {
        std::size_t q = s.find('x', p);
        if (q == std::string::npos) q = s.size();
        shape.push_back(std::stoul(s.substr(p, q - p)));
        p = q + 1;
      }
    } else {
      std::fprintf(stderr, "usage: %s [--kind counts|real|f8|i4|u2] [--shape AxBxC] [--runs N] [--seed S] [--dump FILE] "
                           "[--no-spectral] [--baseline]\n", argv[0]);
      return 2;
    }
  }
  std::size_t n = 1;
  for (std::size_t d : shape) n *= d;
  const dtype type = kind == "f8" ? dtype::f8 : kind == "i4" ? dtype::i4 : kind == "u2" ? dtype::u2 : dtype::f4;
  const auto bytes = write_npy(bench_values(n, seed, kind != "real"), shape, type);
  auto a = parse_npy(std::span<const std::byte>(bytes.data(), bytes.size()));
  if (!a) return 1;
  extractor_options eo;
  // Older builds have no avx2 option; --baseline is only given to builds that have it.
  if (baseline) {
#ifdef HIO_CPU_TIME_BASELINE
    eo.avx2 = false;
#else
    std::fprintf(stderr, "--baseline needs -DHIO_CPU_TIME_BASELINE\n");
    return 2;
#endif
  }
  extractor e(eo);
  options o;
  o.spectral = spectral;
  auto first = e.extract(*a, o);
  if (!first) {
    std::fprintf(stderr, "%s\n", first.error().message.c_str());
    return 1;
  }
  double sum = 0;
  for (const auto& r : *first)
    for (double v : r.values) sum += v;
  if (!dump.empty()) {
    FILE* f = std::fopen(dump.c_str(), "w");
    if (!f) return 1;
    for (const auto& r : *first)
      for (std::size_t i = 0; i < r.values.size(); ++i) std::fprintf(f, "%s %.17g\n", (*r.names)[i].c_str(), r.values[i]);
    std::fclose(f);
  }
  std::vector<double> ms;
  for (int i = 0; i < runs; ++i) {
    const double c0 = thread_cpu_ms();
    if (!e.extract(*a, o)) return 1;
    ms.push_back((thread_cpu_ms() - c0) / static_cast<double>(a->realizations));
  }
  std::sort(ms.begin(), ms.end());
  std::printf("%s sum %.17g median_ms %.3f min_ms %.3f\n", kind.c_str(), sum, ms.empty() ? 0.0 : ms[ms.size() / 2],
              ms.empty() ? 0.0 : ms.front());
  return 0;
}
