#include <hio/worker/channel.hpp>

#include <hio/common/clock.hpp>
#include <hio/common/json.hpp>
#include <hio/common/log.hpp>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <exception>
#include <iterator>
#include <set>
#include <span>
#include <utility>

namespace hio::worker {
namespace {

int code(wire::error_code c) { return static_cast<int>(c); }

result<std::vector<feature>> run_processor(processor& p, const received_tuple& t) {
  try {
    return p.process(t);
  } catch (const std::exception& e) {
    return make_error(code(wire::error_code::internal), std::string("processor threw: ") + e.what());
  } catch (...) {
    return make_error(code(wire::error_code::internal), "processor threw an unknown exception");
  }
}

}  // namespace

std::string source_of(std::string_view metadata) {
  if (metadata.empty()) return {};
  const auto json = hio::parse_json_or_discarded(metadata);
  if (json.is_discarded() || !json.is_object()) return {};
  const auto it = json.find("source");
  if (it == json.end() || !it->is_string()) return {};
  return it->get<std::string>();
}

namespace {

// A source sends the same metadata with most tuples (its name, often nothing more): the source parsed
// from the last metadata seen on this thread (each channel has its own) is reused while it repeats.
const std::string& cached_source_of(std::string_view metadata) {
  thread_local std::string last_metadata, last_source;
  thread_local bool valid = false;
  if (!valid || metadata != last_metadata) {
    last_source = source_of(metadata);
    last_metadata.assign(metadata);
    valid = true;
  }
  return last_source;
}

}  // namespace

feature_record make_feature_record(const received_tuple& t, const result<std::vector<feature>>& processed,
                                   std::string_view worker_id, std::uint32_t channel, std::int64_t now_ms) {
  feature_record r;
  r.tuple_id = t.tuple_id;
  r.source = cached_source_of(t.metadata);
  r.size = t.payload.size();
  r.xxh3 = t.xxh3;
  r.metadata = std::string(t.metadata);
  r.worker = std::string(worker_id);
  r.channel = channel;
  r.processed_at_ms = now_ms;
  if (processed.has_value()) {
    r.status = record_status::stored;
    r.features = *processed;
  } else {
    r.status = record_status::failed;
    r.error = processed.error().message.empty() ? "processing failed" : processed.error().message;
  }
  return r;
}

void load_meter::started(clock::time_point at) { in_processor_since_ns_.store(at.time_since_epoch().count()); }

void load_meter::finished(clock::time_point from, clock::time_point to) {
  in_processor_since_ns_.store(0);
  if (window_start_ == clock::time_point{}) window_start_ = from;
  busy_ += to - from;
  const auto elapsed = to - window_start_;
  if (elapsed < window) return;
  const double share = std::chrono::duration<double>(busy_) / std::chrono::duration<double>(elapsed);
  if (share >= saturate_at) saturated_.store(true);
  else if (share <= clear_at) saturated_.store(false);
  window_start_ = to;
  busy_ = clock::duration::zero();
  last_window_ns_.store(to.time_since_epoch().count());
}

bool load_meter::saturated(clock::time_point now) const {
  // One tuple that has taken a whole window so far saturates on its own.
  if (const auto since = in_processor_since_ns_.load(); since != 0 && now - clock::time_point{clock::duration(since)} >= window)
    return true;
  // A processor that has not finished a window for two windows' time is not what holds sessions back.
  const clock::time_point last{clock::duration(last_window_ns_.load())};
  return saturated_.load() && now - last < 2 * window;
}

channel_handler::channel_handler(std::string worker_id, std::uint32_t index, std::unique_ptr<processor> p,
                                 std::unique_ptr<record_sink> sink, free_notifier notify, std::uint32_t sessions)
    : worker_id_(std::move(worker_id)),
      index_(index),
      processor_(std::move(p)),
      sink_(std::move(sink)),
      notify_(std::move(notify)),
      sessions_offered_(std::max<std::uint32_t>(1, sessions)) {
  store_thread_ = std::thread([this] { store_loop(); });
}

channel_handler::~channel_handler() {
  {
    std::lock_guard lock(jobs_mutex_);
    stop_store_ = true;
  }
  jobs_cv_.notify_all();
  store_thread_.join();
}

result<void> channel_handler::begin_session(const lease_token& lease, const std::string& peer) {
  // The master places at most `sessions_offered_` sessions here; twice that leaves room for its view
  // lagging behind (a session ending as the next begins) without letting the backlog grow unbounded.
  if (active_.size() >= 2 * static_cast<std::size_t>(sessions_offered_)) {
    refused_lease_.store(std::max(refused_lease_.load(), lease.lease_id));
    return make_error(code(wire::error_code::busy), "channel " + std::to_string(index_) + " serves " +
                                                        std::to_string(active_.size()) +
                                                        " sessions already; ask the master for another channel");
  }
  // Counted active before draining is read: a drain that sees the channel idle is sure no session slips in.
  active_count_.fetch_add(1);
  if (draining_.load()) {
    active_count_.fetch_sub(1);
    return make_error(code(wire::error_code::unavailable),
                      "worker " + worker_id_ + " is draining; ask the master for another channel");
  }
  const auto now = unix_seconds();
  std::erase_if(used_, [&](const auto& kv) { return kv.second < now; });  // expired tokens are refused anyway
  if (!used_.emplace(lease.lease_id, lease.expires_at).second) {
    active_count_.fetch_sub(1);
    return make_error(code(wire::error_code::bad_token),
                      "lease " + std::to_string(lease.lease_id) + " was already used on channel " +
                          std::to_string(index_) + "; leases are single-use");
  }
  last_lease_.store(std::max(last_lease_.load(), lease.lease_id));
  active_[lease.lease_id].clear();
  publish_active();
  sessions_.fetch_add(1);
  spdlog::debug("channel {}: session for lease {} from {}", index_, lease.lease_id, peer);
  return {};
}

result<void> channel_handler::on_tuple(const lease_token& lease, const received_tuple& t) {
  const auto it = active_.find(lease.lease_id);
  if (it == active_.end())
    return make_error(code(wire::error_code::internal), "lease " + std::to_string(lease.lease_id) + " has no session");
  const auto started = std::chrono::steady_clock::now();
  load_.started(started);
  const auto processed = run_processor(*processor_, t);
  load_.finished(started, std::chrono::steady_clock::now());
  auto record = make_feature_record(t, processed, worker_id_, index_, unix_ms());
  if (processed.has_value()) record.series = processor_->take_series();
  if (record.status == record_status::failed) {
    static log_limiter limit;
    log_limited(limit, spdlog::level::warn, "channel {}: tuple {} failed: {}", index_, t.tuple_id,
                log_escape(record.error));
  }
  it->second.push_back(std::move(record));
  return {};
}

result<std::vector<ack>> channel_handler::flush(const lease_token& lease) {
  const auto it = active_.find(lease.lease_id);
  if (it == active_.end() || it->second.empty()) return std::vector<ack>{};
  auto pending = std::exchange(it->second, {});
  auto stored = sink_->store(pending);
  if (!stored) {
    return make_error(code(wire::error_code::internal),
                      "channel " + std::to_string(index_) + " could not store the features of " +
                          std::to_string(pending.size()) + " tuples: " + stored.error().message + "; retry elsewhere");
  }
  return acks_for(pending, std::set<std::uint64_t>(stored->begin(), stored->end()));
}

void channel_handler::flush_async(const lease_token& lease, flush_done done) {
  const auto it = active_.find(lease.lease_id);
  if (it == active_.end() || it->second.empty()) return done(std::vector<ack>{});
  {
    std::lock_guard lock(jobs_mutex_);
    jobs_.push_back({std::exchange(it->second, {}), std::move(done)});
  }
  jobs_cv_.notify_all();
}

void channel_handler::wait_stores() {
  std::unique_lock lock(jobs_mutex_);
  jobs_cv_.wait(lock, [&] { return jobs_.empty() && !storing_; });
}

void channel_handler::store_loop() {
  std::unique_lock lock(jobs_mutex_);
  for (;;) {
    jobs_cv_.wait(lock, [&] { return stop_store_ || !jobs_.empty(); });
    if (jobs_.empty()) return;  // stopping, nothing left
    auto batch = std::exchange(jobs_, {});
    storing_ = true;
    lock.unlock();
    // One store() for every batch that waited: records keep their batches' order.
    std::vector<feature_record> all;
    for (auto& j : batch) all.insert(all.end(), std::make_move_iterator(j.records.begin()),
                                     std::make_move_iterator(j.records.end()));
    auto stored = sink_->store(all);
    if (!stored) {
      const auto e = make_error(code(wire::error_code::internal),
                                "channel " + std::to_string(index_) + " could not store the features of " +
                                    std::to_string(all.size()) + " tuples: " + stored.error().message +
                                    "; retry elsewhere");
      for (auto& j : batch) j.done(e);
    } else {
      const std::set<std::uint64_t> conflicts(stored->begin(), stored->end());
      std::span<feature_record> rest(all);
      for (auto& j : batch) {
        j.done(acks_for(rest.first(j.records.size()), conflicts));  // moved-from records keep their count
        rest = rest.subspan(j.records.size());
      }
    }
    lock.lock();
    storing_ = false;
    jobs_cv_.notify_all();  // wait_stores()
  }
}

std::vector<ack> channel_handler::acks_for(std::span<feature_record> records,
                                           const std::set<std::uint64_t>& conflicts) {
  std::vector<ack> acks;
  acks.reserve(records.size());
  std::uint64_t failed = 0;
  std::uint64_t bytes = 0;
  for (auto& r : records) {
    bytes += r.size;
    if (conflicts.contains(r.tuple_id)) {
      // Another tuple is stored under this id (sent by someone else): this one is not, and says so.
      ++failed;
      acks.push_back(ack{r.tuple_id, wire::ack_status::failed,
                         "conflict: the repository holds other bytes (size or XXH3) under tuple id " +
                             std::to_string(r.tuple_id) + "; this tuple was not stored"});
    } else if (r.status == record_status::failed) {
      ++failed;
      acks.push_back(ack{r.tuple_id, wire::ack_status::failed, std::move(r.error)});
    } else {
      acks.push_back(ack{r.tuple_id, wire::ack_status::stored, {}});
    }
  }
  processed_.fetch_add(records.size());
  failed_.fetch_add(failed);
  bytes_.fetch_add(bytes);
  return acks;
}

void channel_handler::end_session(const lease_token& lease, bool clean) {
  if (active_.erase(lease.lease_id) == 0) return;  // not a session this channel serves
  publish_active();
  active_count_.fetch_sub(1);
  spdlog::debug("channel {}: session for lease {} ended {}", index_, lease.lease_id, clean ? "clean" : "unclean");
  if (notify_) notify_(index_, lease.lease_id, clean);
}

void channel_handler::abort_session() {
  while (!active_.empty()) {
    lease_token lease;
    lease.lease_id = active_.begin()->first;
    end_session(lease, false);
  }
}

void channel_handler::publish_active() {
  std::vector<std::uint64_t> ids;
  ids.reserve(active_.size());
  for (const auto& [id, pending] : active_) ids.push_back(id);
  std::lock_guard lock(active_mutex_);
  active_ids_ = std::move(ids);
}

void channel_handler::set_draining(bool draining) noexcept { draining_.store(draining); }

void channel_handler::count_restart() noexcept { restarts_.fetch_add(1); }

channel_status channel_handler::status() const {
  channel_status s;
  s.index = index_;
  {
    std::lock_guard lock(active_mutex_);
    s.active = active_ids_;
  }
  s.busy = !s.active.empty();
  s.max_sessions = sessions_offered_;
  // A channel without sessions holds no source back, whatever its last windows said.
  s.saturated = s.busy && load_.saturated(std::chrono::steady_clock::now());
  s.draining = draining_.load();
  s.lease_id = last_lease_.load();
  s.refused_lease_id = refused_lease_.load();
  s.processed = processed_.load();
  s.failed = failed_.load();
  s.bytes = bytes_.load();
  s.sessions = sessions_.load();
  s.restarts = restarts_.load();
  s.processor_restarts = processor_->restarts();
  return s;
}

}  // namespace hio::worker
