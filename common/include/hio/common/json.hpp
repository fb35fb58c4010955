#pragma once
// JSON that came from outside the process (REST bodies, tuple metadata, stored records): checked for
// its nesting depth before it is parsed, so no input can make a parser, a serializer or a destructor
// recurse deeply (nlohmann::json's dump() recurses once per level: a few hundred thousand `[` in a
// 1 MiB metadata field would overflow the stack of whoever prints it).

#include <hio/common/error.hpp>

#include <nlohmann/json.hpp>

#include <cstddef>
#include <string_view>

namespace hio {

// The deepest nesting accepted anywhere (objects and arrays, the outermost counting as 1).
inline constexpr std::size_t max_json_depth = 64;

// The nesting depth of `text`: brackets outside strings, escapes honoured. Stops counting once past
// `limit` (returns limit + 1), so a hostile input costs no more than its first levels. Pure, O(n).
std::size_t json_depth(std::string_view text, std::size_t limit = max_json_depth) noexcept;

// `text` parsed, when it is well-formed JSON nesting at most `max_depth` in which no object has a key
// twice; else an error (code 0) whose message says which ("nests deeper than 64 levels", "not valid
// JSON", "duplicate key \"count\" in an object").
result<nlohmann::json> parse_untrusted_json(std::string_view text, std::size_t max_depth = max_json_depth);

// As nlohmann::json::parse(text, nullptr, false), checked as parse_untrusted_json: a discarded value
// when `text` is not valid JSON, nests deeper than `max_depth` or repeats a key. For call sites that
// already handle is_discarded().
nlohmann::json parse_json_or_discarded(std::string_view text, std::size_t max_depth = max_json_depth);

// Tuple metadata as the edge accepts it: empty, or a JSON object nesting at most max_json_depth in
// which no object has a key twice (what parse_untrusted_json accepts), validated without building a
// document. The error says why (code 0).
result<void> check_metadata(std::string_view metadata);

}  // namespace hio
