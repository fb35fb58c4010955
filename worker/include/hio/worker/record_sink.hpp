#pragma once
// Where a channel makes its feature records durable. The real sink POSTs batches to the repository;
// tests inject their own. A sink belongs to one channel and is called from that channel's thread only,
// except cancel(), which any thread may call.

#include <hio/common/error.hpp>
#include <hio/common/record.hpp>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

namespace hio::worker {

class record_sink {
 public:
  virtual ~record_sink() = default;
  // Makes every record of the batch durable (idempotently: a record of the same tuple stored before
  // counts as stored). Returns the tuple ids the repository refused as conflicts (already stored with
  // another size or XXH3: not this tuple). Error (code wire::error_code::internal) when that could not
  // be done; the caller then acks nothing.
  virtual result<std::vector<std::uint64_t>> store(const std::vector<feature_record>& records) = 0;
  // Makes a store() in progress (or the next one) give up soon: the channel is stopping.
  virtual void cancel() {}
};

struct repository_sink_options {
  std::string url;                                             // repository base URL, "http://host:port"
  std::string secret;                                          // sent as "Authorization: Bearer <secret>"
  std::chrono::milliseconds retry_budget{30000};               // keep retrying a batch this long in all
  std::chrono::milliseconds request_timeout{10000};            // for one POST
  std::chrono::milliseconds first_backoff{50};                 // pause after the first failure, doubling
  std::chrono::milliseconds max_backoff{2000};                 // ... up to this
};

// POST <url>/v1/records with the encode_records() batch (application/octet-stream); expects 2xx with
// {"stored":n,"duplicates":m}. Retries refused connections, timeouts, 5xx, 408 and 429 with backoff
// until the budget is spent; other answers fail at once. Both then give code wire::error_code::internal.
std::unique_ptr<record_sink> make_repository_sink(repository_sink_options options);

}  // namespace hio::worker
