#include <hio/common/wire.hpp>
#include <hio/worker/record_sink.hpp>

#include "fake_http.hpp"

#include <doctest/doctest.h>

#include <atomic>
#include <chrono>

using namespace hio;
using namespace hio::worker;
using hio::worker::test::fake_http;

namespace {

std::vector<feature_record> two_records() {
  feature_record a;
  a.tuple_id = 1;
  a.source = "s";
  a.features = {{"mean", 1.5}};
  feature_record b;
  b.tuple_id = 2;
  b.status = record_status::failed;
  b.error = "bad";
  return {a, b};
}

}  // namespace

TEST_CASE("the repository sink posts the batch as octet-stream with the secret as bearer") {
  fake_http repo([](const http::request&) { return http::json_response(R"({"stored":2,"duplicates":0})"); });
  REQUIRE(repo.ok());
  auto sink = make_repository_sink({.url = repo.url() + "/", .secret = "s3cret"});
  REQUIRE(sink->store(two_records()).has_value());
  const auto posts = repo.requests("POST", "/v1/records");
  REQUIRE(posts.size() == 1);
  CHECK(posts[0].bearer() == "s3cret");
  CHECK(posts[0].header("content-type") == "application/octet-stream");
  auto decoded = decode_records(posts[0].body);
  REQUIRE(decoded.has_value());
  CHECK(*decoded == two_records());
}

TEST_CASE("the repository sink retries a failing repository until it stores the batch") {
  std::atomic<int> calls{0};
  fake_http repo([&](const http::request&) {
    if (++calls < 3) return http::error_response(503, "starting");
    return http::json_response(R"({"stored":2,"duplicates":0})");
  });
  REQUIRE(repo.ok());
  auto sink = make_repository_sink({.url = repo.url(), .secret = "s", .first_backoff = std::chrono::milliseconds(5)});
  REQUIRE(sink->store(two_records()).has_value());
  CHECK(calls.load() == 3);
}

TEST_CASE("the repository sink gives up with internal once its retry budget is spent") {
  std::string url;
  {
    fake_http gone;  // a port that was free a moment ago and is closed now
    REQUIRE(gone.ok());
    url = gone.url();
  }
  auto sink = make_repository_sink({.url = url, .secret = "s", .retry_budget = std::chrono::milliseconds(300),
                                    .first_backoff = std::chrono::milliseconds(10)});
  const auto t0 = std::chrono::steady_clock::now();
  auto r = sink->store(two_records());
  const auto spent = std::chrono::steady_clock::now() - t0;
  REQUIRE_FALSE(r.has_value());
  CHECK(r.error().code == static_cast<int>(wire::error_code::internal));
  CHECK(spent >= std::chrono::milliseconds(150));
  CHECK(spent < std::chrono::seconds(5));
}

TEST_CASE("the repository sink does not retry an answer that retrying cannot change") {
  std::atomic<int> calls{0};
  fake_http repo([&](const http::request&) {
    ++calls;
    return http::error_response(401, "wrong secret");
  });
  REQUIRE(repo.ok());
  auto sink = make_repository_sink({.url = repo.url(), .secret = "s"});
  auto r = sink->store(two_records());
  REQUIRE_FALSE(r.has_value());
  CHECK(r.error().message.find("401") != std::string::npos);
  CHECK(calls.load() == 1);
}

TEST_CASE("a cancelled repository sink stops retrying at once") {
  fake_http repo([](const http::request&) { return http::error_response(503, "down"); });
  REQUIRE(repo.ok());
  auto sink = make_repository_sink({.url = repo.url(), .secret = "s"});
  sink->cancel();
  const auto t0 = std::chrono::steady_clock::now();
  CHECK_FALSE(sink->store(two_records()).has_value());
  CHECK(std::chrono::steady_clock::now() - t0 < std::chrono::seconds(2));
}
