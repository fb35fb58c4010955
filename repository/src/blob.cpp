#include "blob.hpp"

#include <hio/common/hash.hpp>

#include <bit>
#include <cstring>
#include <limits>

namespace hio::repository::detail {
namespace {

void put_u32(std::string& out, std::uint32_t v) {
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}
void put_u64(std::string& out, std::uint64_t v) {
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

bool fits_u32(std::size_t n) { return n <= std::numeric_limits<std::uint32_t>::max(); }

// Reads little-endian fields from a byte range; any read past the end sets ok_ to false.
class reader {
 public:
  explicit reader(std::string_view bytes) : bytes_(bytes) {}
  std::uint64_t uint(int width) {
    if (!ok_ || bytes_.size() - pos_ < static_cast<std::size_t>(width)) {
      ok_ = false;
      return 0;
    }
    std::uint64_t v = 0;
    for (int i = 0; i < width; ++i) {
      v |= static_cast<std::uint64_t>(static_cast<unsigned char>(bytes_[pos_ + i])) << (8 * i);
    }
    pos_ += width;
    return v;
  }
  std::string text(std::size_t n) {
    if (!ok_ || bytes_.size() - pos_ < n) {
      ok_ = false;
      return {};
    }
    std::string s(bytes_.substr(pos_, n));
    pos_ += n;
    return s;
  }
  std::size_t remaining() const { return bytes_.size() - pos_; }
  bool ok() const { return ok_; }

 private:
  std::string_view bytes_;
  std::size_t pos_ = 0;
  bool ok_ = true;
};

}  // namespace

result<void> append_blob(const feature_record& r, std::string& out) {
  if (!fits_u32(r.metadata.size()) || !fits_u32(r.features.size())) {
    return make_error(400, "record of tuple " + std::to_string(r.tuple_id) + " is too large to store");
  }
  std::string payload;
  payload.reserve(16 + r.metadata.size() + r.features.size() * 24);
  put_u64(payload, r.tuple_id);
  put_u32(payload, static_cast<std::uint32_t>(r.metadata.size()));
  payload += r.metadata;
  put_u32(payload, static_cast<std::uint32_t>(r.features.size()));
  for (const auto& f : r.features) {
    if (!fits_u32(f.name.size())) {
      return make_error(400, "a feature name of tuple " + std::to_string(r.tuple_id) + " is too long");
    }
    put_u32(payload, static_cast<std::uint32_t>(f.name.size()));
    payload += f.name;
    put_u64(payload, std::bit_cast<std::uint64_t>(f.value));
  }
  if (!r.series.empty()) {
    if (!fits_u32(r.series.size())) {
      return make_error(400, "record of tuple " + std::to_string(r.tuple_id) + " has too many series");
    }
    put_u32(payload, static_cast<std::uint32_t>(r.series.size()));
    for (const auto& s : r.series) {
      if (!fits_u32(s.name.size()) || !fits_u32(s.values.size())) {
        return make_error(400, "a series of tuple " + std::to_string(r.tuple_id) + " is too long");
      }
      put_u32(payload, static_cast<std::uint32_t>(s.name.size()));
      payload += s.name;
      put_u32(payload, static_cast<std::uint32_t>(s.values.size()));
      for (const float v : s.values) put_u32(payload, std::bit_cast<std::uint32_t>(v));
    }
  }
  if (!fits_u32(payload.size())) {
    return make_error(400, "record of tuple " + std::to_string(r.tuple_id) + " is too large to store");
  }
  put_u32(out, blob_magic);
  put_u32(out, static_cast<std::uint32_t>(payload.size()));
  put_u64(out, xxh3_64(std::string_view(payload)));
  out += payload;
  return {};
}

result<blob_contents> decode_blob(std::string_view bytes) {
  reader header(bytes.substr(0, blob_header_bytes));
  const auto magic = header.uint(4);
  const auto length = header.uint(4);
  const auto checksum = header.uint(8);
  if (!header.ok() || magic != blob_magic) return make_error(500, "segment blob has no valid header");
  if (bytes.size() - blob_header_bytes != length) {
    return make_error(500, "segment blob length does not match its header");
  }
  const auto payload = bytes.substr(blob_header_bytes);
  if (xxh3_64(payload) != checksum) return make_error(500, "segment blob fails its checksum");

  reader in(payload);
  blob_contents c;
  c.tuple_id = in.uint(8);
  c.metadata = in.text(in.uint(4));
  const auto n = in.uint(4);
  // Each feature takes at least 12 bytes: never reserve more than the payload could hold.
  if (in.ok() && n <= in.remaining() / 12) c.features.reserve(n);
  for (std::uint64_t i = 0; i < n && in.ok(); ++i) {
    feature f;
    f.name = in.text(in.uint(4));
    f.value = std::bit_cast<double>(in.uint(8));
    c.features.push_back(std::move(f));
  }
  if (in.ok() && in.remaining() > 0) {
    const auto count = in.uint(4);
    for (std::uint64_t i = 0; i < count && in.ok(); ++i) {
      named_series s;
      s.name = in.text(in.uint(4));
      const auto values = in.uint(4);
      if (values > in.remaining() / 4) return make_error(500, "segment blob payload is malformed");
      s.values.resize(values);
      for (auto& v : s.values) v = std::bit_cast<float>(static_cast<std::uint32_t>(in.uint(4)));
      c.series.push_back(std::move(s));
    }
  }
  if (!in.ok() || in.remaining() != 0) return make_error(500, "segment blob payload is malformed");
  return c;
}

}  // namespace hio::repository::detail
