#include <hio/worker/record_sink.hpp>

#include <hio/common/http.hpp>
#include <hio/common/json.hpp>
#include <hio/common/log.hpp>
#include <hio/common/wire.hpp>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <atomic>
#include <thread>
#include <utility>

namespace hio::worker {
namespace {

constexpr int internal = static_cast<int>(wire::error_code::internal);

bool worth_retrying(int status) { return status >= 500 || status == 408 || status == 429; }

std::string trim_slash(std::string url) {
  while (!url.empty() && url.back() == '/') url.pop_back();
  return url;
}

// Owned by one channel; store() runs on its thread, cancel() from any.
class repository_sink final : public record_sink {
 public:
  explicit repository_sink(repository_sink_options o)
      : options_(std::move(o)), client_(trim_slash(options_.url), options_.secret, options_.request_timeout) {}

  result<std::vector<std::uint64_t>> store(const std::vector<feature_record>& records) override {
    const std::string body = encode_records(records);
    const auto start = std::chrono::steady_clock::now();
    auto backoff = options_.first_backoff;
    std::string last_error;
    for (int attempt = 1;; ++attempt) {
      auto r = client_.post("/v1/records", body, "application/octet-stream");
      if (r && r->status >= 200 && r->status < 300) return check_counts(r->body, records.size());
      if (r) {
        last_error = "HTTP " + std::to_string(r->status) + " " + r->body.substr(0, 200);
        if (!worth_retrying(r->status)) break;
      } else {
        last_error = r.error().message;
      }
      const auto spent = std::chrono::steady_clock::now() - start;
      if (cancelled_.load() || spent + backoff > options_.retry_budget) break;
      if (attempt == 1) {
        spdlog::warn("repository {}: storing {} records failed ({}); retrying for up to {} ms", options_.url,
                     records.size(), last_error, options_.retry_budget.count());
      }
      if (!sleep_unless_cancelled(backoff)) break;
      backoff = std::min(backoff * 2, options_.max_backoff);
    }
    return make_error(internal, "repository " + options_.url + " did not store the features: " + last_error);
  }

  void cancel() override { cancelled_.store(true); }

 private:
  // Sleeps in short steps; false when cancelled meanwhile.
  bool sleep_unless_cancelled(std::chrono::milliseconds d) {
    const auto until = std::chrono::steady_clock::now() + d;
    while (std::chrono::steady_clock::now() < until) {
      if (cancelled_.load()) return false;
      std::this_thread::sleep_for(std::min<std::chrono::steady_clock::duration>(
          std::chrono::milliseconds(20), until - std::chrono::steady_clock::now()));
    }
    return !cancelled_.load();
  }

  // The conflicting ids of the repository's answer; logs counts that do not add up.
  std::vector<std::uint64_t> check_counts(const std::string& body, std::size_t sent) {
    std::vector<std::uint64_t> conflicts;
    const auto json = hio::parse_json_or_discarded(body);
    if (json.is_discarded() || !json.is_object()) {
      spdlog::warn("repository {}: unexpected answer to POST /v1/records: {}", options_.url, body.substr(0, 200));
      return conflicts;
    }
    if (const auto it = json.find("conflicts"); it != json.end() && it->is_array())
      for (const auto& id : *it)
        if (id.is_number_unsigned() && conflicts.size() < sent) conflicts.push_back(id.get<std::uint64_t>());
    const auto count = [&json](const char* key) -> std::uint64_t {
      const auto it = json.find(key);
      return it != json.end() && it->is_number_unsigned() ? it->get<std::uint64_t>() : 0;
    };
    const auto stored = count("stored");
    const auto duplicates = count("duplicates");
    if (stored + duplicates + conflicts.size() != sent) {
      spdlog::warn("repository {}: sent {} records, it reports {} stored, {} duplicates and {} conflicts",
                   options_.url, sent, stored, duplicates, conflicts.size());
    }
    return conflicts;
  }

  repository_sink_options options_;
  http::client client_;
  std::atomic<bool> cancelled_{false};
};

}  // namespace

std::unique_ptr<record_sink> make_repository_sink(repository_sink_options options) {
  return std::make_unique<repository_sink>(std::move(options));
}

}  // namespace hio::worker
