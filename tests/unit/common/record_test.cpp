#include <hio/common/id_generator.hpp>
#include <hio/common/record.hpp>

#include <doctest/doctest.h>

#include <filesystem>
#include <unistd.h>

using namespace hio;

TEST_CASE("a batch of records round-trips through the binary form") {
  std::vector<feature_record> batch(3);
  for (std::size_t i = 0; i < batch.size(); ++i) {
    auto& r = batch[i];
    r.tuple_id = 100 + i;
    r.source = "sim-" + std::to_string(i);
    r.size = 6 << 20;
    r.xxh3 = 0x1234 + i;
    r.status = i == 1 ? record_status::failed : record_status::stored;
    r.error = i == 1 ? "bad npy" : "";
    r.metadata = R"({"k":1})";
    r.worker = "w";
    r.channel = static_cast<std::uint32_t>(i);
    r.processed_at_ms = 1700000000000 + static_cast<std::int64_t>(i);
    r.features = {{"mean", 1.5}, {"cv", -0.25}};
  }
  auto back = decode_records(encode_records(batch));
  REQUIRE(back.has_value());
  CHECK(*back == batch);
}

TEST_CASE("garbage is not a record batch") {
  CHECK_FALSE(decode_records("not zstd at all").has_value());
  auto good = encode_records({feature_record{}});
  CHECK_FALSE(decode_records(good.substr(0, good.size() / 2)).has_value());
}

TEST_CASE("ids increase and are never reused across a restart") {
  const auto dir = std::filesystem::temp_directory_path() / ("hio-ids-" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  std::uint64_t last = 0;
  {
    auto g = id_generator::open(dir / "ids", 10);
    REQUIRE(g.has_value());
    for (int i = 0; i < 25; ++i) {
      auto id = (*g)->next();
      REQUIRE(id.has_value());
      CHECK(*id > last);
      last = *id;
    }
    auto block = (*g)->next(5);
    REQUIRE(block.has_value());
    CHECK(*block > last);
    last = *block + 4;
  }
  auto g = id_generator::open(dir / "ids", 10);
  REQUIRE(g.has_value());
  auto id = (*g)->next();
  REQUIRE(id.has_value());
  CHECK(*id > last);
  std::filesystem::remove_all(dir);
}
