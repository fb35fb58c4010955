#pragma once
// Small helpers every hio executable's main() uses.

#include <hio/common/error.hpp>

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

// The value of environment variable `name`, or `fallback`.
std::string env_or(const char* name, std::string fallback = {});

}  // namespace hio
