#include "history.hpp"

#include <doctest/doctest.h>

using namespace hio::master;
using namespace std::chrono_literals;

namespace {
history_sample at(std::int64_t ms, std::uint64_t processed = 0, std::uint64_t bytes = 0, std::uint64_t leased = 0) {
  history_sample s;
  s.at_ms = ms;
  s.processed = processed;
  s.bytes = bytes;
  s.tuples_leased = leased;
  return s;
}
}  // namespace

TEST_CASE("the history keeps at most max_samples, dropping the oldest") {
  history h({1000ms, 5, 3});
  for (int i = 0; i < 12; ++i) CHECK(h.add(at(1'000'000 + i * 1000)));
  CHECK(h.size() == 5);
  const auto j = h.to_json(0);
  REQUIRE(j["samples"].size() == 5);
  CHECK(j["samples"][0]["at_ms"] == 1'007'000);
  CHECK(j["samples"][4]["at_ms"] == 1'011'000);
  CHECK(j["max_samples"] == 5);
  for (int i = 0; i < 7; ++i) h.add_event({1'000'000 + i, 3, "scale_out", 1, "queue grows", "started 1"});
  CHECK(h.events() == 3);
}

TEST_CASE("the default bound is an hour of one sample per second") {
  history h;
  for (int i = 0; i < 4000; ++i) h.add(at(i * 1000LL));
  CHECK(h.size() == history::default_max_samples);
  CHECK(history::default_max_samples == 3600);
}

TEST_CASE("samples closer than the interval to the previous one are skipped") {
  history h({1000ms, 100, 10});
  CHECK(h.add(at(10'000)));
  CHECK_FALSE(h.add(at(10'250)));
  CHECK_FALSE(h.add(at(10'999)));
  CHECK(h.add(at(11'000)));
  CHECK(h.size() == 2);
}

TEST_CASE("since returns only samples and decisions strictly after the given time") {
  history h({1000ms, 100, 10});
  for (int i = 0; i < 10; ++i) h.add(at(50'000 + i * 1000, i * 10));
  h.add_event({52'500, 3, "scale_out", 2, "queue of 40 drains in 9 s > 2 s", "started 2"});
  h.add_event({57'500, 1, "scale_in", 1, "4 channels idle for 30 s", "draining auto-1"});
  auto j = h.to_json(55'000);
  REQUIRE(j["samples"].size() == 4);
  CHECK(j["samples"][0]["at_ms"] == 56'000);
  REQUIRE(j["decisions"].size() == 1);
  CHECK(j["decisions"][0]["reason"] == "4 channels idle for 30 s");
  CHECK(j["decisions"][0]["action"] == "scale_in");
  CHECK(h.to_json(59'000)["samples"].empty());
  CHECK(h.to_json(0)["samples"].size() == 10);
  CHECK(h.to_json(0)["decisions"].size() == 2);
}

TEST_CASE("rates are computed from the counters of consecutive samples") {
  history h({1000ms, 100, 10});
  h.add(at(0 + 1000, 100, 1'000'000, 150));
  h.add(at(2000, 150, 3'000'000, 250));   // 1 s later: 50 tuples/s, 2 MB/s, 100 leased/s
  h.add(at(4000, 250, 3'000'000, 250));   // 2 s later: 50 tuples/s, no bytes, none leased
  auto s = h.to_json(0)["samples"];
  REQUIRE(s.size() == 3);
  CHECK(s[0]["tuples_per_s"] == 0.0);  // nothing before the oldest sample
  CHECK(s[1]["tuples_per_s"].get<double>() == doctest::Approx(50));
  CHECK(s[1]["bytes_per_s"].get<double>() == doctest::Approx(2e6));
  CHECK(s[1]["leased_per_s"].get<double>() == doctest::Approx(100));
  CHECK(s[1]["tuples_in_per_s"].get<double>() == doctest::Approx(50));  // no queue: arrivals = processed
  CHECK(s[2]["tuples_per_s"].get<double>() == doctest::Approx(50));
  CHECK(s[2]["bytes_per_s"].get<double>() == 0.0);
  // A read that starts after the first sample still gets rates against the sample before it.
  auto later = h.to_json(2000)["samples"];
  REQUIRE(later.size() == 1);
  CHECK(later[0]["tuples_per_s"].get<double>() == doctest::Approx(50));
}

TEST_CASE("a counter that drops (a worker removed with its counts) gives a rate of zero") {
  history h({1000ms, 100, 10});
  h.add(at(1000, 500, 5000));
  h.add(at(2000, 200, 2000));
  auto s = h.to_json(0)["samples"];
  CHECK(s[1]["tuples_per_s"] == 0.0);
  CHECK(s[1]["bytes_per_s"] == 0.0);
}

TEST_CASE("per-worker occupancy is reported by worker id") {
  history h;
  auto s = at(1000);
  s.occupancy = {{"w1", 1, 2}, {"w2", 2, 2}};
  h.add(s);
  auto o = h.to_json(0)["samples"][0]["occupancy"];
  CHECK(o["w1"] == nlohmann::json::array({1, 2}));
  CHECK(o["w2"] == nlohmann::json::array({2, 2}));
}

TEST_CASE("a tail serializes exactly as the whole history does for the same since") {
  history h({1000ms, 100, 10});
  for (int i = 0; i < 20; ++i) h.add(at(1000 + i * 1000, i * i, i * 1000, i * 3));
  h.add_event({4500, 3, "scale_out", 1, "queue grows", "started 1"});
  h.add_event({15500, 1, "scale_in", 1, "idle", "draining w3"});
  for (std::int64_t since : {0, 1000, 4700, 15000, 20000, 30000}) {
    const auto part = h.tail(since);
    CHECK(part.size() <= h.size());
    CHECK(part.to_json(since) == h.to_json(since));
  }
  CHECK(h.tail(15000).size() == 6);  // 15000 itself (for the rates) and the five after it
}

TEST_CASE("arrivals count tuples that went to the queue as well as those processed") {
  history h({1000ms, 100, 10});
  auto a = at(1000, 100);
  auto b = at(2000, 110);
  b.queue_length = 30;  // 10 processed and 30 queued in this second: 40 arrived
  auto c = at(3000, 150);
  c.queue_length = 0;   // the queue drained into channels: nothing new arrived
  h.add(a);
  h.add(b);
  h.add(c);
  auto s = h.to_json(0)["samples"];
  CHECK(s[1]["tuples_in_per_s"].get<double>() == doctest::Approx(40));
  CHECK(s[1]["tuples_per_s"].get<double>() == doctest::Approx(10));
  CHECK(s[2]["tuples_in_per_s"].get<double>() == doctest::Approx(10));
  CHECK(s[2]["tuples_per_s"].get<double>() == doctest::Approx(40));
}
