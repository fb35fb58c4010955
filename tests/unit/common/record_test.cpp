#include <hio/common/id_generator.hpp>
#include <hio/common/record.hpp>

#include <cereal/archives/portable_binary.hpp>
#include <cereal/types/string.hpp>
#include <cereal/types/vector.hpp>
#include <doctest/doctest.h>
#include <zstd.h>

#include <filesystem>
#include <sstream>
#include <sys/resource.h>
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
    if (i == 2) r.series = {{"mRNA", {1.5f, 2.0f, -3.25f}}, {"protein", {}}};
  }
  auto back = decode_records(encode_records(batch));
  REQUIRE(back.has_value());
  CHECK(*back == batch);
}

namespace {
// The first batch format ("HIR1"), which had no series; discovery's logs may hold such batches.
struct v1_writer {
  const feature_record& r;
  template <class Archive>
  void serialize(Archive& ar) {
    ar(r.tuple_id, r.cursor, r.source, r.size, r.xxh3, static_cast<std::uint8_t>(r.status), r.error, r.metadata,
       r.worker, r.channel, r.processed_at_ms);
    ar(cereal::make_size_tag(static_cast<cereal::size_type>(r.features.size())));
    for (const auto& f : r.features) ar(f.name, f.value);
  }
};
}  // namespace

TEST_CASE("a batch in the first format, without series, still decodes") {
  std::vector<feature_record> batch(2);
  batch[0].tuple_id = 7;
  batch[0].features = {{"mean", 2.5}};
  batch[1].tuple_id = 8;
  batch[1].status = record_status::failed;
  batch[1].error = "bad";
  std::ostringstream os;
  {
    cereal::PortableBinaryOutputArchive ar(os);
    ar(std::uint32_t{0x31524948});
    ar(cereal::make_size_tag(static_cast<cereal::size_type>(batch.size())));
    for (const auto& r : batch) ar(v1_writer{r});
  }
  const std::string raw = os.str();
  std::string z(ZSTD_compressBound(raw.size()), '\0');
  z.resize(ZSTD_compress(z.data(), z.size(), raw.data(), raw.size(), 1));
  auto back = decode_records(z);
  REQUIRE_MESSAGE(back.has_value(), (back ? "" : back.error().message));
  CHECK(*back == batch);
}

TEST_CASE("garbage is not a record batch") {
  CHECK_FALSE(decode_records("not zstd at all").has_value());
  auto good = encode_records({feature_record{}});
  CHECK_FALSE(decode_records(good.substr(0, good.size() / 2)).has_value());
}

namespace {
// A zstd frame of `raw`, the bytes of a batch as cereal writes them.
std::string compressed(const std::string& raw) {
  std::string z(ZSTD_compressBound(raw.size()), '\0');
  z.resize(ZSTD_compress(z.data(), z.size(), raw.data(), raw.size(), 1));
  return z;
}
}  // namespace

// Found by tests/fuzz/record_batch_fuzz.cpp (corpus/record_batch/raw_huge_count): the decoder allocated what
// a batch declared before reading it, 2^40 records from a 14-byte batch.
TEST_CASE("a batch that declares more records or bytes than it holds is refused before allocating them") {
  std::ostringstream records;
  {
    cereal::PortableBinaryOutputArchive ar(records);
    ar(std::uint32_t{0x32524948});
    ar(cereal::make_size_tag(cereal::size_type{1} << 40));
  }
  auto back = decode_records(compressed(records.str()));
  REQUIRE_FALSE(back.has_value());
  CHECK(back.error().code == 400);
  CHECK(back.error().message.find("a length of 1099511627776") != std::string::npos);

  // One record whose source declares a 1 TiB string.
  std::ostringstream text;
  {
    cereal::PortableBinaryOutputArchive ar(text);
    ar(std::uint32_t{0x32524948});
    ar(cereal::make_size_tag(cereal::size_type{1}));
    ar(std::uint64_t{1}, std::uint64_t{0});
    ar(cereal::make_size_tag(cereal::size_type{1} << 40));
    ar(std::string(200, 'x'));
  }
  back = decode_records(compressed(text.str()));
  REQUIRE_FALSE(back.has_value());
  CHECK(back.error().message.find("a length of 1099511627776") != std::string::npos);
}

// Found by tests/fuzz/record_batch_fuzz.cpp (corpus/record_batch/crash-declared_size): the decoder
// allocated and zero-filled the size a frame declared before decompressing it.
TEST_CASE("a small zstd frame that declares gigabytes is refused without allocating them") {
  // A frame header declaring 4 GiB of content (single segment, 4-byte size), then one corrupt block.
  std::string frame = "\x28\xb5\x2f\xfd\xa0";
  const std::uint32_t declared = 0xffffffff;
  frame.append(reinterpret_cast<const char*>(&declared), sizeof declared);
  frame.append("\x05\x00\x00garbage");
  REQUIRE(ZSTD_getFrameContentSize(frame.data(), frame.size()) == declared);
  rusage before{}, after{};
  getrusage(RUSAGE_SELF, &before);
  auto back = decode_records(frame);
  getrusage(RUSAGE_SELF, &after);
  REQUIRE_FALSE(back.has_value());
  CHECK(back.error().code == 400);
  CHECK(after.ru_maxrss - before.ru_maxrss < 256 * 1024);  // KiB
}

// tests/fuzz/corpus/record_batch/raw_unknown_status: a status byte of 7 was taken for "failed".
TEST_CASE("a record with an unknown status byte is refused") {
  auto good = encode_records({feature_record{}});
  std::string raw(ZSTD_getFrameContentSize(good.data(), good.size()), '\0');
  REQUIRE(ZSTD_decompress(raw.data(), raw.size(), good.data(), good.size()) == raw.size());
  // cereal's endianness byte, magic (4), record count (8), tuple id and cursor (16), source (8 + 0), size
  // and xxh3 (16): the status.
  const std::size_t status_at = 1 + 4 + 8 + 16 + 8 + 16;
  REQUIRE(raw[status_at] == 0);
  raw[status_at] = 1;
  auto back = decode_records(compressed(raw));
  REQUIRE(back.has_value());
  CHECK(back->front().status == record_status::failed);
  raw[status_at] = 7;
  back = decode_records(compressed(raw));
  REQUIRE_FALSE(back.has_value());
  CHECK(back.error().code == 400);
  CHECK(back.error().message.find("unknown record status 7") != std::string::npos);
}

TEST_CASE("a record batch declaring more than the decoded limit is refused from its frame header") {
  // Frame headers declaring a content size (single segment, 4-byte size), then one corrupt block.
  const auto frame = [](std::uint32_t declared) {
    std::string f = "\x28\xb5\x2f\xfd\xa0";
    f.append(reinterpret_cast<const char*>(&declared), sizeof declared);
    f.append("\x05\x00\x00garbage");
    return f;
  };
  auto back = decode_records(frame(static_cast<std::uint32_t>(max_record_batch_decoded_bytes + 1)));
  REQUIRE_FALSE(back.has_value());
  CHECK(back.error().code == 400);
  CHECK(back.error().message.find("over the limit of 536870912") != std::string::npos);
  // At the limit the frame header passes that check, and the next one refuses a frame this small.
  back = decode_records(frame(static_cast<std::uint32_t>(max_record_batch_decoded_bytes)));
  REQUIRE_FALSE(back.has_value());
  CHECK(back.error().message.find("over the limit") == std::string::npos);
  CHECK(max_record_batch_bytes == 64ull << 20);
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
