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
#include <zstd.h>

#include <atomic>
#include <mutex>
#include <optional>
#include <set>

namespace hio {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using steady = std::chrono::steady_clock;
constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);

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
    std::vector<std::byte> payload;  // reused for every tuple of the session
    std::vector<std::byte> decoded;
    std::string metadata;
    std::size_t pending = 0;
    std::uint64_t pending_bytes = 0;
    std::string out;  // acks of one flush, written at once

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
      if (pending > 0) {
        boost::system::error_code ec;
        if (s->available(ec) < wire::header_size || ec)
          if (!co_await flush()) break;
      }
      wire::header_bytes raw;
      if (session) *deadline = steady::now() + options_.idle_timeout;
      auto [ec, n] = co_await asio::async_read(*s, asio::buffer(raw), use_tuple);
      (void)n;
      if (ec) {
        if (*timed_out && !any_tuple && !session)
          spdlog::info("receiver {}: {} sent nothing within {} ms; closed", options_.target, peer,
                       options_.first_frame_timeout.count());
        else if (*timed_out)
          spdlog::info("receiver {}: session from {} idle past {} ms; closed", options_.target, peer,
                       options_.idle_timeout.count());
        break;
      }
      auto h = wire::decode(raw, options_.max_tuple_bytes);
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

      metadata.resize(h->metadata_length);
      payload.resize(h->payload_length);
      *deadline = steady::now() + options_.transfer_timeout;
      std::array<asio::mutable_buffer, 2> bufs{asio::buffer(metadata), asio::buffer(payload)};
      auto [rec, rn] = co_await asio::async_read(*s, bufs, use_tuple);
      (void)rn;
      if (rec) {
        spdlog::info("receiver {}: tuple {} from {} truncated: {}", options_.target, h->tuple_id, peer,
                     *timed_out ? "stalled past the transfer deadline" : rec.message());
        break;
      }
      std::span<const std::byte> tuple(payload);
      if (h->payload_codec == wire::codec::zstd) {
        const auto size = ZSTD_getFrameContentSize(payload.data(), payload.size());
        if (size == ZSTD_CONTENTSIZE_ERROR || size == ZSTD_CONTENTSIZE_UNKNOWN || size > options_.max_tuple_bytes) {
          co_await send_error(h->tuple_id, wire::error_code::bad_codec,
                              "zstd payload without a valid content size, or over the maximum tuple size");
          break;
        }
        decoded.resize(size);
        const auto got = ZSTD_decompress(decoded.data(), decoded.size(), payload.data(), payload.size());
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
      received_tuple t{h->tuple_id, h->xxh3, metadata, tuple, h->payload_length};
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
