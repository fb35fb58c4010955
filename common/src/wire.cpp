#include <hio/common/wire.hpp>

#include "detail_endian.hpp"

#include <cstring>

namespace hio::wire {

using detail::load_le;
using detail::store_le;

// Layout (offsets in bytes): 0 magic u32 | 4 version u16 | 6 type u16 | 8 tuple_id u64 | 16 token (40) |
// 56 payload_length u64 | 64 metadata_length u32 | 68 codec u16 | 70 flags u16 | 72 xxh3 u64 | 80.
header_bytes encode(const frame_header& h) noexcept {
  header_bytes b{};
  store_le(b.data(), magic);
  store_le(b.data() + 4, version);
  store_le(b.data() + 6, static_cast<std::uint16_t>(h.type));
  store_le(b.data() + 8, h.tuple_id);
  const auto t = serialize(h.token);
  std::memcpy(b.data() + 16, t.data(), t.size());
  store_le(b.data() + 56, h.payload_length);
  store_le(b.data() + 64, h.metadata_length);
  store_le(b.data() + 68, static_cast<std::uint16_t>(h.payload_codec));
  store_le(b.data() + 70, h.flags);
  store_le(b.data() + 72, h.xxh3);
  return b;
}

result<frame_header> decode(std::span<const std::byte, header_size> b, std::uint64_t max_payload) {
  auto fail = [](error_code c, std::string m) { return hio::make_error(static_cast<int>(c), std::move(m)); };
  if (load_le<std::uint32_t>(b.data()) != magic)
    return fail(error_code::bad_magic, "not an hio frame (bad magic); is this the data port?");
  if (const auto v = load_le<std::uint16_t>(b.data() + 4); v != version)
    return fail(error_code::bad_version,
                "frame version " + std::to_string(v) + " is not supported (this side speaks 1)");
  frame_header h;
  const auto type = load_le<std::uint16_t>(b.data() + 6);
  if (type < 1 || type > 4) return fail(error_code::bad_frame, "unknown frame type " + std::to_string(type));
  h.type = static_cast<frame_type>(type);
  h.tuple_id = load_le<std::uint64_t>(b.data() + 8);
  h.token = deserialize_token(std::span<const std::byte, lease_token_size>(b.data() + 16, lease_token_size));
  h.payload_length = load_le<std::uint64_t>(b.data() + 56);
  h.metadata_length = load_le<std::uint32_t>(b.data() + 64);
  const auto c = load_le<std::uint16_t>(b.data() + 68);
  h.flags = load_le<std::uint16_t>(b.data() + 70);
  h.xxh3 = load_le<std::uint64_t>(b.data() + 72);
  if (c > 1) return fail(error_code::bad_codec, "unknown codec " + std::to_string(c));
  h.payload_codec = static_cast<codec>(c);
  if (h.metadata_length > max_metadata_bytes)
    return fail(error_code::bad_frame, "metadata of " + std::to_string(h.metadata_length) +
                                           " bytes is over the limit of " + std::to_string(max_metadata_bytes));
  if (h.payload_length > max_payload)
    return fail(error_code::too_large, "tuple of " + std::to_string(h.payload_length) +
                                           " bytes is over the maximum tuple size of " +
                                           std::to_string(max_payload) + " bytes");
  return h;
}

frame_header make_ack(std::uint64_t tuple_id, ack_status status, std::size_t reason_length) {
  frame_header h;
  h.type = frame_type::ack;
  h.tuple_id = tuple_id;
  h.flags = static_cast<std::uint16_t>(status);
  h.payload_length = reason_length;
  return h;
}

frame_header make_error(std::uint64_t tuple_id, error_code code, std::size_t message_length) {
  frame_header h;
  h.type = frame_type::error;
  h.tuple_id = tuple_id;
  h.flags = static_cast<std::uint16_t>(code);
  h.payload_length = message_length;
  return h;
}

frame_header make_end() {
  frame_header h;
  h.type = frame_type::end;
  return h;
}

std::string_view to_string(error_code c) noexcept {
  switch (c) {
    case error_code::bad_magic: return "bad_magic";
    case error_code::bad_version: return "bad_version";
    case error_code::bad_frame: return "bad_frame";
    case error_code::too_large: return "too_large";
    case error_code::bad_token: return "bad_token";
    case error_code::checksum: return "checksum";
    case error_code::busy: return "busy";
    case error_code::timeout: return "timeout";
    case error_code::internal: return "internal";
    case error_code::unavailable: return "unavailable";
    case error_code::bad_codec: return "bad_codec";
  }
  return "unknown";
}

std::string_view to_string(ack_status s) noexcept {
  switch (s) {
    case ack_status::stored: return "stored";
    case ack_status::failed: return "failed";
    case ack_status::queued: return "queued";
  }
  return "unknown";
}

}  // namespace hio::wire
