#include <hio/worker/topology.hpp>

#include <doctest/doctest.h>

#include <sched.h>

#include <thread>

using namespace hio::worker;

TEST_CASE("hwloc finds at least one core on this machine") {
  auto t = topology::load();
  REQUIRE(t.has_value());
  CHECK((*t)->cores() >= 1);
}

TEST_CASE("a thread bound to a core runs only on that core's processing units") {
  auto t = topology::load();
  REQUIRE(t.has_value());
  const auto& topo = **t;
  std::thread th([&] {
    cpu_set_t before;
    CPU_ZERO(&before);
    REQUIRE(sched_getaffinity(0, sizeof before, &before) == 0);
    auto bound = topo.bind_current_thread(topo.cores() + 0);  // wraps around to core 0
    REQUIRE_MESSAGE(bound.has_value(), (bound ? "" : bound.error().message));
    cpu_set_t after;
    CPU_ZERO(&after);
    REQUIRE(sched_getaffinity(0, sizeof after, &after) == 0);
    CHECK(CPU_COUNT(&after) >= 1);
    CHECK(CPU_COUNT(&after) <= CPU_COUNT(&before));
    if (topo.cores() > 1) CHECK(CPU_COUNT(&after) < CPU_COUNT(&before));
  });
  th.join();
}
