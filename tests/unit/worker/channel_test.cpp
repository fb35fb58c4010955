// A real channel on loopback: the common receiver in front of the worker's handler, fed by hio::connection.
#include <hio/common/clock.hpp>
#include <hio/common/connection.hpp>
#include <hio/common/hash.hpp>
#include <hio/common/token.hpp>
#include <hio/worker/channel.hpp>

#include "fake_http.hpp"

#include <doctest/doctest.h>

#include <cstring>
#include <mutex>
#include <string>
#include <vector>

using namespace hio;
using namespace hio::worker;
using hio::worker::test::fake_http;

namespace {

constexpr const char* secret = "test-secret";

struct shared_log {
  std::mutex mutex;
  std::vector<feature_record> stored;
  std::vector<std::pair<std::uint64_t, bool>> frees;
};

struct logging_sink final : record_sink {
  shared_log* log;
  explicit logging_sink(shared_log* l) : log(l) {}
  result<std::vector<std::uint64_t>> store(const std::vector<feature_record>& records) override {
    std::lock_guard lock(log->mutex);
    log->stored.insert(log->stored.end(), records.begin(), records.end());
    return std::vector<std::uint64_t>{};
  }
};

std::unique_ptr<channel> start_channel(shared_log& log, std::uint16_t port = 0, std::uint32_t index = 0) {
  channel_options o;
  o.worker_id = "w-test";
  o.index = index;
  o.port = port;
  o.secret = secret;
  o.restart_delay = std::chrono::milliseconds(10);
  auto c = channel::start(o, *make_processor("checksum"), std::make_unique<logging_sink>(&log),
                          [&log](std::uint32_t, std::uint64_t lease, bool clean) {
                            std::lock_guard lock(log.mutex);
                            log.frees.emplace_back(lease, clean);
                          });
  REQUIRE_MESSAGE(c.has_value(), (c ? "" : c.error().message));
  return std::move(*c);
}

// Sends one tuple under a fresh lease and returns the first answer.
result<answer> send_one(std::uint16_t port, std::uint64_t lease_id, std::uint64_t tuple_id, const std::string& text,
                        std::uint32_t channel_index = 0) {
  auto c = connection::open("127.0.0.1", port);
  if (!c) return c.error();
  std::vector<std::byte> payload(text.size());
  std::memcpy(payload.data(), text.data(), text.size());
  const std::string metadata = R"({"source":"unit"})";
  wire::frame_header h;
  h.type = wire::frame_type::data;
  h.tuple_id = tuple_id;
  h.token = mint_token(secret, channel_target("w-test", channel_index), lease_id, tuple_id, 1, unix_seconds() + 60);
  h.payload_length = payload.size();
  h.metadata_length = static_cast<std::uint32_t>(metadata.size());
  h.xxh3 = xxh3_64(std::span<const std::byte>(payload));
  if (auto s = c->send(h, metadata, payload); !s) return s.error();
  (void)c->send_end();  // a refusing channel may have closed already; its ERROR frame is still readable
  auto first = c->receive(std::chrono::seconds(10));
  if (first && first->header.type == wire::frame_type::ack) (void)c->receive(std::chrono::seconds(10));  // END
  return first;
}

}  // namespace

TEST_CASE("a channel acks a tuple sent under a valid lease after storing its record, then reports itself free") {
  shared_log log;
  auto ch = start_channel(log);
  CHECK(ch->port() != 0);
  auto a = send_one(ch->port(), 1, 100, "hello channel");
  REQUIRE_MESSAGE(a.has_value(), (a ? "" : a.error().message));
  CHECK(a->header.type == wire::frame_type::ack);
  CHECK(a->header.tuple_id == 100);
  CHECK(a->header.flags == static_cast<std::uint16_t>(wire::ack_status::stored));
  CHECK(fake_http::eventually([&] {
    std::lock_guard lock(log.mutex);
    return log.frees.size() == 1;
  }));
  std::lock_guard lock(log.mutex);
  REQUIRE(log.stored.size() == 1);
  CHECK(log.stored[0].tuple_id == 100);
  CHECK(log.stored[0].source == "unit");
  CHECK(log.stored[0].size == 13);
  CHECK(log.stored[0].worker == "w-test");
  CHECK(log.frees[0] == std::pair<std::uint64_t, bool>{1, true});
  const auto s = ch->status();
  CHECK(s.processed == 1);
  CHECK(s.bytes == 13);
  CHECK(s.sessions == 1);
  CHECK_FALSE(s.busy);
}

TEST_CASE("a channel refuses a lease it has already used with a bad_token error frame") {
  shared_log log;
  auto ch = start_channel(log);
  REQUIRE(send_one(ch->port(), 5, 500, "x").has_value());
  auto again = send_one(ch->port(), 5, 500, "x");
  REQUIRE(again.has_value());
  CHECK(again->header.type == wire::frame_type::error);
  CHECK(again->header.flags == static_cast<std::uint16_t>(wire::error_code::bad_token));
}

TEST_CASE("a draining channel answers a new session with unavailable") {
  shared_log log;
  auto ch = start_channel(log);
  ch->set_draining();
  auto a = send_one(ch->port(), 1, 100, "x");
  REQUIRE(a.has_value());
  CHECK(a->header.type == wire::frame_type::error);
  CHECK(a->header.flags == static_cast<std::uint16_t>(wire::error_code::unavailable));
}

TEST_CASE("a channel whose run loop throws is restarted on the same port, counts the restart and serves again") {
  shared_log log;
  auto ch = start_channel(log);
  const auto port = ch->port();
  ch->inject_fault();
  REQUIRE(fake_http::eventually([&] { return ch->status().restarts == 1; }));
  CHECK(fake_http::eventually([&] { return ch->port() != 0; }));
  CHECK(ch->port() == port);
  auto a = send_one(ch->port(), 2, 200, "after restart");
  REQUIRE_MESSAGE(a.has_value(), (a ? "" : a.error().message));
  CHECK(a->header.type == wire::frame_type::ack);
  CHECK(ch->status().processed == 1);
}

TEST_CASE("a channel cannot start on a port another channel listens on, and says which port") {
  shared_log log;
  auto first = start_channel(log);
  channel_options o;
  o.worker_id = "w-test";
  o.port = first->port();
  o.secret = secret;
  auto second = channel::start(o, *make_processor("noop"), std::make_unique<logging_sink>(&log), {});
  REQUIRE_FALSE(second.has_value());
  CHECK(second.error().message.find(std::to_string(first->port())) != std::string::npos);
}

TEST_CASE("stopping a channel twice is harmless") {
  shared_log log;
  auto ch = start_channel(log);
  ch->stop();
  ch->stop();
}
