#pragma once
// Little-endian stores and loads for the wire format (x86-64 and arm64 are little-endian; memcpy keeps it
// alignment-safe and compiles to single moves).

#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>

namespace hio::detail {

static_assert(std::endian::native == std::endian::little, "hio's wire code assumes a little-endian host");

template <class T>
void store_le(std::byte* p, T v) noexcept {
  std::memcpy(p, &v, sizeof v);
}

template <class T>
T load_le(const std::byte* p) noexcept {
  T v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

}  // namespace hio::detail
