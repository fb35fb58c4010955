#include <hio/common/log.hpp>

#include <doctest/doctest.h>

#include <chrono>
#include <string>

using namespace hio;
using namespace std::chrono_literals;

TEST_CASE("text from a client is logged on one line, without control bytes, and cut") {
  CHECK(log_escape("plain text: {\"a\": 1}") == "plain text: {\"a\": 1}");
  CHECK(log_escape("two\nlines\r\n") == "two\\x0alines\\x0d\\x0a");
  CHECK(log_escape("\x1b[31mred") == "\\x1b[31mred");  // no terminal escape sequence gets through
  CHECK(log_escape(std::string("a\0b", 3)) == "a\\x00b");
  CHECK(log_escape("back\\slash") == "back\\\\slash");  // so \x0a in the text cannot pass for an escape
  CHECK(log_escape("\xc3\xa9t\xc3\xa9") == "\\xc3\\xa9t\\xc3\\xa9");
  CHECK(log_escape(std::string(300, 'x'), 10) == "xxxxxxxxxx...(290 more bytes)");
  CHECK(log_escape(std::string(10, 'x'), 10) == "xxxxxxxxxx");
  const auto long_line = log_escape(std::string(1 << 20, '\n'));
  CHECK(long_line.size() < 2000);
  CHECK(long_line.find('\n') == std::string::npos);
}

TEST_CASE("a call site logs at most per_second lines a second and then says how many it dropped") {
  log_limiter limit(3);
  const auto t0 = std::chrono::steady_clock::time_point{} + 100s;
  std::uint64_t suppressed = 99;
  for (int i = 0; i < 3; ++i) {
    CHECK(limit.allow(t0 + i * 1ms, suppressed));
    CHECK(suppressed == 0);
  }
  for (int i = 0; i < 1000; ++i) CHECK_FALSE(limit.allow(t0 + 500ms, suppressed));
  CHECK(limit.allow(t0 + 1s, suppressed));
  CHECK(suppressed == 1000);
  CHECK(limit.allow(t0 + 1001ms, suppressed));
  CHECK(suppressed == 0);
  CHECK(limit.allow(t0 + 1002ms, suppressed));
  CHECK_FALSE(limit.allow(t0 + 1003ms, suppressed));
  CHECK(limit.allow(t0 + 5s, suppressed));
  CHECK(suppressed == 1);
}
