// feature_definitions::harmonicpe against an independent NumPy port of the original HarmonicPE feature
// code (reference_harmonicpe.py), hand-computed values, and the features it shares with hio's set.

#include <hio/features/features.hpp>
#include <hio/features/gpu.hpp>

#include "features_support.hpp"

#include <doctest/doctest.h>

#include <cmath>
#include <limits>
#include <map>

using namespace hio::features;
using namespace hio::features::test;

namespace {

// As reference_test.cpp: float64 on both sides, differing in summation order only.
constexpr double rel_tolerance = 1e-9;
constexpr double abs_tolerance = 1e-12;

options harmonicpe(std::vector<std::string> names = {}) {
  options o;
  o.definitions = feature_definitions::harmonicpe;
  o.species_names = std::move(names);
  return o;
}

enum class fill { real, counts, sparse, zeros, constant };

std::vector<double> values_for(fill f, std::size_t n, std::uint64_t seed) {
  switch (f) {
    case fill::real: return random_values(n, seed, false);
    case fill::counts: return random_values(n, seed, true);
    case fill::zeros: return std::vector<double>(n, 0.0);
    case fill::constant: return std::vector<double>(n, 7.0);
    case fill::sparse: {
      // Mostly zeros: all-zero rows and columns, constant segments, species that never co-vary.
      std::mt19937_64 rng(seed);
      std::uniform_real_distribution<double> unit(0.0, 1.0);
      std::vector<double> x(n);
      for (auto& v : x) v = unit(rng) < 0.04 ? std::floor(1 + 3 * unit(rng)) : 0.0;
      return x;
    }
  }
  return {};
}

struct harmonicpe_case {
  std::vector<std::size_t> shape;
  dtype type;
  fill values;
  npy_write_options write = {};
};

void compare_with_port(const std::vector<harmonicpe_case>& cases, const std::vector<std::string>& names,
                       std::uint64_t seed) {
  temp_dir dir;
  std::vector<std::string> files;
  std::vector<std::vector<std::byte>> buffers;
  for (std::size_t i = 0; i < cases.size(); ++i) {
    const auto& c = cases[i];
    buffers.push_back(write_npy(values_for(c.values, product(c.shape), seed + i), c.shape, c.type, c.write));
    files.push_back((dir.path / ("case" + std::to_string(i) + ".npy")).string());
    write_file(files.back(), buffers.back());
  }
  std::string flags;
  for (const auto& n : names) flags += (flags.empty() ? "--names " : ",") + n;
  int status = 0;
  const auto reference = run_reference_script("reference_harmonicpe.py", files, flags, status);
  REQUIRE(status == 0);
  extractor e;
  std::size_t compared = 0;
  double worst = 0;
  for (std::size_t i = 0; i < cases.size(); ++i) {
    auto got = e.extract(parse_or_fail(buffers[i]), harmonicpe(names));
    REQUIRE(got.has_value());
    for (std::size_t r = 0; r < got->size(); ++r) {
      const auto& f = (*got)[r];
      REQUIRE(f.values.size() == feature_count(parse_or_fail(buffers[i]).species, false));
      // The port prints its features in the order it appends them: that order must be ours too.
      std::size_t k = 0;
      for (auto it = reference.lower_bound({files[i], r, ""}); it != reference.end() && std::get<0>(it->first) == files[i] &&
                                                                std::get<1>(it->first) == r;
           ++it)
        ++k;
      CHECK(k == f.values.size());
      for (std::size_t j = 0; j < f.values.size(); ++j) {
        const std::string& name = (*f.names)[j];
        const auto it = reference.find({files[i], r, name});
        CAPTURE(files[i]);
        CAPTURE(r);
        CAPTURE(name);
        REQUIRE(it != reference.end());
        const double want = it->second, have = f.values[j];
        CAPTURE(want);
        CAPTURE(have);
        CHECK(close(have, want, rel_tolerance, abs_tolerance));
        if (want != have) worst = std::max(worst, std::fabs(have - want) / std::max(std::fabs(want), 1e-300));
        ++compared;
      }
    }
  }
  CHECK(compared == reference.size());
  MESSAGE(compared << " features compared; largest relative difference " << worst);
}

// The order the port printed, read back: (file, realization) rows are sorted by name in the map, so the
// order is checked by running the port on one file and reading its lines directly.
std::vector<std::string> port_names(const std::vector<std::size_t>& shape, const std::string& flags) {
  temp_dir dir;
  const auto file = (dir.path / "order.npy").string();
  write_file(file, write_npy(values_for(fill::real, product(shape), 7), shape, dtype::f8));
  int status = 0;
  const std::string out = run_command(
      "/usr/bin/python3 " + (source_dir() / "reference_harmonicpe.py").string() + " " + flags + " " + file, status);
  REQUIRE(status == 0);
  std::vector<std::string> names;
  std::istringstream lines(out);
  std::string line;
  while (std::getline(lines, line)) {
    std::istringstream fields(line);
    std::string field;
    std::getline(fields, field, '\t');
    std::getline(fields, field, '\t');
    std::getline(fields, field, '\t');
    names.push_back(field);
  }
  return names;
}

std::map<std::string, double> by_name(const realization_features& f) {
  std::map<std::string, double> m;
  for (std::size_t i = 0; i < f.values.size(); ++i) m[(*f.names)[i]] = f.values[i];
  return m;
}

std::map<std::string, double> features_of(const std::vector<double>& values, const std::vector<std::size_t>& shape,
                                          const options& o) {
  const auto buffer = write_npy(values, shape, dtype::f8);
  auto r = extract(parse_or_fail(buffer), o);
  REQUIRE(r.has_value());
  REQUIRE(r->size() == 1);
  return by_name(r->front());
}

}  // namespace

TEST_CASE("harmonicpe: seeded random realizations match the NumPy port of the original g2 within rel 1e-9 / abs 1e-12") {
  if (!have_numpy()) {
    MESSAGE("skipped: /usr/bin/python3 with numpy is not available");
    return;
  }
  npy_write_options big_endian, fortran;
  big_endian.big_endian = true;
  fortran.fortran_order = true;
  const std::vector<harmonicpe_case> cases = {
      {{2, 120, 30}, dtype::f8, fill::real},      {{3, 64, 17}, dtype::f4, fill::real},
      {{2, 3, 50, 8}, dtype::f8, fill::counts},   {{1, 97, 5}, dtype::i4, fill::counts},
      {{200, 3}, dtype::f8, fill::real},          {{2, 33, 1}, dtype::f8, fill::counts},   // one voxel
      {{1, 1}, dtype::f8, fill::real},            {{2, 1, 6}, dtype::u2, fill::counts},    // T = 1
      {{2, 2, 7}, dtype::f8, fill::real},         {{2, 3, 9}, dtype::f8, fill::counts},    // T < 4: no lag
      {{2, 4, 5}, dtype::f8, fill::real},         {{4, 31, 12}, dtype::f8, fill::counts},  // T = 4: one lag
      {{2, 1001, 6}, dtype::f4, fill::counts},    {{2, 300, 60}, dtype::i4, fill::counts},
      {{2, 60, 40}, dtype::u1, fill::sparse},     {{3, 25, 25}, dtype::f8, fill::sparse},
      {{2, 10, 4}, dtype::f8, fill::zeros},       {{2, 12, 5}, dtype::i2, fill::constant},
      {{2, 40, 9}, dtype::f8, fill::real, big_endian}, {{2, 2, 40, 9}, dtype::i4, fill::counts, fortran},
  };
  compare_with_port(cases, {}, 3000);
}

TEST_CASE("harmonicpe: with species names the port and the extractor agree on every named feature") {
  if (!have_numpy()) {
    MESSAGE("skipped: /usr/bin/python3 with numpy is not available");
    return;
  }
  compare_with_port({{{2, 150, 20}, dtype::f8, fill::counts}, {{2, 2, 40, 6}, dtype::i8, fill::counts},
                     {{2, 80, 30}, dtype::u2, fill::sparse}},
                    {"mRNA", "protein"}, 4000);
}

TEST_CASE("harmonicpe: names follow the original's order, which the NumPy port prints too") {
  auto n = feature_names(2, harmonicpe({"mRNA", "protein"}));
  REQUIRE(n.has_value());
  REQUIRE(n->size() == 59);
  const std::map<std::size_t, std::string> at = {
      {0, "mRNA.mean_sm"},
      {3, "mRNA.hpe_skew_sm"},
      {6, "mRNA.hpe_acf_norm_sm"},
      {8, "mRNA.fft_norm_smt"},
      {9, "mRNA_protein.corr_sm"},
      {10, "protein.mean_sm"},
      {18, "protein.fft_norm_smt"},
      {19, "mRNA_protein.per_timepoint.corr_norm"},
      {20, "mRNA_protein.per_voxel.corr_norm"},
      {21, "mRNA_protein.per_timepoint.corr_var"},
      {22, "mRNA_protein.per_voxel.corr_var"},
      {23, "mRNA.per_timepoint.burstiness_norm"},
      {26, "mRNA.per_voxel.burstiness_norm"},
      {29, "mRNA.per_timepoint.hpe_skew_norm"},
      {35, "mRNA.per_timepoint.cv_norm"},
      {40, "mRNA.per_voxel.cv_var"},
      {41, "protein.per_timepoint.burstiness_norm"},
      {58, "protein.per_voxel.cv_var"},
  };
  for (const auto& [i, name] : at) {
    CAPTURE(i);
    CHECK((*n)[i] == name);
  }
  // 2 x 8 features carry "hpe_": the ones the original defines differently.
  CHECK(std::count_if(n->begin(), n->end(), [](const std::string& s) { return s.find("hpe_") != std::string::npos; }) == 16);
  // The study's counts, whatever `spectral` says.
  for (std::size_t s = 1; s <= 4; ++s)
    for (bool spectral : {false, true}) {
      options o = harmonicpe();
      o.spectral = spectral;
      auto names = feature_names(s, o);
      REQUIRE(names.has_value());
      CHECK(names->size() == feature_count(s, false));
      CHECK(feature_count(s, o) == feature_count(s, false));
    }
  if (!have_numpy()) return;
  CHECK(port_names({2, 30, 4}, "--names mRNA,protein") == *n);
  CHECK(port_names({3, 30, 4}, "") == *feature_names(3, harmonicpe()));
  CHECK(port_names({30, 4}, "") == *feature_names(1, harmonicpe()));
}

TEST_CASE("harmonicpe: the 43 features defined alike equal hio's; skewness and the ACF norm differ") {
  const std::vector<std::size_t> shape = {2, 90, 25};
  const auto values = random_values(product(shape), 77, true);
  auto hio = features_of(values, shape, [] {
    options o;
    o.spectral = false;
    return o;
  }());
  auto hpe = features_of(values, shape, harmonicpe());
  REQUIRE(hpe.size() == 59);
  std::size_t same = 0, differ = 0;
  for (const auto& [name, value] : hpe) {
    CAPTURE(name);
    const auto at = name.find("hpe_");
    if (at == std::string::npos) {
      REQUIRE(hio.count(name) == 1);
      CHECK(close(value, hio.at(name), 1e-12, 1e-14));
      ++same;
    } else {
      const std::string hio_name = name.substr(0, at) + name.substr(at + 4);
      REQUIRE(hio.count(hio_name) == 1);
      CHECK_FALSE(close(value, hio.at(hio_name), 1e-6, 0));
      ++differ;
    }
  }
  CHECK(same == 43);
  CHECK(differ == 16);
}

TEST_CASE("harmonicpe: hand-computed values of short series, constants and zeros") {
  // (1, 2, 3, 4) in one voxel: mean 2.5 = median, sd sqrt(1.25): the original's skew (7.5 - 2.5)/sd = 2 sqrt(5)
  // (hio: 0); lag 1 correlates (1, 2, 3) with (2, 3, 4), exactly 1, scaled by 3/4 (hio: 1/4).
  auto f = features_of({1, 2, 3, 4}, {4, 1}, harmonicpe());
  CHECK(f.at("s0.hpe_skew_sm") == doctest::Approx(2 * std::sqrt(5.0)).epsilon(1e-12));
  CHECK(f.at("s0.hpe_acf_norm_sm") == doctest::Approx(0.75).epsilon(1e-12));
  CHECK(f.at("s0.per_voxel.hpe_skew_norm") == doctest::Approx(2 * std::sqrt(5.0)).epsilon(1e-12));
  CHECK(f.at("s0.per_timepoint.hpe_skew_norm") == 0);  // one voxel: each timepoint's series is constant
  // (1, 1, 1, 5): skew (6 - 1)/sqrt(3); lag 1's first segment (1, 1, 1) is constant, so the ACF norm is 0.
  f = features_of({1, 1, 1, 5}, {4, 1}, harmonicpe());
  CHECK(f.at("s0.hpe_skew_sm") == doctest::Approx(5 / std::sqrt(3.0)).epsilon(1e-12));
  CHECK(f.at("s0.hpe_acf_norm_sm") == 0);
  // T < 4: no lag.
  f = features_of({1, 5, 2}, {3, 1}, harmonicpe());
  CHECK(f.at("s0.hpe_acf_norm_sm") == 0);
  // A constant c in (T, V) = (6, 3): the same degenerate values as hio's set.
  f = features_of(std::vector<double>(18, 2.0), {6, 3}, harmonicpe());
  CHECK(f.at("s0.mean_sm") == 6);
  CHECK(f.at("s0.burstiness_sm") == -1);
  CHECK(f.at("s0.burstiness_smt") == -1);
  for (const char* zero : {"s0.hpe_skew_sm", "s0.cv_sm", "s0.cv_smt", "s0.hpe_acf_norm_sm", "s0.fft_norm_sm",
                           "s0.fft_norm_smt", "s0.per_timepoint.hpe_skew_norm", "s0.per_voxel.cv_mean"})
    CHECK_MESSAGE(f.at(zero) == 0, zero);
  CHECK(f.at("s0.per_timepoint.burstiness_norm") == doctest::Approx(std::sqrt(6.0)).epsilon(1e-15));
  CHECK(f.at("s0.per_voxel.burstiness_mean") == -1);
  // All zeros (the original would first write a random 1 into every all-zero row and column): all 0.
  f = features_of(std::vector<double>(2 * 5 * 4, 0.0), {2, 5, 4}, harmonicpe());
  REQUIRE(f.size() == 59);
  for (const auto& [name, value] : f) CHECK_MESSAGE(value == 0, name);
}

TEST_CASE("harmonicpe: 4-D realizations equal their 3-D slices, and one extractor serves both definitions") {
  const std::vector<std::size_t> shape = {3, 2, 40, 7};
  const auto values = random_values(product(shape), 11, false);
  const auto buffer = write_npy(values, shape, dtype::f8);
  extractor e;
  auto all = e.extract(parse_or_fail(buffer), harmonicpe());
  REQUIRE(all.has_value());
  REQUIRE(all->size() == 3);
  const std::size_t per = 2 * 40 * 7;
  for (std::size_t r = 0; r < 3; ++r) {
    const std::vector<double> slice(values.begin() + static_cast<std::ptrdiff_t>(r * per),
                                    values.begin() + static_cast<std::ptrdiff_t>((r + 1) * per));
    const auto one = write_npy(slice, std::vector<std::size_t>{2, 40, 7}, dtype::f8);
    auto got = e.extract(parse_or_fail(one), harmonicpe());
    REQUIRE(got.has_value());
    CHECK(got->front().values == (*all)[r].values);
    auto hio = e.extract(parse_or_fail(one));
    REQUIRE(hio.has_value());
    CHECK(hio->front().values.size() == 67);
  }
}

TEST_CASE("harmonicpe: NaN, Inf and overflowing sums are refused as in hio's set") {
  std::vector<double> x(2 * 6 * 3, 1.0);
  x[17] = std::numeric_limits<double>::quiet_NaN();
  const auto nan = write_npy(x, std::vector<std::size_t>{2, 6, 3}, dtype::f8);
  auto r = extract(parse_or_fail(nan), harmonicpe());
  REQUIRE_FALSE(r.has_value());
  CHECK(r.error().code == errc::non_finite_input);
  x[17] = std::numeric_limits<double>::infinity();
  const auto inf = write_npy(x, std::vector<std::size_t>{2, 6, 3}, dtype::f8);
  r = extract(parse_or_fail(inf), harmonicpe());
  REQUIRE_FALSE(r.has_value());
  CHECK(r.error().code == errc::non_finite_input);
  const auto huge = write_npy(std::vector<double>(6 * 3, 1e308), std::vector<std::size_t>{6, 3}, dtype::f8);
  r = extract(parse_or_fail(huge), harmonicpe());
  REQUIRE_FALSE(r.has_value());
  CHECK(r.error().code == errc::non_finite_input);
  // Bad species names are refused before any work.
  const auto ok = write_npy(std::vector<double>(2 * 6 * 3, 1.0), std::vector<std::size_t>{2, 6, 3}, dtype::f8);
  r = extract(parse_or_fail(ok), harmonicpe({"a.b", "c"}));
  REQUIRE_FALSE(r.has_value());
  CHECK(r.error().code == errc::invalid_argument);
}

TEST_CASE("harmonicpe: the GPU extractor refuses it (the kernels implement only hio's set)") {
  auto gpu = gpu_extractor::create();
  if (!gpu) {
    MESSAGE("skipped: no CUDA device (" << gpu.error().message << ")");
    return;
  }
  const auto buffer = write_npy(random_values(2 * 20 * 5, 3), std::vector<std::size_t>{2, 20, 5}, dtype::f8);
  auto r = (*gpu)->extract(parse_or_fail(buffer), harmonicpe());
  REQUIRE_FALSE(r.has_value());
  CHECK(r.error().code == errc::invalid_argument);
}
