// The knowledge endpoints: documents posted by hio-discovery are versioned, durable and served back.
#include <hio/repository/service.hpp>
#include <hio/repository/store.hpp>

#include "temp_dir.hpp"

#include <doctest/doctest.h>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

namespace {

using hio::http::request;
using hio::http::response;
using hio::repository::testing::temp_dir;
using json = nlohmann::json;

const std::string cluster_secret = "k-secret";

struct knowledge_fixture {
  temp_dir dir;
  std::shared_ptr<hio::repository::store> store;
  hio::http::handler handle;

  knowledge_fixture() { open(); }

  void open() {
    spdlog::set_level(spdlog::level::err);
    handle = nullptr;
    store.reset();
    hio::repository::service_options options;
    options.data_dir = dir.path();
    options.secret = cluster_secret;
    auto s = hio::repository::store::open(hio::repository::to_store_options(options));
    REQUIRE(s.has_value());
    store = std::move(*s);
    handle = hio::repository::make_handler(store, options);
  }

  response call(std::string method, std::string path, std::map<std::string, std::string> query = {},
                std::string body = {}, const std::string& bearer = cluster_secret) {
    request r;
    r.method = std::move(method);
    r.path = std::move(path);
    r.target = r.path;
    r.query = std::move(query);
    r.body = std::move(body);
    r.remote = "127.0.0.1";
    if (!bearer.empty()) r.headers["authorization"] = "Bearer " + bearer;
    return handle(r);
  }

  response publish(const json& doc, const std::string& bearer = cluster_secret) {
    return call("POST", "/v1/knowledge", {}, doc.dump(), bearer);
  }
};

json document(int clusters) {
  json d = {{"created_at_ms", 1700000000000 + clusters}, {"method", "ward"}, {"points", 10}, {"groups", 4},
            {"clusters", json::array()}, {"labels", {{"7", 1}}}};
  for (int i = 1; i <= clusters; ++i) d["clusters"].push_back({{"label", i}, {"size", 1}});
  return d;
}

}  // namespace

TEST_CASE("latest knowledge is 404 until a document is published") {
  knowledge_fixture f;
  auto r = f.call("GET", "/v1/knowledge/latest");
  CHECK(r.status == 404);
  CHECK(json::parse(r.body).contains("error"));
  auto history = f.call("GET", "/v1/knowledge");
  REQUIRE(history.status == 200);
  CHECK(json::parse(history.body)["versions"].empty());
}

TEST_CASE("publishing knowledge needs the cluster secret and a JSON object") {
  knowledge_fixture f;
  CHECK(f.publish(document(2), "wrong").status == 401);
  CHECK(f.publish(document(2), "").status == 401);
  CHECK(f.call("POST", "/v1/knowledge", {}, "[1,2]").status == 400);
  CHECK(f.call("POST", "/v1/knowledge", {}, "{not json").status == 400);
  CHECK(f.call("GET", "/v1/knowledge/latest").status == 404);
}

TEST_CASE("published documents get increasing versions and are served back with version and time") {
  knowledge_fixture f;
  auto first = f.publish(document(2));
  REQUIRE(first.status == 200);
  auto second = f.publish(document(3));
  REQUIRE(second.status == 200);
  const auto v1 = json::parse(first.body)["version"].get<std::uint64_t>();
  const auto v2 = json::parse(second.body)["version"].get<std::uint64_t>();
  CHECK(v2 > v1);

  auto latest = f.call("GET", "/v1/knowledge/latest");
  REQUIRE(latest.status == 200);
  auto doc = json::parse(latest.body);
  CHECK(doc["version"] == v2);
  CHECK(doc["stored_at_ms"].get<std::int64_t>() > 0);
  CHECK(doc["clusters"].size() == 3);
  CHECK(doc["labels"]["7"] == 1);

  auto old = f.call("GET", "/v1/knowledge/" + std::to_string(v1));
  REQUIRE(old.status == 200);
  CHECK(json::parse(old.body)["clusters"].size() == 2);
  CHECK(f.call("GET", "/v1/knowledge/999").status == 404);
  CHECK(f.call("GET", "/v1/knowledge/abc").status == 400);
  CHECK(f.call("DELETE", "/v1/knowledge/latest").status == 405);
}

TEST_CASE("a version field in a posted document does not override the repository's") {
  knowledge_fixture f;
  auto d = document(1);
  d["version"] = 42;
  REQUIRE(f.publish(d).status == 200);
  auto doc = json::parse(f.call("GET", "/v1/knowledge/latest").body);
  CHECK(doc["version"] == 1);
  CHECK(f.call("GET", "/v1/knowledge/42").status == 404);
}

TEST_CASE("the history lists versions newest first with summaries, at most limit") {
  knowledge_fixture f;
  for (int i = 1; i <= 3; ++i) REQUIRE(f.publish(document(i)).status == 200);
  auto r = f.call("GET", "/v1/knowledge", {{"limit", "2"}});
  REQUIRE(r.status == 200);
  auto versions = json::parse(r.body)["versions"];
  REQUIRE(versions.size() == 2);
  CHECK(versions[0]["version"] == 3);
  CHECK(versions[1]["version"] == 2);
  CHECK(versions[0]["summary"]["clusters"] == 3);
  CHECK(versions[0]["summary"]["method"] == "ward");
  CHECK(versions[0]["summary"]["points"] == 10);
  CHECK_FALSE(versions[0].contains("labels"));
  CHECK(f.call("GET", "/v1/knowledge", {{"limit", "0"}}).status == 400);
}

TEST_CASE("knowledge survives reopening the store") {
  knowledge_fixture f;
  REQUIRE(f.publish(document(2)).status == 200);
  REQUIRE(f.publish(document(4)).status == 200);
  f.open();
  auto doc = json::parse(f.call("GET", "/v1/knowledge/latest").body);
  CHECK(doc["version"] == 2);
  CHECK(doc["clusters"].size() == 4);
  REQUIRE(f.publish(document(1)).status == 200);
  CHECK(json::parse(f.call("GET", "/v1/knowledge/latest").body)["version"] == 3);
}
