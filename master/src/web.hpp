#pragma once
// What the master serves for the dashboard besides its own numbers: the embedded page and its assets,
// the repository's knowledge and tuple records passed through (the page then needs one origin only), and
// a short list of recent failures read from the repository.

#include <hio/common/http.hpp>

#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdint>
#include <deque>
#include <mutex>
#include <optional>
#include <string>

namespace hio::master::detail {

// GET / (index.html) and GET /dashboard/<file>; nullopt for any other path. Vendored files are served
// with a year's cache (the page names them with their version); the page's own files revalidate.
std::optional<http::response> dashboard_response(const http::request& r);

// The repository as the dashboard reads it through the master: pass-through GETs and a short list of
// recent failures. The master's REST threads also serve leases, so a repository that does not answer
// must not hold them: after a failed call every call answers 502 at once for `pause` before the
// repository is tried again, and a call waits at most `timeout`. Thread-safe.
class repository_reader {
 public:
  static constexpr std::size_t max_recent = 20;          // failures kept
  static constexpr std::uint64_t initial_window = 2000;  // records before the end the first scan starts at
  static constexpr std::size_t page_records = 1000;
  static constexpr int max_pages = 5;                    // per failures() call, so a backlog is caught up
                                                         // over several calls
  static constexpr std::chrono::milliseconds timeout{2000};
  static constexpr std::chrono::milliseconds pause{10000};

  explicit repository_reader(std::string url) : url_(std::move(url)) {}

  // GET `target` on the repository, answered with the repository's status and body. 503 when there is no
  // repository URL, 502 (with the reason) when the repository does not answer.
  http::response get(const std::string& target);

  // {"recent": [newest first], "counts": the repository's /v1/counts, "scanned_to": cursor}; errors as
  // get(). Reads the repository only when asked (so only while someone looks), from where the last call
  // stopped.
  http::response failures();

 private:
  // GET target into `out`. False when `out` is instead the 502/503 to answer (also when the status is
  // not 200 and `want_ok`).
  bool fetch(http::client& c, const std::string& target, http::response& out, bool want_ok);

  const std::string url_;
  std::mutex breaker_mutex_;  // guards down_since_, down_why_
  std::chrono::steady_clock::time_point down_since_{};
  std::string down_why_;

  std::mutex scan_mutex_;  // guards the scan: one failures() call at a time
  bool started_ = false;
  std::uint64_t cursor_ = 0;
  std::deque<nlohmann::json> recent_;  // newest at the back
};

}  // namespace hio::master::detail
