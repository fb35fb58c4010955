#pragma once
// A processor that runs out of process: a persistent child process, started on the first tuple and reused
// for every later one, speaking the processor protocol (processor_protocol.hpp) over its stdin and stdout.
// Serves both `exec:COMMAND` (the command is the child) and `plugin:PATH` (the child is hio-plugin-host,
// which loads the plugin), so one isolation mechanism covers both.
//
// Supervision: each exchange has a deadline. A child that dies (crash, exit), misses the deadline (killed
// with SIGKILL, with its whole process group) or writes something that is not a valid response to the
// tuple (killed) is reaped and restarted, and the tuple is retried; after 1 + retries attempts the tuple
// fails with a reason such as "processor crashed (signal 11) 3 times". A response with status failed is
// the processor's verdict on the tuple: it fails at once, without a restart. The child's stderr is copied
// into the log line by line, and its last line is quoted in failure reasons.
//
// Ownership and threads: owns the child process and its pipes; the destructor closes the child's stdin,
// waits up to exit_grace for it to exit, then kills it, and always reaps it. process() and name() from
// one thread at a time (the channel's); starts() and restarts() from any thread. Never throws.

#include <hio/common/error.hpp>
#include <hio/worker/processor.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace hio::worker {

struct isolated_processor_options {
  std::vector<std::string> argv;               // the child's command: argv[0] a path, or a name found in PATH
  std::vector<std::string> env;                // "NAME=value" added to (or replacing in) the worker's environment
  std::string name;                            // what name() reports, e.g. the spec "exec:python3 x.py"
  std::string label = "processor";             // prefix of the child's log lines, e.g. "channel 2 processor"
  std::chrono::milliseconds timeout{15000};    // for one tuple: request written and response read
  std::uint32_t retries = 2;                   // further attempts after a crash, a timeout or garbage
  std::chrono::milliseconds exit_grace{1000};  // how long a child that closed its output may take to exit
};

namespace detail {
class child_process;
}

class isolated_processor final : public processor {
 public:
  // Error (code 400) when argv is empty or argv[0] is not an executable file (looked up in PATH when it
  // has no '/'). Starts nothing yet.
  static result<std::unique_ptr<isolated_processor>> create(isolated_processor_options options);
  ~isolated_processor() override;
  isolated_processor(const isolated_processor&) = delete;
  isolated_processor& operator=(const isolated_processor&) = delete;

  // The features of the tuple, or an error whose message is the reason stored with the failed tuple.
  result<std::vector<feature>> process(const received_tuple& t) override;
  std::string name() const override { return options_.name; }
  std::uint64_t restarts() const noexcept override { return restarts_.load(); }
  // Child processes started so far (1 for a healthy processor that has seen a tuple).
  std::uint64_t starts() const noexcept { return starts_.load(); }

 private:
  struct outcome;
  isolated_processor(isolated_processor_options options, std::string executable);
  result<void> start();
  outcome exchange(const received_tuple& t);
  // Kills (when still running) and reaps the child, logs what is left of its stderr; returns how it ended.
  std::string discard(bool kill_now);
  void read_stderr();
  void log_stderr_line(std::string_view line);

  isolated_processor_options options_;
  std::string executable_;      // argv[0] resolved
  std::vector<std::string> environment_;  // the child's, "NAME=value"
  std::unique_ptr<detail::child_process> child_;
  std::vector<std::byte> inbox_;  // response bytes read so far
  std::string stderr_partial_;    // an unfinished stderr line
  std::string last_stderr_line_;  // the child's latest non-empty stderr line
  std::atomic<std::uint64_t> starts_{0};
  std::atomic<std::uint64_t> restarts_{0};
};

}  // namespace hio::worker
