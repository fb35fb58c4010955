#include <hio/common/clock.hpp>
#include <hio/common/hash.hpp>
#include <hio/common/log.hpp>

#include "detail_listen.hpp"
#include <hio/common/receiver.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <sys/socket.h>
#include <zstd.h>

#include <atomic>
#include <cstring>
#include <mutex>
#include <optional>
#include <set>

namespace hio {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using steady = std::chrono::steady_clock;
constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);
constexpr std::size_t inbox_capacity = 64 * 1024;  // frames up to this size are read many per recv
constexpr std::size_t large_read_lowat = 1 << 20;   // bytes a large body's reads wait for (SO_RCVLOWAT)

struct receiver::impl : std::enable_shared_from_this<receiver::impl> {
  impl(asio::io_context& io, receiver_options o, tuple_handler& h)
      : io_(io), options_(std::move(o)), handler_(h), acceptor_(io) {}

  asio::io_context& io_;
  receiver_options options_;
  tuple_handler& handler_;
  tcp::acceptor acceptor_;
  std::uint16_t port_ = 0;
  std::atomic<bool> stopped_{false};
  std::mutex mutex_;
  std::set<std::shared_ptr<tcp::socket>> open_;
  std::atomic<std::uint64_t> sessions_{0}, tuples_{0}, bytes_{0}, rejected_{0};

  asio::awaitable<void> accept_loop() {
    auto self = shared_from_this();
    while (!stopped_) {
      auto [ec, socket] = co_await acceptor_.async_accept(use_tuple);
      if (ec) {
        if (stopped_ || ec == asio::error::operation_aborted) co_return;
        spdlog::warn("receiver {}: accept failed: {}", options_.target, ec.message());
        continue;
      }
      auto s = std::make_shared<tcp::socket>(std::move(socket));
      boost::system::error_code ignored;
      s->set_option(tcp::no_delay(true), ignored);
      {
        std::lock_guard lock(mutex_);
        open_.insert(s);
      }
      asio::co_spawn(io_, serve(s), asio::detached);
    }
  }

  // Closes the socket when the deadline passes; the pending operation then fails and `timed_out` is set.
  asio::awaitable<void> watchdog(std::shared_ptr<tcp::socket> s, std::shared_ptr<steady::time_point> deadline,
                                 std::shared_ptr<bool> timed_out) {
    asio::steady_timer timer(io_);
    while (s->is_open()) {
      timer.expires_at(*deadline);
      co_await timer.async_wait(use_tuple);
      if (!s->is_open()) co_return;
      if (steady::now() >= *deadline) {
        *timed_out = true;
        boost::system::error_code ignored;
        s->close(ignored);
        co_return;
      }
    }
  }

  asio::awaitable<void> serve(std::shared_ptr<tcp::socket> s) {
    auto self = shared_from_this();
    std::string peer;
    {
      boost::system::error_code ec;
      auto ep = s->remote_endpoint(ec);
      if (!ec) peer = ep.address().to_string() + ":" + std::to_string(ep.port());
    }
    auto deadline = std::make_shared<steady::time_point>(steady::now() + options_.first_frame_timeout);
    auto timed_out = std::make_shared<bool>(false);
    asio::co_spawn(io_, watchdog(s, deadline, timed_out), asio::detached);

    std::optional<lease_token> session;
    std::uint64_t last_id = 0;
    bool any_tuple = false;
    bool clean = false;
    // Frames of small tuples are read many per recv into `inbox` and handed to the handler where they
    // lie; a frame larger than the inbox has its body read straight into `payload` (reused for every
    // tuple of the session). The first header, and each after such a frame, is read on its own, so the
    // bytes of a large payload do not land in the inbox and need no copy either.
    const auto inbox_memory = std::make_unique_for_overwrite<std::byte[]>(inbox_capacity);  // not zeroed
    const std::span<std::byte> inbox(inbox_memory.get(), inbox_capacity);
    std::size_t begin = 0, end = 0;
    bool greedy = false;  // read past what is needed: set by a small frame, cleared by a large one
    std::vector<std::byte> payload;
    std::vector<std::byte> decoded;
    std::string metadata;
    std::size_t pending = 0;
    std::uint64_t pending_bytes = 0;
    std::string out;  // acks of one flush, written at once
    {
      boost::system::error_code ignored;
      s->non_blocking(true, ignored);  // for the synchronous probe below; async operations are unaffected
    }

    // Reads until the inbox holds `need` (<= inbox_capacity) bytes; more when greedy, up to its room.
    auto fill = [&](std::size_t need) -> asio::awaitable<boost::system::error_code> {
      if (begin + need > inbox.size()) {
        std::memmove(inbox.data(), inbox.data() + begin, end - begin);
        end -= begin;
        begin = 0;
      }
      while (end - begin < need) {
        const std::size_t room = greedy ? inbox.size() - end : need - (end - begin);
        auto [ec, n] = co_await s->async_read_some(asio::buffer(inbox.data() + end, room), use_tuple);
        end += n;
        if (ec && end - begin < need) co_return ec;
      }
      co_return boost::system::error_code{};
    };

    // Whether another frame header is already here (in the inbox, or readable without waiting).
    auto header_ready = [&]() -> bool {
      if (end - begin >= wire::header_size) return true;
      if (begin + wire::header_size > inbox.size()) {
        std::memmove(inbox.data(), inbox.data() + begin, end - begin);
        end -= begin;
        begin = 0;
      }
      const std::size_t room = greedy ? inbox.size() - end : wire::header_size - (end - begin);
      boost::system::error_code ec;
      end += s->read_some(asio::buffer(inbox.data() + end, room), ec);
      return end - begin >= wire::header_size;
    };

    auto send_error = [&](std::uint64_t id, wire::error_code code, const std::string& message)
        -> asio::awaitable<void> {
      ++rejected_;
      spdlog::info("receiver {}: {} from {}: {}", options_.target, wire::to_string(code), peer, message);
      const auto h = wire::encode(wire::make_error(id, code, message.size()));
      std::string frame(reinterpret_cast<const char*>(h.data()), h.size());
      frame += message;
      *deadline = steady::now() + std::chrono::seconds(2);
      co_await asio::async_write(*s, asio::buffer(frame), use_tuple);
    };

    // Makes the pending tuples durable through the handler and writes their acks. False on failure.
    auto flush = [&]() -> asio::awaitable<bool> {
      if (pending == 0) co_return true;
      *deadline = steady::time_point::max();
      auto acks = handler_.flush(*session);
      pending = 0;
      pending_bytes = 0;
      if (!acks) {
        co_await send_error(last_id, static_cast<wire::error_code>(acks.error().code ? acks.error().code : 9),
                            acks.error().message);
        co_return false;
      }
      out.clear();
      for (const auto& a : *acks) {
        const auto h = wire::encode(wire::make_ack(a.tuple_id, a.status, a.reason.size()));
        out.append(reinterpret_cast<const char*>(h.data()), h.size());
        out += a.reason;
      }
      *deadline = steady::now() + options_.idle_timeout;
      auto [ec, n] = co_await asio::async_write(*s, asio::buffer(out), use_tuple);
      (void)n;
      co_return !ec;
    };

    for (;;) {
      if (pending > 0 && !header_ready())
        if (!co_await flush()) break;
      if (session) *deadline = steady::now() + options_.idle_timeout;
      if (auto ec = co_await fill(wire::header_size)) {
        if (*timed_out && !any_tuple && !session)
          spdlog::info("receiver {}: {} sent nothing within {} ms; closed", options_.target, peer,
                       options_.first_frame_timeout.count());
        else if (*timed_out)
          spdlog::info("receiver {}: session from {} idle past {} ms; closed", options_.target, peer,
                       options_.idle_timeout.count());
        break;
      }
      auto h = wire::decode(std::span<const std::byte, wire::header_size>(inbox.data() + begin, wire::header_size),
                            options_.max_tuple_bytes);
      begin += wire::header_size;
      if (!h) {
        co_await send_error(0, static_cast<wire::error_code>(h.error().code), h.error().message);
        break;
      }
      if (h->type == wire::frame_type::end) {
        if (co_await flush()) {
          const auto e = wire::encode(wire::make_end());
          *deadline = steady::now() + std::chrono::seconds(5);
          auto [wec, wn] = co_await asio::async_write(*s, asio::buffer(e), use_tuple);
          (void)wn;
          clean = !wec;
        }
        break;
      }
      if (h->type != wire::frame_type::data) {
        co_await send_error(h->tuple_id, wire::error_code::bad_frame, "sources may send only DATA and END frames");
        break;
      }
      if (!session) {
        if (auto v = verify_token(h->token, options_.secret, options_.target, unix_seconds()); !v) {
          co_await send_error(h->tuple_id, wire::error_code::bad_token, v.error().message);
          break;
        }
        *deadline = steady::time_point::max();
        if (auto b = handler_.begin_session(h->token, peer); !b) {
          co_await send_error(h->tuple_id, static_cast<wire::error_code>(b.error().code ? b.error().code : 9),
                              b.error().message);
          break;
        }
        session = h->token;
        ++sessions_;
      } else if (!(h->token == *session)) {
        co_await send_error(h->tuple_id, wire::error_code::bad_token, "a session must use one lease token");
        break;
      }
      if (!session->covers(h->tuple_id) || (any_tuple && h->tuple_id <= last_id)) {
        co_await send_error(h->tuple_id, wire::error_code::bad_frame,
                            "tuple id " + std::to_string(h->tuple_id) +
                                " is outside the lease or not increasing");
        break;
      }
      last_id = h->tuple_id;
      any_tuple = true;

      *deadline = steady::now() + options_.transfer_timeout;
      const std::uint64_t body = h->metadata_length + h->payload_length;
      std::string_view meta_view;
      std::span<const std::byte> wire_payload;
      boost::system::error_code rec;
      if (body <= inbox.size()) {
        greedy = true;
        rec = co_await fill(static_cast<std::size_t>(body));
        if (!rec) {
          meta_view = {reinterpret_cast<const char*>(inbox.data() + begin), h->metadata_length};
          wire_payload = {inbox.data() + begin + h->metadata_length, static_cast<std::size_t>(h->payload_length)};
          begin += static_cast<std::size_t>(body);
        }
      } else {
        greedy = false;
        metadata.resize(h->metadata_length);
        payload.resize(h->payload_length);
        // What of the body is already in the inbox, then the rest straight from the socket.
        std::size_t have = end - begin;
        const std::size_t m = std::min<std::size_t>(have, metadata.size());
        std::memcpy(metadata.data(), inbox.data() + begin, m);
        const std::size_t p = std::min<std::size_t>(have - m, payload.size());
        std::memcpy(payload.data(), inbox.data() + begin + m, p);
        begin = end = 0;
        std::array<asio::mutable_buffer, 2> bufs{asio::buffer(metadata.data() + m, metadata.size() - m),
                                                 asio::buffer(payload.data() + p, payload.size() - p)};
        // With a receive low-water mark the socket wakes this coroutine when a large share of the body
        // has arrived, not for every segment: a few recv and epoll_wait calls per tuple instead of one
        // pair per 64 KiB.
        const int fd = s->native_handle();
        int lowat = 1;
        for (std::size_t left = body - m - p; left > 0 && !rec;) {
          const int want = static_cast<int>(std::min<std::size_t>(left, large_read_lowat));
          if (want != lowat && ::setsockopt(fd, SOL_SOCKET, SO_RCVLOWAT, &want, sizeof want) == 0) lowat = want;
          auto [ec, n] = co_await s->async_read_some(bufs, use_tuple);
          left -= n;
          rec = ec;
          for (auto& b : bufs) {
            const std::size_t used = std::min(n, b.size());
            b += used;
            n -= used;
          }
        }
        if (lowat != 1) {
          const int one = 1;
          ::setsockopt(fd, SOL_SOCKET, SO_RCVLOWAT, &one, sizeof one);
        }
        meta_view = metadata;
        wire_payload = payload;
      }
      if (rec) {
        spdlog::info("receiver {}: tuple {} from {} truncated: {}", options_.target, h->tuple_id, peer,
                     *timed_out ? "stalled past the transfer deadline" : rec.message());
        break;
      }
      std::span<const std::byte> tuple = wire_payload;
      if (h->payload_codec == wire::codec::zstd) {
        const auto size = ZSTD_getFrameContentSize(wire_payload.data(), wire_payload.size());
        if (size == ZSTD_CONTENTSIZE_ERROR || size == ZSTD_CONTENTSIZE_UNKNOWN || size > options_.max_tuple_bytes) {
          co_await send_error(h->tuple_id, wire::error_code::bad_codec,
                              "zstd payload without a valid content size, or over the maximum tuple size");
          break;
        }
        decoded.resize(size);
        const auto got = ZSTD_decompress(decoded.data(), decoded.size(), wire_payload.data(), wire_payload.size());
        if (ZSTD_isError(got) || got != size) {
          co_await send_error(h->tuple_id, wire::error_code::bad_codec, "zstd payload does not decode");
          break;
        }
        tuple = decoded;
      }
      if (const auto sum = xxh3_64(tuple); sum != h->xxh3) {
        co_await send_error(h->tuple_id, wire::error_code::checksum,
                            "XXH3-64 of tuple " + std::to_string(h->tuple_id) + " is " + to_hex16(sum) +
                                ", the header says " + to_hex16(h->xxh3));
        break;
      }
      *deadline = steady::time_point::max();
      received_tuple t{h->tuple_id, h->xxh3, meta_view, tuple, h->payload_length};
      if (auto r = handler_.on_tuple(*session, t); !r) {
        co_await send_error(h->tuple_id, static_cast<wire::error_code>(r.error().code ? r.error().code : 9),
                            r.error().message);
        break;
      }
      ++tuples_;
      bytes_ += tuple.size();
      ++pending;
      pending_bytes += tuple.size();
      if (pending >= options_.max_batch_tuples || pending_bytes >= options_.max_batch_bytes)
        if (!co_await flush()) break;
    }

    boost::system::error_code ignored;
    s->shutdown(tcp::socket::shutdown_both, ignored);
    s->close(ignored);
    {
      std::lock_guard lock(mutex_);
      open_.erase(s);
    }
    if (session) handler_.end_session(*session, clean);
  }

  void stop() {
    if (stopped_.exchange(true)) return;
    asio::post(io_, [self = shared_from_this()] {
      boost::system::error_code ec;
      self->acceptor_.close(ec);
      std::lock_guard lock(self->mutex_);
      for (auto& s : self->open_) s->close(ec);
    });
  }
};

result<std::unique_ptr<receiver>> receiver::start(asio::io_context& io, receiver_options options,
                                                  tuple_handler& handler) {
  auto p = std::make_shared<impl>(io, std::move(options), handler);
  auto port = detail::listen(p->acceptor_, p->options_.host, p->options_.port);
  if (!port) return port.error();
  p->port_ = *port;
  asio::co_spawn(io, p->accept_loop(), asio::detached);
  return std::unique_ptr<receiver>(new receiver(std::move(p)));
}

receiver::receiver(std::shared_ptr<impl> p) : impl_(std::move(p)) {}
receiver::~receiver() { stop(); }
std::uint16_t receiver::port() const noexcept { return impl_->port_; }
void receiver::stop() { impl_->stop(); }

receiver_counters receiver::counters() const {
  return {impl_->sessions_.load(), impl_->tuples_.load(), impl_->bytes_.load(), impl_->rejected_.load()};
}

}  // namespace hio
