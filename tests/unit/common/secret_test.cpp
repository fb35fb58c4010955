#include <hio/common/secret.hpp>

#include <doctest/doctest.h>

#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

namespace fs = std::filesystem;

TEST_CASE("secrets compare equal only when identical, whatever their lengths") {
  const std::string s = "0123456789abcdef0123456789abcdef";
  CHECK(hio::same_secret(s, s));
  CHECK_FALSE(hio::same_secret(s + "0", s));
  CHECK_FALSE(hio::same_secret(s.substr(0, 31), s));
  CHECK_FALSE(hio::same_secret("", s));
  CHECK_FALSE(hio::same_secret(std::string(s).replace(31, 1, "0"), s));
  CHECK(hio::same_secret("", ""));
}

TEST_CASE("weak secrets are named, strong ones pass") {
  CHECK(hio::weak_secret("0123456789abcdef0123456789abcdef", "cluster secret").empty());
  const auto short_one = hio::weak_secret("integration-secret", "cluster secret");
  CHECK(short_one.find("cluster secret is too weak") == 0);
  CHECK(short_one.find("18 characters") != std::string::npos);
  CHECK_FALSE(hio::weak_secret(std::string(40, 's'), "x").empty());              // one distinct character
  CHECK_FALSE(hio::weak_secret("abababababababababababababababab", "x").empty());  // two
}

TEST_CASE("a secret is read from its file's first line, trimmed; a missing or empty file is an error") {
  const fs::path dir = fs::temp_directory_path() / ("hio-secret-" + std::to_string(::getpid()));
  fs::create_directories(dir);
  {
    std::ofstream(dir / "ok") << "  0123456789abcdef0123456789abcdef \r\nsecond line\n";
    std::ofstream(dir / "empty") << "   \n";
  }
  auto ok = hio::read_secret("from argv", (dir / "ok").string());
  REQUIRE(ok.has_value());
  CHECK(*ok == "0123456789abcdef0123456789abcdef");
  CHECK(hio::read_secret("value", "").value() == "value");
  CHECK_FALSE(hio::read_secret("", (dir / "empty").string()).has_value());
  auto missing = hio::read_secret("", (dir / "missing").string());
  REQUIRE_FALSE(missing.has_value());
  CHECK(missing.error().message.find("missing") != std::string::npos);

  CHECK(hio::daemon_secret("", "", false, "source token").value().empty());  // optional: none is fine
  auto none = hio::daemon_secret("", "", true, "cluster secret");
  REQUIRE_FALSE(none.has_value());
  CHECK(none.error().message.find("no cluster secret") == 0);
  CHECK_FALSE(hio::daemon_secret("short", "", false, "source token").has_value());  // given: must be strong
  CHECK(hio::daemon_secret("", (dir / "ok").string(), true, "cluster secret").has_value());
  fs::remove_all(dir);
}

TEST_CASE("after private_files new files are 0600 and new directories 0700") {
  const mode_t before = ::umask(022);
  hio::private_files();
  const fs::path dir = fs::temp_directory_path() / ("hio-private-" + std::to_string(::getpid()));
  fs::create_directories(dir / "sub");
  std::ofstream(dir / "sub" / "file") << "x";
  struct stat st {};
  REQUIRE(::stat((dir / "sub").c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0700);
  REQUIRE(::stat((dir / "sub" / "file").c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);
  fs::remove_all(dir);
  ::umask(before);
}
