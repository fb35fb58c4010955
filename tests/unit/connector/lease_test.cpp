#include "lease.hpp"

#include <hio/common/token.hpp>
#include <hio/connector/client.hpp>

#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

using namespace hio::connector::detail;
using hio::connector::errc;

namespace {

nlohmann::json good_answer() {
  const auto token = hio::mint_token("s", hio::channel_target("w1", 2), 17, 1000, 64, 1700000000);
  return {{"kind", "channel"}, {"host", "127.0.0.1"}, {"port", 40001}, {"worker", "w1"},
          {"channel", 2},      {"lease_id", 17},      {"first_id", 1000}, {"count", 64},
          {"expires_at", 1700000000}, {"token", hio::to_hex(token)}};
}

}  // namespace

TEST_CASE("lease request bodies have the documented fields") {
  auto n = nlohmann::json::parse(new_lease_body("sim", 64, 6291456));
  CHECK(n == nlohmann::json{{"count", 64}, {"source", "sim"}, {"bytes", 6291456}});
  const std::string key(32, 'a');
  auto r = nlohmann::json::parse(retry_lease_body("sim", 1000, 5, issued_ids{990, 64, key}));
  CHECK(r == nlohmann::json{{"retry", {{"first", 1000}, {"count", 5},
                                       {"issued", {{"first", 990}, {"count", 64}, {"key", key}}}}},
                            {"source", "sim"}});
  // Without a key (a master that sent none) the body says so by leaving "issued" out.
  CHECK_FALSE(nlohmann::json::parse(retry_lease_body("sim", 1000, 5, issued_ids{}))["retry"].contains("issued"));
}

TEST_CASE("a lease answer's retry key is kept with its id range, and a malformed one is refused") {
  auto a = good_answer();
  const auto key = hio::retry_key("s", 1000, 64);
  a["retry_key"] = key;
  auto l = parse_lease(a.dump());
  REQUIRE(l.has_value());
  CHECK(l->retry_key == key);
  CHECK(l->issued().first == 1000);
  CHECK(l->issued().count == 64);
  CHECK(l->issued().key == key);
  a["retry_key"] = 5;
  CHECK(parse_lease(a.dump()).error().code == static_cast<int>(errc::bad_lease));
  a["retry_key"] = "abc";
  CHECK(parse_lease(a.dump()).error().code == static_cast<int>(errc::bad_lease));
}

TEST_CASE("a lease body names the client instance when given one") {
  auto n = nlohmann::json::parse(new_lease_body("sim", 64, 10, "tcp", "a1b2"));
  CHECK(n["client"] == "a1b2");
  auto r = nlohmann::json::parse(retry_lease_body("sim", 7, 1, issued_ids{}, "tcp", "a1b2"));
  CHECK(r["client"] == "a1b2");
  CHECK_FALSE(n.contains("ends"));
  CHECK(nlohmann::json::parse(new_lease_body("sim", 64, 10, "tcp", "a1b2", 41))["ends"] == 41);
}

TEST_CASE("sessions default to 64 MiB of tuples, between 64 and 65536 ids") {
  CHECK(session_length(0, 6 << 20) == 64);        // 6 MiB tuples: the floor (10 would be 60 MiB)
  CHECK(session_length(0, 1 << 20) == 64);        // 1 MiB: exactly 64 MiB
  CHECK(session_length(0, 64 << 10) == 1024);     // 64 KiB
  CHECK(session_length(0, 1024) == 65536);        // 1 KiB: the cap
  CHECK(session_length(0, 0) == 65536);           // no hint
  CHECK(session_length(0, 1ull << 31) == 64);     // 2 GiB
  CHECK(session_length(100, 1024) == 100);        // asked for explicitly
}

TEST_CASE("a lease answer parses into endpoint, id range and token") {
  auto l = parse_lease(good_answer().dump());
  REQUIRE(l.has_value());
  CHECK(!l->queue);
  CHECK(l->host == "127.0.0.1");
  CHECK(l->port == 40001);
  CHECK(l->worker == "w1");
  CHECK(l->channel == 2);
  CHECK(l->lease_id == 17);
  CHECK(l->first_id == 1000);
  CHECK(l->count == 64);
  CHECK(l->token.first_tuple_id == 1000);
  CHECK(l->token.count == 64);
  CHECK(l->token.lease_id == 17);

  auto q = good_answer();
  q["kind"] = "queue";
  q.erase("worker");
  q.erase("channel");
  auto lq = parse_lease(q.dump());
  REQUIRE(lq.has_value());
  CHECK(lq->queue);
}

TEST_CASE("unusable lease answers are errors, not crashes") {
  for (const char* field : {"kind", "host", "port", "lease_id", "first_id", "count", "token"}) {
    auto j = good_answer();
    j.erase(field);
    auto l = parse_lease(j.dump());
    REQUIRE_FALSE(l.has_value());
    CHECK(l.error().code == static_cast<int>(errc::bad_lease));
  }
  auto bad_kind = good_answer();
  bad_kind["kind"] = "teleport";
  CHECK_FALSE(parse_lease(bad_kind.dump()).has_value());
  auto bad_token = good_answer();
  bad_token["token"] = "abcd";
  CHECK_FALSE(parse_lease(bad_token.dump()).has_value());
  auto mismatch = good_answer();
  mismatch["first_id"] = 999;
  CHECK_FALSE(parse_lease(mismatch.dump()).has_value());
  auto port = good_answer();
  port["port"] = 70000;
  CHECK_FALSE(parse_lease(port.dump()).has_value());
  CHECK_FALSE(parse_lease("not json").has_value());
  CHECK_FALSE(parse_lease("[]").has_value());
}

TEST_CASE("backoff starts at 50 ms, doubles, and stops at 2 s") {
  CHECK(backoff_delay(0) == std::chrono::milliseconds(50));
  CHECK(backoff_delay(1) == std::chrono::milliseconds(100));
  CHECK(backoff_delay(5) == std::chrono::milliseconds(1600));
  CHECK(backoff_delay(6) == std::chrono::milliseconds(2000));
  CHECK(backoff_delay(1000) == std::chrono::milliseconds(2000));
}

TEST_CASE("Retry-After is honoured in any letter case and ignored when malformed") {
  hio::http::response r;
  CHECK_FALSE(retry_after(r).has_value());
  r.headers = {{"retry-after", "3"}};
  CHECK(retry_after(r) == std::chrono::milliseconds(3000));
  r.headers = {{"Retry-After", "0"}};
  CHECK(retry_after(r) == std::chrono::milliseconds(0));
  r.headers = {{"Retry-After", "soon"}};
  CHECK_FALSE(retry_after(r).has_value());
}

TEST_CASE("error messages come from {\"error\": ...} bodies, or the body itself") {
  CHECK(error_message(R"({"error":"bad source token"})") == "bad source token");
  CHECK(error_message("plain text") == "plain text");
  CHECK(error_message("") == "(no message)");
}

TEST_CASE("a lease request names the transport unless it is the default tcp, and the answer's is parsed") {
  auto n = nlohmann::json::parse(new_lease_body("sim", 1, 10, "ucx"));
  CHECK(n["transport"] == "ucx");
  auto r = nlohmann::json::parse(retry_lease_body("sim", 7, 1, issued_ids{}, "auto"));
  CHECK(r["transport"] == "auto");
  CHECK_FALSE(nlohmann::json::parse(new_lease_body("sim", 1, 10)).contains("transport"));
  auto j = good_answer();
  CHECK(parse_lease(j.dump())->via == hio::transport::tcp);  // no field: TCP
  j["transport"] = "ucx";
  CHECK(parse_lease(j.dump())->via == hio::transport::ucx);
  j["transport"] = "carrier-pigeon";
  CHECK_FALSE(parse_lease(j.dump()).has_value());
}
