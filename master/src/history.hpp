#pragma once
// The master's recent past for the dashboard: a bounded ring of samples (one per `interval`, the last
// `max_samples` of them: an hour at one per second) and of the autoscaler's decisions. Counters are stored
// as sampled; rates are computed between consecutive samples when the history is read. Pure: the caller
// supplies the time and the numbers. Not thread-safe: the master calls it under its mutex.

#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdint>
#include <deque>
#include <string>
#include <vector>

namespace hio::master {

struct worker_occupancy {
  std::string id;
  std::uint32_t busy = 0;   // channels leased or busy
  std::uint32_t total = 0;  // channels the worker has
};

struct history_sample {
  std::int64_t at_ms = 0;  // unix ms
  std::uint32_t workers = 0;
  std::uint32_t channels_total = 0, channels_free = 0;
  std::uint64_t queue_length = 0, queue_bytes = 0;
  // Counters since the master started (they may drop when a worker and its counts are removed).
  std::uint64_t tuples_leased = 0;  // tuple ids handed out in leases (sources reserve ids in blocks)
  std::uint64_t processed = 0, failed = 0, bytes = 0;
  std::vector<worker_occupancy> occupancy;
  int phase = 0;  // the autoscaler's phase (1, 2, 3), 0 without autoscaling
};

struct scaling_event {
  std::int64_t at_ms = 0;
  int phase = 0;
  std::string action;  // "scale_out" or "scale_in"
  std::uint32_t workers = 0;
  std::string reason, result;
};

class history {
 public:
  static constexpr std::size_t default_max_samples = 3600;  // an hour at one sample per second
  static constexpr std::size_t default_max_events = 500;

  struct options {
    std::chrono::milliseconds interval{1000};  // samples closer than this to the previous one are skipped
    std::size_t max_samples = default_max_samples;
    std::size_t max_events = default_max_events;
  };

  explicit history(options o) : opt_(o) {}
  history() : history(options{}) {}

  // Keeps `s` unless it comes less than `interval` after the previous sample; drops the oldest past
  // `max_samples`. Returns whether it was kept.
  bool add(history_sample s);
  void add_event(scaling_event e);

  // Samples and events strictly after `since_ms`, oldest first, as the JSON of GET /v1/history. Each
  // sample carries the rates since the sample before it (also when that one is older than `since_ms`);
  // the oldest sample kept has none (zeros). A counter that dropped gives a rate of 0, not a negative one.
  // tuples_in_per_s counts arrivals: the rate of processed + queue_length.
  nlohmann::json to_json(std::int64_t since_ms) const;

  // A copy holding only what to_json(since_ms) needs (the samples after since_ms, the one before them, the
  // events after since_ms): cheap to take under a lock, to serialize after releasing it.
  history tail(std::int64_t since_ms) const;

  std::size_t size() const noexcept { return samples_.size(); }
  std::int64_t last_at_ms() const noexcept { return samples_.empty() ? 0 : samples_.back().at_ms; }
  std::size_t events() const noexcept { return events_.size(); }
  const options& config() const noexcept { return opt_; }

 private:
  options opt_;
  std::deque<history_sample> samples_;
  std::deque<scaling_event> events_;
};

}  // namespace hio::master
