#include <hio/common/id_generator.hpp>

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <string>

namespace hio {

namespace fs = std::filesystem;

result<std::unique_ptr<id_generator>> id_generator::open(const fs::path& file, std::uint64_t block) {
  std::uint64_t next = 1;
  if (fs::exists(file)) {
    std::ifstream in(file);
    if (!(in >> next))
      return make_error(500, "id state file " + file.string() + " is unreadable; refusing to reuse ids");
  }
  std::unique_ptr<id_generator> g(new id_generator(file, next, block));
  if (auto r = g->reserve(next + block); !r) return r.error();
  return g;
}

id_generator::id_generator(fs::path file, std::uint64_t next, std::uint64_t block)
    : file_(std::move(file)), next_(next), reserved_(next), block_(block) {}

result<void> id_generator::reserve(std::uint64_t up_to) {
  // Write-to-temp, fsync, rename, fsync the directory: the reservation survives a crash at any point.
  const fs::path tmp = file_.string() + ".tmp";
  const std::string text = std::to_string(up_to) + "\n";
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return make_error(500, "cannot write " + tmp.string() + ": " + std::strerror(errno));
  const bool ok = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size()) && ::fsync(fd) == 0;
  ::close(fd);
  if (!ok) return make_error(500, "cannot persist id reservation to " + tmp.string());
  std::error_code ec;
  fs::rename(tmp, file_, ec);
  if (ec) return make_error(500, "cannot rename " + tmp.string() + ": " + ec.message());
  if (const int dfd = ::open(file_.parent_path().empty() ? "." : file_.parent_path().c_str(), O_RDONLY | O_CLOEXEC);
      dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
  reserved_ = up_to;
  return {};
}

result<std::uint64_t> id_generator::next(std::uint64_t n) {
  std::lock_guard lock(mutex_);
  if (next_ + n > reserved_)
    if (auto r = reserve(next_ + n + block_); !r) return r.error();
  const std::uint64_t first = next_;
  next_ += n;
  return first;
}

std::uint64_t id_generator::peek() const {
  std::lock_guard lock(mutex_);
  return next_;
}

}  // namespace hio
