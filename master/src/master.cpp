#include <hio/common/clock.hpp>
#include <hio/common/connection.hpp>
#include <hio/common/hash.hpp>
#include <hio/common/id_generator.hpp>
#include <hio/common/json.hpp>
#include <hio/common/log.hpp>
#include <hio/common/protocol/lease.hpp>
#include <hio/common/receiver.hpp>
#include <hio/common/secret.hpp>
#include <hio/common/token.hpp>
#include <hio/common/transport.hpp>
#include <hio/common/version.hpp>
#include <hio/master/channel_manager.hpp>
#include <hio/master/master.hpp>
#include <hio/master/overflow_queue.hpp>

#include "history.hpp"
#include "web.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/thread_pool.hpp>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <deque>
#include <limits>
#include <map>
#include <thread>

namespace hio::master {

using json = nlohmann::json;
using namespace std::chrono_literals;

namespace {

// Accepts sessions on the queue's data port and makes their tuples durable in the overflow queue.
// Many sessions interleave on the queue's single io thread, so everything pending is kept per lease.
//
// It also keeps each source's order: it knows which source every queue lease went to and the arrival
// number of each source's newest queued tuple, so the master can tell whether a source still has tuples
// waiting (then its new tuples queue behind them) without holding back any other source.
class queue_handler : public tuple_handler {
 public:
  explicit queue_handler(overflow_queue& q) : queue_(q) {}

  result<void> begin_session(const lease_token& lease, const std::string&) override {
    const auto now = unix_seconds();
    std::erase_if(used_, [&](const auto& kv) { return kv.second < now; });
    if (!used_.emplace(lease.lease_id, lease.expires_at).second)
      return make_error(static_cast<int>(wire::error_code::bad_token), "lease token was already used");
    return {};
  }
  result<void> on_tuple(const lease_token& lease, const received_tuple& t) override {
    auto seq = queue_.append(t.tuple_id, t.xxh3, t.metadata, t.payload);
    if (!seq) {
      const bool full = seq.error().code == static_cast<int>(wire::error_code::busy);
      return make_error(static_cast<int>(full ? wire::error_code::busy : wire::error_code::internal),
                        seq.error().message);
    }
    pending_[lease.lease_id].push_back(t.tuple_id);
    std::lock_guard lock(mutex_);
    if (auto it = lease_source_.find(lease.lease_id); it != lease_source_.end()) {
      auto& last = newest_[it->second.source];
      last = std::max(last, *seq);
    }
    return {};
  }
  result<std::vector<ack>> flush(const lease_token& lease) override {
    return sync(take_pending(lease), queue_.written());
  }
  // On the sync thread: the io thread goes on appending the next tuples, and sessions whose flushes
  // wait together share one fdatasync (overflow_queue::sync_through).
  void flush_async(const lease_token& lease, flush_done done) override {
    boost::asio::post(syncer_, [this, ids = take_pending(lease), at = queue_.written(), done = std::move(done)]() mutable {
      done(sync(std::move(ids), at));
    });
  }
  void end_session(const lease_token& lease, bool) override { pending_.erase(lease.lease_id); }

  // A queue lease was handed to `source` (from the REST threads).
  void expect(std::uint64_t lease_id, const std::string& source, std::uint32_t expires_at) {
    std::lock_guard lock(mutex_);
    const auto now = unix_seconds();
    std::erase_if(lease_source_, [&](const auto& kv) { return kv.second.expires_at + 5 < now; });
    if (lease_source_.size() >= max_tracked) lease_source_.erase(lease_source_.begin());  // oldest lease
    lease_source_[lease_id] = {source, expires_at};
  }
  // Whether tuples of `source` still wait in the queue (in flight to a channel counts).
  bool holds(const std::string& source) {
    const auto oldest = queue_.oldest_sequence();
    std::lock_guard lock(mutex_);
    std::erase_if(newest_, [&](const auto& kv) { return kv.second < oldest; });
    const auto it = newest_.find(source);
    return it != newest_.end();
  }

  std::function<void()> on_queued;

  // Waits for the syncs started by flush_async().
  void join() { syncer_.join(); }

 private:
  std::vector<std::uint64_t> take_pending(const lease_token& lease) {
    auto ids = std::move(pending_[lease.lease_id]);
    pending_.erase(lease.lease_id);
    return ids;
  }
  result<std::vector<ack>> sync(std::vector<std::uint64_t> ids, std::uint64_t through) {
    if (auto r = queue_.sync_through(through); !r)
      return make_error(static_cast<int>(wire::error_code::internal), r.error().message);
    std::vector<ack> acks;
    acks.reserve(ids.size());
    for (auto id : ids) acks.push_back({id, wire::ack_status::queued, {}});
    if (on_queued) on_queued();
    return acks;
  }

  // Leases are pruned when they expire; this bounds the map against a flood of lease requests.
  static constexpr std::size_t max_tracked = 1 << 16;
  struct queue_lease {
    std::string source;
    std::uint32_t expires_at = 0;
  };
  overflow_queue& queue_;
  boost::asio::thread_pool syncer_{1};  // flush_async's syncs, in order
  std::map<std::uint64_t, std::vector<std::uint64_t>> pending_;  // lease id -> appended, not yet acked
  std::map<std::uint64_t, std::uint32_t> used_;  // lease id -> expiry
  std::mutex mutex_;  // guards the two maps below (REST threads and the queue's io thread)
  std::map<std::uint64_t, queue_lease> lease_source_;
  std::map<std::string, std::uint64_t> newest_;  // source -> arrival number of its newest queued tuple
};

struct rate_sample {
  clock_type::time_point at;
  std::uint64_t processed, bytes;
};

// The most sessions a worker may say one channel serves at once.
constexpr std::uint64_t max_channel_sessions = 256;

json transports_of(const channel_info& c) {
  json t = json::array();
  if (c.offers_tcp) t.push_back("tcp");
  if (c.offers_ucx) t.push_back("ucx");
  return t;
}

std::string json_error_text(const json::exception& e) { return std::string("invalid JSON body: ") + e.what(); }

// A REST body from outside, depth-checked before it is parsed (an empty body is {}).
result<json> parse_body(const http::request& r) {
  if (r.body.empty()) return json::object();
  auto j = parse_untrusted_json(r.body);
  if (!j) return make_error(400, "invalid JSON body: " + j.error().message);
  return j;
}

}  // namespace

struct master::impl {
  options opt;
  std::unique_ptr<id_generator> tuple_ids, lease_ids;
  std::unique_ptr<overflow_queue> queue;
  std::unique_ptr<queue_handler> qhandler;

  std::mutex mutex;  // guards cm, samples, hist, stopping
  std::condition_variable dispatch_cv;
  channel_manager cm;
  std::deque<rate_sample> samples;
  history hist;  // for GET /v1/history and the dashboard
  detail::repository_reader repository;  // the dashboard's reads of the repository
  bool stopping = false;

  boost::asio::io_context http_io, queue_io;
  std::unique_ptr<http::server> http_server;
  // Worker control (registration, heartbeats, free, drain) on its own io_context and thread, so that no
  // public request, however slow, holds up a heartbeat. The REST port serves the same calls too.
  boost::asio::io_context control_io;
  std::unique_ptr<http::server> control_server;
  std::unique_ptr<receiver> queue_rx;
  std::vector<std::thread> threads;
  std::thread scaling_thread;
  clock_type::time_point started = clock_type::now();

  // Scaling (only with opt.autoscale).
  std::unique_ptr<provisioner> prov;
  std::unique_ptr<autoscaler> scaler;
  std::map<std::string, clock_type::time_point> pending_workers;  // started, not registered yet
  std::deque<json> scaling_log;                                   // recent decisions that acted
  scale_decision last_decision;

  std::atomic<std::uint64_t> leases{0}, channel_leases{0}, queue_leases{0}, tuples_leased{0}, refusals{0},
      dispatched{0}, dispatch_failures{0}, bad_requests{0}, ucx_leases{0}, retry_refusals{0};

  explicit impl(options o)
      : opt(std::move(o)), cm(channel_manager::options{opt.lease_ttl + 2s, opt.worker_timeout}),
        repository(opt.repository_url) {}

  std::string data_host() const { return opt.advertise_host.empty() ? opt.host : opt.advertise_host; }

  // ---- REST ----
  http::response handle(const http::request& r) {
    return counted([&] { return route(r); });
  }

  // Runs a handler: a JSON body it cannot use is a 400, and every answer >= 400 counts in bad_requests.
  template <class Handler>
  http::response counted(Handler&& h) {
    try {
      auto res = h();
      if (res.status >= 400) ++bad_requests;
      return res;
    } catch (const json::exception& e) {
      ++bad_requests;
      return http::error_response(400, json_error_text(e));
    }
  }

  std::uint64_t refused_connections() const {
    return (http_server ? http_server->refused_connections() : 0) +
           (queue_rx ? queue_rx->counters().refused_connections : 0);
  }

  // The control port's calls: /v1/workers… (with the cluster secret) and /healthz.
  http::response handle_control(const http::request& r) {
    if (r.path == "/healthz") return http::json_response(R"({"ok":true})");
    if (r.path != "/v1/workers" && !r.path.starts_with("/v1/workers/"))
      return http::error_response(404, "the control port serves /v1/workers only; the REST port serves " + r.path);
    if (!worker_auth(r)) return http::error_response(401, "worker calls need the cluster secret as Bearer token");
    return counted([&] { return workers(r); });
  }

  bool worker_auth(const http::request& r) const { return opt.secret.empty() || same_secret(r.bearer(), opt.secret); }

  http::response route(const http::request& r) {
    const std::string& p = r.path;
    if (p == "/v1/streams") {
      if (r.method != "POST") return http::error_response(405, "use POST /v1/streams");
      return lease(r);
    }
    if (p == "/healthz") return http::json_response(R"({"ok":true})");
    if (p == "/v1/status") {
      if (r.method != "GET") return http::error_response(405, "use GET /v1/status");
      return http::json_response(status().dump());
    }
    if (p == "/metrics") {
      http::response res;
      res.content_type = "text/plain; version=0.0.4";
      res.body = metrics();
      return res;
    }
    if (auto d = opt.dashboard ? detail::dashboard_response(r) : std::nullopt) return *d;
    if (p == "/v1/history" || p == "/v1/knowledge" || p == "/v1/knowledge/latest" || p.starts_with("/v1/tuples/") ||
        p == "/v1/failures") {
      if (r.method != "GET") return http::error_response(405, "use GET " + p);
      return dashboard_data(r);
    }
    if (p == "/v1/workers" || p.starts_with("/v1/workers/")) {
      if (!worker_auth(r)) return http::error_response(401, "worker calls need the cluster secret as Bearer token");
      return workers(r);
    }
    return http::error_response(404, "no such endpoint: " + p + " (see docs/api.md)");
  }

  // The dashboard's data: the master's history, and the repository's knowledge, records and failures.
  http::response dashboard_data(const http::request& r) {
    const std::string& p = r.path;
    if (p == "/v1/history") {
      std::int64_t since = 0;
      if (auto it = r.query.find("since"); it != r.query.end()) {
        try {
          std::size_t used = 0;
          since = std::stoll(it->second, &used);
          if (used != it->second.size()) throw std::invalid_argument("trailing text");
        } catch (const std::exception&) {
          return http::error_response(400, "since must be unix milliseconds, not '" + it->second + "'");
        }
      }
      history part;
      {
        std::lock_guard lock(mutex);
        part = hist.tail(since);
      }
      json h = part.to_json(since);
      h["now_ms"] = unix_ms();
      return http::json_response(h.dump());
    }
    if (p == "/v1/failures") return repository.failures();
    if (p == "/v1/knowledge") return repository.get("/v1/knowledge?limit=1");  // the newest version
    if (p.starts_with("/v1/tuples/")) {
      const std::string id = p.substr(std::string("/v1/tuples/").size());
      if (id.empty() || id.size() > 20 || id.find_first_not_of("0123456789") != std::string::npos)
        return http::error_response(400, "tuple id must be an unsigned integer, not '" + id + "'");
    }
    return repository.get(p);
  }

  // A retry's ids: [first, first + count) must lie in the issued range [F0, F0 + K0), a range this master
  // handed out, and its key must be that range's retry key, which only the source it was handed to holds.
  // Errors: 400 (ids never issued, count out of range), 403 (no key, or not the key of those ids).
  result<std::pair<std::uint64_t, std::uint32_t>> check_retry(const protocol::lease_request::retry_ids& rt) const {
    const auto first = rt.first;
    const auto n = rt.count;
    if (n == 0 || n > opt.max_session_tuples)
      return make_error(400, "retry count must be 1.." + std::to_string(opt.max_session_tuples));
    const std::uint64_t issued_end = tuple_ids->peek();  // ids below it were handed out
    if (first == 0 || first > issued_end || n > issued_end - first)
      return make_error(400, "retry names tuple ids this master never issued");
    if (!rt.issued)
      return make_error(403, "a retry lease needs the retry key of the lease that issued its ids: "
                             R"("issued": {"first": F, "count": K, "key": "<retry_key>"})");
    const auto f0 = rt.issued->first;
    const auto n0 = rt.issued->count;
    if (n0 > std::numeric_limits<std::uint32_t>::max() || first < f0 || first - f0 > n0 || n > n0 - (first - f0))
      return make_error(403, "retry ids [" + std::to_string(first) + ", +" + std::to_string(n) +
                                 ") are not within the issued range [" + std::to_string(f0) + ", +" +
                                 std::to_string(n0) + ")");
    if (!valid_retry_key(rt.issued->key, opt.secret, f0, static_cast<std::uint32_t>(n0)))
      return make_error(403, "retry key does not match the issued range [" + std::to_string(f0) + ", +" +
                                 std::to_string(n0) + "): only the source those ids were leased to may resend them");
    return std::pair{first, static_cast<std::uint32_t>(n)};
  }

  http::response lease(const http::request& r) {
    if (!opt.source_token.empty() && !same_secret(r.bearer(), opt.source_token))
      return http::error_response(401, "this master needs a source token: Authorization: Bearer <token>");
    auto decoded = protocol::decode_lease_request(r.body);
    if (!decoded) return http::error_response(400, decoded.error().message);
    const protocol::lease_request& req = *decoded;
    std::uint64_t first = 0;
    std::uint32_t count = 1;
    if (req.retry) {
      auto checked = check_retry(*req.retry);
      if (!checked) {
        if (checked.error().code == 403) ++retry_refusals;
        return http::error_response(checked.error().code, checked.error().message);
      }
      first = checked->first;
      count = checked->second;
    } else if (req.count != 0) {
      count = static_cast<std::uint32_t>(std::min<std::uint64_t>(req.count, opt.max_session_tuples));
    }
    if (req.bytes > opt.max_tuple_bytes)
      return http::error_response(413, "tuple of " + std::to_string(req.bytes) +
                                           " bytes is over the maximum tuple size of " +
                                           std::to_string(opt.max_tuple_bytes));

    // The source's transport: "tcp" (the default), "ucx", or "auto" (UCX where the channel offers it).
    // The overflow queue's port is TCP whatever the source asks.
    const auto want = req.transport;
    if (want == transport_request::ucx) {
      std::lock_guard lock(mutex);
      if (cm.total_channels() > 0 && !cm.offers(transport::ucx))
        return http::error_response(409, "no worker channel offers the UCX transport (workers run with --transport "
                                         "tcp, were built without UCX, or UCX did not start there); ask for "
                                         "\"tcp\" or \"auto\"");
    }

    // Whose order to keep: the sending client's instance ("client"), else its name ("source").
    const std::string& source = req.client.empty() ? req.source : req.client;
    // The channel lease this source has just ended, if any: its credit is free for this request already.
    const std::uint64_t ended = req.ends;

    auto lease_id = lease_ids->next();
    if (!lease_id) return http::error_response(500, lease_id.error().message);
    const auto now = clock_type::now();
    std::optional<channel_ref> ch;
    // Order per source: a source whose earlier tuples wait in the queue queues behind them. Other sources
    // go straight to a channel with room.
    {
      std::lock_guard lock(mutex);
      if (ended != 0) cm.release_ended(ended, source);
      if (!qhandler->holds(source)) ch = cm.acquire(*lease_id, now, want, source);
    }
    if (!ch && queue->full()) {
      ++refusals;
      auto res = http::error_response(503, "every channel is busy and the overflow queue is full; retry later");
      res.headers.emplace_back("Retry-After", "1");
      return res;
    }
    if (!req.retry) {
      auto id = tuple_ids->next(count);
      if (!id) return http::error_response(500, id.error().message);
      first = *id;
    }
    const std::uint32_t expires = unix_seconds() + static_cast<std::uint32_t>(opt.lease_ttl.count());
    protocol::lease_grant out;
    if (ch) {
      out.token = mint_token(opt.secret, channel_target(ch->worker, ch->index), *lease_id, first, count, expires);
      out.host = ch->host;
      out.port = ch->port;
      out.worker = ch->worker;
      out.channel = ch->index;
      out.via = parse_transport(ch->transport).value_or(transport::tcp);
      if (out.via == transport::ucx) {
        ++ucx_leases;
        out.ucx_address = ch->ucx_address;
      }
      ++channel_leases;
    } else {
      out.token = mint_token(opt.secret, queue_target, *lease_id, first, count, expires);
      qhandler->expect(*lease_id, source, expires);
      out.queue = true;
      out.host = data_host();
      out.port = queue_rx->port();
      ++queue_leases;
    }
    out.lease_id = *lease_id;
    out.first_id = first;
    out.count = count;
    out.expires_at = expires;
    out.retry_key = retry_key(opt.secret, first, count);
    ++leases;
    tuples_leased += count;
    return http::json_response(protocol::encode(out));
  }

  http::response workers(const http::request& r) {
    const auto now = clock_type::now();
    if (r.path == "/v1/workers") {
      if (r.method == "GET") return http::json_response(status()["workers"].dump());
      if (r.method != "POST") return http::error_response(405, "use POST /v1/workers to register");
      const auto parsed = parse_body(r);
      if (!parsed) return http::error_response(400, parsed.error().message);
      const json& b = *parsed;
      if (!b.is_object() || !b.contains("id") || !b["id"].is_string() || !b.contains("channels") ||
          !b["channels"].is_array())
        return http::error_response(400, R"(registration needs {"id": ..., "host": ..., "channels": [...]})");
      const std::string id = b["id"].get<std::string>();
      if (id.empty() || id.find('/') != std::string::npos)
        return http::error_response(400, "worker id must be non-empty and contain no '/'");
      std::vector<channel_info> channels;
      for (const auto& c : b["channels"]) {
        channel_info info;
        info.index = c.at("index").get<std::uint32_t>();
        info.port = c.at("port").get<std::uint16_t>();
        info.core = c.value("core", -1);
        info.processor = c.value("processor", "");
        info.device = c.value("device", "cpu");
        info.transport = c.value("transport", "tcp");
        info.offers_tcp = true;
        info.offers_ucx = false;
        if (c.contains("transports") && c["transports"].is_array()) {
          info.offers_tcp = false;
          for (const auto& t : c["transports"]) {
            info.offers_tcp = info.offers_tcp || t == "tcp";
            info.offers_ucx = info.offers_ucx || t == "ucx";
          }
        }
        const auto sessions = c.value("sessions", std::uint64_t{1});
        if (sessions == 0 || sessions > max_channel_sessions)
          return http::error_response(400, "\"sessions\" must be 1.." + std::to_string(max_channel_sessions));
        info.sessions = static_cast<std::uint32_t>(sessions);
        info.ucx_port = c.value("ucx_port", std::uint16_t{0});
        info.ucx_address = c.value("ucx_address", std::string());
        if (info.ucx_address.size() > 8192 || !from_hex(info.ucx_address))
          return http::error_response(400, "\"ucx_address\" must be hex, at most 8192 digits");
        if (info.offers_ucx && info.ucx_port == 0)
          return http::error_response(400, "a channel offering \"ucx\" needs its \"ucx_port\"");
        if (info.index != channels.size()) return http::error_response(400, "channel indexes must be 0, 1, 2, ...");
        channels.push_back(std::move(info));
      }
      const std::string host = b.value("host", r.remote.substr(0, r.remote.rfind(':')));
      spdlog::info("worker {} registered from {} with {} channels ({}; transports {})", id, host, channels.size(),
                   channels.empty() ? "" : channels[0].processor + " on " + channels[0].device,
                   channels.empty() ? "" : transports_of(channels[0]).dump());
      {
        std::lock_guard lock(mutex);
        cm.register_worker(id, host, std::move(channels), now, b.value("instance", ""));
      }
      dispatch_cv.notify_all();
      return http::json_response(
          json{{"ok", true}, {"heartbeat_ms", 500}, {"control_port", control_server ? control_server->port() : 0}}
              .dump());
    }
    // /v1/workers/<id>[/<verb>]
    std::string rest = r.path.substr(std::string("/v1/workers/").size());
    const auto slash = rest.find('/');
    const std::string id = rest.substr(0, slash);
    const std::string verb = slash == std::string::npos ? "" : rest.substr(slash + 1);
    if (verb.empty() && r.method == "DELETE") {
      bool removed;
      {
        std::lock_guard lock(mutex);
        removed = cm.remove_worker(id);
      }
      if (!removed) return http::error_response(404, "unknown worker " + id);
      spdlog::info("worker {} deregistered", id);
      return http::json_response(R"({"ok":true})");
    }
    if (r.method != "POST") return http::error_response(405, "use POST");
    const auto parsed = parse_body(r);
    if (!parsed) return http::error_response(400, parsed.error().message);
    const json& b = *parsed;
    if (verb == "heartbeat") {
      std::vector<channel_report> reports;
      for (const auto& c : b.value("channels", json::array())) {
        channel_report rep;
        rep.index = c.at("index").get<std::uint32_t>();
        rep.busy = c.value("state", "idle") == "busy";
        rep.saturated = c.value("saturated", false);
        if (c.contains("active")) {
          const auto& a = c["active"];
          if (!a.is_array() || a.size() > max_channel_sessions * 4)
            return http::error_response(400, "\"active\" must be an array of at most " +
                                                 std::to_string(max_channel_sessions * 4) + " lease ids");
          for (const auto& l : a) rep.active.push_back(l.get<std::uint64_t>());
        }
        rep.lease_id = c.value("lease_id", std::uint64_t{0});
        rep.refused_lease_id = c.value("refused_lease_id", std::uint64_t{0});
        rep.processed = c.value("processed", std::uint64_t{0});
        rep.failed = c.value("failed", std::uint64_t{0});
        rep.bytes = c.value("bytes", std::uint64_t{0});
        rep.restarts = c.value("restarts", std::uint64_t{0});
        rep.processor_restarts = c.value("processor_restarts", std::uint64_t{0});
        rep.refused_connections = c.value("refused_connections", std::uint64_t{0});
        reports.push_back(rep);
      }
      bool known;
      {
        std::lock_guard lock(mutex);
        known = cm.heartbeat(id, b.value("draining", false), reports, now);
      }
      if (!known) return http::error_response(404, "unknown worker " + id + "; register again");
      dispatch_cv.notify_all();
      return http::json_response(R"({"ok":true})");
    }
    if (verb == "free") {
      {
        std::lock_guard lock(mutex);
        cm.release(id, b.value("channel", 0u), b.value("lease_id", std::uint64_t{0}));
      }
      dispatch_cv.notify_all();
      return http::json_response(R"({"ok":true})");
    }
    if (verb == "drain") {
      std::lock_guard lock(mutex);
      cm.set_draining(id);
      spdlog::info("worker {} is draining", id);
      return http::json_response(R"({"ok":true})");
    }
    return http::error_response(404, "no such worker endpoint: " + verb);
  }

  json status() {
    std::lock_guard lock(mutex);
    json ws = json::array();
    std::size_t busy = 0, credits = 0;
    std::uint64_t channel_refused = 0;  // as the workers last reported
    for (const auto& w : cm.workers()) {
      json chans = json::array();
      std::size_t wfree = 0;
      for (const auto& c : w.channels) {
        const bool is_free = !w.draining && c.state == channel_state::free;
        wfree += is_free;
        busy += c.state != channel_state::free;
        credits += c.credits;
        chans.push_back({{"index", c.info.index}, {"port", c.info.port}, {"core", c.info.core},
                         {"processor", c.info.processor}, {"device", c.info.device},
                         {"transport", c.info.transport}, {"transports", transports_of(c.info)},
                         {"ucx_port", c.info.ucx_port}, {"lease_transport", c.lease_transport},
                         {"state", to_string(c.state)}, {"lease_id", c.lease_id},
                         {"sessions", c.sessions}, {"max_sessions", c.info.sessions}, {"credits", c.credits},
                         {"saturated", c.last_report.saturated},
                         {"processed", c.last_report.processed}, {"failed", c.last_report.failed},
                         {"bytes", c.last_report.bytes}, {"restarts", c.last_report.restarts},
                         {"processor_restarts", c.last_report.processor_restarts},
                         {"refused_connections", c.last_report.refused_connections}});
        channel_refused += c.last_report.refused_connections;
      }
      ws.push_back({{"id", w.id}, {"host", w.host}, {"draining", w.draining}, {"free", wfree},
                    {"busy", w.channels.size() - wfree}, {"channels", std::move(chans)}});
    }
    const auto q = queue->stats();
    const auto t = cm.total();
    double tps = 0, bps = 0;
    if (samples.size() >= 2) {
      const auto& a = samples.front();
      const auto& b = samples.back();
      const double dt = std::chrono::duration<double>(b.at - a.at).count();
      if (dt > 0) {
        tps = static_cast<double>(b.processed - a.processed) / dt;
        bps = static_cast<double>(b.bytes - a.bytes) / dt;
      }
    }
    return {
        {"version", hio::version},
        {"repository", opt.repository_url},
        {"control_port", control_server ? control_server->port() : 0},
        {"uptime_s", std::chrono::duration<double>(clock_type::now() - started).count()},
        {"workers", std::move(ws)},
        {"channels", {{"total", cm.total_channels()}, {"free", cm.free_channels()}, {"busy", busy}, {"credits", credits}}},
        {"queue",
         {{"length", q.length}, {"bytes", q.bytes}, {"memory_bytes", q.memory_bytes}, {"in_flight", q.in_flight},
          {"enqueued_total", q.enqueued_total}, {"dispatched_total", q.completed_total},
          {"corrupt_total", q.corrupt_total}, {"read_errors", q.read_errors}, {"syncs", q.syncs},
          {"port", queue_rx ? queue_rx->port() : 0}}},
        {"counters",
         {{"leases", leases.load()}, {"channel_leases", channel_leases.load()}, {"queue_leases", queue_leases.load()},
          {"tuples_leased", tuples_leased.load()}, {"ucx_leases", ucx_leases.load()}, {"lease_refusals", refusals.load()},
          {"queued", q.enqueued_total}, {"dispatch_failures", dispatch_failures.load()},
          {"processed", t.processed}, {"failed", t.failed}, {"bytes", t.bytes}, {"channel_restarts", t.restarts},
          {"bad_requests", bad_requests.load()}, {"retry_refusals", retry_refusals.load()},
          {"refused_connections", refused_connections()}, {"channel_refused_connections", channel_refused}}},
        {"rates", {{"tuples_per_s", tps}, {"bytes_per_s", bps}}},
        {"scaling", scaling_status()},
    };
  }

  // Called with `mutex` held.
  json scaling_status() const {
    if (!opt.autoscale) return {{"enabled", false}};
    return {{"enabled", true},
            {"provisioner", prov ? prov->name() : ""},
            {"min_workers", opt.scaling.min_workers},
            {"max_workers", opt.scaling.max_workers},
            {"pending_workers", pending_workers.size()},
            {"phase", last_decision.phase},
            {"reason", last_decision.reason},
            {"decisions", json(std::vector<json>(scaling_log.begin(), scaling_log.end()))}};
  }

  void scaling_loop() {
    for (;;) {
      {
        std::unique_lock lock(mutex);
        if (dispatch_cv.wait_for(lock, opt.scaling_interval, [&] { return stopping; })) return;
      }
      scale_once();
    }
  }

  void scale_once() {
    const auto now = clock_type::now();
    for (const auto& id : prov->poll()) {
      spdlog::warn("scaling: worker {} exited without being asked to", id);
      std::lock_guard lock(mutex);
      pending_workers.erase(id);  // one that never registered is no longer on its way
      record_decision(last_decision.phase, "lost", 1, "worker " + id + " ended without being asked to",
                      prov->name() + " reported it");
    }
    load_sample sample;
    std::string victim;
    {
      std::lock_guard lock(mutex);
      std::vector<scale_in_candidate> candidates;
      for (const auto& w : cm.workers()) {
        pending_workers.erase(w.id);
        if (w.draining) continue;
        ++sample.workers;
        std::size_t free = 0;
        for (const auto& c : w.channels) {
          free += c.state == channel_state::free;
          sample.saturated_channels += c.last_report.saturated;
        }
        sample.channels += w.channels.size();
        sample.free_channels += free;
        candidates.push_back({w.id, free});
      }
      victim = prov->choose_scale_in(candidates);
      std::erase_if(pending_workers, [&](const auto& kv) { return now - kv.second > 60s; });
      sample.pending_workers = pending_workers.size();
      sample.at = now;
      sample.queue_length = queue->stats().length;
      sample.processed = cm.total().processed;
    }
    auto d = scaler->decide(sample);
    std::string acted;
    if (d.action == scale_action::scale_out) {
      auto ids = prov->start_workers(d.workers);
      if (!ids) {
        acted = "failed: " + ids.error().message;
      } else {
        std::lock_guard lock(mutex);
        for (const auto& id : *ids) pending_workers[id] = now;
        acted = "started " + std::to_string(ids->size());
      }
    } else if (d.action == scale_action::scale_in) {
      if (victim.empty()) {
        acted = "no worker this master started is left to stop";
      } else {
        {
          std::lock_guard lock(mutex);
          cm.set_draining(victim);
        }
        auto r = prov->stop_worker(victim);
        acted = r ? "draining " + victim : "failed: " + r.error().message;
      }
    }
    std::lock_guard lock(mutex);
    last_decision = d;
    if (d.action != scale_action::hold) {
      spdlog::info("scaling: {} ({})", d.reason, acted);
      record_decision(d.phase, std::string(to_string(d.action)), d.workers, d.reason, acted);
    }
  }

  // A scaling decision that acted (or a worker lost): into /v1/status (the last 50) and the history the
  // dashboard plots. Called with `mutex` held.
  void record_decision(int phase, const std::string& action, int workers, const std::string& reason,
                       const std::string& result) {
    const auto at = unix_ms();
    scaling_log.push_back({{"at_unix_ms", at}, {"phase", phase}, {"action", action}, {"workers", workers},
                           {"reason", reason}, {"result", result}});
    while (scaling_log.size() > 50) scaling_log.pop_front();
    hist.add_event({at, phase, action, static_cast<std::uint32_t>(workers), reason, result});
  }

  std::string metrics() {
    const json s = status();
    std::string out;
    auto line = [&](const char* name, const char* type, const char* help, const json& v) {
      out += std::string("# HELP ") + name + " " + help + "\n# TYPE " + name + " " + type + "\n" + name + " " +
             v.dump() + "\n";
    };
    line("hio_workers", "gauge", "Registered workers.", s["workers"].size());
    line("hio_channels", "gauge", "Channels of all workers.", s["channels"]["total"]);
    line("hio_channels_free", "gauge", "Channels without any session.", s["channels"]["free"]);
    line("hio_channel_credits", "gauge", "Sessions sources may still be given, over all channels.",
         s["channels"]["credits"]);
    line("hio_queue_length", "gauge", "Tuples in the overflow queue.", s["queue"]["length"]);
    line("hio_queue_bytes", "gauge", "Payload bytes in the overflow queue.", s["queue"]["bytes"]);
    line("hio_queue_memory_bytes", "gauge", "Queued payload bytes cached in memory.", s["queue"]["memory_bytes"]);
    line("hio_leases_total", "counter", "Leases handed out.", s["counters"]["leases"]);
    line("hio_tuples_leased_total", "counter", "Tuple ids handed out in leases.", s["counters"]["tuples_leased"]);
    line("hio_lease_refusals_total", "counter", "Lease requests refused with 503.", s["counters"]["lease_refusals"]);
    line("hio_refused_connections_total", "counter",
         "Connections closed at accept (REST and queue port): over a per-peer or per-port limit.",
         s["counters"]["refused_connections"]);
    line("hio_channel_refused_connections_total", "counter",
         "Connections the registered workers' channel ports closed at accept, as last reported.",
         s["counters"]["channel_refused_connections"]);
    line("hio_retry_refusals_total", "counter", "Retry leases refused (403): no key, or not the key of those ids.",
         s["counters"]["retry_refusals"]);
    line("hio_tuples_queued_total", "counter", "Tuples accepted into the overflow queue.", s["counters"]["queued"]);
    line("hio_tuples_processed_total", "counter", "Tuples processed and stored by channels.", s["counters"]["processed"]);
    line("hio_tuples_failed_total", "counter", "Tuples whose processing failed.", s["counters"]["failed"]);
    line("hio_bytes_processed_total", "counter", "Tuple bytes processed by channels.", s["counters"]["bytes"]);
    line("hio_channel_restarts_total", "counter", "Channels restarted after a failure.", s["counters"]["channel_restarts"]);
    line("hio_tuples_per_second", "gauge", "Processed tuples per second over the last seconds.", s["rates"]["tuples_per_s"]);
    line("hio_bytes_per_second", "gauge", "Processed bytes per second over the last seconds.", s["rates"]["bytes_per_s"]);
    return out;
  }

  // ---- the dispatcher: queue → free channel ----

  void dispatch_loop() {
    for (;;) {
      std::optional<channel_ref> ch;
      std::uint64_t lease_id = 0;
      std::size_t share = 1;
      {
        std::unique_lock lock(mutex);
        dispatch_cv.wait_for(lock, 200ms, [&] { return stopping || (queue->has_available() && cm.credits(true) > 0); });
        if (stopping) return;
        if (!queue->has_available() || cm.credits(true) == 0) continue;
        auto id = lease_ids->next();
        if (!id) continue;
        lease_id = *id;
        share = dispatch_share(queue->stats(), std::min(cm.credits(true), opt.dispatch_threads),
                               opt.dispatch_batch_tuples);
        ch = cm.acquire(lease_id, clock_type::now());
      }
      if (!ch) continue;
      auto batch = queue->take(share, opt.dispatch_batch_bytes);
      if (batch.empty()) {
        // Taken by another dispatcher meanwhile, or the queue could not read its oldest tuples just now
        // (they stay queued): pause rather than spin on leases until it can.
        std::unique_lock lock(mutex);
        cm.release(ch->worker, ch->index, lease_id);
        dispatch_cv.wait_for(lock, 200ms, [&] { return stopping; });
        continue;
      }
      dispatch(*ch, lease_id, std::move(batch));
      {
        std::lock_guard lock(mutex);
        cm.release(ch->worker, ch->index, lease_id);
      }
      dispatch_cv.notify_all();
    }
  }

  void dispatch(const channel_ref& ch, std::uint64_t lease_id, std::vector<queued_tuple> batch) {
    std::sort(batch.begin(), batch.end(), [](const auto& a, const auto& b) { return a.tuple_id < b.tuple_id; });
    // A lease covers a contiguous id range: keep only what fits in 2^32 ids of the first.
    while (batch.back().tuple_id - batch.front().tuple_id >= 0xffffffffull) {
      queue->give_back({batch.back().tuple_id});
      batch.pop_back();
    }
    const std::uint64_t first = batch.front().tuple_id;
    const auto count = static_cast<std::uint32_t>(batch.back().tuple_id - first + 1);
    const auto token = mint_token(opt.secret, channel_target(ch.worker, ch.index), lease_id, first, count,
                                  unix_seconds() + static_cast<std::uint32_t>(opt.lease_ttl.count()));
    std::vector<std::uint64_t> done;
    std::string failure;
    if (auto conn = connection::open(ch.host, ch.port); !conn) {
      failure = conn.error().message;
    } else {
      // The whole batch and its END in as few sendmsg calls as the kernel takes.
      std::vector<outgoing_frame> frames;
      frames.reserve(batch.size() + 1);
      for (const auto& t : batch) {
        wire::frame_header h;
        h.tuple_id = t.tuple_id;
        h.token = token;
        h.xxh3 = t.xxh3;
        frames.push_back({h, t.metadata, *t.payload});
      }
      frames.push_back({wire::make_end(), {}, {}});
      if (auto s = conn->send_batch(frames); !s) failure = s.error().message;
      for (std::size_t n = 0; n < batch.size();) {
        auto a = conn->receive(120s);
        if (!a) {
          if (failure.empty()) failure = a.error().message;
          break;
        }
        if (a->header.type == wire::frame_type::ack) {
          done.push_back(a->header.tuple_id);
          ++n;
        } else if (a->header.type == wire::frame_type::error) {
          const auto code = static_cast<wire::error_code>(a->header.flags);
          failure = std::string(wire::to_string(code)) + ": " + a->text;
          break;
        } else {
          break;
        }
      }
      if (done.size() == batch.size()) (void)conn->receive(5s);  // the channel's END
    }
    if (!done.empty()) {
      if (auto r = queue->complete(done); !r) spdlog::error("queue: {}", r.error().message);
      dispatched += done.size();
    }
    if (done.size() < batch.size()) {
      ++dispatch_failures;
      std::vector<std::uint64_t> back;
      for (const auto& t : batch)
        if (std::find(done.begin(), done.end(), t.tuple_id) == done.end()) back.push_back(t.tuple_id);
      queue->give_back(back);
      spdlog::warn("queue: dispatch of {} tuples to {}/{} stopped after {}: {}; they stay queued", batch.size(),
                   ch.worker, ch.index, done.size(), failure.empty() ? "channel closed the session" : failure);
      std::this_thread::sleep_for(100ms);  // do not spin on a channel that is going away
    }
  }

  // Called with `mutex` held.
  void sample_history(const totals& t) {
    history_sample h;
    h.at_ms = unix_ms();
    if (hist.size() > 0 && h.at_ms - hist.last_at_ms() < hist.config().interval.count()) return;
    for (const auto& w : cm.workers()) {
      worker_occupancy o{w.id, 0, static_cast<std::uint32_t>(w.channels.size())};
      for (const auto& c : w.channels) o.busy += c.state != channel_state::free;
      h.occupancy.push_back(std::move(o));
    }
    h.workers = static_cast<std::uint32_t>(h.occupancy.size());
    h.channels_total = static_cast<std::uint32_t>(cm.total_channels());
    h.channels_free = static_cast<std::uint32_t>(cm.free_channels());
    const auto q = queue->stats();
    h.queue_length = q.length;
    h.queue_bytes = q.bytes;
    h.tuples_leased = tuples_leased.load();
    h.processed = t.processed;
    h.failed = t.failed;
    h.bytes = t.bytes;
    h.phase = opt.autoscale ? last_decision.phase : 0;
    hist.add(std::move(h));
  }

  void maintenance_loop() {
    while (true) {
      {
        std::unique_lock lock(mutex);
        dispatch_cv.wait_for(lock, 250ms, [&] { return stopping; });
        if (stopping) return;
        const auto now = clock_type::now();
        for (const auto& id : cm.expire(now))
          spdlog::warn("worker {} missed its heartbeats for {} ms; removed with its channels", id,
                       opt.worker_timeout.count());
        const auto t = cm.total();
        samples.push_back({now, t.processed, t.bytes});
        while (samples.size() > 2 && now - samples.front().at > 5s) samples.pop_front();
        sample_history(t);
      }
      dispatch_cv.notify_all();
    }
  }
};

result<std::unique_ptr<master>> master::start(options o) {
  if (o.secret.empty()) return make_error(0, "the master needs a cluster secret (--secret or HIO_SECRET)");
  auto p = std::make_unique<impl>(std::move(o));
  std::error_code ec;
  std::filesystem::create_directories(p->opt.data_dir, ec);
  if (ec) return make_error(0, "cannot create " + p->opt.data_dir.string() + ": " + ec.message());
  auto tuple_ids = id_generator::open(p->opt.data_dir / "tuple-ids");
  if (!tuple_ids) return tuple_ids.error();
  p->tuple_ids = std::move(*tuple_ids);
  auto lease_ids = id_generator::open(p->opt.data_dir / "lease-ids");
  if (!lease_ids) return lease_ids.error();
  p->lease_ids = std::move(*lease_ids);
  auto q = overflow_queue::open({p->opt.data_dir / "queue", p->opt.queue_memory_bytes, p->opt.queue_max_bytes});
  if (!q) return q.error();
  p->queue = std::move(*q);
  p->qhandler = std::make_unique<queue_handler>(*p->queue);

  p->qhandler->on_queued = [raw = p.get()] { raw->dispatch_cv.notify_all(); };

  receiver_options ro;
  ro.host = p->opt.host;
  ro.port = p->opt.data_port;
  ro.secret = p->opt.secret;
  ro.target = std::string(queue_target);
  ro.max_tuple_bytes = p->opt.max_tuple_bytes;
  ro.connections = p->opt.connections;
  auto rx = receiver::start(p->queue_io, ro, *p->qhandler);
  if (!rx) return rx.error();
  p->queue_rx = std::move(*rx);

  http::server_options so;
  so.host = p->opt.host;
  so.port = p->opt.port;
  // A lease body is a few hundred bytes, a registration or heartbeat lists a worker's channels; nothing
  // the master takes is large, so a body past these is refused before it is read.
  so.max_body_bytes = 1 << 20;
  so.connections = p->opt.connections;
  so.body_limit = [](std::string_view method, std::string_view path) -> std::uint64_t {
    return method == "POST" && path == "/v1/streams" ? 16 << 10 : 1 << 20;
  };
  auto srv = http::server::start(p->http_io, so, [raw = p.get()](const http::request& r) { return raw->handle(r); });
  if (!srv) return srv.error();
  p->http_server = std::move(*srv);
  http::server_options co = so;
  co.port = p->opt.control_port;
  auto control = http::server::start(p->control_io, co,
                                     [raw = p.get()](const http::request& r) { return raw->handle_control(r); });
  if (!control) return control.error();
  p->control_server = std::move(*control);
  if (p->opt.workers.repository_url.empty()) p->opt.workers.repository_url = p->opt.repository_url;
  if (p->opt.autoscale) {
    if (p->opt.workers.master_url.empty())
      p->opt.workers.master_url = "http://" + p->data_host() + ":" + std::to_string(p->http_server->port());
    auto prov = make_provisioner(p->opt.provisioner, p->opt.workers);
    if (!prov) return prov.error();
    p->prov = std::move(*prov);
    p->scaler = std::make_unique<autoscaler>(p->opt.scaling);
  }

  auto* raw = p.get();
  for (int i = 0; i < std::max(1, raw->opt.http_threads); ++i)
    raw->threads.emplace_back([raw] { raw->http_io.run(); });
  raw->threads.emplace_back([raw] { raw->queue_io.run(); });
  raw->threads.emplace_back([raw] { raw->control_io.run(); });
  for (std::size_t i = 0; i < std::max<std::size_t>(1, raw->opt.dispatch_threads); ++i)
    raw->threads.emplace_back([raw] { raw->dispatch_loop(); });
  raw->threads.emplace_back([raw] { raw->maintenance_loop(); });
  if (raw->opt.autoscale) raw->scaling_thread = std::thread([raw] { raw->scaling_loop(); });
  return std::unique_ptr<master>(new master(std::move(p)));
}

master::master(std::unique_ptr<impl> p) : impl_(std::move(p)) {}
master::~master() { stop(); }

std::uint16_t master::port() const { return impl_->http_server->port(); }
std::uint16_t master::data_port() const { return impl_->queue_rx->port(); }
std::uint16_t master::control_port() const { return impl_->control_server->port(); }
http::response master::handle(const http::request& r) { return impl_->handle(r); }

void master::stop() {
  auto& d = *impl_;
  {
    std::lock_guard lock(d.mutex);
    if (d.stopping) return;
    d.stopping = true;
  }
  d.dispatch_cv.notify_all();
  if (d.scaling_thread.joinable()) d.scaling_thread.join();
  d.prov.reset();  // local workers drain and exit while the master still answers them
  d.http_server->stop();
  d.control_server->stop();
  d.queue_rx->stop();
  d.http_io.stop();
  d.control_io.stop();
  d.queue_io.stop();
  for (auto& t : d.threads) t.join();
  d.qhandler->join();  // its syncs answer through queue_io, which must outlive them
}

}  // namespace hio::master
