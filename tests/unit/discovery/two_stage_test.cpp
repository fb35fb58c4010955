#include <hio/discovery/clusters.hpp>
#include <hio/discovery/two_stage.hpp>

#include "test_data.hpp"

#include <doctest/doctest.h>

#include <limits>
#include <numeric>

using namespace hio::discovery;
using namespace hio::discovery::testing;

TEST_CASE("the two-stage method recovers planted Gaussian blobs") {
  std::vector<std::uint32_t> truth;
  const matrix x = gaussian_blobs(40000, 6, 8, 6.0, 99, truth);
  for (linkage_method method : {linkage_method::ward, linkage_method::average}) {
    two_stage_options options;
    options.micro_clusters = 400;
    options.batches = 50;
    options.method = method;
    auto r = two_stage_cluster(x, options);
    REQUIRE(r.has_value());
    CHECK(r->sizes.size() <= 400);
    CHECK(std::accumulate(r->sizes.begin(), r->sizes.end(), std::size_t{0}) == x.rows());
    CHECK(r->tree.observations == r->sizes.size());
    const auto labels = propagate_labels(*r, cut_into(r->tree, 8));
    const double ari = adjusted_rand_index(labels, truth);
    MESSAGE("two-stage " << to_string(method) << ": ARI " << ari << " against 8 planted blobs, 40,000 points, "
                         << r->sizes.size() << " micro-clusters");
    CHECK(ari >= 0.95);
  }
}

TEST_CASE("the same seed gives the same two-stage clustering") {
  std::vector<std::uint32_t> truth;
  const matrix x = gaussian_blobs(5000, 4, 5, 5.0, 1, truth);
  two_stage_options options;
  options.micro_clusters = 100;
  options.batches = 20;
  auto a = two_stage_cluster(x, options);
  auto b = two_stage_cluster(x, options);
  REQUIRE(a.has_value());
  REQUIRE(b.has_value());
  CHECK(a->micro == b->micro);
  CHECK(a->centres == b->centres);
  options.seed = 2;
  auto c = two_stage_cluster(x, options);
  REQUIRE(c.has_value());
  CHECK(c->centres != a->centres);
}

TEST_CASE("each observation's micro-cluster is the nearest mini-batch centre") {
  std::vector<std::uint32_t> truth;
  const matrix x = gaussian_blobs(3000, 5, 4, 3.0, 5, truth);
  auto seeded = mini_batch_kmeans::seed(x, {.clusters = 37, .seed = 3});
  REQUIRE(seeded.has_value());
  mini_batch_kmeans k = std::move(*seeded);
  CHECK(k.centres().rows() == 37);
  k.update({x.data(), 500 * x.cols()});
  std::vector<std::uint32_t> labels(x.rows());
  k.assign(x.values(), labels);
  for (std::size_t i = 0; i < x.rows(); ++i) {
    double best = std::numeric_limits<double>::infinity();
    std::size_t arg = 0;
    for (std::size_t c = 0; c < k.centres().rows(); ++c) {
      double s = 0;
      for (std::size_t j = 0; j < x.cols(); ++j) s += (x(i, j) - k.centres()(c, j)) * (x(i, j) - k.centres()(c, j));
      if (s < best) {
        best = s;
        arg = c;
      }
    }
    double chosen = 0;
    for (std::size_t j = 0; j < x.cols(); ++j)
      chosen += (x(i, j) - k.centres()(labels[i], j)) * (x(i, j) - k.centres()(labels[i], j));
    CHECK(chosen <= best * (1 + 1e-9) + 1e-12);  // |c|² - 2 x·c rounds differently from |x - c|²
    (void)arg;
  }
}

TEST_CASE("fewer observations than micro-clusters give one micro-cluster per distinct observation") {
  const matrix x(5, 1, {1, 2, 2, 8, 9});
  auto r = two_stage_cluster(x, {.micro_clusters = 50});
  REQUIRE(r.has_value());
  CHECK(r->sizes.size() == 4);
  CHECK(r->micro[1] == r->micro[2]);
  const auto labels = propagate_labels(*r, cut_into(r->tree, 2));
  CHECK(canonical(labels) == std::vector<std::uint32_t>{1, 1, 1, 2, 2});
}

TEST_CASE("two-stage clustering refuses empty or non-finite data") {
  CHECK_FALSE(two_stage_cluster(matrix(0, 3)).has_value());
  matrix bad(3, 1, {1, std::numeric_limits<double>::infinity(), 2});
  auto r = two_stage_cluster(bad);
  REQUIRE_FALSE(r.has_value());
  CHECK(r.error().code == 400);
  CHECK_FALSE(two_stage_cluster(matrix(3, 1, {1, 2, 3}), {.micro_clusters = 0}).has_value());
}
