#pragma once
// Feature records for the store tests (SQLite here, PostgreSQL in tests/postgres): every field set,
// failed ones, NaN features and series on some, metadata of a chosen size; and their checks.

#include <hio/common/record.hpp>
#include <hio/repository/store.hpp>

#include <doctest/doctest.h>

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

namespace hio::repository::testing {

inline feature_record make_record(std::uint64_t id, std::size_t metadata_bytes = 20) {
  feature_record r;
  r.tuple_id = id;
  r.source = "camera-" + std::to_string(id % 3);
  r.size = 6'291'456 + id;
  r.xxh3 = 0x9e3779b97f4a7c15ull * (id + 1);
  r.status = id % 5 == 4 ? record_status::failed : record_status::stored;
  r.error = r.status == record_status::failed ? "decode failed for tuple " + std::to_string(id) : "";
  r.metadata = R"({"frame":)" + std::to_string(id) + R"(,"pad":")" + std::string(metadata_bytes, 'x') + "\"}";
  r.worker = "worker-1";
  r.channel = static_cast<std::uint32_t>(id % 4);
  r.processed_at_ms = 1'700'000'000'000 + static_cast<std::int64_t>(id);
  r.features = {{"mean", 0.5 * static_cast<double>(id)}, {"max", 255.0}, {"nan", std::numeric_limits<double>::quiet_NaN()}};
  if (id % 3 == 0) r.series = {{"mRNA", {1.0f, 0.5f * static_cast<float>(id), -2.0f}}, {"protein", {}}};
  return r;
}

inline std::vector<feature_record> make_batch(std::uint64_t first, std::uint64_t count) {
  std::vector<feature_record> out;
  for (std::uint64_t i = 0; i < count; ++i) out.push_back(make_record(first + i));
  return out;
}

// Every record of `s`, in cursor order.
inline std::vector<feature_record> all_records(repository::store& s) {
  auto r = s.since(0, 1'000'000);
  REQUIRE_MESSAGE(r.has_value(), (r ? "" : r.error().message));
  return std::move(*r);
}

// Equality that treats NaN features as equal to NaN (operator== would not).
inline void check_same(const feature_record& got, const feature_record& want) {
  CHECK(got.tuple_id == want.tuple_id);
  CHECK(got.source == want.source);
  CHECK(got.size == want.size);
  CHECK(got.xxh3 == want.xxh3);
  CHECK(got.status == want.status);
  CHECK(got.error == want.error);
  CHECK(got.metadata == want.metadata);
  CHECK(got.worker == want.worker);
  CHECK(got.channel == want.channel);
  CHECK(got.processed_at_ms == want.processed_at_ms);
  CHECK(got.series == want.series);
  REQUIRE(got.features.size() == want.features.size());
  for (std::size_t i = 0; i < want.features.size(); ++i) {
    CHECK(got.features[i].name == want.features[i].name);
    if (std::isnan(want.features[i].value)) {
      CHECK(std::isnan(got.features[i].value));
    } else {
      CHECK(got.features[i].value == want.features[i].value);
    }
  }
}

}  // namespace hio::repository::testing
