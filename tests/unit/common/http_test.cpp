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
