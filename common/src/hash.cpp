#include <hio/common/hash.hpp>

#include <xxhash.h>
// On x86-64, libxxhash's dispatching entry points (which this header substitutes for XXH3_64bits and
// XXH3_64bits_update) choose the widest vector unit of the running processor once: SSE2, AVX2 or
// AVX-512. On a 6 MB tuple here AVX2 hashes at 22-29 GB/s, SSE2 at 8.
#if defined(__x86_64__)
#include <xxh_x86dispatch.h>
#endif

namespace hio {

std::uint64_t xxh3_64(std::span<const std::byte> data) noexcept { return XXH3_64bits(data.data(), data.size()); }

std::uint64_t xxh3_64(std::string_view data) noexcept { return XXH3_64bits(data.data(), data.size()); }

xxh3_stream::xxh3_stream() : state_(XXH3_createState()) { XXH3_64bits_reset(static_cast<XXH3_state_t*>(state_)); }

xxh3_stream::~xxh3_stream() { XXH3_freeState(static_cast<XXH3_state_t*>(state_)); }

void xxh3_stream::update(std::span<const std::byte> data) noexcept {
  XXH3_64bits_update(static_cast<XXH3_state_t*>(state_), data.data(), data.size());
}

std::uint64_t xxh3_stream::digest() const noexcept {
  return XXH3_64bits_digest(static_cast<XXH3_state_t*>(state_));
}

namespace {
constexpr char digits[] = "0123456789abcdef";

int hex_value(char c) noexcept {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}
}  // namespace

std::string to_hex16(std::uint64_t v) {
  std::string s(16, '0');
  for (int i = 15; i >= 0; --i, v >>= 4) s[i] = digits[v & 0xf];
  return s;
}

std::optional<std::uint64_t> from_hex16(std::string_view hex) {
  if (hex.size() != 16) return std::nullopt;
  std::uint64_t v = 0;
  for (char c : hex) {
    const int d = hex_value(c);
    if (d < 0) return std::nullopt;
    v = (v << 4) | static_cast<std::uint64_t>(d);
  }
  return v;
}

std::string to_hex(std::span<const std::byte> bytes) {
  std::string s;
  s.reserve(bytes.size() * 2);
  for (std::byte b : bytes) {
    const auto v = std::to_integer<unsigned>(b);
    s.push_back(digits[v >> 4]);
    s.push_back(digits[v & 0xf]);
  }
  return s;
}

std::optional<std::string> from_hex(std::string_view hex) {
  if (hex.size() % 2) return std::nullopt;
  std::string out(hex.size() / 2, '\0');
  for (std::size_t i = 0; i < out.size(); ++i) {
    const int hi = hex_value(hex[2 * i]), lo = hex_value(hex[2 * i + 1]);
    if (hi < 0 || lo < 0) return std::nullopt;
    out[i] = static_cast<char>((hi << 4) | lo);
  }
  return out;
}

}  // namespace hio
