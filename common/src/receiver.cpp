#include <hio/common/log.hpp>

#include "detail_listen.hpp"
#include "detail_spawn.hpp"
#include <hio/common/receiver.hpp>
#include <hio/common/receiver_session.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <sys/socket.h>

#include <atomic>
#include <cstring>
#include <deque>
#include <functional>
#include <mutex>
#include <set>

namespace hio {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using steady = std::chrono::steady_clock;
constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);
constexpr std::size_t inbox_capacity = 64 * 1024;  // frames up to this size are read many per recv
constexpr std::size_t large_read_lowat = 1 << 20;   // bytes a large body's reads wait for (SO_RCVLOWAT)
constexpr std::size_t body_growth_start = 1 << 20;  // a large body's buffer starts here and doubles

// What a connection sends, and its flush in flight. The handler answers a flush from its own thread
// while the connection goes on reading the next tuples, so every frame goes out through one writer
// coroutine, in order. Lives on the io_context's thread only (answers are posted there).
struct answers {
  explicit answers(asio::io_context& io) : wake(io, steady::time_point::max()), changed(io, steady::time_point::max()) {}
  std::deque<std::string> out;  // frames to send, in order
  bool flushing = false;        // a flush of the session is in flight
  bool failed = false;          // the session is over: an ERROR is queued, or the socket failed
  bool close_after = false;     // the writer closes the socket once `out` is sent
  bool writer_done = false;
  asio::steady_timer wake;      // the writer waits on it
  asio::steady_timer changed;   // serve() waits on it
  void notify() {
    wake.cancel();
    changed.cancel();
  }
};

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
  receiver_stats stats_;
  connection_limits limits_{options_.connections};
  log_limiter refusal_log_;

  asio::awaitable<void> accept_loop() {
    auto self = shared_from_this();
    std::chrono::steady_clock::time_point last_log{};
    while (!stopped_) {
      auto [ec, socket] = co_await acceptor_.async_accept(use_tuple);
      if (ec) {
        if (stopped_ || ec == asio::error::operation_aborted) co_return;
        co_await detail::after_accept_error(ec, "receiver " + options_.target, last_log);
        continue;
      }
      boost::system::error_code ignored;
      std::string address;
      if (auto ep = socket.remote_endpoint(ignored); !ignored) address = ep.address().to_string();
      if (const auto v = limits_.admit(address); v != connection_limits::verdict::admitted) {
        socket.close(ignored);
        log_limited(refusal_log_, spdlog::level::warn, "receiver {}: closed a connection from {}: {}", options_.target,
                    address, detail::refusal_reason(v, limits_.options()));
        continue;
      }
      auto s = std::make_shared<tcp::socket>(std::move(socket));
      s->set_option(tcp::no_delay(true), ignored);
      {
        std::lock_guard lock(mutex_);
        open_.insert(s);
      }
      asio::co_spawn(io_, serve(s, std::move(address)),
                     detail::reported("receiver " + options_.target + " connection"));
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

  // Sends what `a` queues, in order, until the socket fails or close_after; then closes the socket.
  asio::awaitable<void> write_answers(std::shared_ptr<tcp::socket> s, std::shared_ptr<answers> a) {
    while (s->is_open()) {
      if (!a->out.empty()) {
        auto [ec, n] = co_await asio::async_write(*s, asio::buffer(a->out.front()), use_tuple);
        (void)n;
        a->out.pop_front();
        if (ec) a->failed = true;
        if (ec) break;
        continue;
      }
      if (a->close_after) break;
      a->wake.expires_at(steady::time_point::max());
      co_await a->wake.async_wait(use_tuple);
    }
    boost::system::error_code ignored;
    s->shutdown(tcp::socket::shutdown_both, ignored);
    s->close(ignored);
    a->writer_done = true;
    a->changed.cancel();
  }

  // `address` holds a slot of limits_, given back when the connection ends.
  asio::awaitable<void> serve(std::shared_ptr<tcp::socket> s, std::string address) {
    auto self = shared_from_this();
    const detail::on_exit release_slot([&] { limits_.release(address); });
    std::string peer;
    {
      boost::system::error_code ec;
      auto ep = s->remote_endpoint(ec);
      if (!ec) peer = ep.address().to_string() + ":" + std::to_string(ep.port());
    }
    receiver_session session(options_, handler_, stats_, peer);
    // Closes the socket however serve() ends (also when the io_context drops this coroutine).
    const detail::on_exit close_socket([&] {
      boost::system::error_code ignored;
      s->shutdown(tcp::socket::shutdown_both, ignored);
      s->close(ignored);
      std::lock_guard lock(mutex_);
      open_.erase(s);
    });
    auto deadline = std::make_shared<steady::time_point>(steady::now() + options_.first_frame_timeout);
    auto timed_out = std::make_shared<bool>(false);
    asio::co_spawn(io_, watchdog(s, deadline, timed_out),
                   detail::reported("receiver " + options_.target + " watchdog"));

    // Frames of small tuples are read many per recv into `inbox` and handed to the session where they
    // lie; a frame larger than the inbox has its body read straight into `body` (reused for every
    // tuple of the session). The first header, and each after such a frame, is read on its own, so the
    // bytes of a large payload do not land in the inbox and need no copy either.
    const auto inbox_memory = std::make_unique_for_overwrite<std::byte[]>(inbox_capacity);  // not zeroed
    const std::span<std::byte> inbox(inbox_memory.get(), inbox_capacity);
    std::size_t begin = 0, end = 0;
    bool greedy = false;  // read past what is needed: set by a small frame, cleared by a large one
    std::vector<std::byte> body;
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

    auto a = std::make_shared<answers>(io_);
    asio::co_spawn(io_, write_answers(s, a), detail::reported("receiver " + options_.target + " writer"));
    // Waits until `done()`: serve() is woken whenever a flush answers or the writer sent everything.
    auto until = [&](auto done) -> asio::awaitable<void> {
      while (!done()) {
        a->changed.expires_at(steady::time_point::max());
        co_await a->changed.async_wait(use_tuple);
      }
    };
    // Queues `frames`, then waits (at most `within`) until they are sent and the socket is closed.
    auto send_last = [&](std::string frames, steady::duration within) -> asio::awaitable<bool> {
      a->out.push_back(std::move(frames));
      a->close_after = true;
      a->wake.cancel();
      *deadline = steady::now() + within;
      co_await until([&] { return a->writer_done; });
      co_return !a->failed;
    };
    auto fail = [&](const session_fault& f) -> asio::awaitable<void> {
      a->failed = true;
      co_await send_last(session.reject(f), std::chrono::seconds(2));
    };
    // A flush answers on the handler's thread; its answer is posted here. With the batch's acks queued,
    // the tuples that arrived meanwhile are flushed next (one store then covers all of them).
    std::function<void()> start_flush;
    std::function<void(session_result<std::string>)> on_answer = [&](session_result<std::string> r) {
      a->flushing = false;
      if (!r && !a->failed) {
        a->failed = true;
        a->out.push_back(session.reject(r.error()));
        a->close_after = true;
      } else if (r && !r->empty()) {
        a->out.push_back(std::move(*r));
      }
      if (session.begun()) *deadline = steady::now() + options_.idle_timeout;
      start_flush();
      a->notify();
    };
    start_flush = [&] {
      if (a->flushing || a->failed || !session.has_pending()) return;
      a->flushing = true;
      session.start_flush([this, a, answer = &on_answer](session_result<std::string> r) {
        // `answer` lives in serve(), which waits for every flush it started before it returns.
        asio::post(io_, [a, answer, r = std::move(r)]() mutable { (*answer)(std::move(r)); });
      });
    };

    try {
      for (;;) {
        if (a->failed) break;
        if (session.has_pending() && !header_ready()) start_flush();
        if (session.begun()) *deadline = steady::now() + options_.idle_timeout;
        if (auto ec = co_await fill(wire::header_size)) {
          static log_limiter silent_log, idle_log;
          if (*timed_out && !session.begun())
            log_limited(silent_log, spdlog::level::info, "receiver {}: {} sent nothing within {} ms; closed",
                        options_.target, peer, options_.first_frame_timeout.count());
          else if (*timed_out)
            log_limited(idle_log, spdlog::level::info, "receiver {}: session from {} idle past {} ms; closed",
                        options_.target, peer, options_.idle_timeout.count());
          break;
        }
        *deadline = steady::time_point::max();  // the session may call into the handler
        auto h = session.on_header(
            std::span<const std::byte, wire::header_size>(inbox.data() + begin, wire::header_size));
        begin += wire::header_size;
        if (!h) {
          co_await fail(h.error());
          break;
        }
        if (h->type == wire::frame_type::end) {
          start_flush();
          co_await until([&] { return !a->flushing; });  // on_answer flushes what is left
          if (!a->failed && co_await send_last(receiver_session::end_frame(), std::chrono::seconds(5)))
            session.finish();
          break;
        }

        *deadline = steady::now() + options_.transfer_timeout;
        const std::uint64_t length = h->metadata_length + h->payload_length;
        std::span<const std::byte> frame_body;
        boost::system::error_code rec;
        if (length <= inbox.size()) {
          greedy = true;
          rec = co_await fill(static_cast<std::size_t>(length));
          if (!rec) {
            frame_body = {inbox.data() + begin, static_cast<std::size_t>(length)};
            begin += static_cast<std::size_t>(length);
          }
        } else {
          greedy = false;
          // The body buffer grows as bytes arrive (doubling from 1 MiB, never past the declared length,
          // kept for the next tuple), so a header that declares gigabytes costs nothing until they come.
          auto grow_to = [&](std::size_t n) {
            if (body.size() < n) body.resize(n);
          };
          const std::size_t have = std::min<std::size_t>(end - begin, length);
          grow_to(std::min<std::size_t>(length, std::max(have, body_growth_start)));
          std::memcpy(body.data(), inbox.data() + begin, have);
          begin = end = 0;
          std::size_t filled = have;
          // With a receive low-water mark the socket wakes this coroutine when a large share of the body
          // has arrived, not for every segment: a few recv and epoll_wait calls per tuple instead of one
          // pair per 64 KiB.
          const int fd = s->native_handle();
          int lowat = 1;
          while (filled < length && !rec) {
            if (filled == body.size()) grow_to(std::min<std::size_t>(length, 2 * body.size()));
            const std::size_t room = std::min<std::size_t>(body.size(), length) - filled;
            const int want = static_cast<int>(std::min<std::size_t>(length - filled, large_read_lowat));
            if (want != lowat && ::setsockopt(fd, SOL_SOCKET, SO_RCVLOWAT, &want, sizeof want) == 0) lowat = want;
            auto [ec, n] = co_await s->async_read_some(asio::buffer(body.data() + filled, room), use_tuple);
            filled += n;
            rec = ec;
          }
          if (lowat != 1) {
            const int one = 1;
            ::setsockopt(fd, SOL_SOCKET, SO_RCVLOWAT, &one, sizeof one);
          }
          frame_body = {body.data(), static_cast<std::size_t>(length)};
        }
        if (rec) {
          static log_limiter limit;
          log_limited(limit, spdlog::level::info, "receiver {}: tuple {} from {} truncated: {}", options_.target,
                      h->tuple_id, peer, *timed_out ? "stalled past the transfer deadline" : rec.message());
          break;
        }
        *deadline = steady::time_point::max();
        auto due = session.on_body(*h, frame_body);
        if (!due) {
          co_await fail(due.error());
          break;
        }
        if (*due) start_flush();
        if (a->flushing && session.pending_full()) co_await until([&] { return !a->flushing; });
      }
    } catch (const std::exception& e) {
      spdlog::error("receiver {}: session from {} stopped by an exception: {}", options_.target, peer, e.what());
    }
    boost::system::error_code ignored;
    s->shutdown(tcp::socket::shutdown_both, ignored);
    s->close(ignored);
    a->close_after = true;
    a->notify();
    // A flush in flight answers into this frame: wait for it (the handler bounds a store's time).
    try {
      co_await until([&] { return !a->flushing; });
    } catch (const std::exception& e) {
      spdlog::error("receiver {}: session from {}: {}", options_.target, peer, e.what());
    }
    session.end();  // after the socket closed, as before: then the channel counts the session over
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
  asio::co_spawn(io, p->accept_loop(), detail::reported("receiver " + p->options_.target + " accept loop"));
  return std::unique_ptr<receiver>(new receiver(std::move(p)));
}

receiver::receiver(std::shared_ptr<impl> p) : impl_(std::move(p)) {}
receiver::~receiver() { stop(); }
std::uint16_t receiver::port() const noexcept { return impl_->port_; }
void receiver::stop() { impl_->stop(); }

receiver_counters receiver::counters() const {
  auto c = impl_->stats_.snapshot();
  c.refused_connections = impl_->limits_.refused();
  return c;
}

}  // namespace hio
