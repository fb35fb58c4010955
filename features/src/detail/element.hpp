#pragma once
// Loading one .npy element of any supported dtype and byte order as a double.

#include <hio/features/npy.hpp>

#include <bit>
#include <cstdint>
#include <cstring>

namespace hio::features::detail {

// std::byteswap is C++23.
template <class U>
constexpr U byteswap(U u) noexcept {
  if constexpr (sizeof(U) == 2) return __builtin_bswap16(u);
  else if constexpr (sizeof(U) == 4) return __builtin_bswap32(u);
  else if constexpr (sizeof(U) == 8) return __builtin_bswap64(u);
  else return u;
}

template <class U>
inline U load_bits(const std::byte* p, bool swap) noexcept {
  U u;
  std::memcpy(&u, p, sizeof(U));
  if constexpr (sizeof(U) > 1) {
    if (swap) u = byteswap(u);
  }
  return u;
}

inline double load_element(const std::byte* p, dtype type, bool swap) noexcept {
  switch (type) {
    case dtype::i1: return static_cast<std::int8_t>(load_bits<std::uint8_t>(p, false));
    case dtype::u1: return load_bits<std::uint8_t>(p, false);
    case dtype::i2: return static_cast<std::int16_t>(load_bits<std::uint16_t>(p, swap));
    case dtype::u2: return load_bits<std::uint16_t>(p, swap);
    case dtype::i4: return static_cast<std::int32_t>(load_bits<std::uint32_t>(p, swap));
    case dtype::u4: return load_bits<std::uint32_t>(p, swap);
    case dtype::i8: return static_cast<double>(static_cast<std::int64_t>(load_bits<std::uint64_t>(p, swap)));
    case dtype::u8: return static_cast<double>(load_bits<std::uint64_t>(p, swap));
    case dtype::f4: return std::bit_cast<float>(load_bits<std::uint32_t>(p, swap));
    case dtype::f8: return std::bit_cast<double>(load_bits<std::uint64_t>(p, swap));
  }
  return 0;
}

// True when elements can be read in place: native byte order (or one-byte items).
inline bool native_order(const npy_array& a) noexcept {
  return item_size(a.type) == 1 || a.big_endian == (std::endian::native == std::endian::big);
}

}  // namespace hio::features::detail
