#pragma once
// A test double of the master for the connector's tests: one real hio::receiver as the only channel
// (worker "w1", channel 0) and a real http::server answering POST /v1/streams with leases minted for it.
// The receiver's handler keeps a "durable" map of stored tuples, like an idempotent repository would.
// Both run on one io_context thread; the test reads the recorded state under `mu`.

#include <hio/common/clock.hpp>
#include <hio/common/hash.hpp>
#include <hio/common/http.hpp>
#include <hio/common/protocol/lease.hpp>
#include <hio/common/receiver.hpp>
#include <hio/common/token.hpp>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <nlohmann/json.hpp>

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

namespace hio::test {

struct seen_tuple {
  std::uint64_t xxh3 = 0;         // as computed here from the decoded payload
  std::uint64_t size = 0;
  std::uint64_t wire_bytes = 0;
  std::string metadata;
  std::string head;               // the first bytes of the payload
  int stored = 0;                 // times it was made durable (an idempotent store keeps it once)
};

class recording_handler : public tuple_handler {
 public:
  std::mutex mu;
  std::map<std::uint64_t, seen_tuple> durable;
  std::map<std::uint64_t, std::vector<std::pair<std::uint64_t, seen_tuple>>> pending;  // by lease id
  int fail_tuples = 0;                  // the next this many on_tuple calls fail (the session ends)
  bool fail_always = false;             // every on_tuple fails
  std::set<std::uint64_t> failed_ids;   // acked as failed (processed, processing failed)
  wire::ack_status ok_status = wire::ack_status::stored;
  int sessions = 0;
  int clean_sessions = 0;
  int unclean_sessions = 0;

  result<void> begin_session(const lease_token&, const std::string&) override {
    std::lock_guard lk(mu);
    ++sessions;
    return {};
  }

  result<void> on_tuple(const lease_token& lease, const received_tuple& t) override {
    std::lock_guard lk(mu);
    if (fail_always || fail_tuples > 0) {
      if (fail_tuples > 0) --fail_tuples;
      return make_error(static_cast<int>(wire::error_code::internal), "injected failure");
    }
    seen_tuple s;
    s.xxh3 = xxh3_64(t.payload);
    s.size = t.payload.size();
    s.wire_bytes = t.wire_bytes;
    s.metadata = std::string(t.metadata);
    s.head.assign(reinterpret_cast<const char*>(t.payload.data()), std::min<std::size_t>(t.payload.size(), 16));
    pending[lease.lease_id].emplace_back(t.tuple_id, std::move(s));
    return {};
  }

  result<std::vector<ack>> flush(const lease_token& lease) override {
    std::lock_guard lk(mu);
    std::vector<ack> acks;
    for (auto& [id, s] : pending[lease.lease_id]) {
      auto& d = durable[id];
      const int times = d.stored;
      d = std::move(s);
      d.stored = times + 1;
      if (failed_ids.count(id)) {
        acks.push_back({id, wire::ack_status::failed, "feature extraction failed: test"});
      } else {
        acks.push_back({id, ok_status, {}});
      }
    }
    pending.erase(lease.lease_id);
    return acks;
  }

  void end_session(const lease_token& lease, bool clean) override {
    std::lock_guard lk(mu);
    pending.erase(lease.lease_id);  // not flushed: not durable, never acknowledged
    ++(clean ? clean_sessions : unclean_sessions);
  }
};

class fake_master {
 public:
  recording_handler handler;
  std::mutex mu;                           // guards the fields below
  std::vector<nlohmann::json> requests;    // every lease request body
  std::string required_token;              // when set, other tokens get 401
  int busy_answers = 0;                    // answer this many requests with 503 first
  bool queue_kind = false;                 // leases of kind "queue"
  int divert_leases = 0;                   // the next this many leases point to divert_port instead
  std::uint16_t divert_port = 0;
  int refused_retries = 0;                 // retries answered 403, as the master does: no or a wrong key

  fake_master() : guard_(io_.get_executor()) {
    receiver_options ro;
    ro.secret = secret_;
    ro.target = channel_target("w1", 0);
    auto r = receiver::start(io_, ro, handler);
    if (!r) throw std::runtime_error("receiver: " + r.error().message);
    receiver_ = std::move(*r);
    auto h = http::server::start(io_, http::server_options{}, [this](const http::request& q) { return lease(q); });
    if (!h) throw std::runtime_error("http server: " + h.error().message);
    http_ = std::move(*h);
    thread_ = std::thread([this] { io_.run(); });
  }

  ~fake_master() {
    http_->stop();
    receiver_->stop();
    guard_.reset();
    io_.stop();
    thread_.join();
  }

  std::string url() const { return "http://127.0.0.1:" + std::to_string(http_->port()); }
  std::uint16_t data_port() const { return receiver_->port(); }

  std::vector<nlohmann::json> retry_requests() {
    std::lock_guard lk(mu);
    std::vector<nlohmann::json> out;
    for (auto& r : requests)
      if (r.contains("retry")) out.push_back(r);
    return out;
  }

 private:
  http::response lease(const http::request& q) {
    if (q.method != "POST" || q.path != "/v1/streams") return http::error_response(404, "no such endpoint");
    auto body = nlohmann::json::parse(q.body, nullptr, false);
    if (body.is_discarded() || !body.is_object()) return http::error_response(400, "body is not a JSON object");
    std::lock_guard lk(mu);
    requests.push_back(body);
    if (!required_token.empty() && q.bearer() != required_token)
      return http::error_response(401, "bad source token");
    if (busy_answers > 0) {
      --busy_answers;
      auto r = http::error_response(503, "no free channel");
      r.headers.emplace_back("Retry-After", "0");
      return r;
    }
    auto req = protocol::decode_lease_request(q.body);  // as the master reads it
    if (!req) return http::error_response(400, req.error().message);
    std::uint64_t first = 0;
    std::uint32_t count = 0;
    if (req->retry) {
      first = req->retry->first;
      count = static_cast<std::uint32_t>(req->retry->count);
      // As the master: the ids must lie in a range handed out here, proven by that range's retry key.
      const auto issued = req->retry->issued.value_or(protocol::issued_range{});
      if (!valid_retry_key(issued.key, secret_, issued.first, static_cast<std::uint32_t>(issued.count)) ||
          first < issued.first || first + count > issued.first + issued.count) {
        ++refused_retries;
        return http::error_response(403, "retry key does not match the issued range");
      }
    } else {
      count = req->count == 0 ? 1 : static_cast<std::uint32_t>(req->count);
      first = next_id_;
      next_id_ += count;
    }
    if (count == 0) return http::error_response(400, "count must be at least 1");
    protocol::lease_grant g;
    g.lease_id = next_lease_++;
    g.expires_at = unix_seconds() + 60;
    g.token = mint_token(secret_, channel_target("w1", 0), g.lease_id, first, count, g.expires_at);
    g.queue = queue_kind;
    g.host = "127.0.0.1";
    g.port = divert_leases-- > 0 ? divert_port : receiver_->port();
    g.worker = "w1";
    g.channel = 0;
    g.first_id = first;
    g.count = count;
    g.retry_key = retry_key(secret_, first, count);
    return http::json_response(protocol::encode(g));
  }

  std::string secret_ = "connector-test-secret";
  std::uint64_t next_id_ = 1000;
  std::uint64_t next_lease_ = 1;
  boost::asio::io_context io_;
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> guard_;
  std::unique_ptr<receiver> receiver_;
  std::unique_ptr<http::server> http_;
  std::thread thread_;
};

}  // namespace hio::test
