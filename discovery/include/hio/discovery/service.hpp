#pragma once
// hio-discovery's work: each tick pulls the feature records the repository stored since the last tick,
// appends them to a local row log, clusters everything pulled so far and publishes the knowledge.

#include <hio/common/error.hpp>
#include <hio/discovery/knowledge.hpp>

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>

namespace hio::discovery {

struct service_options {
  std::string repository = "http://127.0.0.1:8081";       // repository base URL
  std::string secret;                                     // cluster secret, for POST /v1/knowledge
  std::filesystem::path data_dir = "./hio-data/discovery"; // holds rows.log, this service's copy of the rows
  std::size_t page_records = 10000;                       // rows asked for per GET /v1/features
  knowledge_options knowledge;                            // preparation and clustering
};

struct tick_report {
  std::uint64_t pulled = 0;     // rows the repository returned this tick (failed ones included)
  std::uint64_t rows = 0;       // stored rows in the local log, all ticks
  std::uint64_t groups = 0;     // parameter points clustered
  std::size_t clusters = 0;     // flat clusters found
  std::string cut;              // how they were cut: criterion and score, e.g. "mojena 2.31"
  std::uint64_t version = 0;    // knowledge version published this tick; 0 when none was
  std::uint64_t cursor = 0;     // the repository cursor after this tick
  double seconds = 0;           // wall time of the tick
};

// Owns the row log in data_dir for its lifetime (one service per data_dir). Not thread-safe: one
// thread calls tick(). Memory during a tick: one page of records, then the feature table of every
// stored row (tuples × features doubles), which prepare() consumes while building the per-point matrix;
// never two full copies (docs/discovery.md).
class discovery_service {
 public:
  // Opens (or creates) the row log and recovers the cursor from its last complete frame; a torn frame
  // left by a crash is cut off. Error (code 500) when the directory or file cannot be used.
  static result<std::unique_ptr<discovery_service>> open(service_options options);
  ~discovery_service();
  discovery_service(const discovery_service&) = delete;
  discovery_service& operator=(const discovery_service&) = delete;

  // Pulls new rows (each page appended and fsynced before the next is asked for), clusters and
  // publishes. Knowledge is published when rows were pulled or this process has not published yet.
  // Error when the repository cannot be reached or refuses (rows already logged stay logged), or the
  // clustering fails; the next tick starts again from the logged cursor.
  result<tick_report> tick();

  std::uint64_t cursor() const noexcept;

 private:
  struct impl;
  explicit discovery_service(std::unique_ptr<impl> p);
  std::unique_ptr<impl> impl_;
};

}  // namespace hio::discovery
