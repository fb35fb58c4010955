#pragma once
// The source SDK: hands tuples to hio with end-to-end acknowledgement. A client leases tuple ids and an
// endpoint from the master (POST /v1/streams), streams the tuples as DATA frames over one connection per
// lease (a session), and keeps every tuple until the endpoint acknowledges it (stored, failed or queued).
// A dropped connection, an ERROR frame or a timeout makes the client resend the unacknowledged tuples,
// under their original ids, through a retry lease.

#include <hio/common/error.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <future>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace hio::connector {

// hio::error::code values of the errors a client returns.
enum class errc : int {
  invalid_argument = 1,    // bad option, metadata that is not a JSON object, tuple too large
  lease_refused = 2,       // the master answered 4xx (bad token, bad request); the message is the master's
  lease_timeout = 3,       // no lease within lease_timeout (master unreachable, or busy throughout)
  attempts_exhausted = 4,  // the tuple was sent max_attempts times without an acknowledgement
  closed = 5,              // the client was closed before the tuple got a result
  timeout = 6,             // flush() passed its deadline
  bad_lease = 7,           // the master's lease answer could not be used (malformed, wrong range)
  connect_failed = 8,      // the leased endpoint could not be reached, max_attempts times in a row
};

struct client_options {
  std::string master_url;                            // "http://host:port" of the master
  std::string source_name = "source";                // goes into every tuple's metadata as "source"
  // Sent as "Authorization: Bearer". Empty: $HIO_SOURCE_TOKEN, else the first line of
  // <$HIO_DATA_DIR, or ./hio-data>/source-token (where `hio up` keeps its cluster's), else none.
  std::string source_token;
  // Tuple ids asked for per lease. 0 (the default) sizes it to the tuples: 64 MiB of them, 64..65536.
  std::uint32_t session_tuples = 0;
  std::chrono::milliseconds session_idle{20};        // a session with nothing to send for this long ends
  // A session that has lasted this long ends at its next tuple, so the master can place the source again
  // by the channels' load (or queue it while every channel is saturated).
  std::chrono::milliseconds session_max{1000};
  std::uint64_t max_bytes_in_flight = 256ull << 20;  // unacknowledged bytes held; async_send blocks above
  std::uint32_t max_attempts = 8;                    // sends of one tuple before it fails
  std::chrono::milliseconds lease_timeout{60000};    // how long to keep asking for a lease
  bool compress = false;                             // zstd payloads when that makes them smaller
  std::chrono::milliseconds connect_timeout{5000};   // to open a data connection
  std::chrono::milliseconds send_timeout{30000};     // for one frame to be written
  std::chrono::milliseconds ack_timeout{60000};      // silence on a session with tuples unacknowledged
  std::chrono::milliseconds close_timeout{30000};    // the destructor waits this long for tuples in flight
  // "tcp", "ucx" (fails every send when this build lacks UCX, and the master refuses leases when no
  // channel offers it), or "auto" (UCX where a channel offers it). The overflow queue is always TCP.
  std::string transport = "tcp";
};

enum class send_status { stored, failed, queued };

// The final answer for one tuple. `failed` means processed and failed: final, not retried.
struct send_result {
  std::uint64_t tuple_id = 0;
  send_status status = send_status::stored;
  std::string reason;          // why it failed (status failed), otherwise empty
  std::uint32_t attempts = 0;  // sessions the tuple was sent in
};

struct client_stats {
  std::uint64_t submitted = 0;         // tuples accepted by send/async_send
  std::uint64_t stored = 0;            // tuples by final result
  std::uint64_t failed = 0;
  std::uint64_t queued = 0;
  std::uint64_t errors = 0;            // tuples whose result is an error
  std::uint64_t bytes_sent = 0;        // payload bytes written, as they travelled, retries included
  std::uint64_t leases = 0;            // leases granted, retry leases included
  std::uint64_t retry_leases = 0;
  std::uint64_t sessions = 0;          // data connections opened
  std::uint64_t ucx_sessions = 0;      // ... of which over UCX (the rest over TCP)
  std::uint64_t failed_sessions = 0;   // sessions that ended with tuples unacknowledged
  std::uint64_t resent_tuples = 0;     // tuples scheduled for another attempt
  std::uint64_t in_flight_tuples = 0;  // submitted, no result yet
  std::uint64_t in_flight_bytes = 0;
};

std::string_view to_string(send_status s) noexcept;

// Called once with a tuple's result, on one of the client's internal threads. It must return quickly and
// must not call send, flush or the destructor of the same client (that would wait for itself).
using completion_handler = std::function<void(result<send_result>)>;

// Thread-safety: every member function may be called from any number of threads at once. One internal
// writer thread leases and sends; one reader thread per open session collects acknowledgements. Tuples
// are sent in the order they were submitted (retries excepted). The destructor waits up to close_timeout
// for tuples in flight; those still without a result then get errc::closed.
//
// Ownership: send() and async_send_view() send straight from the caller's buffer (no copy), which must
// stay unchanged until the result is known; async_send() takes or shares ownership of the bytes.
// Every internal wait has a deadline (lease_timeout, send/ack timeouts, max_attempts), so every tuple
// gets a result in bounded time.
class client {
 public:
  // Never fails: a bad master_url or option shows up as the error of each send.
  explicit client(client_options options);
  ~client();
  client(const client&) = delete;
  client& operator=(const client&) = delete;

  // Sends one tuple and waits for its result. `metadata_json` is empty or a JSON object, merged after
  // {"source": source_name}. Errors: errc values above.
  result<send_result> send(std::span<const std::byte> data, std::string_view metadata_json = {});

  // Queues one tuple and returns at once, unless max_bytes_in_flight are held, then it blocks until
  // enough tuples have their results. The future is ready with an error at once for bad metadata.
  std::future<result<send_result>> async_send(std::vector<std::byte> data, std::string metadata_json = {});
  std::future<result<send_result>> async_send(std::shared_ptr<const std::vector<std::byte>> data,
                                              std::string metadata_json = {});
  // The same without a copy or a future: the caller keeps `data` alive and unchanged until `done` has
  // been called. An error (then `done` is never called) for bad metadata or a closed client.
  result<void> async_send_view(std::span<const std::byte> data, std::string_view metadata_json,
                               completion_handler done);
  // The same for a tuple in two pieces that the receiver sees as one, `head` then `data` (e.g. a .npy
  // header in front of an array's own memory): neither is copied over TCP.
  result<void> async_send_view(std::span<const std::byte> head, std::span<const std::byte> data,
                               std::string_view metadata_json, completion_handler done);

  // Waits until no tuple is in flight (including tuples other threads submit meanwhile). errc::timeout
  // when `timeout` passes first.
  result<void> flush(std::chrono::milliseconds timeout = std::chrono::minutes(10));

  client_stats stats() const;
  const client_options& options() const noexcept;

  struct impl;

 private:
  std::unique_ptr<impl> impl_;
};

}  // namespace hio::connector
