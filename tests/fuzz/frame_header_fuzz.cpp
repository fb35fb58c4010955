// The data-path frame header (common/src/wire.cpp): 80 bytes from any peer. Input: the 80 header
// bytes, then optionally 8 bytes of the receiver's maximum payload (little-endian).
#include <hio/common/wire.hpp>

#include "fuzz_check.hpp"

#include <cstddef>
#include <cstdint>
#include <cstring>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace hio::wire;
  if (size < header_size) return 0;
  header_bytes in;
  std::memcpy(in.data(), data, header_size);
  std::uint64_t max_payload = default_max_tuple_bytes;
  if (size >= header_size + 8) std::memcpy(&max_payload, data + header_size, 8);

  const auto h = decode(in, max_payload);
  if (!h) {
    const int code = h.error().code;
    HIO_FUZZ_CHECK(code >= static_cast<int>(error_code::bad_magic) &&
                   code <= static_cast<int>(error_code::bad_codec));
    HIO_FUZZ_CHECK(!h.error().message.empty());
    return 0;
  }
  // What decode accepts is within its limits...
  HIO_FUZZ_CHECK(static_cast<std::uint16_t>(h->type) >= 1 && static_cast<std::uint16_t>(h->type) <= 4);
  HIO_FUZZ_CHECK(h->payload_codec == codec::raw || h->payload_codec == codec::zstd);
  HIO_FUZZ_CHECK(h->metadata_length <= max_metadata_bytes);
  HIO_FUZZ_CHECK(h->payload_length <= max_payload);
  // ...and every field of the header is kept: encoding it again gives the same 80 bytes.
  const auto out = encode(*h);
  HIO_FUZZ_CHECK(std::memcmp(out.data(), in.data(), header_size) == 0);
  const auto again = decode(out, max_payload);
  HIO_FUZZ_CHECK(again && again->tuple_id == h->tuple_id && again->token == h->token &&
                 again->flags == h->flags && again->xxh3 == h->xxh3);
  return 0;
}
