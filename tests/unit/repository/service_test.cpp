#include <hio/repository/service.hpp>

#include <hio/common/hash.hpp>
#include <hio/common/record.hpp>

#include "temp_dir.hpp"

#include <doctest/doctest.h>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include <limits>
#include <sstream>

namespace {

using hio::feature_record;
using hio::http::request;
using hio::http::response;
using hio::repository::testing::temp_dir;
using json = nlohmann::json;

const std::string secret = "s3cret";

feature_record make_record(std::uint64_t id) {
  feature_record r;
  r.tuple_id = id;
  r.source = "sensor";
  r.size = 1000 + id;
  r.xxh3 = 0x0123456789abcdefull + id;
  r.metadata = R"({"frame":)" + std::to_string(id) + "}";
  r.worker = "w1";
  r.channel = 2;
  r.processed_at_ms = 1'700'000'000'000;
  r.features = {{"mean", 1.5}, {"inf", std::numeric_limits<double>::infinity()}};
  return r;
}

// A handler over a fresh store, and requests shaped as the HTTP server would hand them over.
struct fixture {
  temp_dir dir;
  std::shared_ptr<hio::repository::store> store;
  hio::http::handler handle;

  explicit fixture(std::string cluster_secret = secret) {
    spdlog::set_level(spdlog::level::err);  // every refused request logs a warning; these are expected
    hio::repository::service_options options;
    options.data_dir = dir.path();
    options.secret = std::move(cluster_secret);
    auto s = hio::repository::store::open(hio::repository::to_store_options(options));
    REQUIRE(s.has_value());
    store = std::move(*s);
    handle = hio::repository::make_handler(store, options);
  }

  static request make(std::string method, std::string path, std::map<std::string, std::string> query = {},
                      std::string body = {}) {
    request r;
    r.method = std::move(method);
    r.path = std::move(path);
    r.target = r.path;
    char sep = '?';
    for (const auto& [k, v] : query) {
      r.target += sep + k + "=" + v;
      sep = '&';
    }
    r.query = std::move(query);
    r.body = std::move(body);
    r.remote = "127.0.0.1";
    return r;
  }

  response post(const std::vector<feature_record>& batch, const std::string& bearer = secret) {
    auto r = make("POST", "/v1/records", {}, hio::encode_records(batch));
    r.headers["content-type"] = "application/octet-stream";
    if (!bearer.empty()) r.headers["authorization"] = "Bearer " + bearer;
    return handle(r);
  }

  response get(std::string path, std::map<std::string, std::string> query = {}) {
    return handle(make("GET", std::move(path), std::move(query)));
  }
};

std::string header(const response& r, const std::string& name) {
  for (const auto& [k, v] : r.headers) {
    if (k == name) return v;
  }
  return {};
}

void check_error(const response& r, int status) {
  CHECK(r.status == status);
  auto body = json::parse(r.body, nullptr, false);
  REQUIRE_FALSE(body.is_discarded());
  CHECK(body.contains("error"));
  CHECK(body["error"].is_string());
}

std::vector<json> parse_lines(const std::string& body) {
  std::vector<json> out;
  std::istringstream in(body);
  for (std::string line; std::getline(in, line);) {
    out.push_back(json::parse(line, nullptr, false));
    CHECK_FALSE(out.back().is_discarded());
  }
  return out;
}

}  // namespace

TEST_CASE("posting a batch stores it and reports stored and duplicate counts") {
  fixture f;
  auto first = f.post({make_record(1), make_record(2)});
  REQUIRE(first.status == 200);
  CHECK(json::parse(first.body) == json{{"stored", 2}, {"duplicates", 0}, {"conflicts", json::array()}});
  auto other = make_record(1);
  other.xxh3 ^= 1;
  auto retry = f.post({make_record(2), make_record(3), make_record(3), other});
  REQUIRE(retry.status == 200);
  CHECK(json::parse(retry.body) == json{{"stored", 1}, {"duplicates", 2}, {"conflicts", {1}}});

  auto counts = f.get("/v1/counts");
  REQUIRE(counts.status == 200);
  const auto c = json::parse(counts.body);
  CHECK(c["records"] == 3);
  CHECK(c["stored"] == 3);
  CHECK(c["failed"] == 0);
  CHECK(c["batches"] == 2);
  CHECK(c["duplicates"] == 2);
  CHECK(c["conflicts"] == 1);
  CHECK(c["rows_read"] == 0);
}

TEST_CASE("a body that is not a record batch gets 400 and stores nothing") {
  fixture f;
  auto r = f.make("POST", "/v1/records", {}, "this is not zstd");
  r.headers["authorization"] = "Bearer " + secret;
  check_error(f.handle(r), 400);
  auto truncated = hio::encode_records({make_record(1)});
  truncated.resize(truncated.size() / 2);
  r.body = truncated;
  check_error(f.handle(r), 400);
  CHECK(f.store->counts().records == 0);
}

TEST_CASE("posting without the cluster secret gets 401, and without a configured secret it is open") {
  fixture f;
  check_error(f.post({make_record(1)}, ""), 401);
  check_error(f.post({make_record(1)}, "wrong"), 401);
  check_error(f.post({make_record(1)}, secret + "x"), 401);
  CHECK(f.store->counts().records == 0);
  CHECK(f.post({make_record(1)}).status == 200);

  fixture open("");
  CHECK(open.post({make_record(1)}, "").status == 200);
}

TEST_CASE("features come back as JSON lines with the right fields and the next cursor header") {
  fixture f;
  auto failed = make_record(2);
  failed.status = hio::record_status::failed;
  failed.error = "bad frame";
  failed.metadata = "{not json";
  REQUIRE(f.post({make_record(1), failed}).status == 200);

  auto r = f.get("/v1/features");
  REQUIRE(r.status == 200);
  CHECK(r.content_type == "application/x-ndjson");
  const auto lines = parse_lines(r.body);
  REQUIRE(lines.size() == 2);
  const auto& a = lines[0];
  CHECK(a["id"] == 1);
  CHECK(a["source"] == "sensor");
  CHECK(a["size"] == 1001);
  CHECK(a["xxh3"] == hio::to_hex16(0x0123456789abcdefull + 1));
  CHECK(a["xxh3"] == "0123456789abcdf0");
  CHECK(a["status"] == "stored");
  CHECK(a["worker"] == "w1");
  CHECK(a["channel"] == 2);
  CHECK(a["processed_at_ms"] == 1'700'000'000'000);
  CHECK(a["metadata"] == json{{"frame", 1}});
  CHECK(a["features"]["mean"] == 1.5);
  CHECK(a["features"]["inf"].is_null());
  const auto& b = lines[1];
  CHECK(b["status"] == "failed");
  CHECK(b["error"] == "bad frame");
  CHECK(b["metadata"].is_null());
  CHECK(b["cursor"].get<std::uint64_t>() > a["cursor"].get<std::uint64_t>());
  CHECK(header(r, "X-Hio-Next-Cursor") == std::to_string(b["cursor"].get<std::uint64_t>()));
}

TEST_CASE("after and limit page through features, and an empty page echoes the cursor") {
  fixture f;
  std::vector<feature_record> batch;
  for (std::uint64_t i = 1; i <= 5; ++i) batch.push_back(make_record(i));
  REQUIRE(f.post(batch).status == 200);

  auto first = f.get("/v1/features", {{"limit", "2"}});
  REQUIRE(first.status == 200);
  auto lines = parse_lines(first.body);
  REQUIRE(lines.size() == 2);
  CHECK(lines[1]["id"] == 2);
  const auto next = header(first, "X-Hio-Next-Cursor");

  auto rest = f.get("/v1/features", {{"after", next}, {"limit", "100"}});
  REQUIRE(rest.status == 200);
  lines = parse_lines(rest.body);
  REQUIRE(lines.size() == 3);
  CHECK(lines[0]["id"] == 3);

  const auto end = header(rest, "X-Hio-Next-Cursor");
  auto empty = f.get("/v1/features", {{"after", end}});
  REQUIRE(empty.status == 200);
  CHECK(empty.body.empty());
  CHECK(header(empty, "X-Hio-Next-Cursor") == end);
  CHECK(f.store->counts().rows_read == 5);
}

TEST_CASE("the binary format returns a batch that decodes to the stored records") {
  fixture f;
  REQUIRE(f.post({make_record(1), make_record(2)}).status == 200);
  auto r = f.get("/v1/features", {{"format", "binary"}, {"after", "1"}});
  REQUIRE(r.status == 200);
  CHECK(r.content_type == "application/octet-stream");
  auto records = hio::decode_records(r.body);
  REQUIRE(records.has_value());
  REQUIRE(records->size() == 1);
  auto want = make_record(2);
  want.cursor = (*records)[0].cursor;
  CHECK((*records)[0].tuple_id == 2);
  CHECK((*records)[0].metadata == want.metadata);
  CHECK(header(r, "X-Hio-Next-Cursor") == std::to_string(want.cursor));
}

TEST_CASE("bad query parameters get 400") {
  fixture f;
  check_error(f.get("/v1/features", {{"after", "abc"}}), 400);
  check_error(f.get("/v1/features", {{"after", "-1"}}), 400);
  check_error(f.get("/v1/features", {{"after", ""}}), 400);
  check_error(f.get("/v1/features", {{"limit", "0"}}), 400);
  check_error(f.get("/v1/features", {{"limit", "10x"}}), 400);
  check_error(f.get("/v1/features", {{"limit", "99999999999999999999999"}}), 400);
  check_error(f.get("/v1/features", {{"format", "xml"}}), 400);
  CHECK(f.get("/v1/features", {{"limit", "1000000"}}).status == 200);
}

TEST_CASE("one tuple is served by id, and an unknown or malformed id is refused") {
  fixture f;
  REQUIRE(f.post({make_record(42)}).status == 200);
  auto r = f.get("/v1/tuples/42");
  REQUIRE(r.status == 200);
  const auto j = json::parse(r.body);
  CHECK(j["id"] == 42);
  CHECK(j["xxh3"] == hio::to_hex16(make_record(42).xxh3));
  CHECK(j["metadata"]["frame"] == 42);
  check_error(f.get("/v1/tuples/43"), 404);
  check_error(f.get("/v1/tuples/forty-two"), 400);
  check_error(f.get("/v1/tuples/"), 400);
}

TEST_CASE("a tuple's series are served with the tuple, and left out of bulk feature reads") {
  fixture f;
  auto r = make_record(5);
  r.series = {{"mRNA", {0.3f, 12.0f, std::numeric_limits<float>::quiet_NaN()}}};
  REQUIRE(f.post({r}).status == 200);
  const auto one = json::parse(f.get("/v1/tuples/5").body);
  REQUIRE(one["series"].size() == 1);
  CHECK(one["series"][0]["name"] == "mRNA");
  CHECK(one["series"][0]["values"].dump() == "[0.3,12.0,null]");
  const auto page = f.get("/v1/features");
  REQUIRE(page.status == 200);
  CHECK(json::parse(page.body.substr(0, page.body.find('\n')))["series"].empty());
  auto binary = hio::decode_records(f.get("/v1/features", {{"format", "binary"}}).body);
  REQUIRE(binary.has_value());
  REQUIRE(binary->size() == 1);
  CHECK((*binary)[0].series.empty());
}

TEST_CASE("unknown paths get 404 and wrong methods get 405") {
  fixture f;
  check_error(f.get("/v2/records"), 404);
  check_error(f.get("/"), 404);
  check_error(f.get("/v1/records"), 405);
  check_error(f.handle(f.make("POST", "/v1/features")), 405);
  check_error(f.handle(f.make("DELETE", "/v1/tuples/1")), 405);
  check_error(f.handle(f.make("PUT", "/healthz")), 405);
}

TEST_CASE("healthz answers ok and metrics expose the counts in Prometheus text") {
  fixture f;
  REQUIRE(f.post({make_record(1), make_record(1)}).status == 200);
  auto health = f.get("/healthz");
  CHECK(health.status == 200);
  CHECK(json::parse(health.body) == json{{"ok", true}});

  auto m = f.get("/metrics");
  REQUIRE(m.status == 200);
  CHECK(m.content_type == "text/plain; version=0.0.4");
  CHECK(m.body.find("\nhio_repository_records 1\n") != std::string::npos);
  CHECK(m.body.find("\nhio_repository_stored 1\n") != std::string::npos);
  CHECK(m.body.find("\nhio_repository_failed 0\n") != std::string::npos);
  CHECK(m.body.find("\nhio_repository_rows_read 0\n") != std::string::npos);
  CHECK(m.body.find("\nhio_repository_batches_total 1\n") != std::string::npos);
  CHECK(m.body.find("\nhio_repository_duplicates_total 1\n") != std::string::npos);
}

TEST_CASE("strings that are not UTF-8 are served with replacement characters instead of failing") {
  fixture f;
  auto r = make_record(1);
  r.source = "bad\xff\xfe";
  REQUIRE(f.post({r}).status == 200);
  auto res = f.get("/v1/tuples/1");
  REQUIRE(res.status == 200);
  auto j = json::parse(res.body, nullptr, false);
  REQUIRE_FALSE(j.is_discarded());
  CHECK(j["source"].get<std::string>().starts_with("bad"));
}

TEST_CASE("a stored record whose metadata nests too deep is served with null metadata, not a crash") {
  // Records stored before the receivers checked metadata may hold anything: readers treat them as untrusted.
  hio::feature_record r;
  r.tuple_id = 7;
  r.metadata = "{\"a\":" + std::string(300000, '[') + std::string(300000, ']') + "}";
  const auto j = hio::repository::record_to_json(r);
  CHECK(j["metadata"].is_null());
  CHECK(j.dump().size() < 10000);  // printing it recurses no deeper than the record itself
  r.metadata = R"({"source":"s","p":[1,[2]]})";
  CHECK(hio::repository::record_to_json(r)["metadata"]["p"][1][0] == 2);
}

TEST_CASE("record batches and knowledge may be large; every other request body is small") {
  using hio::repository::body_limit;
  CHECK(body_limit("POST", "/v1/records") == hio::max_record_batch_bytes);  // 64 MiB
  CHECK(body_limit("POST", "/v1/knowledge") == hio::max_record_batch_bytes);
  CHECK(body_limit("GET", "/v1/knowledge") == 64 << 10);
  CHECK(body_limit("POST", "/v1/tuples/1") == 64 << 10);
}
