#pragma once
// A worker channel: one per core, persistent. A channel_handler holds the policy (sessions, single-use
// leases, draining, running the processor, building feature records, draining them to a record_sink);
// a channel adds the I/O: a thread pinned to its core running its own single-threaded io_context, and a
// receiver on that io_context with the handler as its tuple_handler.

#include <hio/common/error.hpp>
#include <hio/common/receiver.hpp>
#include <hio/common/record.hpp>
#include <hio/common/token.hpp>
#include <hio/common/ucx_receiver.hpp>
#include <hio/common/wire.hpp>
#include <hio/worker/processor.hpp>
#include <hio/worker/record_sink.hpp>
#include <hio/worker/topology.hpp>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace hio::worker {

// Told when a session ends, from the channel's thread; must not block (the controller's hands the event
// to a notifier thread). `clean`: the source sent END and every ack went out.
using free_notifier = std::function<void(std::uint32_t channel, std::uint64_t lease_id, bool clean)>;

// A snapshot of one channel, for heartbeats and logs.
struct channel_status {
  std::uint32_t index = 0;
  bool busy = false;             // at least one session is active
  std::vector<std::uint64_t> active;  // the leases of the active sessions, ascending
  std::uint32_t max_sessions = 0;     // sessions the channel offers the master (credits)
  bool saturated = false;        // its processor is busy nearly all the time (load_meter)
  bool draining = false;         // new sessions are refused
  std::uint64_t lease_id = 0;    // the highest lease accepted (0: none yet)
  std::uint64_t refused_lease_id = 0;  // the highest lease refused because the channel was full
  std::uint64_t processed = 0;   // tuples acknowledged, stored or failed
  std::uint64_t failed = 0;      // ... of which processing failed
  std::uint64_t bytes = 0;       // payload bytes of the acknowledged tuples
  std::uint64_t sessions = 0;    // sessions begun
  std::uint64_t restarts = 0;    // times the channel's run loop failed and was restarted
  std::uint64_t processor_restarts = 0;  // times its out-of-process processor was restarted (exec, plugin)
  std::uint64_t refused_connections = 0;  // closed at accept by its TCP port's connection limits (0 from
                                          // channel_handler::status)
  std::uint16_t port = 0;        // where the channel listens now (0 from channel_handler::status)
};

// The "source" string of a tuple's metadata JSON; "" when there is none or the metadata is not JSON.
std::string source_of(std::string_view metadata);

// The record for one tuple, given what its processor returned.
feature_record make_feature_record(const received_tuple& t, const result<std::vector<feature>>& processed,
                                   std::string_view worker_id, std::uint32_t channel, std::int64_t now_ms);

// Whether a channel's processor is saturated: busy (inside process()) for at least `saturate_at` of the
// wall time over a window of `window`, until a window drops to `clear_at` or below. A tuple in the
// processor for a whole window saturates at once; no finished window for two windows clears it. The
// master gives a saturated channel no new sources, so the overflow queue takes the excess. finished()
// and started() from the channel's thread; saturated() from any thread.
class load_meter {
 public:
  using clock = std::chrono::steady_clock;
  static constexpr auto window = std::chrono::milliseconds(250);
  static constexpr double saturate_at = 0.9, clear_at = 0.6;

  void started(clock::time_point at);
  void finished(clock::time_point from, clock::time_point to);
  bool saturated(clock::time_point now) const;

 private:
  clock::time_point window_start_{};
  clock::duration busy_{};
  std::atomic<bool> saturated_{false};
  std::atomic<clock::rep> last_window_ns_{0};
  std::atomic<clock::rep> in_processor_since_ns_{0};  // 0: not in the processor
};

// The data-path policy of one channel. Owns its processor and sink. A channel serves several sessions at
// once, from any sources (each with its own pending records); the master places at most `sessions` of
// them here. The tuple_handler calls, and abort_session(), come from the channel's thread only;
// set_draining(), status() and the other const accessors are thread-safe.
class channel_handler final : public tuple_handler {
 public:
  channel_handler(std::string worker_id, std::uint32_t index, std::unique_ptr<processor> p,
                  std::unique_ptr<record_sink> sink, free_notifier notify, std::uint32_t sessions = 16);

  // Refuses with busy when 2 × `sessions` sessions are active, unavailable while draining, bad_token for
  // a lease already used here (leases are single-use).
  result<void> begin_session(const lease_token& lease, const std::string& peer) override;
  // Runs the processor (its error or exception makes a failed record) and queues the record.
  result<void> on_tuple(const lease_token& lease, const received_tuple& t) override;
  // Stores the session's queued records through the sink; on its error the records are dropped (the
  // source retries them elsewhere) and the error has code wire::error_code::internal.
  result<std::vector<ack>> flush(const lease_token& lease) override;
  // The same on the handler's store thread: the channel's thread goes on receiving and processing.
  // Batches that wait for the store thread together go to the sink as one store() (one repository
  // write for several sessions), each answered with its own acks.
  void flush_async(const lease_token& lease, flush_done done) override;
  // Ends the session and calls the free notifier (only for a session this channel serves).
  void end_session(const lease_token& lease, bool clean) override;
  // Returns once no store started by flush_async() is waiting or running (their `done` has been called).
  void wait_stores();

  // Ends every active session unclean: used after the run loop failed mid-session.
  void abort_session();
  void set_draining(bool draining) noexcept;
  void count_restart() noexcept;
  channel_status status() const;
  bool busy() const noexcept { return active_count_.load() > 0; }
  std::uint32_t index() const noexcept { return index_; }
  const processor& processing() const noexcept { return *processor_; }
  record_sink& sink() noexcept { return *sink_; }

 private:
  std::string worker_id_;
  std::uint32_t index_;
  std::unique_ptr<processor> processor_;
  std::unique_ptr<record_sink> sink_;
  free_notifier notify_;

  void publish_active();  // copies the active leases for status()
  // Acks for `records`, stored with these conflicts; counts them.
  std::vector<ack> acks_for(std::span<feature_record> records, const std::set<std::uint64_t>& conflicts);
  void store_loop();

  // The store thread's batches, in the order their flushes began: at most one per session, as the
  // receivers keep one flush of a session in flight. The sink is called from the store thread only
  // (flush() called directly, as tests do, must not run beside it).
  struct store_job {
    std::vector<feature_record> records;
    flush_done done;
  };
  std::mutex jobs_mutex_;
  std::condition_variable jobs_cv_;
  std::deque<store_job> jobs_;
  bool storing_ = false;
  bool stop_store_ = false;
  std::thread store_thread_;

  std::uint32_t sessions_offered_;
  std::atomic<std::size_t> active_count_{0};  // sessions begun or beginning, not ended
  std::atomic<bool> draining_{false};
  std::atomic<std::uint64_t> last_lease_{0};
  std::atomic<std::uint64_t> refused_lease_{0};
  // Channel thread only: per active lease, the records processed since its last flush.
  std::map<std::uint64_t, std::vector<feature_record>> active_;
  std::map<std::uint64_t, std::uint32_t> used_;  // channel thread only: leases seen, until they expire
  mutable std::mutex active_mutex_;
  std::vector<std::uint64_t> active_ids_;  // the keys of active_, for status()
  load_meter load_;

  std::atomic<std::uint64_t> processed_{0};
  std::atomic<std::uint64_t> failed_{0};
  std::atomic<std::uint64_t> bytes_{0};
  std::atomic<std::uint64_t> sessions_{0};
  std::atomic<std::uint64_t> restarts_{0};

 public:
  ~channel_handler() override;
  channel_handler(const channel_handler&) = delete;
  channel_handler& operator=(const channel_handler&) = delete;
};

struct channel_options {
  std::string worker_id;                                     // the worker's id (part of the lease target)
  std::uint32_t index = 0;                                   // the channel's index within the worker
  std::string host = "127.0.0.1";                            // address to listen on
  std::uint16_t port = 0;                                    // 0: any free port
  int core = -1;                                             // topology core to pin to; -1: not pinned
  std::string secret;                                        // cluster secret the lease tokens are checked with
  std::uint64_t max_tuple_bytes = wire::default_max_tuple_bytes;  // larger tuples are refused
  std::chrono::milliseconds restart_delay{100};              // pause before restarting a failed run loop
  std::uint32_t sessions = 16;                               // sessions offered to the master at once
  bool ucx = false;                                          // also listen with UCX (beside TCP, which stays on)
  std::uint16_t ucx_port = 0;                                // UCX listener port; 0: any free port
  connection_limit_options connections;                      // TCP connections at once, per peer address and in all
};

// Owns its thread, io_context, receiver and handler, from start() until destruction. A run loop that
// throws is restarted on the same port when it can be bound again (another free port otherwise; port()
// then changes), the active session ends unclean and restarts is counted. Thread-safe.
class channel {
 public:
  // Error when the port cannot be bound. `topo` (may be null: no pinning) must outlive the channel.
  static result<std::unique_ptr<channel>> start(channel_options options, std::unique_ptr<processor> p,
                                                std::unique_ptr<record_sink> sink, free_notifier notify,
                                                const topology* topo = nullptr);
  ~channel();
  channel(const channel&) = delete;
  channel& operator=(const channel&) = delete;

  std::uint32_t index() const noexcept { return options_.index; }
  int core() const noexcept { return options_.core; }
  std::uint16_t port() const noexcept { return port_.load(); }
  // The UCX listener's port; 0 when the channel does not offer UCX.
  std::uint16_t ucx_port() const noexcept { return ucx_port_.load(); }
  // The UCX receiver's worker address (hex; changes when the receiver restarts); empty without UCX.
  std::string ucx_address() const;
  std::string processor_name() const { return handler_->processing().name(); }
  std::string device() const { return handler_->processing().device(); }
  std::uint32_t sessions() const noexcept { return options_.sessions; }
  channel_status status() const;

  // Refuse new sessions (unavailable); the active one finishes.
  void set_draining() noexcept { handler_->set_draining(true); }
  // Stops accepting, closes connections (sessions end unclean) and joins the thread. Idempotent.
  void stop();
  // Test hook: makes the run loop throw once, as a bug in a handler would.
  void inject_fault();

 private:
  channel(channel_options options, std::unique_ptr<channel_handler> handler, const topology* topo);
  result<void> open_receiver(std::uint16_t port, std::uint16_t ucx_port);  // with mutex_ held
  void run();
  bool restart();  // false when stopped meanwhile

  channel_options options_;
  std::unique_ptr<channel_handler> handler_;
  const topology* topo_;
  std::atomic<std::uint16_t> port_{0};
  std::atomic<std::uint16_t> ucx_port_{0};
  mutable std::mutex address_mutex_;  // guards ucx_address_
  std::string ucx_address_;
  std::atomic<bool> stopping_{false};

  mutable std::mutex mutex_;  // guards io_, guard_, receiver_ and refused_before_ while they are replaced
  std::uint64_t refused_before_ = 0;  // connections refused by the receivers of earlier run loops
  std::unique_ptr<boost::asio::io_context> io_;
  // Keeps io_->run() going when no connection is open.
  std::optional<boost::asio::executor_work_guard<boost::asio::io_context::executor_type>> guard_;
  std::unique_ptr<receiver> receiver_;
  std::unique_ptr<ucx_receiver> ucx_receiver_;  // with options_.ucx
  std::thread thread_;
};

}  // namespace hio::worker
