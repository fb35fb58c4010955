#include <hio/discovery/prepare.hpp>

#include <doctest/doctest.h>

#include <cmath>
#include <limits>

using namespace hio::discovery;

namespace {

constexpr double not_a_number = std::numeric_limits<double>::quiet_NaN();
constexpr double inf = std::numeric_limits<double>::infinity();

feature_table table(std::vector<std::string> columns, std::vector<observation> rows) {
  return feature_table{std::move(columns), std::move(rows)};
}

}  // namespace

TEST_CASE("columns are z-scored with the population standard deviation") {
  auto p = prepare(table({"a", "b"}, {{1, "p1", {1, 10}}, {2, "p2", {2, 20}}, {3, "p3", {3, 60}}}),
                   {.aggregate = false});
  REQUIRE(p.has_value());
  REQUIRE(p->values.rows() == 3);
  REQUIRE(p->values.cols() == 2);
  const double s = std::sqrt(2.0 / 3.0);  // population std of 1, 2, 3
  CHECK(p->values(0, 0) == doctest::Approx(-1 / s));
  CHECK(p->values(1, 0) == doctest::Approx(0));
  CHECK(p->values(2, 0) == doctest::Approx(1 / s));
  CHECK(p->means == std::vector<double>{2, 30});
  CHECK(p->scales[0] == doctest::Approx(s));
  for (std::size_t j = 0; j < 2; ++j) {
    double m = 0, v = 0;
    for (std::size_t i = 0; i < 3; ++i) m += p->values(i, j);
    for (std::size_t i = 0; i < 3; ++i) v += p->values(i, j) * p->values(i, j);
    CHECK(m / 3 == doctest::Approx(0).epsilon(1e-12));
    CHECK(v / 3 == doctest::Approx(1));
  }
  CHECK(p->points == std::vector<std::string>{"p1", "p2", "p3"});
  CHECK(p->ids == std::vector<std::uint64_t>{1, 2, 3});
}

TEST_CASE("realizations of one parameter point are averaged into one row, in order of first appearance") {
  auto p = prepare(table({"a", "b"}, {{10, "x", {1, 5}},
                                      {11, "y", {4, 0}},
                                      {12, "x", {3, 7}},
                                      {13, "z", {0, 1}},
                                      {14, "y", {6, 2}}}),
                   {.standardize = false});
  REQUIRE(p.has_value());
  REQUIRE(p->values.rows() == 3);
  CHECK(p->points == std::vector<std::string>{"x", "y", "z"});
  CHECK(p->values(0, 0) == 2);
  CHECK(p->values(0, 1) == 6);
  CHECK(p->values(1, 0) == 5);
  CHECK(p->values(1, 1) == 1);
  CHECK(p->values(2, 0) == 0);
  CHECK(std::vector<std::uint64_t>(p->row_ids(0).begin(), p->row_ids(0).end()) == std::vector<std::uint64_t>{10, 12});
  CHECK(std::vector<std::uint64_t>(p->row_ids(1).begin(), p->row_ids(1).end()) == std::vector<std::uint64_t>{11, 14});
  CHECK(std::vector<std::uint64_t>(p->row_ids(2).begin(), p->row_ids(2).end()) == std::vector<std::uint64_t>{13});
  CHECK(p->means == std::vector<double>{0, 0});
  CHECK(p->scales == std::vector<double>{1, 1});
}

TEST_CASE("constant columns are dropped, rounding in their mean notwithstanding") {
  auto p = prepare(table({"same", "varies", "zero"},
                         {{1, "a", {0.1, 1, 0}}, {2, "b", {0.1, 2, 0}}, {3, "c", {0.1, 4, 0}}, {4, "d", {0.1, 8, 0}},
                          {5, "e", {0.1, 3, 0}}, {6, "f", {0.1, 5, 0}}, {7, "g", {0.1, 9, 0}}}));
  REQUIRE(p.has_value());
  CHECK(p->columns == std::vector<std::string>{"varies"});
  CHECK(p->dropped_columns == std::vector<std::string>{"same", "zero"});
  CHECK(p->values.cols() == 1);
}

TEST_CASE("a tuple with a NaN or infinite feature is left out by default") {
  auto p = prepare(table({"a", "b"}, {{1, "p", {1, 2}}, {2, "q", {not_a_number, 3}}, {3, "r", {2, inf}}, {4, "s", {5, 1}}}));
  REQUIRE(p.has_value());
  CHECK(p->dropped_ids == std::vector<std::uint64_t>{2, 3});
  CHECK(p->points == std::vector<std::string>{"p", "s"});
  CHECK(p->columns == std::vector<std::string>{"a", "b"});
}

TEST_CASE("a column without any finite value is dropped under every policy") {
  for (auto policy : {non_finite_policy::drop_rows, non_finite_policy::drop_columns, non_finite_policy::reject}) {
    auto p = prepare(table({"a", "empty"}, {{1, "p", {1, not_a_number}}, {2, "q", {2, not_a_number}}}), {.non_finite = policy});
    REQUIRE(p.has_value());
    CHECK(p->columns == std::vector<std::string>{"a"});
    CHECK(p->dropped_columns == std::vector<std::string>{"empty"});
    CHECK(p->dropped_ids.empty());
  }
}

TEST_CASE("drop_columns leaves out a column with a non-finite value and keeps every tuple") {
  auto p = prepare(table({"a", "b", "c"}, {{1, "p", {1, not_a_number, 3}}, {2, "q", {2, 1, 1}}, {3, "r", {4, 2, 0}}}),
                   {.non_finite = non_finite_policy::drop_columns});
  REQUIRE(p.has_value());
  CHECK(p->columns == std::vector<std::string>{"a", "c"});
  CHECK(p->dropped_columns == std::vector<std::string>{"b"});
  CHECK(p->values.rows() == 3);
}

TEST_CASE("reject refuses a non-finite value, naming the tuple and the feature") {
  auto p = prepare(table({"a", "b"}, {{1, "p", {1, 2}}, {7, "q", {2, -inf}}}), {.non_finite = non_finite_policy::reject});
  REQUIRE_FALSE(p.has_value());
  CHECK(p.error().code == 400);
  CHECK(p.error().message.find("tuple 7") != std::string::npos);
  CHECK(p.error().message.find("'b'") != std::string::npos);
}

TEST_CASE("a row with the wrong number of values is refused") {
  auto p = prepare(table({"a", "b"}, {{1, "p", {1, 2}}, {2, "q", {3}}}));
  REQUIRE_FALSE(p.has_value());
  CHECK(p.error().code == 400);
  CHECK(p.error().message.find("tuple 2") != std::string::npos);
}

TEST_CASE("an empty table prepares to an empty matrix") {
  auto p = prepare(table({"a"}, {}));
  REQUIRE(p.has_value());
  CHECK(p->values.rows() == 0);
  CHECK(p->id_offsets == std::vector<std::size_t>{0});
}
