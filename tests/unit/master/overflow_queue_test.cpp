#include <hio/common/hash.hpp>
#include <hio/common/wire.hpp>
#include <hio/master/overflow_queue.hpp>

#include <doctest/doctest.h>

#include <fstream>
#include <random>
#include <thread>
#include <unistd.h>

using namespace hio;
using namespace hio::master;
namespace fs = std::filesystem;

namespace {
struct temp_dir {
  fs::path path;
  temp_dir() {
    static int n = 0;
    path = fs::temp_directory_path() / ("hio-queue-" + std::to_string(::getpid()) + "-" + std::to_string(n++));
    fs::remove_all(path);
  }
  ~temp_dir() { fs::remove_all(path); }
};

std::vector<std::byte> bytes_of(std::uint64_t id, std::size_t n) {
  std::vector<std::byte> v(n);
  std::mt19937_64 rng(id);
  for (auto& b : v) b = static_cast<std::byte>(rng());
  return v;
}

void put(overflow_queue& q, std::uint64_t id, std::size_t n) {
  const auto b = bytes_of(id, n);
  REQUIRE(q.append(id, xxh3_64(b), R"({"source":"s"})", b).has_value());
}
}  // namespace

TEST_CASE("tuples come out in the order they went in, intact") {
  temp_dir d;
  auto q = overflow_queue::open({d.path}).value();
  for (std::uint64_t id : {5, 3, 9, 1}) put(*q, id, 1000 + id);
  REQUIRE(q->sync().has_value());
  auto batch = q->take(10, 1 << 30);
  REQUIRE(batch.size() == 4);
  CHECK(batch[0].tuple_id == 5);
  CHECK(batch[1].tuple_id == 3);
  CHECK(batch[3].tuple_id == 1);
  for (const auto& t : batch) CHECK(xxh3_64(*t.payload) == t.xxh3);
  CHECK(batch[0].metadata == R"({"source":"s"})");
}

TEST_CASE("a sync covers every append before it: a flush it covers needs no fdatasync of its own") {
  temp_dir d;
  auto q = overflow_queue::open({d.path}).value();
  put(*q, 1, 100);
  const auto first = q->written();
  put(*q, 2, 100);
  REQUIRE(q->sync_through(first).has_value());  // syncs both appends
  CHECK(q->stats().syncs == 1);
  REQUIRE(q->sync_through(first).has_value());
  REQUIRE(q->sync_through(q->written()).has_value());
  CHECK(q->stats().syncs == 1);
  put(*q, 3, 100);
  REQUIRE(q->sync().has_value());
  CHECK(q->stats().syncs == 2);
  // Concurrent flushes: each returns only once its own appends are durable, sharing fdatasyncs.
  std::vector<std::thread> ts;
  for (std::uint64_t t = 0; t < 8; ++t)
    ts.emplace_back([&, t] {
      put(*q, 100 + t, 1000);
      CHECK(q->sync_through(q->written()).has_value());
    });
  for (auto& t : ts) t.join();
  CHECK(q->stats().syncs <= 2 + 8);
  CHECK(q->stats().length == 11);
}

TEST_CASE("a full batch stops at the byte limit but always takes one tuple") {
  temp_dir d;
  auto q = overflow_queue::open({d.path}).value();
  put(*q, 1, 5000);
  put(*q, 2, 5000);
  CHECK(q->take(10, 100).size() == 1);
  CHECK(q->take(10, 100).size() == 1);
  CHECK(q->take(10, 100).empty());
}

TEST_CASE("given-back tuples keep their place at the front; completed ones are gone") {
  temp_dir d;
  auto q = overflow_queue::open({d.path}).value();
  for (std::uint64_t id = 1; id <= 4; ++id) put(*q, id, 100);
  auto a = q->take(2, 1 << 30);
  REQUIRE(a.size() == 2);
  CHECK(q->has_available());
  REQUIRE(q->complete({1}).has_value());
  q->give_back({2});
  auto b = q->take(10, 1 << 30);
  REQUIRE(b.size() == 3);
  CHECK(b[0].tuple_id == 2);
  CHECK(q->stats().length == 3);
}

TEST_CASE("a restart resumes exactly the tuples not completed, from disk, beyond the memory bound") {
  temp_dir d;
  {
    auto q = overflow_queue::open({d.path, /*memory_bytes=*/3000}).value();
    for (std::uint64_t id = 1; id <= 10; ++id) put(*q, id, 1000);
    REQUIRE(q->sync().has_value());
    CHECK(q->stats().memory_bytes <= 3000);
    auto t = q->take(3, 1 << 30);
    REQUIRE(q->complete({t[0].tuple_id, t[1].tuple_id}).has_value());
    // tuple 3 is in flight when the master dies
  }
  auto q = overflow_queue::open({d.path}).value();
  CHECK(q->stats().length == 8);
  auto all = q->take(100, 1 << 30);
  REQUIRE(all.size() == 8);
  CHECK(all.front().tuple_id == 3);
  for (const auto& t : all) CHECK(xxh3_64(*t.payload) == xxh3_64(bytes_of(t.tuple_id, 1000)));
}

TEST_CASE("a torn record at the end of a segment (a crash mid-append) is ignored on restart") {
  temp_dir d;
  {
    auto q = overflow_queue::open({d.path}).value();
    put(*q, 1, 100);
    put(*q, 2, 100);
    REQUIRE(q->sync().has_value());
  }
  for (const auto& e : fs::directory_iterator(d.path))
    if (e.path().extension() == ".qseg" && fs::file_size(e.path()) > 0) {
      fs::resize_file(e.path(), fs::file_size(e.path()) - 10);
    }
  auto q = overflow_queue::open({d.path}).value();
  CHECK(q->stats().length == 1);
  put(*q, 3, 100);
  REQUIRE(q->sync().has_value());
  auto all = q->take(10, 1 << 30);
  REQUIRE(all.size() == 2);
  CHECK(all[0].tuple_id == 1);
  CHECK(all[1].tuple_id == 3);
}

TEST_CASE("a tuple corrupted on disk is dropped and counted, not dispatched") {
  temp_dir d;
  {
    auto q = overflow_queue::open({d.path, /*memory_bytes=*/0}).value();
    put(*q, 1, 4000);
    REQUIRE(q->sync().has_value());
  }
  for (const auto& e : fs::directory_iterator(d.path))
    if (e.path().extension() == ".qseg" && fs::file_size(e.path()) > 0) {
      std::fstream f(e.path(), std::ios::in | std::ios::out | std::ios::binary);
      f.seekp(static_cast<std::streamoff>(fs::file_size(e.path()) - 5));
      f.put('\x55');
    }
  auto q = overflow_queue::open({d.path, 0}).value();
  CHECK(q->take(10, 1 << 30).empty());
  CHECK(q->stats().corrupt_total == 1);
  CHECK(q->empty());
}

TEST_CASE("a segment that cannot be read for now keeps its tuples queued; they are dispatched once it can") {
  temp_dir d;
  auto q = overflow_queue::open({d.path, /*memory_bytes=*/0}).value();
  put(*q, 1, 4000);
  put(*q, 2, 3000);
  REQUIRE(q->sync().has_value());
  fs::path segment;
  for (const auto& e : fs::directory_iterator(d.path))
    if (e.path().extension() == ".qseg") segment = e.path();
  REQUIRE(!segment.empty());
  // A directory where the segment was: open() works, every read fails (EISDIR), as with an I/O error.
  const fs::path aside = d.path / "aside";
  fs::rename(segment, aside);
  fs::create_directory(segment);
  CHECK(q->take(10, 1 << 30).empty());
  CHECK(q->stats().read_errors == 1);
  CHECK(q->stats().corrupt_total == 0);
  CHECK(q->stats().length == 2);
  fs::remove(segment);
  fs::rename(aside, segment);
  const auto got = q->take(10, 1 << 30);
  REQUIRE(got.size() == 2);
  CHECK(got[0].tuple_id == 1);
  CHECK(*got[0].payload == bytes_of(1, 4000));
  CHECK(*got[1].payload == bytes_of(2, 3000));
}

TEST_CASE("the size limit holds on append: a full queue refuses with busy until tuples are completed") {
  temp_dir d;
  overflow_queue::options o{d.path};
  o.max_bytes = 10000;
  auto q = overflow_queue::open(o).value();
  put(*q, 1, 6000);
  const auto b = bytes_of(2, 6000);
  auto refused = q->append(2, xxh3_64(b), "{}", b);
  REQUIRE_FALSE(refused.has_value());
  CHECK(refused.error().code == static_cast<int>(wire::error_code::busy));
  CHECK(refused.error().message.find("full") != std::string::npos);
  CHECK(q->stats().length == 1);
  REQUIRE(q->complete({1}).has_value());
  CHECK(q->append(2, xxh3_64(b), "{}", b).has_value());
}

TEST_CASE("a retried tuple id that is already queued is not queued twice") {
  temp_dir d;
  auto q = overflow_queue::open({d.path}).value();
  put(*q, 7, 10);
  put(*q, 7, 10);
  CHECK(q->stats().length == 1);
}

TEST_CASE("segments whose tuples are all completed are deleted") {
  temp_dir d;
  auto q = overflow_queue::open({d.path, 1 << 20, 1ull << 30, /*segment_bytes=*/2000}).value();
  for (std::uint64_t id = 1; id <= 6; ++id) put(*q, id, 1000);
  REQUIRE(q->sync().has_value());
  auto count_segments = [&] {
    int n = 0;
    for (const auto& e : fs::directory_iterator(d.path)) n += e.path().extension() == ".qseg";
    return n;
  };
  const int before = count_segments();
  auto t = q->take(6, 1 << 30);
  std::vector<std::uint64_t> ids;
  for (auto& x : t) ids.push_back(x.tuple_id);
  REQUIRE(q->complete(ids).has_value());
  CHECK(count_segments() < before);
  CHECK(count_segments() == 1);  // the segment being written stays
}

TEST_CASE("a dispatch session carries the available backlog spread over the free channels") {
  using hio::master::dispatch_share;
  hio::master::queue_stats q;
  q.length = 4;
  CHECK(dispatch_share(q, 3, 64) == 2);   // 4 tuples, 3 free channels: 2, then 1 and 1
  CHECK(dispatch_share(q, 4, 64) == 1);
  CHECK(dispatch_share(q, 1, 64) == 4);
  q.in_flight = 3;                        // only one is still waiting
  CHECK(dispatch_share(q, 1, 64) == 1);
  q.length = 10'000;
  q.in_flight = 0;
  CHECK(dispatch_share(q, 2, 64) == 64);  // never more than the batch bound
  CHECK(dispatch_share(q, 0, 64) == 64);
  q.length = 0;
  CHECK(dispatch_share(q, 5, 64) == 1);   // at least one (take() returns what there is)
}
