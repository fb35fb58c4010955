#pragma once

#include <chrono>
#include <cstdint>

namespace hio {

inline std::int64_t unix_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}
inline std::uint32_t unix_seconds() { return static_cast<std::uint32_t>(unix_ms() / 1000); }

}  // namespace hio
