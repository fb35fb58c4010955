#pragma once
// How common's servers start their coroutines: every co_spawn ends in `reported(...)`, which logs an
// exception that escaped the coroutine instead of dropping it (asio::detached would), and connection
// coroutines release what they hold through an `on_exit` guard, so an exception cannot leave a socket
// open or a channel's session begun.

#include <hio/common/log.hpp>

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
