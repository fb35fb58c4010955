#include <hio/common/clock.hpp>
#include <hio/common/hash.hpp>
#include <hio/common/token.hpp>
#include <hio/common/transport.hpp>
#include <hio/common/ucx_receiver.hpp>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <doctest/doctest.h>

#include <map>
#include <optional>
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
  std::vector<std::string> metadata;
  std::map<std::uint64_t, std::vector<std::vector<std::byte>>> by_lease;
  std::vector<std::uint64_t> ids;
  std::map<std::uint64_t, std::vector<std::uint64_t>> pending;  // by lease
  int sessions = 0, clean_ends = 0;
  std::chrono::milliseconds begin_delay{0};  // a handler slow to take a session
  result<void> begin_session(const lease_token&, const std::string&) override {
    ++sessions;
    std::this_thread::sleep_for(begin_delay);
    return {};
  }
  result<void> on_tuple(const lease_token& l, const received_tuple& t) override {
    tuples.emplace_back(t.payload.begin(), t.payload.end());
    metadata.emplace_back(t.metadata);
    by_lease[l.lease_id].emplace_back(t.payload.begin(), t.payload.end());
    pending[l.lease_id].push_back(t.tuple_id);
    return {};
  }
  result<std::vector<ack>> flush(const lease_token& l) override {
    std::vector<ack> acks;
    auto& mine = pending[l.lease_id];
    for (auto id : mine) acks.push_back({id, wire::ack_status::stored, {}});
    ids.insert(ids.end(), mine.begin(), mine.end());
    mine.clear();
    return acks;
  }
  void end_session(const lease_token&, bool clean) override { clean_ends += clean; }
};

}  // namespace

namespace {

// A UCX receiver for channel w/0 (secret "s") on an io thread of its own, and the handler it feeds.
struct ucx_channel {
  boost::asio::io_context io{1};
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> guard = boost::asio::make_work_guard(io);
  keeping_handler h;
  receiver_options o = [] {
    receiver_options r;
    r.secret = "s";
    r.target = channel_target("w", 0);
    return r;
  }();
  result<std::unique_ptr<ucx_receiver>> rx;
  std::thread t;

  explicit ucx_channel(std::uint64_t max_ahead_bytes = receiver_options{}.max_ahead_bytes,
                       std::chrono::milliseconds begin_delay = {})
      : rx(start(max_ahead_bytes, begin_delay)) {
    if (rx) t = std::thread([this] { io.run(); });
  }
  result<std::unique_ptr<ucx_receiver>> start(std::uint64_t max_ahead_bytes, std::chrono::milliseconds begin_delay) {
    o.max_ahead_bytes = max_ahead_bytes;
    h.begin_delay = begin_delay;
    return ucx_receiver::start(io, o, h);
  }
  ~ucx_channel() { stop(); }
  // Stops the io thread, then the receiver: the handler's counts are final afterwards.
  void stop() {
    guard.reset();
    io.stop();
    if (t.joinable()) t.join();
    if (rx) rx->reset();
  }
};

// One session of `small` tiny tuples (their acks make answers far past UCX's rendezvous threshold), an
// empty, an eager and a rendezvous tuple (every other one sent in two pieces), the last two again with metadata too large for UCX's message
// header (sent as an I/O vector), and a run of rendezvous tuples that fill the send window; then a forged
// token. Through the listener or by address.
void exchange_over_ucx(bool by_address, std::size_t small) {
  ucx_channel ch;
  auto& h = ch.h;
  auto& o = ch.o;
  auto& rx = ch.rx;
  REQUIRE_MESSAGE(rx.has_value(), (rx.has_value() ? std::string() : rx.error().message));
  const std::string address = by_address ? (*rx)->address() : std::string();
  CHECK((*rx)->address().size() > 16);

  auto link = open_link(transport::ucx, "127.0.0.1", (*rx)->port(), 5s, address);
  REQUIRE_MESSAGE(link.has_value(), (link.has_value() ? std::string() : link.error().message));
  const std::string small_meta = R"({"source":"t"})";
  const std::string large_meta = R"({"source":"t","notes":")" + std::string(100000, 'x') + R"("})";
  std::vector<std::pair<std::size_t, const std::string*>> plan(small, {10, &small_meta});
  for (std::size_t size : {std::size_t{0}, std::size_t{1000}, std::size_t{3} << 20}) plan.emplace_back(size, &small_meta);
  for (std::size_t size : {std::size_t{1000}, std::size_t{3} << 20}) plan.emplace_back(size, &large_meta);
  for (int i = 0; i < 10; ++i) plan.emplace_back(std::size_t{2} << 20, &small_meta);
  const auto count = static_cast<std::uint32_t>(plan.size());
  const auto token = mint_token("s", o.target, 1, 100, count, unix_seconds() + 60);
  // Each payload stays in place until its ACK is back (sends are pipelined).
  std::vector<std::vector<std::byte>> sent;
  std::vector<std::string> sent_metadata;
  sent.reserve(plan.size());
  for (const auto& [size, meta] : plan) {
    std::vector<std::byte> p(size);
    for (std::size_t i = 0; i < size; ++i) p[i] = static_cast<std::byte>(i * 7 + size + sent.size());
    wire::frame_header fh;
    fh.tuple_id = 100 + sent.size();
    fh.token = token;
    fh.xxh3 = xxh3_64(p);
    sent.push_back(std::move(p));
    sent_metadata.push_back(*meta);
    // Every other tuple in two pieces (the link joins them): the checksum covers the whole payload.
    const std::span<const std::byte> whole(sent.back());
    const std::size_t cut = sent.size() % 2 ? 0 : std::min<std::size_t>(whole.size(), 17);
    REQUIRE((*link)->send(fh, *meta, payload_parts(whole.first(cut), whole.subspan(cut)), 5s).has_value());
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

  ch.stop();
  CHECK(h.sessions == 1);
  CHECK(h.clean_ends == 1);
  CHECK(h.tuples == sent);
  CHECK(h.metadata == sent_metadata);
}

// Sessions of `sources` links at once into one receiver, each a run of rendezvous tuples: they share the
// channel's receive buffers, and each session's tuples arrive intact, in order, all acknowledged.
void concurrent_over_ucx(int sources, int tuples) {
  ucx_channel ch;
  auto& h = ch.h;
  auto& o = ch.o;
  auto& rx = ch.rx;
  REQUIRE(rx.has_value());
  std::vector<std::vector<std::vector<std::byte>>> sent(static_cast<std::size_t>(sources));
  std::vector<std::string> failures(static_cast<std::size_t>(sources));
  std::vector<std::thread> senders;
  for (int s = 0; s < sources; ++s)
    senders.emplace_back([&, s] {
      auto& mine = sent[static_cast<std::size_t>(s)];
      auto& failure = failures[static_cast<std::size_t>(s)];
      auto link = open_link(transport::ucx, "127.0.0.1", (*rx)->port(), 5s, (*rx)->address());
      if (!link) {
        failure = link.error().message;
        return;
      }
      const std::uint64_t first = 1000 * static_cast<std::uint64_t>(s + 1);
      const auto token = mint_token("s", o.target, static_cast<std::uint64_t>(s + 1), first,
                                    static_cast<std::uint32_t>(tuples), unix_seconds() + 60);
      mine.reserve(static_cast<std::size_t>(tuples));
      for (int i = 0; i < tuples; ++i) {
        std::vector<std::byte> p((std::size_t{1} << 20) + static_cast<std::size_t>(i) * 4096);
        for (std::size_t k = 0; k < p.size(); k += 512) p[k] = static_cast<std::byte>(k + static_cast<std::size_t>(i * 31 + s));
        wire::frame_header fh;
        fh.tuple_id = first + static_cast<std::uint64_t>(i);
        fh.token = token;
        fh.xxh3 = xxh3_64(p);
        mine.push_back(std::move(p));
        if (auto r = (*link)->send(fh, R"({"source":"c"})", mine.back(), 5s); !r) {
          failure = r.error().message;
          return;
        }
      }
      if (auto r = (*link)->send_end(5s); !r) {
        failure = r.error().message;
        return;
      }
      for (std::uint64_t next = first;;) {
        auto a = (*link)->receive(10s);
        if (!a) {
          failure = a.error().message;
          return;
        }
        if (a->header.type == wire::frame_type::end) {
          if (next != first + static_cast<std::uint64_t>(tuples)) failure = "END before every ACK";
          return;
        }
        if (a->header.type != wire::frame_type::ack || a->header.tuple_id != next++) {
          failure = "unexpected answer (type " + std::to_string(static_cast<int>(a->header.type)) + ") for tuple " +
                    std::to_string(a->header.tuple_id) + ": " + a->text;
          return;
        }
      }
    });
  for (auto& s : senders) s.join();
  ch.stop();
  for (const auto& f : failures) CHECK_MESSAGE(f.empty(), f);
  CHECK(h.sessions == sources);
  CHECK(h.clean_ends == sources);
  for (int s = 0; s < sources; ++s) CHECK(h.by_lease[static_cast<std::uint64_t>(s + 1)] == sent[static_cast<std::size_t>(s)]);
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

TEST_CASE("over UCX, four sessions at once share a channel's receive buffers; each arrives whole and in order") {
  if (!ucx_compiled_in()) return;
  concurrent_over_ucx(4, 12);
}

TEST_CASE("over UCX, a source that sends far ahead of its session gets an ERROR, and the channel serves on") {
  if (!ucx_compiled_in()) return;
  // While the handler takes the session (300 ms), 48 eager tuples of 16 KiB arrive: 768 KiB ahead of a
  // session allowed 256 KiB.
  ucx_channel ch(256 << 10, 300ms);
  REQUIRE(ch.rx.has_value());
  auto link = open_link(transport::ucx, "127.0.0.1", (*ch.rx)->port(), 5s, (*ch.rx)->address());
  REQUIRE(link.has_value());
  const auto token = mint_token("s", ch.o.target, 1, 1, 48, unix_seconds() + 60);
  std::vector<std::byte> p(16 << 10, std::byte{7});
  for (std::uint64_t id = 1; id <= 48; ++id) {
    wire::frame_header fh;
    fh.tuple_id = id;
    fh.token = token;
    fh.xxh3 = xxh3_64(p);
    if (!(*link)->send(fh, {}, p, 5s)) break;  // the receiver may close first
  }
  std::optional<wire::frame_type> answer;
  std::string text;
  for (;;) {
    auto a = (*link)->receive(10s);
    if (!a || a->header.type != wire::frame_type::ack) {
      if (a) answer = a->header.type, text = a->text;
      break;
    }
  }
  REQUIRE(answer.has_value());
  CHECK(*answer == wire::frame_type::error);
  CHECK(text.find("ahead of its session") != std::string::npos);
  link->reset();
  // Another source's session is served as before.
  auto ok = open_link(transport::ucx, "127.0.0.1", (*ch.rx)->port(), 5s, (*ch.rx)->address());
  REQUIRE(ok.has_value());
  wire::frame_header fh;
  fh.tuple_id = 100;
  fh.token = mint_token("s", ch.o.target, 2, 100, 1, unix_seconds() + 60);
  fh.xxh3 = xxh3_64(p);
  REQUIRE((*ok)->send(fh, {}, p, 5s).has_value());
  REQUIRE((*ok)->send_end(5s).has_value());
  auto a = (*ok)->receive(10s);
  REQUIRE(a.has_value());
  CHECK(a->header.type == wire::frame_type::ack);
  CHECK(a->header.tuple_id == 100);
  ok->reset();
  ch.stop();
  CHECK(ch.h.by_lease[2].size() == 1);
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
