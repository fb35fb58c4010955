#pragma once
// The worker's controller: finds the cores (hwloc), starts one pinned channel per core (or as many as
// asked), registers the worker with the master, heartbeats, tells the master when a channel becomes
// free, supervises the channels, and drains on request. Owns the topology, the channels and three
// threads (heartbeat, free-channel notifier, and the caller's in run()). Thread-safe.

#include <hio/common/connection_limits.hpp>
#include <hio/common/error.hpp>
#include <hio/common/wire.hpp>
#include <hio/worker/channel.hpp>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace hio::worker {

struct controller_options {
  std::string master_url;                                  // "http://host:port" of the master
  std::string repository_url;                              // "http://host:port" of the repository
  std::string secret;                                      // cluster secret: lease tokens and Bearer auth
  std::string worker_id;                                   // unique name, e.g. "<hostname>-<pid>"
  std::string host = "127.0.0.1";                          // address channels listen on and advertise
  std::uint32_t channels = 0;                              // 0: one per core
  std::uint32_t channel_sessions = 16;                     // sessions each channel serves at once
  std::string processor = "noop";                          // processor spec, see make_processor()
  std::chrono::milliseconds process_timeout{15000};        // exec/plugin: deadline for one tuple
  std::uint32_t process_retries = 2;                       // exec/plugin: more attempts after a crash/timeout
  std::uint64_t max_tuple_bytes = wire::default_max_tuple_bytes;  // larger tuples are refused
  std::chrono::milliseconds heartbeat_interval{500};       // between heartbeats (and registration retries)
  std::chrono::seconds drain_timeout{60};                  // how long a drain waits for active sessions
  std::uint16_t port_base = 0;                             // 0: any free ports; else channel i on port_base+i
  std::chrono::milliseconds repository_retry_budget{30000};  // how long a channel retries storing a batch
  bool pin_threads = true;                                 // pin each channel's thread to its core
  // What the channels offer sources: "tcp", "ucx", "both", or "auto" (both when UCX starts, else tcp with
  // a warning). TCP always listens too: the master's queue dispatcher sends over it.
  std::string transport = "auto";
  std::uint16_t ucx_port_base = 0;                         // 0: any free ports; else channel i's UCX on P+i
  connection_limit_options connections;                    // each channel's TCP port: per peer address and in all
};

class controller {
 public:
  // Starts the channels and the heartbeat and notifier threads; registration then proceeds in the
  // background until the master answers. Error for a bad processor spec, an unloadable topology or a
  // port that cannot be bound (the channels started so far are stopped again).
  static result<std::unique_ptr<controller>> start(controller_options options);
  ~controller();  // stop() without draining
  controller(const controller&) = delete;
  controller& operator=(const controller&) = delete;

  // Asks run() to drain. Safe from any thread (not from a signal handler).
  void request_drain();
  // Asks run() to return soon: a drain in progress stops waiting for sessions.
  void request_stop();
  // Blocks until request_drain() or request_stop(), then drains: tells the master (POST .../drain),
  // refuses new sessions, waits up to drain_timeout for the active ones, deregisters (DELETE), stops
  // the channels. Errors only describe what could not be done (e.g. the master unreachable); the
  // worker is stopped either way.
  result<void> run();
  // Stops the channels and threads at once (active sessions end unclean). Idempotent.
  void stop();

  const std::string& worker_id() const noexcept { return options_.worker_id; }
  std::size_t cores() const noexcept { return topology_->cores(); }
  std::vector<channel_status> status() const;
  bool registered() const noexcept { return registered_.load(); }
  bool draining() const noexcept { return draining_.load(); }

 private:
  explicit controller(controller_options options);
  void heartbeat_loop();
  void notifier_loop();
  void notify_free(std::uint32_t channel, std::uint64_t lease_id, bool clean);
  void stop_threads();
  // Waits up to `d`; false when the threads are to stop (or, for run(), stop was requested) meanwhile.
  bool pause_thread(std::chrono::milliseconds d);
  bool pause_run(std::chrono::milliseconds d);

  controller_options options_;
  std::unique_ptr<topology> topology_;
  std::vector<std::unique_ptr<channel>> channels_;  // fixed after start()

  std::atomic<bool> registered_{false};
  std::atomic<bool> draining_{false};

  mutable std::mutex mutex_;
  std::condition_variable wake_;             // drain/stop requests, heartbeat pauses
  bool drain_requested_ = false;
  bool stop_requested_ = false;              // run() must return
  bool threads_stopping_ = false;            // heartbeat and notifier threads must end
  // One slot per channel: the latest free event not yet sent (a newer one replaces an older one, so
  // the queue is bounded by the number of channels and loses nothing the master needs).
  struct free_event {
    std::uint64_t lease_id = 0;
    bool clean = false;
  };
  std::vector<std::optional<free_event>> pending_free_;
  std::condition_variable free_ready_;

  std::thread heartbeat_thread_;
  std::thread notifier_thread_;
};

}  // namespace hio::worker
