#pragma once
// Lease tokens: a lease's identity and limits, authenticated with the cluster secret (HMAC-SHA256 truncated
// to 128 bits). The master mints them; channels and the master's queue port verify them without a round
// trip. Pure functions, thread-safe.

#include <hio/common/error.hpp>

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

namespace hio {

inline constexpr std::size_t lease_token_size = 40;

struct lease_token {
  std::uint64_t lease_id = 0;        // increasing, never reused (also across master restarts)
  std::uint64_t first_tuple_id = 0;  // the lease covers tuple ids [first_tuple_id, first_tuple_id + count)
  std::uint32_t count = 0;
  std::uint32_t expires_at = 0;      // unix seconds; a connection must start before this
  std::array<std::byte, 16> mac{};

  bool covers(std::uint64_t tuple_id) const noexcept {
    return tuple_id >= first_tuple_id && tuple_id - first_tuple_id < count;
  }
  friend bool operator==(const lease_token&, const lease_token&) = default;
};

// `target` names where the lease may be used: "<worker id>/<channel index>" or "queue".
lease_token mint_token(std::string_view secret, std::string_view target, std::uint64_t lease_id,
                       std::uint64_t first_tuple_id, std::uint32_t count, std::uint32_t expires_at);

// Error codes are wire::error_code::bad_token; the message says why (forged/other target, expired).
result<void> verify_token(const lease_token& t, std::string_view secret, std::string_view target,
                          std::uint32_t now_unix);

std::array<std::byte, lease_token_size> serialize(const lease_token& t) noexcept;
lease_token deserialize_token(std::span<const std::byte, lease_token_size> bytes) noexcept;

std::string to_hex(const lease_token& t);                       // 80 hex digits, as in REST bodies
result<lease_token> token_from_hex(std::string_view hex);

// A retry key: the proof that its holder was handed tuple ids [first, first + count) by the master, so that
// only it can ask for a retry lease over them. The first 16 bytes of HMAC-SHA256(cluster secret,
// "hio-ids-v1" 0x00 first count), as 32 hex digits; nothing is stored, so a restarted master with the same
// secret checks the keys it handed out before.
inline constexpr std::size_t retry_key_size = 16;
std::string retry_key(std::string_view secret, std::uint64_t first, std::uint32_t count);
// Whether `presented` (hex) is the retry key of [first, first + count), compared in constant time.
bool valid_retry_key(std::string_view presented, std::string_view secret, std::uint64_t first,
                     std::uint32_t count);

std::string channel_target(std::string_view worker_id, std::uint32_t channel);
inline constexpr std::string_view queue_target = "queue";

// A random secret of `bytes` bytes as hex, for clusters started without one.
std::string random_secret(std::size_t bytes = 32);

}  // namespace hio
