#pragma once
// The rules of one data-path session, apart from any transport: the TCP receiver and the UCX receiver
// move bytes and keep deadlines; this class decides what the bytes mean. It checks each frame header
// (magic, version, lengths, the lease token on the first DATA frame and the same token after it, tuple
// ids within the lease and increasing), each body (its length, zstd decoding within the maximum tuple
// size, XXH3-64, metadata a JSON object of bounded depth), hands verified tuples to the tuple_handler,
// batches them, and encodes the ACK, ERROR and END answers. A handler that throws is a fault like any
// other (`internal`), never an exception through the transport's loop.
//
// Not thread-safe: one session is driven by one transport connection on one thread.

#include <hio/common/error.hpp>
#include <hio/common/receiver.hpp>
#include <hio/common/token.hpp>
#include <hio/common/wire.hpp>

#include <boost/system/result.hpp>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <vector>

namespace hio {

// Why a session ends with an ERROR frame: the transport sends reject(fault) and closes.
struct session_fault {
  // Not an aggregate: result<bool, session_fault> must not see a bool as convertible to a fault.
  session_fault() = default;
  session_fault(std::uint64_t id, wire::error_code c, std::string m)
      : tuple_id(id), code(c), message(std::move(m)) {}

  std::uint64_t tuple_id = 0;
  wire::error_code code = wire::error_code::internal;
  std::string message;
};

// Thrown only by session_result<T>::value() on a fault; the receivers check has_value() and never see it.
[[noreturn]] inline void throw_exception_from_error(const session_fault& f, const boost::source_location&) {
  throw error_exception(error(static_cast<int>(f.code), f.message));
}

template <class T>
using session_result = boost::system::result<T, session_fault>;

// A receiver's counters, shared by its sessions (read from any thread).
struct receiver_stats {
  std::atomic<std::uint64_t> sessions{0}, tuples{0}, bytes{0}, rejected{0};
  receiver_counters snapshot() const { return {sessions.load(), tuples.load(), bytes.load(), rejected.load(), 0}; }
};

class receiver_session {
 public:
  receiver_session(const receiver_options& options, tuple_handler& handler, receiver_stats& stats,
                   std::string peer);
  // Does not call the handler: a session abandoned without end() (its transport torn down with the
  // io_context at shutdown, when the handler may be gone) ends nothing.
  ~receiver_session() = default;
  receiver_session(const receiver_session&) = delete;
  receiver_session& operator=(const receiver_session&) = delete;

  // A frame header as it arrived. DATA: accepted, its body (metadata_length + payload_length bytes) is
  // to be read and given to on_body. END: the transport flushes, sends end_frame() and calls finish().
  session_result<wire::frame_header> on_header(std::span<const std::byte, wire::header_size> bytes);

  // Whether a body of `length` bytes is the one `h` declares: a transport that learns a message's length
  // before taking its bytes (UCX rendezvous) checks it first.
  static session_result<void> check_length(const wire::frame_header& h, std::uint64_t length);

  // The body of a DATA frame on_header accepted, as it travelled: metadata, then payload; bodies come in
  // the order of their headers (a transport may accept the next headers first). Metadata that
  // check_metadata refuses fails that tuple alone (a FAILED ack with the reason). True when the batch is
  // due (max_batch_tuples or max_batch_bytes): the transport starts a flush unless one is in flight.
  session_result<bool> on_body(const wire::frame_header& h, std::span<const std::byte> body);
  // The same with metadata and payload apart (UCX carries small metadata in the message header).
  session_result<bool> on_body(const wire::frame_header& h, std::span<const std::byte> metadata,
                               std::span<const std::byte> payload);

  // What start_flush() hands the batch's answers to (its ACK frames, in order, or the fault that ends
  // the session): called once, from the handler's thread or before start_flush returns.
  using flush_answer = std::function<void(session_result<std::string>)>;
  // Starts making the tuples handed over since the last flush durable (tuple_handler::flush_async); the
  // session takes further tuples meanwhile. Nothing pending: `answer("")` at once.
  void start_flush(flush_answer answer);
  bool has_pending() const noexcept { return pending_ > 0; }
  std::uint64_t pending_bytes() const noexcept { return pending_bytes_; }
  // Whether the tuples taken since the last flush reach max_pending_tuples or max_pending_bytes: with a
  // flush in flight, the transport then waits for it before taking more.
  bool pending_full() const noexcept {
    return pending_ >= options_.max_pending_tuples || pending_bytes_ >= options_.max_pending_bytes;
  }

  // Counts and logs the fault; returns the ERROR frame to send before closing.
  std::string reject(const session_fault& f);
  static std::string end_frame();
  // The END answer went out: the session ends clean.
  void finish() noexcept { clean_ = true; }
  // Ends the handler's session if one began (clean only after finish()); once. Never throws.
  void end() noexcept;

  bool begun() const noexcept { return lease_.has_value(); }
  bool any_tuple() const noexcept { return any_tuple_; }
  std::uint64_t last_id() const noexcept { return last_id_; }
  const std::string& peer() const noexcept { return peer_; }

 private:
  const receiver_options& options_;
  tuple_handler& handler_;
  receiver_stats& stats_;
  std::string peer_;
  std::optional<lease_token> lease_;
  std::uint64_t last_id_ = 0;
  bool any_tuple_ = false;
  bool clean_ = false;
  bool ended_ = false;
  std::size_t pending_ = 0;   // tuples since the last flush, refused ones included
  std::size_t handed_ = 0;    // ... of which the handler has
  std::uint64_t pending_bytes_ = 0;
  std::vector<ack> refused_;  // FAILED acks of tuples refused here since the last flush
  std::unique_ptr<std::byte[]> decoded_;  // zstd payloads decode here (reused, grown when needed)
  std::uint64_t decoded_capacity_ = 0;
};

// The fault for an error a handler returned: its code when it is a wire code, else `internal`.
session_fault fault_from(const error& e, std::uint64_t tuple_id);

}  // namespace hio
