#include "master_protocol.hpp"

#include <nlohmann/json.hpp>

namespace hio::worker::detail {

std::string register_body(const std::string& worker_id, const std::string& instance, const std::string& host,
                          const std::vector<channel_description>& channels) {
  nlohmann::json list = nlohmann::json::array();
  for (const auto& c : channels) {
    nlohmann::json entry = {{"index", c.index},
                            {"port", c.port},
                            {"core", c.core},
                            {"processor", c.processor},
                            {"device", c.device},
                            {"transport", c.transport},
                            {"transports", c.transports},
                            {"sessions", c.sessions}};
    if (c.ucx_port != 0) entry["ucx_port"] = c.ucx_port;
    if (!c.ucx_address.empty()) entry["ucx_address"] = c.ucx_address;
    list.push_back(std::move(entry));
  }
  return nlohmann::json{{"id", worker_id}, {"instance", instance}, {"host", host}, {"channels", std::move(list)}}
      .dump();
}

std::string heartbeat_body(bool draining, const std::vector<channel_status>& channels) {
  nlohmann::json list = nlohmann::json::array();
  for (const auto& c : channels) {
    list.push_back({{"index", c.index},
                    {"state", c.busy ? "busy" : "idle"},
                    {"active", c.active},
                    {"saturated", c.saturated},
                    {"lease_id", c.lease_id},
                    {"refused_lease_id", c.refused_lease_id},
                    {"processed", c.processed},
                    {"failed", c.failed},
                    {"bytes", c.bytes},
                    {"restarts", c.restarts},
                    {"processor_restarts", c.processor_restarts},
                    {"refused_connections", c.refused_connections}});
  }
  return nlohmann::json{{"draining", draining}, {"channels", std::move(list)}}.dump();
}

std::string free_body(std::uint32_t channel, std::uint64_t lease_id, bool clean) {
  return nlohmann::json{{"channel", channel}, {"lease_id", lease_id}, {"clean", clean}}.dump();
}

std::string worker_path(const std::string& worker_id, const std::string& suffix) {
  static constexpr char hex[] = "0123456789ABCDEF";
  std::string path = "/v1/workers/";
  for (const unsigned char ch : worker_id) {
    const bool safe = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
                      ch == '-' || ch == '_' || ch == '.' || ch == '~';
    if (safe) {
      path += static_cast<char>(ch);
    } else {
      path += '%';
      path += hex[ch >> 4];
      path += hex[ch & 0xf];
    }
  }
  return path + suffix;
}

}  // namespace hio::worker::detail
