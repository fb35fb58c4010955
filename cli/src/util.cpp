#include <hio/cli/commands.hpp>
#include <hio/common/http.hpp>
#include <hio/common/json.hpp>
#include <hio/common/process.hpp>

#include <nlohmann/json.hpp>

#include <cmath>
#include <cstdio>
#include <fstream>

namespace hio::cli {

namespace {
std::string from_cluster_file(const std::string& data_dir, const char* key) {
  std::ifstream in(data_dir + "/cluster.json");
  if (!in) return {};
  try {
    auto j = nlohmann::json::parse(in);
    return j.value(key, "");
  } catch (const std::exception&) {
    return {};
  }
}
}  // namespace

std::string default_master_url(const std::string& data_dir) {
  if (auto v = env_or("HIO_MASTER"); !v.empty()) return v;
  if (auto v = from_cluster_file(data_dir, "master"); !v.empty()) return v;
  return "http://127.0.0.1:8080";
}

std::string default_repository_url(const std::string& data_dir) {
  if (auto v = env_or("HIO_REPOSITORY"); !v.empty()) return v;
  if (auto v = from_cluster_file(data_dir, "repository"); !v.empty()) return v;
  return "http://127.0.0.1:8081";
}

result<std::string> repository_of_master(const std::string& master_url) {
  http::client c(master_url);
  auto r = c.get("/v1/status");
  if (!r) return make_error(0, "cannot reach the master at " + master_url + ": " + r.error().message);
  if (r->status != 200) return make_error(0, "the master at " + master_url + " answered HTTP " + std::to_string(r->status));
  const auto j = parse_json_or_discarded(r->body);
  if (j.is_discarded() || !j.is_object() || !j.contains("repository") || !j["repository"].is_string() ||
      j["repository"].get<std::string>().empty())
    return make_error(0, "the master at " + master_url + " names no repository; give --repository");
  return j["repository"].get<std::string>();
}

std::string human_bytes(double bytes) {
  static const char* units[] = {"B", "kB", "MB", "GB", "TB", "PB"};
  int u = 0;
  while (std::fabs(bytes) >= 1000 && u < 5) {
    bytes /= 1000;
    ++u;
  }
  char buf[32];
  if (u == 0) std::snprintf(buf, sizeof buf, "%.0f %s", bytes, units[u]);
  else std::snprintf(buf, sizeof buf, bytes >= 100 ? "%.0f %s" : bytes >= 10 ? "%.1f %s" : "%.2f %s", bytes, units[u]);
  return buf;
}

}  // namespace hio::cli
