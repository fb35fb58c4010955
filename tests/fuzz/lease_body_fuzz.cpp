// The JSON body of POST /v1/streams (a lease request, from any source). master/src/master.cpp parses it
// with parse_untrusted_json (common/src/json.cpp: depth, NUL bytes, keys given twice), then reads its
// fields after checking their types;
// this target does both. Input: the request body.
#include <hio/common/json.hpp>

#include "fuzz_check.hpp"

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace {

// The fields of a lease body, read as the master reads them: each only after its type is checked.
void read_lease_fields(const nlohmann::json& body) {
  if (!body.is_object()) return;
  std::uint64_t sum = 0;
  for (const char* key : {"count", "bytes", "ends"})
    if (body.contains(key) && body[key].is_number_unsigned()) sum += body[key].get<std::uint64_t>();
  for (const char* key : {"source", "client", "transport"})
    if (body.contains(key) && body[key].is_string()) sum += body[key].get_ref<const std::string&>().size();
  if (body.contains("retry")) {
    const auto& rt = body["retry"];
    if (rt.is_object() && rt.contains("first") && rt["first"].is_number_unsigned() &&
        (!rt.contains("count") || rt["count"].is_number_unsigned()))
      sum += rt["first"].get<std::uint64_t>() + rt.value("count", std::uint64_t{1});
  }
  if (!body.contains("transport") || body["transport"].is_string())
    sum += body.value("transport", std::string("tcp")).size();
  volatile std::uint64_t sink = sum;
  (void)sink;
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
  read_lease_fields(*body);
  // What was accepted can be printed (error answers and logs quote bodies) and reads back the same.
  const std::string printed = body->dump();
  HIO_FUZZ_CHECK(hio::json_depth(printed) <= depth);
  const auto again = hio::parse_untrusted_json(printed);
  HIO_FUZZ_CHECK(again.has_value());
  HIO_FUZZ_CHECK(again->dump() == printed);
  return 0;
}
