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
// The keys of each object open while JSON is read: nlohmann::json keeps the last of two equal keys,
// another reader may keep the first, so text in which an object holds a key twice is refused.
class key_guard {
 public:
  void open() { open_.emplace_back(); }
  void close() {
    if (!open_.empty()) open_.pop_back();
  }
  void add(const std::string& key) {
    if (!duplicate_ && !open_.empty() && !open_.back().insert(key).second) duplicate_ = key;
  }
  result<void> error() const {
    if (!duplicate_) return {};
    std::string name = duplicate_->substr(0, 64);
    if (duplicate_->size() > name.size()) name += "...";
    return make_error(0, "duplicate key \"" + name + "\" in an object");
  }

 private:
  std::vector<std::set<std::string>> open_;  // at most max_depth of them: the depth is checked first
  std::optional<std::string> duplicate_;
};

// Validation without building a document: syntax as nlohmann::json::accept, keys as key_guard.
class metadata_validator final : public nlohmann::json_sax<nlohmann::json> {
 public:
  explicit metadata_validator(key_guard& guard) : guard_(guard) {}
  bool null() override { return true; }
  bool boolean(bool) override { return true; }
  bool number_integer(number_integer_t) override { return true; }
  bool number_unsigned(number_unsigned_t) override { return true; }
  bool number_float(number_float_t, const string_t&) override { return true; }
  bool string(string_t&) override { return true; }
  bool binary(binary_t&) override { return true; }
  bool start_object(std::size_t) override {
    guard_.open();
    return true;
  }
  bool key(string_t& k) override {
    guard_.add(k);
    return true;
  }
  bool end_object() override {
    guard_.close();
    return true;
  }
  bool start_array(std::size_t) override { return true; }
  bool end_array() override { return true; }
  bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception&) override { return false; }

 private:
  key_guard& guard_;
};
}  // namespace

result<nlohmann::json> parse_untrusted_json(std::string_view text, std::size_t max_depth) {
  if (json_depth(text, max_depth) > max_depth)
    return make_error(0, "JSON nests deeper than " + std::to_string(max_depth) + " levels");
  if (holds_nul(text)) return make_error(0, "not valid JSON: it holds a NUL byte");
  key_guard guard;
  const nlohmann::json::parser_callback_t on_event = [&](int, nlohmann::json::parse_event_t event,
                                                         nlohmann::json& parsed) {
    using ev = nlohmann::json::parse_event_t;
    if (event == ev::object_start) guard.open();
    else if (event == ev::object_end) guard.close();
    else if (event == ev::key) guard.add(parsed.get_ref<const std::string&>());
    return true;
  };
  auto j = nlohmann::json::parse(text, on_event, /*allow_exceptions=*/false);
  if (j.is_discarded()) return make_error(0, "not valid JSON");
  if (auto d = guard.error(); !d) return d.error();
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
  if (holds_nul(metadata)) return make_error(0, "metadata is not valid JSON");
  key_guard guard;
  metadata_validator validator(guard);
  if (!nlohmann::json::sax_parse(metadata, &validator)) return make_error(0, "metadata is not valid JSON");
  const auto first = metadata.find_first_not_of(" \t\r\n");
  if (first == std::string_view::npos || metadata[first] != '{') return make_error(0, "metadata is not a JSON object");
  if (auto keys = guard.error(); !keys) return make_error(0, "metadata: " + keys.error().message);
  return {};
}

}  // namespace hio
