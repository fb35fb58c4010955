// The PostgreSQL backend of hio::repository::store against a real server (see postgres_schema.hpp): the
// store contract of tests/unit/repository/store_test.cpp, plus what sharing one database brings.
#include <hio/repository/store.hpp>

#include "blob.hpp"
#include "postgres_schema.hpp"
#include "records.hpp"

#include <doctest/doctest.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <limits>
#include <set>
#include <thread>

namespace {

using hio::feature_record;
using hio::record_status;
using hio::repository::store;
using hio::repository::store_options;
using hio::repository::testing::postgres_schema;

using hio::repository::testing::all_records;
using hio::repository::testing::check_same;
using hio::repository::testing::make_batch;
using hio::repository::testing::make_record;

std::unique_ptr<store> open_store(const postgres_schema& db, std::uint64_t page_bytes = 64ull << 20) {
  store_options o;
  o.store = db.conninfo();
  o.page_bytes = page_bytes;
  auto s = store::open(o);
  REQUIRE_MESSAGE(s.has_value(), (s ? "" : s.error().message));
  return std::move(*s);
}


}  // namespace

TEST_CASE("records put into a PostgreSQL store come back from since and get with every field intact") {
  postgres_schema db;
  auto s = open_store(db);
  const auto batch = make_batch(100, 10);
  auto put = s->put(batch);
  REQUIRE_MESSAGE(put.has_value(), (put ? "" : put.error().message));
  CHECK(put->stored == 10);
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
  CHECK(s->location().find("PostgreSQL") == 0);
}

TEST_CASE("extreme ids and text fields that are not UTF-8 round-trip through PostgreSQL") {
  postgres_schema db;
  auto s = open_store(db);
  feature_record r;
  r.tuple_id = std::numeric_limits<std::uint64_t>::max();
  r.xxh3 = std::numeric_limits<std::uint64_t>::max();
  r.size = std::numeric_limits<std::uint64_t>::max();
  r.processed_at_ms = -1;
  r.channel = std::numeric_limits<std::uint32_t>::max();
  r.source = std::string("a\0b\xff\xfe", 5);
  r.worker = "\xc3\x28";
  REQUIRE(s->put({r}).has_value());
  auto got = s->get(r.tuple_id);
  REQUIRE(got.has_value());
  REQUIRE(got->has_value());
  auto want = r;
  want.cursor = (*got)->cursor;
  CHECK(**got == want);
}

TEST_CASE("PostgreSQL: a known tuple id is a duplicate, another size or XXH3 a conflict, durable across reopen") {
  postgres_schema db;
  {
    auto s = open_store(db);
    REQUIRE(s->put(make_batch(1, 3)).has_value());
    auto changed = make_record(2);
    changed.source = "a retry that must not replace the first";
    auto forged = make_record(1);
    forged.xxh3 ^= 1;
    auto resized = make_record(3);
    resized.size += 1;
    auto within = make_record(9);
    auto within_other = make_record(9);
    within_other.xxh3 ^= 1;
    auto put = s->put({changed, forged, resized, within, make_record(10), within_other, make_record(10)});
    REQUIRE(put.has_value());
    CHECK(put->stored == 2);      // 9, 10
    CHECK(put->duplicates == 2);  // 2, the second 10
    CHECK(put->conflicts == std::vector<std::uint64_t>{1, 3, 9});
    CHECK((*s->get(2))->source == make_record(2).source);
    CHECK((*s->get(1))->xxh3 == make_record(1).xxh3);
    CHECK((*s->get(9))->xxh3 == make_record(9).xxh3);
  }
  auto s = open_store(db);
  const auto c = s->counts();
  CHECK(c.records == 5);
  CHECK(c.failed == 1);  // 9
  CHECK(c.stored == 4);
  CHECK(c.batches == 2);
  CHECK(c.duplicates == 2);
  CHECK(c.conflicts == 3);
  CHECK(c.rows_read == 0);
}

TEST_CASE("PostgreSQL: since pages in cursor order and rows_read counts what it returned") {
  postgres_schema db;
  auto s = open_store(db);
  REQUIRE(s->put(make_batch(50, 4)).has_value());
  REQUIRE(s->put(make_batch(10, 4)).has_value());
  const auto all = all_records(*s);
  REQUIRE(all.size() == 8);
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
  CHECK(s->counts().rows_read == 16);
  auto tail = s->since(all.back().cursor, 100);
  REQUIRE(tail.has_value());
  CHECK(tail->empty());
  CHECK(s->since(0, 0)->empty());
}

TEST_CASE("PostgreSQL: a page stops at page_bytes of blobs but always holds one record") {
  postgres_schema db;
  auto s = open_store(db, 3000);
  std::vector<feature_record> batch;
  for (std::uint64_t i = 1; i <= 5; ++i) batch.push_back(make_record(i, 1000));  // ~1.1 kB blobs
  batch.push_back(make_record(6, 10000));
  batch.push_back(make_record(7, 10));
  REQUIRE(s->put(batch).has_value());
  std::vector<std::size_t> sizes;
  std::vector<std::uint64_t> ids;
  std::uint64_t after = 0;
  for (;;) {
    auto page = s->since(after, 100);
    REQUIRE(page.has_value());
    if (page->empty()) break;
    sizes.push_back(page->size());
    for (const auto& r : *page) ids.push_back(r.tuple_id);
    after = page->back().cursor;
  }
  CHECK(ids == std::vector<std::uint64_t>{1, 2, 3, 4, 5, 6, 7});
  // A row joins a page while the blobs before it are under page_bytes: 6 (10 kB) ends the second page.
  CHECK(sizes == std::vector<std::size_t>{3, 3, 1});
}

TEST_CASE("PostgreSQL: the schema is migrated once, recorded, and a newer or foreign schema is refused") {
  postgres_schema db;
  { auto s = open_store(db); }
  { auto s = open_store(db); }  // a second open migrates nothing
  CHECK(db.run("SELECT count(*) FROM hio_schema_migrations") == "1");
  CHECK(db.run("SELECT max(version) FROM hio_schema_migrations") == "1");
  db.run("INSERT INTO hio_schema_migrations (version, description) VALUES (99, 'from the future')");
  store_options o;
  o.store = db.conninfo();
  auto newer = store::open(o);
  REQUIRE_FALSE(newer.has_value());
  CHECK(newer.error().message.find("newer") != std::string::npos);

  postgres_schema foreign;
  foreign.run("CREATE TABLE hio_tuples (id integer)");
  o.store = foreign.conninfo();
  CHECK_FALSE(store::open(o).has_value());
}

TEST_CASE("PostgreSQL: stores opened at once migrate one schema without a failure") {
  postgres_schema db;
  std::vector<std::thread> threads;
  std::atomic<int> opened{0};
  for (int i = 0; i < 4; ++i) {
    threads.emplace_back([&] {
      store_options o;
      o.store = db.conninfo();
      if (store::open(o)) ++opened;
    });
  }
  for (auto& t : threads) t.join();
  CHECK(opened == 4);
  CHECK(db.run("SELECT count(*) FROM hio_schema_migrations") == "1");
}

TEST_CASE("PostgreSQL: rows changed behind the store's back are errors, never records") {
  postgres_schema db;
  auto s = open_store(db);
  REQUIRE(s->put(make_batch(1, 4)).has_value());
  db.run("UPDATE hio_tuples SET blob = overlay(blob placing '\\x00'::bytea from 30) WHERE tuple_id = 1");
  db.run("UPDATE hio_tuples SET blob = (SELECT blob FROM hio_tuples WHERE tuple_id = 3) WHERE tuple_id = 2");
  db.run("UPDATE hio_tuples SET status = 7 WHERE tuple_id = 4");
  for (std::uint64_t id : {1, 2, 4}) {
    auto r = s->get(id);
    CHECK_FALSE(r.has_value());
  }
  auto three = s->get(3);
  REQUIRE(three.has_value());
  CHECK(three->has_value());
  CHECK_FALSE(s->since(0, 10).has_value());
  db.run("ALTER TABLE hio_tuples ALTER COLUMN channel TYPE integer");
  CHECK_FALSE(s->get(3).has_value());
}

TEST_CASE("PostgreSQL: knowledge versions increase across stores sharing a database") {
  postgres_schema db;
  auto a = open_store(db);
  auto b = open_store(db);
  CHECK_FALSE(a->knowledge(0)->has_value());
  std::vector<std::uint64_t> versions;
  for (int i = 0; i < 6; ++i) {
    auto& s = i % 2 == 0 ? a : b;
    auto e = s->put_knowledge(R"({"n":)" + std::to_string(i) + "}", R"({"i":)" + std::to_string(i) + "}", 1000 + i);
    REQUIRE(e.has_value());
    versions.push_back(e->version);
  }
  CHECK(std::is_sorted(versions.begin(), versions.end()));
  CHECK(std::adjacent_find(versions.begin(), versions.end()) == versions.end());
  auto latest = b->knowledge(0);
  REQUIRE(latest.has_value());
  REQUIRE(latest->has_value());
  CHECK((*latest)->version == versions.back());
  CHECK((*latest)->document == R"({"n":5})");
  auto first = a->knowledge(versions.front());
  REQUIRE(first->has_value());
  CHECK((*first)->stored_at_ms == 1000);
  CHECK((*first)->summary == R"({"i":0})");
  auto history = a->knowledge_history(4);
  REQUIRE(history.has_value());
  REQUIRE(history->size() == 4);
  CHECK((*history)[0].version == versions.back());
  CHECK((*history)[0].document.empty());
  CHECK_FALSE(a->knowledge(versions.back() + 100)->has_value());
}

TEST_CASE("PostgreSQL: concurrent writers through two stores and an incremental reader: no cursor skipped") {
  postgres_schema db;
  auto a = open_store(db);
  auto b = open_store(db);
  auto c = open_store(db);
  auto reader = open_store(db);
  store* writers_of[] = {a.get(), b.get(), c.get(), a.get(), b.get(), c.get()};
  constexpr std::uint64_t writers = 6, per_writer = 300, batch = 3;
  std::atomic<bool> writing{true};
  std::atomic<std::uint64_t> stored{0}, duplicates{0}, failures{0};
  std::vector<std::thread> threads;
  for (std::uint64_t t = 0; t < writers; ++t) {
    threads.emplace_back([&, t] {
      // Own ids first (disjoint: batches race for cursors, not for ids), then a neighbour's again.
      for (std::uint64_t pass = 0; pass < 2; ++pass) {
        const auto base = ((t + pass) % writers) * per_writer;
        for (std::uint64_t k = 0; k < per_writer; k += batch) {
          auto put = writers_of[t]->put(make_batch(base + k, batch));
          if (!put) {  // doctest's REQUIRE would throw out of this thread
            ++failures;
            continue;
          }
          stored += put->stored;
          duplicates += put->duplicates;
        }
      }
    });
  }
  std::vector<feature_record> seen;
  std::thread incremental([&] {
    std::uint64_t after = 0;
    for (;;) {
      const bool last = !writing.load();  // one more read after the writers are done
      auto page = reader->since(after, 7);
      if (!page) {
        ++failures;
        break;
      }
      for (auto& r : *page) {
        after = r.cursor;
        seen.push_back(std::move(r));
      }
      if (page->empty() && last) break;
    }
  });
  for (auto& t : threads) t.join();
  writing = false;
  incremental.join();
  REQUIRE(failures.load() == 0);

  constexpr auto ids = writers * per_writer;
  const auto all = all_records(*a);
  CHECK(all.size() == ids);
  CHECK(stored.load() == ids);
  CHECK(duplicates.load() == ids);
  std::set<std::uint64_t> unique;
  for (const auto& r : seen) unique.insert(r.tuple_id);
  CHECK(unique.size() == seen.size());
  CHECK_MESSAGE(seen.size() == all.size(), "the incremental reader skipped " << all.size() - seen.size() << " rows");
  for (std::size_t i = 0; i < std::min(seen.size(), all.size()); ++i) {
    if (seen[i].cursor != all[i].cursor) {
      FAIL_CHECK("the incremental reader missed cursor " << all[i].cursor);
      break;
    }
  }
  CHECK(b->counts().records == ids);
  CHECK(c->counts().duplicates == ids);
}

TEST_CASE("PostgreSQL: a store whose connection was cut reconnects on its next call") {
  postgres_schema db;
  auto s = open_store(db);
  REQUIRE(s->put(make_batch(1, 2)).has_value());
  spdlog::set_level(spdlog::level::err);
  db.run("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'hio-repository'"
         " AND pid <> pg_backend_pid()");
  auto put = s->put(make_batch(3, 2));  // begins on the dead connection, reconnects, begins again
  REQUIRE_MESSAGE(put.has_value(), (put ? "" : put.error().message));
  CHECK(put->stored == 2);
  db.run("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'hio-repository'"
         " AND pid <> pg_backend_pid()");
  auto first = s->since(0, 10);  // a read on a dead connection fails once, then the store reconnects
  if (!first) first = s->since(0, 10);
  REQUIRE(first.has_value());
  CHECK(first->size() == 4);
  spdlog::set_level(spdlog::level::info);
}

TEST_CASE("PostgreSQL: an unreachable server is an error when opening") {
  store_options o;
  o.store = "postgresql://nobody@127.0.0.1:1/none?connect_timeout=2";
  auto s = store::open(o);
  REQUIRE_FALSE(s.has_value());
  CHECK(s.error().code == 500);
  o.store = "postgres://u:secret-password@127.0.0.1:1/none";
  auto t = store::open(o);
  REQUIRE_FALSE(t.has_value());
  CHECK(t.error().message.find("secret-password") == std::string::npos);
}
