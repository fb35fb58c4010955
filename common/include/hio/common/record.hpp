#pragma once
// What a channel drains to the repository for each tuple it has processed, and the compact binary batch
// (cereal portable binary inside one zstd frame) used for POST /v1/records and GET /v1/features?format=binary.

#include <hio/common/error.hpp>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace hio {

enum class record_status : std::uint8_t { stored = 0, failed = 1 };

std::string_view to_string(record_status s) noexcept;

struct feature {
  std::string name;
  double value = 0;
  friend bool operator==(const feature&, const feature&) = default;
};

// A short series kept beside the features for people to look at, e.g. a species' summed time series
// downsampled to a few hundred points (the dashboard plots it). Not used for clustering.
struct named_series {
  std::string name;
  std::vector<float> values;
  friend bool operator==(const named_series&, const named_series&) = default;
};

struct feature_record {
  std::uint64_t tuple_id = 0;
  std::uint64_t cursor = 0;      // assigned by the repository on first store; 0 when draining
  std::string source;            // the source's name, from the frame metadata ("" if none)
  std::uint64_t size = 0;        // tuple bytes, uncompressed
  std::uint64_t xxh3 = 0;        // XXH3-64 of the tuple, verified by the channel
  record_status status = record_status::stored;
  std::string error;             // why processing failed (status failed)
  std::string metadata;          // the frame's metadata, JSON text ("" if none)
  std::string worker;            // which worker and channel processed it
  std::uint32_t channel = 0;
  std::int64_t processed_at_ms = 0;  // unix milliseconds
  std::vector<feature> features;
  std::vector<named_series> series;  // previews from the processor; empty for most processors

  friend bool operator==(const feature_record&, const feature_record&) = default;
};

// The most bytes a record batch may take as it travels (zstd), the repository's POST /v1/records body
// limit, and decoded: 8 times that, room for a channel's largest batch (256 tuples with 1 MiB of
// metadata each, their features and errors).
inline constexpr std::uint64_t max_record_batch_bytes = 64ull << 20;
inline constexpr std::uint64_t max_record_batch_decoded_bytes = 8 * max_record_batch_bytes;

std::string encode_records(const std::vector<feature_record>& records);
// Error (code 400) when the bytes are not a valid batch: corrupt, truncated, not zstd, declaring more
// than max_record_batch_decoded_bytes, or with a record status other than stored and failed.
result<std::vector<feature_record>> decode_records(std::string_view bytes);

}  // namespace hio
