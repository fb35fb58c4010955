#pragma once
// The bytes a record occupies in a segment file: a 16-byte header (magic, payload length, XXH3-64 of the
// payload) and a payload holding what SQLite does not: the tuple id (to cross-check the row), the
// metadata text, the features and the series (absent in blobs written before series existed).
// Integers, doubles and floats are little-endian.

#include <hio/common/error.hpp>
#include <hio/common/record.hpp>

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace hio::repository::detail {

inline constexpr std::uint32_t blob_magic = 0x524f4948;  // "HIOR"
inline constexpr std::size_t blob_header_bytes = 16;

struct blob_contents {
  std::uint64_t tuple_id = 0;
  std::string metadata;
  std::vector<feature> features;
  std::vector<named_series> series;
};

// Appends the blob of `r` to `out`. Error (code 400) when a field is too long for its 32-bit length.
result<void> append_blob(const feature_record& r, std::string& out);

// Error (code 500) when `bytes` is not exactly one intact blob: bad magic, wrong length, checksum
// mismatch or a payload that does not parse.
result<blob_contents> decode_blob(std::string_view bytes);

}  // namespace hio::repository::detail
