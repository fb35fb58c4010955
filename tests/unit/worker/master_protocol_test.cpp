#include "master_protocol.hpp"

#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

using namespace hio::worker;
using nlohmann::json;

TEST_CASE("the register body names the worker, its run, its host and every channel's port, core, processor and transport") {
  std::vector<detail::channel_description> channels{{0, 40001, 0, "noop", "cpu", "tcp"},
                                                    {1, 40002, 1, "sleep:5", "cpu", "tcp"}};
  const auto body = json::parse(detail::register_body("node-9", "3f2a", "10.0.0.5", channels));
  CHECK(body["id"] == "node-9");
  CHECK(body["instance"] == "3f2a");
  CHECK(body["host"] == "10.0.0.5");
  REQUIRE(body["channels"].size() == 2);
  CHECK(body["channels"][1] ==
        json{{"index", 1}, {"port", 40002}, {"core", 1}, {"processor", "sleep:5"}, {"device", "cpu"}, {"transport", "tcp"},
             {"transports", {"tcp"}}, {"sessions", 16}});
}

TEST_CASE("a channel offering UCX names both transports and its UCX listener's port") {
  detail::channel_description d{0, 40001, 0, "noop", "cpu", "ucx", {"tcp", "ucx"}, 41001};
  const auto body = json::parse(detail::register_body("w", "i", "h", {d}));
  CHECK(body["channels"][0]["transports"] == json{"tcp", "ucx"});
  CHECK(body["channels"][0]["ucx_port"] == 41001);
  CHECK(body["channels"][0]["port"] == 40001);
}

TEST_CASE("the heartbeat body reports draining and each channel's state, last lease and counters") {
  channel_status idle;
  idle.index = 0;
  idle.lease_id = 12;
  idle.processed = 5;
  idle.failed = 1;
  idle.bytes = 500;
  idle.restarts = 2;
  idle.processor_restarts = 3;
  idle.refused_lease_id = 14;
  idle.refused_connections = 44;
  channel_status busy;
  busy.index = 1;
  busy.busy = true;
  busy.active = {20, 23};
  busy.saturated = true;
  const auto body = json::parse(detail::heartbeat_body(true, {idle, busy}));
  CHECK(body["draining"] == true);
  REQUIRE(body["channels"].size() == 2);
  CHECK(body["channels"][0] == json{{"index", 0}, {"state", "idle"}, {"active", json::array()}, {"saturated", false}, {"lease_id", 12}, {"refused_lease_id", 14}, {"processed", 5},
                                    {"failed", 1}, {"bytes", 500}, {"restarts", 2},
                                    {"processor_restarts", 3}, {"refused_connections", 44}});
  CHECK(body["channels"][1]["state"] == "busy");
  CHECK(body["channels"][1]["active"] == json{20, 23});
  CHECK(body["channels"][1]["saturated"] == true);
}

TEST_CASE("the free body names the channel, the lease and whether the session ended clean") {
  CHECK(json::parse(detail::free_body(3, 77, true)) == json{{"channel", 3}, {"lease_id", 77}, {"clean", true}});
  CHECK(json::parse(detail::free_body(0, 1, false))["clean"] == false);
}

TEST_CASE("worker paths keep URL-safe ids as they are and percent-encode the rest") {
  CHECK(detail::worker_path("node-1.a_b~c", "/heartbeat") == "/v1/workers/node-1.a_b~c/heartbeat");
  CHECK(detail::worker_path("a b/c") == "/v1/workers/a%20b%2Fc");
}
