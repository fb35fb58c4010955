// hio-features-bench: one run checks and times everything (shared/GPU.md). First, if a CUDA device is
// present, parity of the GPU extractor with the CPU reference on fresh random inputs; then CPU times
// per realization (one thread, so one core) and GPU times (CUDA events, median after warm-up) against
// the pinned host->device and device memory bandwidth measured in the same run; a table last.
//
//   hio-features-bench [--json FILE] [--runs N] [--quick] [--measure-plans] [--no-spectral]

#include <hio/features/features.hpp>
#include <hio/features/gpu.hpp>
#include <hio/features/npy.hpp>

#include "detail/fft_wisdom.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

using namespace hio::features;

namespace {

constexpr double parity_rel = 1e-9;  // GPU vs CPU (both float64): docs/features.md
constexpr double parity_abs = 1e-10;

struct shape_case {
  std::vector<std::size_t> shape;
  dtype type;
  bool integral = true;  // copy numbers (integers) or real-valued concentrations
};

std::size_t product(const std::vector<std::size_t>& s) {
  std::size_t n = 1;
  for (std::size_t d : s) n *= d;
  return n;
}

std::string shape_text(const std::vector<std::size_t>& s) {
  std::string out = "(";
  for (std::size_t i = 0; i < s.size(); ++i) out += (i ? "," : "") + std::to_string(s[i]);
  return out + ")";
}

// Simulation-like values: per-voxel level, a periodic component, noise, 10 % empty.
std::vector<double> random_values(std::size_t n, std::uint64_t seed, bool integral = true) {
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

double median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v.size() % 2 ? v[v.size() / 2] : (v[v.size() / 2 - 1] + v[v.size() / 2]) / 2;
}

struct timing_row {
  std::string shape;
  std::string dtype;
  double mbytes = 0;
  std::size_t realizations = 1;
  double cpu_ms = 0;       // median per realization, this thread's CPU time (robust to other load)
  double cpu_min_ms = 0;
  double cpu_wall_ms = 0;  // median per realization, wall clock
  double gpu_ms = -1;      // median device time per tuple (events), -1 without a GPU
  double gpu_wall_ms = -1;
  double copy_bound_ms = -1;  // bytes / pinned H2D bandwidth
};

}  // namespace

int main(int argc, char** argv) {
  std::string json_path;
  int runs = 15;
  bool quick = false;
  extractor_options cpu_options;
  options feature_options;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--json" && i + 1 < argc) json_path = argv[++i];
    else if (a == "--runs" && i + 1 < argc) runs = std::max(1, std::atoi(argv[++i]));
    else if (a == "--quick") quick = true;
    else if (a == "--measure-plans") cpu_options.measure_plans = true;
    else if (a == "--no-spectral") feature_options.spectral = false;
    else {
      std::fprintf(stderr, "usage: %s [--json FILE] [--runs N] [--quick] [--measure-plans] [--no-spectral]\n", argv[0]);
      return 2;
    }
  }
  const std::uint64_t seed = std::random_device{}();
  std::printf("hio-features-bench: seed %llu, CUDA in build: %s, devices: %d\n", static_cast<unsigned long long>(seed),
              built_with_cuda() ? "yes" : "no", cuda_device_count());

  // 1. Parity of the GPU with the CPU reference on fresh random inputs and edge sizes.
  auto gpu = gpu_extractor::create();
  std::string gpu_status;
  bool parity_ok = true;
  double parity_worst = 0;
  std::size_t parity_compared = 0;
  if (!gpu) {
    gpu_status = "absent (" + gpu.error().message + ")";
    std::printf("GPU: %s; CPU part only\n", gpu_status.c_str());
  } else {
    gpu_status = (*gpu)->device_name();
    std::printf("GPU: %s\n", gpu_status.c_str());
    const std::vector<shape_case> parity_cases = {
        {{2, 3000, 250}, dtype::f4}, {{3, 200, 37}, dtype::f8}, {{2, 3, 64, 16}, dtype::i4}, {{1, 1}, dtype::f8},
        {{1, 9}, dtype::f4},         {{2, 2, 5}, dtype::f8},    {{3, 7, 1}, dtype::f8},      {{4, 129, 3}, dtype::u2},
        {{2, 4096, 8}, dtype::f8},   {{2, 1001, 2}, dtype::f4}};
    extractor cpu;
    std::uint64_t k = seed;
    for (const auto& c : parity_cases) {
      auto values = random_values(product(c.shape), ++k);
      if (c.shape.back() == 1) std::fill(values.begin(), values.begin() + static_cast<std::ptrdiff_t>(values.size() / 2), 3.0);
      const auto bytes = write_npy(values, c.shape, c.type);
      pinned_buffer pinned(bytes.size());
      std::memcpy(pinned.data(), bytes.data(), bytes.size());
      auto a = parse_npy(std::span<const std::byte>(pinned.data(), pinned.size()));
      if (!a) {
        std::printf("parity: cannot parse %s: %s\n", shape_text(c.shape).c_str(), a.error().message.c_str());
        return 1;
      }
      auto want = cpu.extract(*a);
      auto have = (*gpu)->extract(*a);
      if (!want || !have) {
        std::printf("parity %s: %s\n", shape_text(c.shape).c_str(),
                    (!want ? want.error().message : have.error().message).c_str());
        parity_ok = false;
        continue;
      }
      for (std::size_t r = 0; r < want->size(); ++r)
        for (std::size_t i = 0; i < (*want)[r].values.size(); ++i) {
          const double w = (*want)[r].values[i], h = (*have)[r].values[i];
          const double diff = std::fabs(w - h);
          ++parity_compared;
          if (diff > parity_rel * std::max(std::fabs(w), std::fabs(h)) + parity_abs) {
            if (parity_ok || parity_compared < 50)
              std::printf("parity FAIL %s r%zu %s: cpu %.17g gpu %.17g\n", shape_text(c.shape).c_str(), r,
                          (*(*want)[r].names)[i].c_str(), w, h);
            parity_ok = false;
          }
          if (w != 0) parity_worst = std::max(parity_worst, diff / std::fabs(w));
        }
    }
    std::printf("parity: %zu features compared, largest relative difference %.3g: %s\n", parity_compared, parity_worst,
                parity_ok ? "PASS" : "FAIL");
  }

  // 2. Timings.
  std::vector<shape_case> sizes = {{{2, 3000, 250}, dtype::f4},
                                   {{2, 1000, 100}, dtype::f4},
                                   {{2, 3000, 250}, dtype::f4, false},
                                   {{2, 3000, 250}, dtype::f8},
                                   {{3, 2000, 500}, dtype::f4},
                                   {{8, 2, 3000, 250}, dtype::f4}};
  if (quick) sizes.resize(2);
  gpu_ceilings ceilings;
  if (gpu) {
    auto c = (*gpu)->measure_ceilings(6u << 20);
    if (c) {
      ceilings = *c;
      std::printf("ceilings: pinned H2D %.1f GB/s, device memory %.1f GB/s\n", ceilings.host_to_device_gbps,
                  ceilings.device_memory_gbps);
    } else {
      std::printf("ceilings: %s\n", c.error().message.c_str());
    }
  }
  // Whether the CPU's FFTs of these lengths come from the wisdom shipped in the library (FFTW accepts it
  // only for its own version and SIMD set; otherwise FFTW_ESTIMATE plans: slower, docs/features.md).
  std::printf("CPU FFT plans:");
  for (std::size_t t : {std::size_t{1000}, std::size_t{2000}, std::size_t{3000}})
    std::printf(" T=%zu %s;", t, detail::voxel_plan_from_wisdom(t) ? "shipped wisdom" : "FFTW_ESTIMATE");
  std::printf("\n");
  std::vector<timing_row> rows;
  for (const auto& c : sizes) {
    const auto bytes = write_npy(random_values(product(c.shape), seed + 7, c.integral), c.shape, c.type);
    pinned_buffer pinned(bytes.size());
    std::memcpy(pinned.data(), bytes.data(), bytes.size());
    auto a = parse_npy(std::span<const std::byte>(pinned.data(), pinned.size()));
    if (!a) return 1;
    timing_row row;
    row.shape = shape_text(c.shape);
    row.dtype = std::string(to_string(c.type)) + (c.integral ? "/int" : "/real");
    row.mbytes = static_cast<double>(a->payload.size()) / 1e6;
    row.realizations = a->realizations;

    extractor cpu(cpu_options);
    if (!cpu.extract(*a, feature_options)) return 1;  // warm-up: plans, scratch
    std::vector<double> ms, wall;
    for (int i = 0; i < runs; ++i) {
      const double c0 = thread_cpu_ms();
      const auto t0 = std::chrono::steady_clock::now();
      auto r = cpu.extract(*a, feature_options);
      const auto t1 = std::chrono::steady_clock::now();
      const double c1 = thread_cpu_ms();
      if (!r) return 1;
      const double per = static_cast<double>(a->realizations);
      ms.push_back((c1 - c0) / per);
      wall.push_back(std::chrono::duration<double, std::milli>(t1 - t0).count() / per);
    }
    row.cpu_ms = median(ms);
    row.cpu_min_ms = *std::min_element(ms.begin(), ms.end());
    row.cpu_wall_ms = median(wall);

    if (gpu) {
      for (int i = 0; i < 3; ++i)
        if (!(*gpu)->extract(*a, feature_options)) return 1;
      std::vector<double> dev, wall;
      for (int i = 0; i < std::max(runs, 30); ++i) {
        const auto t0 = std::chrono::steady_clock::now();
        auto r = (*gpu)->extract(*a, feature_options);
        const auto t1 = std::chrono::steady_clock::now();
        if (!r) {
          std::printf("GPU extract failed: %s\n", r.error().message.c_str());
          return 1;
        }
        dev.push_back((*gpu)->last_device_ms());
        wall.push_back(std::chrono::duration<double, std::milli>(t1 - t0).count());
      }
      row.gpu_ms = median(dev);
      row.gpu_wall_ms = median(wall);
      if (ceilings.host_to_device_gbps > 0)
        row.copy_bound_ms = static_cast<double>(a->payload.size()) / (ceilings.host_to_device_gbps * 1e6);
    }
    rows.push_back(row);
  }

  std::printf("\n%-16s %-7s %7s %3s %11s %10s %11s %12s %11s %12s\n", "shape", "type", "MB", "R", "cpu ms/real",
              "cpu min ms", "cpu wall ms", "gpu ms/tuple", "gpu wall ms", "H2D bound ms");
  for (const auto& r : rows)
    std::printf("%-16s %-7s %7.2f %3zu %11.2f %10.2f %11.2f %12.3f %11.3f %12.3f\n", r.shape.c_str(), r.dtype.c_str(),
                r.mbytes, r.realizations, r.cpu_ms, r.cpu_min_ms, r.cpu_wall_ms, r.gpu_ms, r.gpu_wall_ms, r.copy_bound_ms);
  std::printf("GPU: %s%s\n", gpu_status.c_str(),
              gpu ? (std::string("; parity ") + (parity_ok ? "PASS" : "FAIL")).c_str() : "");

  if (!json_path.empty()) {
    std::ostringstream j;
    j.precision(6);
    j << "{\"seed\": " << seed << ", \"gpu\": \"" << (gpu ? gpu_status : std::string("absent")) << "\""
      << ", \"parity\": {\"ok\": " << (parity_ok ? "true" : "false") << ", \"compared\": " << parity_compared
      << ", \"worst_relative\": " << parity_worst << "}"
      << ", \"ceilings\": {\"h2d_gbps\": " << ceilings.host_to_device_gbps
      << ", \"device_gbps\": " << ceilings.device_memory_gbps << "}, \"sizes\": [";
    for (std::size_t i = 0; i < rows.size(); ++i) {
      const auto& r = rows[i];
      j << (i ? ", " : "") << "{\"shape\": \"" << r.shape << "\", \"dtype\": \"" << r.dtype << "\", \"mbytes\": " << r.mbytes
        << ", \"realizations\": " << r.realizations << ", \"cpu_ms_per_realization\": " << r.cpu_ms
        << ", \"cpu_min_ms\": " << r.cpu_min_ms << ", \"cpu_wall_ms\": " << r.cpu_wall_ms << ", \"gpu_ms_per_tuple\": " << r.gpu_ms
        << ", \"gpu_wall_ms\": " << r.gpu_wall_ms << ", \"h2d_bound_ms\": " << r.copy_bound_ms << "}";
    }
    j << "]}\n";
    std::ofstream(json_path) << j.str();
  }
  return parity_ok ? 0 : 1;
}
