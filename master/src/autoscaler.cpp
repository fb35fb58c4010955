#include <hio/master/autoscaler.hpp>

#include <algorithm>
#include <cmath>

namespace hio::master {

std::string_view to_string(scale_action a) noexcept {
  switch (a) {
    case scale_action::hold: return "hold";
    case scale_action::scale_out: return "scale_out";
    case scale_action::scale_in: return "scale_in";
  }
  return "unknown";
}

double autoscaler::drain_rate() const {
  if (window_.size() < 2) return 0;
  const auto& a = window_.front();
  const auto& b = window_.back();
  const double dt = std::chrono::duration<double>(b.at - a.at).count();
  return dt > 0 ? static_cast<double>(b.processed - a.processed) / dt : 0;
}

scale_decision autoscaler::decide(const load_sample& s) {
  window_.push_back(s);
  while (window_.size() > std::max<std::size_t>(options_.growth_samples + 1, 2) &&
         s.at - window_.front().at > options_.target_delay)
    window_.pop_front();

  const int workers = static_cast<int>(s.workers + s.pending_workers);
  const double rate = drain_rate();
  const double busy = static_cast<double>(s.channels - std::min(s.channels, s.free_channels));
  const double per_channel = busy > 0 ? rate / busy : 0;
  const double delay_s = std::chrono::duration<double>(options_.target_delay).count();

  bool growing = window_.size() > options_.growth_samples;
  for (std::size_t i = window_.size() - std::min(window_.size(), options_.growth_samples + 1); growing && i + 1 < window_.size(); ++i)
    growing = window_[i + 1].queue_length > window_[i].queue_length;
  // A drain rate needs two samples; until then only "no channels at all" is judged.
  const bool known = window_.size() >= 2;
  const bool backlog = known && (rate <= 0 ? s.free_channels == 0
                                           : static_cast<double>(s.queue_length) > rate * delay_s);
  // Growth counts only once more tuples wait than there are channels: brief small queues are phase 2.
  growing = growing && s.queue_length > s.channels;
  bool saturated = s.channels > 0 && window_.size() > options_.growth_samples;
  for (std::size_t i = window_.size() - std::min(window_.size(), options_.growth_samples + 1); saturated && i < window_.size(); ++i)
    saturated = window_[i].channels > 0 && window_[i].saturated_channels >= window_[i].channels;

  scale_decision d;
  const bool queue_pressure = s.queue_length > 0 && (backlog || growing || s.channels == 0);
  if (queue_pressure || saturated) {
    d.phase = 3;
    spare_ = false;
    const std::string load = queue_pressure ? std::to_string(s.queue_length) + " queued"
                                            : "every channel saturated for " + std::to_string(options_.growth_samples) +
                                                  " samples";
    if (workers >= options_.max_workers) {
      d.reason = "phase 3: " + load + ", but already at max_workers " + std::to_string(options_.max_workers);
      return d;
    }
    if (scaled_out_ && s.at - last_out_ < options_.scale_out_cooldown) {
      d.reason = "phase 3: " + load + "; waiting for the last scale-out to start";
      return d;
    }
    // Channels needed so that the queue drains within target_delay while new tuples keep arriving at
    // the current rate; without a rate estimate (or a queue), one step.
    int add = 1;
    if (queue_pressure && per_channel > 0) {
      const double needed = (rate + static_cast<double>(s.queue_length) / delay_s) / per_channel;
      const double missing = needed - static_cast<double>(s.channels);
      add = std::max(1, static_cast<int>(std::ceil(missing / options_.channels_per_worker)));
    }
    add = std::min({add, options_.max_step, options_.max_workers - workers});
    d.action = scale_action::scale_out;
    d.workers = add;
    d.reason = "phase 3: " + load + (queue_pressure && growing ? " and growing" : "") + ", draining " + std::to_string(static_cast<long>(rate)) + " tuples/s; adding " + std::to_string(add) +
               " worker" + (add > 1 ? "s" : "");
    last_out_ = s.at;
    scaled_out_ = true;
    return d;
  }

  const bool quiet = s.queue_length == 0 && s.free_channels == s.channels && rate == 0;
  const bool spare_now = s.queue_length == 0 && s.pending_workers == 0 &&
                         s.free_channels >= static_cast<std::size_t>(options_.channels_per_worker);
  if (spare_now) {
    if (!spare_) spare_since_ = s.at;
    spare_ = true;
  } else {
    spare_ = false;
  }
  const int floor = options_.scale_to_zero && quiet ? 0 : std::max(options_.min_workers, 0);
  if (spare_ && static_cast<int>(s.workers) > floor) {
    d.phase = 1;
    const bool after_out = scaled_out_ && s.at - last_out_ < options_.scale_in_cooldown;
    const bool after_in = scaled_in_ && s.at - last_in_ < options_.scale_in_cooldown;
    if (s.at - spare_since_ >= options_.scale_in_cooldown && !after_out && !after_in) {
      d.action = scale_action::scale_in;
      d.workers = 1;
      d.reason = "phase 1: " + std::to_string(s.free_channels) + " of " + std::to_string(s.channels) +
                 " channels idle for " +
                 std::to_string(std::chrono::duration_cast<std::chrono::seconds>(s.at - spare_since_).count()) +
                 " s; removing one worker";
      last_in_ = s.at;
      scaled_in_ = true;
      spare_ = false;
    } else {
      d.reason = "phase 1: " + std::to_string(s.free_channels) + " channels idle; cooling down before scaling in";
    }
    return d;
  }
  if (static_cast<int>(s.workers + s.pending_workers) < options_.min_workers) {
    d.phase = 1;
    d.action = scale_action::scale_out;
    d.workers = options_.min_workers - static_cast<int>(s.workers + s.pending_workers);
    d.reason = "below min_workers " + std::to_string(options_.min_workers);
    return d;
  }
  d.phase = s.queue_length == 0 && s.free_channels > 0 ? 1 : 2;
  d.reason = "phase " + std::to_string(d.phase) + ": " + std::to_string(s.queue_length) + " queued, " +
             std::to_string(s.free_channels) + " of " + std::to_string(s.channels) + " channels free; holding";
  return d;
}

}  // namespace hio::master
