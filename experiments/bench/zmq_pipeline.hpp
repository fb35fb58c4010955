#pragma once
// What the ZeroMQ baseline's source, broker and sink share: the frames they exchange and the per-tuple
// CPU burn. A tuple travels as two frames, a tuple_header and the payload; the sink answers with one
// ack_frame once it has verified and processed the tuple, and the broker relays both directions.

#include <hio/common/clock.hpp>

#include <chrono>
#include <cstdint>

namespace hio::bench {

struct tuple_header {
  std::uint64_t tuple_id = 0;
  std::uint64_t xxh3 = 0;  // XXH3-64 of the payload, computed by the source, verified by the sink
  std::uint32_t sender = 0;
  std::uint32_t reserved = 0;
};

enum class ack_status : std::uint32_t { processed = 0, checksum_mismatch = 1, malformed = 2 };

struct ack_frame {
  std::uint64_t tuple_id = 0;
  std::uint32_t sender = 0;
  ack_status status = ack_status::processed;
};

// Burns `ms` milliseconds of the calling thread's CPU time with the same xorshift loop as the worker's
// `busy:MS` processor, so both systems spend the same CPU per tuple (on a loaded machine both take longer).
inline void burn_cpu(std::chrono::milliseconds ms) {
  const double deadline = thread_cpu_ms() + static_cast<double>(ms.count());
  volatile std::uint64_t x = 88172645463325252ull;
  while (thread_cpu_ms() < deadline) {
    for (int i = 0; i < 1000; ++i) {
      std::uint64_t v = x;
      v ^= v << 13;
      v ^= v >> 7;
      v ^= v << 17;
      x = v;
    }
  }
}

}  // namespace hio::bench
