#include <hio/features/features.hpp>

#include "features_support.hpp"

#include <doctest/doctest.h>

#include <cmath>
#include <limits>
#include <map>

using namespace hio::features;
using namespace hio::features::test;

namespace {

std::map<std::string, double> features_of(const std::vector<double>& values, const std::vector<std::size_t>& shape,
                                          const options& o = {}) {
  const auto buffer = write_npy(values, shape, dtype::f8);
  auto r = extract(parse_or_fail(buffer), o);
  REQUIRE(r.has_value());
  REQUIRE(r->size() == 1);
  std::map<std::string, double> m;
  const auto& f = r->front();
  REQUIRE(f.names->size() == f.values.size());
  for (std::size_t i = 0; i < f.values.size(); ++i) m[(*f.names)[i]] = f.values[i];
  return m;
}

void check_features(const std::map<std::string, double>& got, const std::map<std::string, double>& expected) {
  for (const auto& [name, value] : expected) {
    CAPTURE(name);
    REQUIRE(got.count(name) == 1);
    CHECK(got.at(name) == doctest::Approx(value).epsilon(1e-12));
  }
}

}  // namespace

TEST_CASE("features: 27 per species and 5 per pair make the study's 59 for two species; spectral adds 4 per species") {
  CHECK(feature_count(1, false) == 27);
  CHECK(feature_count(2, false) == 59);
  CHECK(feature_count(3, false) == 96);
  CHECK(feature_count(1, true) == 31);
  CHECK(feature_count(2, true) == 67);
  CHECK(feature_count(3, true) == 108);
  for (std::size_t s = 1; s <= 4; ++s)
    for (bool spectral : {false, true}) {
      options o;
      o.spectral = spectral;
      auto names = feature_names(s, o);
      REQUIRE(names.has_value());
      CHECK(names->size() == feature_count(s, spectral));
    }
}

TEST_CASE("features: names are stable, species blocks first, then pairs, with species names when given") {
  options o;
  auto n = feature_names(2, o);
  REQUIRE(n.has_value());
  CHECK(n->front() == "s0.mean_sm");
  CHECK((*n)[1] == "s0.burstiness_sm");
  CHECK((*n)[9] == "s0.per_timepoint.burstiness_norm");
  CHECK((*n)[18] == "s0.per_voxel.burstiness_norm");
  CHECK((*n)[26] == "s0.per_voxel.cv_var");
  CHECK((*n)[27] == "s0.spec.period_mean");
  CHECK((*n)[31] == "s1.mean_sm");
  CHECK((*n)[62] == "s0_s1.corr_sm");
  CHECK(n->back() == "s0_s1.per_voxel.corr_var");
  o.species_names = {"mRNA", "protein"};
  auto named = feature_names(2, o);
  REQUIRE(named.has_value());
  CHECK(named->front() == "mRNA.mean_sm");
  CHECK(named->back() == "mRNA_protein.per_voxel.corr_var");
}

TEST_CASE("features: species names that do not fit are refused with invalid_argument") {
  for (const auto& names : std::vector<std::vector<std::string>>{{"a"}, {"a", "b", "c"}, {"a", ""}, {"a.b", "c"},
                                                                 {"a b", "c"}, {"x", "x"}}) {
    options o;
    o.species_names = names;
    auto n = feature_names(2, o);
    REQUIRE_FALSE(n.has_value());
    CHECK(n.error().code == errc::invalid_argument);
    const auto buffer = write_npy(std::vector<double>(2 * 3 * 4, 1.0), dims({2, 3, 4}), dtype::f8);
    auto a = parse_or_fail(buffer);
    auto r = extract(a, o);
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error().code == errc::invalid_argument);
  }
}

TEST_CASE("features: an all-zero realization gives every feature 0") {
  const auto f = features_of(std::vector<double>(2 * 4 * 3, 0.0), dims({2, 4, 3}));
  CHECK(f.size() == 67);
  for (const auto& [name, value] : f) {
    CAPTURE(name);
    CHECK(value == 0.0);
  }
}

TEST_CASE("features: a constant realization has burstiness -1 and zero spread, skew, acf, fft and spectrum") {
  const auto f = features_of(std::vector<double>(4 * 3, 2.0), dims({4, 3}));
  const double sqrt3 = std::sqrt(3.0);
  check_features(f, {{"s0.mean_sm", 6}, {"s0.burstiness_sm", -1}, {"s0.burstiness_smt", -1}, {"s0.skew_sm", 0},
                     {"s0.cv_sm", 0}, {"s0.cv_smt", 0}, {"s0.acf_norm_sm", 0}, {"s0.fft_norm_sm", 0}, {"s0.fft_norm_smt", 0},
                     {"s0.per_timepoint.burstiness_norm", 2}, {"s0.per_timepoint.burstiness_mean", -1},
                     {"s0.per_timepoint.burstiness_var", 0}, {"s0.per_timepoint.skew_norm", 0},
                     {"s0.per_timepoint.cv_mean", 0}, {"s0.per_voxel.burstiness_norm", sqrt3},
                     {"s0.per_voxel.burstiness_mean", -1}, {"s0.per_voxel.burstiness_var", 0},
                     {"s0.per_voxel.cv_norm", 0}, {"s0.spec.period_mean", 0}, {"s0.spec.period_std", 0},
                     {"s0.spec.share_mean", 0}, {"s0.spec.peaked_fraction", 0}});
}

TEST_CASE("features: two species over two timepoints and two voxels match the hand computation") {
  // s0 = [[1, 3], [2, 2]], s1 = [[0, 0], [0, 5]]  (rows are timepoints, columns voxels)
  options o;
  o.species_names = {"a", "b"};
  const auto f = features_of({1, 3, 2, 2, 0, 0, 0, 5}, dims({2, 2, 2}), o);
  CHECK(f.size() == 67);
  check_features(
      f, {// a: Sm = [4, 4] (constant), SmT = [3, 5] (mean 4, sd 1)
          {"a.mean_sm", 4}, {"a.burstiness_sm", -1}, {"a.burstiness_smt", -0.6}, {"a.skew_sm", 0}, {"a.cv_sm", 0},
          {"a.cv_smt", 0.25}, {"a.acf_norm_sm", 0}, {"a.fft_norm_sm", 0}, {"a.fft_norm_smt", 2},
          // rows [1, 3]: b = -1/3, skew 0, cv 1/2; [2, 2]: b = -1, skew 0, cv 0
          {"a.per_timepoint.burstiness_norm", std::sqrt(10.0) / 3}, {"a.per_timepoint.burstiness_mean", -2.0 / 3},
          {"a.per_timepoint.burstiness_var", 1.0 / 9}, {"a.per_timepoint.skew_norm", 0}, {"a.per_timepoint.skew_var", 0},
          {"a.per_timepoint.cv_norm", 0.5}, {"a.per_timepoint.cv_mean", 0.25}, {"a.per_timepoint.cv_var", 0.0625},
          // columns [1, 2]: b = -1/2, cv 1/3; [3, 2]: b = -2/3, cv 1/5
          {"a.per_voxel.burstiness_norm", 5.0 / 6}, {"a.per_voxel.burstiness_mean", -7.0 / 12},
          {"a.per_voxel.burstiness_var", 1.0 / 144}, {"a.per_voxel.skew_mean", 0},
          {"a.per_voxel.cv_norm", std::sqrt(1.0 / 9 + 1.0 / 25)}, {"a.per_voxel.cv_mean", 4.0 / 15},
          {"a.per_voxel.cv_var", 1.0 / 225},
          // both columns alternate: one bin (k = 1), period 2, all the power
          {"a.spec.period_mean", 2}, {"a.spec.period_std", 0}, {"a.spec.share_mean", 1}, {"a.spec.peaked_fraction", 1},
          // b: Sm = [0, 5], SmT = [0, 5]
          {"b.mean_sm", 2.5}, {"b.burstiness_sm", 0}, {"b.burstiness_smt", 0}, {"b.skew_sm", 0}, {"b.cv_sm", 1},
          {"b.cv_smt", 1}, {"b.fft_norm_sm", 5}, {"b.fft_norm_smt", 5}, {"b.per_timepoint.cv_norm", 1},
          {"b.per_timepoint.cv_mean", 0.5}, {"b.per_timepoint.cv_var", 0.25}, {"b.per_voxel.cv_var", 0.25},
          // voxel 0 is constant (period 0, share 0), voxel 1 has period 2 and share 1
          {"b.spec.period_mean", 1}, {"b.spec.period_std", 1}, {"b.spec.share_mean", 0.5},
          {"b.spec.peaked_fraction", 0.5},
          // pairs: every correlation with a constant series is 0; voxel 1: [3, 2] vs [0, 5] is -1
          {"a_b.corr_sm", 0}, {"a_b.per_timepoint.corr_norm", 0}, {"a_b.per_timepoint.corr_var", 0},
          {"a_b.per_voxel.corr_norm", 1}, {"a_b.per_voxel.corr_var", 0.25}});
}

TEST_CASE("features: a single voxel with one burst matches the hand-computed skew, acf and tied spectrum") {
  // Sm = [0, 0, 0, 4]: mean 1, sd sqrt(3), median 0; acf lag 1 = -1/12; rfft power 16 at k = 1 and k = 2.
  const auto f = features_of({0, 0, 0, 4}, dims({4, 1}));
  const double r3 = std::sqrt(3.0), b = (r3 - 1) / (r3 + 1);
  check_features(f, {{"s0.mean_sm", 1}, {"s0.burstiness_sm", b}, {"s0.skew_sm", r3}, {"s0.cv_sm", r3},
                     {"s0.acf_norm_sm", 1.0 / 12}, {"s0.fft_norm_sm", 4 * r3}, {"s0.burstiness_smt", -1},
                     {"s0.cv_smt", 0}, {"s0.fft_norm_smt", 0},
                     // rows are single values 0, 0, 0, 4: burstiness 0, 0, 0, -1
                     {"s0.per_timepoint.burstiness_norm", 1}, {"s0.per_timepoint.burstiness_mean", -0.25},
                     {"s0.per_timepoint.burstiness_var", 0.1875}, {"s0.per_timepoint.skew_norm", 0},
                     {"s0.per_voxel.burstiness_mean", b}, {"s0.per_voxel.skew_mean", r3}, {"s0.per_voxel.skew_var", 0},
                     {"s0.per_voxel.cv_norm", r3},
                     // equal power at k = 1 and 2: the lower frequency wins, the share is exactly one half
                     {"s0.spec.period_mean", 4}, {"s0.spec.share_mean", 0.5}, {"s0.spec.peaked_fraction", 0}});
}

TEST_CASE("features: a single timepoint has defined values (no lags, no spectrum)") {
  const auto f = features_of({1, 2, 3}, dims({1, 3}));
  const double sd = std::sqrt(2.0 / 3), b = (sd - 2) / (sd + 2);
  check_features(f, {{"s0.mean_sm", 6}, {"s0.burstiness_sm", -1}, {"s0.skew_sm", 0}, {"s0.acf_norm_sm", 0},
                     {"s0.fft_norm_sm", 0}, {"s0.burstiness_smt", b}, {"s0.cv_smt", sd / 2}, {"s0.fft_norm_smt", 3 * sd},
                     {"s0.per_timepoint.burstiness_norm", std::fabs(b)}, {"s0.per_timepoint.burstiness_mean", b},
                     {"s0.per_timepoint.burstiness_var", 0}, {"s0.per_timepoint.cv_mean", sd / 2},
                     {"s0.per_voxel.burstiness_norm", std::sqrt(3.0)}, {"s0.per_voxel.burstiness_mean", -1},
                     {"s0.spec.period_mean", 0}, {"s0.spec.share_mean", 0}});
}

TEST_CASE("features: pure cosines have their period as the dominant period with all the power") {
  std::vector<double> x(8 * 2);
  for (std::size_t t = 0; t < 8; ++t) {
    x[t * 2 + 0] = std::cos(2 * M_PI * static_cast<double>(t) / 4);  // period 4
    x[t * 2 + 1] = t % 2 == 0 ? 1 : -1;                              // period 2
  }
  const auto f = features_of(x, dims({8, 2}));
  check_features(f, {{"s0.spec.period_mean", 3}, {"s0.spec.period_std", 1}, {"s0.spec.share_mean", 1},
                     {"s0.spec.peaked_fraction", 1}});
}

TEST_CASE("features: NaN, Inf and overflowing sums are refused with non_finite_input") {
  for (double bad : {std::numeric_limits<double>::quiet_NaN(), std::numeric_limits<double>::infinity(),
                     -std::numeric_limits<double>::infinity()}) {
    std::vector<double> x(3 * 4, 1.0);
    x[5] = bad;
    const auto buffer = write_npy(x, dims({3, 4}), dtype::f8);
    auto r = extract(parse_or_fail(buffer));
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error().code == errc::non_finite_input);
  }
  std::vector<double> big(3 * 4, 1.5e308);
  const auto buffer = write_npy(big, dims({3, 4}), dtype::f8);
  auto r = extract(parse_or_fail(buffer));
  REQUIRE_FALSE(r.has_value());
  CHECK(r.error().code == errc::non_finite_input);
}

TEST_CASE("features: each realization of a 4-D array gets the features of that realization alone") {
  const auto x = random_values(3 * 2 * 50 * 7, 11);
  const auto buffer = write_npy(x, dims({3, 2, 50, 7}), dtype::f8);
  auto all = extract(parse_or_fail(buffer));
  REQUIRE(all.has_value());
  REQUIRE(all->size() == 3);
  CHECK((*all)[0].names == (*all)[2].names);
  for (std::size_t r = 0; r < 3; ++r) {
    const std::vector<double> slice(x.begin() + static_cast<std::ptrdiff_t>(r * 700),
                                    x.begin() + static_cast<std::ptrdiff_t>((r + 1) * 700));
    const auto one_buffer = write_npy(slice, dims({2, 50, 7}), dtype::f8);
    auto one = extract(parse_or_fail(one_buffer));
    REQUIRE(one.has_value());
    CHECK(one->front().values == (*all)[r].values);
  }
  CHECK((*all)[0].values != (*all)[1].values);
}

TEST_CASE("features: the same values in any dtype, byte order or memory order give identical features") {
  const auto x = random_values(2 * 40 * 9, 5, true);
  const auto buffer = write_npy(x, dims({2, 40, 9}), dtype::f8);
  auto reference = extract(parse_or_fail(buffer));
  REQUIRE(reference.has_value());
  for (dtype t : {dtype::f4, dtype::i4, dtype::u2, dtype::i8, dtype::u1})
    for (bool big : {false, true})
      for (bool fortran : {false, true}) {
        CAPTURE(to_string(t));
        CAPTURE(big);
        CAPTURE(fortran);
        const auto other = write_npy(x, dims({2, 40, 9}), t, {1, big, fortran});
        auto r = extract(parse_or_fail(other));
        REQUIRE(r.has_value());
        CHECK(r->front().values == reference->front().values);
      }
}

TEST_CASE("features: one extractor reused across shapes gives the same values as fresh ones") {
  extractor e;
  const std::vector<std::vector<std::size_t>> shapes = {{2, 64, 10}, {3, 17, 4}, {2, 64, 10}, {1, 5, 33}, {2, 2, 2, 2}};
  std::uint64_t seed = 100;
  for (const auto& shape : shapes) {
    const auto buffer = write_npy(random_values(product(shape), ++seed), shape, dtype::f4);
    const auto a = parse_or_fail(buffer);
    auto reused = e.extract(a);
    auto fresh = extract(a);
    REQUIRE(reused.has_value());
    REQUIRE(fresh.has_value());
    REQUIRE(reused->size() == fresh->size());
    for (std::size_t r = 0; r < fresh->size(); ++r) CHECK((*reused)[r].values == (*fresh)[r].values);
  }
}

TEST_CASE("features: degenerate shapes and sparse inputs never give NaN or Inf") {
  std::uint64_t seed = 1;
  for (std::size_t s : {1, 2, 3})
    for (std::size_t t : {1, 2, 3, 4, 5, 16})
      for (std::size_t v : {1, 2, 3, 8}) {
        auto x = random_values(s * t * v, ++seed, true);
        for (std::size_t i = 0; i < x.size(); ++i)
          if (i % 3 != 0) x[i] = 0;  // mostly empty, as sparse simulations are
        for (bool spectral : {false, true}) {
          options o;
          o.spectral = spectral;
          const auto buffer = write_npy(x, dims({s, t, v}), dtype::f8);
          auto r = extract(parse_or_fail(buffer), o);
          REQUIRE(r.has_value());
          CHECK(r->front().values.size() == feature_count(s, spectral));
          for (double value : r->front().values) CHECK(std::isfinite(value));
        }
      }
}
