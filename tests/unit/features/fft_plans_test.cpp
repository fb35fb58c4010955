// The CPU extractor's FFT plans: the lengths the shipped FFTW wisdom covers are planned from it (not by
// timing), results do not depend on which extractor computed them, and the dominant-bin tie rule holds
// with those plans on spectra that are flat or tied at many bins.

#include <hio/features/features.hpp>

#include "detail/fft_wisdom.hpp"
#include "features_support.hpp"

#include <doctest/doctest.h>

#include <cmath>
#include <cstring>
#include <map>
#include <string>

using namespace hio::features;
using namespace hio::features::test;

namespace {

std::vector<double> all_values(extractor& e, const npy_array& a, const options& o = {}) {
  auto r = e.extract(a, o);
  REQUIRE(r.has_value());
  std::vector<double> all;
  for (const auto& f : *r) all.insert(all.end(), f.values.begin(), f.values.end());
  return all;
}

bool same_bits(const std::vector<double>& x, const std::vector<double>& y) {
  return x.size() == y.size() && std::memcmp(x.data(), y.data(), x.size() * sizeof(double)) == 0;
}

std::map<std::string, double> named(const std::vector<std::byte>& buffer) {
  extractor e;
  auto r = e.extract(parse_or_fail(buffer));
  REQUIRE(r.has_value());
  std::map<std::string, double> out;
  for (std::size_t i = 0; i < r->front().values.size(); ++i) out[(*r->front().names)[i]] = r->front().values[i];
  return out;
}

}  // namespace

TEST_CASE("fft plans: the lengths of the shipped wisdom are planned from it, others with FFTW_ESTIMATE") {
  for (std::size_t t : {1000, 2000, 3000}) {
    CAPTURE(t);
    CHECK(detail::voxel_plan_from_wisdom(t));
    CHECK_FALSE(detail::describe_voxel_plan(t, false).empty());
  }
  CHECK_FALSE(detail::voxel_plan_from_wisdom(97));
  CHECK_FALSE(detail::voxel_plan_from_wisdom(2999));
}

TEST_CASE("fft plans: fresh extractors, a reused one and the baseline build give bit-identical features") {
  const std::vector<std::vector<std::size_t>> shapes = {{2, 3000, 24}, {1, 1000, 9}, {2, 2000, 5}, {3, 97, 6}};
  std::uint64_t seed = 900;
  for (const auto& shape : shapes)
    for (bool integral : {true, false}) {
      CAPTURE(shape[1]);
      CAPTURE(integral);
      const auto buffer = write_npy(random_values(product(shape), ++seed, integral), shape, dtype::f4);
      const auto a = parse_or_fail(buffer);
      extractor first, second;
      const auto x = all_values(first, a);
      CHECK(same_bits(x, all_values(second, a)));
      CHECK(same_bits(x, all_values(first, a)));
      extractor_options baseline;
      baseline.avx2 = false;
      extractor third(baseline);
      CHECK(same_bits(x, all_values(third, a)));
    }
}

TEST_CASE("fft plans: flat and many-way tied spectra of planned lengths give the lowest tied frequency") {
  for (std::size_t T : {1000, 2000, 3000}) {
    CAPTURE(T);
    // Voxel 0: one spike, |X_k|^2 = h^2 at every bin k >= 1 (period T). Voxel 1: two spikes T/2 apart,
    // power 4 h^2 at the even bins, 0 at the odd ones (period T/2). Spikes of very different heights in
    // the two voxels; each voxel's spectrum is its own.
    const std::size_t V = 2;
    std::vector<double> x(T * V, 0.0);
    x[17 * V + 0] = 3;
    x[5 * V + 1] = 1000;
    x[(5 + T / 2) * V + 1] = 1000;
    const auto f = named(write_npy(x, dims({T, V}), dtype::f8));
    const double bins = static_cast<double>(T / 2);
    CHECK(f.at("s0.spec.period_mean") == (static_cast<double>(T) + static_cast<double>(T) / 2) / 2);
    CHECK(f.at("s0.spec.period_std") == static_cast<double>(T) / 4);
    // shares: 1 / bins (flat) and 4 / (4 * bins / 2) = 2 / bins (even bins only)
    CHECK(close(f.at("s0.spec.share_mean"), 1.5 / bins, 1e-12, 0));
    CHECK(f.at("s0.spec.peaked_fraction") == 0);
  }
}
