#pragma once
// Logging: spdlog with one format for every hio process ("[time] [component] [level] message"), and the
// two things every line that quotes a client needs: escaping and a rate limit.

#include <spdlog/spdlog.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>

namespace hio {

// Sets the default logger's name and level ("trace", "debug", "info", "warn", "error").
void init_logging(const std::string& component, const std::string& level = "info");

// Text from outside (a client's metadata, a frame's message, a lease body, a token, a peer's error) as it
// may go into a log line: printable ASCII is kept, a backslash becomes \\ and every other byte \xNN
// (newlines and control characters, so a client cannot forge or split log lines, nor send a terminal
// escape sequence); cut after `max_bytes` of the input with "...(N more bytes)".
std::string log_escape(std::string_view text, std::size_t max_bytes = 256);

// Lets at most `per_second` lines a second through one call site, and counts the others. Pure (the
// caller passes the time) and thread-safe; one static instance per call site.
class log_limiter {
 public:
  explicit log_limiter(std::uint32_t per_second = 10) : per_second_(per_second) {}

  // Whether a line may be logged at `now`; if so, `suppressed` is set to how many were refused since the
  // last one allowed.
  bool allow(std::chrono::steady_clock::time_point now, std::uint64_t& suppressed);

 private:
  const std::uint32_t per_second_;
  std::mutex mutex_;
  std::chrono::steady_clock::time_point window_start_{};
  std::uint32_t in_window_ = 0;
  std::uint64_t suppressed_ = 0;
};

// Logs at `level` through `limiter`; a line after refused ones ends with "(K similar lines suppressed)".
// Arguments that came from a client go through log_escape() first.
template <class... Args>
void log_limited(log_limiter& limiter, spdlog::level::level_enum level, spdlog::format_string_t<Args...> format,
                 Args&&... args) {
  if (!spdlog::should_log(level)) return;
  std::uint64_t suppressed = 0;
  if (!limiter.allow(std::chrono::steady_clock::now(), suppressed)) return;
  std::string line = fmt::format(format, std::forward<Args>(args)...);
  if (suppressed != 0) line += fmt::format(" ({} similar lines suppressed)", suppressed);
  spdlog::log(level, "{}", line);
}

}  // namespace hio
