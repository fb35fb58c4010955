// hio::xxh3_64 (libxxhash's dispatching entry points: AVX2 or AVX-512 where present) against a scalar
// build of the same algorithm compiled here, and the streaming form against the one-shot one.
#define XXH_INLINE_ALL
#define XXH_VECTOR XXH_SCALAR
#include <xxhash.h>

#include <hio/common/hash.hpp>

#include <doctest/doctest.h>

#include <cstddef>
#include <random>
#include <span>
#include <vector>

namespace {
std::vector<std::byte> random_bytes(std::size_t n, unsigned seed) {
  std::vector<std::byte> v(n);
  std::mt19937 rng(seed);
  for (auto& b : v) b = static_cast<std::byte>(rng());
  return v;
}
}  // namespace

TEST_CASE("xxh3_64 equals the scalar XXH3-64 at every length class, from every alignment") {
  CHECK(hio::to_hex16(hio::xxh3_64(std::string_view{})) == "2d06800538d394c2");  // xxhsum -H3 of nothing
  const auto data = random_bytes((6u << 20) + 64, 7);
  std::vector<std::size_t> lengths;
  for (std::size_t n = 0; n <= 300; ++n) lengths.push_back(n);  // 0-16, 17-128, 129-240, 240+: each path
  for (std::size_t n : {1023u, 1024u, 4096u, 65537u, 6u << 20}) lengths.push_back(n);
  for (std::size_t offset : {0u, 1u, 7u, 32u}) {
    for (std::size_t n : lengths) {
      const std::span<const std::byte> s(data.data() + offset, n);
      REQUIRE_MESSAGE(hio::xxh3_64(s) == XXH3_64bits(s.data(), s.size()), "length ", n, " offset ", offset);
    }
  }
}

TEST_CASE("xxh3_stream fed in pieces of any size equals xxh3_64 of the whole") {
  const auto data = random_bytes(3u << 20, 11);
  std::mt19937 rng(3);
  for (int round = 0; round < 20; ++round) {
    hio::xxh3_stream st;
    std::size_t at = 0;
    while (at < data.size()) {
      const std::size_t piece = std::min<std::size_t>(data.size() - at, rng() % (round < 10 ? 300 : 200000));
      st.update(std::span(data).subspan(at, piece));
      at += piece;
    }
    REQUIRE(st.digest() == hio::xxh3_64(data));
  }
}
