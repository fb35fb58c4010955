#include <hio/worker/processor_protocol.hpp>

#include <bit>
#include <cstring>

namespace hio::worker::protocol {
namespace {

void put_u32(std::byte* p, std::uint32_t v) {
  for (int i = 0; i < 4; ++i) p[i] = static_cast<std::byte>((v >> (8 * i)) & 0xffu);
}

void put_u64(std::byte* p, std::uint64_t v) {
  for (int i = 0; i < 8; ++i) p[i] = static_cast<std::byte>((v >> (8 * i)) & 0xffu);
}

std::uint32_t get_u32(const std::byte* p) {
  std::uint32_t v = 0;
  for (int i = 3; i >= 0; --i) v = (v << 8) | std::to_integer<std::uint32_t>(p[i]);
  return v;
}

std::uint64_t get_u64(const std::byte* p) {
  std::uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | std::to_integer<std::uint64_t>(p[i]);
  return v;
}

bool has_magic(const std::byte* p, std::string_view magic) { return std::memcmp(p, magic.data(), 4) == 0; }

// The first bytes as text a person can read in a log: printable ASCII as is, the rest as \xNN.
std::string printable(std::span<const std::byte> bytes, std::size_t n) {
  std::string out;
  for (std::size_t i = 0; i < bytes.size() && i < n; ++i) {
    const auto c = std::to_integer<unsigned char>(bytes[i]);
    if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\') {
      out += static_cast<char>(c);
    } else {
      static constexpr char hex[] = "0123456789abcdef";
      out += "\\x";
      out += hex[c >> 4];
      out += hex[c & 0xf];
    }
  }
  return out;
}

// Length of the valid UTF-8 sequence starting at s[i] (no control characters below 0x20 except tab,
// no DEL), or 0 when there is none.
std::size_t utf8_sequence(std::string_view s, std::size_t i, bool allow_tab) {
  const auto c = static_cast<unsigned char>(s[i]);
  if (c < 0x80) return (c >= 0x20 && c != 0x7f) || (allow_tab && c == '\t') ? 1 : 0;
  std::size_t n = 0;
  std::uint32_t cp = 0;
  if ((c & 0xe0) == 0xc0) {
    n = 2;
    cp = c & 0x1f;
  } else if ((c & 0xf0) == 0xe0) {
    n = 3;
    cp = c & 0x0f;
  } else if ((c & 0xf8) == 0xf0) {
    n = 4;
    cp = c & 0x07;
  } else {
    return 0;
  }
  if (i + n > s.size()) return 0;
  for (std::size_t k = 1; k < n; ++k) {
    const auto b = static_cast<unsigned char>(s[i + k]);
    if ((b & 0xc0) != 0x80) return 0;
    cp = (cp << 6) | (b & 0x3f);
  }
  const bool overlong = (n == 2 && cp < 0x80) || (n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000);
  if (overlong || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff) || (cp >= 0x80 && cp < 0xa0)) return 0;
  return n;
}

error bad(std::string message) { return make_error(400, std::move(message)); }

}  // namespace

bool valid_feature_name(std::string_view name) noexcept {
  if (name.empty() || name.size() > max_feature_name_bytes) return false;
  for (std::size_t i = 0; i < name.size();) {
    const std::size_t n = utf8_sequence(name, i, /*allow_tab=*/false);
    if (n == 0) return false;
    i += n;
  }
  return true;
}

std::string sanitize_text(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size();) {
    const std::size_t n = utf8_sequence(text, i, /*allow_tab=*/true);
    if (n == 0) {
      out += '?';
      ++i;
    } else {
      out.append(text.substr(i, n));
      i += n;
    }
  }
  return out;
}

std::array<std::byte, header_bytes> encode_request_header(const request_header& h) {
  std::array<std::byte, header_bytes> out{};
  std::memcpy(out.data(), request_magic.data(), 4);
  put_u64(out.data() + 4, h.tuple_id);
  put_u32(out.data() + 12, h.metadata_bytes);
  put_u64(out.data() + 16, h.payload_bytes);
  return out;
}

result<request_header> decode_request_header(std::span<const std::byte, header_bytes> bytes) {
  if (!has_magic(bytes.data(), request_magic)) {
    return bad("not a processor request: expected magic \"HIOQ\", got \"" + printable(bytes, 4) + "\"");
  }
  request_header h;
  h.tuple_id = get_u64(bytes.data() + 4);
  h.metadata_bytes = get_u32(bytes.data() + 12);
  h.payload_bytes = get_u64(bytes.data() + 16);
  if (h.metadata_bytes > max_metadata_bytes) {
    return bad("processor request with " + std::to_string(h.metadata_bytes) + " bytes of metadata (limit " +
               std::to_string(max_metadata_bytes) + ")");
  }
  return h;
}

result<std::vector<std::byte>> encode_response(const response& r) {
  if (r.status != status::ok && r.status != status::failed) return bad("unknown response status");
  if (r.status == status::failed && !r.features.empty()) return bad("a failed response carries no features");
  if (r.features.size() > max_features) {
    return bad(std::to_string(r.features.size()) + " features (limit " + std::to_string(max_features) + ")");
  }
  if (r.error.size() > max_error_bytes) return bad("error text over " + std::to_string(max_error_bytes) + " bytes");
  std::size_t size = header_bytes + r.error.size();
  for (const auto& f : r.features) {
    if (!valid_feature_name(f.name)) {
      return bad("invalid feature name \"" + sanitize_text(f.name.substr(0, 64)) +
                 "\": 1..255 bytes of UTF-8 without control characters");
    }
    size += 4 + f.name.size() + 8;
  }
  std::vector<std::byte> out(size);
  std::byte* p = out.data();
  std::memcpy(p, response_magic.data(), 4);
  put_u32(p + 4, static_cast<std::uint32_t>(r.status));
  put_u64(p + 8, r.tuple_id);
  put_u32(p + 16, static_cast<std::uint32_t>(r.features.size()));
  put_u32(p + 20, static_cast<std::uint32_t>(r.error.size()));
  p += header_bytes;
  for (const auto& f : r.features) {
    put_u32(p, static_cast<std::uint32_t>(f.name.size()));
    std::memcpy(p + 4, f.name.data(), f.name.size());
    p += 4 + f.name.size();
    put_u64(p, std::bit_cast<std::uint64_t>(f.value));
    p += 8;
  }
  if (!r.error.empty()) std::memcpy(p, r.error.data(), r.error.size());
  return out;
}

result<std::optional<decoded_response>> decode_response(std::span<const std::byte> bytes) {
  if (bytes.empty()) return std::optional<decoded_response>{};
  // The magic is checked as soon as its bytes arrive, so a processor printing text fails fast.
  const std::size_t magic_seen = std::min<std::size_t>(bytes.size(), 4);
  if (std::memcmp(bytes.data(), response_magic.data(), magic_seen) != 0) {
    return bad("expected magic \"HIOR\", got \"" + printable(bytes, 16) +
               "\" (a processor must write nothing but responses to stdout; log to stderr)");
  }
  if (bytes.size() < header_bytes) return std::optional<decoded_response>{};
  const std::byte* h = bytes.data();
  decoded_response d;
  const std::uint32_t st = get_u32(h + 4);
  if (st != static_cast<std::uint32_t>(status::ok) && st != static_cast<std::uint32_t>(status::failed)) {
    return bad("unknown response status " + std::to_string(st) + " (0 ok, 1 failed)");
  }
  d.response.status = static_cast<status>(st);
  d.response.tuple_id = get_u64(h + 8);
  const std::uint32_t count = get_u32(h + 16);
  const std::uint32_t error_bytes = get_u32(h + 20);
  if (count > max_features) {
    return bad("response with " + std::to_string(count) + " features (limit " + std::to_string(max_features) + ")");
  }
  if (error_bytes > max_error_bytes) {
    return bad("response with " + std::to_string(error_bytes) + " bytes of error text (limit " +
               std::to_string(max_error_bytes) + ")");
  }
  if (d.response.status == status::failed && count != 0) return bad("a failed response carries features");
  std::size_t at = header_bytes;
  d.response.features.reserve(count);
  for (std::uint32_t i = 0; i < count; ++i) {
    if (bytes.size() < at + 4) return std::optional<decoded_response>{};
    const std::uint32_t n = get_u32(bytes.data() + at);
    if (n == 0 || n > max_feature_name_bytes) {
      return bad("feature " + std::to_string(i) + " has a name of " + std::to_string(n) + " bytes (1.." +
                 std::to_string(max_feature_name_bytes) + ")");
    }
    if (bytes.size() < at + 4 + n + 8) return std::optional<decoded_response>{};
    feature f;
    f.name.assign(reinterpret_cast<const char*>(bytes.data() + at + 4), n);
    if (!valid_feature_name(f.name)) {
      return bad("feature " + std::to_string(i) + " has a name that is not UTF-8 text: \"" +
                 sanitize_text(f.name.substr(0, 64)) + "\"");
    }
    f.value = std::bit_cast<double>(get_u64(bytes.data() + at + 4 + n));
    d.response.features.push_back(std::move(f));
    at += 4 + n + 8;
  }
  if (bytes.size() < at + error_bytes) return std::optional<decoded_response>{};
  d.response.error = sanitize_text(
      std::string_view(reinterpret_cast<const char*>(bytes.data() + at), error_bytes));
  d.bytes = at + error_bytes;
  return std::optional<decoded_response>{std::move(d)};
}

}  // namespace hio::worker::protocol
