#pragma once
// How common's servers start their coroutines: every co_spawn ends in `reported(...)`, which logs an
// exception that escaped the coroutine instead of dropping it (asio::detached would), and connection
// coroutines release what they hold through an `on_exit` guard, so an exception cannot leave a socket
// open or a channel's session begun.

#include <hio/common/log.hpp>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <chrono>
#include <exception>
#include <string>
#include <utility>

namespace hio::detail {

// A co_spawn completion handler: logs "<what>: <exception>" at error level.
inline auto reported(std::string what) {
  return [what = std::move(what)](std::exception_ptr e) {
    if (!e) return;
    try {
      std::rethrow_exception(e);
    } catch (const std::exception& x) {
      spdlog::error("{}: stopped by an exception: {}", what, x.what());
    } catch (...) {
      spdlog::error("{}: stopped by an unknown exception", what);
    }
  };
}

// After a failed accept. Out of descriptors (EMFILE, ENFILE) or memory, the next accept fails at once
// again (the connection waits in the backlog), so the loop pauses 100 ms instead of spinning on it, and
// says so at most once a second (`last_log` is the loop's own).
inline boost::asio::awaitable<void> after_accept_error(const boost::system::error_code& ec, const std::string& who,
                                                      std::chrono::steady_clock::time_point& last_log) {
  const auto now = std::chrono::steady_clock::now();
  if (now - last_log >= std::chrono::seconds(1)) {
    spdlog::warn("{}: accept failed: {}; pausing new connections briefly", who, ec.message());
    last_log = now;
  }
  boost::asio::steady_timer pause(co_await boost::asio::this_coro::executor, std::chrono::milliseconds(100));
  co_await pause.async_wait(boost::asio::use_awaitable);
}

// Runs `f` when the scope ends, by return or by exception.
template <class F>
class on_exit {
 public:
  explicit on_exit(F f) : f_(std::move(f)) {}
  ~on_exit() { f_(); }
  on_exit(const on_exit&) = delete;
  on_exit& operator=(const on_exit&) = delete;

 private:
  F f_;
};

}  // namespace hio::detail
