// The JSON body of POST /v1/streams (a lease request, from any source): parse_untrusted_json
// (common/src/json.cpp: depth, NUL bytes, keys given twice), then protocol::decode_lease_request
// (common/src/protocol/lease.cpp), as the master reads it. Input: the request body.
#include <hio/common/json.hpp>
#include <hio/common/protocol/lease.hpp>

#include "fuzz_check.hpp"

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace {

// What the master reads from a body: decoded once, the request encodes to a body that decodes to the same.
void read_lease_fields(std::string_view text) {
  const auto req = hio::protocol::decode_lease_request(text);
  if (!req) {
    HIO_FUZZ_CHECK(req.error().code == 400 && !req.error().message.empty());
    return;
  }
  HIO_FUZZ_CHECK(req->source.size() <= hio::protocol::max_source_name);
  HIO_FUZZ_CHECK(req->client.size() <= hio::protocol::max_source_name);
  const auto again = hio::protocol::decode_lease_request(hio::protocol::encode(*req));
  HIO_FUZZ_CHECK(again.has_value());
  // A retry's count wins over "count" (ignored with a retry), so compare what the master uses.
  auto expected = *req;
  if (expected.retry) expected.count = 0;
  HIO_FUZZ_CHECK(*again == expected);
}

// Whether some object of `text` (valid JSON) has a key twice: the keys the parser reports outnumber the
// members of the objects it builds, which keep one value per key.
bool repeats_a_key(std::string_view text) {
  std::size_t keys = 0;
  const auto j = nlohmann::json::parse(
      text, [&](int, nlohmann::json::parse_event_t e, nlohmann::json&) {
        keys += e == nlohmann::json::parse_event_t::key;
        return true;
      },
      false);
  std::size_t members = 0;
  const auto count = [&](const auto& self, const nlohmann::json& v) -> void {
    if (v.is_object()) members += v.size();
    if (v.is_structured())
      for (const auto& x : v) self(self, x);
  };
  count(count, j);
  return keys > members;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  const auto body = hio::parse_untrusted_json(text);
  const std::size_t depth = hio::json_depth(text);
  if (!body) {
    HIO_FUZZ_CHECK(!body.error().message.empty());
    // Refused only for a reason: too deep, not JSON (nlohmann::json would stop at a NUL byte), or a key
    // twice in one object.
    HIO_FUZZ_CHECK(depth > hio::max_json_depth || text.find('\0') != std::string_view::npos ||
                   !nlohmann::json::accept(text) || repeats_a_key(text));
    return 0;
  }
  HIO_FUZZ_CHECK(depth <= hio::max_json_depth);
  HIO_FUZZ_CHECK(text.find('\0') == std::string_view::npos);
  HIO_FUZZ_CHECK(!repeats_a_key(text));
  read_lease_fields(text);
  // What was accepted can be printed (error answers and logs quote bodies) and reads back the same.
  const std::string printed = body->dump();
  HIO_FUZZ_CHECK(hio::json_depth(printed) <= depth);
  const auto again = hio::parse_untrusted_json(printed);
  HIO_FUZZ_CHECK(again.has_value());
  HIO_FUZZ_CHECK(again->dump() == printed);
  return 0;
}
