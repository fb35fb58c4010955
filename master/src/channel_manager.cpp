#include <hio/master/channel_manager.hpp>

namespace hio::master {

std::string_view to_string(channel_state s) noexcept {
  switch (s) {
    case channel_state::free: return "free";
    case channel_state::leased: return "leased";
    case channel_state::busy: return "busy";
  }
  return "unknown";
}

void channel_manager::register_worker(const std::string& id, const std::string& host,
                                      std::vector<channel_info> channels, clock_type::time_point now,
                                      const std::string& instance) {
  worker w;
  w.host = host;
  w.instance = instance;
  w.last_seen = now;
  for (auto& info : channels) w.channels.push_back(channel{std::move(info)});
  if (auto it = workers_.find(id); it != workers_.end()) {
    if (!instance.empty() && instance == it->second.instance) {
      for (std::size_t i = 0; i < w.channels.size() && i < it->second.channels.size(); ++i)
        w.channels[i].report = it->second.channels[i].report;
    } else {
      retire(it->second);
    }
    it->second = std::move(w);
  } else {
    workers_.emplace(id, std::move(w));
  }
}

bool channel_manager::heartbeat(const std::string& id, bool draining, const std::vector<channel_report>& reports,
                                clock_type::time_point now) {
  auto it = workers_.find(id);
  if (it == workers_.end()) return false;
  auto& w = it->second;
  w.last_seen = now;
  w.draining = w.draining || draining;
  for (const auto& r : reports) {
    if (r.index >= w.channels.size()) continue;
    auto& c = w.channels[r.index];
    if (r.lease_id < c.report.lease_id) continue;  // stale
    c.report = r;
    if (r.busy) {
      c.state = channel_state::busy;
    } else if (c.state == channel_state::busy) {
      c.state = channel_state::free;  // the session is over (its "free" message may have been lost)
    } else if (c.state == channel_state::leased &&
               (r.lease_id >= c.lease_id || r.refused_lease_id >= c.lease_id)) {
      c.state = channel_state::free;  // the lease's session came and went, or the channel refused it
    }
  }
  return true;
}

void channel_manager::release(const std::string& worker_id, std::uint32_t channel, std::uint64_t lease_id) {
  auto it = workers_.find(worker_id);
  if (it == workers_.end() || channel >= it->second.channels.size()) return;
  auto& c = it->second.channels[channel];
  if (lease_id >= c.lease_id) {
    c.state = channel_state::free;
    c.lease_id = lease_id;
  } else if (c.state == channel_state::busy && lease_id >= c.report.lease_id) {
    c.state = channel_state::free;  // the session the master learnt of from its worker is over
  }
}

void channel_manager::mark_busy(const std::string& worker_id, std::uint32_t channel) {
  auto it = workers_.find(worker_id);
  if (it != workers_.end() && channel < it->second.channels.size())
    it->second.channels[channel].state = channel_state::busy;
}

void channel_manager::set_draining(const std::string& worker_id) {
  if (auto it = workers_.find(worker_id); it != workers_.end()) it->second.draining = true;
}

bool channel_manager::remove_worker(const std::string& id) {
  auto it = workers_.find(id);
  if (it == workers_.end()) return false;
  retire(it->second);
  workers_.erase(it);
  return true;
}

void channel_manager::retire(const worker& w) {
  for (const auto& c : w.channels) {
    retired_.processed += c.report.processed;
    retired_.failed += c.report.failed;
    retired_.bytes += c.report.bytes;
    retired_.restarts += c.report.restarts;
  }
}

std::optional<channel_ref> channel_manager::acquire(std::uint64_t lease_id, clock_type::time_point now,
                                                   std::optional<transport_request> want) {
  worker* best = nullptr;
  const std::string* best_id = nullptr;
  std::size_t best_free = 0;
  for (auto& [id, w] : workers_) {
    std::size_t n = 0;
    for (const auto& c : w.channels) n += is_free(w, c) && usable(c, want).has_value();
    if (n > best_free) {
      best = &w;
      best_id = &id;
      best_free = n;
    }
  }
  if (!best) return std::nullopt;
  for (auto& c : best->channels) {
    if (!is_free(*best, c)) continue;
    const auto t = usable(c, want);
    if (!t) continue;
    c.state = channel_state::leased;
    c.lease_id = lease_id;
    c.leased_at = now;
    c.lease_transport = std::string(to_string(*t));
    const std::uint16_t port = *t == transport::ucx ? c.info.ucx_port : c.info.port;
    return channel_ref{*best_id,         best->host,  c.info.index,
                       port,             c.lease_transport, c.info.port,
                       *t == transport::ucx ? c.info.ucx_address : std::string()};
  }
  return std::nullopt;
}

bool channel_manager::offers(transport t) const {
  for (const auto& [id, w] : workers_)
    for (const auto& c : w.channels)
      if (t == transport::ucx ? c.info.offers_ucx : c.info.offers_tcp) return true;
  return false;
}

std::vector<std::string> channel_manager::expire(clock_type::time_point now) {
  std::vector<std::string> removed;
  for (auto it = workers_.begin(); it != workers_.end();) {
    if (now - it->second.last_seen > options_.worker_timeout) {
      removed.push_back(it->first);
      retire(it->second);
      it = workers_.erase(it);
      continue;
    }
    for (auto& c : it->second.channels)
      if (c.state == channel_state::leased && now - c.leased_at > options_.lease_timeout) c.state = channel_state::free;
    ++it;
  }
  return removed;
}

std::size_t channel_manager::free_channels() const {
  std::size_t n = 0;
  for (const auto& [id, w] : workers_)
    for (const auto& c : w.channels) n += is_free(w, c);
  return n;
}

std::size_t channel_manager::total_channels() const {
  std::size_t n = 0;
  for (const auto& [id, w] : workers_) n += w.channels.size();
  return n;
}

std::vector<worker_view> channel_manager::workers() const {
  std::vector<worker_view> out;
  for (const auto& [id, w] : workers_) {
    worker_view v{id, w.host, w.draining, {}};
    for (const auto& c : w.channels) v.channels.push_back({c.info, c.state, c.lease_id, c.report, c.lease_transport});
    out.push_back(std::move(v));
  }
  return out;
}

totals channel_manager::total() const {
  totals t = retired_;
  for (const auto& [id, w] : workers_)
    for (const auto& c : w.channels) {
      t.processed += c.report.processed;
      t.failed += c.report.failed;
      t.bytes += c.report.bytes;
      t.restarts += c.report.restarts;
    }
  return t;
}

}  // namespace hio::master
