#pragma once

#include <chrono>
#include <cstdint>
#include <ctime>

namespace hio {

inline std::int64_t unix_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}
inline std::uint32_t unix_seconds() { return static_cast<std::uint32_t>(unix_ms() / 1000); }

// CPU time the calling thread has used, in milliseconds (grows slower than wall time on a busy machine).
inline double thread_cpu_ms() {
  timespec ts{};
  ::clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) * 1e3 + static_cast<double>(ts.tv_nsec) / 1e6;
}

}  // namespace hio
