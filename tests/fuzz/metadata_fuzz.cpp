// The tuple metadata validator (common/src/json.cpp check_metadata): the metadata field of every DATA
// frame, from any source. Input: the metadata bytes.
#include <hio/common/json.hpp>

#include "fuzz_check.hpp"

#include <cstddef>
#include <cstdint>
#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  const auto checked = hio::check_metadata(text);
  if (text.empty()) {
    HIO_FUZZ_CHECK(checked.has_value());
    return 0;
  }
  // The validator agrees with the depth-limited parser: it accepts exactly the JSON objects of at most
  // max_json_depth levels. (A UTF-8 byte order mark before the object, which the parser skips, is refused.)
  const auto parsed = hio::parse_untrusted_json(text);
  const bool object = parsed && parsed->is_object();
  if (checked) {
    HIO_FUZZ_CHECK(object);
    HIO_FUZZ_CHECK(text.find('\0') == std::string_view::npos);  // JSON text never holds one
    HIO_FUZZ_CHECK(hio::json_depth(text) <= hio::max_json_depth);
  } else {
    HIO_FUZZ_CHECK(!checked.error().message.empty());
    HIO_FUZZ_CHECK(!object || text.starts_with("\xEF\xBB\xBF"));
  }
  return 0;
}
