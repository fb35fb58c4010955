#pragma once
// The cluster secret and the source token: how they are read, checked for strength and compared.
// docs/security.md says where each one is needed.

#include <hio/common/error.hpp>

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace hio {

// Constant-time equality of a presented secret with the expected one: the time depends neither on the
// contents nor on where they differ, nor on the expected length (both are hashed with SHA-256 and the
// digests compared with CRYPTO_memcmp).
bool same_secret(std::string_view presented, std::string_view expected) noexcept;

// At least 32 characters (128 random bits as hex: `openssl rand -hex 16`) of at least 8 distinct ones.
inline constexpr std::size_t min_secret_length = 32;
// Why `secret` is too weak to guard a cluster ("" when it is strong enough); `what` names it in the text.
std::string weak_secret(std::string_view secret, std::string_view what);

// The secret a daemon runs with: the first line of `file` when given (spaces and a trailing newline
// trimmed), else `value` (from --secret or the environment). Error (code 2, the message names the file)
// when the file cannot be read or is empty.
result<std::string> read_secret(const std::string& value, const std::string& file);

// What a daemon's main does with its secret after parsing its options: read it from `file` when given
// (read_secret), refuse it when empty and `required`, or when weak (weak_secret). The error (code 2)
// holds the message to print before exiting with status 2.
result<std::string> daemon_secret(const std::string& value, const std::string& file, bool required,
                                  std::string_view what);

// What every daemon's main does once its options are parsed: private_files(), warn_secrets_in_argv(), and
// the cluster secret by daemon_secret(value, file, true, "cluster secret"). nullopt when there is none
// fit to use (the reason is logged): the daemon exits with status 2.
std::optional<std::string> start_daemon(int argc, char** argv, const std::string& value, const std::string& file);

// Logs a warning when argv carries a secret (`--secret`, `--source-token`, `--token`): every user of the
// machine can read it with ps. The environment or a file (--secret-file) keep it private.
void warn_secrets_in_argv(int argc, char** argv);

// New files and directories of this process are private to its user (umask 077: 0600 and 0700): the
// data, queue, logs and secrets hio writes.
void private_files() noexcept;

}  // namespace hio
