#include <hio/worker/isolated_processor.hpp>

#include <hio/common/log.hpp>
#include <hio/common/wire.hpp>
#include <hio/worker/processor_protocol.hpp>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <string_view>
#include <thread>
#include <utility>

#include <fcntl.h>
#include <poll.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

extern char** environ;

namespace hio::worker {
namespace {

std::string errno_text(int e) { return std::strerror(e); }

}  // namespace

namespace detail {

// A child process with pipes to its stdin, stdout and stderr (non-blocking on this side), in a process
// group of its own, killed with SIGKILL when the thread that started it ends (PR_SET_PDEATHSIG). Owns
// the pipes; the destructor kills the group and reaps the child if that was not done. Not thread-safe.
class child_process {
 public:
  // Error when a pipe cannot be made, fork fails or the child cannot exec (the message has the reason).
  static result<std::unique_ptr<child_process>> spawn(const std::string& path, const std::vector<std::string>& argv,
                                                      const std::vector<std::string>& env);
  ~child_process() {
    close_fd(in_);
    close_fd(out_);
    close_fd(err_);
    if (!reaped_) kill_and_reap();
  }
  child_process(const child_process&) = delete;
  child_process& operator=(const child_process&) = delete;

  pid_t pid() const noexcept { return pid_; }
  int in() const noexcept { return in_; }
  int out() const noexcept { return out_; }
  int err() const noexcept { return err_; }
  void close_in() { close_fd(in_); }
  void close_err() { close_fd(err_); }

  // The wait status when the child has exited (reaping it), nullopt while it runs.
  std::optional<int> try_reap() {
    if (reaped_) return status_;
    int st = 0;
    const pid_t r = waitpid(pid_, &st, WNOHANG);
    if (r == pid_ || (r < 0 && errno == ECHILD)) {
      reaped_ = true;
      status_ = r == pid_ ? st : 0;
      return status_;
    }
    return std::nullopt;
  }
  // Waits up to `grace` for the child to exit, then kills it. The wait status and whether it was killed.
  std::pair<int, bool> wait_or_kill(std::chrono::milliseconds grace) {
    const auto deadline = std::chrono::steady_clock::now() + grace;
    for (;;) {
      if (auto st = try_reap()) return {*st, false};
      if (std::chrono::steady_clock::now() >= deadline) return {kill_and_reap(), true};
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
  }
  // SIGKILL to the child's process group (and the child, should it have left the group), then reaps it.
  int kill_and_reap() {
    if (reaped_) return status_;
    ::kill(-pid_, SIGKILL);
    ::kill(pid_, SIGKILL);
    int st = 0;
    pid_t r = 0;
    do {
      r = waitpid(pid_, &st, 0);
    } while (r < 0 && errno == EINTR);
    reaped_ = true;
    status_ = r == pid_ ? st : 0;
    return status_;
  }

 private:
  child_process() = default;
  static void close_fd(int& fd) {
    if (fd >= 0) ::close(fd);
    fd = -1;
  }

  pid_t pid_ = -1;
  int in_ = -1;   // write end of the child's stdin
  int out_ = -1;  // read end of its stdout
  int err_ = -1;  // read end of its stderr
  bool reaped_ = false;
  int status_ = 0;
};

namespace {

// Closes both ends unless released.
struct pipe_pair {
  int fd[2] = {-1, -1};
  ~pipe_pair() {
    for (int f : fd) {
      if (f >= 0) ::close(f);
    }
  }
  int release(int i) { return std::exchange(fd[i], -1); }
};

// In the child after fork: only async-signal-safe calls until execve.
[[noreturn]] void exec_child(int in_r, int out_w, int err_w, int report_w, pid_t parent, const char* path,
                             char* const* argv, char* const* envp) {
  setpgid(0, 0);
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (getppid() != parent) _exit(127);  // the parent died before the line above
  // Move every fd out of the way of 0..3 first, then into place.
  const int a = fcntl(in_r, F_DUPFD_CLOEXEC, 10);
  const int b = fcntl(out_w, F_DUPFD_CLOEXEC, 10);
  const int c = fcntl(err_w, F_DUPFD_CLOEXEC, 10);
  const int d = fcntl(report_w, F_DUPFD_CLOEXEC, 10);
  if (a < 0 || b < 0 || c < 0 || d < 0 || dup2(a, 0) < 0 || dup2(b, 1) < 0 || dup2(c, 2) < 0 ||
      dup3(d, 3, O_CLOEXEC) < 0) {
    _exit(127);
  }
  close_range(4, ~0u, 0);
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, nullptr);
  signal(SIGPIPE, SIG_DFL);
  execve(path, argv, envp);
  const int e = errno;
  [[maybe_unused]] const auto n = write(3, &e, sizeof e);
  _exit(127);
}

}  // namespace

result<std::unique_ptr<child_process>> child_process::spawn(const std::string& path,
                                                            const std::vector<std::string>& argv,
                                                            const std::vector<std::string>& env) {
  pipe_pair in, out, err, report;
  for (auto* p : {&in, &out, &err, &report}) {
    if (pipe2(p->fd, O_CLOEXEC) != 0) return make_error(500, "cannot make a pipe: " + errno_text(errno));
  }
  // A bigger stdin pipe moves MB payloads in fewer system calls; best effort.
  fcntl(in.fd[1], F_SETPIPE_SZ, 1 << 20);
  std::vector<char*> cargv;
  for (const auto& s : argv) cargv.push_back(const_cast<char*>(s.c_str()));
  cargv.push_back(nullptr);
  std::vector<char*> cenv;
  for (const auto& s : env) cenv.push_back(const_cast<char*>(s.c_str()));
  cenv.push_back(nullptr);

  const pid_t parent = getpid();
  const pid_t pid = fork();
  if (pid < 0) return make_error(500, "cannot fork: " + errno_text(errno));
  if (pid == 0) exec_child(in.fd[0], out.fd[1], err.fd[1], report.fd[1], parent, path.c_str(), cargv.data(),
                           cenv.data());
  setpgid(pid, pid);  // also here: no race with a kill of the group before the child ran
  std::unique_ptr<child_process> c(new child_process());
  c->pid_ = pid;
  ::close(report.release(1));
  int exec_errno = 0;
  ssize_t n = 0;
  do {
    n = read(report.fd[0], &exec_errno, sizeof exec_errno);
  } while (n < 0 && errno == EINTR);
  if (n == static_cast<ssize_t>(sizeof exec_errno)) {
    c->kill_and_reap();
    return make_error(500, "cannot run " + path + ": " + errno_text(exec_errno));
  }
  c->in_ = in.release(1);
  c->out_ = out.release(0);
  c->err_ = err.release(0);
  for (int fd : {c->in_, c->out_, c->err_}) fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
  return c;
}

}  // namespace detail

namespace {

int internal() { return static_cast<int>(wire::error_code::internal); }

bool executable_file(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode) && access(path.c_str(), X_OK) == 0;
}

result<std::string> find_executable(const std::string& name) {
  if (name.find('/') != std::string::npos) {
    if (executable_file(name)) return name;
    return make_error(400, "processor command '" + name + "' is not an executable file");
  }
  const char* env_path = std::getenv("PATH");
  const std::string_view path = env_path != nullptr && *env_path != '\0' ? env_path : "/usr/local/bin:/usr/bin:/bin";
  std::size_t from = 0;
  while (from <= path.size()) {
    const std::size_t to = std::min(path.find(':', from), path.size());
    std::string dir(path.substr(from, to - from));
    if (dir.empty()) dir = ".";
    const std::string candidate = dir + "/" + name;
    if (executable_file(candidate)) return candidate;
    from = to + 1;
  }
  return make_error(400, "processor command '" + name + "' not found in PATH (" + std::string(path) + ")");
}

// The worker's environment less the cluster secret (a processor has no use for it), with `extra`
// ("NAME=value") added, replacing entries of the same name.
std::vector<std::string> child_environment(const std::vector<std::string>& extra) {
  std::vector<std::string> env;
  const auto name_of = [](std::string_view entry) { return entry.substr(0, entry.find('=')); };
  for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
    const std::string_view entry(*e);
    const bool replaced = std::any_of(extra.begin(), extra.end(),
                                      [&](const std::string& x) { return name_of(x) == name_of(entry); });
    if (!replaced && name_of(entry) != "HIO_SECRET") env.emplace_back(entry);
  }
  env.insert(env.end(), extra.begin(), extra.end());
  return env;
}

std::string describe_exit(int status) {
  if (WIFSIGNALED(status)) return "crashed (signal " + std::to_string(WTERMSIG(status)) + ")";
  if (WIFEXITED(status)) return "exited with status " + std::to_string(WEXITSTATUS(status));
  return "ended (wait status " + std::to_string(status) + ")";
}

// Blocks SIGPIPE in this thread for its lifetime, so a write to a dead child's stdin gives EPIPE instead
// of killing the worker; consumes a SIGPIPE raised meanwhile.
class sigpipe_guard {
 public:
  sigpipe_guard() {
    sigemptyset(&pipe_);
    sigaddset(&pipe_, SIGPIPE);
    sigset_t pending;
    sigpending(&pending);
    was_pending_ = sigismember(&pending, SIGPIPE) == 1;
    pthread_sigmask(SIG_BLOCK, &pipe_, &old_);
  }
  ~sigpipe_guard() {
    sigset_t pending;
    sigpending(&pending);
    if (!was_pending_ && sigismember(&pending, SIGPIPE) == 1) {
      const timespec zero{};
      sigtimedwait(&pipe_, nullptr, &zero);
    }
    pthread_sigmask(SIG_SETMASK, &old_, nullptr);
  }
  sigpipe_guard(const sigpipe_guard&) = delete;
  sigpipe_guard& operator=(const sigpipe_guard&) = delete;

 private:
  sigset_t pipe_{};
  sigset_t old_{};
  bool was_pending_ = false;
};

constexpr std::size_t read_chunk = 64 * 1024;
constexpr std::size_t max_stderr_line = 4096;

}  // namespace

struct isolated_processor::outcome {
  enum class kind { ok, failed, broken } what = kind::broken;
  std::vector<feature> features;  // ok
  std::string reason;             // failed: the processor's; broken: what went wrong
};

result<std::unique_ptr<isolated_processor>> isolated_processor::create(isolated_processor_options options) {
  if (options.argv.empty() || options.argv[0].empty()) return make_error(400, "processor command is empty");
  auto exe = find_executable(options.argv[0]);
  if (!exe) return exe.error();
  return std::unique_ptr<isolated_processor>(new isolated_processor(std::move(options), std::move(*exe)));
}

isolated_processor::isolated_processor(isolated_processor_options options, std::string executable)
    : options_(std::move(options)),
      executable_(std::move(executable)),
      environment_(child_environment(options_.env)) {}

isolated_processor::~isolated_processor() {
  if (!child_) return;
  child_->close_in();  // a well-behaved processor exits at the end of its input
  const auto [status, killed] = child_->wait_or_kill(options_.exit_grace);
  (void)status;
  if (killed) spdlog::warn("{}: pid {} did not exit when its input ended; killed", options_.label, child_->pid());
  read_stderr();
  if (!stderr_partial_.empty()) log_stderr_line(std::exchange(stderr_partial_, {}));
  child_.reset();
}

result<void> isolated_processor::start() {
  auto c = detail::child_process::spawn(executable_, options_.argv, environment_);
  if (!c) return c.error();
  child_ = std::move(*c);
  if (starts_.fetch_add(1) > 0) restarts_.fetch_add(1);
  last_stderr_line_.clear();
  stderr_partial_.clear();
  spdlog::debug("{}: started pid {} ({})", options_.label, child_->pid(), options_.name);
  return {};
}

void isolated_processor::log_stderr_line(std::string_view line) {
  while (!line.empty() && (line.back() == '\r' || line.back() == '\n')) line.remove_suffix(1);
  if (line.empty()) return;
  auto text = protocol::sanitize_text(line);
  spdlog::info("{} [pid {}]: {}", options_.label, child_ ? child_->pid() : 0, text);
  last_stderr_line_ = std::move(text);
}

void isolated_processor::read_stderr() {
  if (!child_ || child_->err() < 0) return;
  char buf[read_chunk];
  for (;;) {
    const ssize_t n = ::read(child_->err(), buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK)) child_->close_err();  // EOF or broken
      return;
    }
    std::string_view rest(buf, static_cast<std::size_t>(n));
    while (!rest.empty()) {
      const auto nl = rest.find('\n');
      if (nl == std::string_view::npos) {
        stderr_partial_.append(rest);
        if (stderr_partial_.size() >= max_stderr_line) log_stderr_line(std::exchange(stderr_partial_, {}));
        break;
      }
      stderr_partial_.append(rest.substr(0, nl));
      log_stderr_line(std::exchange(stderr_partial_, {}));
      rest.remove_prefix(nl + 1);
    }
  }
}

std::string isolated_processor::discard(bool kill_now) {
  if (!child_) return {};
  std::string how;
  if (kill_now) {
    child_->kill_and_reap();
  } else {
    const auto [status, killed] = child_->wait_or_kill(options_.exit_grace);
    how = killed ? "closed its stdin or stdout without exiting" : describe_exit(status);
  }
  read_stderr();
  if (!stderr_partial_.empty()) log_stderr_line(std::exchange(stderr_partial_, {}));
  child_.reset();
  return how;
}

isolated_processor::outcome isolated_processor::exchange(const received_tuple& t) {
  using clock = std::chrono::steady_clock;
  outcome o;
  const auto header = protocol::encode_request_header(
      {t.tuple_id, static_cast<std::uint32_t>(t.metadata.size()), t.payload.size()});
  const std::span<const std::byte> parts[3] = {
      header, std::as_bytes(std::span<const char>(t.metadata.data(), t.metadata.size())), t.payload};
  std::size_t part = 0, offset = 0;
  const auto advance = [&] {
    while (part < 3 && offset == parts[part].size()) {
      ++part;
      offset = 0;
    }
  };
  advance();
  inbox_.clear();
  std::optional<protocol::decoded_response> answer;
  const auto deadline = clock::now() + options_.timeout;
  const sigpipe_guard no_sigpipe;

  const auto broken = [&](std::string what) {
    o.what = outcome::kind::broken;
    o.reason = std::move(what);
    return o;
  };
  // The child closed its end of a pipe: it is exiting (or did); how it ended describes the failure.
  const auto died = [&] {
    o.what = outcome::kind::broken;
    o.reason = discard(/*kill_now=*/false);
    return o;
  };
  for (;;) {
    if (part == 3 && answer) {
      if (answer->response.status == protocol::status::ok) {
        o.what = outcome::kind::ok;
        o.features = std::move(answer->response.features);
      } else {
        o.what = outcome::kind::failed;
        o.reason = answer->response.error.empty() ? "processing failed" : std::move(answer->response.error);
      }
      return o;
    }
    const auto now = clock::now();
    if (now >= deadline) {
      discard(/*kill_now=*/true);
      return broken("timed out after " + std::to_string(options_.timeout.count()) + " ms");
    }
    pollfd fds[3];
    nfds_t n = 0;
    const nfds_t in_at = part < 3 ? n++ : 3;
    if (in_at < 3) fds[in_at] = {child_->in(), POLLOUT, 0};
    const nfds_t out_at = n++;
    fds[out_at] = {child_->out(), POLLIN, 0};
    const nfds_t err_at = child_->err() >= 0 ? n++ : 3;
    if (err_at < 3) fds[err_at] = {child_->err(), POLLIN, 0};
    const auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - now).count();
    const int ready = ::poll(fds, n, static_cast<int>(std::clamp<long long>(left, 1, 1000)));
    if (ready < 0) {
      if (errno == EINTR) continue;
      discard(/*kill_now=*/true);
      return broken("poll failed: " + errno_text(errno));
    }
    if (ready == 0) continue;
    if (err_at < 3 && fds[err_at].revents != 0) read_stderr();
    if (in_at < 3 && fds[in_at].revents != 0) {
      if ((fds[in_at].revents & (POLLERR | POLLHUP | POLLNVAL)) != 0) return died();
      while (part < 3) {
        const auto& p = parts[part];
        const ssize_t w = ::write(child_->in(), p.data() + offset, p.size() - offset);
        if (w < 0) {
          if (errno == EINTR) continue;
          if (errno == EAGAIN || errno == EWOULDBLOCK) break;
          return died();  // EPIPE: the child closed its stdin
        }
        offset += static_cast<std::size_t>(w);
        advance();
      }
    }
    if (fds[out_at].revents != 0) {
      bool eof = false;
      for (;;) {
        const std::size_t had = inbox_.size();
        inbox_.resize(had + read_chunk);
        const ssize_t r = ::read(child_->out(), inbox_.data() + had, read_chunk);
        inbox_.resize(had + static_cast<std::size_t>(std::max<ssize_t>(r, 0)));
        if (r < 0 && errno == EINTR) continue;
        if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
        if (r <= 0) {
          eof = true;
          break;
        }
        if (inbox_.size() > protocol::header_bytes + protocol::max_error_bytes +
                                std::size_t{protocol::max_features} * (protocol::max_feature_name_bytes + 12)) {
          break;  // the decoder below refuses it
        }
      }
      if (!answer) {
        auto decoded = protocol::decode_response(inbox_);
        if (!decoded) {
          discard(/*kill_now=*/true);
          return broken("returned garbage: " + decoded.error().message);
        }
        answer = std::move(*decoded);
        if (answer && answer->response.tuple_id != t.tuple_id) {
          discard(/*kill_now=*/true);
          return broken("returned garbage: a response for tuple " + std::to_string(answer->response.tuple_id) +
                        " to a request for tuple " + std::to_string(t.tuple_id));
        }
      }
      if (answer && inbox_.size() > answer->bytes) {
        discard(/*kill_now=*/true);
        return broken("returned garbage: " + std::to_string(inbox_.size() - answer->bytes) +
                      " bytes after its response");
      }
      if (eof) {
        if (answer && part == 3) continue;  // answered, then exited: this tuple is done
        return died();
      }
    }
  }
}

result<std::vector<feature>> isolated_processor::process(const received_tuple& t) {
  if (t.metadata.size() > protocol::max_metadata_bytes) {
    return make_error(internal(), "metadata over " + std::to_string(protocol::max_metadata_bytes) +
                                      " bytes cannot be passed to the processor");
  }
  // A child that died while idle is replaced without charging this tuple an attempt.
  if (child_) {
    if (auto st = child_->try_reap()) {
      spdlog::warn("{}: pid {} {} between tuples; restarting it", options_.label, child_->pid(), describe_exit(*st));
      discard(/*kill_now=*/false);
    }
  }
  std::vector<std::string> failures;
  const std::uint32_t attempts = options_.retries + 1;
  for (std::uint32_t attempt = 0; attempt < attempts; ++attempt) {
    if (!child_) {
      if (auto started = start(); !started) {
        failures.push_back("could not start (" + started.error().message + ")");
        spdlog::warn("{}: tuple {} attempt {}/{}: {}", options_.label, t.tuple_id, attempt + 1, attempts,
                     failures.back());
        continue;
      }
    }
    const pid_t pid = child_->pid();
    auto o = exchange(t);
    if (o.what == outcome::kind::ok) return std::move(o.features);
    if (o.what == outcome::kind::failed) return make_error(internal(), std::move(o.reason));
    spdlog::warn("{}: tuple {} attempt {}/{}: pid {} {}{}", options_.label, t.tuple_id, attempt + 1, attempts, pid,
                 o.reason, attempt + 1 < attempts ? "; restarting it" : "");
    failures.push_back(std::move(o.reason));
    if (child_) discard(/*kill_now=*/true);
  }
  const std::string times = std::to_string(failures.size()) + (failures.size() == 1 ? " time" : " times");
  std::string reason;
  if (std::all_of(failures.begin(), failures.end(), [&](const std::string& f) { return f == failures[0]; })) {
    reason = "processor " + failures[0] + " " + times;
  } else {
    reason = "processor failed " + times + ":";
    for (std::size_t i = 0; i < failures.size(); ++i) reason += (i == 0 ? " " : ", ") + failures[i];
  }
  // A process that exited by itself usually said why on stderr (a traceback's last line, a usage error).
  if (failures.back().starts_with("exited with status") && !last_stderr_line_.empty()) {
    reason += "; its last stderr line: " + protocol::sanitize_text(std::string_view(last_stderr_line_).substr(0, 300));
  }
  return make_error(internal(), std::move(reason));
}

}  // namespace hio::worker
