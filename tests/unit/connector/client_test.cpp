#include "fake_master.hpp"

#include <hio/common/hash.hpp>
#include <hio/connector/client.hpp>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <future>
#include <random>

#include <unistd.h>

using hio::connector::client;
using hio::connector::client_options;
using hio::connector::errc;
using hio::connector::send_result;
using hio::connector::send_status;

namespace {

client_options options_for(const hio::test::fake_master& m, std::string source = "test-source") {
  client_options o;
  o.master_url = m.url();
  o.source_name = std::move(source);
  return o;
}

std::vector<std::byte> random_bytes(std::mt19937_64& rng, std::size_t n) {
  std::vector<std::byte> v(n);
  std::size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const std::uint64_t x = rng();
    std::memcpy(v.data() + i, &x, 8);
  }
  for (; i < n; ++i) v[i] = static_cast<std::byte>(rng());
  return v;
}

std::span<const std::byte> bytes_of(std::string_view s) {
  return {reinterpret_cast<const std::byte*>(s.data()), s.size()};
}

std::uint16_t closed_port() {
  boost::asio::io_context io;
  boost::asio::ip::tcp::acceptor a(io, {boost::asio::ip::make_address("127.0.0.1"), 0});
  return a.local_endpoint().port();  // closed again when `a` goes
}

}  // namespace

TEST_CASE("one tuple sent with send is stored under the first leased id, with the source in its metadata") {
  hio::test::fake_master m;
  client c(options_for(m));
  const std::string data(1000, 'x');
  auto r = c.send(bytes_of(data), R"({"step": 3})");
  REQUIRE(r.has_value());
  CHECK(r->status == send_status::stored);
  CHECK(r->tuple_id == 1000);
  CHECK(r->attempts == 1);
  CHECK(r->reason.empty());

  std::lock_guard lk(m.handler.mu);
  REQUIRE(m.handler.durable.count(1000) == 1);
  const auto& t = m.handler.durable[1000];
  CHECK(t.xxh3 == hio::xxh3_64(bytes_of(data)));
  CHECK(t.size == 1000);
  CHECK(t.stored == 1);
  auto md = nlohmann::json::parse(t.metadata);
  CHECK(md["source"] == "test-source");
  CHECK(md["step"] == 3);
  std::lock_guard lk2(m.mu);
  REQUIRE(m.requests.size() == 1);
  CHECK(m.requests[0]["count"] == 65536);  // 64 MiB of 1000-byte tuples, capped
  CHECK(m.requests[0]["source"] == "test-source");
  CHECK(m.requests[0]["client"].get<std::string>().size() == 16);  // this client instance
  CHECK(m.requests[0]["bytes"] == 1000);
}

TEST_CASE("200 pipelined async sends of random sizes are all acknowledged with their ids and checksums") {
  hio::test::fake_master m;
  auto o = options_for(m);
  o.max_bytes_in_flight = 16ull << 20;  // makes async_send block now and then
  client c(o);
  std::mt19937_64 rng(42);
  std::uniform_real_distribution<double> log_size(0.0, std::log(2.0 * 1024 * 1024));
  std::vector<std::uint64_t> sums;
  std::vector<std::size_t> sizes;
  std::vector<std::future<hio::result<send_result>>> futures;
  for (int i = 0; i < 200; ++i) {
    auto n = static_cast<std::size_t>(std::exp(log_size(rng)));
    if (i == 0) n = 1;
    if (i == 1) n = 2 * 1024 * 1024;
    auto data = random_bytes(rng, n);
    sums.push_back(hio::xxh3_64(data));
    sizes.push_back(n);
    futures.push_back(c.async_send(std::move(data), R"({"i": )" + std::to_string(i) + "}"));
  }
  REQUIRE(c.flush(std::chrono::seconds(60)).has_value());
  std::uint64_t last_id = 0;
  std::vector<std::uint64_t> ids;
  for (auto& f : futures) {
    REQUIRE(f.wait_for(std::chrono::seconds(0)) == std::future_status::ready);
    auto r = f.get();
    REQUIRE(r.has_value());
    CHECK(r->status == send_status::stored);
    CHECK(r->tuple_id > last_id);  // submission order is id order
    last_id = r->tuple_id;
    ids.push_back(r->tuple_id);
  }
  std::lock_guard lk(m.handler.mu);
  CHECK(m.handler.durable.size() == 200);
  for (std::size_t i = 0; i < ids.size(); ++i) {
    REQUIRE(m.handler.durable.count(ids[i]) == 1);
    const auto& t = m.handler.durable[ids[i]];
    CHECK(t.xxh3 == sums[i]);
    CHECK(t.size == sizes[i]);
    CHECK(t.stored == 1);
    CHECK(nlohmann::json::parse(t.metadata)["i"] == i);
  }
  const auto s = c.stats();
  CHECK(s.submitted == 200);
  CHECK(s.stored == 200);
  CHECK(s.in_flight_tuples == 0);
  CHECK(s.in_flight_bytes == 0);
  CHECK(s.failed_sessions == 0);
}

TEST_CASE("a session the receiver ends mid-way is resent through a retry lease and each tuple is stored once") {
  hio::test::fake_master m;
  {
    std::lock_guard lk(m.handler.mu);
    m.handler.fail_tuples = 1;
  }
  client c(options_for(m));
  std::mt19937_64 rng(7);
  std::vector<std::future<hio::result<send_result>>> futures;
  std::vector<std::uint64_t> sums;
  for (int i = 0; i < 40; ++i) {
    auto data = random_bytes(rng, 1000 + 100 * i);
    sums.push_back(hio::xxh3_64(data));
    futures.push_back(c.async_send(std::move(data)));
  }
  REQUIRE(c.flush(std::chrono::seconds(30)).has_value());
  int retried = 0;
  std::set<std::uint64_t> ids;
  for (std::size_t i = 0; i < futures.size(); ++i) {
    auto r = futures[i].get();
    REQUIRE(r.has_value());
    CHECK(r->status == send_status::stored);
    ids.insert(r->tuple_id);
    if (r->attempts > 1) ++retried;
    std::lock_guard lk(m.handler.mu);
    REQUIRE(m.handler.durable.count(r->tuple_id) == 1);
    CHECK(m.handler.durable[r->tuple_id].stored == 1);
    CHECK(m.handler.durable[r->tuple_id].xxh3 == sums[i]);
  }
  CHECK(ids.size() == 40);
  CHECK(retried >= 1);
  auto retries = m.retry_requests();
  REQUIRE(!retries.empty());
  CHECK(retries[0]["source"] == "test-source");
  CHECK(retries[0]["retry"]["count"].get<int>() >= 1);
  CHECK(retries[0]["retry"]["issued"]["key"].is_string());
  {
    std::lock_guard lk(m.mu);
    CHECK(m.refused_retries == 0);  // every retry presented the key of the lease that issued its ids
  }
  const auto s = c.stats();
  CHECK(s.failed_sessions >= 1);
  CHECK(s.retry_leases >= 1);
  CHECK(s.stored == 40);
  std::lock_guard lk(m.handler.mu);
  CHECK(m.handler.unclean_sessions >= 1);
  CHECK(m.handler.durable.size() == 40);
}

TEST_CASE("a retry of a retry presents the key of the lease that issued the ids, and is granted") {
  hio::test::fake_master m;
  {
    std::lock_guard lk(m.handler.mu);
    m.handler.fail_tuples = 3;  // the first session and the next two retries each end at their first tuple
  }
  client c(options_for(m));
  std::mt19937_64 rng(11);
  std::vector<std::future<hio::result<send_result>>> futures;
  for (int i = 0; i < 20; ++i) futures.push_back(c.async_send(random_bytes(rng, 500 + i)));
  REQUIRE(c.flush(std::chrono::seconds(30)).has_value());
  for (auto& f : futures) {
    auto r = f.get();
    REQUIRE(r.has_value());
    CHECK(r->status == send_status::stored);
  }
  const auto retries = m.retry_requests();
  CHECK(retries.size() >= 3);
  for (const auto& r : retries) {
    const auto& rt = r["retry"];
    REQUIRE(rt.contains("issued"));
    const auto f0 = rt["issued"]["first"].get<std::uint64_t>(), n0 = rt["issued"]["count"].get<std::uint64_t>();
    CHECK(rt["first"].get<std::uint64_t>() >= f0);
    CHECK(rt["first"].get<std::uint64_t>() + rt["count"].get<std::uint64_t>() <= f0 + n0);
  }
  std::lock_guard lk(m.mu);
  CHECK(m.refused_retries == 0);
}

TEST_CASE("a connection dropped without an answer is resent through a retry lease") {
  // An endpoint that takes the first connection, reads a little and hangs up without a word.
  boost::asio::io_context io;
  boost::asio::ip::tcp::acceptor dropper(io, {boost::asio::ip::make_address("127.0.0.1"), 0});
  std::thread drop([&] {
    boost::system::error_code ec;
    auto s = dropper.accept(ec);
    if (ec) return;
    std::array<char, 1000> buf;
    boost::asio::read(s, boost::asio::buffer(buf), ec);
    s.close(ec);
  });
  hio::test::fake_master m;
  {
    std::lock_guard lk(m.mu);
    m.divert_leases = 1;
    m.divert_port = dropper.local_endpoint().port();
  }
  client c(options_for(m));
  std::vector<std::future<hio::result<send_result>>> futures;
  for (int i = 0; i < 10; ++i) futures.push_back(c.async_send(std::vector<std::byte>(50'000, std::byte(i))));
  REQUIRE(c.flush(std::chrono::seconds(30)).has_value());
  drop.join();
  int resent = 0;
  for (auto& f : futures) {
    auto r = f.get();
    REQUIRE(r.has_value());
    CHECK(r->status == send_status::stored);
    if (r->attempts == 2) ++resent;  // written to the dropper first
  }
  CHECK(resent >= 1);
  CHECK(!m.retry_requests().empty());
  std::lock_guard lk(m.handler.mu);
  CHECK(m.handler.durable.size() == 10);
  for (auto& [id, t] : m.handler.durable) CHECK(t.stored == 1);
}

TEST_CASE("an endpoint that refuses connections costs a lease, not the tuple") {
  hio::test::fake_master m;
  {
    std::lock_guard lk(m.mu);
    m.divert_leases = 1;
    m.divert_port = closed_port();
  }
  client c(options_for(m));
  auto r = c.send(bytes_of("second time lucky"));
  REQUIRE(r.has_value());
  CHECK(r->status == send_status::stored);
  CHECK(r->tuple_id == 1000 + 65536);  // the first lease's ids are abandoned
  CHECK(r->attempts == 1);
}

TEST_CASE("a tuple that fails every time gives up after max_attempts") {
  hio::test::fake_master m;
  {
    std::lock_guard lk(m.handler.mu);
    m.handler.fail_always = true;
  }
  auto o = options_for(m);
  o.max_attempts = 3;
  client c(o);
  auto r = c.send(bytes_of("doomed"));
  REQUIRE(!r.has_value());
  CHECK(r.error().code == static_cast<int>(errc::attempts_exhausted));
  CHECK(r.error().message.find("3 attempts") != std::string::npos);
  CHECK(r.error().message.find("injected failure") != std::string::npos);
  CHECK(m.retry_requests().size() == 2);
}

TEST_CASE("a 401 lease answer surfaces the master's message") {
  hio::test::fake_master m;
  {
    std::lock_guard lk(m.mu);
    m.required_token = "right-token";
  }
  auto o = options_for(m);
  o.source_token = "wrong-token";
  client c(o);
  auto r = c.send(bytes_of("data"));
  REQUIRE(!r.has_value());
  CHECK(r.error().code == static_cast<int>(errc::lease_refused));
  CHECK(r.error().message.find("401") != std::string::npos);
  CHECK(r.error().message.find("bad source token") != std::string::npos);

  auto good = options_for(m);
  good.source_token = "right-token";
  client c2(good);
  auto ok = c2.send(bytes_of("data"));
  REQUIRE(ok.has_value());
  CHECK(ok->status == send_status::stored);
}

TEST_CASE("a busy master (503) is asked again until it grants a lease") {
  hio::test::fake_master m;
  {
    std::lock_guard lk(m.mu);
    m.busy_answers = 3;
  }
  client c(options_for(m));
  auto r = c.send(bytes_of("patience"));
  REQUIRE(r.has_value());
  CHECK(r->status == send_status::stored);
  std::lock_guard lk(m.mu);
  CHECK(m.requests.size() == 4);
}

TEST_CASE("an unreachable master fails the tuple with lease_timeout after lease_timeout") {
  client_options o;
  o.master_url = "http://127.0.0.1:" + std::to_string(closed_port());
  o.lease_timeout = std::chrono::milliseconds(300);
  client c(o);
  const auto t0 = std::chrono::steady_clock::now();
  auto r = c.send(bytes_of("nobody home"));
  const auto took = std::chrono::steady_clock::now() - t0;
  REQUIRE(!r.has_value());
  CHECK(r.error().code == static_cast<int>(errc::lease_timeout));
  CHECK(took >= std::chrono::milliseconds(250));
  CHECK(took < std::chrono::seconds(5));
}

TEST_CASE("a failed acknowledgement is final and carries the reason") {
  hio::test::fake_master m;
  {
    std::lock_guard lk(m.handler.mu);
    m.handler.failed_ids = {1001};
  }
  auto o = options_for(m);
  o.session_idle = std::chrono::seconds(10);  // both tuples in one session, however slow this machine is
  client c(o);
  auto a = c.send(bytes_of("first"));
  auto b = c.send(bytes_of("second"));
  REQUIRE(a.has_value());
  REQUIRE(b.has_value());
  CHECK(a->status == send_status::stored);
  CHECK(b->tuple_id == 1001);
  CHECK(b->status == send_status::failed);
  CHECK(b->reason == "feature extraction failed: test");
  CHECK(b->attempts == 1);
  CHECK(m.retry_requests().empty());
}

TEST_CASE("queued acknowledgements are final for the source") {
  hio::test::fake_master m;
  {
    std::lock_guard lk(m.mu);
    m.queue_kind = true;
  }
  {
    std::lock_guard lk(m.handler.mu);
    m.handler.ok_status = hio::wire::ack_status::queued;
  }
  client c(options_for(m));
  auto r = c.send(bytes_of("to the queue"));
  REQUIRE(r.has_value());
  CHECK(r->status == send_status::queued);
  CHECK(c.stats().queued == 1);
}

TEST_CASE("compression sends fewer bytes and the receiver gets the original tuple") {
  hio::test::fake_master m;
  auto o = options_for(m);
  o.compress = true;
  client c(o);
  std::vector<std::byte> data(1 << 20);
  for (std::size_t i = 0; i < data.size(); ++i) data[i] = static_cast<std::byte>(i % 7);
  auto incompressible = [] {
    std::mt19937_64 rng(3);
    return random_bytes(rng, 4096);
  }();
  auto r = c.send(data);
  auto r2 = c.send(incompressible);
  REQUIRE(r.has_value());
  REQUIRE(r2.has_value());
  std::lock_guard lk(m.handler.mu);
  const auto& t = m.handler.durable[r->tuple_id];
  CHECK(t.xxh3 == hio::xxh3_64(data));
  CHECK(t.size == data.size());
  CHECK(t.wire_bytes < data.size() / 10);
  CHECK(m.handler.durable[r2->tuple_id].wire_bytes == 4096);  // sent raw: zstd would not help
}

TEST_CASE("a tuple in two pieces arrives as one payload, raw and compressed, and its checksum covers both") {
  for (bool compress : {false, true}) {
    CAPTURE(compress);
    hio::test::fake_master m;
    auto o = options_for(m);
    o.compress = compress;
    client c(o);
    std::mt19937_64 rng(5);
    const std::string head = "\x93NUMPY head";  // as a .npy preamble would start
    std::vector<std::vector<std::byte>> bodies;
    for (std::size_t n : {0, 1, 4096, 300000}) bodies.push_back(random_bytes(rng, n));
    bodies.emplace_back(1 << 20, std::byte{7});  // compressible
    std::vector<std::promise<hio::result<send_result>>> done(bodies.size());
    for (std::size_t i = 0; i < bodies.size(); ++i) {
      REQUIRE(c.async_send_view(bytes_of(head), bodies[i], {},
                                [&done, i](hio::result<send_result> r) { done[i].set_value(std::move(r)); })
                  .has_value());
    }
    for (std::size_t i = 0; i < bodies.size(); ++i) {
      auto r = done[i].get_future().get();
      REQUIRE(r.has_value());
      std::vector<std::byte> whole(bytes_of(head).begin(), bytes_of(head).end());
      whole.insert(whole.end(), bodies[i].begin(), bodies[i].end());
      std::lock_guard lk(m.handler.mu);
      const auto& t = m.handler.durable[r->tuple_id];
      CHECK(t.size == whole.size());
      CHECK(t.xxh3 == hio::xxh3_64(whole));
      CHECK(t.head.substr(0, head.size()) == head);  // the first 16 bytes of what arrived
      if (compress && i == bodies.size() - 1) CHECK(t.wire_bytes < whole.size() / 10);
    }
  }
}

TEST_CASE("without a token the client presents $HIO_SOURCE_TOKEN, else the one hio up keeps in the data dir") {
  hio::test::fake_master m;
  {
    std::lock_guard lk(m.mu);
    m.required_token = "0123456789abcdef0123456789abcdef";
  }
  const auto dir = std::filesystem::temp_directory_path() / ("hio-token-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  std::ofstream(dir / "source-token") << "0123456789abcdef0123456789abcdef\n";
  ::unsetenv("HIO_SOURCE_TOKEN");
  ::setenv("HIO_DATA_DIR", dir.c_str(), 1);
  CHECK(client(options_for(m)).send(bytes_of("found in the data dir")).has_value());
  ::setenv("HIO_SOURCE_TOKEN", "wrong-token-wrong-token-wrong-token", 1);  // the environment comes first
  auto refused = client(options_for(m)).send(bytes_of("x"));
  REQUIRE_FALSE(refused.has_value());
  CHECK(refused.error().code == static_cast<int>(errc::lease_refused));
  auto o = options_for(m);
  o.source_token = "0123456789abcdef0123456789abcdef";  // and an explicit token before both
  CHECK(client(o).send(bytes_of("explicit")).has_value());
  ::unsetenv("HIO_SOURCE_TOKEN");
  ::unsetenv("HIO_DATA_DIR");
  std::filesystem::remove_all(dir);
}

TEST_CASE("metadata that is not a JSON object is refused before anything is sent") {
  hio::test::fake_master m;
  client c(options_for(m));
  auto r = c.send(bytes_of("x"), "[1, 2]");
  REQUIRE(!r.has_value());
  CHECK(r.error().code == static_cast<int>(errc::invalid_argument));
  auto f = c.async_send(std::vector<std::byte>(3), "{not json");
  auto r2 = f.get();
  REQUIRE(!r2.has_value());
  CHECK(r2.error().code == static_cast<int>(errc::invalid_argument));
  std::lock_guard lk(m.mu);
  CHECK(m.requests.empty());
}

TEST_CASE("a bad master url is reported by every send") {
  client_options o;
  o.master_url = "not a url";
  client c(o);
  auto r = c.send(bytes_of("x"));
  REQUIRE(!r.has_value());
  CHECK(r.error().code == static_cast<int>(errc::invalid_argument));
}

TEST_CASE("sessions end after session_tuples ids and after session_idle, freeing the channel") {
  hio::test::fake_master m;
  auto o = options_for(m);
  o.session_tuples = 4;
  o.session_idle = std::chrono::milliseconds(300);
  client c(o);
  std::vector<std::future<hio::result<send_result>>> futures;
  for (int i = 0; i < 10; ++i) futures.push_back(c.async_send(std::vector<std::byte>(100)));
  REQUIRE(c.flush(std::chrono::seconds(10)).has_value());
  for (auto& f : futures) CHECK(f.get().has_value());
  {
    std::lock_guard lk(m.mu);
    CHECK(m.requests.size() == 3);  // 4 + 4 + 2
  }
  // The last session ends after session_idle: the receiver sees a clean END.
  for (int i = 0; i < 500; ++i) {
    {
      std::lock_guard lk(m.handler.mu);
      if (m.handler.clean_sessions == 3) break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  std::lock_guard lk(m.handler.mu);
  CHECK(m.handler.sessions == 3);
  CHECK(m.handler.clean_sessions == 3);  // the last one (2 of 4 ids used) ended by session_idle
  CHECK(m.handler.unclean_sessions == 0);
}

TEST_CASE("sends from several threads at once all get their own results") {
  hio::test::fake_master m;
  client c(options_for(m));
  std::vector<std::thread> threads;
  std::atomic<int> ok{0};
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 50; ++i) {
        const std::string data = "thread " + std::to_string(t) + " tuple " + std::to_string(i);
        auto r = c.send(bytes_of(data));
        if (r && r->status == send_status::stored) ++ok;
      }
    });
  }
  for (auto& th : threads) th.join();
  CHECK(ok == 200);
  std::lock_guard lk(m.handler.mu);
  CHECK(m.handler.durable.size() == 200);
}
