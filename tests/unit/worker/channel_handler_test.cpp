#include <hio/common/clock.hpp>
#include <hio/common/wire.hpp>
#include <hio/worker/channel.hpp>

#include <doctest/doctest.h>

#include <cstddef>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <vector>

using namespace hio;
using namespace hio::worker;

namespace {

int code(wire::error_code c) { return static_cast<int>(c); }

// Keeps what it is given; fails while `fail` is set.
struct fake_sink final : record_sink {
  std::vector<std::vector<feature_record>>* batches;
  bool* fail;
  std::vector<std::uint64_t>* conflicts;  // ids the "repository" reports as holding other bytes
  fake_sink(std::vector<std::vector<feature_record>>* b, bool* f, std::vector<std::uint64_t>* c)
      : batches(b), fail(f), conflicts(c) {}
  result<std::vector<std::uint64_t>> store(const std::vector<feature_record>& records) override {
    if (*fail) return make_error(code(wire::error_code::internal), "repository down");
    batches->push_back(records);
    return *conflicts;
  }
};

// Fails tuples whose first byte is 0xEE, throws for 0xFF, else one feature "first".
struct picky_processor final : processor {
  result<std::vector<feature>> process(const received_tuple& t) override {
    if (!t.payload.empty() && t.payload[0] == std::byte{0xFF}) throw std::runtime_error("boom");
    if (!t.payload.empty() && t.payload[0] == std::byte{0xEE}) return make_error(0, "not a .npy array");
    const double first = t.payload.empty() ? -1.0 : static_cast<double>(std::to_integer<int>(t.payload[0]));
    return std::vector<feature>{{"first", first}};
  }
  std::string name() const override { return "picky"; }
};

struct freed {
  std::uint32_t channel;
  std::uint64_t lease_id;
  bool clean;
};

struct fixture {
  explicit fixture(std::uint32_t sessions = 8)
      : handler("w1", 3, std::make_unique<picky_processor>(), std::make_unique<fake_sink>(&batches, &fail, &conflicts),
                [this](std::uint32_t c, std::uint64_t l, bool clean) { frees.push_back({c, l, clean}); }, sessions) {}
  std::vector<std::vector<feature_record>> batches;
  bool fail = false;
  std::vector<std::uint64_t> conflicts;
  std::vector<freed> frees;
  channel_handler handler;
};

lease_token lease(std::uint64_t id) {
  lease_token t;
  t.lease_id = id;
  t.first_tuple_id = id * 100;
  t.count = 10;
  t.expires_at = unix_seconds() + 60;
  return t;
}

struct tuple_bytes {
  std::vector<std::byte> payload;
  std::string metadata;
  received_tuple view(std::uint64_t id) const {
    received_tuple t;
    t.tuple_id = id;
    t.xxh3 = 0x1234;
    t.metadata = metadata;
    t.payload = payload;
    t.wire_bytes = payload.size();
    return t;
  }
};

}  // namespace

TEST_CASE("a channel serves several sessions at once, each with its own records and acks") {
  fixture f;
  tuple_bytes one{{std::byte{1}}, ""}, two{{std::byte{2}}, ""};
  REQUIRE(f.handler.begin_session(lease(1), "peer-a").has_value());
  REQUIRE(f.handler.begin_session(lease(2), "peer-b").has_value());
  REQUIRE(f.handler.on_tuple(lease(1), one.view(100)).has_value());
  REQUIRE(f.handler.on_tuple(lease(2), two.view(200)).has_value());
  REQUIRE(f.handler.on_tuple(lease(1), one.view(101)).has_value());
  CHECK(f.handler.status().active == std::vector<std::uint64_t>{1, 2});
  auto b = f.handler.flush(lease(2));
  REQUIRE(b.has_value());
  REQUIRE(b->size() == 1);
  CHECK((*b)[0].tuple_id == 200);
  auto a = f.handler.flush(lease(1));
  REQUIRE(a.has_value());
  REQUIRE(a->size() == 2);
  CHECK((*a)[0].tuple_id == 100);
  CHECK((*a)[1].tuple_id == 101);
  f.handler.end_session(lease(1), true);
  CHECK(f.handler.busy());
  CHECK(f.handler.status().active == std::vector<std::uint64_t>{2});
  f.handler.end_session(lease(2), true);
  CHECK_FALSE(f.handler.busy());
  CHECK(f.frees.size() == 2);
}

// The first store waits until released; every store's records are kept, by call.
struct gated_sink final : record_sink {
  std::promise<void> entered, release;
  std::shared_future<void> released = release.get_future().share();
  std::mutex m;
  std::vector<std::vector<std::uint64_t>> calls;
  result<std::vector<std::uint64_t>> store(const std::vector<feature_record>& records) override {
    std::vector<std::uint64_t> ids;
    for (const auto& r : records) ids.push_back(r.tuple_id);
    bool first = false;
    {
      std::lock_guard lock(m);
      first = calls.empty();
      calls.push_back(std::move(ids));
    }
    if (first) {
      entered.set_value();
      released.wait();
    }
    return std::vector<std::uint64_t>{};
  }
};

TEST_CASE("flushes that wait for a store together are one store, each answered with its own acks") {
  auto sink = std::make_unique<gated_sink>();
  auto& gate = *sink;
  channel_handler h("w1", 0, std::make_unique<picky_processor>(), std::move(sink), {}, 8);
  tuple_bytes t{{std::byte{1}}, ""};
  std::map<std::uint64_t, std::promise<result<std::vector<ack>>>> answers;
  for (std::uint64_t l : {1, 2, 3}) {
    REQUIRE(h.begin_session(lease(l), "peer").has_value());
    REQUIRE(h.on_tuple(lease(l), t.view(l * 100)).has_value());
    if (l == 3) REQUIRE(h.on_tuple(lease(l), t.view(l * 100 + 1)).has_value());
  }
  auto flush = [&](std::uint64_t l) {
    h.flush_async(lease(l), [&answers, l](result<std::vector<ack>> r) { answers.at(l).set_value(std::move(r)); });
  };
  for (std::uint64_t l : {1, 2, 3}) answers[l];  // made before any answer can arrive
  flush(1);
  gate.entered.get_future().wait();  // the store thread is inside the first store
  flush(2);
  flush(3);
  gate.release.set_value();
  for (std::uint64_t l : {1, 2, 3}) {
    auto r = answers.at(l).get_future().get();
    REQUIRE(r.has_value());
    std::vector<std::uint64_t> ids;
    for (const auto& a : *r) ids.push_back(a.tuple_id);
    CHECK(ids == (l == 3 ? std::vector<std::uint64_t>{300, 301} : std::vector<std::uint64_t>{l * 100}));
  }
  h.wait_stores();
  REQUIRE(gate.calls.size() == 2);
  CHECK(gate.calls[1] == std::vector<std::uint64_t>{200, 300, 301});
  CHECK(h.status().processed == 4);
}

TEST_CASE("a channel refuses with busy past twice the sessions it offers") {
  fixture f(1);
  CHECK(f.handler.status().max_sessions == 1);
  REQUIRE(f.handler.begin_session(lease(1), "peer-a").has_value());
  REQUIRE(f.handler.begin_session(lease(2), "peer-b").has_value());
  auto third = f.handler.begin_session(lease(3), "peer-c");
  REQUIRE_FALSE(third.has_value());
  CHECK(third.error().code == code(wire::error_code::busy));
  CHECK(f.handler.status().refused_lease_id == 3);
  f.handler.end_session(lease(1), true);
  CHECK(f.handler.begin_session(lease(4), "peer-c").has_value());
}

TEST_CASE("a lease already used on the channel is refused as bad_token: leases are single-use") {
  fixture f;
  REQUIRE(f.handler.begin_session(lease(5), "p").has_value());
  auto during = f.handler.begin_session(lease(5), "p");
  REQUIRE_FALSE(during.has_value());
  CHECK(during.error().code == code(wire::error_code::bad_token));
  f.handler.end_session(lease(5), true);
  auto again = f.handler.begin_session(lease(5), "p");
  REQUIRE_FALSE(again.has_value());
  CHECK(again.error().code == code(wire::error_code::bad_token));
  CHECK_FALSE(f.handler.busy());
  // Sessions of several sources begin in any order of their lease ids.
  CHECK(f.handler.begin_session(lease(7), "p").has_value());
  CHECK(f.handler.begin_session(lease(6), "p").has_value());
  CHECK(f.handler.status().lease_id == 7);
}

TEST_CASE("a processor busy nearly all the time saturates the channel until its load drops") {
  using clock = load_meter::clock;
  load_meter m;
  const auto t0 = clock::now();
  CHECK_FALSE(m.saturated(t0));
  // 20 ms tuples back to back for 300 ms.
  auto t = t0;
  for (int i = 0; i < 15; ++i, t += std::chrono::milliseconds(20)) m.finished(t, t + std::chrono::milliseconds(20));
  CHECK(m.saturated(t));
  // A light load: 1 ms in every 20 ms.
  for (int i = 0; i < 15; ++i, t += std::chrono::milliseconds(20)) m.finished(t + std::chrono::milliseconds(19), t + std::chrono::milliseconds(20));
  CHECK_FALSE(m.saturated(t));
  // Saturated again, then idle: stale after two windows without a finished window.
  for (int i = 0; i < 30; ++i, t += std::chrono::milliseconds(20)) m.finished(t, t + std::chrono::milliseconds(20));
  CHECK(m.saturated(t));
  CHECK_FALSE(m.saturated(t + std::chrono::seconds(1)));
  // One tuple in the processor for a whole window saturates on its own.
  m.started(t + std::chrono::seconds(2));
  CHECK_FALSE(m.saturated(t + std::chrono::seconds(2) + std::chrono::milliseconds(100)));
  CHECK(m.saturated(t + std::chrono::seconds(2) + std::chrono::milliseconds(300)));
}

TEST_CASE("the first lease a channel sees is accepted whatever its id, even 0") {
  fixture f;
  CHECK(f.handler.begin_session(lease(0), "p").has_value());
}

TEST_CASE("a draining channel refuses new sessions as unavailable but lets the active one finish") {
  fixture f;
  tuple_bytes b{{std::byte{1}}, ""};
  REQUIRE(f.handler.begin_session(lease(1), "p").has_value());
  f.handler.set_draining(true);
  REQUIRE(f.handler.on_tuple(lease(1), b.view(100)).has_value());
  auto acks = f.handler.flush(lease(1));
  REQUIRE(acks.has_value());
  CHECK(acks->size() == 1);
  f.handler.end_session(lease(1), true);
  auto refused = f.handler.begin_session(lease(2), "p");
  REQUIRE_FALSE(refused.has_value());
  CHECK(refused.error().code == code(wire::error_code::unavailable));
  CHECK_FALSE(f.handler.busy());
  CHECK(f.handler.status().draining);
}

TEST_CASE("processed tuples are acked stored, in order, only after the sink stored their records") {
  fixture f;
  tuple_bytes a{{std::byte{1}, std::byte{2}}, ""};
  tuple_bytes b{{std::byte{9}}, ""};
  REQUIRE(f.handler.begin_session(lease(1), "p").has_value());
  REQUIRE(f.handler.on_tuple(lease(1), a.view(100)).has_value());
  REQUIRE(f.handler.on_tuple(lease(1), b.view(101)).has_value());
  CHECK(f.batches.empty());
  auto acks = f.handler.flush(lease(1));
  REQUIRE(acks.has_value());
  REQUIRE(acks->size() == 2);
  CHECK((*acks)[0].tuple_id == 100);
  CHECK((*acks)[0].status == wire::ack_status::stored);
  CHECK((*acks)[1].tuple_id == 101);
  REQUIRE(f.batches.size() == 1);
  REQUIRE(f.batches[0].size() == 2);
  CHECK(f.batches[0][1].features == std::vector<feature>{{"first", 9.0}});
  // Nothing pending: a second flush stores nothing.
  auto none = f.handler.flush(lease(1));
  REQUIRE(none.has_value());
  CHECK(none->empty());
  CHECK(f.batches.size() == 1);
}

TEST_CASE("a processor error stores a failed record and acks it failed with the reason") {
  fixture f;
  tuple_bytes bad{{std::byte{0xEE}}, ""};
  REQUIRE(f.handler.begin_session(lease(1), "p").has_value());
  REQUIRE(f.handler.on_tuple(lease(1), bad.view(100)).has_value());
  auto acks = f.handler.flush(lease(1));
  REQUIRE(acks.has_value());
  REQUIRE(acks->size() == 1);
  CHECK((*acks)[0].status == wire::ack_status::failed);
  CHECK((*acks)[0].reason == "not a .npy array");
  REQUIRE(f.batches.size() == 1);
  CHECK(f.batches[0][0].status == record_status::failed);
  CHECK(f.batches[0][0].error == "not a .npy array");
  CHECK(f.batches[0][0].features.empty());
}

TEST_CASE("a tuple whose id the repository holds with other bytes is acked failed as a conflict") {
  fixture f;
  tuple_bytes ok{{std::byte{1}}, ""};
  REQUIRE(f.handler.begin_session(lease(1), "p").has_value());
  REQUIRE(f.handler.on_tuple(lease(1), ok.view(100)).has_value());
  REQUIRE(f.handler.on_tuple(lease(1), ok.view(101)).has_value());
  f.conflicts = {101};
  auto acks = f.handler.flush(lease(1));
  REQUIRE(acks.has_value());
  REQUIRE(acks->size() == 2);
  CHECK((*acks)[0].status == wire::ack_status::stored);
  CHECK((*acks)[1].status == wire::ack_status::failed);
  CHECK((*acks)[1].reason.find("conflict") != std::string::npos);
}

TEST_CASE("a processor that throws fails its tuple instead of ending the channel") {
  fixture f;
  tuple_bytes bomb{{std::byte{0xFF}}, ""};
  REQUIRE(f.handler.begin_session(lease(1), "p").has_value());
  REQUIRE(f.handler.on_tuple(lease(1), bomb.view(100)).has_value());
  auto acks = f.handler.flush(lease(1));
  REQUIRE(acks.has_value());
  CHECK((*acks)[0].status == wire::ack_status::failed);
  CHECK((*acks)[0].reason.find("boom") != std::string::npos);
}

TEST_CASE("when the sink cannot store, flush fails with internal, acks nothing and drops the batch") {
  fixture f;
  tuple_bytes a{{std::byte{1}}, ""};
  REQUIRE(f.handler.begin_session(lease(1), "p").has_value());
  REQUIRE(f.handler.on_tuple(lease(1), a.view(100)).has_value());
  f.fail = true;
  auto acks = f.handler.flush(lease(1));
  REQUIRE_FALSE(acks.has_value());
  CHECK(acks.error().code == code(wire::error_code::internal));
  CHECK(acks.error().message.find("repository down") != std::string::npos);
  f.fail = false;
  auto later = f.handler.flush(lease(1));
  REQUIRE(later.has_value());
  CHECK(later->empty());
  CHECK(f.handler.status().processed == 0);
}

TEST_CASE("ending a session marks the channel idle and tells the notifier the lease and whether it was clean") {
  fixture f;
  REQUIRE(f.handler.begin_session(lease(7), "p").has_value());
  f.handler.end_session(lease(7), false);
  REQUIRE(f.frees.size() == 1);
  CHECK(f.frees[0].channel == 3);
  CHECK(f.frees[0].lease_id == 7);
  CHECK_FALSE(f.frees[0].clean);
  CHECK_FALSE(f.handler.busy());
  // An end for a lease this channel does not serve changes nothing.
  REQUIRE(f.handler.begin_session(lease(8), "p").has_value());
  f.handler.end_session(lease(7), true);
  CHECK(f.handler.busy());
  CHECK(f.frees.size() == 1);
}

TEST_CASE("aborting after a run-loop failure ends the active session unclean and drops its pending records") {
  fixture f;
  tuple_bytes a{{std::byte{1}}, ""};
  REQUIRE(f.handler.begin_session(lease(3), "p").has_value());
  REQUIRE(f.handler.on_tuple(lease(3), a.view(300)).has_value());
  f.handler.abort_session();
  CHECK_FALSE(f.handler.busy());
  REQUIRE(f.frees.size() == 1);
  CHECK(f.frees[0].lease_id == 3);
  CHECK_FALSE(f.frees[0].clean);
  f.handler.abort_session();  // nothing active: nothing happens
  CHECK(f.frees.size() == 1);
  REQUIRE(f.handler.begin_session(lease(4), "p").has_value());
  auto acks = f.handler.flush(lease(4));
  REQUIRE(acks.has_value());
  CHECK(acks->empty());
}

TEST_CASE("the counters count sessions, processed and failed tuples, bytes and restarts") {
  fixture f;
  tuple_bytes ok{{std::byte{1}, std::byte{2}, std::byte{3}}, ""};
  tuple_bytes bad{{std::byte{0xEE}, std::byte{0}}, ""};
  REQUIRE(f.handler.begin_session(lease(1), "p").has_value());
  REQUIRE(f.handler.on_tuple(lease(1), ok.view(100)).has_value());
  REQUIRE(f.handler.on_tuple(lease(1), bad.view(101)).has_value());
  REQUIRE(f.handler.flush(lease(1)).has_value());
  f.handler.end_session(lease(1), true);
  f.handler.count_restart();
  const auto s = f.handler.status();
  CHECK(s.index == 3);
  CHECK(s.sessions == 1);
  CHECK(s.processed == 2);
  CHECK(s.failed == 1);
  CHECK(s.bytes == 5);
  CHECK(s.restarts == 1);
  CHECK(s.lease_id == 1);
  CHECK_FALSE(s.busy);
}

TEST_CASE("a record carries the tuple's id, size, checksum, metadata, source, worker, channel, time and features") {
  std::vector<std::byte> payload(42, std::byte{5});
  const std::string metadata = R"({"source":"sim-7","parameters":{"k":1.5}})";
  received_tuple t;
  t.tuple_id = 99;
  t.xxh3 = 0xABCDEF0123456789ull;
  t.metadata = metadata;
  t.payload = payload;
  const result<std::vector<feature>> features = std::vector<feature>{{"mean", 5.0}};
  const auto r = make_feature_record(t, features, "node-1", 2, 1700000000123);
  CHECK(r.tuple_id == 99);
  CHECK(r.cursor == 0);
  CHECK(r.source == "sim-7");
  CHECK(r.size == 42);
  CHECK(r.xxh3 == 0xABCDEF0123456789ull);
  CHECK(r.status == record_status::stored);
  CHECK(r.error.empty());
  CHECK(r.metadata == metadata);
  CHECK(r.worker == "node-1");
  CHECK(r.channel == 2);
  CHECK(r.processed_at_ms == 1700000000123);
  CHECK(r.features == std::vector<feature>{{"mean", 5.0}});
}

TEST_CASE("records built by the handler are stamped with the time they were processed") {
  fixture f;
  tuple_bytes a{{std::byte{1}}, R"({"source":"s"})"};
  const auto before = unix_ms();
  REQUIRE(f.handler.begin_session(lease(1), "p").has_value());
  REQUIRE(f.handler.on_tuple(lease(1), a.view(100)).has_value());
  REQUIRE(f.handler.flush(lease(1)).has_value());
  REQUIRE(f.batches.size() == 1);
  const auto& r = f.batches[0][0];
  CHECK(r.processed_at_ms >= before);
  CHECK(r.processed_at_ms <= unix_ms());
  CHECK(r.worker == "w1");
  CHECK(r.channel == 3);
  CHECK(r.source == "s");
}

TEST_CASE("metadata that is not JSON gives an empty source and is kept as it came") {
  fixture f;
  tuple_bytes a{{std::byte{1}}, "{not json"};
  REQUIRE(f.handler.begin_session(lease(1), "p").has_value());
  REQUIRE(f.handler.on_tuple(lease(1), a.view(100)).has_value());
  auto acks = f.handler.flush(lease(1));
  REQUIRE(acks.has_value());
  CHECK((*acks)[0].status == wire::ack_status::stored);
  CHECK(f.batches[0][0].source.empty());
  CHECK(f.batches[0][0].metadata == "{not json");
}

TEST_CASE("the source is read only from a string \"source\" field of a JSON object") {
  CHECK(source_of("").empty());
  CHECK(source_of("{\"source\":\"a\"}") == "a");
  CHECK(source_of("{\"source\":17}").empty());
  CHECK(source_of("{\"source\":null}").empty());
  CHECK(source_of("[\"source\"]").empty());
  CHECK(source_of("\"source\"").empty());
  CHECK(source_of("{\"other\":\"a\"}").empty());
  CHECK(source_of("{\"source\":\"a\"} trailing").empty());
}
