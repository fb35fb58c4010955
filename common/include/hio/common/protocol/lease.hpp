#pragma once
// POST /v1/streams, the lease protocol between a source and the master (docs/api.md, docs/protocol.md):
// the request and the answer as structs, each with its one JSON encoding and its one decoding. The
// connector encodes requests and decodes answers, the master the other way round, the tests' fake
// master as the master does. Decoding checks shape and types, and refuses with a message a user can
// act on; what needs the master's state or options (retry keys, limits, room) the master checks.

#include <hio/common/error.hpp>
#include <hio/common/token.hpp>
#include <hio/common/transport.hpp>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace hio::protocol {

// The longest "source" or "client" name a request may carry.
inline constexpr std::size_t max_source_name = 256;

// Tuple ids [first, first + count) as a lease handed them out, with the retry key that proves who got
// them: what a retry of any of them presents.
struct issued_range {
  std::uint64_t first = 0;
  std::uint64_t count = 0;
  std::string key;  // 2 x retry_key_size hex digits; empty when a master sent none (its retries are refused)
  friend bool operator==(const issued_range&, const issued_range&) = default;
};

struct lease_request {
  // Ids to send again, [first, first + count), within the range `issued` that a lease gave this source.
  struct retry_ids {
    std::uint64_t first = 0;
    std::uint64_t count = 1;
    std::optional<issued_range> issued;  // absent: the master refuses (403)
    friend bool operator==(const retry_ids&, const retry_ids&) = default;
  };
  std::string source;  // the source's name ("" = none given)
  std::string client;  // the sending client instance, whose queued tuples keep their order
  transport_request transport = transport_request::tcp;
  std::uint64_t count = 0;  // new ids wanted (0 = not given: one); ignored with `retry`
  std::uint64_t bytes = 0;  // the size of the tuples to come (0 = not given)
  std::uint64_t ends = 0;   // the channel lease the client has just ended (0 = none)
  std::optional<retry_ids> retry;
  friend bool operator==(const lease_request&, const lease_request&) = default;
};

std::string encode(const lease_request& r);
// Error (code 400) when the body is not a JSON object (an empty body is {}), a known field has another
// type, "count" is 0, a name is longer than max_source_name, the transport is not tcp/ucx/auto, or
// "retry" is malformed.
result<lease_request> decode_lease_request(std::string_view body);

// The master's 200 answer: where to send and under which token.
struct lease_grant {
  bool queue = false;  // "kind": "queue" (the master's overflow queue) or "channel" (a worker channel)
  std::string host;
  std::uint16_t port = 0;
  std::string worker;        // kind channel
  std::uint32_t channel = 0;  // kind channel
  std::uint64_t lease_id = 0;
  std::uint64_t first_id = 0;
  std::uint32_t count = 0;
  std::uint32_t expires_at = 0;  // unix seconds
  lease_token token{};
  transport via = transport::tcp;  // how to connect to host:port
  std::string ucx_address;         // with via ucx: the channel's UCP worker address (hex); empty: its listener
  std::string retry_key;           // proves this source holds [first_id, first_id + count)

  issued_range issued() const { return {first_id, count, retry_key}; }
  friend bool operator==(const lease_grant&, const lease_grant&) = default;
};

std::string encode(const lease_grant& g);
// Error (code 0, "lease answer ...") when a field is missing or of another type, the port is 0, no id
// is granted, the token does not decode or does not match the id range, or the retry key is malformed.
result<lease_grant> decode_lease_grant(std::string_view body);

}  // namespace hio::protocol
