#include <hio/worker/channel.hpp>

#include <hio/common/clock.hpp>
#include <hio/common/log.hpp>

#include <nlohmann/json.hpp>

#include <exception>
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
  const auto json = nlohmann::json::parse(metadata, nullptr, /*allow_exceptions=*/false);
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

channel_handler::channel_handler(std::string worker_id, std::uint32_t index, std::unique_ptr<processor> p,
                                 std::unique_ptr<record_sink> sink, free_notifier notify)
    : worker_id_(std::move(worker_id)),
      index_(index),
      processor_(std::move(p)),
      sink_(std::move(sink)),
      notify_(std::move(notify)) {}

result<void> channel_handler::begin_session(const lease_token& lease, const std::string& peer) {
  if (busy_.load()) {
    refused_lease_.store(std::max(refused_lease_.load(), lease.lease_id));
    return make_error(code(wire::error_code::busy), "channel " + std::to_string(index_) +
                                                        " is serving lease " + std::to_string(active_lease_) +
                                                        "; ask the master for another channel");
  }
  // busy before draining is read: a drain that sees the channel idle is sure no session slips in.
  busy_.store(true);
  if (draining_.load()) {
    busy_.store(false);
    return make_error(code(wire::error_code::unavailable),
                      "worker " + worker_id_ + " is draining; ask the master for another channel");
  }
  if (accepted_any_ && lease.lease_id <= last_lease_.load()) {
    busy_.store(false);
    return make_error(code(wire::error_code::bad_token),
                      "lease " + std::to_string(lease.lease_id) + " is not newer than lease " +
                          std::to_string(last_lease_.load()) + " already used on channel " +
                          std::to_string(index_) + "; leases are single-use");
  }
  accepted_any_ = true;
  last_lease_.store(lease.lease_id);
  active_lease_ = lease.lease_id;
  pending_.clear();
  sessions_.fetch_add(1);
  spdlog::debug("channel {}: session for lease {} from {}", index_, lease.lease_id, peer);
  return {};
}

result<void> channel_handler::on_tuple(const lease_token&, const received_tuple& t) {
  const auto processed = run_processor(*processor_, t);
  auto record = make_feature_record(t, processed, worker_id_, index_, unix_ms());
  if (processed.has_value()) record.series = processor_->take_series();
  if (record.status == record_status::failed) {
    spdlog::warn("channel {}: tuple {} failed: {}", index_, t.tuple_id, record.error);
  }
  pending_.push_back(std::move(record));
  return {};
}

result<std::vector<ack>> channel_handler::flush(const lease_token&) {
  std::vector<ack> acks;
  if (pending_.empty()) return acks;
  auto stored = sink_->store(pending_);
  if (!stored) {
    const auto n = pending_.size();
    pending_.clear();
    return make_error(code(wire::error_code::internal),
                      "channel " + std::to_string(index_) + " could not store the features of " +
                          std::to_string(n) + " tuples: " + stored.error().message + "; retry elsewhere");
  }
  acks.reserve(pending_.size());
  std::uint64_t failed = 0;
  std::uint64_t bytes = 0;
  for (auto& r : pending_) {
    bytes += r.size;
    if (r.status == record_status::failed) {
      ++failed;
      acks.push_back(ack{r.tuple_id, wire::ack_status::failed, std::move(r.error)});
    } else {
      acks.push_back(ack{r.tuple_id, wire::ack_status::stored, {}});
    }
  }
  processed_.fetch_add(pending_.size());
  failed_.fetch_add(failed);
  bytes_.fetch_add(bytes);
  pending_.clear();
  return acks;
}

void channel_handler::end_session(const lease_token& lease, bool clean) {
  if (!busy_.load() || lease.lease_id != active_lease_) return;  // not the session this channel serves
  pending_.clear();
  busy_.store(false);
  spdlog::debug("channel {}: session for lease {} ended {}", index_, lease.lease_id, clean ? "clean" : "unclean");
  if (notify_) notify_(index_, lease.lease_id, clean);
}

void channel_handler::abort_session() {
  if (!busy_.load()) return;
  lease_token lease;
  lease.lease_id = active_lease_;
  end_session(lease, false);
}

void channel_handler::set_draining(bool draining) noexcept { draining_.store(draining); }

void channel_handler::count_restart() noexcept { restarts_.fetch_add(1); }

channel_status channel_handler::status() const noexcept {
  channel_status s;
  s.index = index_;
  s.busy = busy_.load();
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
