#include <hio/master/autoscaler.hpp>

#include <doctest/doctest.h>

#include <random>

using namespace hio::master;
using namespace std::chrono_literals;
using steady = std::chrono::steady_clock;

namespace {
const auto t0 = steady::time_point{} + 1000s;

load_sample sample(std::chrono::milliseconds at, std::size_t workers, std::size_t free, std::uint64_t queue,
                   std::uint64_t processed, std::size_t per_worker = 2) {
  load_sample s;
  s.at = t0 + at;
  s.workers = workers;
  s.channels = workers * per_worker;
  s.free_channels = free;
  s.queue_length = queue;
  s.processed = processed;
  return s;
}

autoscaler::options opts() {
  autoscaler::options o;
  o.min_workers = 1;
  o.max_workers = 10;
  o.channels_per_worker = 2;
  o.target_delay = 10s;
  o.scale_out_cooldown = 5s;
  o.scale_in_cooldown = 15s;
  o.max_step = 4;
  return o;
}
}  // namespace

TEST_CASE("a queue the channels cannot drain within the target delay scales out by what the backlog needs") {
  autoscaler a(opts());
  // 1 worker, 2 busy channels draining 10 tuples/s (5 per channel); 400 queued.
  auto first = a.decide(sample(0s, 1, 0, 300, 0));
  CHECK(first.action == scale_action::hold);  // no drain rate yet
  auto d = a.decide(sample(1s, 1, 0, 400, 10));
  CHECK(d.phase == 3);
  REQUIRE(d.action == scale_action::scale_out);
  // needed = (10 + 400/10) / 5 = 10 channels; missing 8 → 4 workers (also max_step)
  CHECK(d.workers == 4);
  CHECK(d.reason.find("phase 3") == 0);
}

TEST_CASE("after a scale-out the autoscaler waits for the cool-down before adding more") {
  autoscaler a(opts());
  a.decide(sample(0s, 1, 0, 100, 0));
  auto first = a.decide(sample(1s, 1, 0, 200, 1));
  REQUIRE(first.action == scale_action::scale_out);
  auto second = a.decide(sample(2s, 1, 0, 300, 2));
  CHECK(second.phase == 3);
  CHECK(second.action == scale_action::hold);
  auto third = a.decide(sample(7s, 1, 0, 400, 3));
  CHECK(third.action == scale_action::scale_out);
}

TEST_CASE("scale-out never passes max_workers") {
  auto o = opts();
  o.max_workers = 3;
  autoscaler a(o);
  a.decide(sample(0s, 2, 0, 1000, 0));
  auto d = a.decide(sample(1s, 2, 0, 5000, 1));
  REQUIRE(d.action == scale_action::scale_out);
  CHECK(d.workers == 1);
  auto e = a.decide(sample(10s, 3, 0, 9000, 2));
  CHECK(e.action == scale_action::hold);
  CHECK(e.reason.find("max_workers") != std::string::npos);
}

TEST_CASE("a whole worker's channels idle for the cool-down scale in one worker, never below min_workers") {
  autoscaler a(opts());
  CHECK(a.decide(sample(0s, 3, 4, 0, 100)).action == scale_action::hold);
  CHECK(a.decide(sample(10s, 3, 4, 0, 200)).action == scale_action::hold);
  auto d = a.decide(sample(16s, 3, 4, 0, 300));
  CHECK(d.phase == 1);
  REQUIRE(d.action == scale_action::scale_in);
  CHECK(d.workers == 1);
  // The next one waits for another full cool-down of spare capacity.
  CHECK(a.decide(sample(20s, 2, 2, 0, 400)).action == scale_action::hold);
  CHECK(a.decide(sample(30s, 2, 2, 0, 500)).action == scale_action::hold);
  auto e = a.decide(sample(36s, 2, 2, 0, 600));
  CHECK(e.action == scale_action::scale_in);
  for (int i = 0; i < 20; ++i)  // at min_workers
    CHECK(a.decide(sample(std::chrono::seconds(60 + 20 * i), 1, 2, 0, 700)).action == scale_action::hold);
}

TEST_CASE("spare capacity that does not last the cool-down does not scale in") {
  autoscaler a(opts());
  a.decide(sample(0s, 2, 2, 0, 0));
  a.decide(sample(10s, 2, 2, 0, 10));
  a.decide(sample(12s, 2, 1, 0, 20));  // busy again
  CHECK(a.decide(sample(20s, 2, 2, 0, 30)).action == scale_action::hold);
  CHECK(a.decide(sample(30s, 2, 2, 0, 40)).action == scale_action::hold);
}

TEST_CASE("a noisy steady load the channels keep up with neither scales out nor in") {
  autoscaler a(opts());
  std::mt19937 rng(3);
  std::uint64_t processed = 0;
  int actions = 0;
  for (int i = 0; i < 600; ++i) {  // 10 minutes, one sample per second
    processed += 18 + rng() % 5;   // ~20 tuples/s through 4 channels of 2 workers
    const std::uint64_t queue = rng() % 4 == 0 ? rng() % 6 : 0;  // brief small queues
    const std::size_t free = queue ? 0 : rng() % 2;               // at most one channel idle
    actions += a.decide(sample(std::chrono::seconds(i), 2, free, queue, processed)).action != scale_action::hold;
  }
  CHECK(actions == 0);
}

TEST_CASE("an idle cluster scales to zero only when allowed, and scales out again when tuples arrive") {
  auto o = opts();
  o.scale_to_zero = true;
  autoscaler a(o);
  a.decide(sample(0s, 1, 2, 0, 50));
  a.decide(sample(10s, 1, 2, 0, 50));
  auto d = a.decide(sample(16s, 1, 2, 0, 50));
  REQUIRE(d.action == scale_action::scale_in);
  auto e = a.decide(sample(20s, 0, 0, 5, 50));
  CHECK(e.phase == 3);
  CHECK(e.action == scale_action::scale_out);

  autoscaler b(opts());  // without scale_to_zero, min_workers = 1 holds
  b.decide(sample(0s, 1, 2, 0, 50));
  b.decide(sample(10s, 1, 2, 0, 50));
  CHECK(b.decide(sample(30s, 1, 2, 0, 50)).action == scale_action::hold);
}

TEST_CASE("fewer workers than min_workers are topped up") {
  autoscaler a(opts());
  auto d = a.decide(sample(0s, 0, 0, 0, 0));
  CHECK(d.action == scale_action::scale_out);
  CHECK(d.workers == 1);
}

TEST_CASE("no scale-in right after a scale-out") {
  autoscaler a(opts());
  a.decide(sample(0s, 1, 0, 100, 0));
  REQUIRE(a.decide(sample(1s, 1, 0, 300, 1)).action == scale_action::scale_out);
  // The new workers took the backlog at once; capacity is spare now, but the scale-in cool-down holds.
  CHECK(a.decide(sample(3s, 3, 5, 0, 400)).action == scale_action::hold);
  CHECK(a.decide(sample(12s, 3, 5, 0, 500)).action == scale_action::hold);
}

TEST_CASE("every channel saturated for the growth window scales out by one, without any queue") {
  autoscaler a(opts());
  scale_decision d;
  std::uint64_t processed = 0;
  for (int i = 0; i <= 5; ++i) {
    auto s = sample(i * 500ms, 1, 0, 0, processed += 50);
    s.saturated_channels = i == 2 ? 1 : 2;  // one channel caught up for a moment: the window restarts
    d = a.decide(s);
    CHECK(d.action == scale_action::hold);
  }
  for (int i = 6; i <= 11 && d.action == scale_action::hold; ++i) {
    auto s = sample(i * 500ms, 1, 0, 0, processed += 50);
    s.saturated_channels = 2;
    d = a.decide(s);
  }
  CHECK(d.action == scale_action::scale_out);
  CHECK(d.workers == 1);
  CHECK(d.phase == 3);
  CHECK(d.reason.find("saturated") != std::string::npos);
}
