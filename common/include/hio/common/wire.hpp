#pragma once
// The binary data-path frame (docs/protocol.md is the normative description). Pure encode/decode: no I/O.
//
// Every frame is an 80-byte little-endian header, then `metadata_length` bytes of metadata (UTF-8 JSON),
// then `payload_length` bytes of payload. Sources send DATA and END; channels and the master's queue
// answer with ACK, ERROR and END.

#include <hio/common/error.hpp>
#include <hio/common/token.hpp>

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

namespace hio::wire {

inline constexpr std::uint32_t magic = 0x464F4948;  // "HIOF" as bytes on the wire
inline constexpr std::uint16_t version = 1;
inline constexpr std::size_t header_size = 80;
inline constexpr std::uint32_t max_metadata_bytes = 1u << 20;
inline constexpr std::uint64_t default_max_tuple_bytes = 2ull << 30;

enum class frame_type : std::uint16_t { data = 1, ack = 2, error = 3, end = 4 };

enum class codec : std::uint16_t { raw = 0, zstd = 1 };

// ACK frames carry one of these in `flags`; a FAILED ack's payload is the reason.
enum class ack_status : std::uint16_t { stored = 0, failed = 1, queued = 2 };

// ERROR frames carry one of these in `flags` and a message as payload. The sender closes the connection
// after an ERROR frame; the source retries the unacknowledged tuples through a new lease.
enum class error_code : std::uint16_t {
  bad_magic = 1,
  bad_version = 2,
  bad_frame = 3,    // unknown type, length fields out of range, tuple id outside the lease
  too_large = 4,    // payload over the receiver's maximum tuple size
  bad_token = 5,    // missing, forged, expired, reused, or for another channel
  checksum = 6,     // XXH3-64 of the received tuple differs from the header
  busy = 7,         // the channel has no room for another session, or the master's queue is full; retry later
  timeout = 8,      // the peer stalled past a deadline
  internal = 9,     // the receiver could not process or store the tuple; retry
  unavailable = 10, // the receiver is shutting down or draining; retry elsewhere
  bad_codec = 11,   // unknown codec, or a compressed payload that does not decode
};

std::string_view to_string(error_code c) noexcept;
std::string_view to_string(ack_status s) noexcept;

struct frame_header {
  frame_type type = frame_type::data;
  std::uint64_t tuple_id = 0;
  lease_token token{};              // DATA only; zero elsewhere
  std::uint64_t payload_length = 0;
  std::uint32_t metadata_length = 0;
  codec payload_codec = codec::raw;
  std::uint16_t flags = 0;          // ACK: ack_status; ERROR: error_code; otherwise 0
  std::uint64_t xxh3 = 0;           // DATA: XXH3-64 of the tuple's uncompressed bytes
};

using header_bytes = std::array<std::byte, header_size>;

header_bytes encode(const frame_header& h) noexcept;

// Checks magic, version, type and the length fields against `max_payload`. On error, the code is a
// wire::error_code and the message says which field is wrong.
result<frame_header> decode(std::span<const std::byte, header_size> bytes,
                            std::uint64_t max_payload = default_max_tuple_bytes);

// Convenience constructors for the answers a receiver sends.
frame_header make_ack(std::uint64_t tuple_id, ack_status status, std::size_t reason_length = 0);
frame_header make_error(std::uint64_t tuple_id, error_code code, std::size_t message_length);
frame_header make_end();

}  // namespace hio::wire
