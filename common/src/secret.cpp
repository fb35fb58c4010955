#include <hio/common/secret.hpp>

#include <openssl/crypto.h>
#include <openssl/sha.h>

#include <spdlog/spdlog.h>

#include <sys/stat.h>

#include <algorithm>
#include <array>
#include <bitset>
#include <fstream>

namespace hio {
namespace {

std::array<unsigned char, SHA256_DIGEST_LENGTH> digest(std::string_view s) noexcept {
  std::array<unsigned char, SHA256_DIGEST_LENGTH> d{};
  SHA256(reinterpret_cast<const unsigned char*>(s.data()), s.size(), d.data());
  return d;
}

}  // namespace

bool same_secret(std::string_view presented, std::string_view expected) noexcept {
  const auto a = digest(presented), b = digest(expected);
  return CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

std::string weak_secret(std::string_view secret, std::string_view what) {
  std::bitset<256> seen;
  for (unsigned char c : secret) seen.set(c);
  if (secret.size() < min_secret_length || seen.count() < 8)
    return std::string(what) + " is too weak: it needs at least " + std::to_string(min_secret_length) +
           " characters, at least 8 of them different (e.g. `openssl rand -hex 16`); got " +
           std::to_string(secret.size()) + " characters";
  return {};
}

result<std::string> read_secret(const std::string& value, const std::string& file) {
  if (file.empty()) return value;
  std::ifstream in(file);
  std::string line;
  if (!in || !std::getline(in, line)) return make_error(2, "cannot read the secret file " + file);
  const auto first = line.find_first_not_of(" \t\r");
  const auto last = line.find_last_not_of(" \t\r");
  if (first == std::string::npos) return make_error(2, "the secret file " + file + " is empty");
  return line.substr(first, last - first + 1);
}

result<std::string> daemon_secret(const std::string& value, const std::string& file, bool required,
                                  std::string_view what) {
  auto secret = read_secret(value, file);
  if (!secret) return secret.error();
  if (secret->empty()) {
    if (!required) return secret;
    return make_error(2, "no " + std::string(what) + ": set $HIO_SECRET or pass --secret-file (`hio up` makes one)");
  }
  if (auto why = weak_secret(*secret, what); !why.empty()) return make_error(2, why);
  return secret;
}

void warn_secrets_in_argv(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    const std::string_view a(argv[i]);
    for (std::string_view flag : {"--secret", "--source-token", "--token"}) {
      if (a == flag || (a.starts_with(flag) && a.size() > flag.size() && a[flag.size()] == '=')) {
        spdlog::warn("{} on the command line can be read by every user of this machine (ps); prefer the "
                     "environment or --secret-file",
                     flag);
      }
    }
  }
}

void private_files() noexcept { ::umask(077); }

std::optional<std::string> start_daemon(int argc, char** argv, const std::string& value, const std::string& file) {
  private_files();
  warn_secrets_in_argv(argc, argv);
  auto secret = daemon_secret(value, file, true, "cluster secret");
  if (!secret) {
    spdlog::error("{}", secret.error().message);
    return std::nullopt;
  }
  return *secret;
}

}  // namespace hio
