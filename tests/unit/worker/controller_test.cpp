// The controller against a fake master and a fake repository on loopback.
#include <hio/common/clock.hpp>
#include <hio/common/connection.hpp>
#include <hio/common/hash.hpp>
#include <hio/common/token.hpp>
#include <hio/worker/controller.hpp>

#include "fake_http.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <nlohmann/json.hpp>

#include <atomic>
#include <cstring>
#include <future>

using namespace hio;
using namespace hio::worker;
using hio::worker::test::fake_http;
using nlohmann::json;

namespace {

constexpr const char* secret = "controller-secret";

controller_options options_for(const fake_http& master, const fake_http& repository) {
  controller_options o;
  o.master_url = master.url();
  o.repository_url = repository.url();
  o.secret = secret;
  o.worker_id = "unit-worker";
  o.channels = 2;
  o.heartbeat_interval = std::chrono::milliseconds(30);
  o.drain_timeout = std::chrono::seconds(5);
  return o;
}

}  // namespace

TEST_CASE("the controller registers, heartbeats, registers again after a 404, reports free channels and drains") {
  std::atomic<int> heartbeats_to_refuse{1};
  fake_http master([&](const http::request& r) {
    if (r.path.ends_with("/heartbeat") && heartbeats_to_refuse.fetch_sub(1) > 0) {
      return http::error_response(404, "unknown worker");
    }
    return http::json_response("{}");
  });
  fake_http repository([](const http::request&) { return http::json_response(R"({"stored":1,"duplicates":0})"); });
  REQUIRE(master.ok());
  REQUIRE(repository.ok());

  auto started = controller::start(options_for(master, repository));
  REQUIRE_MESSAGE(started.has_value(), (started ? "" : started.error().message));
  auto& c = **started;
  CHECK(c.cores() >= 1);
  REQUIRE(c.status().size() == 2);

  // Registered, refused once with 404, registered again, then heartbeats go through.
  REQUIRE(fake_http::eventually([&] { return master.requests("POST", "/v1/workers").size() >= 2; }));
  REQUIRE(fake_http::eventually(
      [&] { return master.requests("POST", "/v1/workers/unit-worker/heartbeat").size() >= 3; }));
  CHECK(c.registered());
  const auto registration = master.requests("POST", "/v1/workers").front();
  CHECK(registration.bearer() == secret);
  const auto body = json::parse(registration.body);
  CHECK(body["id"] == "unit-worker");
  CHECK(body["host"] == "127.0.0.1");
  REQUIRE(body["channels"].size() == 2);
  const auto port0 = body["channels"][0]["port"].get<std::uint16_t>();
  CHECK(port0 == c.status()[0].port);
  CHECK(body["channels"][1]["index"] == 1);
  CHECK(body["channels"][0]["processor"] == "noop");
  const auto& offered = body["channels"][0]["transports"];  // TCP always; UCX too where it is built in
  CHECK(std::find(offered.begin(), offered.end(), "tcp") != offered.end());

  // One tuple through channel 0: its record reaches the repository, the master hears the channel is free.
  {
    auto conn = connection::open("127.0.0.1", port0);
    REQUIRE(conn.has_value());
    const std::string text = "tuple bytes";
    std::vector<std::byte> payload(text.size());
    std::memcpy(payload.data(), text.data(), text.size());
    wire::frame_header h;
    h.tuple_id = 1000;
    h.token = mint_token(secret, channel_target("unit-worker", 0), 42, 1000, 1, unix_seconds() + 60);
    h.payload_length = payload.size();
    h.xxh3 = xxh3_64(std::span<const std::byte>(payload));
    REQUIRE(conn->send(h, "", payload).has_value());
    REQUIRE(conn->send_end().has_value());
    auto a = conn->receive(std::chrono::seconds(10));
    REQUIRE(a.has_value());
    CHECK(a->header.type == wire::frame_type::ack);
    CHECK(a->header.flags == static_cast<std::uint16_t>(wire::ack_status::stored));
  }
  REQUIRE(repository.requests("POST", "/v1/records").size() == 1);
  REQUIRE(fake_http::eventually([&] { return !master.requests("POST", "/v1/workers/unit-worker/free").empty(); }));
  const auto freed = json::parse(master.requests("POST", "/v1/workers/unit-worker/free").front().body);
  CHECK(freed == json{{"channel", 0}, {"lease_id", 42}, {"clean", true}});
  REQUIRE(fake_http::eventually([&] {
    const auto beats = master.requests("POST", "/v1/workers/unit-worker/heartbeat");
    const auto last = json::parse(beats.back().body);
    return last["channels"][0]["processed"] == 1 && last["channels"][0]["lease_id"] == 42;
  }));

  // Drain: the master is told, the worker deregisters and nothing registers it again.
  auto done = std::async(std::launch::async, [&] { return c.run(); });
  c.request_drain();
  REQUIRE(done.wait_for(std::chrono::seconds(10)) == std::future_status::ready);
  auto outcome = done.get();
  CHECK_MESSAGE(outcome.has_value(), (outcome ? "" : outcome.error().message));
  CHECK(master.requests("POST", "/v1/workers/unit-worker/drain").size() == 1);
  CHECK(master.requests("DELETE", "/v1/workers/unit-worker").size() == 1);
  const auto all = master.requests();
  std::size_t deleted_at = 0;
  for (std::size_t i = 0; i < all.size(); ++i) {
    if (all[i].method == "DELETE") deleted_at = i;
  }
  for (std::size_t i = deleted_at + 1; i < all.size(); ++i) CHECK(all[i].path != "/v1/workers");
}

TEST_CASE("a drain waits for an active session to end before deregistering") {
  fake_http master;
  fake_http repository([](const http::request&) { return http::json_response(R"({"stored":1,"duplicates":0})"); });
  REQUIRE(master.ok());
  REQUIRE(repository.ok());
  auto o = options_for(master, repository);
  o.channels = 1;
  o.processor = "sleep:400";
  auto started = controller::start(o);
  REQUIRE(started.has_value());
  auto& c = **started;
  REQUIRE(fake_http::eventually([&] { return c.registered(); }));

  auto conn = connection::open("127.0.0.1", c.status()[0].port);
  REQUIRE(conn.has_value());
  std::vector<std::byte> payload(16, std::byte{1});
  wire::frame_header h;
  h.tuple_id = 7;
  h.token = mint_token(secret, channel_target("unit-worker", 0), 1, 7, 1, unix_seconds() + 60);
  h.payload_length = payload.size();
  h.xxh3 = xxh3_64(std::span<const std::byte>(payload));
  REQUIRE(conn->send(h, "", payload).has_value());
  REQUIRE(fake_http::eventually([&] { return c.status()[0].busy; }));

  auto done = std::async(std::launch::async, [&] { return c.run(); });
  c.request_drain();
  REQUIRE(conn->send_end().has_value());
  auto a = conn->receive(std::chrono::seconds(10));
  REQUIRE(a.has_value());
  CHECK(a->header.type == wire::frame_type::ack);
  REQUIRE(done.wait_for(std::chrono::seconds(10)) == std::future_status::ready);
  CHECK(done.get().has_value());
  CHECK(master.requests("DELETE", "/v1/workers/unit-worker").size() == 1);
  CHECK(c.status()[0].processed == 1);
}

TEST_CASE("a bad processor spec stops the controller from starting") {
  fake_http master;
  fake_http repository;
  auto o = options_for(master, repository);
  o.processor = "nonsense";
  auto started = controller::start(o);
  REQUIRE_FALSE(started.has_value());
  CHECK(started.error().message.find("nonsense") != std::string::npos);
}
