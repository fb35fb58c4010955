#pragma once
// The processor protocol: how a channel talks to an out-of-process processor over its stdin and stdout.
// Spoken by `exec:COMMAND` processors (any language) and by hio-plugin-host, which serves a C ABI plugin
// (`plugin:PATH`) the same way. Byte-exact description in docs/processors.md. All integers little-endian.
//
//   request  (worker -> processor), a 24-byte header then the two bodies:
//     0  4  magic "HIOQ"
//     4  8  u64 tuple id
//    12  4  u32 metadata length M
//    16  8  u64 payload length P
//    24  M  metadata, UTF-8 JSON text (M = 0: none)
//  24+M  P  payload
//   response (processor -> worker), a 24-byte header then the features and the error text:
//     0  4  magic "HIOR"
//     4  4  u32 status: 0 ok, 1 failed (the tuple is stored as failed with the error text as reason)
//     8  8  u64 tuple id, the request's
//    16  4  u32 feature count N (0 when failed)
//    20  4  u32 error text length E (0 when ok)
//    24     N times: u32 name length L, L bytes of UTF-8 name, f64 value (IEEE 754)
//           E bytes of UTF-8 error text
//
// Pure functions; thread-safe.

#include <hio/common/error.hpp>
#include <hio/common/record.hpp>

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace hio::worker::protocol {

inline constexpr std::string_view request_magic = "HIOQ";
inline constexpr std::string_view response_magic = "HIOR";
inline constexpr std::size_t header_bytes = 24;             // of a request and of a response
inline constexpr std::uint32_t max_features = 65536;         // per response
inline constexpr std::size_t max_feature_name_bytes = 255;
inline constexpr std::size_t max_error_bytes = 65536;
inline constexpr std::uint32_t max_metadata_bytes = 16u << 20;

enum class status : std::uint32_t { ok = 0, failed = 1 };

struct request_header {
  std::uint64_t tuple_id = 0;
  std::uint32_t metadata_bytes = 0;
  std::uint64_t payload_bytes = 0;
  friend bool operator==(const request_header&, const request_header&) = default;
};

struct response {
  std::uint64_t tuple_id = 0;
  protocol::status status = status::ok;
  std::vector<feature> features;  // status ok
  std::string error;              // status failed
  friend bool operator==(const response&, const response&) = default;
};

std::array<std::byte, header_bytes> encode_request_header(const request_header& h);
// Error (code 400) when the bytes do not start with "HIOQ" or the metadata length is over the limit.
result<request_header> decode_request_header(std::span<const std::byte, header_bytes> bytes);

// The whole response frame. Error (code 400) for what decode_response() would refuse: an invalid feature
// name, too many features, an error text too long, features with status failed.
result<std::vector<std::byte>> encode_response(const response& r);

struct decoded_response {
  protocol::response response;
  std::size_t bytes = 0;  // the length of the frame at the start of the input
};
// Decodes the response at the start of `bytes`: nullopt when more bytes are needed, an error (code 400,
// a message saying what is wrong and, for a wrong magic, what the bytes look like) when they are not a
// valid response: wrong magic, unknown status, lengths over the limits, an invalid feature name.
result<std::optional<decoded_response>> decode_response(std::span<const std::byte> bytes);

// 1..255 bytes of valid UTF-8 without control characters.
bool valid_feature_name(std::string_view name) noexcept;
// `text` with every invalid UTF-8 sequence and control character (tab excepted) replaced by '?'.
std::string sanitize_text(std::string_view text);

}  // namespace hio::worker::protocol
