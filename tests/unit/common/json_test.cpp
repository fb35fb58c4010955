#include <hio/common/json.hpp>

#include <doctest/doctest.h>

#include <string>
#include <string_view>

using namespace hio;

TEST_CASE("json_depth counts brackets outside strings and stops past the limit") {
  CHECK(json_depth("") == 0);
  CHECK(json_depth("17") == 0);
  CHECK(json_depth("{}") == 1);
  CHECK(json_depth(R"({"a":[1,{"b":[]}]})") == 4);
  CHECK(json_depth(R"({"a":"[[[[{{{{"})") == 1);
  CHECK(json_depth(R"({"a":"\"[[[["})") == 1);        // an escaped quote does not end the string
  CHECK(json_depth(R"({"a":"\\",  "b":[[]]})") == 3);  // an escaped backslash does
  CHECK(json_depth("]]]][") == 1);                      // unbalanced: left to the parser
  const std::string bomb(10'000'000, '[');
  CHECK(json_depth(bomb, 64) == 65);
}

TEST_CASE("parse_untrusted_json refuses deep and malformed text before building a document") {
  std::string ok = std::string(64, '[') + std::string(64, ']');
  CHECK(parse_untrusted_json(ok).has_value());
  std::string deep = std::string(65, '[') + std::string(65, ']');
  auto r = parse_untrusted_json(deep);
  REQUIRE_FALSE(r.has_value());
  CHECK(r.error().message.find("deeper than 64") != std::string::npos);
  CHECK_FALSE(parse_untrusted_json("{\"a\":").has_value());
  CHECK(parse_untrusted_json(R"({"source":"s"})").value()["source"] == "s");
  CHECK(parse_untrusted_json("[[1]]", 1).has_value() == false);
}

TEST_CASE("check_metadata accepts empty or a JSON object") {
  CHECK(check_metadata("").has_value());
  CHECK(check_metadata(R"( {"source":"sim-1","p":[1,2]} )").has_value());
  CHECK_FALSE(check_metadata("[1]").has_value());
  CHECK_FALSE(check_metadata("\"text\"").has_value());
  CHECK_FALSE(check_metadata("not json").has_value());
  CHECK_FALSE(check_metadata("{\"a\":" + std::string(200000, '[') + "}").has_value());
}

// Found by tests/fuzz/metadata_fuzz.cpp (corpus/metadata/crash-duplicate_key): the metadata validator
// accepted what parse_untrusted_json refuses, so a stored tuple's metadata could later fail to parse.
TEST_CASE("check_metadata refuses an object with a key twice, at any depth, as the parser does") {
  for (const std::string text : {R"({"run":1,"run":2})", R"({"p":{"k":1,"k":2}})", R"({"a":[{"x":1},{"x":1,"x":1}]})"}) {
    CAPTURE(text);
    const auto r = check_metadata(text);
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error().message.find("duplicate key") != std::string::npos);
    CHECK_FALSE(parse_untrusted_json(text).has_value());
  }
  // The same key in sibling or nested objects is not a repeat.
  for (const std::string text : {R"({"a":{"x":1},"b":{"x":2}})", R"({"x":{"x":{"x":1}}})", R"({"a":[{"x":1},{"x":1}]})"}) {
    CAPTURE(text);
    CHECK(check_metadata(text).has_value());
    CHECK(parse_untrusted_json(text).has_value());
  }
}

// Found by tests/fuzz/lease_body_fuzz.cpp (corpus/lease_body/crash-nul_byte): nlohmann::json stops at a
// NUL byte, so text that was not JSON passed as the JSON before the NUL.
TEST_CASE("JSON text with a NUL byte is refused, not read up to the NUL") {
  using namespace std::literals;
  const auto text = "{\"source\":\"s\"}\0[[[ not json"sv;
  auto r = parse_untrusted_json(text);
  REQUIRE_FALSE(r.has_value());
  CHECK(r.error().message.find("NUL") != std::string::npos);
  CHECK(parse_json_or_discarded(text).is_discarded());
  CHECK_FALSE(check_metadata(text).has_value());
  CHECK_FALSE(check_metadata("{}\0"sv).has_value());
  CHECK(check_metadata(R"({"a":"\u0000"})").has_value());  // an escaped NUL inside a string is JSON
}

// The lease_body corpus's duplicate_keys seed: nlohmann::json keeps the last of two equal keys, another
// reader the first, so {"count":1,"count":65536} meant one thing to the master and another to a log.
TEST_CASE("an object with a key twice is refused, naming the key, at any depth") {
  auto r = parse_untrusted_json(R"({"count":1,"source":"s","count":65536})");
  REQUIRE_FALSE(r.has_value());
  CHECK(r.error().message == R"(duplicate key "count" in an object)");
  r = parse_untrusted_json(R"({"retry":{"first":1,"first":2}})");
  REQUIRE_FALSE(r.has_value());
  CHECK(r.error().message.find(R"("first")") != std::string::npos);
  CHECK(parse_json_or_discarded(R"([{"a":1},{"b":{"a":2,"a":3}}])").is_discarded());
  // The same key in sibling or nested objects is not a duplicate.
  CHECK(parse_untrusted_json(R"([{"a":1},{"a":2}])").has_value());
  CHECK(parse_untrusted_json(R"({"a":{"a":{"a":1}},"b":{"a":2}})").has_value());
  CHECK(parse_untrusted_json(R"({"a":[{"x":1}],"b":[{"x":1}]})").has_value());
  // A long key is cut in the message.
  const std::string key(1000, 'k');
  r = parse_untrusted_json("{\"" + key + "\":1,\"" + key + "\":2}");
  REQUIRE_FALSE(r.has_value());
  CHECK(r.error().message.size() < 120);
}
