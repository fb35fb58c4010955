#pragma once
// Small helpers every hio executable's main() uses, and the two ways hio starts other programs:
// spawn_process (a long-running child with a log) and run_command (a command run to its end, captured).
// (The worker's isolated processors fork their own children: worker/src/isolated_processor.cpp.)

#include <hio/common/error.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace hio {

// Blocks SIGINT and SIGTERM in the calling thread (call first in main, before any thread starts, so
// every thread inherits the mask) and returns a function-free way to wait for them: wait_for_signal().
void block_stop_signals();
// Waits until SIGINT or SIGTERM arrives; returns the signal number.
int wait_for_signal();

// A process started by `hio up` stops (SIGTERM, so it shuts down cleanly) when `hio up` dies, even by
// kill -9: `hio up` names itself in HIO_STOP_WITH_PARENT, and a process whose parent is that pid asks the
// kernel for PR_SET_PDEATHSIG. Processes started by others (workers the master provisions) are unaffected.
inline constexpr const char* stop_with_parent_env = "HIO_STOP_WITH_PARENT";
void stop_with_parent();

// Writes `port` to `path` atomically (temp file + rename), so a reader sees either nothing or the
// whole number. Tests and `hio up` wait for this file to know the server is listening.
result<void> write_port_file(const std::string& path, std::uint16_t port);

// Starts `argv` (argv[0] a path) with this process's environment and no blocked signals, its stdout and
// stderr appended to `log_path` ("" = inherited). Returns the pid, or -1 with errno set.
int spawn_process(const std::vector<std::string>& argv, const std::string& log_path = {});

// What a command run to its end did: its exit status (-1 when a signal or the timeout ended it), stdout
// and stderr.
struct command_result {
  int status = -1;
  std::string out, err;
};

// Runs `argv` to its end: argv[0] looked up on PATH, `input` written to its stdin, `extra_env`
// ("NAME=value") added to this process's environment (replacing a variable of the same name), stdout and
// stderr captured, no blocked signals. No shell reads the arguments: each reaches the program as one argv
// entry, whatever bytes it holds. Killed (SIGKILL) after `timeout`, which err then says. Error only when
// it cannot be started. Each of stdout and stderr is kept up to max_command_output bytes (the rest is
// read and dropped).
inline constexpr std::size_t max_command_output = 1 << 20;
result<command_result> run_command(const std::vector<std::string>& argv, const std::string& input,
                                   const std::vector<std::string>& extra_env, std::chrono::milliseconds timeout);

// The value of environment variable `name`, or `fallback`.
std::string env_or(const char* name, std::string fallback = {});

}  // namespace hio
