// One timed phase of the discovery benchmark per run, so that each phase's peak memory (ru_maxrss) is its
// own; run.py runs every phase and writes results.json. Data: Gaussian blobs around `clusters` centres.
//
//   hio-discovery-bench exact <single|complete|average|ward> <n> <d> [seed]
//   hio-discovery-bench two-stage <ward|average> <n> <d> [seed]
// prints one JSON object on stdout.

#include <hio/discovery/clusters.hpp>
#include <hio/discovery/linkage.hpp>
#include <hio/discovery/two_stage.hpp>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <sys/resource.h>
#include <time.h>

using namespace hio::discovery;

namespace {

constexpr std::size_t planted = 10;  // blobs in the generated data

double cpu_seconds() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  auto seconds = [](timeval t) { return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_usec) / 1e6; };
  return seconds(usage.ru_utime) + seconds(usage.ru_stime);
}

// CPU time of the calling thread alone: with helper threads (complete and average compute their
// distances on every core) this is the length of the critical path, the wall time of an idle machine.
double thread_cpu_seconds() {
  timespec t{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
  return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_nsec) / 1e9;
}

double peak_mib() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return static_cast<double>(usage.ru_maxrss) / 1024.0;
}

// n points around `planted` centres drawn in [-10, 10]^d, unit standard deviation per coordinate.
matrix blobs(std::size_t n, std::size_t d, std::uint64_t seed, std::vector<std::uint32_t>& truth) {
  std::mt19937_64 random(seed);
  std::uniform_real_distribution<double> where(-10.0, 10.0);
  std::normal_distribution<double> noise(0.0, 1.0);
  matrix centres(planted, d);
  for (double& v : centres.row(0)) v = where(random);
  for (std::size_t c = 0; c < planted; ++c)
    for (double& v : centres.row(c)) v = where(random);
  matrix x(n, d);
  truth.resize(n);
  for (std::size_t i = 0; i < n; ++i) {
    const std::size_t c = random() % planted;
    truth[i] = static_cast<std::uint32_t>(c + 1);
    for (std::size_t j = 0; j < d; ++j) x(i, j) = centres(c, j) + noise(random);
  }
  return x;
}

int usage() {
  std::fprintf(stderr,
               "usage: hio-discovery-bench exact <single|complete|average|ward> <n> <d> [seed]\n"
               "       hio-discovery-bench two-stage <ward|average> <n> <d> [seed]\n");
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 5) return usage();
  const std::string phase = argv[1];
  const auto method = parse_linkage_method(argv[2]);
  const std::size_t n = std::strtoull(argv[3], nullptr, 10);
  const std::size_t d = std::strtoull(argv[4], nullptr, 10);
  const std::uint64_t seed = argc > 5 ? std::strtoull(argv[5], nullptr, 10) : 1;
  if (!method || n < 2 || d < 1 || (phase != "exact" && phase != "two-stage")) return usage();

  std::vector<std::uint32_t> truth;
  const matrix x = blobs(n, d, seed, truth);
  const double data_mib = peak_mib();
  using clock = std::chrono::steady_clock;
  const auto start = clock::now();
  const double cpu_start = cpu_seconds();
  const double thread_cpu_start = thread_cpu_seconds();
  std::vector<std::uint32_t> labels;
  std::size_t leaves = n;
  if (phase == "exact") {
    auto z = linkage(x, *method);
    if (!z) {
      std::fprintf(stderr, "%s\n", z.error().message.c_str());
      return 1;
    }
    labels = cut_into(*z, planted);
  } else {
    auto r = two_stage_cluster(x, {.method = *method});
    if (!r) {
      std::fprintf(stderr, "%s\n", r.error().message.c_str());
      return 1;
    }
    labels = propagate_labels(*r, cut_into(r->tree, planted));
    leaves = r->sizes.size();
  }
  const double seconds = std::chrono::duration<double>(clock::now() - start).count();
  const double cpu = cpu_seconds() - cpu_start;
  const double thread_cpu = thread_cpu_seconds() - thread_cpu_start;
  std::printf(
      "{\"phase\": \"%s\", \"method\": \"%s\", \"n\": %zu, \"d\": %zu, \"leaves\": %zu, \"seconds\": %.3f, \"cpu_seconds\": %.3f, "
      "\"thread_cpu_seconds\": %.3f, "
      "\"peak_mib\": %.1f, \"data_mib\": %.1f, \"ari\": %.4f}\n",
      phase.c_str(), argv[2], n, d, leaves, seconds, cpu, thread_cpu, peak_mib(), data_mib, adjusted_rand_index(labels, truth));
  return 0;
}
