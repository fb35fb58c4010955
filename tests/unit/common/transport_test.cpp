#include <hio/common/clock.hpp>
#include <hio/common/hash.hpp>
#include <hio/common/token.hpp>
#include <hio/common/transport.hpp>
#include <hio/common/ucx_receiver.hpp>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <doctest/doctest.h>

#include <thread>
#include <vector>

using namespace hio;
using namespace std::chrono_literals;

TEST_CASE("transport names parse and print; unknown ones are refused") {
  CHECK(parse_transport("ucx") == transport::ucx);
  CHECK(parse_transport("tcp") == transport::tcp);
  CHECK_FALSE(parse_transport("auto"));
  CHECK(parse_transport_request("auto") == transport_request::automatic);
  CHECK_FALSE(parse_transport_request("rdma"));
  CHECK(to_string(transport::ucx) == "ucx");
  CHECK(to_string(transport_request::automatic) == "auto");
}

TEST_CASE("a source gets the transport it requires only where it is offered; auto prefers UCX") {
  CHECK(choose_transport(transport_request::ucx, true, true) == transport::ucx);
  CHECK_FALSE(choose_transport(transport_request::ucx, true, false));
  CHECK_FALSE(choose_transport(transport_request::tcp, false, true));
  CHECK(choose_transport(transport_request::automatic, true, true) == transport::ucx);
  CHECK(choose_transport(transport_request::automatic, true, false) == transport::tcp);
}

namespace {

// Keeps what it is handed; acks every tuple as stored.
struct keeping_handler : tuple_handler {
  std::vector<std::vector<std::byte>> tuples;
  std::vector<std::uint64_t> ids, pending;
  int sessions = 0, clean_ends = 0;
  result<void> begin_session(const lease_token&, const std::string&) override {
    ++sessions;
    return {};
  }
  result<void> on_tuple(const lease_token&, const received_tuple& t) override {
    tuples.emplace_back(t.payload.begin(), t.payload.end());
    pending.push_back(t.tuple_id);
    return {};
  }
  result<std::vector<ack>> flush(const lease_token&) override {
    std::vector<ack> acks;
    for (auto id : pending) acks.push_back({id, wire::ack_status::stored, {}});
    ids.insert(ids.end(), pending.begin(), pending.end());
    pending.clear();
    return acks;
  }
  void end_session(const lease_token&, bool clean) override { clean_ends += clean; }
};

}  // namespace

namespace {

// One session of `small` tiny tuples (their acks make answers far past UCX's rendezvous threshold) and
// an empty, an eager and a rendezvous tuple, then a forged token; through the listener or by address.
void exchange_over_ucx(bool by_address, std::size_t small) {
  boost::asio::io_context io(1);
  auto guard = boost::asio::make_work_guard(io);
  keeping_handler h;
  receiver_options o;
  o.secret = "s";
  o.target = channel_target("w", 0);
  auto rx = ucx_receiver::start(io, o, h);
  REQUIRE_MESSAGE(rx.has_value(), (rx.has_value() ? std::string() : rx.error().message));
  std::thread t([&] { io.run(); });
  const std::string address = by_address ? (*rx)->address() : std::string();
  CHECK((*rx)->address().size() > 16);

  auto link = open_link(transport::ucx, "127.0.0.1", (*rx)->port(), 5s, address);
  REQUIRE_MESSAGE(link.has_value(), (link.has_value() ? std::string() : link.error().message));
  const auto count = static_cast<std::uint32_t>(small + 3);
  const auto token = mint_token("s", o.target, 1, 100, count, unix_seconds() + 60);
  std::vector<std::vector<std::byte>> sent;
  std::vector<std::size_t> sizes(small, 10);
  for (std::size_t size : {std::size_t{0}, std::size_t{1000}, std::size_t{3} << 20}) sizes.push_back(size);
  for (std::size_t size : sizes) {  // tiny, then empty, eager, rendezvous
    std::vector<std::byte> p(size);
    for (std::size_t i = 0; i < size; ++i) p[i] = static_cast<std::byte>(i * 7 + size + sent.size());
    wire::frame_header fh;
    fh.tuple_id = 100 + sent.size();
    fh.token = token;
    fh.xxh3 = xxh3_64(p);
    REQUIRE((*link)->send(fh, R"({"source":"t"})", p, 5s).has_value());
    sent.push_back(std::move(p));
  }
  REQUIRE((*link)->send_end(5s).has_value());
  std::vector<std::uint64_t> acked, expected;
  for (;;) {
    auto a = (*link)->receive(10s);
    REQUIRE_MESSAGE(a.has_value(), (a.has_value() ? std::string() : a.error().message));
    if (a->header.type == wire::frame_type::end) break;
    REQUIRE(a->header.type == wire::frame_type::ack);
    acked.push_back(a->header.tuple_id);
  }
  for (std::uint64_t i = 0; i < count; ++i) expected.push_back(100 + i);
  CHECK(acked == expected);
  link->reset();

  // A forged token is refused before the payload is taken.
  auto bad = open_link(transport::ucx, "127.0.0.1", (*rx)->port(), 5s, address);
  REQUIRE(bad.has_value());
  auto forged = mint_token("not-the-secret", o.target, 2, 200, 1, unix_seconds() + 60);
  std::vector<std::byte> big(1 << 20);
  wire::frame_header fh;
  fh.tuple_id = 200;
  fh.token = forged;
  fh.xxh3 = xxh3_64(big);
  (void)(*bad)->send(fh, {}, big, 5s);
  auto e = (*bad)->receive(10s);
  REQUIRE(e.has_value());
  CHECK(e->header.type == wire::frame_type::error);
  CHECK(e->header.flags == static_cast<std::uint16_t>(wire::error_code::bad_token));
  bad->reset();

  guard.reset();
  io.stop();
  t.join();
  rx->reset();
  CHECK(h.sessions == 1);
  CHECK(h.clean_ends == 1);
  CHECK(h.tuples == sent);
}

}  // namespace

TEST_CASE("over UCX, tuples small and large arrive intact and are acknowledged in order, then END") {
  if (!ucx_compiled_in()) {
    auto l = open_link(transport::ucx, "127.0.0.1", 1, 1s);
    REQUIRE_FALSE(l.has_value());
    CHECK(l.error().message.find("built without UCX") != std::string::npos);
    return;
  }
  SUBCASE("through the channel's UCX listener") { exchange_over_ucx(false, 600); }
  SUBCASE("by the channel's UCP worker address") { exchange_over_ucx(true, 600); }
}

TEST_CASE("over UCX by address, a bad worker address or a receiver that is gone gives a clear error") {
  if (!ucx_compiled_in()) return;
  auto odd = open_link(transport::ucx, "127.0.0.1", 1, 1s, "abc");
  REQUIRE_FALSE(odd.has_value());
  CHECK(odd.error().message.find("not valid hex") != std::string::npos);
  std::string address;
  {
    boost::asio::io_context io(1);
    keeping_handler h;
    receiver_options o;
    o.secret = "s";
    o.target = channel_target("w", 0);
    auto rx = ucx_receiver::start(io, o, h);
    REQUIRE(rx.has_value());
    address = (*rx)->address();
  }  // the receiver is gone: nobody answers the HELLO
  auto gone = open_link(transport::ucx, "127.0.0.1", 1, 2s, address);
  REQUIRE_FALSE(gone.has_value());
  CHECK(gone.error().message.find("cannot connect") != std::string::npos);
}
