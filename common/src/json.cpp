#include <hio/common/json.hpp>

#include <optional>
#include <set>
#include <string>
#include <vector>

namespace hio {

std::size_t json_depth(std::string_view text, std::size_t limit) noexcept {
  std::size_t depth = 0, deepest = 0;
  bool in_string = false, escaped = false;
  for (const char c : text) {
    if (in_string) {
      if (escaped) escaped = false;
      else if (c == '\\') escaped = true;
      else if (c == '"') in_string = false;
      continue;
    }
    switch (c) {
      case '"': in_string = true; break;
      case '[':
      case '{':
        if (++depth > deepest) {
          deepest = depth;
          if (deepest > limit) return limit + 1;
        }
        break;
      case ']':
      case '}':
        if (depth > 0) --depth;  // unbalanced: the parser says so
        break;
      default: break;
    }
  }
  return deepest;
}

namespace {
// nlohmann::json takes a NUL byte for the end of its input and ignores what follows it; JSON text never
// holds one (a string writes it as \u0000), so text with one is refused rather than read in part.
bool holds_nul(std::string_view text) noexcept { return text.find('\0') != std::string_view::npos; }
}  // namespace

result<nlohmann::json> parse_untrusted_json(std::string_view text, std::size_t max_depth) {
  if (json_depth(text, max_depth) > max_depth)
    return make_error(0, "JSON nests deeper than " + std::to_string(max_depth) + " levels");
  if (holds_nul(text)) return make_error(0, "not valid JSON: it holds a NUL byte");
  // The keys of each object open at each depth (at most max_depth + 1 of them): nlohmann::json keeps the
  // last of two equal keys, another reader may keep the first, so a body with both is refused.
  std::vector<std::set<std::string>> keys;
  std::optional<std::string> duplicate;
  const nlohmann::json::parser_callback_t on_event = [&](int depth, nlohmann::json::parse_event_t event,
                                                         nlohmann::json& parsed) {
    using ev = nlohmann::json::parse_event_t;
    const auto d = static_cast<std::size_t>(depth);
    if (event == ev::object_start) {
      if (keys.size() <= d) keys.resize(d + 1);
      keys[d].clear();
    } else if (event == ev::key && d >= 1 && d <= keys.size() && !duplicate) {
      if (!keys[d - 1].insert(parsed.get<std::string>()).second) duplicate = parsed.get<std::string>();
    }
    return true;
  };
  auto j = nlohmann::json::parse(text, on_event, /*allow_exceptions=*/false);
  if (j.is_discarded()) return make_error(0, "not valid JSON");
  if (duplicate) {
    std::string name = duplicate->substr(0, 64);
    if (duplicate->size() > name.size()) name += "...";
    return make_error(0, "duplicate key \"" + name + "\" in an object");
  }
  return j;
}

nlohmann::json parse_json_or_discarded(std::string_view text, std::size_t max_depth) {
  auto j = parse_untrusted_json(text, max_depth);
  return j ? std::move(*j) : nlohmann::json(nlohmann::json::value_t::discarded);
}

result<void> check_metadata(std::string_view metadata) {
  if (metadata.empty()) return {};
  if (json_depth(metadata) > max_json_depth)
    return make_error(0, "metadata nests deeper than " + std::to_string(max_json_depth) + " levels");
  // SAX-style validation: no document is built.
  if (holds_nul(metadata) || !nlohmann::json::accept(metadata)) return make_error(0, "metadata is not valid JSON");
  const auto first = metadata.find_first_not_of(" \t\r\n");
  if (first == std::string_view::npos || metadata[first] != '{') return make_error(0, "metadata is not a JSON object");
  return {};
}

}  // namespace hio
