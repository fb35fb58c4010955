#include <hio/common/http.hpp>

#include <boost/asio/io_context.hpp>
#include <doctest/doctest.h>

#include <string>
#include <thread>

using namespace hio;

TEST_CASE("each endpoint's body limit holds before its body is read; a refused request gets 413") {
  boost::asio::io_context io;
  http::server_options o;
  o.max_body_bytes = 1 << 20;
  o.body_limit = [](std::string_view method, std::string_view path) -> std::uint64_t {
    return method == "POST" && path == "/small" ? 1024 : UINT64_MAX;  // capped by max_body_bytes
  };
  auto srv = http::server::start(io, o, [](const http::request& r) {
    return http::json_response("{\"got\":" + std::to_string(r.body.size()) + "}");
  });
  REQUIRE(srv.has_value());
  std::thread runner([&] { io.run(); });
  const std::string base = "http://127.0.0.1:" + std::to_string((*srv)->port());
  {
    http::client c(base);
    auto ok = c.post("/small?x=1", std::string(1024, 'a'));
    REQUIRE(ok.has_value());
    CHECK(ok->status == 200);
    CHECK(ok->body.find("{\"got\":1024}") == 0);
  }
  {
    http::client c(base);
    auto big = c.post("/small?x=1", std::string(20000, 'a'));
    REQUIRE(big.has_value());
    CHECK(big->status == 413);
  }
  {
    http::client c(base);
    auto other = c.post("/large", std::string(500000, 'b'));  // another path: the server-wide limit
    REQUIRE(other.has_value());
    CHECK(other->status == 200);
    auto over = c.post("/large", std::string((1 << 20) + 1, 'b'));
    REQUIRE(over.has_value());
    CHECK(over->status == 413);
  }
  (*srv)->stop();
  io.stop();
  runner.join();
}

TEST_CASE("parse_url reads the host and port of the URLs hio is given, and says what is wrong with others") {
  using hio::http::parse_url;
  const auto host_port = [](std::string_view url) {
    auto p = parse_url(url);
    REQUIRE_MESSAGE(p.has_value(), p.error().message);
    return p->host + " " + std::to_string(p->port);
  };
  CHECK(host_port("http://127.0.0.1:8080") == "127.0.0.1 8080");
  CHECK(host_port("http://master.cluster:8080/v1/streams?x=1#f") == "master.cluster 8080");
  CHECK(host_port("HTTP://node-7:1") == "node-7 1");
  CHECK(host_port("localhost:8081") == "localhost 8081");  // no scheme: http
  CHECK(host_port("http://[::1]:65535/") == "::1 65535");
  for (const auto& [url, why] : std::vector<std::pair<std::string, std::string>>{
           {"https://h:443", "is not http://"},
           {"ftp://h:21", "is not http://"},
           {"http://user:pw@h:80", "user name or password"},
           {"http://h", "has no port"},
           {"http://h:", "has no port"},
           {"http://h:0", "invalid port"},
           {"http://h:65536", "invalid port"},
           {"http://h:80x", "is not a URL"},
           {"http://:80", "has no host"},
           {"http://[::1:80", "is not a URL"},
           {"", "has no host"}}) {
    CAPTURE(url);
    auto p = parse_url(url);
    REQUIRE_FALSE(p.has_value());
    CHECK(p.error().message.find(why) != std::string::npos);
    CHECK(p.error().message.find("'" + url + "'") != std::string::npos);
  }
}
