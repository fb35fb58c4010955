#include <hio/discovery/knowledge.hpp>

#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include <random>
#include <set>

using namespace hio::discovery;
using json = nlohmann::json;

namespace {

// Two regimes: parameter points a = 0..3 sit near (0, 0, 0), points a = 10..13 near (10, 50, -5); three
// realizations each with a little noise, and a constant column.
feature_table two_regimes() {
  feature_table t;
  t.columns = {"x", "y", "z", "constant"};
  std::mt19937_64 rng(3);
  std::normal_distribution<double> noise(0, 0.1);
  std::uint64_t id = 100;
  for (int a : {0, 1, 2, 3, 10, 11, 12, 13}) {
    const bool high = a >= 10;
    for (int r = 0; r < 3; ++r) {
      const std::string meta = R"({"params":{"b":)" + std::to_string(a % 2) + R"(,"a":)" + std::to_string(a) +
                               R"(,"kind":")" + (high ? "high" : "low") + "\"}}";
      auto key = parameter_point_key(meta, id);
      t.rows.push_back({id++, std::move(key),
                        {(high ? 10 : 0) + noise(rng), (high ? 50 : 0) + noise(rng), (high ? -5 : 0) + noise(rng), 7}});
    }
  }
  return t;
}

}  // namespace

TEST_CASE("the parameter-point key is the canonical JSON of params, or the tuple's own key") {
  CHECK(parameter_point_key(R"({"params": {"b": 2, "a": 1.5}, "other": 1})", 9) == R"({"a":1.5,"b":2})");
  CHECK(parameter_point_key(R"({"params":{"a":1.5,"b":2}})", 9) == R"({"a":1.5,"b":2})");
  CHECK(parameter_point_key(R"({"species": ["x"]})", 9) == "#9");
  CHECK(parameter_point_key("not json", 9) == "#9");
  CHECK(parameter_point_key("", 10) == "#10");
  CHECK(parameter_point_key(R"({"params": 3})", 11) == "#11");
}

TEST_CASE("knowledge of two regimes separates them and describes each cluster") {
  for (auto method : {linkage_method::single, linkage_method::complete, linkage_method::average, linkage_method::ward}) {
    CAPTURE(to_string(method));
    auto doc = make_knowledge(two_regimes(), {.method = method});
    REQUIRE(doc.has_value());
    const json& d = *doc;
    CHECK(d["points"] == 24);
    CHECK(d["groups"] == 8);
    CHECK(d["method"] == std::string(to_string(method)));
    CHECK(d["dropped_columns"] == json::array({"constant"}));
    REQUIRE(d["clusters"].size() == 2);
    REQUIRE(d["point_labels"].size() == 8);
    std::set<int> low, high;
    for (const auto& p : d["point_labels"]) {
      CHECK(p["tuples"].size() == 3);
      (p["params"]["a"].get<int>() >= 10 ? high : low).insert(p["label"].get<int>());
    }
    REQUIRE(low.size() == 1);
    REQUIRE(high.size() == 1);
    CHECK(*low.begin() != *high.begin());
    CHECK(d["labels"].size() == 24);
    CHECK(d["labels"].at("100") == *low.begin());
    CHECK(d["linkage"].size() == 7);
    CHECK(d["linkage"][0].size() == 4);
    CHECK(d["leaf_order"].size() == 8);
    CHECK(d["projection"].size() == 8);
    for (const auto& c : d["clusters"]) {
      CHECK(c["size"] == 12);
      const auto range = c["params_ranges"]["a"];
      const bool is_high = c["label"] == *high.begin();
      CHECK(range == (is_high ? json::array({10.0, 13.0}) : json::array({0.0, 3.0})));
      CHECK(c["params_ranges"]["b"] == json::array({0.0, 1.0}));
      CHECK(c["params_values"]["kind"] == json::array({is_high ? "high" : "low"}));
      const auto rep = c["representative_tuple"].get<std::uint64_t>();
      CHECK(d["labels"].at(std::to_string(rep)) == c["label"]);
    }
  }
}

TEST_CASE("k and threshold choose the cut") {
  auto k4 = make_knowledge(two_regimes(), {.clusters = 4});
  REQUIRE(k4.has_value());
  CHECK((*k4)["clusters"].size() == 4);
  auto all = make_knowledge(two_regimes(), {.threshold = 1e9});
  REQUIRE(all.has_value());
  CHECK((*all)["clusters"].size() == 1);
}

TEST_CASE("beyond exact_max the parameter points are clustered in two stages with the same regimes") {
  knowledge_options o;
  o.exact_max = 4;
  o.two_stage.micro_clusters = 4;
  auto doc = make_knowledge(two_regimes(), o);
  REQUIRE(doc.has_value());
  CHECK((*doc)["two_stage"] == true);
  CHECK((*doc)["clusters"].size() == 2);
  std::set<std::pair<bool, int>> seen;
  for (const auto& p : (*doc)["point_labels"]) seen.insert({p["params"]["a"].get<int>() >= 10, p["label"].get<int>()});
  CHECK(seen.size() == 2);
}

TEST_CASE("no rows, one row, or no usable column still make a document") {
  auto empty = make_knowledge(feature_table{{"x"}, {}}, {});
  REQUIRE(empty.has_value());
  CHECK((*empty)["points"] == 0);
  CHECK((*empty)["clusters"].empty());
  CHECK((*empty)["linkage"].empty());

  auto one = make_knowledge(feature_table{{"x"}, {{1, "#1", {2.0}}}}, {});
  REQUIRE(one.has_value());
  CHECK((*one)["clusters"].size() == 1);
  CHECK((*one)["labels"]["1"] == 1);

  auto constant = make_knowledge(feature_table{{"x"}, {{1, "#1", {2.0}}, {2, "#2", {2.0}}}}, {});
  REQUIRE(constant.has_value());
  CHECK((*constant)["clusters"].size() == 1);
  CHECK((*constant)["point_labels"][0]["params"].is_null());
}
