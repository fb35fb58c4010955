#include <hio/repository/store.hpp>

#include "blob.hpp"
#include "records.hpp"
#include "temp_dir.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>
#include <thread>

namespace {

using hio::feature_record;
using hio::record_status;
using hio::repository::store;
using hio::repository::store_options;
using hio::repository::testing::temp_dir;

using hio::repository::testing::all_records;
using hio::repository::testing::check_same;
using hio::repository::testing::make_batch;
using hio::repository::testing::make_record;

std::unique_ptr<store> open_store(const temp_dir& dir, std::uint64_t segment_bytes = 256ull << 20) {
  auto s = store::open(store_options{dir.path(), segment_bytes});
  REQUIRE_MESSAGE(s.has_value(), (s ? "" : s.error().message));
  return std::move(*s);
}


std::vector<std::filesystem::path> segment_files(const temp_dir& dir) {
  std::vector<std::filesystem::path> out;
  for (const auto& e : std::filesystem::directory_iterator(dir.path() / "segments")) out.push_back(e.path());
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace

TEST_CASE("records put into the store come back from since and get with every field intact") {
  temp_dir dir;
  auto s = open_store(dir);
  const auto batch = make_batch(100, 10);
  auto put = s->put(batch);
  REQUIRE(put.has_value());
  CHECK(put->stored == 10);
  CHECK(put->duplicates == 0);

  const auto got = all_records(*s);
  REQUIRE(got.size() == batch.size());
  for (std::size_t i = 0; i < batch.size(); ++i) {
    check_same(got[i], batch[i]);
    CHECK(got[i].cursor > 0);
  }

  auto one = s->get(105);
  REQUIRE(one.has_value());
  REQUIRE(one->has_value());
  check_same(**one, batch[5]);
  CHECK((*one)->cursor == got[5].cursor);

  auto none = s->get(99);
  REQUIRE(none.has_value());
  CHECK_FALSE(none->has_value());
}

TEST_CASE("a record without features or metadata and with extreme ids round-trips") {
  temp_dir dir;
  auto s = open_store(dir);
  feature_record r;
  r.tuple_id = std::numeric_limits<std::uint64_t>::max();
  r.xxh3 = std::numeric_limits<std::uint64_t>::max();
  r.size = std::numeric_limits<std::uint64_t>::max();
  r.processed_at_ms = -1;
  REQUIRE(s->put({r}).has_value());
  auto got = s->get(r.tuple_id);
  REQUIRE(got.has_value());
  REQUIRE(got->has_value());
  auto want = r;
  want.cursor = (*got)->cursor;
  CHECK(**got == want);
}

TEST_CASE("a tuple id already stored is counted as a duplicate and not overwritten") {
  temp_dir dir;
  auto s = open_store(dir);
  REQUIRE(s->put(make_batch(1, 3)).has_value());

  auto changed = make_record(2);
  changed.source = "a retry that must not replace the first";
  auto again = make_batch(3, 3);  // 3 is a duplicate, 4 and 5 are new
  again.push_back(changed);
  auto put = s->put(again);
  REQUIRE(put.has_value());
  CHECK(put->stored == 2);
  CHECK(put->duplicates == 2);

  auto two = s->get(2);
  REQUIRE(two.has_value());
  REQUIRE(two->has_value());
  CHECK((*two)->source == make_record(2).source);
  CHECK(all_records(*s).size() == 5);

  const auto c = s->counts();
  CHECK(c.records == 5);
  CHECK(c.duplicates == 2);
  CHECK(c.batches == 2);
}

TEST_CASE("a second record of an id with another size or XXH3 is a conflict: refused, listed, counted") {
  temp_dir dir;
  {
    auto s = open_store(dir);
    REQUIRE(s->put(make_batch(1, 2)).has_value());
    auto forged = make_record(1);
    forged.xxh3 ^= 1;  // other bytes under tuple id 1
    auto resized = make_record(2);
    resized.size += 1;
    auto within = make_record(9);
    auto within_other = make_record(9);
    within_other.xxh3 ^= 1;
    auto put = s->put({forged, make_record(2), resized, within, within_other});
    REQUIRE(put.has_value());
    CHECK(put->stored == 1);      // 9
    CHECK(put->duplicates == 1);  // 2 as it was
    CHECK(put->conflicts == std::vector<std::uint64_t>{1, 2, 9});
    CHECK((*s->get(1))->xxh3 == make_record(1).xxh3);  // the first record stays
    CHECK(s->counts().conflicts == 3);
  }
  CHECK(open_store(dir)->counts().conflicts == 3);  // durable
}

TEST_CASE("a tuple id repeated within one batch is stored once") {
  temp_dir dir;
  auto s = open_store(dir);
  auto first = make_record(7);
  auto second = make_record(7);
  second.source = "second copy";
  auto put = s->put({first, make_record(8), second, first});
  REQUIRE(put.has_value());
  CHECK(put->stored == 2);
  CHECK(put->duplicates == 2);
  const auto all = all_records(*s);
  REQUIRE(all.size() == 2);
  CHECK(all[0].source == first.source);
}

TEST_CASE("since returns records in cursor order after the given cursor and at most limit of them") {
  temp_dir dir;
  auto s = open_store(dir);
  REQUIRE(s->put(make_batch(50, 4)).has_value());
  REQUIRE(s->put(make_batch(10, 4)).has_value());  // smaller ids, later cursors
  const auto all = all_records(*s);
  REQUIRE(all.size() == 8);
  for (std::size_t i = 1; i < all.size(); ++i) CHECK(all[i].cursor > all[i - 1].cursor);
  CHECK(all[0].tuple_id == 50);
  CHECK(all[4].tuple_id == 10);

  std::vector<std::uint64_t> paged;
  std::uint64_t after = 0;
  for (;;) {
    auto page = s->since(after, 3);
    REQUIRE(page.has_value());
    CHECK(page->size() <= 3);
    if (page->empty()) break;
    for (const auto& r : *page) {
      CHECK(r.cursor > after);
      paged.push_back(r.tuple_id);
    }
    after = page->back().cursor;
  }
  std::vector<std::uint64_t> expected;
  for (const auto& r : all) expected.push_back(r.tuple_id);
  CHECK(paged == expected);

  auto tail = s->since(all[5].cursor, 100);
  REQUIRE(tail.has_value());
  REQUIRE(tail->size() == 2);
  CHECK((*tail)[0].tuple_id == all[6].tuple_id);
  auto past_end = s->since(all.back().cursor, 100);
  REQUIRE(past_end.has_value());
  CHECK(past_end->empty());
}

TEST_CASE("rows_read counts exactly the rows since has returned") {
  temp_dir dir;
  auto s = open_store(dir);
  REQUIRE(s->put(make_batch(1, 10)).has_value());
  CHECK(s->counts().rows_read == 0);
  auto a = s->since(0, 4);
  REQUIRE(a.has_value());
  CHECK(s->counts().rows_read == 4);
  auto b = s->since(a->back().cursor, 100);
  REQUIRE(b.has_value());
  CHECK(b->size() == 6);
  CHECK(s->counts().rows_read == 10);
  auto c = s->since(b->back().cursor, 100);
  REQUIRE(c.has_value());
  CHECK(s->counts().rows_read == 10);
  REQUIRE(s->get(3).has_value());
  CHECK(s->counts().rows_read == 10);
}

TEST_CASE("counts separate stored from failed records") {
  temp_dir dir;
  auto s = open_store(dir);
  REQUIRE(s->put(make_batch(0, 10)).has_value());  // ids 4 and 9 are failed
  const auto c = s->counts();
  CHECK(c.records == 10);
  CHECK(c.failed == 2);
  CHECK(c.stored == 8);
  CHECK(c.batches == 1);
}

TEST_CASE("reopening the store keeps every record, cursor and durable counter") {
  temp_dir dir;
  std::vector<feature_record> before;
  {
    auto s = open_store(dir);
    REQUIRE(s->put(make_batch(1, 5)).has_value());
    REQUIRE(s->put(make_batch(4, 5)).has_value());  // 4 and 5 duplicate
    before = all_records(*s);
  }
  auto s = open_store(dir);
  const auto c = s->counts();
  CHECK(c.records == 8);
  CHECK(c.batches == 2);
  CHECK(c.duplicates == 2);
  CHECK(c.rows_read == 0);
  const auto after = all_records(*s);
  REQUIRE(after.size() == before.size());
  for (std::size_t i = 0; i < before.size(); ++i) {
    check_same(after[i], before[i]);
    CHECK(after[i].cursor == before[i].cursor);
  }
  auto dup = s->put({make_record(3)});
  REQUIRE(dup.has_value());
  CHECK(dup->duplicates == 1);
  auto fresh = s->put({make_record(100)});
  REQUIRE(fresh.has_value());
  CHECK(fresh->stored == 1);
  auto last = s->get(100);
  REQUIRE(last.has_value());
  REQUIRE(last->has_value());
  CHECK((*last)->cursor > before.back().cursor);
}

TEST_CASE("a small segment size rolls over to new segment files and every record stays readable") {
  temp_dir dir;
  std::vector<feature_record> all;
  {
    auto s = open_store(dir, 1000);
    for (std::uint64_t b = 0; b < 6; ++b) {
      auto batch = make_batch(b * 5, 5);
      batch.push_back(make_record(1000 + b, 3000));  // larger than a whole segment
      REQUIRE(s->put(batch).has_value());
      all.insert(all.end(), batch.begin(), batch.end());
    }
    const auto got = all_records(*s);
    REQUIRE(got.size() == all.size());
    for (std::size_t i = 0; i < all.size(); ++i) check_same(got[i], all[i]);
  }
  const auto files = segment_files(dir);
  CHECK(files.size() > 6);
  CHECK(files.front().filename() == "000001.seg");
  for (const auto& f : files) {
    // A segment exceeds the limit only when it holds a single oversized blob.
    if (std::filesystem::file_size(f) > 1000) CHECK(std::filesystem::file_size(f) > 3000);
  }
  auto s = open_store(dir, 1000);
  const auto got = all_records(*s);
  REQUIRE(got.size() == all.size());
  for (std::size_t i = 0; i < all.size(); ++i) check_same(got[i], all[i]);
}

TEST_CASE("garbage after the last committed record of a segment does not break reopening or later puts") {
  temp_dir dir;
  {
    auto s = open_store(dir);
    REQUIRE(s->put(make_batch(1, 5)).has_value());
  }
  const auto last = segment_files(dir).back();
  const auto committed_size = std::filesystem::file_size(last);
  {
    // What a crash between writing blobs and committing them leaves: a partial blob with a valid header.
    std::string partial;
    REQUIRE(hio::repository::detail::append_blob(make_record(6), partial).has_value());
    partial.resize(partial.size() / 2);
    std::ofstream out(last, std::ios::binary | std::ios::app);
    out << partial << "garbage\xff\x00\x01";
  }
  {
    auto s = open_store(dir);
    CHECK(s->counts().records == 5);
    auto put = s->put(make_batch(6, 3));
    REQUIRE(put.has_value());
    CHECK(put->stored == 3);
    CHECK(std::filesystem::file_size(last) > committed_size);
  }
  auto s = open_store(dir);
  const auto got = all_records(*s);
  REQUIRE(got.size() == 8);
  for (std::size_t i = 0; i < got.size(); ++i) check_same(got[i], make_record(1 + i));
}

TEST_CASE("a truncated segment is reported as an error, not returned as a record") {
  temp_dir dir;
  {
    auto s = open_store(dir);
    REQUIRE(s->put(make_batch(1, 2)).has_value());
  }
  const auto last = segment_files(dir).back();
  std::filesystem::resize_file(last, std::filesystem::file_size(last) - 5);
  auto s = open_store(dir);
  auto first = s->get(1);
  REQUIRE(first.has_value());
  CHECK(first->has_value());
  auto second = s->get(2);
  CHECK_FALSE(second.has_value());
  CHECK_FALSE(s->since(0, 10).has_value());
}

TEST_CASE("a blob whose bytes changed fails its checksum") {
  std::string blob;
  REQUIRE(hio::repository::detail::append_blob(make_record(1), blob).has_value());
  auto ok = hio::repository::detail::decode_blob(blob);
  REQUIRE(ok.has_value());
  CHECK(ok->tuple_id == 1);
  blob[blob.size() - 3] ^= 0x20;
  CHECK_FALSE(hio::repository::detail::decode_blob(blob).has_value());
  CHECK_FALSE(hio::repository::detail::decode_blob(blob.substr(0, 10)).has_value());
}

TEST_CASE("concurrent puts of overlapping batches store each tuple exactly once") {
  temp_dir dir;
  auto s = open_store(dir, 4096);
  std::vector<std::thread> threads;
  std::atomic<std::uint64_t> stored{0}, duplicates{0};
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (std::uint64_t b = 0; b < 10; ++b) {
        auto put = s->put(make_batch(b * 10 + static_cast<std::uint64_t>(t) * 5, 10));
        if (put) {
          stored += put->stored;
          duplicates += put->duplicates;
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  const auto all = all_records(*s);
  std::vector<std::uint64_t> ids;
  for (const auto& r : all) ids.push_back(r.tuple_id);
  std::sort(ids.begin(), ids.end());
  CHECK(std::adjacent_find(ids.begin(), ids.end()) == ids.end());
  CHECK(stored.load() == all.size());
  CHECK(stored.load() + duplicates.load() == 400);
  CHECK(all.size() == 115);  // ids 0..114
}
