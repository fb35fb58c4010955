#pragma once
// The receiving end of the data path, shared by worker channels and the master's queue port: accepts
// connections, checks each frame (magic, version, lengths, lease token, tuple id within the lease and
// increasing, size limit, XXH3-64), decodes zstd payloads, hands verified tuples to a tuple_handler, and
// answers with one ACK per tuple after the handler has made a batch durable.
//
// Runs on the io_context the caller gives it (one coroutine per connection, every read and write under a
// deadline). The handler is called only from that io_context's threads; with a single-threaded
// io_context it needs no locking.

#include <hio/common/connection_limits.hpp>
#include <hio/common/error.hpp>
#include <hio/common/token.hpp>
#include <hio/common/wire.hpp>

#include <boost/asio/io_context.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace hio {

struct received_tuple {
  std::uint64_t tuple_id = 0;
  std::uint64_t xxh3 = 0;
  std::string_view metadata;            // valid until the next call on the handler
  std::span<const std::byte> payload;   // decoded (uncompressed); valid until the next call
  std::uint64_t wire_bytes = 0;         // payload bytes as they travelled
};

struct ack {
  std::uint64_t tuple_id = 0;
  wire::ack_status status = wire::ack_status::stored;
  std::string reason;  // for failed
};

class tuple_handler {
 public:
  virtual ~tuple_handler() = default;
  // A connection presented a valid token for a lease. An error refuses the session (the source gets an
  // ERROR frame with the error's code, e.g. wire::error_code::busy).
  virtual result<void> begin_session(const lease_token& lease, const std::string& peer) = 0;
  // A verified tuple of the current session. Keeps what it needs; the views die after the call. An error
  // ends the session with an ERROR frame (code wire::error_code::internal unless set); unacknowledged
  // tuples are then retried by the source.
  virtual result<void> on_tuple(const lease_token& lease, const received_tuple& t) = 0;
  // Makes every tuple handed over since the last flush durable and returns their acks, in order.
  // An error ends the session as above.
  virtual result<std::vector<ack>> flush(const lease_token& lease) = 0;
  // What flush_async() hands its result to: called once, from any thread.
  using flush_done = std::function<void(result<std::vector<ack>>)>;
  // The same without waiting: starts making the tuples handed over since the last flush durable and
  // returns; `done` then gets what flush() would return. The receivers keep at most one flush of a
  // session in flight and go on handing over that session's next tuples meanwhile, so a slow store
  // (fsync) overlaps with the arrival of the next batch. Default: done(flush(lease)) before returning.
  virtual void flush_async(const lease_token& lease, flush_done done) { done(flush(lease)); }
  // The session is over: `clean` when the source sent END and every ack went out.
  virtual void end_session(const lease_token& lease, bool clean) = 0;
};

struct receiver_options {
  std::string host = "127.0.0.1";
  std::uint16_t port = 0;                       // 0: any free port
  std::string secret;                           // cluster secret the tokens are verified with
  std::string target;                           // channel_target(...) or queue_target
  std::uint64_t max_tuple_bytes = wire::default_max_tuple_bytes;
  std::chrono::milliseconds first_frame_timeout{5000};  // a new connection must send a header by then
  std::chrono::milliseconds idle_timeout{30000};        // between frames of a session
  std::chrono::milliseconds transfer_timeout{120000};   // for one payload to arrive
  // A session's flush starts when this many tuples (or payload bytes) wait and none is in flight, and
  // whenever the connection has nothing more to read at once; further tuples arrive while it runs.
  std::size_t max_batch_tuples = 256;
  std::uint64_t max_batch_bytes = 16ull << 20;
  // While a flush is in flight, a session takes at most this many tuples (or payload bytes) more
  // before it waits for that flush.
  std::size_t max_pending_tuples = 16384;
  std::uint64_t max_pending_bytes = 256ull << 20;
  // UCX: eager bytes one connection may have arrived ahead of its session (UCX takes messages whenever
  // it is progressed); past it the connection is dropped. An honest session holds at most 64 MiB.
  std::uint64_t max_ahead_bytes = 128ull << 20;
  connection_limit_options connections;         // connections at once, per peer address and in all
};

struct receiver_counters {
  std::uint64_t sessions = 0;
  std::uint64_t tuples = 0;
  std::uint64_t bytes = 0;
  std::uint64_t rejected = 0;  // connections or frames refused with an ERROR frame
  std::uint64_t refused_connections = 0;  // closed at accept: over a connection limit
};

// Thread-safety: start/stop/port/counters from any thread.
class receiver {
 public:
  // Error when the address cannot be bound.
  static result<std::unique_ptr<receiver>> start(boost::asio::io_context& io, receiver_options options,
                                                 tuple_handler& handler);
  ~receiver();
  std::uint16_t port() const noexcept;
  receiver_counters counters() const;
  // Stops accepting and closes every connection (sessions end unclean; their tuples are retried).
  void stop();

  struct impl;

 private:
  explicit receiver(std::shared_ptr<impl> p);
  std::shared_ptr<impl> impl_;
};

}  // namespace hio
