#include <hio/discovery/clusters.hpp>
#include <hio/discovery/cut.hpp>
#include <hio/discovery/knowledge.hpp>
#include <hio/discovery/two_stage.hpp>

#include "test_data.hpp"

#include <doctest/doctest.h>

#include <cstdio>
#include <string>

using namespace hio::discovery;
using namespace hio::discovery::testing;

namespace {

matrix line(std::initializer_list<double> v) {
  matrix x(v.size(), 1);
  std::size_t i = 0;
  for (double d : v) x(i++, 0) = d;
  return x;
}

struct planted_case {
  const char* name;
  std::vector<std::size_t> groups;
};

const planted_case planted[] = {
    {"2 regimes", {1, 1}},
    {"3 nested: A, (B C)", {1, 2}},
    {"5 nested: (A1 A2), (B1 B2 B3)", {2, 3}},
};

}  // namespace

TEST_CASE("cut criteria have stable names") {
  for (auto c : {cut_criterion::mojena, cut_criterion::silhouette, cut_criterion::calinski_harabasz,
                 cut_criterion::widest_gap})
    CHECK(parse_cut_criterion(to_string(c)) == c);
  CHECK(to_string(cut_criterion::calinski_harabasz) == "calinski-harabasz");
  CHECK_FALSE(parse_cut_criterion("gap").has_value());
}

TEST_CASE("silhouette and Calinski-Harabasz scores by hand") {
  // 0 1 | 10 11: a = 1 for every point, b = 10.5 for the outer and 9.5 for the inner ones.
  const matrix x = line({0, 1, 10, 11});
  const std::vector<std::uint32_t> two{1, 1, 2, 2};
  CHECK(silhouette_score(x, two) == doctest::Approx(((1 - 1 / 10.5) + (1 - 1 / 9.5)) / 2));
  // between 4 * 25 = 100 over 1 degree of freedom; within 4 * 0.25 = 1 over 4 - 2.
  CHECK(calinski_harabasz_score(x, two) == doctest::Approx(200));
  // A point alone in its cluster counts 0: (0 + 0 + s(10) + s(11)) / 4, with a = 1 and b the distance to
  // the nearer lone point: 9 and 10.
  const std::vector<std::uint32_t> singles{1, 2, 3, 3};
  CHECK(silhouette_score(x, singles) == doctest::Approx(((1 - 1 / 9.0) + (1 - 1 / 10.0)) / 4));
  // A worse partition scores lower on both.
  const std::vector<std::uint32_t> wrong{1, 2, 2, 2};
  CHECK(silhouette_score(x, wrong) < silhouette_score(x, two));
  CHECK(calinski_harabasz_score(x, wrong) < calinski_harabasz_score(x, two));
  CHECK(silhouette_score(x, std::vector<std::uint32_t>{1, 1, 1, 1}) == 0);
}

TEST_CASE("the cut scores every level up to max_clusters and keeps the best") {
  const matrix x = line({0, 1, 10, 11, 30, 31.5});
  auto z = linkage(x, linkage_method::ward);
  REQUIRE(z.has_value());
  cut_options o{.criterion = cut_criterion::silhouette, .max_clusters = 4};
  const auto c = choose_cut(*z, x, {}, o);
  REQUIRE(c.levels.size() == 3);
  for (std::size_t i = 0; i < c.levels.size(); ++i) CHECK(c.levels[i].clusters == i + 2);
  CHECK(c.clusters == 3);
  CHECK(canonical(c.labels) == std::vector<std::uint32_t>{1, 1, 2, 2, 3, 3});
  CHECK(c.score == doctest::Approx(silhouette_score(x, c.labels)));
  CHECK(cut_at_distance(*z, c.threshold) == c.labels);
  for (const auto& l : c.levels) CHECK(l.score <= c.score);

  o.criterion = cut_criterion::calinski_harabasz;
  CHECK(choose_cut(*z, x, {}, o).clusters == 3);

  o.criterion = cut_criterion::mojena;  // 6 leaves: too few for mojena, silhouette cuts
  const auto small = choose_cut(*z, x, {}, o);
  CHECK(small.criterion == cut_criterion::silhouette);
  CHECK(small.clusters == 3);

  o.criterion = cut_criterion::widest_gap;  // the top merge (to 30) stands out: two clusters
  const auto gap = choose_cut(*z, x, {}, o);
  CHECK(gap.clusters == 2);
  CHECK(canonical(gap.labels) == std::vector<std::uint32_t>{1, 1, 1, 1, 2, 2});
}

TEST_CASE("mojena cuts every merge whose log height stands out of the tree's") {
  // Three groups of six about 0.1 apart inside: fifteen merges of about 0.1 to 0.5, two of 10 and more.
  const matrix x = line({0, 0.1, 0.2, 0.35, 0.4, 0.5, 10, 10.1, 10.25, 10.3, 10.45, 10.5,
                         30, 30.15, 30.2, 30.3, 30.4, 30.55});
  auto z = linkage(x, linkage_method::ward);
  REQUIRE(z.has_value());
  const auto m = choose_cut(*z, x, {});
  CHECK(m.criterion == cut_criterion::mojena);
  CHECK(m.clusters == 3);
  CHECK(canonical(m.labels) == std::vector<std::uint32_t>{1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3});
  REQUIRE(m.levels.size() >= 3);
  CHECK(m.levels[1].score == m.score);
  CHECK(m.levels[1].score > 1.75);
  CHECK(m.levels[2].score <= 1.75);
  CHECK(m.levels[0].score > m.levels[1].score);  // the top merge is the highest
  // A stricter c keeps only the top split; one no merge reaches gives one cluster.
  CHECK(choose_cut(*z, x, {}, {.mojena_c = (m.levels[0].score + m.levels[1].score) / 2}).clusters == 2);
  const auto none = choose_cut(*z, x, {}, {.mojena_c = m.levels[0].score + 1});
  CHECK(none.clusters == 1);
  CHECK(none.labels == std::vector<std::uint32_t>(18, 1));
}

TEST_CASE("too few points or no distinct level give one cluster") {
  for (std::size_t n : {1, 2}) {
    const matrix x(n, 2);
    linkage_matrix z;
    if (n == 2) z = *linkage(x, linkage_method::ward);
    else z.observations = 1;
    const auto c = choose_cut(z, x, {});
    CHECK(c.clusters == 1);
    CHECK(c.labels == std::vector<std::uint32_t>(n, 1));
  }
  const matrix same = line({4, 4, 4, 4, 4});  // every merge at distance 0
  auto z = linkage(same, linkage_method::single);
  REQUIRE(z.has_value());
  const auto c = choose_cut(*z, same, {});
  CHECK(c.clusters == 1);
  CHECK(c.levels.empty());
}

TEST_CASE("planted nested regimes: mojena recovers every level of nesting the tree holds") {
  // The table in docs/discovery.md ("Choosing the cut") is this test's output:
  //   build/bin/hio-discovery-tests -tc="planted nested*" -s
  std::string table = "\n| planted | data | best possible (tree cut at the true k) | mojena (default) | silhouette | "
                      "calinski-harabasz | widest-gap |\n|---|---|---|---|---|---|---|\n";
  for (const auto& p : planted) {
    for (bool noisy : {false, true}) {
      CAPTURE(p.name);
      CAPTURE(noisy);
      std::vector<std::uint32_t> truth;
      // 12 points per regime; regimes 3 apart in groups 10 apart. Clean: noise sd 0.3; noisy: sd 0.45 and
      // 20 more columns of the same noise that say nothing about the regimes (as many features do).
      const matrix x = nested_regimes(p.groups, 12, 10, 3, noisy ? 0.45 : 0.3, noisy ? 20 : 0, 7, truth);
      auto z = linkage(x, linkage_method::ward);
      REQUIRE(z.has_value());
      std::size_t regimes = 0;
      for (auto g : p.groups) regimes += g;
      const double possible = purity(cut_into(*z, regimes), truth);
      char cell[64];
      std::snprintf(cell, sizeof cell, " %zu / %.2f |", regimes, possible);
      table += std::string("| ") + p.name + " | " + (noisy ? "noisy" : "clean") + " |" + cell;
      for (auto criterion : {cut_criterion::mojena, cut_criterion::silhouette, cut_criterion::calinski_harabasz,
                             cut_criterion::widest_gap}) {
        const auto c = choose_cut(*z, x, {}, {.criterion = criterion});
        const double pure = purity(c.labels, truth);
        std::snprintf(cell, sizeof cell, " %zu / %.2f |", c.clusters, pure);
        table += cell;
        if (criterion == cut_criterion::mojena) {
          CHECK(c.clusters == regimes);
          CHECK(pure == possible);
        }
        if (criterion == cut_criterion::widest_gap) CHECK(c.clusters == p.groups.size());  // only the top split
      }
      table += "\n";
    }
  }
  MESSAGE(table);
}

TEST_CASE("in two stages the levels are scored on the observations, not on the micro-clusters") {
  std::vector<std::uint32_t> truth;
  const matrix x = nested_regimes({1, 2}, 400, 10, 3, 0.3, 0, 5, truth);
  two_stage_options o;
  o.micro_clusters = 60;
  auto ts = two_stage_cluster(x, o);
  REQUIRE(ts.has_value());
  const auto c = choose_cut(ts->tree, x, ts->micro, {.criterion = cut_criterion::silhouette});
  CHECK(c.labels.size() == 60);
  REQUIRE(c.clusters >= 2);
  const auto rows = propagate_labels(*ts, c.labels);
  CHECK(c.score == doctest::Approx(silhouette_score(x, rows)));  // 1200 rows: the sample is all of them
  CHECK(c.score > 0.5);
  // The micro-clusters lie inside the planted regimes: any cut of their tree is a coarsening of the truth.
  CHECK(purity(truth, rows) == 1.0);
}

TEST_CASE("the knowledge document reports the cut and its levels") {
  feature_table t;
  t.columns = {"a", "b", "c", "d", "e"};
  std::vector<std::uint32_t> truth;
  const matrix x = nested_regimes({1, 2}, 6, 10, 3, 0.2, 0, 9, truth);
  for (std::size_t i = 0; i < x.rows(); ++i) {
    const auto r = x.row(i);
    t.rows.push_back({100 + i, "#" + std::to_string(100 + i), {r.begin(), r.end()}});
  }
  auto doc = make_knowledge(t, {});
  REQUIRE(doc.has_value());
  const auto& cut = (*doc)["cut"];
  CHECK(cut["criterion"] == "mojena");
  CHECK(cut["by"] == "criterion");
  CHECK(cut["clusters"] == (*doc)["clusters"].size());
  CHECK(cut["clusters"] == 3);
  REQUIRE(cut["levels"].size() == 16);  // 2 .. 17 clusters over 18 points
  CHECK(cut["levels"][0]["clusters"] == 2);
  CHECK(cut["levels"][1]["score"] == cut["score"]);
  CHECK(cut["score"].get<double>() > 1.75);

  auto k2 = make_knowledge(t, {.clusters = 2});
  REQUIRE(k2.has_value());
  CHECK((*k2)["cut"]["by"] == "k");
  CHECK((*k2)["cut"]["clusters"] == 2);
  CHECK((*k2)["cut"]["score"] == cut["levels"][0]["score"]);
  auto gap = make_knowledge(t, {.cut = {.criterion = cut_criterion::widest_gap}});
  REQUIRE(gap.has_value());
  CHECK((*gap)["cut"]["criterion"] == "widest-gap");
  CHECK((*gap)["clusters"].size() == (*gap)["cut"]["clusters"]);
}
