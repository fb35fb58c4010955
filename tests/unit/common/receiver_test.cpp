#include <hio/common/clock.hpp>
#include <hio/common/connection.hpp>
#include <hio/common/hash.hpp>
#include <hio/common/receiver.hpp>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>
#include <doctest/doctest.h>
#include <zstd.h>

#include <atomic>
#include <fstream>
#include <map>
#include <optional>
#include <unistd.h>
#include <random>
#include <thread>

using namespace hio;
using namespace std::chrono_literals;

namespace {

// Collects tuples; "durable" once flushed. Runs on the receiver's single io thread.
struct collecting_handler : tuple_handler {
  std::map<std::uint64_t, std::uint64_t> durable;  // id -> xxh3 of what arrived
  std::vector<std::uint64_t> pending;
  std::map<std::uint64_t, std::uint64_t> pending_sums;
  std::map<std::uint64_t, std::uint64_t> metadata_sums;  // id -> xxh3 of the metadata that arrived
  int sessions = 0;
  bool refuse = false;
  std::size_t flushes = 0;
  std::string fail_reason;  // when set, every tuple is acknowledged failed with this reason

  result<void> begin_session(const lease_token&, const std::string&) override {
    if (refuse) return make_error(static_cast<int>(wire::error_code::busy), "channel is busy");
    ++sessions;
    return {};
  }
  result<void> on_tuple(const lease_token&, const received_tuple& t) override {
    if (storing.load() > 0) ++taken_while_storing;
    pending.push_back(t.tuple_id);
    pending_sums[t.tuple_id] = xxh3_64(t.payload);
    metadata_sums[t.tuple_id] = xxh3_64(std::as_bytes(std::span(t.metadata)));
    return {};
  }
  result<std::vector<ack>> flush(const lease_token&) override {
    ++flushes;
    std::vector<ack> acks;
    for (auto id : pending) {
      durable[id] = pending_sums[id];
      if (fail_reason.empty()) acks.push_back({id, wire::ack_status::stored, {}});
      else acks.push_back({id, wire::ack_status::failed, fail_reason});
    }
    pending.clear();
    return acks;
  }
  void end_session(const lease_token&, bool) override {}

  // With `store_delay` set, flush_async answers from another thread that long after the batch was
  // taken, as a channel's store thread does; tuples that arrive meanwhile are counted.
  std::optional<std::chrono::milliseconds> store_delay;
  std::atomic<int> storing{0};
  std::atomic<int> taken_while_storing{0};
  std::vector<std::thread> stores;
  void flush_async(const lease_token& l, flush_done done) override {
    if (!store_delay) return done(flush(l));
    ++storing;
    stores.emplace_back([this, acks = flush(l), done = std::move(done)]() mutable {
      std::this_thread::sleep_for(*store_delay);
      --storing;
      done(std::move(acks));
    });
  }
  ~collecting_handler() override {
    for (auto& t : stores) t.join();
  }
};

struct fixture {
  boost::asio::io_context io;
  collecting_handler handler;
  std::unique_ptr<receiver> rx;
  std::thread thread;
  std::string secret = "test-secret";
  std::string target = "w/0";

  explicit fixture(receiver_options o = {}) {
    o.secret = secret;
    o.target = target;
    if (o.first_frame_timeout == receiver_options{}.first_frame_timeout) o.first_frame_timeout = 500ms;
    rx = receiver::start(io, o, handler).value();
    thread = std::thread([this] { io.run(); });
  }
  ~fixture() {
    rx->stop();
    io.stop();
    thread.join();
  }
  lease_token lease(std::uint64_t first, std::uint32_t count, std::uint64_t lease_id = 1) {
    return mint_token(secret, target, lease_id, first, count, unix_seconds() + 30);
  }
  connection connect() { return connection::open("127.0.0.1", rx->port()).value(); }
};

wire::frame_header data_header(const lease_token& t, std::uint64_t id, std::span<const std::byte> payload,
                               std::string_view meta = {}) {
  wire::frame_header h;
  h.tuple_id = id;
  h.token = t;
  h.payload_length = payload.size();
  h.metadata_length = static_cast<std::uint32_t>(meta.size());
  h.xxh3 = xxh3_64(payload);
  return h;
}

std::vector<std::byte> random_bytes(std::size_t n, std::mt19937_64& rng) {
  std::vector<std::byte> v(n);
  for (auto& b : v) b = static_cast<std::byte>(rng());
  return v;
}

// Writes a header and some bytes exactly as given (connection::send would fix the lengths), then reads
// one answer header; nullopt when the receiver closes without answering.
std::optional<wire::frame_header> send_raw(std::uint16_t port, const wire::frame_header& h,
                                           std::span<const std::byte> bytes) {
  boost::asio::io_context io;
  boost::asio::ip::tcp::socket s(io);
  s.connect({boost::asio::ip::make_address("127.0.0.1"), port});
  auto raw = wire::encode(h);
  boost::asio::write(s, boost::asio::buffer(raw));
  boost::asio::write(s, boost::asio::buffer(bytes.data(), bytes.size()));
  wire::header_bytes answer;
  boost::system::error_code ec;
  boost::asio::read(s, boost::asio::buffer(answer), ec);
  if (ec) return std::nullopt;
  auto d = wire::decode(answer);
  REQUIRE(d.has_value());
  return *d;
}

// Sends END and checks that the receiver answers with END.
void end_session(connection& c) {
  REQUIRE(c.send_end().has_value());
  auto end = c.receive(5s);
  REQUIRE(end.has_value());
  CHECK(end->header.type == wire::frame_type::end);
}

}  // namespace

TEST_CASE("pipelined tuples of random sizes are all acknowledged in order and arrive intact") {
  fixture f;
  std::mt19937_64 rng(42);
  auto lease = f.lease(1000, 50);
  auto c = f.connect();
  std::map<std::uint64_t, std::uint64_t> sent;
  std::thread reader([&] {
    for (int i = 0; i < 50; ++i) {
      auto a = c.receive(10s);
      REQUIRE(a.has_value());
      INFO(a->text);
      CHECK(a->header.type == wire::frame_type::ack);
      CHECK(a->header.tuple_id == 1000u + i);
      CHECK(a->header.flags == static_cast<std::uint16_t>(wire::ack_status::stored));
    }
  });
  for (std::uint64_t id = 1000; id < 1050; ++id) {
    auto payload = random_bytes(std::uniform_int_distribution<std::size_t>(0, 300000)(rng), rng);
    sent[id] = xxh3_64(payload);
    REQUIRE(c.send(data_header(lease, id, payload), R"({"source":"t"})", payload).has_value());
  }
  reader.join();
  end_session(c);
  CHECK(f.handler.durable == sent);
  CHECK(f.handler.flushes <= 50);  // batched when frames queue up; how much depends on timing
}

TEST_CASE("a slow store overlaps with the next tuples; every ack comes in order, after its store, then END") {
  receiver_options o;
  o.max_batch_tuples = 16;
  fixture f(o);
  f.handler.store_delay = 20ms;
  constexpr std::uint64_t first = 1, n = 2000;
  auto lease = f.lease(first, n);
  auto c = f.connect();
  std::map<std::uint64_t, std::uint64_t> sent;
  std::vector<std::byte> payload(1024);
  std::thread reader([&] {
    for (std::uint64_t i = 0; i < n; ++i) {
      auto a = c.receive(10s);
      REQUIRE(a.has_value());
      REQUIRE(a->header.type == wire::frame_type::ack);
      CHECK(a->header.tuple_id == first + i);
    }
  });
  for (std::uint64_t id = first; id < first + n; ++id) {
    payload[0] = static_cast<std::byte>(id);
    payload[1] = static_cast<std::byte>(id >> 8);
    sent[id] = xxh3_64(payload);
    REQUIRE(c.send(data_header(lease, id, payload), {}, payload).has_value());
  }
  reader.join();
  end_session(c);
  CHECK(f.handler.durable == sent);
  CHECK(f.handler.taken_while_storing.load() > 0);
  // One store at a time per session, each taking what arrived during the one before: far fewer than
  // n / max_batch_tuples stores of 20 ms would have been needed one after another.
  CHECK(f.handler.flushes < n / 16);
}

TEST_CASE("one gathered batch of small and large frames arrives intact and is answered in order, long reasons too") {
  fixture f;
  f.handler.fail_reason = std::string(40000, 'r');  // longer than what the sender reads ahead
  std::mt19937_64 rng(7);
  constexpr std::uint64_t first = 500, n = 400;
  auto lease = f.lease(first, n);
  std::vector<std::vector<std::byte>> payloads;
  std::vector<std::string> metadata;
  std::map<std::uint64_t, std::uint64_t> sent, sent_meta;
  for (std::uint64_t i = 0; i < n; ++i) {
    // Mostly 1 KB, some empty or up to 20 KB, every 50th 3 MB (read past the receiver's inbox), and one
    // 300 KB metadata with an empty payload.
    std::size_t size = i % 3 ? 1000 : std::uniform_int_distribution<std::size_t>(0, 20000)(rng);
    if (i % 50 == 7) size = 3 << 20;
    if (i == 100) size = 0;
    payloads.push_back(random_bytes(size, rng));
    metadata.push_back(i == 100 ? R"({"blob":")" + std::string(300000, 'm') + "\"}" : R"({"source":"b"})");
    sent[first + i] = xxh3_64(payloads.back());
    sent_meta[first + i] = xxh3_64(std::as_bytes(std::span(metadata.back())));
  }
  std::vector<outgoing_frame> frames;
  for (std::uint64_t i = 0; i < n; ++i)
    frames.push_back({data_header(lease, first + i, payloads[i]), metadata[i], payloads[i]});
  auto c = f.connect();
  std::thread reader([&] {
    for (std::uint64_t i = 0; i < n; ++i) {
      auto a = c.receive(20s);
      REQUIRE(a.has_value());
      CHECK(a->header.type == wire::frame_type::ack);
      CHECK(a->header.tuple_id == first + i);
      CHECK(a->header.flags == static_cast<std::uint16_t>(wire::ack_status::failed));
      CHECK(a->text == f.handler.fail_reason);
    }
  });
  REQUIRE(c.send_batch(frames).has_value());
  reader.join();
  end_session(c);
  CHECK(f.handler.durable == sent);
  CHECK(f.handler.metadata_sums == sent_meta);
  CHECK(f.handler.flushes < n);  // 1 KB frames that arrive together are made durable together
}

TEST_CASE("a zstd-compressed tuple is decoded and checked against the uncompressed checksum") {
  fixture f;
  std::vector<std::byte> tuple(100000, std::byte{7});
  std::string packed(ZSTD_compressBound(tuple.size()), '\0');
  packed.resize(ZSTD_compress(packed.data(), packed.size(), tuple.data(), tuple.size(), 1));
  auto lease = f.lease(1, 1);
  wire::frame_header h = data_header(lease, 1, tuple);
  h.payload_codec = wire::codec::zstd;
  h.payload_length = packed.size();
  auto c = f.connect();
  REQUIRE(c.send(h, {}, std::as_bytes(std::span(packed))).has_value());
  auto a = c.receive(5s);
  REQUIRE(a.has_value());
  CHECK(a->header.type == wire::frame_type::ack);
  CHECK(f.handler.durable.at(1) == xxh3_64(tuple));
}

TEST_CASE("bad frames get a clear error frame and the receiver keeps serving others") {
  fixture f;
  std::vector<std::byte> payload(1000, std::byte{1});
  struct row {
    const char* name;
    std::function<void(connection&)> send;
    wire::error_code expected;
  };
  const std::vector<row> rows = {
      {"forged token",
       [&](connection& c) {
         auto t = f.lease(1, 1);
         t.count = 99;
         REQUIRE(c.send(data_header(t, 1, payload), {}, payload).has_value());
       },
       wire::error_code::bad_token},
      {"expired token",
       [&](connection& c) {
         auto t = mint_token(f.secret, f.target, 1, 1, 1, unix_seconds() - 10);
         REQUIRE(c.send(data_header(t, 1, payload), {}, payload).has_value());
       },
       wire::error_code::bad_token},
      {"token for another channel",
       [&](connection& c) {
         auto t = mint_token(f.secret, "w/1", 1, 1, 1, unix_seconds() + 10);
         REQUIRE(c.send(data_header(t, 1, payload), {}, payload).has_value());
       },
       wire::error_code::bad_token},
      {"tuple id outside the lease",
       [&](connection& c) { REQUIRE(c.send(data_header(f.lease(1, 1), 5, payload), {}, payload).has_value()); },
       wire::error_code::bad_frame},
      {"checksum mismatch",
       [&](connection& c) {
         auto h = data_header(f.lease(1, 1), 1, payload);
         h.xxh3 ^= 1;
         REQUIRE(c.send(h, {}, payload).has_value());
       },
       wire::error_code::checksum},
  };
  for (const auto& r : rows) {
    CAPTURE(r.name);
    auto c = f.connect();
    r.send(c);
    auto a = c.receive(5s);
    REQUIRE(a.has_value());
    CHECK(a->header.type == wire::frame_type::error);
    CHECK(static_cast<wire::error_code>(a->header.flags) == r.expected);
    CHECK_FALSE(a->text.empty());
  }
  CHECK(f.handler.durable.empty());
  // A good session still works afterwards.
  auto c = f.connect();
  auto lease = f.lease(10, 1, 2);
  REQUIRE(c.send(data_header(lease, 10, payload), {}, payload).has_value());
  auto a = c.receive(5s);
  REQUIRE(a.has_value());
  CHECK(a->header.type == wire::frame_type::ack);
  CHECK(f.handler.durable.count(10) == 1);
}

TEST_CASE("a header with bad magic or version gets an error frame naming the problem") {
  fixture f;
  for (auto [offset, expected] : {std::pair{0, wire::error_code::bad_magic}, std::pair{4, wire::error_code::bad_version}}) {
    CAPTURE(offset);
    boost::asio::io_context io;
    boost::asio::ip::tcp::socket s(io);
    s.connect({boost::asio::ip::make_address("127.0.0.1"), f.rx->port()});
    auto raw = wire::encode(wire::frame_header{});
    raw[offset] = std::byte{0x7f};
    boost::asio::write(s, boost::asio::buffer(raw));
    wire::header_bytes answer;
    boost::asio::read(s, boost::asio::buffer(answer));
    auto h = wire::decode(answer);
    REQUIRE(h.has_value());
    CHECK(h->type == wire::frame_type::error);
    CHECK(static_cast<wire::error_code>(h->flags) == expected);
  }
}

TEST_CASE("an oversize tuple is refused from its header, before the payload is read") {
  receiver_options o;
  o.max_tuple_bytes = 1000;
  fixture f(o);
  std::vector<std::byte> payload(1001);
  // Only the header goes out: the receiver must answer without waiting for the payload.
  auto a = send_raw(f.rx->port(), data_header(f.lease(1, 1), 1, payload), {});
  REQUIRE(a.has_value());
  CHECK(static_cast<wire::error_code>(a->flags) == wire::error_code::too_large);
}

TEST_CASE("a header declaring gigabytes costs memory only as its bytes arrive") {
  // Resident memory of this process (the receiver runs in it), in bytes.
  auto rss = [] {
    std::ifstream statm("/proc/self/statm");
    std::uint64_t size = 0, resident = 0;
    statm >> size >> resident;
    return resident * static_cast<std::uint64_t>(::sysconf(_SC_PAGESIZE));
  };
  receiver_options o;
  o.transfer_timeout = 300ms;
  fixture f(o);
  const auto before = rss();
  // Four connections each declare 1 GiB and send 100 KB of it, then stall.
  boost::asio::io_context io;  // outlives the sockets
  std::vector<std::unique_ptr<boost::asio::ip::tcp::socket>> open;
  std::vector<std::byte> some(100000);
  for (std::uint64_t i = 0; i < 4; ++i) {
    auto s = std::make_unique<boost::asio::ip::tcp::socket>(io);
    s->connect({boost::asio::ip::make_address("127.0.0.1"), f.rx->port()});
    auto h = data_header(f.lease(1 + i, 1, 10 + i), 1 + i, some);
    h.payload_length = 1ull << 30;
    auto raw = wire::encode(h);
    boost::asio::write(*s, boost::asio::buffer(raw));
    boost::asio::write(*s, boost::asio::buffer(some));
    open.push_back(std::move(s));
  }
  std::this_thread::sleep_for(150ms);  // the receiver has taken the headers and what followed
  const auto grown = rss() > before ? rss() - before : 0;
  CHECK(grown < (64ull << 20));  // 4 GiB declared; at most 1 MiB each was allocated
  // The stalled sessions end at the transfer deadline with nothing stored; the receiver serves others.
  std::this_thread::sleep_for(400ms);
  CHECK(f.handler.durable.empty());
  auto c = f.connect();
  std::vector<std::byte> payload(2 << 20, std::byte{7});
  REQUIRE(c.send(data_header(f.lease(100, 1, 99), 100, payload), {}, payload).has_value());
  auto a = c.receive(5s);
  REQUIRE(a.has_value());
  CHECK(a->header.type == wire::frame_type::ack);
}

TEST_CASE("a connection that stalls is closed after the first-frame deadline without blocking others") {
  fixture f;
  auto staller = f.connect();
  std::vector<std::byte> payload(10, std::byte{3});
  auto c = f.connect();
  REQUIRE(c.send(data_header(f.lease(1, 1), 1, payload), {}, payload).has_value());
  auto a = c.receive(2s);
  REQUIRE(a.has_value());
  CHECK(a->header.type == wire::frame_type::ack);
  auto closed = staller.receive(3s);
  CHECK_FALSE(closed.has_value());  // closed by the receiver, not hanging
}

TEST_CASE("a truncated payload ends the session without storing anything") {
  receiver_options o;
  o.transfer_timeout = 300ms;
  fixture f(o);
  std::vector<std::byte> payload(5000, std::byte{9});
  auto a = send_raw(f.rx->port(), data_header(f.lease(1, 1), 1, payload), std::span(payload).first(100));
  CHECK_FALSE(a.has_value());
  CHECK(f.handler.durable.empty());
}

TEST_CASE("a handler that refuses the session answers with its error code") {
  fixture f;
  f.handler.refuse = true;
  std::vector<std::byte> payload(10);
  auto c = f.connect();
  REQUIRE(c.send(data_header(f.lease(1, 1), 1, payload), {}, payload).has_value());
  auto a = c.receive(5s);
  REQUIRE(a.has_value());
  CHECK(static_cast<wire::error_code>(a->header.flags) == wire::error_code::busy);
}
