#include <hio/common/record.hpp>

#include <cereal/archives/portable_binary.hpp>
#include <cereal/types/string.hpp>
#include <cereal/types/vector.hpp>
#include <zstd.h>

#include <algorithm>
#include <sstream>
#include <stdexcept>

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
constexpr std::uint32_t batch_magic_v1 = 0x31524948;  // "HIR1": without series
constexpr std::uint32_t batch_magic = 0x32524948;     // "HIR2"

// Reads a batch, checking every count and length it declares against the bytes left in it before
// anything is allocated (cereal's own loaders resize to whatever size they read: a few bytes that
// declare 2^40 records or a 1 TiB string would allocate that much). Throws on corrupt input.
class batch_reader {
 public:
  explicit batch_reader(std::istream& is) : is_(is), ar_(is) {}

  template <class T>
  void number(T& v) { ar_(v); }

  // A count of items that take at least `min_bytes` each in the batch.
  std::size_t count(std::size_t min_bytes) {
    cereal::size_type n = 0;
    ar_(cereal::make_size_tag(n));
    const auto left = static_cast<std::uint64_t>(std::max<std::streamsize>(is_.rdbuf()->in_avail(), 0));
    if (n > left / min_bytes)
      throw std::runtime_error("a length of " + std::to_string(n) + " with " + std::to_string(left) + " bytes left");
    return static_cast<std::size_t>(n);
  }

  void read(std::string& s) {
    s.resize(count(1));
    ar_(cereal::binary_data(s.data(), s.size()));
  }
  void read(std::vector<float>& v) {
    v.resize(count(sizeof(float)));
    ar_(cereal::binary_data(v.data(), v.size() * sizeof(float)));
  }
  void read(feature& f) {
    read(f.name);
    number(f.value);
  }
  void read(named_series& s) {
    read(s.name);
    read(s.values);
  }
  template <class T>
  void read(std::vector<T>& v, std::size_t min_bytes) {
    v.resize(count(min_bytes));
    for (auto& x : v) read(x);
  }
  // `with_series` false: a record of the first format ("HIR1"); discovery's local logs may still hold such batches.
  void read(feature_record& r, bool with_series) {
    number(r.tuple_id);
    number(r.cursor);
    read(r.source);
    number(r.size);
    number(r.xxh3);
    number(r.status);
    if (r.status != record_status::stored && r.status != record_status::failed)
      throw std::runtime_error("unknown record status " + std::to_string(static_cast<unsigned>(r.status)));
    read(r.error);
    read(r.metadata);
    read(r.worker);
    number(r.channel);
    number(r.processed_at_ms);
    read(r.features, min_item_bytes);
    if (with_series) read(r.series, min_item_bytes);
  }

  // The fewest bytes a feature or a series takes (a length, then 8 bytes), and a record (its fixed
  // fields and the lengths of its strings and arrays).
  static constexpr std::size_t min_item_bytes = 16;
  static constexpr std::size_t min_record_bytes = 93;

 private:
  std::istream& is_;
  cereal::PortableBinaryInputArchive ar_;
};
}  // namespace

std::string_view to_string(record_status s) noexcept { return s == record_status::stored ? "stored" : "failed"; }

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

namespace {
// The most bytes a zstd frame of `n` bytes can decode to: a block regenerates at most 128 KiB and takes
// at least 4 bytes (an RLE block). Bounds what a frame may declare before its output is allocated.
std::uint64_t max_decoded_bytes(std::size_t n) { return std::uint64_t{n} / 4 * (128 << 10); }
}  // namespace

result<std::vector<feature_record>> decode_records(std::string_view bytes) {
  const unsigned long long size = ZSTD_getFrameContentSize(bytes.data(), bytes.size());
  if (size == ZSTD_CONTENTSIZE_ERROR || size == ZSTD_CONTENTSIZE_UNKNOWN)
    return make_error(400, "record batch is not a zstd frame of known size");
  if (size > max_record_batch_decoded_bytes)
    return make_error(400, "record batch declares " + std::to_string(size) + " bytes decoded, over the limit of " +
                               std::to_string(max_record_batch_decoded_bytes));
  if (size > max_decoded_bytes(bytes.size()))
    return make_error(400, "record batch declares " + std::to_string(size) + " bytes, more than a zstd frame of " +
                               std::to_string(bytes.size()) + " bytes can hold");
  std::string raw(size, '\0');
  const std::size_t n = ZSTD_decompress(raw.data(), raw.size(), bytes.data(), bytes.size());
  if (ZSTD_isError(n) || n != size) return make_error(400, "record batch does not decompress");
  try {
    std::istringstream is(raw);
    batch_reader in(is);
    std::uint32_t magic = 0;
    in.number(magic);
    if (magic != batch_magic && magic != batch_magic_v1) return make_error(400, "record batch has an unknown format");
    std::vector<feature_record> records(in.count(batch_reader::min_record_bytes));
    for (auto& r : records) in.read(r, magic == batch_magic);
    return records;
  } catch (const std::exception& e) {
    return make_error(400, std::string("record batch is corrupt: ") + e.what());
  }
}

}  // namespace hio
