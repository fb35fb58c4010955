// `hio status` and `hio features`: read a running cluster.
#include <hio/cli/commands.hpp>
#include <hio/common/http.hpp>
#include <hio/common/json.hpp>
#include <hio/common/log.hpp>

#include <nlohmann/json.hpp>

#include <cstdio>
#include <iostream>

namespace hio::cli {

using json = nlohmann::json;

namespace {

// "tcp+ucx>ucx": the transports a channel offers, then the one its last lease uses.
std::string net_of(const json& ch) {
  std::string out;
  if (ch.contains("transports") && ch["transports"].is_array()) {
    for (const auto& t : ch["transports"]) out += (out.empty() ? "" : "+") + t.get<std::string>();
  } else {
    out = ch.value("transport", "");
  }
  if (const auto last = ch.value("lease_transport", ""); !last.empty()) out += ">" + last;
  return out;
}

// One CSV field (RFC 4180): quoted, with quotes doubled, when it holds a comma, a quote or a line break.
std::string csv_field(std::string_view v) {
  if (v.find_first_of(",\"\r\n") == std::string_view::npos) return std::string(v);
  std::string out = "\"";
  for (const char c : v) {
    if (c == '"') out += '"';
    out += c;
  }
  return out + '"';
}

// One CSV field of a JSON value from a record: a number as JSON writes it, a string as itself, anything
// else (a hostile repository may send it where a number belongs) as its JSON text; csv_field() either way.
std::string csv_value(const json& v) {
  if (v.is_number()) return v.dump();
  return csv_field(v.is_string() ? v.get_ref<const std::string&>() : v.dump());
}

// A string field of a record, "" when it is missing or not a string (records come from outside).
std::string text_of(const json& j, const char* key) {
  const auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
}

}  // namespace

int status(const status_options& o) {
  http::client c(o.master);
  auto r = c.get("/v1/status");
  if (!r) {
    std::cerr << "hio status: " << r.error().message << "\n";
    return 1;
  }
  if (r->status != 200) {
    std::cerr << "hio status: the master answered " << r->status << ": " << r->body;
    return 1;
  }
  if (o.format == "json") {
    std::cout << r->body;
    return 0;
  }
  const json s = hio::parse_json_or_discarded(r->body);
  if (!s.is_object()) {
    std::fprintf(stderr, "hio status: the master's answer is not a JSON object of at most %zu levels\n",
                 hio::max_json_depth);
    return 1;
  }
  const auto& q = s["queue"];
  const auto& n = s["counters"];
  std::printf("master %s   up %.0f s\n", o.master.c_str(), s.value("uptime_s", 0.0));
  std::printf("workers %zu   channels %d free / %d total   queue %d tuples (%s)\n", s["workers"].size(),
              s["channels"].value("free", 0), s["channels"].value("total", 0), q.value("length", 0),
              human_bytes(q.value("bytes", 0.0)).c_str());
  std::printf("tuples: leased %llu  queued %llu  processed %llu  failed %llu   %.1f tuples/s  %s/s\n",
              n.value("tuples_leased", 0ull), n.value("queued", 0ull), n.value("processed", 0ull),
              n.value("failed", 0ull), s["rates"].value("tuples_per_s", 0.0),
              human_bytes(s["rates"].value("bytes_per_s", 0.0)).c_str());
  for (const auto& w : s["workers"]) {
    std::printf("\n  worker %-16s %s%s   %d free / %zu\n", w.value("id", "").c_str(), w.value("host", "").c_str(),
                w.value("draining", false) ? "  (draining)" : "", w.value("free", 0), w["channels"].size());
    std::printf("    %-3s %-6s %-5s %-12s %-7s %-11s %-7s %10s %8s %10s %8s\n", "ch", "port", "core", "processor",
                "device", "net", "state", "processed", "failed", "bytes", "restarts");
    for (const auto& ch : w["channels"])
      std::printf("    %-3d %-6d %-5d %-12s %-7s %-11s %-7s %10llu %8llu %10s %8llu\n", ch.value("index", 0),
                  ch.value("port", 0), ch.value("core", -1), ch.value("processor", "").c_str(),
                  ch.value("device", "").c_str(), net_of(ch).c_str(), ch.value("state", "").c_str(),
                  ch.value("processed", 0ull), ch.value("failed", 0ull), human_bytes(ch.value("bytes", 0.0)).c_str(),
                  ch.value("restarts", 0ull));
  }
  return 0;
}

int features(const features_options& o) {
  http::client c(o.repository, {}, std::chrono::seconds(60));
  std::uint64_t after = o.after, printed = 0;
  bool header = false;
  for (;;) {
    const std::uint64_t page = o.limit ? std::min<std::uint64_t>(10000, o.limit - printed) : 10000;
    if (page == 0) break;
    auto r = c.get("/v1/features?after=" + std::to_string(after) + "&limit=" + std::to_string(page));
    if (!r) {
      std::cerr << "hio features: " << r.error().message << "\n";
      return 1;
    }
    if (r->status != 200) {
      std::cerr << "hio features: the repository answered " << r->status << ": " << hio::log_escape(r->body, 500)
                << "\n";
      return 1;
    }
    std::size_t lines = 0;
    std::size_t start = 0;
    while (start < r->body.size()) {
      auto end = r->body.find('\n', start);
      if (end == std::string::npos) end = r->body.size();
      const std::string_view line(r->body.data() + start, end - start);
      start = end + 1;
      if (line.empty()) continue;
      ++lines;
      const json j = hio::parse_json_or_discarded(line);
      if (!j.is_object()) {
        std::fprintf(stderr, "hio features: skipped a record that is not a JSON object of at most %zu levels\n",
                     hio::max_json_depth);
        continue;
      }
      if (j.contains("cursor") && j["cursor"].is_number_unsigned()) after = j["cursor"].get<std::uint64_t>();
      const json features = j.contains("features") && j["features"].is_object() ? j["features"] : json::object();
      if (o.format == "csv") {
        if (!header) {
          std::cout << "id,source,size,xxh3,status";
          for (auto& [k, v] : features.items()) std::cout << "," << csv_field(k);
          std::cout << "\n";
          header = true;
        }
        std::cout << csv_value(j.value("id", json())) << "," << csv_field(text_of(j, "source")) << ","
                  << csv_value(j.value("size", json())) << "," << csv_field(text_of(j, "xxh3")) << ","
                  << csv_field(text_of(j, "status"));
        for (auto& [k, v] : features.items()) std::cout << "," << csv_value(v);
        std::cout << "\n";
      } else {
        // value(), not operator[]: a record from outside may lack any field.
        json out = {{"id", j.value("id", json())}, {"source", j.value("source", json())},
                    {"size", j.value("size", json())}, {"xxh3", j.value("xxh3", json())},
                    {"status", j.value("status", json())}, {"features", features}};
        if (!text_of(j, "error").empty()) out["error"] = j["error"];
        if (j.contains("metadata") && !j["metadata"].is_null()) out["metadata"] = j["metadata"];
        std::cout << out.dump() << "\n";
      }
    }
    printed += lines;
    if (lines < page) break;
  }
  std::cout.flush();
  return 0;
}

}  // namespace hio::cli
