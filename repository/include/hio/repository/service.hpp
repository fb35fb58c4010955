#pragma once
// The repository's REST interface: an http::handler over a store. Endpoints:
//   POST /v1/records                body encode_records(batch) -> {"stored":n,"duplicates":m}
//   GET  /v1/features?after=&limit=&format=jsonl|binary  records after a cursor, X-Hio-Next-Cursor
//   GET  /v1/tuples/<id>            one record as JSON, or 404
//   GET  /v1/counts                 store_counts as JSON
//   POST /v1/knowledge              a knowledge document (JSON object) -> {"version":v,"stored_at_ms":t}
//   GET  /v1/knowledge?limit=n      {"versions":[{"version","stored_at_ms","summary"}]}, newest first
//   GET  /v1/knowledge/latest       the newest document with "version" and "stored_at_ms"; 404 until one
//   GET  /v1/knowledge/<version>    that document, or 404
//   GET  /healthz, GET /metrics     liveness, Prometheus text
// Errors are {"error": "..."} with a 4xx/5xx status; each rejected request is logged on one line.

#include <hio/common/http.hpp>
#include <hio/common/record.hpp>
#include <hio/repository/store.hpp>

#include <nlohmann/json.hpp>

#include <cstddef>
#include <cstdint>
#include <string_view>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>

namespace hio::repository {

struct service_options {
  std::filesystem::path data_dir = "./hio-data/repository";  // the store's directory
  std::string host = "127.0.0.1";                            // address to listen on
  std::uint16_t port = 0;                                    // 0: any free port
  std::string secret;  // cluster secret; when set, POSTs need "Authorization: Bearer <secret>"
  std::uint64_t segment_bytes = 256ull << 20;  // the store's segment rollover size
  std::string store;  // empty: SQLite in data_dir; else a PostgreSQL URL or conninfo (store_options::store)
  // Connections the HTTP server closed at accept (its connection limits), for /v1/counts and /metrics;
  // empty: none counted. Called from the handler's threads.
  std::function<std::uint64_t()> refused_connections;
};

inline constexpr std::size_t default_page_records = 1000;  // GET /v1/features without limit=
inline constexpr std::size_t max_page_records = 100000;    // larger limit= values are clamped to this
inline constexpr std::size_t default_knowledge_history = 20;   // GET /v1/knowledge without limit=
inline constexpr std::size_t max_knowledge_history = 10000;    // larger limit= values are clamped to this

store_options to_store_options(const service_options& options);

// The handler shares ownership of the store and may be called from several threads at once.
// It never throws: unexpected exceptions become a 500 response.
http::handler make_handler(std::shared_ptr<store> s, service_options options);

// The body limit of each endpoint (http::server_options::body_limit): record batches and knowledge
// documents up to max_record_batch_bytes (64 MiB), every other request 64 KiB.
std::uint64_t body_limit(std::string_view method, std::string_view path) noexcept;

// A record as served by /v1/features?format=jsonl and /v1/tuples/<id>: metadata parsed as JSON (null
// when empty or invalid), xxh3 as 16 hex digits, non-finite feature values as null.
nlohmann::json record_to_json(const feature_record& r);

// Prometheus text exposition (version 0.0.4) of the counts and the server's refused connections.
std::string metrics_text(const store_counts& c, std::uint64_t refused_connections = 0);

}  // namespace hio::repository
