#include <hio/master/channel_manager.hpp>

#include <doctest/doctest.h>

#include <set>

using namespace hio::master;
using namespace std::chrono_literals;

namespace {
std::vector<channel_info> channels(std::uint32_t n, std::uint32_t sessions = 1) {
  std::vector<channel_info> v;
  for (std::uint32_t i = 0; i < n; ++i) {
    v.push_back({i, static_cast<std::uint16_t>(40000 + i), static_cast<int>(i), "noop", "cpu", "tcp"});
    v.back().sessions = sessions;
  }
  return v;
}
channel_report report(std::uint32_t index, bool busy, std::uint64_t lease) {
  channel_report r;
  r.index = index;
  r.busy = busy;
  r.lease_id = lease;
  return r;
}
const auto t0 = clock_type::time_point{} + 1000s;
}  // namespace

TEST_CASE("free channels are handed out once each, spread over workers") {
  channel_manager cm({});
  cm.register_worker("a", "h1", channels(2), t0);
  cm.register_worker("b", "h2", channels(2), t0);
  CHECK(cm.free_channels() == 4);
  std::set<std::string> seen;
  for (std::uint64_t lease = 1; lease <= 4; ++lease) {
    auto c = cm.acquire(lease, t0);
    REQUIRE(c.has_value());
    seen.insert(c->worker + "/" + std::to_string(c->index));
  }
  CHECK(seen.size() == 4);
  CHECK_FALSE(cm.acquire(5, t0).has_value());
  CHECK(cm.free_channels() == 0);
}

TEST_CASE("the first two leases go to different workers") {
  channel_manager cm({});
  cm.register_worker("a", "h1", channels(2), t0);
  cm.register_worker("b", "h2", channels(2), t0);
  auto x = cm.acquire(1, t0), y = cm.acquire(2, t0);
  REQUIRE((x && y));
  CHECK(x->worker != y->worker);
}

TEST_CASE("releasing a channel makes it free again, but a stale release is ignored") {
  channel_manager cm({});
  cm.register_worker("a", "h", channels(1), t0);
  auto c = cm.acquire(10, t0);
  REQUIRE(c);
  cm.release("a", 0, 9);  // an older session's late message
  CHECK(cm.free_channels() == 0);
  cm.release("a", 0, 10);
  CHECK(cm.free_channels() == 1);
}

TEST_CASE("an unconfirmed lease is taken back after the lease timeout, a confirmed one is not") {
  channel_manager cm({.lease_timeout = 10s, .worker_timeout = 1h});
  cm.register_worker("a", "h", channels(2), t0);
  REQUIRE(cm.acquire(1, t0));
  REQUIRE(cm.acquire(2, t0));
  cm.heartbeat("a", false, {report(0, true, 1), report(1, false, 0)}, t0 + 1s);
  cm.expire(t0 + 5s);
  CHECK(cm.free_channels() == 0);
  cm.expire(t0 + 11s);
  CHECK(cm.free_channels() == 1);  // channel 1 never saw lease 2
  auto ws = cm.workers();
  CHECK(ws[0].channels[0].state == channel_state::busy);
}

TEST_CASE("a heartbeat about an older session does not free a fresh lease") {
  channel_manager cm({});
  cm.register_worker("a", "h", channels(1), t0);
  REQUIRE(cm.acquire(5, t0));
  cm.heartbeat("a", false, {report(0, false, 4)}, t0 + 1s);  // sent before lease 5 started
  CHECK(cm.free_channels() == 0);
  cm.heartbeat("a", false, {report(0, false, 5)}, t0 + 2s);  // lease 5's session is over; its free was lost
  CHECK(cm.free_channels() == 1);
}

TEST_CASE("a restarted master learns busy channels from heartbeats") {
  channel_manager cm({});
  cm.register_worker("a", "h", channels(2), t0);
  cm.heartbeat("a", false, {report(0, true, 77), report(1, false, 3)}, t0);
  CHECK(cm.free_channels() == 1);
  auto c = cm.acquire(100, t0);
  REQUIRE(c);
  CHECK(c->index == 1);
}

TEST_CASE("a silent worker is removed with its channels and its counters are kept in the totals") {
  channel_manager cm({.lease_timeout = 10s, .worker_timeout = 3s});
  cm.register_worker("a", "h", channels(2), t0);
  cm.register_worker("b", "h", channels(2), t0);
  auto r = report(0, false, 0);
  r.processed = 7;
  cm.heartbeat("a", false, {r}, t0 + 1s);
  cm.heartbeat("b", false, {}, t0 + 3s);
  auto removed = cm.expire(t0 + 4500ms);
  CHECK(removed == std::vector<std::string>{"a"});
  CHECK(cm.worker_count() == 1);
  CHECK(cm.total().processed == 7);
  CHECK_FALSE(cm.heartbeat("a", false, {}, t0 + 5s));
}

TEST_CASE("a lease the channel refused as busy is not held until the lease timeout") {
  channel_manager cm({.lease_timeout = 30s, .worker_timeout = 1h});
  cm.register_worker("a", "h", channels(1), t0);
  REQUIRE(cm.acquire(100, t0));
  auto r = report(0, true, 7);  // still serving lease 7 from before a master restart
  r.refused_lease_id = 100;
  cm.heartbeat("a", false, {r}, t0 + 1s);
  CHECK(cm.free_channels() == 0);
  auto idle = report(0, false, 7);
  idle.refused_lease_id = 100;
  cm.heartbeat("a", false, {idle}, t0 + 2s);
  CHECK(cm.free_channels() == 1);
}

TEST_CASE("sessions a channel serves that the master never leased hold its credits until reported over") {
  channel_manager cm({});
  cm.register_worker("a", "h", channels(1, 4), t0);
  auto r = report(0, true, 12);
  r.active = {10, 12};  // begun before a master restart
  cm.heartbeat("a", false, {r}, t0);
  CHECK(cm.credits() == 2);
  CHECK(cm.workers()[0].channels[0].state == channel_state::busy);
  r.active = {12};
  cm.heartbeat("a", false, {r}, t0 + 1s);
  CHECK(cm.credits() == 3);
  cm.release("a", 0, 12);  // its free message
  CHECK(cm.credits() == 4);
  CHECK(cm.free_channels() == 1);
}

TEST_CASE("a channel serves as many sessions as it offers, from any sources") {
  channel_manager cm({});
  cm.register_worker("a", "h", channels(1, 3), t0);
  CHECK(cm.credits() == 3);
  for (std::uint64_t lease = 1; lease <= 3; ++lease) REQUIRE(cm.acquire(lease, t0, hio::transport_request::tcp));
  CHECK(cm.credits() == 0);
  CHECK_FALSE(cm.acquire(4, t0, hio::transport_request::tcp).has_value());
  CHECK_FALSE(cm.acquire(4, t0).has_value());  // nor for the dispatcher
  auto view = cm.workers()[0].channels[0];
  CHECK(view.sessions == 3);
  CHECK(view.state == channel_state::leased);
  cm.release("a", 0, 2);
  CHECK(cm.credits() == 1);
  CHECK(cm.acquire(5, t0, hio::transport_request::tcp).has_value());
}

TEST_CASE("leases go to the channel with the most room, spread over workers and channels") {
  channel_manager cm({});
  cm.register_worker("a", "h1", channels(2, 4), t0);
  cm.register_worker("b", "h2", channels(2, 4), t0);
  std::set<std::string> first_four;
  for (std::uint64_t lease = 1; lease <= 4; ++lease) {
    auto c = cm.acquire(lease, t0 + std::chrono::milliseconds(lease), hio::transport_request::tcp);
    REQUIRE(c);
    first_four.insert(c->worker + "/" + std::to_string(c->index));
  }
  CHECK(first_four.size() == 4);  // one session on each channel before any gets a second
  cm.release("b", 1, 4);
  cm.release("b", 0, 2);
  cm.release("a", 0, 1);
  // b has the most room (8), and among its equal channels the least recently leased goes first.
  auto c = cm.acquire(9, t0 + 10ms, hio::transport_request::tcp);
  REQUIRE(c);
  CHECK(c->worker == "b");
  CHECK(c->index == 0);
}

TEST_CASE("a saturated channel takes no new sources, but the queue dispatcher still feeds it") {
  channel_manager cm({});
  cm.register_worker("a", "h", channels(1, 4), t0);
  auto r = report(0, true, 1);
  r.active = {1};
  r.saturated = true;
  cm.heartbeat("a", false, {r}, t0);
  CHECK(cm.credits() == 0);
  CHECK(cm.credits(true) == 3);
  CHECK_FALSE(cm.acquire(2, t0, hio::transport_request::tcp).has_value());
  CHECK(cm.acquire(2, t0).has_value());
  CHECK(cm.workers()[0].channels[0].credits == 0);
  r.saturated = false;
  r.active = {1, 2};
  r.lease_id = 2;
  cm.heartbeat("a", false, {r}, t0 + 1s);
  CHECK(cm.credits() == 2);
}

TEST_CASE("a confirmed session missing from the worker's report is over, though its free message was lost") {
  channel_manager cm({});
  cm.register_worker("a", "h", channels(1, 2), t0);
  REQUIRE(cm.acquire(5, t0, hio::transport_request::tcp));
  REQUIRE(cm.acquire(6, t0, hio::transport_request::tcp));
  auto r = report(0, true, 6);
  r.active = {5, 6};
  cm.heartbeat("a", false, {r}, t0 + 100ms);
  CHECK(cm.credits() == 0);
  r.active = {6};
  cm.heartbeat("a", false, {r}, t0 + 200ms);
  CHECK(cm.credits() == 1);
  // A lease handed out after the report was made is not taken for over: it is younger than the grace.
  REQUIRE(cm.acquire(7, t0 + 250ms, hio::transport_request::tcp));
  r.active = {};
  r.busy = false;
  r.lease_id = 8;  // the channel has accepted a later lease already
  cm.heartbeat("a", false, {r}, t0 + 300ms);
  CHECK(cm.credits() == 1);  // 6 is over, 7 is held
}

TEST_CASE("a heartbeat older than one already seen is ignored") {
  channel_manager cm({});
  cm.register_worker("a", "h", channels(1), t0);
  cm.heartbeat("a", false, {report(0, false, 9)}, t0);
  cm.heartbeat("a", false, {report(0, true, 8)}, t0 + 1s);  // sent before the one above
  CHECK(cm.free_channels() == 1);
}

TEST_CASE("a draining worker gets no new leases") {
  channel_manager cm({});
  cm.register_worker("a", "h", channels(2), t0);
  cm.set_draining("a");
  CHECK(cm.free_channels() == 0);
  CHECK_FALSE(cm.acquire(1, t0).has_value());
}

TEST_CASE("a worker registering again keeps its counters unless it is a new process") {
  channel_manager cm({});
  cm.register_worker("a", "h", channels(1), t0, "run-1");
  auto r = report(0, false, 1);
  r.processed = 10;
  cm.heartbeat("a", false, {r}, t0);
  cm.register_worker("a", "h", channels(1), t0 + 1s, "run-1");  // e.g. a channel changed port
  r.processed = 12;
  cm.heartbeat("a", false, {r}, t0 + 2s);
  CHECK(cm.total().processed == 12);
  cm.register_worker("a", "h", channels(1), t0 + 3s, "run-2");  // restarted: counters start at zero
  r.processed = 3;
  r.lease_id = 0;
  cm.heartbeat("a", false, {r}, t0 + 4s);
  CHECK(cm.total().processed == 15);
}

TEST_CASE("a source asking for UCX gets only channels offering it, on their UCX port") {
  channel_manager cm({});
  auto tcp_only = channels(1);
  auto both = channels(1);
  both[0].offers_ucx = true;
  both[0].ucx_port = 41000;
  cm.register_worker("tcp", "h1", tcp_only, t0);
  cm.register_worker("ucx", "h2", both, t0);
  CHECK(cm.offers(hio::transport::ucx));
  auto a = cm.acquire(1, t0, hio::transport_request::ucx);
  REQUIRE(a);
  CHECK(a->worker == "ucx");
  CHECK(a->transport == "ucx");
  CHECK(a->port == 41000);
  CHECK(a->tcp_port == 40000);
  CHECK_FALSE(cm.acquire(2, t0, hio::transport_request::ucx));  // the TCP-only channel does not qualify
  auto b = cm.acquire(3, t0, hio::transport_request::automatic);
  REQUIRE(b);
  CHECK(b->transport == "tcp");  // auto: TCP where UCX is not offered
  CHECK(cm.workers()[1].channels[0].lease_transport == "ucx");
}

TEST_CASE("without a transport asked for, channels are handed out over TCP (the queue dispatcher)") {
  channel_manager cm({});
  auto both = channels(1);
  both[0].offers_ucx = true;
  both[0].offers_tcp = false;
  both[0].ucx_port = 41000;
  cm.register_worker("u", "h", both, t0);
  CHECK_FALSE(cm.offers(hio::transport::tcp));
  auto a = cm.acquire(1, t0);
  REQUIRE(a);
  CHECK(a->transport == "tcp");
  CHECK(a->port == 40000);
}

TEST_CASE("a source's next lease may end its last session at once, but nobody else's") {
  channel_manager cm({});
  cm.register_worker("a", "h", channels(1, 1), t0);
  REQUIRE(cm.acquire(1, t0, hio::transport_request::tcp, "client-x"));
  CHECK_FALSE(cm.acquire(2, t0, hio::transport_request::tcp, "client-y").has_value());
  cm.release_ended(1, "client-y");  // not its lease
  cm.release_ended(1, "");
  CHECK(cm.credits() == 0);
  cm.release_ended(1, "client-x");
  CHECK(cm.credits() == 1);
  // The worker still finishes lease 1 and lists it: it is not counted again.
  auto r = report(0, true, 1);
  r.active = {1};
  cm.heartbeat("a", false, {r}, t0 + 100ms);
  CHECK(cm.credits() == 1);
  r.active = {};
  r.busy = false;
  cm.heartbeat("a", false, {r}, t0 + 200ms);
  CHECK(cm.credits() == 1);
}

TEST_CASE("a saturated channel whose last session ends takes sources again before its next heartbeat") {
  channel_manager cm({});
  cm.register_worker("a", "h", channels(1, 4), t0);
  REQUIRE(cm.acquire(1, t0, hio::transport_request::tcp));
  auto r = report(0, true, 1);
  r.active = {1};
  r.saturated = true;
  cm.heartbeat("a", false, {r}, t0 + 100ms);
  CHECK(cm.credits() == 0);
  cm.release("a", 0, 1);
  CHECK(cm.credits() == 4);
}
