#include "lease.hpp"

#include <hio/common/json.hpp>
#include <hio/connector/client.hpp>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cctype>
#include <charconv>

namespace hio::connector::detail {

namespace {

hio::error fail(errc code, std::string message) {
  return make_error(static_cast<int>(code), std::move(message));
}

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) == std::tolower(static_cast<unsigned char>(y));
         });
}

std::string trim_url(std::string url) {
  while (!url.empty() && url.back() == '/') url.pop_back();
  if (url.find("://") == std::string::npos) url = "http://" + url;
  return url;
}

}  // namespace

std::uint32_t session_length(std::uint32_t asked, std::uint64_t bytes_hint) {
  if (asked != 0) return asked;
  constexpr std::uint64_t session_bytes = 64ull << 20, fewest = 64, most = 65536;
  return static_cast<std::uint32_t>(std::clamp<std::uint64_t>(session_bytes / std::max<std::uint64_t>(1, bytes_hint),
                                                              fewest, most));
}

std::string new_lease_body(std::string_view source, std::uint32_t count, std::uint64_t bytes_hint,
                           std::string_view transport, std::string_view client, std::uint64_t ends) {
  protocol::lease_request r;
  r.source = source;
  r.client = client;
  r.transport = parse_transport_request(transport).value_or(transport_request::tcp);
  r.count = count;
  r.bytes = bytes_hint;
  r.ends = ends;
  return protocol::encode(r);
}

std::string retry_lease_body(std::string_view source, std::uint64_t first, std::uint32_t count,
                             const issued_ids& issued, std::string_view transport, std::string_view client) {
  protocol::lease_request r;
  r.source = source;
  r.client = client;
  r.transport = parse_transport_request(transport).value_or(transport_request::tcp);
  r.retry = protocol::lease_request::retry_ids{first, count, std::nullopt};
  if (!issued.key.empty()) r.retry->issued = issued;  // a master that sent no key gets none back
  return protocol::encode(r);
}

result<lease> parse_lease(std::string_view body) {
  auto g = protocol::decode_lease_grant(body);
  if (!g) return fail(errc::bad_lease, g.error().message);
  return g;
}

std::chrono::milliseconds backoff_delay(std::uint32_t step) {
  const std::uint32_t shift = std::min<std::uint32_t>(step, 6);  // 50 ms << 6 = 3.2 s, above the cap
  return std::min(std::chrono::milliseconds(50) * (1u << shift), std::chrono::milliseconds(2000));
}

std::optional<std::chrono::milliseconds> retry_after(const http::response& r) {
  for (const auto& [name, value] : r.headers) {
    if (!iequals(name, "retry-after")) continue;
    std::uint32_t seconds = 0;
    auto [ptr, ec] = std::from_chars(value.data(), value.data() + value.size(), seconds);
    if (ec != std::errc{} || ptr != value.data() + value.size() || seconds > 3600) return std::nullopt;
    return std::chrono::milliseconds(std::chrono::seconds(seconds));
  }
  return std::nullopt;
}

std::string error_message(std::string_view body) {
  auto j = hio::parse_json_or_discarded(body);
  if (!j.is_discarded() && j.is_object() && j.contains("error")) {
    const auto& e = j["error"];
    return e.is_string() ? e.get<std::string>() : e.dump();
  }
  std::string text(body.substr(0, 200));
  return text.empty() ? "(no message)" : text;
}

lease_requester::lease_requester(std::string master_url, std::string bearer, sleeper sleep)
    : master_url_(trim_url(std::move(master_url))), bearer_(std::move(bearer)), sleep_(std::move(sleep)) {}

result<lease> lease_requester::request(std::string_view body, std::chrono::milliseconds timeout) {
  using clock = std::chrono::steady_clock;
  const auto deadline = clock::now() + timeout;
  if (!http_) {
    auto parts = http::parse_url(master_url_);
    if (!parts)
      return fail(errc::invalid_argument, "bad master url '" + master_url_ + "': " + parts.error().message);
    http_.emplace(master_url_, bearer_, std::chrono::milliseconds(10000));
  }
  std::string last;
  for (std::uint32_t step = 0;; ++step) {
    std::chrono::milliseconds wait = backoff_delay(step);
    auto r = http_->post("/v1/streams", body);
    if (!r) {
      last = "master " + master_url_ + " unreachable: " + r.error().message;
    } else if (r->status == 200) {
      return parse_lease(r->body);
    } else if (r->status == 503 || r->status >= 500 || r->status == 429) {
      last = "master busy (HTTP " + std::to_string(r->status) + "): " + error_message(r->body);
      if (auto ra = retry_after(*r)) wait = std::max(*ra, std::chrono::milliseconds(1));
    } else {
      return fail(errc::lease_refused,
                  "lease refused (HTTP " + std::to_string(r->status) + "): " + error_message(r->body));
    }
    const auto now = clock::now();
    if (now >= deadline) {
      return fail(errc::lease_timeout,
                  "no lease within " + std::to_string(timeout.count()) + " ms; last: " + last);
    }
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - now);
    if (!sleep_(std::min(wait, left + std::chrono::milliseconds(1))))
      return fail(errc::closed, "client closed while waiting for a lease");
  }
}

}  // namespace hio::connector::detail
