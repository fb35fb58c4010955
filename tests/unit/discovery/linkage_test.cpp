#include <hio/discovery/clusters.hpp>
#include <hio/discovery/linkage.hpp>

#include "detail/kernels.hpp"
#include "scipy_reference.hpp"
#include "test_data.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <map>
#include <sstream>

using namespace hio::discovery;
using namespace hio::discovery::testing;

namespace {

constexpr linkage_method all_methods[] = {linkage_method::single, linkage_method::complete, linkage_method::average,
                                          linkage_method::ward};

double relative_difference(double a, double b) {
  if (a == b) return 0;
  return std::abs(a - b) / std::max(std::abs(a), std::abs(b));
}

// Empty when z equals SciPy's Z (indices and counts exactly, distances to 1e-9 relative or, with `exact`,
// bit for bit), else the first difference. Records the largest relative distance difference seen.
std::string compare_linkage(const linkage_matrix& z, const nlohmann::json& reference, double& worst, bool exact) {
  if (z.steps.size() != reference.size())
    return "rows: " + std::to_string(z.steps.size()) + " against SciPy's " + std::to_string(reference.size());
  for (std::size_t i = 0; i < z.steps.size(); ++i) {
    const linkage_step& s = z.steps[i];
    const auto& r = reference[i];
    const double rel = relative_difference(s.distance, r[2].get<double>());
    worst = std::max(worst, rel);
    if (static_cast<double>(s.first) != r[0].get<double>() || static_cast<double>(s.second) != r[1].get<double>() ||
        static_cast<double>(s.size) != r[3].get<double>() || rel > (exact ? 0.0 : 1e-9)) {
      std::ostringstream out;
      out.precision(17);
      out << "row " << i << ": [" << s.first << ", " << s.second << ", " << s.distance << ", " << s.size
          << "] against SciPy's " << r.dump();
      return out.str();
    }
  }
  return {};
}

// The last tie_heavy_cases inputs sit on an integer grid, so distances tie everywhere, and every
// difference of coordinates is a small integer, so hio's and SciPy's distances have the same bits.
constexpr std::size_t tie_heavy_cases = 5;

std::vector<matrix> reference_cases() {
  std::vector<matrix> cases;
  std::uint64_t seed = 20240601;
  for (std::size_t n : {2, 3, 10, 57, 300, 1000}) {
    const std::vector<std::size_t> dims = n == 1000 ? std::vector<std::size_t>{1, 3, 8} : std::vector<std::size_t>{1, 2, 3, 5, 8};
    for (std::size_t d : dims) cases.push_back(uniform_points(n, d, seed++));
  }
  // Wide enough for the principal-coordinate filter of single and ward (16 features and more), on
  // uniform points and on clustered ones, where the filter rules out most candidates.
  cases.push_back(uniform_points(300, 16, seed++));
  cases.push_back(uniform_points(1000, 59, seed++));
  std::vector<std::uint32_t> truth;
  cases.push_back(gaussian_blobs(1500, 40, 6, 5.0, seed++, truth));
  // The last grid is large enough for complete and average to compute distances on several threads,
  // and nearly every point has duplicates.
  const std::pair<std::size_t, std::size_t> grids[] = {{200, 1}, {200, 2}, {200, 3}, {200, 20}, {2500, 3}};
  for (const auto& [n, d] : grids) {
    matrix grid = uniform_points(n, d, seed++);
    for (std::size_t i = 0; i < grid.rows(); ++i)
      for (double& v : grid.row(i)) v = std::floor(v * 4);
    cases.push_back(std::move(grid));
  }
  return cases;
}

}  // namespace

// Single, complete and average repeat SciPy's searches and arithmetic, so they match it even where
// distances tie. Ward computes its distances from centroids, which round differently from SciPy's
// Lance-Williams updates, so on tied inputs it may take another of the equally valid merges: it is
// compared on the tie-free inputs only.
TEST_CASE("linkage matrices, leaf orders and flat clusters equal scipy's for every method and size") {
  const std::vector<matrix> cases = reference_cases();
  const scipy_results reference = scipy_reference(cases);
  REQUIRE_MESSAGE(reference.json.has_value(), reference.error);
  const auto& results = (*reference.json)["cases"];
  REQUIRE(results.size() == cases.size());

  std::map<std::string, std::pair<int, double>> summary;  // method: cases equal, worst relative difference
  for (std::size_t c = 0; c < cases.size(); ++c) {
    const matrix& x = cases[c];
    const bool ties = c + tie_heavy_cases >= cases.size();
    for (linkage_method method : all_methods) {
      if (ties && method == linkage_method::ward) continue;
      const std::string name(to_string(method));
      INFO("method " << name << ", n = " << x.rows() << ", d = " << x.cols() << (ties ? ", tie-heavy" : ""));
      const auto& ref = results[c]["methods"][name];
      auto z = linkage(x, method);
      REQUIRE(z.has_value());
      double worst = 0;
      // On the grids single, complete and average distances are sums and maxima of exact values: they
      // must have SciPy's bits.
      const std::string mismatch = compare_linkage(*z, ref["Z"], worst, ties);
      CHECK_MESSAGE(mismatch.empty(), mismatch);
      CHECK(leaf_order(*z) == ref["leaves"].get<std::vector<std::size_t>>());
      for (const auto& cut : ref["distance"]) {
        const auto expected = cut["labels"].get<std::vector<std::uint32_t>>();
        INFO("fcluster distance t = " << cut["t"].get<double>());
        CHECK(canonical(cut_at_distance(*z, cut["t"].get<double>())) == canonical(expected));
      }
      for (const auto& cut : ref["maxclust"]) {
        const auto expected = cut["labels"].get<std::vector<std::uint32_t>>();
        INFO("fcluster maxclust k = " << cut["k"].get<std::size_t>());
        CHECK(canonical(cut_into(*z, cut["k"].get<std::size_t>())) == canonical(expected));
      }
      auto& [equal, largest] = summary[name];
      equal += mismatch.empty() ? 1 : 0;
      largest = std::max(largest, worst);
    }
  }
  for (const auto& [name, s] : summary)
    MESSAGE(name << ": " << s.first << " of " << (name == "ward" ? cases.size() - tie_heavy_cases : cases.size())
                 << " inputs equal SciPy "
                 << (*reference.json)["scipy"].get<std::string>() << "'s linkage; largest relative distance difference "
                 << s.second);
}

TEST_CASE("weighted ward and average equal the unweighted methods on rows repeated weight times") {
  const matrix unique = uniform_points(40, 3, 7);
  std::vector<double> weights(unique.rows());
  std::vector<std::size_t> owner;  // row of `unique` behind each repeated row
  for (std::size_t i = 0; i < unique.rows(); ++i) {
    weights[i] = static_cast<double>(1 + i % 4);
    for (std::size_t r = 0; r < 1 + i % 4; ++r) owner.push_back(i);
  }
  matrix repeated(owner.size(), unique.cols());
  for (std::size_t i = 0; i < owner.size(); ++i)
    std::copy_n(unique.row(owner[i]).data(), unique.cols(), repeated.row(i).data());

  for (linkage_method method : all_methods) {
    INFO("method " << to_string(method));
    auto weighted = linkage(unique, weights, method);
    auto plain = linkage(repeated, method);
    REQUIRE(weighted.has_value());
    REQUIRE(plain.has_value());
    std::vector<double> expected;
    for (const auto& s : plain->steps)
      if (s.distance > 0) expected.push_back(s.distance);
    REQUIRE(expected.size() == weighted->steps.size());
    for (std::size_t i = 0; i < expected.size(); ++i)
      CHECK(relative_difference(weighted->steps[i].distance, expected[i]) < 1e-12);
    for (std::size_t k : {2, 5, 11}) {
      const auto small = cut_into(*weighted, k);
      std::vector<std::uint32_t> spread(owner.size());
      for (std::size_t i = 0; i < owner.size(); ++i) spread[i] = small[owner[i]];
      CHECK(canonical(spread) == canonical(cut_into(*plain, k)));
    }
  }
}

TEST_CASE("ward distances are the ward linkage distance of the merged centroids") {
  const matrix x(4, 1, {0.0, 1.0, 5.0, 7.0});
  auto z = linkage(x, linkage_method::ward);
  REQUIRE(z.has_value());
  REQUIRE(z->steps.size() == 3);
  CHECK(z->steps[0] == linkage_step{0, 1, 1.0, 2});
  CHECK(z->steps[1] == linkage_step{2, 3, 2.0, 2});
  // {0,1} at 0.5 and {5,7} at 6: sqrt(2 * 2 * 2 / 4) * 5.5
  CHECK(z->steps[2].distance == doctest::Approx(std::sqrt(2.0) * 5.5).epsilon(1e-15));
  CHECK(z->steps[2].first == 4);
  CHECK(z->steps[2].second == 5);
  CHECK(z->steps[2].size == 4);
}

TEST_CASE("fewer than two observations give an empty linkage, and bad input is refused") {
  for (linkage_method method : all_methods) {
    auto none = linkage(matrix(0, 3), method);
    REQUIRE(none.has_value());
    CHECK(none->steps.empty());
    auto one = linkage(matrix(1, 3), method);
    REQUIRE(one.has_value());
    CHECK(one->observations == 1);
    CHECK(one->steps.empty());
    CHECK(cut_into(*one, 3) == std::vector<std::uint32_t>{1});
  }
  matrix bad = uniform_points(5, 2, 1);
  bad(3, 1) = std::numeric_limits<double>::quiet_NaN();
  auto refused = linkage(bad, linkage_method::average);
  REQUIRE_FALSE(refused.has_value());
  CHECK(refused.error().code == 400);
  CHECK(refused.error().message.find("observation 3") != std::string::npos);
  const std::vector<double> short_weights(4, 1.0);
  CHECK_FALSE(linkage(uniform_points(5, 2, 1), short_weights, linkage_method::ward).has_value());
  const std::vector<double> zero_weight{1, 1, 0, 1, 1};
  CHECK_FALSE(linkage(uniform_points(5, 2, 1), zero_weight, linkage_method::ward).has_value());
}

TEST_CASE("linkage method names round-trip") {
  for (linkage_method method : all_methods) CHECK(parse_linkage_method(to_string(method)) == method);
  CHECK_FALSE(parse_linkage_method("centroid").has_value());
}

TEST_CASE("the AVX2 and AVX-512 kernels return the baseline kernels' bits") {
#if defined(__x86_64__) && defined(__GNUC__)
  const auto& base = detail::baseline_kernels;
  for (const bool avx512 : {false, true}) {
    if (!(avx512 ? __builtin_cpu_supports("avx512f") : __builtin_cpu_supports("avx2"))) continue;
    const auto& wide = avx512 ? detail::avx512_kernels : detail::avx2_kernels;
    for (std::size_t d : {1, 3, 4, 7, 8, 9, 16, 17, 59}) {
      INFO((avx512 ? "AVX-512" : "AVX2") << ", d = " << d);
      const std::size_t n = 23;
      const matrix x = uniform_points(n, d, d);
      // The square matrix in blocks of up to 4 rows against column ranges that split at 9.
      std::vector<double> c1(n * n), c2(n * n);
      for (std::size_t i = 0; i < n; i += 4)
        for (std::size_t j0 : {std::size_t{0}, std::size_t{9}}) {
          const std::size_t j1 = j0 == 0 ? 9 : n;
          const std::size_t count = std::min<std::size_t>(4, n - i);
          base.distance_rows(x.data(), d, i, count, j0, j1, c1.data() + i * n + j0, n);
          wide.distance_rows(x.data(), d, i, count, j0, j1, c2.data() + i * n + j0, n);
        }
      CHECK(std::memcmp(c1.data(), c2.data(), c1.size() * sizeof(double)) == 0);
      for (std::size_t i = 0; i < n; ++i)
        for (std::size_t j = 0; j < n; ++j) {
          const double s = base.squared_distance(x.row(i).data(), x.row(j).data(), d);
          CHECK(s == wide.squared_distance(x.row(i).data(), x.row(j).data(), d));
          CHECK(std::sqrt(s) == c1[i * n + j]);
          CHECK(c1[i * n + j] == c1[j * n + i]);
          CHECK(base.squared_distance_bounded(x.row(i).data(), x.row(j).data(), d, s) == s);
        }
    }
  }
#endif
}

TEST_CASE("complete linkage of too many observations for memory is refused, not thrown") {
#if !defined(HIO_ASAN)  // AddressSanitizer aborts on a 36 TB request instead of failing it
  const matrix x(3'000'000, 1);
  auto z = linkage(x, linkage_method::complete);
  REQUIRE_FALSE(z.has_value());
  CHECK(z.error().code == 413);
  CHECK(z.error().message.find("two-stage") != std::string::npos);
#endif
}
