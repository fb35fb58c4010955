#include <hio/common/record.hpp>

#include <cereal/archives/portable_binary.hpp>
#include <cereal/types/string.hpp>
#include <cereal/types/vector.hpp>
#include <zstd.h>

#include <sstream>

namespace hio {

template <class Archive>
void serialize(Archive& ar, feature& f) {
  ar(f.name, f.value);
}

template <class Archive>
void serialize(Archive& ar, named_series& s) {
  ar(s.name, s.values);
}

template <class Archive>
void serialize(Archive& ar, feature_record& r) {
  ar(r.tuple_id, r.cursor, r.source, r.size, r.xxh3, r.status, r.error, r.metadata, r.worker, r.channel,
     r.processed_at_ms, r.features, r.series);
}

namespace {
// A record as batches of the first format ("HIR1", before series) hold it; discovery's local logs may
// still contain such batches.
struct v1_record {
  feature_record& r;
  template <class Archive>
  void serialize(Archive& ar) {
    ar(r.tuple_id, r.cursor, r.source, r.size, r.xxh3, r.status, r.error, r.metadata, r.worker, r.channel,
       r.processed_at_ms, r.features);
  }
};
}  // namespace

std::string_view to_string(record_status s) noexcept { return s == record_status::stored ? "stored" : "failed"; }

namespace {
constexpr std::uint32_t batch_magic_v1 = 0x31524948;  // "HIR1": without series
constexpr std::uint32_t batch_magic = 0x32524948;     // "HIR2"
}

std::string encode_records(const std::vector<feature_record>& records) {
  std::ostringstream os;
  {
    cereal::PortableBinaryOutputArchive ar(os);
    ar(batch_magic, records);
  }
  const std::string raw = std::move(os).str();
  std::string out(ZSTD_compressBound(raw.size()), '\0');
  const std::size_t n = ZSTD_compress(out.data(), out.size(), raw.data(), raw.size(), 1);
  out.resize(ZSTD_isError(n) ? 0 : n);
  return out;
}

result<std::vector<feature_record>> decode_records(std::string_view bytes) {
  const unsigned long long size = ZSTD_getFrameContentSize(bytes.data(), bytes.size());
  if (size == ZSTD_CONTENTSIZE_ERROR || size == ZSTD_CONTENTSIZE_UNKNOWN || size > (1ull << 34))
    return make_error(400, "record batch is not a zstd frame of known size");
  std::string raw(size, '\0');
  const std::size_t n = ZSTD_decompress(raw.data(), raw.size(), bytes.data(), bytes.size());
  if (ZSTD_isError(n) || n != size) return make_error(400, "record batch does not decompress");
  try {
    std::istringstream is(raw);
    cereal::PortableBinaryInputArchive ar(is);
    std::uint32_t magic = 0;
    std::vector<feature_record> records;
    ar(magic);
    if (magic == batch_magic) {
      ar(records);
    } else if (magic == batch_magic_v1) {
      cereal::size_type n = 0;
      ar(cereal::make_size_tag(n));
      if (n > raw.size()) return make_error(400, "record batch is corrupt: impossible record count");
      records.resize(static_cast<std::size_t>(n));
      for (auto& r : records) ar(v1_record{r});
    } else {
      return make_error(400, "record batch has an unknown format");
    }
    return records;
  } catch (const std::exception& e) {
    return make_error(400, std::string("record batch is corrupt: ") + e.what());
  }
}

}  // namespace hio
