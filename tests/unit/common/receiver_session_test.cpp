// The transport-independent session rules, driven with frames built in memory (no sockets, no UCX).
#include <hio/common/clock.hpp>
#include <hio/common/hash.hpp>
#include <hio/common/receiver_session.hpp>

#include <doctest/doctest.h>

#include <optional>
#include <zstd.h>

#include <fstream>
#include <stdexcept>

#include <unistd.h>

using namespace hio;

namespace {

struct recording_handler : tuple_handler {
  std::vector<std::uint64_t> tuples, stored;
  std::vector<std::string> metadata;
  int begun = 0, ended = 0;
  bool ended_clean = false;
  bool throw_on_tuple = false, throw_on_begin = false;
  std::optional<error> refuse;

  result<void> begin_session(const lease_token&, const std::string&) override {
    if (throw_on_begin) throw std::runtime_error("begin exploded");
    if (refuse) return *refuse;
    ++begun;
    return {};
  }
  result<void> on_tuple(const lease_token&, const received_tuple& t) override {
    if (throw_on_tuple) throw std::runtime_error("disk on fire");
    tuples.push_back(t.tuple_id);
    metadata.emplace_back(t.metadata);
    return {};
  }
  result<std::vector<ack>> flush(const lease_token&) override {
    std::vector<ack> acks;
    for (auto id : tuples) acks.push_back({id, wire::ack_status::stored, {}});
    stored.insert(stored.end(), tuples.begin(), tuples.end());
    tuples.clear();
    return acks;
  }
  void end_session(const lease_token&, bool clean) override {
    ++ended;
    ended_clean = clean;
  }
};

struct fixture {
  receiver_options options;
  recording_handler handler;
  receiver_stats stats;
  lease_token token;

  fixture() {
    options.secret = "s3cret";
    options.target = "w/0";
    options.max_batch_tuples = 3;
    token = lease(100, 10);
  }
  lease_token lease(std::uint64_t first, std::uint32_t count, std::uint64_t id = 7) const {
    return mint_token(options.secret, options.target, id, first, count, unix_seconds() + 60);
  }

  struct frame {
    wire::header_bytes header;
    std::vector<std::byte> body;
    wire::frame_header h;
  };
  frame data(std::uint64_t id, std::string_view meta, std::string_view payload, const lease_token* t = nullptr) const {
    frame f;
    f.h.tuple_id = id;
    f.h.token = t ? *t : token;
    f.h.metadata_length = static_cast<std::uint32_t>(meta.size());
    f.h.payload_length = payload.size();
    f.h.xxh3 = xxh3_64(std::as_bytes(std::span(payload)));
    f.header = wire::encode(f.h);
    for (char c : meta) f.body.push_back(static_cast<std::byte>(c));
    for (char c : payload) f.body.push_back(static_cast<std::byte>(c));
    return f;
  }
};

// Feeds one DATA frame: header, then body.
session_result<bool> feed(receiver_session& s, const fixture::frame& f) {
  auto h = s.on_header(f.header);
  if (!h) return h.error();
  return s.on_body(*h, f.body);
}

// A flush, with a handler that answers at once (tuple_handler's default flush_async): appends the
// answers to `out`.
session_result<void> flush(receiver_session& s, std::string& out) {
  std::optional<session_result<std::string>> got;
  s.start_flush([&](session_result<std::string> r) { got = std::move(r); });
  REQUIRE(got.has_value());
  if (!*got) return got->error();
  out += got->value();
  return {};
}

wire::frame_header first_answer(const std::string& bytes) {
  REQUIRE(bytes.size() >= wire::header_size);
  return wire::decode(std::span<const std::byte, wire::header_size>(
                          reinterpret_cast<const std::byte*>(bytes.data()), wire::header_size))
      .value();
}

}  // namespace

TEST_CASE("receiver_session: a session hands tuples over, batches them, acknowledges and ends clean") {
  fixture fx;
  {
    receiver_session s(fx.options, fx.handler, fx.stats, "peer");
    CHECK_FALSE(s.begun());
    CHECK(feed(s, fx.data(100, "{\"a\":1}", "one")).value() == false);
    CHECK(s.begun());
    CHECK(fx.handler.begun == 1);
    CHECK(feed(s, fx.data(101, "", "two")).value() == false);
    CHECK(feed(s, fx.data(105, "", "three")).value() == true);  // max_batch_tuples = 3
    CHECK(fx.handler.metadata.front() == "{\"a\":1}");
    std::string out;
    REQUIRE(flush(s, out).has_value());
    CHECK(out.size() == 3 * wire::header_size);
    CHECK(first_answer(out).type == wire::frame_type::ack);
    CHECK(first_answer(out).tuple_id == 100);
    CHECK_FALSE(s.has_pending());

    const auto end = wire::encode(wire::make_end());
    CHECK(s.on_header(end).value().type == wire::frame_type::end);
    CHECK(first_answer(receiver_session::end_frame()).type == wire::frame_type::end);
    s.finish();
    s.end();
    s.end();  // once
  }
  CHECK(fx.handler.ended == 1);
  CHECK(fx.handler.ended_clean);
  CHECK(fx.stats.sessions == 1);
  CHECK(fx.stats.tuples == 3);
  CHECK(fx.stats.bytes == 3 + 3 + 5);
}

TEST_CASE("receiver_session: a session that never began does not end one; an unfinished one ends unclean") {
  fixture fx;
  {
    receiver_session s(fx.options, fx.handler, fx.stats, "peer");
    s.end();
  }
  CHECK(fx.handler.ended == 0);
  {
    receiver_session s(fx.options, fx.handler, fx.stats, "peer");
    REQUIRE(feed(s, fx.data(100, "", "x")).has_value());
    s.end();
  }
  CHECK(fx.handler.ended == 1);
  CHECK_FALSE(fx.handler.ended_clean);
  {
    // Abandoned without end() (the transport torn down at shutdown): the handler is not called.
    receiver_session s(fx.options, fx.handler, fx.stats, "peer");
    REQUIRE(feed(s, fx.data(100, "", "x", nullptr)).has_value());
  }
  CHECK(fx.handler.ended == 1);
}

TEST_CASE("receiver_session: tokens are checked before the handler sees anything") {
  fixture fx;
  SUBCASE("forged") {
    receiver_session s(fx.options, fx.handler, fx.stats, "peer");
    auto forged = mint_token("other-secret", fx.options.target, 7, 100, 10, unix_seconds() + 60);
    auto h = s.on_header(fx.data(100, "", "x", &forged).header);
    REQUIRE_FALSE(h.has_value());
    CHECK(h.error().code == wire::error_code::bad_token);
    CHECK(fx.handler.begun == 0);
  }
  SUBCASE("for another channel") {
    receiver_session s(fx.options, fx.handler, fx.stats, "peer");
    auto other = mint_token(fx.options.secret, "w/1", 7, 100, 10, unix_seconds() + 60);
    CHECK(s.on_header(fx.data(100, "", "x", &other).header).error().code == wire::error_code::bad_token);
  }
  SUBCASE("changed within a session") {
    receiver_session s(fx.options, fx.handler, fx.stats, "peer");
    REQUIRE(feed(s, fx.data(100, "", "x")).has_value());
    auto second = fx.lease(100, 10, 8);
    auto h = s.on_header(fx.data(101, "", "x", &second).header);
    REQUIRE_FALSE(h.has_value());
    CHECK(h.error().code == wire::error_code::bad_token);
    CHECK(h.error().message.find("one lease token") != std::string::npos);
  }
}

TEST_CASE("receiver_session: tuple ids stay within the lease and increase") {
  fixture fx;
  receiver_session s(fx.options, fx.handler, fx.stats, "peer");
  CHECK(s.on_header(fx.data(99, "", "x").header).error().code == wire::error_code::bad_frame);
  CHECK(s.on_header(fx.data(110, "", "x").header).error().code == wire::error_code::bad_frame);
  REQUIRE(feed(s, fx.data(104, "", "x")).has_value());
  CHECK(s.on_header(fx.data(104, "", "x").header).error().code == wire::error_code::bad_frame);
  CHECK(s.on_header(fx.data(103, "", "x").header).error().code == wire::error_code::bad_frame);
  CHECK(fx.handler.tuples == std::vector<std::uint64_t>{104});
}

TEST_CASE("receiver_session: bodies are checked: length, checksum, zstd") {
  fixture fx;
  receiver_session s(fx.options, fx.handler, fx.stats, "peer");
  SUBCASE("length differs from the header") {
    auto f = fx.data(100, "", "abc");
    auto h = s.on_header(f.header).value();
    f.body.pop_back();
    auto r = s.on_body(h, f.body);
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error().code == wire::error_code::bad_frame);
    CHECK_FALSE(receiver_session::check_length(h, 1ull << 40).has_value());
    CHECK(receiver_session::check_length(h, 3).has_value());
  }
  SUBCASE("checksum") {
    auto f = fx.data(100, "", "abc");
    f.body[1] = std::byte{'X'};
    auto r = feed(s, f);
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error().code == wire::error_code::checksum);
    CHECK(fx.handler.tuples.empty());
  }
  // 10,000 bytes of 'z' as one zstd frame, and the header that announces it.
  const std::string plain(10000, 'z');
  std::vector<std::byte> packed(ZSTD_compressBound(plain.size()));
  packed.resize(ZSTD_compress(packed.data(), packed.size(), plain.data(), plain.size(), 1));
  wire::frame_header zh;
  zh.tuple_id = 100;
  zh.token = fx.token;
  zh.payload_length = packed.size();
  zh.payload_codec = wire::codec::zstd;
  zh.xxh3 = xxh3_64(std::as_bytes(std::span(plain)));
  SUBCASE("zstd decodes to the checksummed bytes") {
    auto accepted = s.on_header(wire::encode(zh)).value();
    REQUIRE(s.on_body(accepted, packed).has_value());
    CHECK(fx.stats.bytes == plain.size());
  }
  SUBCASE("zstd over the maximum tuple size is refused before it is decoded") {
    fx.options.max_tuple_bytes = 1000;
    auto accepted = s.on_header(wire::encode(zh)).value();
    auto r = s.on_body(accepted, packed);
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error().code == wire::error_code::bad_codec);
  }
}

TEST_CASE("receiver_session: a tiny zstd frame declaring a gigabyte costs memory only for what it decodes") {
  fixture fx;
  receiver_session s(fx.options, fx.handler, fx.stats, "peer");
  auto rss = [] {
    std::ifstream statm("/proc/self/statm");
    std::uint64_t size = 0, resident = 0;
    statm >> size >> resident;
    return resident * static_cast<std::uint64_t>(::sysconf(_SC_PAGESIZE));
  };
  // A 21-byte frame: magic, a descriptor with an 8-byte content size (single segment), 2^30, then one
  // last raw block of 5 bytes. It decodes to 5 bytes, not to the size it declares.
  std::vector<std::byte> frame;
  for (unsigned v : {0x28u, 0xB5u, 0x2Fu, 0xFDu, 0xE0u}) frame.push_back(std::byte(v));
  for (int i = 0; i < 8; ++i) frame.push_back(std::byte(((1ull << 30) >> (8 * i)) & 0xFF));
  for (unsigned v : {0x29u, 0u, 0u, 0x68u, 0x65u, 0x6Cu, 0x6Cu, 0x6Fu}) frame.push_back(std::byte(v));  // "hello"
  wire::frame_header h;
  h.tuple_id = 100;
  h.token = fx.token;
  h.payload_length = frame.size();
  h.payload_codec = wire::codec::zstd;
  const auto before = rss();
  auto accepted = s.on_header(wire::encode(h)).value();
  auto r = s.on_body(accepted, frame);
  REQUIRE_FALSE(r.has_value());
  CHECK(r.error().code == wire::error_code::bad_codec);
  const auto grown = rss() > before ? rss() - before : 0;
  CHECK(grown < (256ull << 20));  // 1 GiB declared; zero-filling it would make it resident
}

TEST_CASE("receiver_session: a handler's error or exception is a fault, never an exception") {
  fixture fx;
  SUBCASE("refused with a wire code") {
    fx.handler.refuse = error(static_cast<int>(wire::error_code::busy), "channel is busy");
    receiver_session s(fx.options, fx.handler, fx.stats, "peer");
    auto h = s.on_header(fx.data(100, "", "x").header);
    REQUIRE_FALSE(h.has_value());
    CHECK(h.error().code == wire::error_code::busy);
    CHECK_FALSE(s.begun());
  }
  SUBCASE("refused with a code that is not a wire code") {
    fx.handler.refuse = error(503, "draining");
    receiver_session s(fx.options, fx.handler, fx.stats, "peer");
    CHECK(s.on_header(fx.data(100, "", "x").header).error().code == wire::error_code::internal);
  }
  SUBCASE("begin_session throws") {
    fx.handler.throw_on_begin = true;
    receiver_session s(fx.options, fx.handler, fx.stats, "peer");
    auto h = s.on_header(fx.data(100, "", "x").header);
    REQUIRE_FALSE(h.has_value());
    CHECK(h.error().code == wire::error_code::internal);
    CHECK(h.error().message.find("begin exploded") != std::string::npos);
  }
  SUBCASE("on_tuple throws: the session still ends") {
    fx.handler.throw_on_tuple = true;
    {
      receiver_session s(fx.options, fx.handler, fx.stats, "peer");
      auto r = feed(s, fx.data(100, "", "x"));
      REQUIRE_FALSE(r.has_value());
      CHECK(r.error().code == wire::error_code::internal);
      CHECK(r.error().message.find("disk on fire") != std::string::npos);
      s.end();
    }
    CHECK(fx.handler.ended == 1);
    CHECK_FALSE(fx.handler.ended_clean);
  }
}

TEST_CASE("receiver_session: reject counts the fault and encodes an ERROR frame with its message") {
  fixture fx;
  receiver_session s(fx.options, fx.handler, fx.stats, "peer");
  const auto frame = s.reject({42, wire::error_code::checksum, "bad sum"});
  const auto h = first_answer(frame);
  CHECK(h.type == wire::frame_type::error);
  CHECK(h.tuple_id == 42);
  CHECK(static_cast<wire::error_code>(h.flags) == wire::error_code::checksum);
  CHECK(frame.substr(wire::header_size) == "bad sum");
  CHECK(fx.stats.rejected == 1);
}

TEST_CASE("receiver_session: metadata that is not a shallow JSON object fails its tuple alone, in order") {
  fixture fx;
  fx.options.max_batch_tuples = 100;
  receiver_session s(fx.options, fx.handler, fx.stats, "peer");
  const std::string deep = "{\"a\":" + std::string(100000, '[') + std::string(100000, ']') + "}";
  REQUIRE(feed(s, fx.data(100, "{\"ok\":1}", "x")).has_value());
  REQUIRE(feed(s, fx.data(101, deep, "x")).has_value());
  REQUIRE(feed(s, fx.data(102, "[1,2]", "x")).has_value());
  REQUIRE(feed(s, fx.data(103, "{\"unterminated\":", "x")).has_value());
  REQUIRE(feed(s, fx.data(104, "", "x")).has_value());
  CHECK(fx.handler.tuples == std::vector<std::uint64_t>{100, 104});
  std::string out;
  REQUIRE(flush(s, out).has_value());
  std::vector<std::pair<std::uint64_t, wire::ack_status>> acks;
  std::vector<std::string> reasons;
  for (std::size_t at = 0; at < out.size();) {
    const auto h = first_answer(out.substr(at));
    acks.emplace_back(h.tuple_id, static_cast<wire::ack_status>(h.flags));
    reasons.push_back(out.substr(at + wire::header_size, h.payload_length));
    at += wire::header_size + h.payload_length;
  }
  using st = wire::ack_status;
  CHECK(acks == std::vector<std::pair<std::uint64_t, st>>{
                    {100, st::stored}, {101, st::failed}, {102, st::failed}, {103, st::failed}, {104, st::stored}});
  CHECK(reasons[1].find("deeper than 64") != std::string::npos);
  CHECK(reasons[2].find("not a JSON object") != std::string::npos);
  CHECK(reasons[3].find("not valid JSON") != std::string::npos);
  CHECK(fx.stats.rejected == 3);

  SUBCASE("a batch of refused tuples alone does not call the handler's flush") {
    REQUIRE(feed(s, fx.data(105, "[]", "x")).has_value());
    out.clear();
    REQUIRE(flush(s, out).has_value());
    CHECK(fx.handler.stored == std::vector<std::uint64_t>{100, 104});
    CHECK(first_answer(out).tuple_id == 105);
  }
}

TEST_CASE("fault_from keeps wire codes and maps everything else to internal") {
  CHECK(fault_from(error(static_cast<int>(wire::error_code::unavailable), "m"), 1).code ==
        wire::error_code::unavailable);
  CHECK(fault_from(error(0, "m"), 1).code == wire::error_code::internal);
  CHECK(fault_from(error(404, "m"), 1).code == wire::error_code::internal);
  CHECK(fault_from(error(0, "m"), 9).tuple_id == 9);
}
