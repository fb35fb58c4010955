#include <hio/common/hash.hpp>
#include <hio/common/token.hpp>
#include <hio/common/wire.hpp>

#include "detail_endian.hpp"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include <cstring>
#include <stdexcept>

namespace hio {
namespace {

using detail::load_le;
using detail::store_le;

// The first N bytes of HMAC-SHA256(secret, msg).
template <std::size_t N>
std::array<std::byte, N> truncated_hmac(std::string_view secret, std::string_view msg) {
  static_assert(N <= 32);
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int out_len = 0;
  HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
       reinterpret_cast<const unsigned char*>(msg.data()), msg.size(), out, &out_len);
  std::array<std::byte, N> mac;
  std::memcpy(mac.data(), out, N);
  return mac;
}

std::array<std::byte, 16> compute_mac(std::string_view secret, std::string_view target, std::uint64_t lease_id,
                                      std::uint64_t first, std::uint32_t count, std::uint32_t expires) {
  std::string msg = "hio-lease-v1";
  msg.push_back('\0');
  msg.append(target);
  msg.push_back('\0');
  std::byte fields[24];
  store_le(fields, lease_id);
  store_le(fields + 8, first);
  store_le(fields + 16, count);
  store_le(fields + 20, expires);
  msg.append(reinterpret_cast<const char*>(fields), sizeof fields);
  return truncated_hmac<16>(secret, msg);
}

std::array<std::byte, retry_key_size> compute_retry_key(std::string_view secret, std::uint64_t first,
                                                       std::uint32_t count) {
  std::string msg = "hio-ids-v1";
  msg.push_back('\0');
  std::byte fields[12];
  store_le(fields, first);
  store_le(fields + 8, count);
  msg.append(reinterpret_cast<const char*>(fields), sizeof fields);
  return truncated_hmac<retry_key_size>(secret, msg);
}

}  // namespace

std::string retry_key(std::string_view secret, std::uint64_t first, std::uint32_t count) {
  const auto key = compute_retry_key(secret, first, count);
  return to_hex(std::span<const std::byte>(key));
}

bool valid_retry_key(std::string_view presented, std::string_view secret, std::uint64_t first,
                     std::uint32_t count) {
  const auto raw = from_hex(presented);
  if (!raw || raw->size() != retry_key_size) return false;
  const auto expected = compute_retry_key(secret, first, count);
  return CRYPTO_memcmp(expected.data(), raw->data(), expected.size()) == 0;
}

lease_token mint_token(std::string_view secret, std::string_view target, std::uint64_t lease_id,
                       std::uint64_t first_tuple_id, std::uint32_t count, std::uint32_t expires_at) {
  lease_token t{lease_id, first_tuple_id, count, expires_at, {}};
  t.mac = compute_mac(secret, target, lease_id, first_tuple_id, count, expires_at);
  return t;
}

result<void> verify_token(const lease_token& t, std::string_view secret, std::string_view target,
                          std::uint32_t now_unix) {
  const auto code = static_cast<int>(wire::error_code::bad_token);
  const auto expected = compute_mac(secret, target, t.lease_id, t.first_tuple_id, t.count, t.expires_at);
  if (CRYPTO_memcmp(expected.data(), t.mac.data(), expected.size()) != 0)
    return make_error(code, "lease token is not valid here (forged, or issued for another channel)");
  if (now_unix > t.expires_at)
    return make_error(code, "lease token expired " + std::to_string(now_unix - t.expires_at) +
                                " s ago; ask the master for a new lease");
  return {};
}

std::array<std::byte, lease_token_size> serialize(const lease_token& t) noexcept {
  std::array<std::byte, lease_token_size> b{};
  store_le(b.data(), t.lease_id);
  store_le(b.data() + 8, t.first_tuple_id);
  store_le(b.data() + 16, t.count);
  store_le(b.data() + 20, t.expires_at);
  std::memcpy(b.data() + 24, t.mac.data(), t.mac.size());
  return b;
}

lease_token deserialize_token(std::span<const std::byte, lease_token_size> b) noexcept {
  lease_token t;
  t.lease_id = load_le<std::uint64_t>(b.data());
  t.first_tuple_id = load_le<std::uint64_t>(b.data() + 8);
  t.count = load_le<std::uint32_t>(b.data() + 16);
  t.expires_at = load_le<std::uint32_t>(b.data() + 20);
  std::memcpy(t.mac.data(), b.data() + 24, t.mac.size());
  return t;
}

std::string to_hex(const lease_token& t) {
  const auto b = serialize(t);
  return to_hex(std::span<const std::byte>(b));
}

result<lease_token> token_from_hex(std::string_view hex) {
  const auto raw = from_hex(hex);
  if (!raw || raw->size() != lease_token_size)
    return make_error(static_cast<int>(wire::error_code::bad_token),
                      "lease token must be " + std::to_string(2 * lease_token_size) + " hex digits");
  return deserialize_token(std::span<const std::byte, lease_token_size>(
      reinterpret_cast<const std::byte*>(raw->data()), lease_token_size));
}

std::string channel_target(std::string_view worker_id, std::uint32_t channel) {
  std::string s(worker_id);
  s.push_back('/');
  s.append(std::to_string(channel));
  return s;
}

std::string random_secret(std::size_t bytes) {
  std::string raw(bytes, '\0');
  if (RAND_bytes(reinterpret_cast<unsigned char*>(raw.data()), static_cast<int>(bytes)) != 1)
    throw std::runtime_error("no randomness available for a cluster secret");
  return to_hex(std::span<const std::byte>(reinterpret_cast<const std::byte*>(raw.data()), raw.size()));
}

}  // namespace hio
