// The lease protocol's messages (hio/common/protocol/lease.hpp): one encoding, one decoding, each the
// inverse of the other; refusals name the field.
#include <hio/common/protocol/lease.hpp>

#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include <string>

using namespace hio;
using namespace hio::protocol;

TEST_CASE("a lease request encodes to the documented body and decodes back to itself") {
  lease_request r;
  r.source = "sim-3";
  r.client = "a1b2";
  r.transport = transport_request::automatic;
  r.count = 64;
  r.bytes = 6291456;
  r.ends = 41;
  CHECK(nlohmann::json::parse(encode(r)) == nlohmann::json{{"count", 64}, {"source", "sim-3"}, {"client", "a1b2"},
                                                            {"ends", 41}, {"bytes", 6291456}, {"transport", "auto"}});
  CHECK(decode_lease_request(encode(r)).value() == r);

  lease_request retry;
  retry.source = "sim-3";
  retry.retry = lease_request::retry_ids{1000, 5, issued_range{990, 64, std::string(32, 'a')}};
  CHECK(nlohmann::json::parse(encode(retry)) ==
        nlohmann::json{{"retry", {{"first", 1000}, {"count", 5},
                                  {"issued", {{"first", 990}, {"count", 64}, {"key", std::string(32, 'a')}}}}},
                       {"source", "sim-3"}});
  CHECK(decode_lease_request(encode(retry)).value() == retry);
  CHECK(decode_lease_request("").value() == lease_request{});  // an empty body asks for one id
  // Found by tests/fuzz/lease_body_fuzz.cpp (corpus/lease_body/crash-empty_request): a request with
  // nothing set encoded as `null`, which no master accepts.
  CHECK(encode(lease_request{}) == "{}");
  CHECK(decode_lease_request(R"({"retry":{"first":7}})").value().retry->count == 1);
}

TEST_CASE("a lease request with a field of the wrong type or size is refused with 400, naming it") {
  const std::string long_name(max_source_name + 1, 's');
  for (const auto& [body, says] : std::vector<std::pair<std::string, std::string>>{
           {R"([1])", "body must be a JSON object"},
           {R"({"source": 12})", R"("source" must be a string)"},
           {R"({"count": -1})", R"("count" must be a non-negative integer)"},
           {R"({"count": 2.5})", R"("count" must be a non-negative integer)"},
           {R"({"count": 0})", R"("count" must be a positive integer)"},
           {R"({"bytes": "6M"})", R"("bytes" must be a non-negative integer)"},
           {R"({"transport": "rdma"})", R"("transport" must be "tcp", "ucx" or "auto")"},
           {R"({"client": ")" + long_name + R"("})", R"("client" must be a string of at most 256 bytes)"},
           {R"({"retry": 5})", R"("retry" must be {"first")"},
           {R"({"retry": {"first": 1, "count": "2"}})", R"("retry" must be {"first")"},
           {R"({"retry": {"first": 1, "issued": {"first": 1, "count": 2}}})", R"("retry.issued" must be)"},
           {R"({"count": 1, "count": 2})", "duplicate key"},
           {"{", "invalid JSON body"}}) {
    CAPTURE(body);
    const auto r = decode_lease_request(body);
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error().code == 400);
    CHECK(r.error().message.find(says) != std::string::npos);
  }
}

TEST_CASE("a lease grant encodes and decodes back to itself, for a channel and for the queue") {
  lease_grant g;
  g.host = "10.0.0.7";
  g.port = 40001;
  g.worker = "w1";
  g.channel = 3;
  g.lease_id = 9;
  g.first_id = 1000;
  g.count = 64;
  g.expires_at = 1700000000;
  g.token = mint_token("a-secret", channel_target("w1", 3), 9, 1000, 64, 1700000000);
  g.via = transport::ucx;
  g.ucx_address = "00ff";
  g.retry_key = retry_key("a-secret", 1000, 64);
  CHECK(decode_lease_grant(encode(g)).value() == g);
  CHECK(g.issued() == issued_range{1000, 64, g.retry_key});

  lease_grant q = g;
  q.queue = true;
  q.worker.clear();
  q.channel = 0;
  q.via = transport::tcp;
  q.ucx_address.clear();
  const auto body = nlohmann::json::parse(encode(q));
  CHECK(body["kind"] == "queue");
  CHECK_FALSE(body.contains("worker"));
  CHECK(decode_lease_grant(encode(q)).value() == q);

  lease_grant mismatch = g;
  mismatch.count = 65;  // the token covers 64
  const auto bad = decode_lease_grant(encode(mismatch));
  REQUIRE_FALSE(bad.has_value());
  CHECK(bad.error().message == "lease answer holds a token that does not match its id range");
}
