#include <hio/common/process.hpp>

#include <doctest/doctest.h>

#include <chrono>
#include <string>

using namespace hio;
using namespace std::chrono_literals;

TEST_CASE("run_command passes each argument whole, feeds stdin and captures stdout, stderr and status") {
  const std::string hostile = "it's; touch /nonexistent/x $(id) `id` \"q\"\n|&";
  auto r = run_command({"/bin/sh", "-c", "printf '%s' \"$1\"; cat; echo oops >&2; exit 3", "sh", hostile},
                       "from stdin", {}, 10s);
  REQUIRE(r.has_value());
  CHECK(r->out == hostile + "from stdin");
  CHECK(r->err == "oops\n");
  CHECK(r->status == 3);
}

TEST_CASE("run_command adds and replaces environment variables and finds argv[0] on PATH") {
  auto r = run_command({"sh", "-c", "printf '%s|%s' \"$HIO_RUN_TEST\" \"$HOME\""}, "",
                       {"HIO_RUN_TEST=a b'c", "HOME=/elsewhere"}, 10s);
  REQUIRE(r.has_value());
  CHECK(r->out == "a b'c|/elsewhere");
  CHECK(r->status == 0);
}

TEST_CASE("run_command kills a command that outlives its timeout and says so") {
  const auto start = std::chrono::steady_clock::now();
  auto r = run_command({"/bin/sleep", "30"}, "", {}, 300ms);
  REQUIRE(r.has_value());
  CHECK(r->status == -1);
  CHECK(r->err.find("no answer within 300 ms") != std::string::npos);
  CHECK(std::chrono::steady_clock::now() - start < 10s);
}

TEST_CASE("run_command reports a program that cannot be started") {
  auto r = run_command({"/nonexistent/hio-no-such-program"}, "", {}, 10s);
  REQUIRE_FALSE(r.has_value());
  CHECK(r.error().message.find("cannot run /nonexistent/hio-no-such-program") != std::string::npos);
}

TEST_CASE("run_command keeps at most max_command_output of each stream and still lets the command finish") {
  auto r = run_command({"/bin/sh", "-c", "head -c 3000000 /dev/zero; head -c 2000000 /dev/zero >&2; echo done >&2"},
                       "", {}, 30s);
  REQUIRE(r.has_value());
  CHECK(r->status == 0);
  CHECK(r->out.size() == max_command_output);
  CHECK(r->err.size() == max_command_output);
}
