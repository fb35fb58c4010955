#pragma once
// The master: leases (REST), the channel manager, the durable overflow queue with its data port and
// dispatcher, worker registration, status, metrics, the history and the dashboard. Owns its threads;
// thread-safe.

#include <hio/common/error.hpp>
#include <hio/common/http.hpp>
#include <hio/master/autoscaler.hpp>
#include <hio/master/provisioner.hpp>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>

namespace hio::master {

struct options {
  std::string host = "127.0.0.1";                 // REST address
  std::uint16_t port = 8080;                      // REST port (0: any free port)
  std::string advertise_host;                     // host sources reach the queue port on ("" = host)
  std::uint16_t data_port = 0;                    // the queue's data port (0: any free port)
  std::uint16_t control_port = 0;                 // workers' heartbeats, on a thread of their own (0: any free port)
  std::filesystem::path data_dir = "hio-data/master";  // ids, leases, queue segments
  std::string secret;                             // cluster secret: workers and lease tokens
  std::string source_token;                       // when set, POST /v1/streams needs it as Bearer token
  std::chrono::seconds lease_ttl{30};             // a lease's connection must start within this
  std::uint32_t max_session_tuples = 65536;       // the most tuple ids one lease may cover
  std::uint64_t max_tuple_bytes = 2ull << 30;     // larger tuples are refused from their header
  std::uint64_t queue_memory_bytes = 1ull << 30;  // queued payload bytes kept in memory
  std::uint64_t queue_max_bytes = 64ull << 30;    // past this, leases answer 503 (push back)
  std::chrono::milliseconds worker_timeout{3000}; // a worker silent this long is removed
  std::size_t dispatch_threads = 4;               // queue → channel transfers at once
  std::size_t dispatch_batch_tuples = 4096;       // tuples per queue → channel session, at most
  std::uint64_t dispatch_batch_bytes = 64ull << 20;  // ... and payload bytes (a source's session size)
  int http_threads = 2;
  connection_limit_options connections;          // per peer address and per port, REST and queue port each
  std::string repository_url;                     // the repository: for started workers and the dashboard's
                                                  // science preview (proxied, same origin); "" = none
  bool dashboard = true;                          // serve the live dashboard at / (docs/dashboard.md)

  bool autoscale = false;                         // the master starts and stops workers itself
  std::string provisioner = "local";              // local | command:<out script>|<in script>
  autoscaler::options scaling;                    // the policy's bounds and cool-downs
  std::chrono::milliseconds scaling_interval{2000};  // how often the policy decides
  worker_template workers;                        // what a new worker runs with
};

class master {
 public:
  // Error when a port cannot be bound or the data directory is unusable.
  static result<std::unique_ptr<master>> start(options o);
  ~master();

  std::uint16_t port() const;
  std::uint16_t data_port() const;
  std::uint16_t control_port() const;
  // Stops accepting, ends open sessions (their sources retry), waits for the threads. Idempotent.
  void stop();

  // The REST handler (also called directly by tests).
  http::response handle(const http::request& r);

  struct impl;

 private:
  explicit master(std::unique_ptr<impl> p);
  std::unique_ptr<impl> impl_;
};

}  // namespace hio::master
