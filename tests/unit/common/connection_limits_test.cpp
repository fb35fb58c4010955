#include <hio/common/connection_limits.hpp>

#include <doctest/doctest.h>

#include <string>

using namespace hio;
using verdict = connection_limits::verdict;

TEST_CASE("a peer gets at most per_peer connections, and its slots come back as they close") {
  connection_limits l({.per_peer = 3, .total = 100});
  for (int i = 0; i < 3; ++i) CHECK(l.admit("10.0.0.1") == verdict::admitted);
  CHECK(l.admit("10.0.0.1") == verdict::peer_full);
  CHECK(l.admit("10.0.0.2") == verdict::admitted);  // other peers are not held back by it
  CHECK(l.open_from("10.0.0.1") == 3);
  CHECK(l.open() == 4);
  CHECK(l.refused() == 1);
  l.release("10.0.0.1");
  CHECK(l.admit("10.0.0.1") == verdict::admitted);
  CHECK(l.admit("10.0.0.1") == verdict::peer_full);
  CHECK(l.refused() == 2);
}

TEST_CASE("the port holds at most total connections, whoever they come from") {
  connection_limits l({.per_peer = 10, .total = 4});
  for (int i = 0; i < 4; ++i) CHECK(l.admit("10.0.0." + std::to_string(i)) == verdict::admitted);
  CHECK(l.admit("10.0.0.9") == verdict::port_full);
  l.release("10.0.0.2");
  CHECK(l.open_from("10.0.0.2") == 0);
  CHECK(l.admit("10.0.0.9") == verdict::admitted);
  CHECK(l.open() == 4);
  CHECK(l.refused() == 1);
}

TEST_CASE("a limit of 0 is no limit") {
  connection_limits l({.per_peer = 0, .total = 0});
  for (int i = 0; i < 5000; ++i) REQUIRE(l.admit("::1") == verdict::admitted);
  CHECK(l.open_from("::1") == 5000);
  CHECK(l.refused() == 0);
}

TEST_CASE("the defaults leave room for 16 sources of one host with several connections each") {
  connection_limits l;
  CHECK(l.options().per_peer >= 16 * 8);
  CHECK(l.options().total >= l.options().per_peer * 4);
}
