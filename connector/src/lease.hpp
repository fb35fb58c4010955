#pragma once
// Leases from the master's REST API (POST /v1/streams): request bodies, parsing the answer, and the retry
// policy (503 / unreachable master: back off and ask again until a deadline; 4xx: fail with the master's
// message). Internal to the connector.

#include <hio/common/error.hpp>
#include <hio/common/http.hpp>
#include <hio/common/protocol/lease.hpp>
#include <hio/common/token.hpp>
#include <hio/common/transport.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

namespace hio::connector::detail {

// The lease protocol's messages (hio/common/protocol/lease.hpp), as the connector names them.
using issued_ids = protocol::issued_range;
using lease = protocol::lease_grant;

// The tuple ids to ask for: `asked`, or for 0, 64 MiB of tuples of `bytes_hint` bytes, 64..65536.
std::uint32_t session_length(std::uint32_t asked, std::uint64_t bytes_hint);

// `client` names this client instance (the master keeps the order of each one's queued tuples); `ends`
// is the channel lease of the session it has just ended (0: none), whose credit the master frees at once.
std::string new_lease_body(std::string_view source, std::uint32_t count, std::uint64_t bytes_hint,
                           std::string_view transport = "tcp", std::string_view client = {},
                           std::uint64_t ends = 0);
// A retry of [first, first + count), ids within `issued` (the range and key of the lease that gave them).
std::string retry_lease_body(std::string_view source, std::uint64_t first, std::uint32_t count,
                             const issued_ids& issued, std::string_view transport = "tcp",
                             std::string_view client = {});

// Parses a 200 answer (protocol::decode_lease_grant). errc::bad_lease when it is unusable.
result<lease> parse_lease(std::string_view body);

// 50 ms doubling per step, at most 2 s.
std::chrono::milliseconds backoff_delay(std::uint32_t step);

// The Retry-After header (seconds) of a response, if present and sane.
std::optional<std::chrono::milliseconds> retry_after(const http::response& r);

// The message of a {"error": ...} body, or the body itself when it is not such JSON.
std::string error_message(std::string_view body);

// Asks one master for leases. Used by one thread at a time (it owns a keep-alive http::client).
class lease_requester {
 public:
  // `sleep(d)` waits d and returns false when the caller is shutting down (the request then fails with
  // errc::closed).
  using sleeper = std::function<bool(std::chrono::milliseconds)>;
  lease_requester(std::string master_url, std::string bearer, sleeper sleep);

  // Posts `body` until the master grants a lease or `timeout` passes. Errors: errc::lease_refused (4xx),
  // errc::lease_timeout, errc::bad_lease, errc::closed.
  result<lease> request(std::string_view body, std::chrono::milliseconds timeout);

 private:
  std::string master_url_;
  std::string bearer_;
  sleeper sleep_;
  std::optional<http::client> http_;
};

}  // namespace hio::connector::detail
