#pragma once
// Which worker channels exist and which are free. Pure policy: no I/O, no clock of its own (callers pass
// `now`), so every rule is unit-tested. Not thread-safe: the master guards it with its state mutex.
//
// A channel is free, leased (handed to a source or to the queue dispatcher, not yet seen busy by its
// worker), or busy (its worker reports a session). A lease that its worker never confirms is taken back
// after `lease_timeout`; a worker whose heartbeats stop for `worker_timeout` is removed with its channels.
//
// Heartbeats and "free" messages travel on different connections and may arrive out of order. The
// worker's last accepted lease id grows with every session a channel begins, so a report carrying a lower
// one than already seen is stale and ignored.

#include <hio/common/transport.hpp>

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace hio::master {

using clock_type = std::chrono::steady_clock;

enum class channel_state { free, leased, busy };
std::string_view to_string(channel_state s) noexcept;

struct channel_info {
  std::uint32_t index = 0;
  std::uint16_t port = 0;
  int core = -1;
  std::string processor;
  std::string device;     // "cpu" or "cuda:N"
  std::string transport;  // the preferred transport: "tcp" or "ucx"
  bool offers_tcp = true;   // sources may stream over TCP on `port` (the queue dispatcher always does)
  bool offers_ucx = false;  // sources may stream over UCX on `ucx_port`
  std::uint16_t ucx_port = 0;
  std::string ucx_address;  // the UCX receiver's worker address (hex); sources connect by it when given
};

struct channel_report {  // one channel's line of a heartbeat
  std::uint32_t index = 0;
  bool busy = false;
  std::uint64_t lease_id = 0;  // the last lease the channel accepted (increasing per channel)
  std::uint64_t refused_lease_id = 0;  // the highest lease it refused because it was busy
  std::uint64_t processed = 0, failed = 0, bytes = 0, restarts = 0;
  std::uint64_t processor_restarts = 0;  // out-of-process processor restarted after a crash or timeout
};

struct channel_view {
  channel_info info;
  channel_state state = channel_state::free;
  std::uint64_t lease_id = 0;  // the lease the master handed out last (0: none)
  channel_report last_report;
  std::string lease_transport;  // the transport of that lease ("" before the first)
};

struct worker_view {
  std::string id;
  std::string host;
  bool draining = false;
  std::vector<channel_view> channels;
};

struct channel_ref {
  std::string worker;
  std::string host;
  std::uint32_t index = 0;
  std::uint16_t port = 0;       // where to connect with `transport`
  std::string transport;        // "tcp" or "ucx"
  std::uint16_t tcp_port = 0;   // the channel's TCP port (the queue dispatcher's)
  std::string ucx_address;      // with transport "ucx": the channel's UCP worker address (hex), may be empty
};

struct totals {  // processed/failed/bytes summed over every worker ever registered
  std::uint64_t processed = 0, failed = 0, bytes = 0, restarts = 0;
};

class channel_manager {
 public:
  struct options {
    std::chrono::milliseconds lease_timeout{32000};   // an unconfirmed lease is taken back after this
    std::chrono::milliseconds worker_timeout{3000};   // a worker silent this long is removed
  };

  explicit channel_manager(options o) : options_(o) {}

  // Adds a worker, or replaces one that registers again. The same `instance` (the same worker process,
  // e.g. after a channel changed port) keeps its counters; another instance's counters start afresh and
  // the old ones move to the totals of retired workers.
  void register_worker(const std::string& id, const std::string& host, std::vector<channel_info> channels,
                       clock_type::time_point now, const std::string& instance = {});
  // False when the worker is unknown (the master restarted or removed it): it must register again.
  bool heartbeat(const std::string& id, bool draining, const std::vector<channel_report>& reports,
                 clock_type::time_point now);
  // A session on the channel has ended. Ignored unless it is the channel's current lease (or newer).
  void release(const std::string& worker, std::uint32_t channel, std::uint64_t lease_id);
  // The channel refused a lease because it serves a session the master does not know of (one begun
  // before a master restart, say): busy until its worker reports it idle.
  void mark_busy(const std::string& worker, std::uint32_t channel);
  void set_draining(const std::string& worker);
  bool remove_worker(const std::string& id);

  // A free channel, marked leased to `lease_id`; spreads leases over workers (the one with the most free
  // channels first). nullopt when every channel is taken or draining.
  // With `want`, only channels offering that transport (choose_transport) count, and the ref's port and
  // transport are the chosen one's; without, any channel over TCP (the queue dispatcher).
  std::optional<channel_ref> acquire(std::uint64_t lease_id, clock_type::time_point now,
                                     std::optional<transport_request> want = std::nullopt);
  // Whether any registered channel offers transport `t`.
  bool offers(transport t) const;
  // Takes back unconfirmed leases and removes silent workers; returns the ids of removed workers.
  std::vector<std::string> expire(clock_type::time_point now);

  std::size_t free_channels() const;
  std::size_t total_channels() const;
  std::size_t worker_count() const { return workers_.size(); }
  std::vector<worker_view> workers() const;
  totals total() const;

 private:
  struct channel {
    channel_info info;
    channel_state state = channel_state::free;
    std::uint64_t lease_id = 0;        // the last lease the master handed out for it
    std::string lease_transport;       // ... and its transport
    clock_type::time_point leased_at{};
    channel_report report;             // the newest report (reports older than it are ignored)
  };
  struct worker {
    std::string host;
    std::string instance;
    bool draining = false;
    clock_type::time_point last_seen{};
    std::vector<channel> channels;
  };
  static bool is_free(const worker& w, const channel& c) { return !w.draining && c.state == channel_state::free; }
  static std::optional<transport> usable(const channel& c, std::optional<transport_request> want) {
    if (!want) return transport::tcp;
    return choose_transport(*want, c.info.offers_tcp, c.info.offers_ucx);
  }
  void retire(const worker& w);

  options options_;
  std::map<std::string, worker> workers_;
  totals retired_;  // counters of workers that are gone
};

}  // namespace hio::master
