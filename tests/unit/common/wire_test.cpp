#include <hio/common/hash.hpp>
#include <hio/common/token.hpp>
#include <hio/common/wire.hpp>

#include <doctest/doctest.h>

#include <cstring>

using namespace hio;

TEST_CASE("a data frame header survives encode and decode with every field") {
  wire::frame_header h;
  h.type = wire::frame_type::data;
  h.tuple_id = 0x0102030405060708ull;
  h.token = mint_token("secret", "w1/0", 7, 100, 64, 2000000000u);
  h.payload_length = 6 << 20;
  h.metadata_length = 123;
  h.payload_codec = wire::codec::zstd;
  h.xxh3 = 0xdeadbeefcafef00dull;
  const auto bytes = wire::encode(h);
  auto back = wire::decode(bytes);
  REQUIRE(back.has_value());
  CHECK(back->tuple_id == h.tuple_id);
  CHECK(back->token == h.token);
  CHECK(back->payload_length == h.payload_length);
  CHECK(back->metadata_length == 123);
  CHECK(back->payload_codec == wire::codec::zstd);
  CHECK(back->xxh3 == h.xxh3);
}

TEST_CASE("decode refuses bad magic, version, type, codec and oversize lengths with distinct codes") {
  auto base = wire::encode(wire::frame_header{});
  auto code_of = [](wire::header_bytes b, std::uint64_t max = wire::default_max_tuple_bytes) {
    auto r = wire::decode(b, max);
    REQUIRE_FALSE(r.has_value());
    return static_cast<wire::error_code>(r.error().code);
  };
  auto b = base;
  b[0] = std::byte{'X'};
  CHECK(code_of(b) == wire::error_code::bad_magic);
  b = base;
  b[4] = std::byte{9};
  CHECK(code_of(b) == wire::error_code::bad_version);
  b = base;
  b[6] = std::byte{77};
  CHECK(code_of(b) == wire::error_code::bad_frame);
  b = base;
  b[68] = std::byte{5};
  CHECK(code_of(b) == wire::error_code::bad_codec);
  wire::frame_header big;
  big.payload_length = 1001;
  CHECK(code_of(wire::encode(big), 1000) == wire::error_code::too_large);
  wire::frame_header meta;
  meta.metadata_length = wire::max_metadata_bytes + 1;
  CHECK(code_of(wire::encode(meta)) == wire::error_code::bad_frame);
}

TEST_CASE("a lease token verifies only with its secret, its target and before it expires") {
  const auto t = mint_token("s3cret", "w1/2", 5, 1000, 10, 500);
  CHECK(verify_token(t, "s3cret", "w1/2", 499).has_value());
  CHECK(verify_token(t, "s3cret", "w1/2", 500).has_value());
  CHECK_FALSE(verify_token(t, "s3cret", "w1/2", 501).has_value());
  CHECK_FALSE(verify_token(t, "other", "w1/2", 100).has_value());
  CHECK_FALSE(verify_token(t, "s3cret", "w1/3", 100).has_value());
  auto forged = t;
  forged.count = 1000;
  CHECK_FALSE(verify_token(forged, "s3cret", "w1/2", 100).has_value());
  CHECK(t.covers(1000));
  CHECK(t.covers(1009));
  CHECK_FALSE(t.covers(1010));
  CHECK_FALSE(t.covers(999));
}

TEST_CASE("a lease token round-trips through its 80-digit hex form") {
  const auto t = mint_token("k", "queue", 1, 2, 3, 4);
  const auto hex = to_hex(t);
  CHECK(hex.size() == 80);
  auto back = token_from_hex(hex);
  REQUIRE(back.has_value());
  CHECK(*back == t);
  CHECK_FALSE(token_from_hex("abc").has_value());
  CHECK_FALSE(token_from_hex(std::string(80, 'z')).has_value());
}

TEST_CASE("a retry key proves exactly one id range under one secret") {
  const auto k = retry_key("s3cret", 1000, 10);
  CHECK(k.size() == 2 * retry_key_size);
  CHECK(valid_retry_key(k, "s3cret", 1000, 10));
  CHECK_FALSE(valid_retry_key(k, "other", 1000, 10));
  CHECK_FALSE(valid_retry_key(k, "s3cret", 1001, 10));
  CHECK_FALSE(valid_retry_key(k, "s3cret", 1000, 11));
  CHECK_FALSE(valid_retry_key(k.substr(0, 30), "s3cret", 1000, 10));
  CHECK_FALSE(valid_retry_key("", "s3cret", 1000, 10));
  CHECK_FALSE(valid_retry_key(std::string(32, 'z'), "s3cret", 1000, 10));
  // Not the MAC of a lease token over the same range: the two are keyed for different uses.
  const auto t = mint_token("s3cret", "queue", 1, 1000, 10, 500);
  CHECK(k != to_hex(std::span<const std::byte>(t.mac)));
}

TEST_CASE("xxh3 hex spelling matches xxhsum's 16 lower-case digits") {
  // `printf abc | xxhsum -H3` prints 78af5f94892f3950
  CHECK(to_hex16(xxh3_64(std::string_view("abc"))) == "78af5f94892f3950");
  CHECK(from_hex16("78af5f94892f3950") == 0x78af5f94892f3950ull);
  CHECK_FALSE(from_hex16("78af5f94892f395").has_value());
  CHECK_FALSE(from_hex16("78af5f94892f395g").has_value());
}
