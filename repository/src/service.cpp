#include <hio/repository/service.hpp>

#include <hio/common/hash.hpp>
#include <hio/common/json.hpp>
#include <hio/common/log.hpp>
#include <hio/common/secret.hpp>

#include <spdlog/spdlog.h>

#include <charconv>
#include <chrono>
#include <cmath>
#include <exception>
#include <optional>
#include <string_view>
#include <utility>

namespace hio::repository {
namespace {

using json = nlohmann::json;

std::string dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

std::optional<std::uint64_t> parse_u64(std::string_view s) {
  std::uint64_t v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (s.empty() || ec != std::errc{} || p != s.data() + s.size()) return std::nullopt;
  return v;
}

// Compares without an early exit, so the time taken does not reveal how much of a guess was right.
http::response method_not_allowed(const http::request& req, std::string_view allowed) {
  auto res = http::error_response(405, req.method + " is not allowed on " + req.path + "; use " +
                                           std::string(allowed));
  res.headers.emplace_back("Allow", std::string(allowed));
  return res;
}

class service {
 public:
  service(std::shared_ptr<store> s, service_options options) : store_(std::move(s)), options_(std::move(options)) {}

  http::response handle(const http::request& req) const {
    const auto& p = req.path;
    if (p == "/v1/records") return req.method == "POST" ? post_records(req) : method_not_allowed(req, "POST");
    if (p == "/v1/knowledge") {
      if (req.method == "POST") return post_knowledge(req);
      if (req.method == "GET") return get_knowledge_history(req);
      return method_not_allowed(req, "GET, POST");
    }
    if (p.starts_with("/v1/knowledge/")) {
      if (req.method != "GET") return method_not_allowed(req, "GET");
      return get_knowledge(p.substr(std::string_view("/v1/knowledge/").size()));
    }
    if (req.method != "GET" && (p == "/v1/features" || p == "/v1/counts" || p == "/healthz" ||
                                p == "/metrics" || p.starts_with("/v1/tuples/"))) {
      return method_not_allowed(req, "GET");
    }
    if (p == "/v1/features") return get_features(req);
    if (p.starts_with("/v1/tuples/")) return get_tuple(p.substr(std::string_view("/v1/tuples/").size()));
    if (p == "/v1/counts") return get_counts();
    if (p == "/healthz") return http::json_response(R"({"ok":true})");
    if (p == "/metrics") {
      http::response res;
      res.content_type = "text/plain; version=0.0.4";
      res.body = metrics_text(store_->counts(), refused_connections());
      return res;
    }
    return http::error_response(404, "no such endpoint: " + p);
  }

 private:
  http::response post_records(const http::request& req) const {
    if (!options_.secret.empty() && !same_secret(req.bearer(), options_.secret)) {
      return http::error_response(401, "POST /v1/records needs 'Authorization: Bearer <cluster secret>'");
    }
    auto batch = decode_records(req.body);
    if (!batch) return http::error_response(400, "body is not a record batch: " + batch.error().message);
    auto stored = store_->put(std::move(*batch));
    if (!stored) return http::error_response(stored.error().code == 400 ? 400 : 500, stored.error().message);
    if (!stored->conflicts.empty())
      spdlog::warn("repository: refused {} records whose tuple id holds other bytes (first: tuple {})",
                   stored->conflicts.size(), stored->conflicts.front());
    return http::json_response(dump(
        json{{"stored", stored->stored}, {"duplicates", stored->duplicates}, {"conflicts", stored->conflicts}}));
  }

  http::response post_knowledge(const http::request& req) const {
    if (!options_.secret.empty() && !same_secret(req.bearer(), options_.secret)) {
      return http::error_response(401, "POST /v1/knowledge needs 'Authorization: Bearer <cluster secret>'");
    }
    auto doc = hio::parse_json_or_discarded(req.body);
    if (doc.is_discarded() || !doc.is_object()) {
      return http::error_response(400, "body must be one knowledge document: a JSON object");
    }
    // The repository owns these two fields; they are spliced into the stored text when served.
    doc.erase("version");
    doc.erase("stored_at_ms");
    const auto now = std::chrono::duration_cast<std::chrono::milliseconds>(
                         std::chrono::system_clock::now().time_since_epoch()).count();
    json summary = json::object();
    for (const char* key : {"created_at_ms", "method", "points", "groups"}) {
      if (auto it = doc.find(key); it != doc.end()) summary[key] = *it;
    }
    if (auto it = doc.find("clusters"); it != doc.end() && it->is_array()) summary["clusters"] = it->size();
    auto stored = store_->put_knowledge(dump(doc), dump(summary), now);
    if (!stored) return http::error_response(500, stored.error().message);
    return http::json_response(dump(json{{"version", stored->version}, {"stored_at_ms", stored->stored_at_ms}}));
  }

  http::response get_knowledge(std::string_view which) const {
    std::uint64_t version = 0;
    if (which != "latest") {
      auto v = parse_u64(which);
      if (!v || *v == 0) {
        return http::error_response(400, "knowledge version must be 'latest' or a positive integer, not '" +
                                             std::string(which) + "'");
      }
      version = *v;
    }
    auto e = store_->knowledge(version);
    if (!e) return http::error_response(500, e.error().message);
    if (!*e) {
      return http::error_response(404, version == 0 ? std::string("no knowledge has been published yet")
                                                    : "no knowledge version " + std::to_string(version));
    }
    // The stored text is a JSON object without these fields: splice them in rather than parse it again.
    const std::string& doc = (*e)->document;
    std::string body = R"({"version":)" + std::to_string((*e)->version) +
                       R"(,"stored_at_ms":)" + std::to_string((*e)->stored_at_ms);
    const std::string_view rest = std::string_view(doc).substr(1);
    if (!rest.starts_with('}')) body += ',';
    body += rest;
    return http::json_response(std::move(body));
  }

  http::response get_knowledge_history(const http::request& req) const {
    std::size_t limit = default_knowledge_history;
    if (auto it = req.query.find("limit"); it != req.query.end()) {
      auto v = parse_u64(it->second);
      if (!v || *v == 0) {
        return http::error_response(400, "limit must be a positive integer, not '" + it->second + "'");
      }
      limit = static_cast<std::size_t>(std::min<std::uint64_t>(*v, max_knowledge_history));
    }
    auto entries = store_->knowledge_history(limit);
    if (!entries) return http::error_response(500, entries.error().message);
    json out = json::array();
    for (const auto& e : *entries) {
      auto summary = hio::parse_json_or_discarded(e.summary);
      out.push_back(json{{"version", e.version},
                         {"stored_at_ms", e.stored_at_ms},
                         {"summary", summary.is_discarded() ? json(nullptr) : std::move(summary)}});
    }
    return http::json_response(dump(json{{"versions", std::move(out)}}));
  }

  http::response get_features(const http::request& req) const {
    std::uint64_t after = 0;
    std::size_t limit = default_page_records;
    std::string format = "jsonl";
    if (auto it = req.query.find("after"); it != req.query.end()) {
      auto v = parse_u64(it->second);
      if (!v) return http::error_response(400, "after must be a cursor (an unsigned integer), not '" + it->second + "'");
      after = *v;
    }
    if (auto it = req.query.find("limit"); it != req.query.end()) {
      auto v = parse_u64(it->second);
      if (!v || *v == 0) {
        return http::error_response(400, "limit must be an integer from 1 to " + std::to_string(max_page_records) +
                                             ", not '" + it->second + "'");
      }
      limit = static_cast<std::size_t>(std::min<std::uint64_t>(*v, max_page_records));
    }
    if (auto it = req.query.find("format"); it != req.query.end()) format = it->second;
    if (format != "jsonl" && format != "binary") {
      return http::error_response(400, "format must be jsonl or binary, not '" + format + "'");
    }

    auto records = store_->since(after, limit);
    if (!records) return http::error_response(500, records.error().message);
    const auto next = records->empty() ? after : records->back().cursor;
    // Bulk reads feed analysis (discovery), which has no use for the previews: only /v1/tuples/<id> has them.
    for (auto& r : *records) r.series.clear();

    http::response res;
    if (format == "binary") {
      res.content_type = "application/octet-stream";
      res.body = encode_records(*records);
    } else {
      res.content_type = "application/x-ndjson";
      for (const auto& r : *records) {
        res.body += dump(record_to_json(r));
        res.body += '\n';
      }
    }
    res.headers.emplace_back("X-Hio-Next-Cursor", std::to_string(next));
    return res;
  }

  http::response get_tuple(std::string_view id_text) const {
    auto id = parse_u64(id_text);
    if (!id) return http::error_response(400, "tuple id must be an unsigned integer, not '" + std::string(id_text) + "'");
    auto r = store_->get(*id);
    if (!r) return http::error_response(500, r.error().message);
    if (!*r) return http::error_response(404, "no record of tuple " + std::to_string(*id));
    return http::json_response(dump(record_to_json(**r)));
  }

  http::response get_counts() const {
    const auto c = store_->counts();
    return http::json_response(dump(json{{"records", c.records},
                                         {"stored", c.stored},
                                         {"failed", c.failed},
                                         {"rows_read", c.rows_read},
                                         {"batches", c.batches},
                                         {"duplicates", c.duplicates},
                                         {"conflicts", c.conflicts},
                                         {"refused_connections", refused_connections()}}));
  }

  std::uint64_t refused_connections() const {
    return options_.refused_connections ? options_.refused_connections() : 0;
  }

  std::shared_ptr<store> store_;
  service_options options_;
};

}  // namespace

store_options to_store_options(const service_options& options) {
  return store_options{options.data_dir, options.segment_bytes, options.store};
}

std::uint64_t body_limit(std::string_view method, std::string_view path) noexcept {
  if (method == "POST" && (path == "/v1/records" || path == "/v1/knowledge")) return max_record_batch_bytes;
  return 64 << 10;
}

http::handler make_handler(std::shared_ptr<store> s, service_options options) {
  auto svc = std::make_shared<const service>(std::move(s), std::move(options));
  return [svc](const http::request& req) -> http::response {
    http::response res;
    try {
      res = svc->handle(req);
    } catch (const std::exception& e) {
      res = http::error_response(500, std::string("internal error: ") + e.what());
    }
    if (res.status >= 400) {
      std::string_view body = res.body;
      while (!body.empty() && body.back() == '\n') body.remove_suffix(1);
      static log_limiter limit;
      log_limited(limit, spdlog::level::warn, "rejected {} {} from {}: {} {}", log_escape(req.method, 16),
                  log_escape(req.target, 200), req.remote, res.status, log_escape(body, 300));
    }
    return res;
  };
}

namespace {
// The double whose shortest text is the float's shortest text (0.3f -> 0.3, not 0.30000001192092896).
double float_as_printed(float v) {
  char buf[32];
  const auto end = std::to_chars(buf, buf + sizeof buf, v).ptr;
  double d = v;
  std::from_chars(buf, end, d);
  return d;
}
}  // namespace

json record_to_json(const feature_record& r) {
  json metadata = nullptr;
  if (!r.metadata.empty()) {
    metadata = hio::parse_json_or_discarded(r.metadata);
    if (metadata.is_discarded()) metadata = nullptr;
  }
  json features = json::object();
  for (const auto& f : r.features) {
    features[f.name] = std::isfinite(f.value) ? json(f.value) : json(nullptr);
  }
  json series = json::array();
  for (const auto& s : r.series) {
    json values = json::array();
    for (const float v : s.values) values.push_back(std::isfinite(v) ? json(float_as_printed(v)) : json(nullptr));
    series.push_back({{"name", s.name}, {"values", std::move(values)}});
  }
  return json{{"cursor", r.cursor},
              {"id", r.tuple_id},
              {"source", r.source},
              {"size", r.size},
              {"xxh3", to_hex16(r.xxh3)},
              {"status", std::string(to_string(r.status))},
              {"error", r.error},
              {"worker", r.worker},
              {"channel", r.channel},
              {"processed_at_ms", r.processed_at_ms},
              {"metadata", std::move(metadata)},
              {"features", std::move(features)},
              {"series", std::move(series)}};
}

std::string metrics_text(const store_counts& c, std::uint64_t refused_connections) {
  std::string out;
  auto metric = [&out](std::string_view name, std::string_view type, std::string_view help, std::uint64_t v) {
    out += "# HELP hio_repository_";
    out += name;
    out += ' ';
    out += help;
    out += "\n# TYPE hio_repository_";
    out += name;
    out += ' ';
    out += type;
    out += "\nhio_repository_";
    out += name;
    out += ' ';
    out += std::to_string(v);
    out += '\n';
  };
  metric("records", "gauge", "Records in the repository (stored and failed).", c.records);
  metric("stored", "gauge", "Records of tuples processed successfully.", c.stored);
  metric("failed", "gauge", "Records of tuples whose processing failed.", c.failed);
  metric("rows_read", "counter", "Rows returned by /v1/features since the process started.", c.rows_read);
  metric("batches_total", "counter", "Record batches accepted.", c.batches);
  metric("duplicates_total", "counter", "Records refused because their tuple was already stored.", c.duplicates);
  metric("conflicts_total", "counter", "Records refused because their tuple id holds another size or XXH3.",
         c.conflicts);
  metric("refused_connections_total", "counter",
         "Connections closed at accept: over the per-peer or per-port connection limit.", refused_connections);
  return out;
}

}  // namespace hio::repository
