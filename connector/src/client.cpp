#include <hio/connector/client.hpp>

#include "lease.hpp"

#include <hio/common/connection.hpp>
#include <hio/common/json.hpp>
#include <hio/common/transport.hpp>
#include <hio/common/hash.hpp>
#include <hio/common/http.hpp>
#include <hio/common/token.hpp>
#include <hio/common/wire.hpp>

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>
#include <zstd.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdlib>
#include <deque>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <optional>
#include <thread>
#include <utility>

namespace hio::connector {

std::string_view to_string(send_status s) noexcept {
  switch (s) {
    case send_status::stored: return "stored";
    case send_status::failed: return "failed";
    case send_status::queued: return "queued";
  }
  return "unknown";
}

namespace {

using steady = std::chrono::steady_clock;
using std::chrono::milliseconds;

hio::error fail(errc code, std::string message) {
  return make_error(static_cast<int>(code), std::move(message));
}

// One tuple from submission to its result.
struct job {
  std::shared_ptr<const void> owner;     // keeps `data` alive when the client owns it
  std::span<const std::byte> head;       // the tuple, uncompressed: `head` (often empty) then `data`
  std::span<const std::byte> data;
  std::vector<std::byte> compressed;     // the payload as it travels when codec is zstd
  wire::codec codec = wire::codec::raw;
  std::shared_ptr<const std::string> metadata;  // the client's default is shared by the tuples that use it
  std::uint64_t xxh3 = 0;
  std::uint64_t tuple_id = 0;            // 0 until first sent; then fixed for every retry
  std::shared_ptr<const detail::issued_ids> issued;  // the lease that gave tuple_id: a retry presents its key
  std::uint32_t attempts = 0;
  std::uint64_t held_bytes = 0;          // counted against max_bytes_in_flight
  std::string last_failure;
  completion_handler done;
  // Set by the writer as its last touch of the job in a session (after the frame went to the kernel, or
  // when it will not be written). The reader waits for it before completing the job, so the buffers
  // are never freed under a sendmsg that is still returning.
  std::atomic<bool> written{false};

  std::size_t size() const noexcept { return head.size() + data.size(); }
  payload_parts wire_payload() const {
    return codec == wire::codec::zstd ? payload_parts(compressed) : payload_parts(head, data);
  }
};
using job_ptr = std::unique_ptr<job>;

// Tuples with consecutive ids waiting for a retry lease.
struct retry_run {
  std::deque<job_ptr> jobs;
  steady::time_point ready_at;
};

// One lease, one connection. The writer thread sends; the session's reader thread matches answers to
// `inflight`. Lock order: client mutex before session mutex, never the other way round.
struct session {
  detail::lease lease;
  std::unique_ptr<data_link> conn;
  bool retry = false;
  std::shared_ptr<const detail::issued_ids> issued;  // a fresh lease's ids and key, shared by its jobs
  std::uint64_t next_id = 0;       // writer only
  std::uint32_t remaining = 0;     // writer only: ids of the lease not used yet
  steady::time_point opened;       // writer only
  steady::time_point last_send;    // writer only
  bool end_sent = false;           // writer only
  bool broken = false;             // writer only: a send failed
  std::mutex mu;
  std::deque<job_ptr> inflight;    // written (or attempted), unacknowledged, in id order
  bool dead = false;               // the reader has stopped; nothing more goes into inflight to be sent
  std::string failure;             // why the reader stopped; empty after a clean END
  std::atomic<bool> finished{false};
  std::thread reader;

  std::string where() const {
    return lease.host + ":" + std::to_string(lease.port) + " (" + std::string(to_string(lease.via)) + ")";
  }
};
using session_ptr = std::shared_ptr<session>;

struct counters {
  std::atomic<std::uint64_t> submitted{0}, stored{0}, failed{0}, queued{0}, errors{0}, bytes_sent{0},
      leases{0}, retry_leases{0}, sessions{0}, ucx_sessions{0}, failed_sessions{0}, resent{0};
};

std::string json_metadata_prefix(const std::string& source) {
  nlohmann::ordered_json j;
  j["source"] = source;
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

// The source token a client uses when it was given none (client_options::source_token).
std::string token_of_local_cluster() {
  if (const char* env = std::getenv("HIO_SOURCE_TOKEN"); env != nullptr && *env != '\0') return env;
  const char* dir = std::getenv("HIO_DATA_DIR");
  std::ifstream in(std::filesystem::path(dir != nullptr && *dir != '\0' ? dir : "hio-data") / "source-token");
  std::string token;
  if (in) std::getline(in, token);
  while (!token.empty() && (token.back() == '\r' || token.back() == ' ')) token.pop_back();
  return token;
}

}  // namespace

struct client::impl {
  explicit impl(client_options o);

  result<void> submit(std::shared_ptr<const void> owner, std::span<const std::byte> head,
                      std::span<const std::byte> data, std::string_view metadata, completion_handler done);
  result<void> flush(milliseconds timeout);
  void close();
  client_stats stats() const;

 private:
  result<std::shared_ptr<const std::string>> make_metadata(std::string_view user) const;
  void maybe_compress(job& j) const;
  void complete(job_ptr j, result<send_result> r);
  void fail_jobs(std::deque<job_ptr> jobs, const hio::error& e);
  void fail_waiting(const hio::error& e, bool retries_too);

  void run_writer();
  void run_reader(session& s);
  bool sleep_for(milliseconds d);
  bool cur_usable();
  void open_new_session(std::uint64_t bytes_hint);
  result<session_ptr> open_session(const detail::lease& l, bool retry);
  bool push(session& s, job_ptr& j, bool even_if_dead);
  bool write(session& s, job& j);
  void send_new(job_ptr j);
  void send_retry_run(retry_run run);
  void end_current();
  void retire(session_ptr s);
  void reap();
  void schedule_retry(std::deque<job_ptr> jobs, const std::string& failure);
  void shutdown_all();

 public:
  client_options opt;

 private:
  std::optional<hio::error> config_error_;
  std::shared_ptr<const std::string> metadata_prefix_;  // {"source":"<name>"}
  // This client among others of the same name: the master keeps each client's order in its queue.
  const std::string instance_ = random_secret(8);

  mutable std::mutex mu_;
  std::condition_variable work_cv_;   // the writer waits for work
  std::condition_variable space_cv_;  // submitters wait for max_bytes_in_flight
  std::condition_variable idle_cv_;   // flush waits for outstanding_ == 0
  std::deque<job_ptr> pending_;       // submitted, never sent
  std::deque<retry_run> retries_;     // sent, to be resent under their ids
  std::uint64_t outstanding_ = 0;
  std::uint64_t outstanding_bytes_ = 0;
  bool stopping_ = false;
  counters counters_;

  // Writer-thread state.
  std::optional<detail::lease_requester> leases_;
  session_ptr cur_;
  std::vector<session_ptr> closing_;
  std::uint32_t connect_failures_ = 0;
  std::uint64_t ended_lease_ = 0;  // the channel lease of the session ended last, for the next lease

  std::thread writer_;  // last: started after everything above exists
};

client::impl::impl(client_options o) : opt(std::move(o)) {
  if (opt.max_attempts == 0) config_error_ = fail(errc::invalid_argument, "max_attempts must be at least 1");
  if (opt.max_bytes_in_flight == 0)
    config_error_ = fail(errc::invalid_argument, "max_bytes_in_flight must be at least 1");
  if (auto u = http::parse_url(opt.master_url); !u)
    config_error_ = fail(errc::invalid_argument, "bad master url '" + opt.master_url + "': " + u.error().message);
  if (opt.transport == "ucx" && !ucx_compiled_in())
    config_error_ = fail(errc::invalid_argument,
                         "transport \"ucx\" needs UCX, but this connector was built without it (install "
                         "libucx-dev and rebuild with HIO_WITH_UCX=ON), or use transport \"tcp\"");
  else if (opt.transport == "auto" && !ucx_compiled_in())
    opt.transport = "tcp";  // auto asks for UCX only where it could be used
  else if (!parse_transport_request(opt.transport))
    config_error_ = fail(errc::invalid_argument, "transport must be tcp, ucx or auto, not '" + opt.transport + "'");
  if (opt.source_token.empty()) {
    opt.source_token = token_of_local_cluster();
    if (!opt.source_token.empty()) spdlog::debug("hio connector: source token from $HIO_SOURCE_TOKEN or the data dir");
  }
  metadata_prefix_ = std::make_shared<const std::string>(json_metadata_prefix(opt.source_name));
  leases_.emplace(opt.master_url, opt.source_token, [this](milliseconds d) { return sleep_for(d); });
  writer_ = std::thread([this] { run_writer(); });
}

// ---------------------------------------------------------------------------------------------------
// Submission and results (any thread)

result<std::shared_ptr<const std::string>> client::impl::make_metadata(std::string_view user) const {
  if (user.empty()) return metadata_prefix_;
  if (json_depth(user) > max_json_depth)
    return fail(errc::invalid_argument, "metadata nests deeper than " + std::to_string(max_json_depth) + " levels");
  auto j = nlohmann::ordered_json::parse(user, nullptr, false);
  if (j.is_discarded() || !j.is_object())
    return fail(errc::invalid_argument, "metadata must be a JSON object");
  nlohmann::ordered_json out;
  out["source"] = opt.source_name;
  for (auto& [key, value] : j.items()) out[key] = std::move(value);
  auto text = out.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  if (text.size() > wire::max_metadata_bytes)
    return fail(errc::invalid_argument, "metadata is larger than " + std::to_string(wire::max_metadata_bytes) + " bytes");
  return std::make_shared<const std::string>(std::move(text));
}

void client::impl::maybe_compress(job& j) const {
  const std::size_t n = j.size();
  if (n < 512) return;
  std::vector<std::byte> joined;  // zstd's one-shot call wants one buffer; a copy costs far less than zstd
  std::span<const std::byte> in = j.data;
  if (!j.head.empty()) {
    joined = payload_parts(j.head, j.data).joined();
    in = joined;
  }
  std::vector<std::byte> out(ZSTD_compressBound(n));
  const std::size_t r = ZSTD_compress(out.data(), out.size(), in.data(), n, 1);
  if (ZSTD_isError(r) || r >= n - n / 16) return;  // does not help enough to pay for decoding
  out.resize(r);
  j.compressed = std::move(out);
  j.codec = wire::codec::zstd;
}

result<void> client::impl::submit(std::shared_ptr<const void> owner, std::span<const std::byte> head,
                                  std::span<const std::byte> data, std::string_view metadata,
                                  completion_handler done) {
  if (config_error_) return *config_error_;
  const std::size_t size = head.size() + data.size();
  if (size > wire::default_max_tuple_bytes)
    return fail(errc::invalid_argument, "tuple of " + std::to_string(size) + " bytes is over the limit of " +
                                            std::to_string(wire::default_max_tuple_bytes));
  auto md = make_metadata(metadata);
  if (!md) return md.error();

  auto j = std::make_unique<job>();
  j->owner = std::move(owner);
  j->head = head;
  j->data = data;
  j->metadata = std::move(*md);
  j->done = std::move(done);
  // On the caller's thread, in parallel with the writer's sends.
  if (head.empty()) {
    j->xxh3 = xxh3_64(data);
  } else {
    xxh3_stream hash;
    hash.update(head);
    hash.update(data);
    j->xxh3 = hash.digest();
  }
  if (opt.compress) maybe_compress(*j);
  j->held_bytes = size + j->compressed.size();

  {
    std::unique_lock lk(mu_);
    // A single tuple above the bound still goes when nothing else is held. Each wait is short and the
    // tuples in flight reach a result in bounded time, so this loop ends.
    while (!stopping_ && outstanding_ > 0 && outstanding_bytes_ + j->held_bytes > opt.max_bytes_in_flight)
      space_cv_.wait_for(lk, milliseconds(200));
    if (stopping_) return fail(errc::closed, "client is closed");
    ++outstanding_;
    outstanding_bytes_ += j->held_bytes;
    pending_.push_back(std::move(j));
  }
  counters_.submitted.fetch_add(1, std::memory_order_relaxed);
  work_cv_.notify_all();
  return {};
}

void client::impl::complete(job_ptr j, result<send_result> r) {
  if (!r) {
    counters_.errors.fetch_add(1, std::memory_order_relaxed);
  } else {
    switch (r->status) {
      case send_status::stored: counters_.stored.fetch_add(1, std::memory_order_relaxed); break;
      case send_status::failed: counters_.failed.fetch_add(1, std::memory_order_relaxed); break;
      case send_status::queued: counters_.queued.fetch_add(1, std::memory_order_relaxed); break;
    }
  }
  const std::uint64_t held = j->held_bytes;
  auto done = std::move(j->done);
  j.reset();  // releases an owned buffer before the budget is given back
  try {
    if (done) done(std::move(r));
  } catch (const std::exception& e) {
    spdlog::warn("hio connector: a completion handler threw: {}", e.what());
  } catch (...) {
    spdlog::warn("hio connector: a completion handler threw");
  }
  bool idle = false;
  {
    std::lock_guard lk(mu_);
    --outstanding_;
    outstanding_bytes_ -= held;
    idle = outstanding_ == 0;
  }
  space_cv_.notify_all();
  if (idle) idle_cv_.notify_all();
}

void client::impl::fail_jobs(std::deque<job_ptr> jobs, const hio::error& e) {
  for (auto& j : jobs) {
    hio::error err = e;
    if (j->tuple_id != 0) err.message = "tuple " + std::to_string(j->tuple_id) + ": " + err.message;
    complete(std::move(j), err);
  }
}

// Fails every tuple waiting for a new lease (and, with `retries_too`, those waiting for a retry lease).
void client::impl::fail_waiting(const hio::error& e, bool retries_too) {
  std::deque<job_ptr> jobs;
  {
    std::lock_guard lk(mu_);
    jobs.swap(pending_);
    if (retries_too) {
      for (auto& run : retries_)
        for (auto& j : run.jobs) jobs.push_back(std::move(j));
      retries_.clear();
    }
  }
  fail_jobs(std::move(jobs), e);
}

result<void> client::impl::flush(milliseconds timeout) {
  std::unique_lock lk(mu_);
  if (!idle_cv_.wait_for(lk, timeout, [&] { return outstanding_ == 0; }))
    return fail(errc::timeout, std::to_string(outstanding_) + " tuples still in flight after " +
                                   std::to_string(timeout.count()) + " ms");
  return {};
}

void client::impl::close() {
  {
    std::unique_lock lk(mu_);
    idle_cv_.wait_for(lk, opt.close_timeout, [&] { return outstanding_ == 0; });
    stopping_ = true;
  }
  work_cv_.notify_all();
  space_cv_.notify_all();
  if (writer_.joinable()) writer_.join();
}

client_stats client::impl::stats() const {
  client_stats s;
  s.submitted = counters_.submitted.load();
  s.stored = counters_.stored.load();
  s.failed = counters_.failed.load();
  s.queued = counters_.queued.load();
  s.errors = counters_.errors.load();
  s.bytes_sent = counters_.bytes_sent.load();
  s.leases = counters_.leases.load();
  s.retry_leases = counters_.retry_leases.load();
  s.sessions = counters_.sessions.load();
  s.ucx_sessions = counters_.ucx_sessions.load();
  s.failed_sessions = counters_.failed_sessions.load();
  s.resent_tuples = counters_.resent.load();
  std::lock_guard lk(mu_);
  s.in_flight_tuples = outstanding_;
  s.in_flight_bytes = outstanding_bytes_;
  return s;
}

// ---------------------------------------------------------------------------------------------------
// Writer thread

bool client::impl::sleep_for(milliseconds d) {
  std::unique_lock lk(mu_);
  return !work_cv_.wait_for(lk, d, [&] { return stopping_; });
}

void client::impl::run_writer() {
  for (;;) {
    reap();
    std::unique_lock lk(mu_);
    if (stopping_) break;
    const auto now = steady::now();
    auto ready = std::min_element(retries_.begin(), retries_.end(),
                                  [](const retry_run& a, const retry_run& b) { return a.ready_at < b.ready_at; });
    if (ready != retries_.end() && ready->ready_at <= now) {
      retry_run run = std::move(*ready);
      retries_.erase(ready);
      lk.unlock();
      end_current();  // a retry gets a session of its own; this also frees the current channel
      send_retry_run(std::move(run));
      continue;
    }
    if (!pending_.empty()) {
      if (!cur_usable()) {
        const std::uint64_t hint = pending_.front()->size();
        lk.unlock();
        end_current();
        open_new_session(hint);
        continue;
      }
      job_ptr j = std::move(pending_.front());
      pending_.pop_front();
      lk.unlock();
      send_new(std::move(j));
      continue;
    }
    auto wake = now + milliseconds(1000);
    if (ready != retries_.end()) wake = std::min(wake, ready->ready_at);
    if (cur_ && !cur_->end_sent) {
      const auto idle_end = cur_->last_send + opt.session_idle;
      if (now >= idle_end) {
        lk.unlock();
        end_current();
        continue;
      }
      wake = std::min(wake, idle_end);
    }
    work_cv_.wait_until(lk, wake);
  }
  shutdown_all();
}

bool client::impl::cur_usable() {
  if (!cur_ || cur_->end_sent || cur_->broken || cur_->remaining == 0) return false;
  if (steady::now() - cur_->opened >= opt.session_max) return false;
  std::lock_guard lk(cur_->mu);
  return !cur_->dead;
}

result<session_ptr> client::impl::open_session(const detail::lease& l, bool retry) {
  counters_.leases.fetch_add(1, std::memory_order_relaxed);
  if (retry) counters_.retry_leases.fetch_add(1, std::memory_order_relaxed);
  auto conn = open_link(l.via, l.host, l.port, opt.connect_timeout, l.ucx_address);
  if (!conn)
    return fail(errc::connect_failed, "cannot connect to " + l.host + ":" + std::to_string(l.port) + " over " +
                                          std::string(to_string(l.via)) + ": " + conn.error().message);
  auto s = std::make_shared<session>();
  s->lease = l;
  s->conn = std::move(*conn);
  s->retry = retry;
  if (!retry) s->issued = std::make_shared<const detail::issued_ids>(l.issued());
  s->next_id = l.first_id;
  s->remaining = l.count;
  s->opened = s->last_send = steady::now();
  counters_.sessions.fetch_add(1, std::memory_order_relaxed);
  if (l.via == transport::ucx) counters_.ucx_sessions.fetch_add(1, std::memory_order_relaxed);
  session* raw = s.get();
  s->reader = std::thread([this, raw] { run_reader(*raw); });
  return s;
}

void client::impl::open_new_session(std::uint64_t bytes_hint) {
  auto l = leases_->request(detail::new_lease_body(opt.source_name, detail::session_length(opt.session_tuples, bytes_hint),
                                                  bytes_hint, opt.transport, instance_, ended_lease_),
                            opt.lease_timeout);
  ended_lease_ = 0;
  if (!l) {
    if (l.error().code == static_cast<int>(errc::closed)) return;  // shutdown_all fails what waits
    fail_waiting(l.error(), l.error().code == static_cast<int>(errc::lease_timeout));
    return;
  }
  auto s = open_session(*l, false);
  if (!s) {
    ++connect_failures_;
    // A UCX endpoint that cannot be reached is a configuration problem (UCX_TLS) more often than a crash.
    if (l->via == transport::ucx) spdlog::warn("hio connector: {}", s.error().message);
    else spdlog::debug("hio connector: {}", s.error().message);
    if (connect_failures_ >= opt.max_attempts) {
      connect_failures_ = 0;
      fail_waiting(s.error(), false);
    } else {
      sleep_for(detail::backoff_delay(connect_failures_ - 1));
    }
    return;
  }
  connect_failures_ = 0;
  cur_ = std::move(*s);
}

// Moves `j` into the session's inflight list unless the session is dead or broken (then `j` stays with
// the caller) or `even_if_dead`. Returns whether the job may be written; the caller then calls write().
bool client::impl::push(session& s, job_ptr& j, bool even_if_dead) {
  std::lock_guard lk(s.mu);
  const bool writable = !s.dead && !s.broken;
  if (!writable && !even_if_dead) return false;
  j->written.store(!writable, std::memory_order_relaxed);  // published by the mutex
  s.inflight.push_back(std::move(j));
  return writable;
}

// Writes one DATA frame. `j` is in the session's inflight list: it cannot be acknowledged (and freed)
// before the frame has been written, and only this thread takes it out otherwise.
bool client::impl::write(session& s, job& j) {
  wire::frame_header h;
  h.type = wire::frame_type::data;
  h.tuple_id = j.tuple_id;
  h.token = s.lease.token;
  const auto payload = j.wire_payload();
  h.payload_length = payload.size();
  h.metadata_length = static_cast<std::uint32_t>(j.metadata->size());
  h.payload_codec = j.codec;
  h.xxh3 = j.xxh3;
  const std::size_t n = payload.size();
  auto r = s.conn->send(h, *j.metadata, payload, opt.send_timeout);
  j.written.store(true, std::memory_order_release);  // from here on `j` may be gone
  s.last_send = steady::now();
  if (!r) {
    spdlog::debug("hio connector: sending tuple to {} failed: {}", s.where(), r.error().message);
    s.broken = true;
    s.conn->shutdown_write();  // the peer closes; the reader then hands the unacknowledged tuples back
    return false;
  }
  counters_.bytes_sent.fetch_add(n, std::memory_order_relaxed);
  return true;
}

void client::impl::send_new(job_ptr j) {
  session& s = *cur_;
  j->tuple_id = s.next_id;
  j->issued = s.issued;
  ++j->attempts;
  job* p = j.get();
  if (!push(s, j, false)) {  // the reader stopped meanwhile: keep the tuple for the next session
    p->tuple_id = 0;
    p->issued.reset();
    --p->attempts;
    {
      std::lock_guard lk(mu_);
      pending_.push_front(std::move(j));
    }
    end_current();
    return;
  }
  ++s.next_id;
  --s.remaining;
  if (!write(s, *p)) {
    end_current();
    return;
  }
  if (s.remaining == 0) end_current();
}

void client::impl::send_retry_run(retry_run run) {
  const std::uint64_t first = run.jobs.front()->tuple_id;
  const auto count = static_cast<std::uint32_t>(run.jobs.size());
  const auto& issued = run.jobs.front()->issued;
  auto l = leases_->request(detail::retry_lease_body(opt.source_name, first, count,
                                                     issued ? *issued : detail::issued_ids{}, opt.transport, instance_),
                            opt.lease_timeout);
  if (!l) {
    if (l.error().code == static_cast<int>(errc::closed)) {
      fail_jobs(std::move(run.jobs), fail(errc::closed, "client closed before the tuple was acknowledged"));
      return;
    }
    if (l.error().code == static_cast<int>(errc::lease_timeout)) fail_waiting(l.error(), true);
    fail_jobs(std::move(run.jobs), l.error());
    return;
  }
  if (l->first_id != first || l->count != count) {
    fail_jobs(std::move(run.jobs),
              fail(errc::bad_lease, "retry lease for [" + std::to_string(first) + ", +" + std::to_string(count) +
                                        ") came back as [" + std::to_string(l->first_id) + ", +" +
                                        std::to_string(l->count) + ")"));
    return;
  }
  auto s = open_session(*l, true);
  if (!s) {
    for (auto& j : run.jobs) ++j->attempts;  // the lease was spent on it
    schedule_retry(std::move(run.jobs), s.error().message);
    return;
  }
  session_ptr sp = std::move(*s);
  bool ok = true;
  while (!run.jobs.empty()) {
    job_ptr j = std::move(run.jobs.front());
    run.jobs.pop_front();
    ++j->attempts;
    job* p = j.get();
    sp->remaining = sp->remaining > 0 ? sp->remaining - 1 : 0;
    sp->next_id = p->tuple_id + 1;
    // Every tuple of the run goes into inflight, sent or not: if the session fails, the whole run comes
    // back together from reap() as one contiguous retry.
    const bool writable = push(*sp, j, true);
    if (writable && ok) {
      ok = write(*sp, *p);  // `p` is not touched after this
    } else {
      if (writable) p->written.store(true, std::memory_order_release);  // never acknowledged: not sent
      ok = false;
    }
  }
  if (ok && !sp->broken) {
    if (auto e = sp->conn->send_end(opt.send_timeout); !e) sp->conn->shutdown_write();
  }
  sp->end_sent = true;
  retire(std::move(sp));
}

void client::impl::end_current() {
  if (!cur_) return;
  if (!cur_->lease.queue) ended_lease_ = cur_->lease.lease_id;
  if (!cur_->end_sent && !cur_->broken) {
    if (auto e = cur_->conn->send_end(opt.send_timeout); !e) cur_->conn->shutdown_write();
  }
  cur_->end_sent = true;
  retire(std::move(cur_));
  cur_.reset();
}

void client::impl::retire(session_ptr s) { closing_.push_back(std::move(s)); }

// Joins sessions whose reader has stopped and resends what they left unacknowledged.
void client::impl::reap() {
  if (cur_ && cur_->finished.load()) end_current();
  for (auto it = closing_.begin(); it != closing_.end();) {
    session& s = **it;
    if (!s.finished.load()) {
      ++it;
      continue;
    }
    if (s.reader.joinable()) s.reader.join();
    std::deque<job_ptr> left;
    std::string failure;
    {
      std::lock_guard lk(s.mu);
      left.swap(s.inflight);
      failure = s.failure;
    }
    if (!left.empty()) {
      counters_.failed_sessions.fetch_add(1, std::memory_order_relaxed);
      if (failure.empty()) failure = "session ended without acknowledgement";
      spdlog::debug("hio connector: session with {} failed ({}); resending {} tuples", s.where(), failure,
                    left.size());
      schedule_retry(std::move(left), failure);
    }
    it = closing_.erase(it);
  }
}

void client::impl::schedule_retry(std::deque<job_ptr> jobs, const std::string& failure) {
  std::deque<job_ptr> exhausted;
  std::deque<retry_run> runs;
  const auto now = steady::now();
  for (auto& j : jobs) {
    j->last_failure = failure;
    if (j->attempts >= opt.max_attempts) {
      exhausted.push_back(std::move(j));
      continue;
    }
    // A run is contiguous and from one issuing lease, whose retry key covers it.
    const job* last = runs.empty() ? nullptr : runs.back().jobs.back().get();
    if (!last || last->tuple_id + 1 != j->tuple_id || last->issued != j->issued) {
      runs.push_back(retry_run{{}, now + detail::backoff_delay(j->attempts > 0 ? j->attempts - 1 : 0)});
    }
    runs.back().jobs.push_back(std::move(j));
  }
  for (auto& j : exhausted) {
    auto e = fail(errc::attempts_exhausted, "tuple " + std::to_string(j->tuple_id) + ": gave up after " +
                                                std::to_string(j->attempts) + " attempts; last: " + j->last_failure);
    complete(std::move(j), e);
  }
  std::deque<job_ptr> closed_jobs;
  {
    std::lock_guard lk(mu_);
    for (auto& run : runs) {
      counters_.resent.fetch_add(run.jobs.size(), std::memory_order_relaxed);
      if (stopping_) {
        for (auto& j : run.jobs) closed_jobs.push_back(std::move(j));
      } else {
        retries_.push_back(std::move(run));
      }
    }
  }
  fail_jobs(std::move(closed_jobs), fail(errc::closed, "client closed before the tuple was acknowledged"));
  work_cv_.notify_all();
}

void client::impl::shutdown_all() {
  end_current();
  const auto closed = fail(errc::closed, "client closed before the tuple was acknowledged");
  fail_waiting(closed, true);
  for (auto& s : closing_) {
    // Tuples still unacknowledged after close_timeout: stop waiting for them. A healthy peer closes its
    // side when ours is shut; a stalled one is given up after ack_timeout by the reader.
    bool busy = false;
    {
      std::lock_guard lk(s->mu);
      busy = !s->inflight.empty();
    }
    if (busy) s->conn->shutdown_write();
  }
  for (auto& s : closing_) {
    if (s->reader.joinable()) s->reader.join();
    std::deque<job_ptr> left;
    {
      std::lock_guard lk(s->mu);
      left.swap(s->inflight);
    }
    fail_jobs(std::move(left), closed);
  }
  closing_.clear();
}

// ---------------------------------------------------------------------------------------------------
// Reader threads: one per session

void client::impl::run_reader(session& s) {
  std::string failure;
  for (;;) {
    auto a = s.conn->receive(opt.ack_timeout);
    if (!a) {
      failure = "connection to " + s.where() + " lost: " + a.error().message;
      break;
    }
    const auto& h = a->header;
    if (h.type == wire::frame_type::ack) {
      job_ptr j;
      {
        std::lock_guard lk(s.mu);
        if (!s.inflight.empty() && s.inflight.front()->tuple_id == h.tuple_id) {
          j = std::move(s.inflight.front());
          s.inflight.pop_front();
        }
      }
      if (!j) {
        failure = s.where() + " acknowledged tuple " + std::to_string(h.tuple_id) + ", which was not next";
        break;
      }
      // The peer read the whole frame, so the writer is at most returning from its send (over UCX the link
      // hands an ACK over only once its send has completed).
      for (int spin = 0; !j->written.load(std::memory_order_acquire); ++spin) {
        if (spin < 1000) std::this_thread::yield();
        else std::this_thread::sleep_for(std::chrono::microseconds(50));
      }
      send_result r;
      r.tuple_id = j->tuple_id;
      r.attempts = j->attempts;
      switch (static_cast<wire::ack_status>(h.flags)) {
        case wire::ack_status::stored: r.status = send_status::stored; break;
        case wire::ack_status::queued: r.status = send_status::queued; break;
        case wire::ack_status::failed:
          r.status = send_status::failed;
          r.reason = a->text.empty() ? "processing failed" : a->text;
          break;
        default:
          r.status = send_status::failed;
          r.reason = "unknown acknowledgement status " + std::to_string(h.flags);
      }
      complete(std::move(j), std::move(r));
      continue;
    }
    if (h.type == wire::frame_type::error) {
      failure = s.where() + " sent error " +
                std::string(wire::to_string(static_cast<wire::error_code>(h.flags))) + ": " + a->text;
      break;
    }
    if (h.type == wire::frame_type::end) {
      std::lock_guard lk(s.mu);
      if (!s.inflight.empty())
        failure = s.where() + " ended the session with " + std::to_string(s.inflight.size()) +
                  " tuples unacknowledged";
      break;
    }
    failure = s.where() + " sent an unexpected frame";
    break;
  }
  if (!failure.empty()) s.conn->shutdown_write();  // a writer blocked on this connection gives up
  {
    std::lock_guard lk(s.mu);
    s.dead = true;
    s.failure = std::move(failure);
  }
  s.finished.store(true);
  { std::lock_guard lk(mu_); }  // the writer is either before its wait (and sees `finished`) or in it
  work_cv_.notify_all();
}

// ---------------------------------------------------------------------------------------------------
// client

client::client(client_options options) : impl_(std::make_unique<impl>(std::move(options))) {}

client::~client() { impl_->close(); }

result<send_result> client::send(std::span<const std::byte> data, std::string_view metadata_json) {
  // Shared with the handler: the promise must outlive set_value, which may still run when get() returns.
  auto promise = std::make_shared<std::promise<result<send_result>>>();
  auto future = promise->get_future();
  auto r = impl_->submit(nullptr, {}, data, metadata_json,
                         [promise](result<send_result> res) { promise->set_value(std::move(res)); });
  if (!r) return r.error();
  return future.get();  // every tuple reaches a result in bounded time (see the class comment)
}

std::future<result<send_result>> client::async_send(std::vector<std::byte> data, std::string metadata_json) {
  return async_send(std::make_shared<const std::vector<std::byte>>(std::move(data)), std::move(metadata_json));
}

std::future<result<send_result>> client::async_send(std::shared_ptr<const std::vector<std::byte>> data,
                                                    std::string metadata_json) {
  auto promise = std::make_shared<std::promise<result<send_result>>>();
  auto future = promise->get_future();
  std::span<const std::byte> view;
  if (data) view = std::span<const std::byte>(*data);
  auto r = impl_->submit(std::move(data), {}, view, metadata_json,
                         [promise](result<send_result> res) { promise->set_value(std::move(res)); });
  if (!r) promise->set_value(r.error());
  return future;
}

result<void> client::async_send_view(std::span<const std::byte> data, std::string_view metadata_json,
                                     completion_handler done) {
  return impl_->submit(nullptr, {}, data, metadata_json, std::move(done));
}

result<void> client::async_send_view(std::span<const std::byte> head, std::span<const std::byte> data,
                                     std::string_view metadata_json, completion_handler done) {
  return impl_->submit(nullptr, head, data, metadata_json, std::move(done));
}

result<void> client::flush(std::chrono::milliseconds timeout) { return impl_->flush(timeout); }

client_stats client::stats() const { return impl_->stats(); }

const client_options& client::options() const noexcept { return impl_->opt; }

}  // namespace hio::connector
