// The C++ features against an independent NumPy implementation of docs/features.md
// (reference_features.py), on seeded random realizations.

#include <hio/features/features.hpp>

#include "features_support.hpp"

#include <doctest/doctest.h>

using namespace hio::features;
using namespace hio::features::test;

namespace {

// Tolerance for float64 input (docs/features.md): the two differ only in summation order.
constexpr double rel_tolerance = 1e-9;
constexpr double abs_tolerance = 1e-12;

struct reference_case {
  std::vector<std::size_t> shape;
  dtype type;
  bool integral;
};

reference_values run_reference(const std::vector<std::string>& files, const std::string& flags) {
  int status = 0;
  auto values = run_reference_script("reference_features.py", files, flags, status);
  REQUIRE(status == 0);
  return values;
}

void compare_with_reference(const std::vector<reference_case>& cases, const options& o, const std::string& flags,
                            std::uint64_t seed) {
  temp_dir dir;
  std::vector<std::string> files;
  std::vector<std::vector<std::byte>> buffers;
  for (std::size_t i = 0; i < cases.size(); ++i) {
    const auto& c = cases[i];
    buffers.push_back(write_npy(random_values(product(c.shape), seed + i, c.integral), c.shape, c.type));
    files.push_back((dir.path / ("case" + std::to_string(i) + ".npy")).string());
    write_file(files.back(), buffers.back());
  }
  const auto reference = run_reference(files, flags);
  extractor e;
  std::size_t compared = 0;
  double worst = 0;
  for (std::size_t i = 0; i < cases.size(); ++i) {
    auto got = e.extract(parse_or_fail(buffers[i]), o);
    REQUIRE(got.has_value());
    for (std::size_t r = 0; r < got->size(); ++r) {
      const auto& f = (*got)[r];
      for (std::size_t k = 0; k < f.values.size(); ++k) {
        const std::string& name = (*f.names)[k];
        const auto it = reference.find({files[i], r, name});
        CAPTURE(files[i]);
        CAPTURE(r);
        CAPTURE(name);
        REQUIRE(it != reference.end());
        const double want = it->second, have = f.values[k];
        CAPTURE(want);
        CAPTURE(have);
        CHECK(close(have, want, rel_tolerance, abs_tolerance));
        if (want != have) worst = std::max(worst, std::fabs(have - want) / std::max(std::fabs(want), 1e-300));
        ++compared;
      }
    }
  }
  // Every reference value was compared: no feature is missing on either side.
  CHECK(compared == reference.size());
  MESSAGE(compared << " features compared; largest relative difference " << worst);
}

}  // namespace

TEST_CASE("reference: seeded random realizations match the NumPy reference within rel 1e-9 / abs 1e-12") {
  if (!have_numpy()) {
    MESSAGE("skipped: /usr/bin/python3 with numpy is not available");
    return;
  }
  const std::vector<reference_case> cases = {
      {{2, 120, 30}, dtype::f8, false}, {{3, 64, 17}, dtype::f4, false}, {{2, 3, 50, 8}, dtype::f8, true},
      {{1, 97, 5}, dtype::i4, true},    {{200, 3}, dtype::f8, false},    {{2, 33, 1}, dtype::f8, true},
      {{2, 2, 9}, dtype::f8, false},    {{3, 1, 6}, dtype::u2, true},    {{2, 3, 2}, dtype::f8, true},
      {{4, 31, 12}, dtype::f8, true},
      // Rows and columns of >= 48 values: the CPU's counting medians (integers, real values).
      {{2, 150, 120}, dtype::f4, false}, {{2, 120, 150}, dtype::i4, true},
      // Series lengths the shipped FFTW wisdom plans (src/detail/fft_wisdom.inc).
      {{2, 3000, 12}, dtype::f4, true}, {{1, 1000, 9}, dtype::f8, false},
  };
  compare_with_reference(cases, {}, "", 1000);
}

TEST_CASE("reference: the study's feature set without the spectral part, with species names, matches too") {
  if (!have_numpy()) {
    MESSAGE("skipped: /usr/bin/python3 with numpy is not available");
    return;
  }
  options o;
  o.spectral = false;
  o.species_names = {"mRNA", "protein"};
  compare_with_reference({{{2, 150, 20}, dtype::f8, false}, {{2, 2, 40, 6}, dtype::i8, true}}, o,
                         "--no-spectral --names mRNA,protein", 2000);
}
