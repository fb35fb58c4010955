#include "history.hpp"

#include <algorithm>

namespace hio::master {

using json = nlohmann::json;

bool history::add(history_sample s) {
  if (!samples_.empty() && s.at_ms >= samples_.back().at_ms && s.at_ms - samples_.back().at_ms < opt_.interval.count())
    return false;
  samples_.push_back(std::move(s));
  while (samples_.size() > std::max<std::size_t>(1, opt_.max_samples)) samples_.pop_front();
  return true;
}

void history::add_event(scaling_event e) {
  events_.push_back(std::move(e));
  while (events_.size() > std::max<std::size_t>(1, opt_.max_events)) events_.pop_front();
}

namespace {

double rate(std::uint64_t now, std::uint64_t before, double seconds) {
  if (seconds <= 0 || now < before) return 0;
  return static_cast<double>(now - before) / seconds;
}

}  // namespace

history history::tail(std::int64_t since_ms) const {
  history out(opt_);
  auto it = std::upper_bound(samples_.begin(), samples_.end(), since_ms,
                             [](std::int64_t t, const history_sample& s) { return t < s.at_ms; });
  if (it != samples_.begin()) --it;  // the sample the first rate is computed against
  out.samples_.assign(it, samples_.end());
  for (const auto& e : events_)
    if (e.at_ms > since_ms) out.events_.push_back(e);
  return out;
}

json history::to_json(std::int64_t since_ms) const {
  json samples = json::array();
  // Samples are in time order: start at the first one after since_ms.
  auto it = std::upper_bound(samples_.begin(), samples_.end(), since_ms,
                             [](std::int64_t t, const history_sample& s) { return t < s.at_ms; });
  for (; it != samples_.end(); ++it) {
    const auto& s = *it;
    double in = 0, leased = 0, tps = 0, bps = 0, fps = 0;
    if (it != samples_.begin()) {
      const auto& p = *std::prev(it);
      const double dt = static_cast<double>(s.at_ms - p.at_ms) / 1000.0;
      // A tuple adds one to processed + queue_length when it arrives: at a channel it is processed, in
      // the queue it waits (and moves from one term to the other when a channel takes it).
      in = rate(s.processed + s.queue_length, p.processed + p.queue_length, dt);
      leased = rate(s.tuples_leased, p.tuples_leased, dt);
      tps = rate(s.processed, p.processed, dt);
      bps = rate(s.bytes, p.bytes, dt);
      fps = rate(s.failed, p.failed, dt);
    }
    json occ = json::object();
    for (const auto& w : s.occupancy) occ[w.id] = {w.busy, w.total};
    samples.push_back({{"at_ms", s.at_ms},
                       {"workers", s.workers},
                       {"channels_total", s.channels_total},
                       {"channels_free", s.channels_free},
                       {"queue_length", s.queue_length},
                       {"queue_bytes", s.queue_bytes},
                       {"tuples_leased", s.tuples_leased},
                       {"processed", s.processed},
                       {"failed", s.failed},
                       {"bytes", s.bytes},
                       {"tuples_in_per_s", in},
                       {"leased_per_s", leased},
                       {"tuples_per_s", tps},
                       {"bytes_per_s", bps},
                       {"failed_per_s", fps},
                       {"phase", s.phase},
                       {"occupancy", std::move(occ)}});
  }
  json decisions = json::array();
  for (const auto& e : events_) {
    if (e.at_ms <= since_ms) continue;
    decisions.push_back({{"at_ms", e.at_ms}, {"phase", e.phase}, {"action", e.action}, {"workers", e.workers},
                         {"reason", e.reason}, {"result", e.result}});
  }
  return {{"interval_ms", opt_.interval.count()},
          {"max_samples", opt_.max_samples},
          {"samples", std::move(samples)},
          {"decisions", std::move(decisions)}};
}

}  // namespace hio::master
