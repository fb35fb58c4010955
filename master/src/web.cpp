#include "web.hpp"

#include <hio/common/json.hpp>
#include <hio/dashboard/dashboard.hpp>

#include <string_view>

namespace hio::master::detail {

using json = nlohmann::json;
using clock = std::chrono::steady_clock;

std::optional<http::response> dashboard_response(const http::request& r) {
  std::string_view file;
  if (r.path == "/" || r.path == "/index.html") {
    file = "index.html";
  } else if (r.path.starts_with("/dashboard/")) {
    file = std::string_view(r.path).substr(std::string_view("/dashboard/").size());
  } else {
    return std::nullopt;
  }
  if (r.method != "GET") return http::error_response(405, "the dashboard is read with GET");
  auto a = dashboard::find(file);
  if (!a) return http::error_response(404, "no such dashboard file: " + std::string(file));
  http::response res;
  res.content_type = std::string(a->content_type);
  res.body.assign(a->bytes);
  res.headers.emplace_back("Cache-Control",
                           file.starts_with("vendor/") ? "public, max-age=31536000, immutable" : "no-cache");
  return res;
}

bool repository_reader::fetch(http::client& c, const std::string& target, http::response& out, bool want_ok) {
  if (url_.empty()) {
    out = http::error_response(503, "this master has no --repository: the dashboard's science preview needs one");
    return false;
  }
  {
    std::lock_guard lock(breaker_mutex_);
    const auto since = clock::now() - down_since_;
    if (!down_why_.empty() && since < pause) {
      const auto left = std::chrono::duration_cast<std::chrono::seconds>(pause - since).count() + 1;
      out = http::error_response(502, down_why_ + " (trying again in " + std::to_string(left) + " s)");
      return false;
    }
  }
  auto r = c.get(target);
  std::string why;
  if (!r) {
    why = "repository " + url_ + " unreachable: " + r.error().message;
  } else if (r->status >= 500) {
    why = "repository " + url_ + " answered " + std::to_string(r->status) + " to " + target;
  }
  std::lock_guard lock(breaker_mutex_);
  if (!why.empty()) {
    down_since_ = clock::now();
    down_why_ = why;
    out = http::error_response(502, why);
    return false;
  }
  down_why_.clear();
  out.status = r->status;
  out.content_type = r->content_type;
  out.body = std::move(r->body);
  out.headers = {{"Cache-Control", "no-cache"}};
  if (want_ok && out.status != 200) {
    out = http::error_response(502, "repository " + url_ + " answered " + std::to_string(out.status) + " to " + target);
    return false;
  }
  return true;
}

http::response repository_reader::get(const std::string& target) {
  http::client c(url_.empty() ? "http://127.0.0.1:1" : url_, {}, timeout);
  http::response out;
  fetch(c, target, out, false);
  return out;
}

http::response repository_reader::failures() {
  std::unique_lock scan(scan_mutex_, std::try_to_lock);
  if (!scan) return http::error_response(503, "another reader is scanning the repository for failures; retry");
  http::client c(url_.empty() ? "http://127.0.0.1:1" : url_, {}, timeout);
  http::response res;
  if (!fetch(c, "/v1/counts", res, true)) return res;
  json counts = hio::parse_json_or_discarded(res.body);
  if (!counts.is_object()) return http::error_response(502, "repository " + url_ + ": /v1/counts is not a JSON object");
  if (!started_) {
    // Cursors number the stored records 1, 2, ...: start a window before the end.
    const auto records = counts.value("records", std::uint64_t{0});
    cursor_ = records > initial_window ? records - initial_window : 0;
    started_ = true;
  }
  for (int page = 0; page < max_pages; ++page) {
    if (!fetch(c, "/v1/features?after=" + std::to_string(cursor_) + "&limit=" + std::to_string(page_records), res, true))
      return res;
    std::size_t lines = 0;
    std::string_view body = res.body;
    while (!body.empty()) {
      const auto nl = body.find('\n');
      const auto line = body.substr(0, nl);
      body = nl == std::string_view::npos ? std::string_view{} : body.substr(nl + 1);
      if (line.empty()) continue;
      ++lines;
      const json rec = hio::parse_json_or_discarded(line);
      if (!rec.is_object()) continue;
      cursor_ = std::max(cursor_, rec.value("cursor", cursor_));
      if (rec.value("status", "") != "failed") continue;
      recent_.push_back({{"id", rec.value("id", std::uint64_t{0})},
                         {"source", rec.value("source", "")},
                         {"worker", rec.value("worker", "")},
                         {"channel", rec.value("channel", 0)},
                         {"error", rec.value("error", "")},
                         {"processed_at_ms", rec.value("processed_at_ms", std::int64_t{0})}});
      while (recent_.size() > max_recent) recent_.pop_front();
    }
    if (lines < page_records) break;
  }
  json recent = json::array();
  for (auto it = recent_.rbegin(); it != recent_.rend(); ++it) recent.push_back(*it);
  http::response out = http::json_response(
      json{{"recent", std::move(recent)}, {"counts", std::move(counts)}, {"scanned_to", cursor_}}.dump());
  out.headers.emplace_back("Cache-Control", "no-cache");
  return out;
}

}  // namespace hio::master::detail
