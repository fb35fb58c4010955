#pragma once
// The autoscaler's decision: pure policy, no I/O and no clock of its own (callers pass `now`), so every
// rule is unit-tested. Not thread-safe: the master calls it from one thread.
//
// Phases, as in HarmonicIO's experiments:
//   phase 3: the queue is longer than the channels can drain within `target_delay`, or it keeps growing
//            while longer than the number of channels → scale out by as many workers as the backlog needs
//            (cool-down `scale_out_cooldown`); or every channel's processor has been saturated for
//            `growth_samples` samples (sources wait on the direct path, which the queue length does
//            not show) → scale out by one worker;
//   phase 1: no queue and at least a whole worker's channels idle for `scale_in_cooldown`
//            → scale in one worker (never below min_workers; to zero only with `scale_to_zero`);
//   phase 2: otherwise → hold.

#include <chrono>
#include <cstdint>
#include <deque>
#include <string>

namespace hio::master {

struct load_sample {
  std::chrono::steady_clock::time_point at;
  std::size_t workers = 0;         // registered and not draining
  std::size_t pending_workers = 0; // asked for, not registered yet
  std::size_t channels = 0;        // of the registered, non-draining workers
  std::size_t free_channels = 0;
  std::size_t saturated_channels = 0;  // whose processor is busy nearly all the time
  std::uint64_t queue_length = 0;  // tuples in the overflow queue
  std::uint64_t processed = 0;     // tuples processed so far (a counter)
};

enum class scale_action { hold, scale_out, scale_in };

struct scale_decision {
  int phase = 2;
  scale_action action = scale_action::hold;
  int workers = 0;       // how many to add or remove
  std::string reason;    // one line for logs, status and the dashboard
};

class autoscaler {
 public:
  struct options {
    int min_workers = 1;
    int max_workers = 8;
    bool scale_to_zero = false;                          // allow 0 workers after a quiet cool-down
    int channels_per_worker = 2;                         // what one new worker brings
    std::chrono::milliseconds target_delay{10000};       // a queued tuple should wait at most this
    std::chrono::milliseconds scale_out_cooldown{5000};  // between scale-outs (new workers start meanwhile)
    std::chrono::milliseconds scale_in_cooldown{15000};  // spare capacity must last this long
    int max_step = 4;                                    // most workers added at once
    std::size_t growth_samples = 5;                      // queue growing over this many samples = phase 3
  };

  explicit autoscaler(options o) : options_(o) {}

  scale_decision decide(const load_sample& s);
  const options& config() const noexcept { return options_; }

 private:
  double drain_rate() const;  // tuples/s processed over the window

  options options_;
  std::deque<load_sample> window_;
  std::chrono::steady_clock::time_point last_out_{};
  std::chrono::steady_clock::time_point last_in_{};
  std::chrono::steady_clock::time_point spare_since_{};
  bool spare_ = false;
  bool scaled_out_ = false;
  bool scaled_in_ = false;
};

std::string_view to_string(scale_action a) noexcept;

}  // namespace hio::master
