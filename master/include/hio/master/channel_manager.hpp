#pragma once
// Which worker channels exist and how much room each has. Pure policy: no I/O, no clock of its own
// (callers pass `now`), so every rule is unit-tested. Not thread-safe: the master guards it with its state
// mutex.
//
// A channel is a processing slot with a bounded backlog: it serves up to `sessions` sessions at once (its
// credits), from any sources. The manager keeps, per channel, the leases it handed out that have not
// ended: a lease is unconfirmed until its worker reports the session active, then confirmed until the
// session ends (its "free" message, its source's next lease naming it as ended, or a report that no
// longer lists it). A lease that its worker never confirms is taken back after `lease_timeout`; a worker
// whose heartbeats stop for `worker_timeout` is removed with its channels.
//
// Leases go to the channel with the most free credits, on the worker with the most, the least recently
// leased first among equals. A channel whose processor is saturated (busy nearly all the time, as its
// worker reports) offers no credits to sources, so new sessions go elsewhere or to the overflow queue;
// the queue's dispatcher still feeds it while it has session slots.
//
// Heartbeats and "free" messages travel on different connections and may arrive out of order. The
// worker's highest accepted lease id only grows, so a report carrying a lower one than already seen is
// stale and ignored.

#include <hio/common/transport.hpp>

#include <chrono>
#include <cstdint>
#include <map>
#include <set>
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
  std::uint32_t sessions = 1;  // credits: sessions the channel serves at once (1 for workers that do not say)
};

struct channel_report {  // one channel's line of a heartbeat
  std::uint32_t index = 0;
  bool busy = false;           // at least one session is active
  bool saturated = false;      // its processor is busy nearly all the time: no room for new sources
  std::vector<std::uint64_t> active;  // the leases of its active sessions (empty from older workers)
  std::uint64_t lease_id = 0;  // the highest lease the channel accepted
  std::uint64_t refused_lease_id = 0;  // the highest lease it refused (full, draining)
  std::uint64_t processed = 0, failed = 0, bytes = 0, restarts = 0;
  std::uint64_t processor_restarts = 0;  // out-of-process processor restarted after a crash or timeout
  std::uint64_t refused_connections = 0;  // closed at accept by the channel's connection limits
};

struct channel_view {
  channel_info info;
  channel_state state = channel_state::free;
  std::uint64_t lease_id = 0;  // the lease the master handed out last (0: none)
  std::size_t sessions = 0;    // leases not ended (handed out or active)
  std::size_t credits = 0;     // sessions a source may still be given here (0 while saturated)
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
  // A session on the channel has ended (or never began): its credit is free again. Unknown leases are
  // ignored.
  void release(const std::string& worker, std::uint32_t channel, std::uint64_t lease_id);
  // The source `owner` that holds `lease_id` has ended that session (it asks for its next lease): the
  // credit is free at once, not when the worker's message comes. Ignored for a lease `owner` does not
  // hold. Its worker may still be finishing the session; it serves up to twice its credits for that.
  void release_ended(std::uint64_t lease_id, const std::string& owner);
  void set_draining(const std::string& worker);
  bool remove_worker(const std::string& id);

  // A channel with a free credit, which `lease_id` now holds (see the class comment for the order).
  // nullopt when no channel has room, or every worker is draining.
  // With `want` (a source), only channels offering that transport (choose_transport) and not saturated
  // count, and the ref's port and transport are the chosen one's; without (the queue dispatcher), any
  // channel with a session slot, over TCP.
  std::optional<channel_ref> acquire(std::uint64_t lease_id, clock_type::time_point now,
                                     std::optional<transport_request> want = std::nullopt,
                                     const std::string& owner = {});
  // Whether any registered channel offers transport `t`.
  bool offers(transport t) const;
  // Takes back unconfirmed leases and removes silent workers; returns the ids of removed workers.
  std::vector<std::string> expire(clock_type::time_point now);

  std::size_t free_channels() const;  // channels without any session or lease, not draining
  // Free credits summed over channels: for sources (saturated channels give none), or for the dispatcher.
  std::size_t credits(bool for_dispatch = false) const;
  std::size_t total_channels() const;
  std::size_t worker_count() const { return workers_.size(); }
  std::vector<worker_view> workers() const;
  totals total() const;

 private:
  struct held_lease {
    clock_type::time_point leased_at{};
    bool confirmed = false;  // its worker reported the session active
    std::string owner;       // the source it was handed to ("" for the dispatcher, or unknown)
  };
  struct channel {
    channel_info info;
    std::map<std::uint64_t, held_lease> leases;  // not ended
    // Ended by their source while the worker may still list them active: not counted again from reports.
    std::set<std::uint64_t> ended_by_source;
    std::uint64_t lease_id = 0;        // the last lease the master handed out for it
    std::string lease_transport;       // ... and its transport
    clock_type::time_point leased_at{};  // ... and when
    channel_report report;             // the newest report (reports older than it are ignored)
  };
  struct worker {
    std::string host;
    std::string instance;
    bool draining = false;
    clock_type::time_point last_seen{};
    std::vector<channel> channels;
  };
  static bool is_free(const worker& w, const channel& c) { return !w.draining && c.leases.empty(); }
  static std::size_t room(const worker& w, const channel& c, bool for_dispatch) {
    if (w.draining || (!for_dispatch && c.report.saturated) || c.leases.size() >= c.info.sessions) return 0;
    return c.info.sessions - c.leases.size();
  }
  static channel_state state_of(const channel& c);
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
