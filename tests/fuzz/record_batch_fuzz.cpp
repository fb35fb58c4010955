// The record batch decoder (common/src/record.cpp decode_records): POST /v1/records bodies at the
// repository, and the pages and local logs discovery reads back. Input: one mode byte, then either the
// batch as sent (even mode byte: a zstd frame) or the batch's decompressed bytes (odd mode byte: this
// target compresses them first, so that mutations reach the record format inside the frame).
#include <hio/common/record.hpp>

#include "fuzz_check.hpp"

#include <zstd.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace {

// Bytes the decoded records hold in strings and arrays: each came from that many bytes of the batch.
std::size_t held_bytes(const std::vector<hio::feature_record>& records) {
  std::size_t n = 0;
  for (const auto& r : records) {
    n += r.source.size() + r.error.size() + r.metadata.size() + r.worker.size();
    for (const auto& f : r.features) n += f.name.size() + sizeof f.value;
    for (const auto& s : r.series) n += s.name.size() + s.values.size() * sizeof(float);
  }
  return n;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1) return 0;
  const bool compress = data[0] & 1;
  std::string_view rest(reinterpret_cast<const char*>(data + 1), size - 1);
  std::string batch;
  if (compress) {
    batch.resize(ZSTD_compressBound(rest.size()));
    const std::size_t n = ZSTD_compress(batch.data(), batch.size(), rest.data(), rest.size(), 1);
    HIO_FUZZ_CHECK(!ZSTD_isError(n));
    batch.resize(n);
  } else {
    batch.assign(rest);
  }

  const auto records = hio::decode_records(batch);
  if (!records) {
    HIO_FUZZ_CHECK(records.error().code == 400 && !records.error().message.empty());
    return 0;
  }
  if (compress) HIO_FUZZ_CHECK(held_bytes(*records) <= rest.size());
  // A decoded batch encodes and decodes to the same records (compared as bytes: a feature may be NaN).
  const std::string encoded = hio::encode_records(*records);
  const auto again = hio::decode_records(encoded);
  HIO_FUZZ_CHECK(again.has_value());
  HIO_FUZZ_CHECK(again->size() == records->size());
  HIO_FUZZ_CHECK(hio::encode_records(*again) == encoded);
  return 0;
}
