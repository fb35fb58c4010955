#include <hio/worker/controller.hpp>
#include <hio/common/token.hpp>
#include <hio/common/transport.hpp>

#include "master_protocol.hpp"

#include <hio/common/http.hpp>
#include <hio/common/json.hpp>
#include <hio/common/log.hpp>

#include <algorithm>
#include <utility>

namespace hio::worker {
namespace {

bool ok(const result<http::response>& r) { return r && r->status >= 200 && r->status < 300; }

std::string describe(const result<http::response>& r) {
  if (!r) return r.error().message;
  return "HTTP " + std::to_string(r->status) + " " + r->body.substr(0, 200);
}

}  // namespace

controller::controller(controller_options options) : options_(std::move(options)) {}

result<std::unique_ptr<controller>> controller::start(controller_options options) {
  auto topo = topology::load();
  if (!topo) return topo.error();
  const std::size_t cores = (*topo)->cores();
  const std::size_t n = options.channels != 0 ? options.channels : cores;
  if (options.port_base != 0 && options.port_base + n - 1 > 65535) {
    return make_error(400, "--port-base " + std::to_string(options.port_base) + " leaves no room for " +
                               std::to_string(n) + " channels below port 65536");
  }
  if (options.transport != "tcp" && options.transport != "ucx" && options.transport != "both" &&
      options.transport != "auto")
    return make_error(400, "--transport must be tcp, ucx, both or auto, not '" + options.transport + "'");
  if ((options.transport == "ucx" || options.transport == "both") && !ucx_compiled_in())
    return make_error(400, "--transport " + options.transport +
                               " needs UCX, but this worker was built without it (install libucx-dev and rebuild "
                               "with HIO_WITH_UCX=ON), or use --transport tcp");
  bool with_ucx = options.transport != "tcp" && ucx_compiled_in();
  std::unique_ptr<controller> c(new controller(std::move(options)));
  c->topology_ = std::move(*topo);
  c->pending_free_.resize(n);
  const auto& o = c->options_;
  for (std::size_t i = 0; i < n; ++i) {
    processor_options po;
    po.process_timeout = o.process_timeout;
    po.process_retries = o.process_retries;
    po.worker_id = o.worker_id;
    po.channel = static_cast<std::uint32_t>(i);
    auto p = make_processor(o.processor, po);
    if (!p) return p.error();
    repository_sink_options so;
    so.url = o.repository_url;
    so.secret = o.secret;
    so.retry_budget = o.repository_retry_budget;
    channel_options co;
    co.worker_id = o.worker_id;
    co.index = static_cast<std::uint32_t>(i);
    co.host = o.host;
    co.port = o.port_base != 0 ? static_cast<std::uint16_t>(o.port_base + i) : std::uint16_t{0};
    co.core = static_cast<int>(i % cores);
    co.secret = o.secret;
    co.max_tuple_bytes = o.max_tuple_bytes;
    co.connections = o.connections;
    co.sessions = o.channel_sessions;
    co.ucx = with_ucx;
    co.ucx_port = o.ucx_port_base != 0 ? static_cast<std::uint16_t>(o.ucx_port_base + i) : std::uint16_t{0};
    auto ch = channel::start(
        std::move(co), std::move(*p), make_repository_sink(std::move(so)),
        [raw = c.get()](std::uint32_t channel, std::uint64_t lease_id, bool clean) {
          raw->notify_free(channel, lease_id, clean);
        },
        o.pin_threads ? c->topology_.get() : nullptr);
    if (!ch && with_ucx && o.transport == "auto") {
      // UCX is wanted only where it works: say why once, and offer TCP alone.
      spdlog::warn("UCX transport unavailable ({}); channels offer TCP only", ch.error().message);
      with_ucx = false;
      --i;
      continue;
    }
    if (!ch) return ch.error();  // ~controller stops the channels started so far
    spdlog::info("channel {} port {} core {} processor {} device {} transports {}", i, (*ch)->port(), (*ch)->core(),
                 (*ch)->processor_name(), (*ch)->device(),
                 (*ch)->ucx_port() != 0 ? "tcp+ucx (ucx port " + std::to_string((*ch)->ucx_port()) + ")" : "tcp");
    c->channels_.push_back(std::move(*ch));
  }
  c->notifier_thread_ = std::thread([raw = c.get()] { raw->notifier_loop(); });
  c->heartbeat_thread_ = std::thread([raw = c.get()] { raw->heartbeat_loop(); });
  return c;
}

controller::~controller() { stop(); }

std::vector<channel_status> controller::status() const {
  std::vector<channel_status> s;
  s.reserve(channels_.size());
  for (const auto& ch : channels_) s.push_back(ch->status());
  return s;
}

void controller::request_drain() {
  {
    std::lock_guard lock(mutex_);
    drain_requested_ = true;
  }
  wake_.notify_all();
}

void controller::request_stop() {
  {
    std::lock_guard lock(mutex_);
    stop_requested_ = true;
  }
  wake_.notify_all();
}

bool controller::pause_thread(std::chrono::milliseconds d) {
  std::unique_lock lock(mutex_);
  return !wake_.wait_for(lock, d, [this] { return threads_stopping_; });
}

bool controller::pause_run(std::chrono::milliseconds d) {
  std::unique_lock lock(mutex_);
  return !wake_.wait_for(lock, d, [this] { return stop_requested_; });
}

void controller::notify_free(std::uint32_t channel, std::uint64_t lease_id, bool clean) {
  {
    std::lock_guard lock(mutex_);
    if (channel >= pending_free_.size()) return;
    pending_free_[channel] = free_event{lease_id, clean};
  }
  free_ready_.notify_one();
}

void controller::notifier_loop() {
  http::client master(options_.master_url, options_.secret, std::chrono::seconds(2));
  std::vector<std::pair<std::uint32_t, free_event>> batch;
  for (;;) {
    {
      std::unique_lock lock(mutex_);
      free_ready_.wait(lock, [this] {
        return threads_stopping_ || std::any_of(pending_free_.begin(), pending_free_.end(),
                                                [](const auto& e) { return e.has_value(); });
      });
      if (threads_stopping_) return;  // what is left, the master learns from the heartbeat or DELETE
      batch.clear();
      for (std::size_t i = 0; i < pending_free_.size(); ++i) {
        if (pending_free_[i]) batch.emplace_back(static_cast<std::uint32_t>(i), *pending_free_[i]);
        pending_free_[i].reset();
      }
    }
    for (const auto& [index, e] : batch) {
      auto r = master.post(detail::worker_path(options_.worker_id, "/free"),
                           detail::free_body(index, e.lease_id, e.clean));
      if (!ok(r)) spdlog::debug("channel {}: telling the master it is free failed: {}", index, describe(r));
    }
  }
}

void controller::heartbeat_loop() {
  const auto interval = options_.heartbeat_interval;
  const auto timeout = std::max<std::chrono::milliseconds>(std::chrono::seconds(2), interval * 2);
  http::client master(options_.master_url, options_.secret, timeout);
  // Heartbeats go to the master's control port, named in its registration answer and served on a thread
  // of its own there, so no public request can hold them up; to the REST port while it names none.
  std::optional<http::client> control;
  std::uint16_t control_port = 0;
  std::vector<std::uint16_t> registered_ports;
  std::vector<std::string> registered_addresses;
  bool failing = false;  // log a failure once, and the recovery
  const auto report = [&](bool success, const std::string& what) {
    if (!success && !failing) spdlog::warn("master {}: {}; retrying", options_.master_url, what);
    if (success && failing) spdlog::info("master {} reachable again", options_.master_url);
    failing = !success;
  };
  for (;;) {
    {
      std::lock_guard lock(mutex_);
      if (threads_stopping_) return;
    }
    std::vector<std::uint16_t> ports;
    std::vector<std::string> addresses;
    for (const auto& ch : channels_) {
      ports.push_back(ch->port());
      ports.push_back(ch->ucx_port());
      addresses.push_back(ch->ucx_address());
    }
    if (registered_.load() && (ports != registered_ports || addresses != registered_addresses)) {
      spdlog::info("a channel's port or UCX address changed; registering again");
      registered_.store(false);
    }
    if (!registered_.load()) {
      std::vector<detail::channel_description> list;
      for (const auto& ch : channels_) {
        detail::channel_description d{ch->index(), ch->port(), ch->core(), ch->processor_name(), ch->device()};
        d.sessions = ch->sessions();
        if (ch->ucx_port() != 0) {
          d.ucx_port = ch->ucx_port();
          d.ucx_address = ch->ucx_address();
          d.transport = "ucx";
          d.transports = options_.transport == "ucx" ? std::vector<std::string>{"ucx"}
                                                     : std::vector<std::string>{"tcp", "ucx"};
        }
        list.push_back(std::move(d));
      }
      static const std::string instance = random_secret(8);
      auto r = master.post("/v1/workers", detail::register_body(options_.worker_id, instance, options_.host, list));
      report(ok(r), "registering failed: " + describe(r));
      if (ok(r)) {
        registered_.store(true);
        registered_ports = ports;
        registered_addresses = addresses;
        const auto answer = parse_json_or_discarded(r->body);
        const auto port = answer.is_object() && answer.contains("control_port") &&
                                  answer["control_port"].is_number_unsigned() &&
                                  answer["control_port"].get<std::uint64_t>() <= 65535
                              ? static_cast<std::uint16_t>(answer["control_port"].get<std::uint64_t>())
                              : std::uint16_t{0};
        const auto master_host = http::parse_url(options_.master_url);
        if (port != 0 && master_host && port != control_port) {
          control.emplace("http://" + master_host->host + ":" + std::to_string(port), options_.secret, timeout);
          control_port = port;
          spdlog::info("heartbeats go to the master's control port {}", port);
        }
        spdlog::info("registered with master {} as {} ({} channels)", options_.master_url, options_.worker_id,
                     channels_.size());
      }
    } else {
      const auto path = detail::worker_path(options_.worker_id, "/heartbeat");
      const auto body = detail::heartbeat_body(draining_.load(), status());
      auto r = control ? control->post(path, body) : master.post(path, body);
      // The control port is gone (the master restarted?): the REST port, until the worker registers again.
      if (control && !r) {
        spdlog::info("the master's control port {} does not answer ({}); heartbeats go to {}", control_port,
                     r.error().message, options_.master_url);
        control.reset();
        control_port = 0;
        r = master.post(path, body);
      }
      if (r && r->status == 404) {
        spdlog::warn("master {} does not know this worker (it restarted?); registering again",
                     options_.master_url);
        registered_.store(false);
        continue;
      }
      report(ok(r), "heartbeat failed: " + describe(r));
    }
    if (!pause_thread(interval)) return;
  }
}

void controller::stop_threads() {
  {
    std::lock_guard lock(mutex_);
    threads_stopping_ = true;
  }
  wake_.notify_all();
  free_ready_.notify_all();
  if (heartbeat_thread_.joinable()) heartbeat_thread_.join();
  if (notifier_thread_.joinable()) notifier_thread_.join();
}

void controller::stop() {
  {
    std::lock_guard lock(mutex_);
    stop_requested_ = true;
  }
  stop_threads();
  for (auto& ch : channels_) ch->stop();
}

result<void> controller::run() {
  bool drain = false;
  {
    std::unique_lock lock(mutex_);
    wake_.wait(lock, [this] { return drain_requested_ || stop_requested_; });
    drain = drain_requested_ && !stop_requested_;
  }
  if (!drain) {
    stop();
    return {};
  }
  spdlog::info("draining: refusing new sessions, waiting up to {} s for active ones",
               options_.drain_timeout.count());
  std::string problems;
  draining_.store(true);
  for (auto& ch : channels_) ch->set_draining();
  http::client master(options_.master_url, options_.secret, std::chrono::seconds(5));
  if (auto r = master.post(detail::worker_path(options_.worker_id, "/drain"), "{}"); !ok(r)) {
    problems += "telling the master about the drain failed: " + describe(r) + "; ";
  }
  const auto deadline = std::chrono::steady_clock::now() + options_.drain_timeout;
  for (;;) {
    const auto active = std::count_if(channels_.begin(), channels_.end(),
                                      [](const auto& ch) { return ch->status().busy; });
    if (active == 0) break;
    if (std::chrono::steady_clock::now() >= deadline) {
      problems += std::to_string(active) + " sessions still active after the drain timeout; ";
      break;
    }
    if (!pause_run(std::chrono::milliseconds(50))) {
      problems += "stopped before the active sessions finished; ";
      break;
    }
  }
  stop_threads();  // no heartbeat may register the worker again after the DELETE
  if (auto r = master.request("DELETE", detail::worker_path(options_.worker_id)); !ok(r)) {
    problems += "deregistering failed: " + describe(r) + "; ";
  }
  stop();
  if (!problems.empty()) {
    problems.resize(problems.size() - 2);
    spdlog::warn("drain: {}", problems);
    return make_error(0, problems);
  }
  spdlog::info("drained and deregistered");
  return {};
}

}  // namespace hio::worker
