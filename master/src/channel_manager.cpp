#include <hio/master/channel_manager.hpp>

#include <algorithm>

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

namespace {
// An unconfirmed lease below the channel's highest accepted or refused one that the channel does not list
// as active has come and gone, or was refused; unless it is this young (its source may connect after a
// later lease's source did).
constexpr auto unconfirmed_grace = std::chrono::seconds(1);
}  // namespace

channel_state channel_manager::state_of(const channel& c) {
  if (c.leases.empty()) return channel_state::free;
  for (const auto& [id, l] : c.leases)
    if (l.confirmed) return channel_state::busy;
  return channel_state::leased;
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
    std::vector<std::uint64_t> active = r.active;
    if (r.busy && active.empty()) active.push_back(r.lease_id);  // a worker that reports no lease list
    std::sort(active.begin(), active.end());
    // Sessions the master did not hand out (begun before it restarted) hold credits too.
    std::erase_if(c.ended_by_source, [&](std::uint64_t l) { return !std::binary_search(active.begin(), active.end(), l); });
    for (const auto lease : active)
      if (!c.ended_by_source.contains(lease)) c.leases.try_emplace(lease, held_lease{now, true, {}});
    const std::uint64_t seen = std::max(r.lease_id, r.refused_lease_id);
    for (auto l = c.leases.begin(); l != c.leases.end();) {
      const bool is_active = std::binary_search(active.begin(), active.end(), l->first);
      bool ended = false;
      if (is_active) l->second.confirmed = true;
      else if (l->second.confirmed) ended = true;  // its session is over (its "free" message may be lost)
      else ended = l->first <= seen && now - l->second.leased_at >= unconfirmed_grace;
      l = ended ? c.leases.erase(l) : std::next(l);
    }
  }
  return true;
}

void channel_manager::release(const std::string& worker_id, std::uint32_t channel, std::uint64_t lease_id) {
  auto it = workers_.find(worker_id);
  if (it == workers_.end() || channel >= it->second.channels.size()) return;
  auto& c = it->second.channels[channel];
  c.leases.erase(lease_id);
  // A channel without sessions is not saturated (its worker reports the same once its next heartbeat
  // comes): new sources need not wait for that heartbeat.
  if (c.leases.empty()) c.report.saturated = false;
}

void channel_manager::release_ended(std::uint64_t lease_id, const std::string& owner) {
  if (owner.empty()) return;
  for (auto& [id, w] : workers_)
    for (auto& c : w.channels)
      if (auto l = c.leases.find(lease_id); l != c.leases.end()) {
        if (l->second.owner == owner) {
          c.leases.erase(l);
          c.ended_by_source.insert(lease_id);
        }
        return;
      }
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
                                                   std::optional<transport_request> want, const std::string& owner) {
  const bool for_dispatch = !want.has_value();
  worker* best_worker = nullptr;
  const std::string* best_id = nullptr;
  std::size_t best_room = 0;
  for (auto& [id, w] : workers_) {
    std::size_t n = 0;
    for (const auto& c : w.channels)
      if (usable(c, want)) n += room(w, c, for_dispatch);
    if (n > best_room) {
      best_worker = &w;
      best_id = &id;
      best_room = n;
    }
  }
  if (!best_worker) return std::nullopt;
  channel* best = nullptr;
  std::size_t best_r = 0;
  for (auto& c : best_worker->channels) {
    const std::size_t r = usable(c, want) ? room(*best_worker, c, for_dispatch) : 0;
    if (r == 0) continue;
    if (!best || r > best_r || (r == best_r && c.leased_at < best->leased_at)) {
      best = &c;
      best_r = r;
    }
  }
  if (!best) return std::nullopt;
  const auto t = *usable(*best, want);
  best->leases[lease_id] = held_lease{now, false, owner};
  best->lease_id = lease_id;
  best->leased_at = now;
  best->lease_transport = std::string(to_string(t));
  const std::uint16_t port = t == transport::ucx ? best->info.ucx_port : best->info.port;
  return channel_ref{*best_id,         best_worker->host,      best->info.index,
                     port,             best->lease_transport,  best->info.port,
                     t == transport::ucx ? best->info.ucx_address : std::string()};
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
      std::erase_if(c.leases, [&](const auto& l) {
        return !l.second.confirmed && now - l.second.leased_at > options_.lease_timeout;
      });
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

std::size_t channel_manager::credits(bool for_dispatch) const {
  std::size_t n = 0;
  for (const auto& [id, w] : workers_)
    for (const auto& c : w.channels) n += room(w, c, for_dispatch);
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
    for (const auto& c : w.channels)
      v.channels.push_back(
          {c.info, state_of(c), c.lease_id, c.leases.size(), room(w, c, false), c.report, c.lease_transport});
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
