#pragma once
// XXH3-64 checksums of tuples, and their 16-hex-digit spelling (the same as `xxhsum -H3`).

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace hio {

std::uint64_t xxh3_64(std::span<const std::byte> data) noexcept;
std::uint64_t xxh3_64(std::string_view data) noexcept;

// Incremental XXH3-64, for data that arrives in pieces. Not thread-safe.
class xxh3_stream {
 public:
  xxh3_stream();
  ~xxh3_stream();
  xxh3_stream(const xxh3_stream&) = delete;
  xxh3_stream& operator=(const xxh3_stream&) = delete;
  void update(std::span<const std::byte> data) noexcept;
  std::uint64_t digest() const noexcept;

 private:
  void* state_;
};

std::string to_hex16(std::uint64_t v);                          // 16 lower-case hex digits
std::optional<std::uint64_t> from_hex16(std::string_view hex);  // nullopt unless exactly 16 hex digits

std::string to_hex(std::span<const std::byte> bytes);
std::optional<std::string> from_hex(std::string_view hex);  // nullopt on odd length or a non-hex digit

}  // namespace hio
