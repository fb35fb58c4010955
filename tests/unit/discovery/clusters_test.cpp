#include <hio/discovery/clusters.hpp>
#include <hio/discovery/linkage.hpp>

#include "test_data.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <set>

using namespace hio::discovery;
using namespace hio::discovery::testing;

TEST_CASE("flat cluster labels count up along the leaf order") {
  const matrix x = uniform_points(200, 3, 11);
  for (linkage_method method : {linkage_method::single, linkage_method::average, linkage_method::ward}) {
    auto z = linkage(x, method);
    REQUIRE(z.has_value());
    const auto order = leaf_order(*z);
    for (std::size_t k : {1, 2, 7, 50, 199, 200}) {
      const auto labels = cut_into(*z, k);
      std::uint32_t highest = 0;
      for (std::size_t leaf : order) {
        CHECK(labels[leaf] <= highest + 1);  // a new label is always the next one
        CHECK(labels[leaf] + 1 >= highest + 1);  // clusters are contiguous in leaf order: never go back
        highest = std::max(highest, labels[leaf]);
      }
      CHECK(highest == k);
    }
  }
}

TEST_CASE("cutting into k clusters gives exactly k for every k on tie-free data, n - 1 and n included") {
  // SciPy 1.10's maxclust gives fewer clusters for k >= n - 1 (scipy/scipy#12651, fixed in 1.15).
  const matrix x = uniform_points(30, 2, 3);
  auto z = linkage(x, linkage_method::complete);
  REQUIRE(z.has_value());
  for (std::size_t k = 1; k <= 30; ++k) CHECK(cluster_sizes(cut_into(*z, k)).size() == k);
  CHECK(cluster_sizes(cut_into(*z, 1000)).size() == 30);
  CHECK(cluster_sizes(cut_into(*z, 0)).size() == 1);
}

TEST_CASE("a distance cut below every merge leaves singletons and one above every merge leaves one cluster") {
  const matrix x = uniform_points(25, 4, 5);
  auto z = linkage(x, linkage_method::average);
  REQUIRE(z.has_value());
  const auto singletons = cut_at_distance(*z, 0.0);
  CHECK(std::set<std::uint32_t>(singletons.begin(), singletons.end()).size() == 25);
  const auto one = cut_at_distance(*z, z->steps.back().distance);
  CHECK(std::all_of(one.begin(), one.end(), [](std::uint32_t l) { return l == 1; }));
}

TEST_CASE("leaf order lists every observation once") {
  const matrix x = uniform_points(101, 2, 9);
  auto z = linkage(x, linkage_method::ward);
  REQUIRE(z.has_value());
  auto order = leaf_order(*z);
  std::sort(order.begin(), order.end());
  for (std::size_t i = 0; i < order.size(); ++i) CHECK(order[i] == i);
}

TEST_CASE("a summary gives each cluster's size, centroid and the member nearest the centroid") {
  const matrix x(6, 2, {0, 0, 2, 0, 1, 0.2,  //
                        10, 10, 10, 12, 30, 30});
  const std::vector<std::uint32_t> labels{1, 1, 1, 2, 2, 3};
  const auto s = summarize(x, labels);
  REQUIRE(s.size() == 3);
  CHECK(s[0].size == 3);
  CHECK(s[0].centroid[0] == doctest::Approx(1.0));
  CHECK(s[0].centroid[1] == doctest::Approx(0.2 / 3));
  CHECK(s[0].representative == 2);
  CHECK(s[1].size == 2);
  CHECK(s[1].representative == 3);  // equidistant: the lower row
  CHECK(s[2].representative == 5);
  CHECK(cluster_sizes(labels) == std::vector<std::size_t>{3, 2, 1});
}

TEST_CASE("the 2-D projection finds the principal axes with a fixed sign") {
  // Points spread along (0.6, -0.8, 0) with a little spread along (0.8, 0.6, 0) and none along z.
  std::mt19937_64 random(4);
  std::normal_distribution<double> wide(0.0, 5.0), narrow(0.0, 1.0);
  matrix x(2000, 3);
  for (std::size_t i = 0; i < x.rows(); ++i) {
    const double a = wide(random), b = narrow(random);
    x(i, 0) = 3 + 0.6 * a + 0.8 * b;
    x(i, 1) = -1 - 0.8 * a + 0.6 * b;
    x(i, 2) = 7;
  }
  const projection p = project_2d(x);
  CHECK(p.axes(0, 0) == doctest::Approx(-0.6).epsilon(0.01));  // largest component (-0.8) made positive
  CHECK(p.axes(0, 1) == doctest::Approx(0.8).epsilon(0.01));
  CHECK(std::abs(p.axes(0, 2)) < 1e-12);
  CHECK(p.axes(1, 0) == doctest::Approx(0.8).epsilon(0.01));
  CHECK(p.axes(1, 1) == doctest::Approx(0.6).epsilon(0.01));
  CHECK(p.variances[0] == doctest::Approx(25).epsilon(0.1));
  CHECK(p.variances[1] == doctest::Approx(1).epsilon(0.1));
  // The projection's coordinates have the reported variances and no correlation.
  double v0 = 0, v1 = 0, c01 = 0;
  for (std::size_t i = 0; i < x.rows(); ++i) {
    v0 += p.points(i, 0) * p.points(i, 0);
    v1 += p.points(i, 1) * p.points(i, 1);
    c01 += p.points(i, 0) * p.points(i, 1);
  }
  const double n = static_cast<double>(x.rows());
  CHECK(v0 / n == doctest::Approx(p.variances[0]).epsilon(1e-9));
  CHECK(v1 / n == doctest::Approx(p.variances[1]).epsilon(1e-9));
  CHECK(std::abs(c01 / n) < 1e-9);
}

TEST_CASE("no direction carries more variance than the first principal axis") {
  const matrix x = uniform_points(500, 6, 21);
  const projection p = project_2d(x);
  std::mt19937_64 random(1);
  std::normal_distribution<double> g(0.0, 1.0);
  for (int trial = 0; trial < 200; ++trial) {
    std::vector<double> u(6);
    double norm = 0;
    for (double& v : u) {
      v = g(random);
      norm += v * v;
    }
    double var = 0;
    for (std::size_t i = 0; i < x.rows(); ++i) {
      double s = 0;
      for (std::size_t j = 0; j < 6; ++j) s += (x(i, j) - p.mean[j]) * u[j];
      var += s * s;
    }
    CHECK(var / norm / static_cast<double>(x.rows()) <= p.variances[0] * (1 + 1e-12));
  }
  double dot = 0, n0 = 0, n1 = 0;
  for (std::size_t j = 0; j < 6; ++j) {
    dot += p.axes(0, j) * p.axes(1, j);
    n0 += p.axes(0, j) * p.axes(0, j);
    n1 += p.axes(1, j) * p.axes(1, j);
  }
  CHECK(std::abs(dot) < 1e-12);
  CHECK(n0 == doctest::Approx(1.0));
  CHECK(n1 == doctest::Approx(1.0));
}

TEST_CASE("one feature projects onto one axis and the second is zero") {
  const matrix x(4, 1, {1, 2, 3, 4});
  const projection p = project_2d(x);
  CHECK(p.axes(0, 0) == 1.0);
  CHECK(p.axes(1, 0) == 0.0);
  CHECK(p.points(0, 0) == doctest::Approx(-1.5));
  CHECK(p.points(3, 1) == 0.0);
  CHECK(p.variances[0] == doctest::Approx(1.25));
}

TEST_CASE("the adjusted rand index is 1 for equal partitions and matches a worked example") {
  const std::vector<std::uint32_t> a{1, 1, 2, 2, 3, 3};
  const std::vector<std::uint32_t> renumbered{7, 7, 1, 1, 4, 4};
  CHECK(adjusted_rand_index(a, renumbered) == 1.0);
  // Contingency [[2,0],[0,1],[0,1]] of {1,1,2,2} against {1,1,2,3}: index 1, sums 2 and 1, 6 pairs:
  // expected 2/6, maximum 1.5, so (1 - 1/3) / (1.5 - 1/3) = 4/7.
  const std::vector<std::uint32_t> t{1, 1, 2, 2};
  const std::vector<std::uint32_t> p{1, 1, 2, 3};
  CHECK(adjusted_rand_index(t, p) == doctest::Approx(4.0 / 7.0).epsilon(1e-15));
  const std::vector<std::uint32_t> all_one(5, 1);
  CHECK(adjusted_rand_index(all_one, all_one) == 1.0);
  std::mt19937_64 random(3);
  std::vector<std::uint32_t> r1(20000), r2(20000);
  for (auto& v : r1) v = static_cast<std::uint32_t>(random() % 5);
  for (auto& v : r2) v = static_cast<std::uint32_t>(random() % 5);
  CHECK(std::abs(adjusted_rand_index(r1, r2)) < 0.01);
}
