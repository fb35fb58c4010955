#include <hio/common/json.hpp>
#include <hio/common/protocol/lease.hpp>

#include <nlohmann/json.hpp>

namespace hio::protocol {

namespace {

using json = nlohmann::json;
using ordered = nlohmann::ordered_json;

bool is_unsigned(const json& o, const char* key) { return o.contains(key) && o[key].is_number_unsigned(); }

error refused(std::string message) { return make_error(400, std::move(message)); }

result<lease_request::retry_ids> decode_retry(const json& rt) {
  if (!rt.is_object() || !is_unsigned(rt, "first") || (rt.contains("count") && !is_unsigned(rt, "count")))
    return refused(R"("retry" must be {"first": <tuple id>, "count": <n>, "issued": {...}})");
  lease_request::retry_ids r;
  r.first = rt["first"].get<std::uint64_t>();
  r.count = rt.value("count", std::uint64_t{1});
  if (rt.contains("issued")) {
    const auto& is = rt["issued"];
    if (!is.is_object() || !is_unsigned(is, "first") || !is_unsigned(is, "count") || !is.contains("key") ||
        !is["key"].is_string())
      return refused(R"("retry.issued" must be {"first": <tuple id>, "count": <n>, "key": "<hex>"})");
    r.issued = issued_range{is["first"].get<std::uint64_t>(), is["count"].get<std::uint64_t>(),
                            is["key"].get<std::string>()};
  }
  return r;
}

}  // namespace

std::string encode(const lease_request& r) {
  ordered j = ordered::object();  // a request with nothing set is {}, not null
  if (r.retry) {
    j["retry"] = {{"first", r.retry->first}, {"count", r.retry->count}};
    if (const auto& is = r.retry->issued)
      j["retry"]["issued"] = {{"first", is->first}, {"count", is->count}, {"key", is->key}};
  } else if (r.count != 0) {
    j["count"] = r.count;
  }
  if (!r.source.empty()) j["source"] = r.source;
  if (!r.client.empty()) j["client"] = r.client;
  if (r.ends != 0) j["ends"] = r.ends;
  if (r.bytes != 0) j["bytes"] = r.bytes;
  if (r.transport != transport_request::tcp) j["transport"] = to_string(r.transport);
  return j.dump();
}

result<lease_request> decode_lease_request(std::string_view body) {
  json j = json::object();
  if (!body.empty()) {
    auto parsed = parse_untrusted_json(body);
    if (!parsed) return refused("invalid JSON body: " + parsed.error().message);
    j = std::move(*parsed);
  }
  if (!j.is_object()) return refused("body must be a JSON object");
  // Every field a lease body knows has one type; a wrong one is refused, not ignored or coerced.
  for (const char* key : {"count", "bytes", "ends"})
    if (j.contains(key) && !j[key].is_number_unsigned())
      return refused(std::string("\"") + key + "\" must be a non-negative integer");
  for (const char* key : {"source", "client", "transport"})
    if (j.contains(key) && !j[key].is_string()) return refused(std::string("\"") + key + "\" must be a string");
  lease_request r;
  for (auto [key, field] : {std::pair{"source", &r.source}, std::pair{"client", &r.client}}) {
    if (!j.contains(key)) continue;
    if (j[key].get_ref<const std::string&>().size() > max_source_name)
      return refused(std::string("\"") + key + "\" must be a string of at most " + std::to_string(max_source_name) +
                     " bytes");
    *field = j[key].get<std::string>();
  }
  if (j.contains("transport")) {
    const auto t = parse_transport_request(j["transport"].get_ref<const std::string&>());
    if (!t) return refused(R"("transport" must be "tcp", "ucx" or "auto")");
    r.transport = *t;
  }
  r.bytes = j.value("bytes", std::uint64_t{0});
  r.ends = j.value("ends", std::uint64_t{0});
  if (j.contains("retry")) {
    auto rt = decode_retry(j["retry"]);
    if (!rt) return rt.error();
    r.retry = std::move(*rt);
  } else if (j.contains("count")) {
    r.count = j["count"].get<std::uint64_t>();
    if (r.count == 0) return refused(R"("count" must be a positive integer)");
  }
  return r;
}

std::string encode(const lease_grant& g) {
  ordered j;
  j["kind"] = g.queue ? "queue" : "channel";
  j["host"] = g.host;
  j["port"] = g.port;
  if (!g.queue) {
    j["worker"] = g.worker;
    j["channel"] = g.channel;
  }
  j["transport"] = to_string(g.via);
  if (!g.ucx_address.empty()) j["ucx_address"] = g.ucx_address;
  j["token"] = to_hex(g.token);
  j["lease_id"] = g.lease_id;
  j["first_id"] = g.first_id;
  j["count"] = g.count;
  j["expires_at"] = g.expires_at;
  j["retry_key"] = g.retry_key;
  return j.dump();
}

result<lease_grant> decode_lease_grant(std::string_view body) {
  const auto bad = [](std::string why) { return make_error(0, "lease answer " + std::move(why)); };
  auto parsed = parse_untrusted_json(body);
  if (!parsed || !parsed->is_object()) return bad("is not a JSON object");
  const json& j = *parsed;
  lease_grant g;
  try {
    const auto kind = j.at("kind").get<std::string>();
    if (kind != "channel" && kind != "queue") return bad("has unknown kind '" + kind + "'");
    g.queue = kind == "queue";
    g.host = j.at("host").get<std::string>();
    const auto port = j.at("port").get<std::uint64_t>();
    if (port == 0 || port > 65535) return bad("has port out of range");
    g.port = static_cast<std::uint16_t>(port);
    if (j.contains("worker") && j["worker"].is_string()) g.worker = j["worker"].get<std::string>();
    if (j.contains("channel") && j["channel"].is_number_unsigned()) g.channel = j["channel"].get<std::uint32_t>();
    g.lease_id = j.at("lease_id").get<std::uint64_t>();
    g.first_id = j.at("first_id").get<std::uint64_t>();
    g.count = j.at("count").get<std::uint32_t>();
    g.expires_at = j.value("expires_at", std::uint32_t{0});
    const auto via = parse_transport(j.value("transport", std::string("tcp")));
    if (!via) return bad("has unknown transport '" + j.value("transport", std::string()) + "'");
    g.via = *via;
    if (g.via == transport::ucx && j.contains("ucx_address") && j["ucx_address"].is_string())
      g.ucx_address = j["ucx_address"].get<std::string>();
    if (j.contains("retry_key")) {
      if (!j["retry_key"].is_string() || j["retry_key"].get_ref<const std::string&>().size() != 2 * retry_key_size)
        return bad("has a bad retry_key");
      g.retry_key = j["retry_key"].get<std::string>();
    }
    auto token = token_from_hex(j.at("token").get<std::string>());
    if (!token) return bad("has a bad token: " + token.error().message);
    g.token = *token;
  } catch (const json::exception& e) {
    return bad(std::string("is missing a field: ") + e.what());
  }
  if (g.count == 0) return bad("grants no tuple ids");
  if (g.token.first_tuple_id != g.first_id || g.token.count != g.count)
    return bad("holds a token that does not match its id range");
  return g;
}

}  // namespace hio::protocol
