// The CPU extractor's alternative code paths give the same features: the AVX2 build of its hot loops
// against the baseline build (bit for bit), and the exact medians of every path (integers near and far
// from the mean, wide integer ranges, real values inside and outside the predicted bracket, few values)
// against medians found by sorting.

#include <hio/features/features.hpp>

#include "features_support.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <map>
#include <random>

using namespace hio::features;
using namespace hio::features::test;

namespace {

enum class kind { counts, real, skewed_counts, skewed_real, wide_counts, drifting_real, tied_real, huge_counts };

// Series of one kind: counts near a level (median near the mean), heavy-tailed values (median far below
// the mean), integers spread over a range wider than a histogram covers, real values whose level and
// spread change along the array (so that one series predicts the next badly), real values with ties, and
// integers beyond 2^24 (as float32 only every 128th or 256th is kept, and the medians' integer
// thresholds are not floats: the float comparisons of the AVX2 build round them down).
std::vector<double> values_of(kind k, std::size_t n, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  std::vector<double> x(n);
  for (std::size_t i = 0; i < n; ++i) {
    const double u = unit(rng), w = unit(rng);
    const double drift = 1 + 50 * static_cast<double>(i % 1013) / 1013.0;
    switch (k) {
      case kind::counts: x[i] = std::floor(8 * u + 4 * w); break;
      case kind::real: x[i] = 8 * u + 4 * w - 3; break;
      case kind::skewed_counts: x[i] = std::floor(200 * std::pow(u, 6)); break;
      case kind::skewed_real: x[i] = 200 * std::pow(u, 6) + w; break;
      case kind::wide_counts: x[i] = std::floor(1e7 * u * u) - 3e6; break;
      case kind::drifting_real: x[i] = drift * (u + 0.1 * w) + (i % 7 == 0 ? 1e3 * w : 0); break;
      case kind::tied_real: x[i] = 0.25 * std::floor(8 * u); break;
      case kind::huge_counts: x[i] = std::floor(3e9 * u * w) - 1e9; break;
    }
  }
  return x;
}

std::vector<double> features_with(const std::vector<std::byte>& buffer, bool avx2, const options& o = {}) {
  extractor_options eo;
  eo.avx2 = avx2;
  extractor e(eo);
  auto r = e.extract(parse_or_fail(buffer), o);
  REQUIRE(r.has_value());
  std::vector<double> all;
  for (const auto& f : *r) all.insert(all.end(), f.values.begin(), f.values.end());
  return all;
}

double sorted_median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const std::size_t n = v.size();
  return (v[(n - 1) / 2] + v[n / 2]) / 2;
}

// skew = 3 (mean - median) / sd of each series, computed plainly; then norm, mean, var of the list.
struct skew_summary {
  double norm = 0, mean = 0, var = 0;
};
skew_summary skews(const std::vector<std::vector<double>>& series) {
  std::vector<double> k;
  for (const auto& s : series) {
    const double n = static_cast<double>(s.size());
    double sum = 0;
    for (double x : s) sum += x;
    const double mean = sum / n;
    double sq = 0;
    for (double x : s) sq += (x - mean) * (x - mean);
    const double sd = std::sqrt(sq / n);
    const bool constant = *std::min_element(s.begin(), s.end()) == *std::max_element(s.begin(), s.end());
    k.push_back(constant || sd == 0 ? 0.0 : 3 * (mean - sorted_median(s)) / sd);
  }
  skew_summary out;
  double sq = 0, sum = 0;
  for (double x : k) sq += x * x, sum += x;
  out.norm = std::sqrt(sq);
  out.mean = sum / static_cast<double>(k.size());
  for (double x : k) out.var += (x - out.mean) * (x - out.mean);
  out.var /= static_cast<double>(k.size());
  return out;
}

}  // namespace

TEST_CASE("cpu paths: the AVX2 and the baseline builds give bit-identical features") {
#if defined(__x86_64__)
  if (!__builtin_cpu_supports("avx2")) MESSAGE("this processor has no AVX2: both runs use the baseline build");
#endif
  struct shape_case {
    std::vector<std::size_t> shape;
    dtype type;
    kind k;
    npy_write_options w = {};
  };
  const std::vector<shape_case> cases = {
      {{2, 300, 250}, dtype::f4, kind::counts},
      {{2, 300, 250}, dtype::f4, kind::real},
      {{2, 300, 250}, dtype::f4, kind::huge_counts},
      {{2, 301, 61}, dtype::f8, kind::skewed_real},
      {{3, 97, 50}, dtype::i4, kind::skewed_counts},
      {{2, 130, 49}, dtype::f4, kind::drifting_real},
      {{2, 65, 48}, dtype::f8, kind::wide_counts},
      {{2, 2, 50, 17}, dtype::f4, kind::tied_real},
      {{2, 211, 33}, dtype::u2, kind::counts},
      {{2, 64, 52}, dtype::f4, kind::real, {.big_endian = true}},
      {{2, 70, 51}, dtype::f8, kind::real, {.fortran_order = true}},
      {{1, 9, 3}, dtype::f4, kind::real},
      {{1, 5}, dtype::f8, kind::counts},
      {{3, 1, 250}, dtype::f4, kind::counts},
      {{2, 4, 1}, dtype::i4, kind::counts},
  };
  std::uint64_t seed = 77;
  for (const auto& c : cases) {
    CAPTURE(c.shape.size());
    CAPTURE(c.shape.back());
    CAPTURE(static_cast<int>(c.k));
    CAPTURE(static_cast<int>(c.type));
    const auto buffer = write_npy(values_of(c.k, product(c.shape), ++seed), c.shape, c.type, c.w);
    for (bool spectral : {true, false}) {
      options o;
      o.spectral = spectral;
      const auto baseline = features_with(buffer, false, o), avx2 = features_with(buffer, true, o);
      REQUIRE(baseline.size() == avx2.size());
      for (std::size_t i = 0; i < baseline.size(); ++i) {
        CAPTURE(i);
        CHECK(std::memcmp(&baseline[i], &avx2[i], sizeof(double)) == 0);
      }
    }
  }
}

TEST_CASE("cpu paths: medians are exact in every path (per-timepoint and per-voxel skew against sorting)") {
  // Shape (T, V): rows of V values (per timepoint), columns of T values (per voxel). Sizes around the
  // 48-value threshold of the counting paths, odd and even, and not multiples of four.
  const std::vector<std::pair<std::size_t, std::size_t>> shapes = {{301, 250}, {250, 301}, {48, 49}, {49, 48}, {64, 130}};
  const std::vector<kind> kinds = {kind::counts,      kind::real,          kind::skewed_counts, kind::skewed_real,
                                   kind::wide_counts, kind::drifting_real, kind::tied_real, kind::huge_counts};
  std::uint64_t seed = 500;
  for (const auto& [T, V] : shapes)
    for (kind k : kinds)
      for (dtype type : {dtype::f8, dtype::f4}) {
        CAPTURE(T);
        CAPTURE(V);
        CAPTURE(static_cast<int>(k));
        CAPTURE(static_cast<int>(type));
        auto x = values_of(k, T * V, ++seed);
        if (type == dtype::f4)
          for (double& v : x) v = static_cast<float>(v);  // what the extractor will read
        const std::vector<std::size_t> shape = {T, V};
        const auto buffer = write_npy(x, shape, type);
        std::vector<std::vector<double>> rows(T, std::vector<double>(V)), cols(V, std::vector<double>(T));
        for (std::size_t t = 0; t < T; ++t)
          for (std::size_t v = 0; v < V; ++v) rows[t][v] = cols[v][t] = x[t * V + v];
        const skew_summary want_rows = skews(rows), want_cols = skews(cols);
        for (bool avx2 : {false, true}) {
          CAPTURE(avx2);
          extractor_options eo;
          eo.avx2 = avx2;
          extractor e(eo);
          auto r = e.extract(parse_or_fail(buffer));
          REQUIRE(r.has_value());
          std::map<std::string, double> got;
          for (std::size_t i = 0; i < r->front().values.size(); ++i) got[(*r->front().names)[i]] = r->front().values[i];
          // Summation orders differ; a median off by one rank would move these by far more than 1e-9.
          CHECK(close(got.at("s0.per_timepoint.skew_norm"), want_rows.norm, 1e-9, 1e-12));
          CHECK(close(got.at("s0.per_timepoint.skew_mean"), want_rows.mean, 1e-9, 1e-12));
          CHECK(close(got.at("s0.per_timepoint.skew_var"), want_rows.var, 1e-9, 1e-12));
          CHECK(close(got.at("s0.per_voxel.skew_norm"), want_cols.norm, 1e-9, 1e-12));
          CHECK(close(got.at("s0.per_voxel.skew_mean"), want_cols.mean, 1e-9, 1e-12));
          CHECK(close(got.at("s0.per_voxel.skew_var"), want_cols.var, 1e-9, 1e-12));
        }
      }
}
