#include <hio/worker/processor_protocol.hpp>

#include <doctest/doctest.h>

#include <cstddef>
#include <cstring>
#include <string>
#include <vector>

using namespace hio;
using namespace hio::worker;

namespace {

std::vector<std::byte> bytes_of(std::string_view s) {
  std::vector<std::byte> out(s.size());
  std::memcpy(out.data(), s.data(), s.size());
  return out;
}

// What Python's struct.pack("<4sIQII", b"HIOR", status, id, count, error_len) writes.
std::string response_header(std::uint32_t status, std::uint64_t id, std::uint32_t count, std::uint32_t error_len) {
  std::string h = "HIOR";
  for (int i = 0; i < 4; ++i) h += static_cast<char>((status >> (8 * i)) & 0xff);
  for (int i = 0; i < 8; ++i) h += static_cast<char>((id >> (8 * i)) & 0xff);
  for (int i = 0; i < 4; ++i) h += static_cast<char>((count >> (8 * i)) & 0xff);
  for (int i = 0; i < 4; ++i) h += static_cast<char>((error_len >> (8 * i)) & 0xff);
  return h;
}

}  // namespace

TEST_CASE("a request header is 24 little-endian bytes after the magic HIOQ and decodes back") {
  const protocol::request_header h{0x0102030405060708ull, 0x000b0c0d, 0x1112131415161718ull};
  const auto bytes = protocol::encode_request_header(h);
  CHECK(std::memcmp(bytes.data(), "HIOQ", 4) == 0);
  CHECK(bytes[4] == std::byte{0x08});   // tuple id, low byte first
  CHECK(bytes[11] == std::byte{0x01});
  CHECK(bytes[12] == std::byte{0x0d});  // metadata length
  CHECK(bytes[16] == std::byte{0x18});  // payload length
  CHECK(bytes[23] == std::byte{0x11});
  auto back = protocol::decode_request_header(bytes);
  REQUIRE(back.has_value());
  CHECK(*back == h);
}

TEST_CASE("a request header with another magic or oversized metadata is refused") {
  auto bytes = protocol::encode_request_header({1, 2, 3});
  bytes[0] = std::byte{'X'};
  auto r = protocol::decode_request_header(bytes);
  REQUIRE_FALSE(r.has_value());
  CHECK(r.error().message.find("HIOQ") != std::string::npos);
  auto big = protocol::encode_request_header({1, protocol::max_metadata_bytes + 1, 3});
  CHECK_FALSE(protocol::decode_request_header(big).has_value());
}

TEST_CASE("a response with features or an error round-trips, and every shorter prefix needs more bytes") {
  for (const auto& r : {protocol::response{42, protocol::status::ok, {{"bytes", 6e6}, {"mean", -0.25}, {"µ", 1}}, {}},
                        protocol::response{43, protocol::status::failed, {}, "not a .npy array"},
                        protocol::response{44, protocol::status::ok, {}, {}}}) {
    auto frame = protocol::encode_response(r);
    REQUIRE(frame.has_value());
    for (std::size_t n = 0; n < frame->size(); ++n) {
      auto partial = protocol::decode_response(std::span<const std::byte>(frame->data(), n));
      REQUIRE_MESSAGE(partial.has_value(), n);
      CHECK_MESSAGE(!partial->has_value(), n);
    }
    auto whole = protocol::decode_response(*frame);
    REQUIRE(whole.has_value());
    REQUIRE(whole->has_value());
    CHECK((*whole)->response == r);
    CHECK((*whole)->bytes == frame->size());
  }
}

TEST_CASE("a response is decoded byte for byte as the documentation spells it") {
  std::string frame = response_header(0, 7, 2, 0);
  frame += std::string("\x05\x00\x00\x00", 4) + "bytes" + std::string("\x00\x00\x00\x00\x00\x00\x59\x40", 8);  // 100.0
  frame += std::string("\x01\x00\x00\x00", 4) + "x" + std::string("\x00\x00\x00\x00\x00\x00\xf0\xbf", 8);  // -1.0
  frame += "trailing";
  auto d = protocol::decode_response(bytes_of(frame));
  REQUIRE(d.has_value());
  REQUIRE(d->has_value());
  CHECK((*d)->response.tuple_id == 7);
  CHECK((*d)->response.features == std::vector<feature>{{"bytes", 100.0}, {"x", -1.0}});
  CHECK((*d)->bytes == frame.size() - 8);  // the caller decides what trailing bytes mean

  auto failed = protocol::decode_response(bytes_of(response_header(1, 9, 0, 4) + "oops"));
  REQUIRE(failed.has_value());
  REQUIRE(failed->has_value());
  CHECK((*failed)->response.status == protocol::status::failed);
  CHECK((*failed)->response.error == "oops");
}

TEST_CASE("text instead of a response is refused from its first wrong byte, saying what it looks like") {
  auto r = protocol::decode_response(bytes_of("H"));
  REQUIRE(r.has_value());
  CHECK_FALSE(r->has_value());
  r = protocol::decode_response(bytes_of("Hello\n"));
  REQUIRE_FALSE(r.has_value());
  CHECK(r.error().message.find("Hello\\x0a") != std::string::npos);
  CHECK(r.error().message.find("stdout") != std::string::npos);
  CHECK_FALSE(protocol::decode_response(bytes_of("x")).has_value());
}

TEST_CASE("responses with an unknown status, too many features, bad names or failed features are refused") {
  CHECK_FALSE(protocol::decode_response(bytes_of(response_header(2, 1, 0, 0))).has_value());
  CHECK_FALSE(protocol::decode_response(bytes_of(response_header(0, 1, protocol::max_features + 1, 0))).has_value());
  CHECK_FALSE(protocol::decode_response(bytes_of(response_header(0, 1, 0, protocol::max_error_bytes + 1))).has_value());
  CHECK_FALSE(protocol::decode_response(bytes_of(response_header(1, 1, 1, 0))).has_value());
  const std::string value(8, '\0');
  CHECK_FALSE(protocol::decode_response(bytes_of(response_header(0, 1, 1, 0) + std::string(4, '\0') + value))
                  .has_value());  // empty name
  CHECK_FALSE(protocol::decode_response(bytes_of(response_header(0, 1, 1, 0) + std::string("\x01\x00\x00\x00", 4) +
                                                 "\xff" + value))
                  .has_value());  // not UTF-8
  CHECK_FALSE(protocol::decode_response(bytes_of(response_header(0, 1, 1, 0) + std::string("\x00\x01\x00\x00", 4)))
                  .has_value());  // a 256-byte name is refused before it arrives
}

TEST_CASE("encode_response refuses what decode_response would refuse") {
  CHECK_FALSE(protocol::encode_response({1, protocol::status::ok, {{"", 1}}, {}}).has_value());
  CHECK_FALSE(protocol::encode_response({1, protocol::status::ok, {{std::string(256, 'a'), 1}}, {}}).has_value());
  CHECK_FALSE(protocol::encode_response({1, protocol::status::failed, {{"a", 1}}, "x"}).has_value());
  CHECK(protocol::encode_response({1, protocol::status::ok, {{std::string(255, 'a'), 1}}, {}}).has_value());
}

TEST_CASE("feature names are 1..255 bytes of UTF-8 without control characters; error text is made safe") {
  CHECK(protocol::valid_feature_name("mean_byte"));
  CHECK(protocol::valid_feature_name("énergie ∑"));
  CHECK_FALSE(protocol::valid_feature_name(""));
  CHECK_FALSE(protocol::valid_feature_name("a\nb"));
  CHECK_FALSE(protocol::valid_feature_name("\xc0\xaf"));  // overlong
  CHECK_FALSE(protocol::valid_feature_name("\xed\xa0\x80"));  // a surrogate
  CHECK(protocol::sanitize_text("ok\tfine \xff\x01 ü") == "ok\tfine ?? ü");
}
