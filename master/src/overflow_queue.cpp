#include <hio/common/hash.hpp>
#include <hio/common/log.hpp>
#include <hio/common/wire.hpp>
#include <hio/master/overflow_queue.hpp>

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <initializer_list>
#include <limits>
#include <cerrno>
#include <cstring>
#include <cstdlib>
#include <string_view>
#include <unordered_set>

namespace hio::master {

namespace fs = std::filesystem;

namespace {

constexpr std::uint32_t record_magic = 0x514F4948;  // "HIOQ"
constexpr std::size_t record_header = 40;           // magic, id, xxh3, meta len, payload len, header check

struct record_head {
  std::uint64_t tuple_id, xxh3;
  std::uint32_t meta_len;
  std::uint64_t payload_len;
};

std::array<std::byte, record_header> encode_head(const record_head& h) {
  std::array<std::byte, record_header> b{};
  std::memcpy(b.data(), &record_magic, 4);
  std::memcpy(b.data() + 4, &h.tuple_id, 8);
  std::memcpy(b.data() + 12, &h.xxh3, 8);
  std::memcpy(b.data() + 20, &h.meta_len, 4);
  std::memcpy(b.data() + 24, &h.payload_len, 8);
  const std::uint64_t check = xxh3_64(std::span<const std::byte>(b.data(), 32));
  std::memcpy(b.data() + 32, &check, 8);
  return b;
}

std::optional<record_head> decode_head(const std::byte* b) {
  std::uint32_t magic;
  std::uint64_t check;
  std::memcpy(&magic, b, 4);
  std::memcpy(&check, b + 32, 8);
  if (magic != record_magic || check != xxh3_64(std::span<const std::byte>(b, 32))) return std::nullopt;
  record_head h;
  std::memcpy(&h.tuple_id, b + 4, 8);
  std::memcpy(&h.xxh3, b + 12, 8);
  std::memcpy(&h.meta_len, b + 20, 4);
  std::memcpy(&h.payload_len, b + 24, 8);
  return h;
}

bool write_all(int fd, const void* data, std::size_t n) {
  auto* p = static_cast<const char*>(data);
  while (n > 0) {
    const ssize_t w = ::write(fd, p, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    p += w;
    n -= static_cast<std::size_t>(w);
  }
  return true;
}

// Writes the pieces in order with as few writev calls as the kernel takes (one, normally).
bool write_all(int fd, std::initializer_list<std::span<const std::byte>> pieces) {
  std::array<iovec, 4> iov{};
  std::size_t n = 0;
  for (const auto& p : pieces)
    if (!p.empty()) iov[n++] = {const_cast<std::byte*>(p.data()), p.size()};
  std::size_t first = 0;
  while (first < n) {
    const ssize_t w = ::writev(fd, iov.data() + first, static_cast<int>(n - first));
    if (w < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    for (auto left = static_cast<std::size_t>(w); left > 0 && first < n;) {
      const std::size_t used = std::min(left, iov[first].iov_len);
      iov[first].iov_base = static_cast<std::byte*>(iov[first].iov_base) + used;
      iov[first].iov_len -= used;
      left -= used;
      if (iov[first].iov_len == 0) ++first;
    }
  }
  return true;
}

// How a read at an offset ended: all bytes, the file ended first (the bytes are not there), or an error
// (errno set: EIO, ENOMEM, ...; the bytes may well be there).
enum class read_outcome { ok, short_file, error };

read_outcome read_at(int fd, void* data, std::size_t n, std::uint64_t offset) {
  auto* p = static_cast<char*>(data);
  while (n > 0) {
    const ssize_t r = ::pread(fd, p, n, static_cast<off_t>(offset));
    if (r == 0) return read_outcome::short_file;
    if (r < 0) {
      if (errno == EINTR) continue;
      return read_outcome::error;
    }
    p += r;
    n -= static_cast<std::size_t>(r);
    offset += static_cast<std::uint64_t>(r);
  }
  return read_outcome::ok;
}

std::string sys_error(const std::string& what) { return what + ": " + std::strerror(errno); }

}  // namespace

overflow_queue::overflow_queue(options o) : options_(std::move(o)) {}

overflow_queue::~overflow_queue() {
  if (segment_fd_ >= 0) ::close(segment_fd_);
  if (consumed_fd_ >= 0) ::close(consumed_fd_);
}

fs::path overflow_queue::segment_path(std::uint32_t n) const {
  char name[32];
  std::snprintf(name, sizeof name, "%08u.qseg", n);
  return options_.dir / name;
}

result<std::unique_ptr<overflow_queue>> overflow_queue::open(options o) {
  std::error_code ec;
  fs::create_directories(o.dir, ec);
  if (ec) return make_error(500, "cannot create queue directory " + o.dir.string() + ": " + ec.message());
  std::unique_ptr<overflow_queue> q(new overflow_queue(std::move(o)));
  if (auto r = q->replay(); !r) return r.error();
  return q;
}

result<void> overflow_queue::replay() {
  // Consumed ids first, then every segment in order; a torn record ends its segment's scan.
  std::unordered_set<std::uint64_t> consumed;
  const fs::path consumed_path = options_.dir / "consumed.log";
  if (const int fd = ::open(consumed_path.c_str(), O_RDONLY | O_CLOEXEC); fd >= 0) {
    std::uint64_t id;
    while (::read(fd, &id, sizeof id) == sizeof id) consumed.insert(id);
    ::close(fd);
  }
  std::vector<std::uint32_t> segments;
  for (const auto& e : fs::directory_iterator(options_.dir)) {
    const auto name = e.path().filename().string();
    if (e.path().extension() != ".qseg") continue;
    char* end = nullptr;
    const unsigned long n = std::strtoul(name.c_str(), &end, 10);
    if (end == name.c_str() || std::string_view(end) != ".qseg")
      return make_error(500, "unexpected file " + e.path().string() + " in the queue directory; move it away");
    segments.push_back(static_cast<std::uint32_t>(n));
  }
  std::sort(segments.begin(), segments.end());
  std::vector<std::uint64_t> still_relevant;
  for (const auto n : segments) {
    const int fd = ::open(segment_path(n).c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return make_error(500, sys_error("cannot read queue segment " + segment_path(n).string()));
    struct stat st {};
    ::fstat(fd, &st);
    const auto size = static_cast<std::uint64_t>(st.st_size);
    std::uint64_t off = 0;
    std::uint64_t live = 0;
    while (off + record_header <= size) {
      std::array<std::byte, record_header> b;
      if (read_at(fd, b.data(), b.size(), off) != read_outcome::ok) break;
      auto h = decode_head(b.data());
      if (!h || off + record_header + h->meta_len + h->payload_len > size) break;
      const std::uint64_t payload_at = off + record_header + h->meta_len;
      if (consumed.count(h->tuple_id)) {
        still_relevant.push_back(h->tuple_id);
      } else if (!segment_of_.count(h->tuple_id)) {
        entry e{h->tuple_id, h->xxh3, n, payload_at, h->payload_len, std::string(h->meta_len, '\0'), nullptr};
        (void)read_at(fd, e.metadata.data(), h->meta_len, off + record_header);
        e.seq = next_seq_++;
        segment_of_[h->tuple_id] = n;
        ++live;
        stats_.bytes += h->payload_len;
        entries_.push_back(std::move(e));
      }
      off = payload_at + h->payload_len;
    }
    ::close(fd);
    if (off < size) spdlog::warn("queue: segment {} has a torn tail of {} bytes (a crash mid-append); ignored", n, size - off);
    if (live == 0) {
      fs::remove(segment_path(n));
    } else {
      live_per_segment_[n] = live;
      on_disk_.insert(n);
    }
    segment_ = std::max(segment_, n);
  }
  stats_.length = entries_.size();
  // Rewrite the consumed log with only the ids whose records still exist.
  const fs::path tmp = options_.dir / "consumed.log.tmp";
  const int tfd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (tfd < 0) return make_error(500, sys_error("cannot write " + tmp.string()));
  std::sort(still_relevant.begin(), still_relevant.end());
  still_relevant.erase(std::unique(still_relevant.begin(), still_relevant.end()), still_relevant.end());
  const bool ok = write_all(tfd, still_relevant.data(), still_relevant.size() * 8) && ::fsync(tfd) == 0;
  ::close(tfd);
  if (!ok) return make_error(500, sys_error("cannot write " + tmp.string()));
  std::error_code ec;
  fs::rename(tmp, consumed_path, ec);
  if (ec) return make_error(500, "cannot replace " + consumed_path.string() + ": " + ec.message());
  consumed_fd_ = ::open(consumed_path.c_str(), O_WRONLY | O_APPEND | O_CLOEXEC);
  if (consumed_fd_ < 0) return make_error(500, sys_error("cannot open " + consumed_path.string()));
  if (!entries_.empty())
    spdlog::info("queue: resumed {} queued tuples ({} bytes) from {}", entries_.size(), stats_.bytes,
                 options_.dir.string());
  return open_segment(segment_ + 1);
}

result<void> overflow_queue::open_segment(std::uint32_t number) {
  if (segment_fd_ >= 0) ::close(segment_fd_);
  segment_fd_ = ::open(segment_path(number).c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (segment_fd_ < 0) return make_error(500, sys_error("cannot create queue segment " + segment_path(number).string()));
  segment_ = number;
  segment_size_ = 0;
  on_disk_.insert(number);
  if (const int dfd = ::open(options_.dir.c_str(), O_RDONLY | O_CLOEXEC); dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
  return {};
}

result<std::uint64_t> overflow_queue::append(std::uint64_t tuple_id, std::uint64_t xxh3, std::string_view metadata,
                                             std::span<const std::byte> payload) {
  std::lock_guard lock(mutex_);
  if (segment_of_.count(tuple_id)) return next_seq_ - 1;
  // The size limit holds on what is written, not only when a lease is given: sessions that began before
  // the queue filled up cannot push it past the limit (their sources retry after a pause).
  if (stats_.bytes + payload.size() > options_.max_bytes && stats_.length > 0)
    return make_error(static_cast<int>(wire::error_code::busy),
                      "the overflow queue is full (" + std::to_string(stats_.bytes) + " of " +
                          std::to_string(options_.max_bytes) + " bytes); retry later");
  if (segment_size_ >= options_.segment_bytes) {
    if (synced_seq_ < next_seq_ && ::fdatasync(segment_fd_) != 0)
      return make_error(500, sys_error("queue fdatasync failed"));
    synced_seq_ = next_seq_;
    if (auto r = open_segment(segment_ + 1); !r) return r.error();
  }
  const auto head = encode_head({tuple_id, xxh3, static_cast<std::uint32_t>(metadata.size()), payload.size()});
  if (!write_all(segment_fd_, {std::as_bytes(std::span(head)), std::as_bytes(std::span(metadata)), payload}))
    return make_error(500, sys_error("cannot append to the queue (disk full?)"));
  entry e{tuple_id, xxh3, segment_, segment_size_ + record_header + metadata.size(), payload.size(),
          std::string(metadata), nullptr};
  if (stats_.memory_bytes + payload.size() <= options_.memory_bytes) {
    e.cached = std::make_shared<const std::vector<std::byte>>(payload.begin(), payload.end());
    stats_.memory_bytes += payload.size();
  }
  segment_size_ += record_header + metadata.size() + payload.size();
  segment_of_[tuple_id] = segment_;
  ++live_per_segment_[segment_];
  e.seq = next_seq_++;
  const std::uint64_t seq = e.seq;
  entries_.push_back(std::move(e));
  ++stats_.length;
  ++stats_.enqueued_total;
  stats_.bytes += payload.size();
  return seq;
}

std::uint64_t overflow_queue::oldest_sequence() const {
  std::lock_guard lock(mutex_);
  return entries_.empty() ? std::numeric_limits<std::uint64_t>::max() : entries_.front().seq;
}

result<void> overflow_queue::sync() { return sync_through(written()); }

std::uint64_t overflow_queue::written() const {
  std::lock_guard lock(mutex_);
  return next_seq_;
}

result<void> overflow_queue::sync_through(std::uint64_t position) {
  std::unique_lock lock(mutex_);
  synced_cv_.wait(lock, [&] { return synced_seq_ >= position || !syncing_; });
  if (synced_seq_ >= position) return {};
  // A segment that rolls over meanwhile is synced by append() before it is closed; this descriptor
  // keeps the one written now open until its sync is done.
  const std::uint64_t through = next_seq_;
  const int fd = ::dup(segment_fd_);
  if (fd < 0) return make_error(500, sys_error("queue fdatasync failed"));
  syncing_ = true;
  lock.unlock();
  const bool ok = ::fdatasync(fd) == 0;
  const int saved = errno;
  ::close(fd);
  lock.lock();
  syncing_ = false;
  ++stats_.syncs;
  if (ok) synced_seq_ = std::max(synced_seq_, through);
  synced_cv_.notify_all();
  errno = saved;
  if (!ok) return make_error(500, sys_error("queue fdatasync failed"));
  return {};
}

std::vector<queued_tuple> overflow_queue::take(std::size_t max_tuples, std::uint64_t max_bytes) {
  std::lock_guard lock(mutex_);
  std::vector<queued_tuple> out;
  std::uint64_t bytes = 0;
  for (auto it = entries_.begin(); it != entries_.end() && out.size() < max_tuples;) {
    if (it->in_flight) {
      ++it;
      continue;
    }
    if (!out.empty() && bytes + it->length > max_bytes) break;
    auto payload = it->cached;
    if (!payload) {
      auto buf = std::make_shared<std::vector<std::byte>>(it->length);
      // Only bytes that are provably gone or wrong make a tuple corrupt. A failure to open or read (out of
      // descriptors or memory, an I/O error) may pass: the tuple stays queued, acknowledged as it was, and
      // this take ends here to try again on the next one.
      const int fd = ::open(segment_path(it->segment).c_str(), O_RDONLY | O_CLOEXEC);
      const int open_errno = errno;
      read_outcome got = read_outcome::error;
      if (fd >= 0) {
        got = read_at(fd, buf->data(), buf->size(), it->offset);
        const int read_errno = errno;
        ::close(fd);
        errno = read_errno;
      }
      if ((fd < 0 && open_errno != ENOENT) || (fd >= 0 && got == read_outcome::error)) {
        ++stats_.read_errors;
        if (const auto now = std::chrono::steady_clock::now(); now - last_read_warning_ >= std::chrono::seconds(1)) {
          spdlog::warn("queue: cannot read tuple {} from segment {} now ({}); it stays queued ({} such reads so far)",
                       it->tuple_id, it->segment, std::strerror(fd < 0 ? open_errno : errno), stats_.read_errors);
          last_read_warning_ = now;
        }
        break;
      }
      const bool ok = fd >= 0 && got == read_outcome::ok && xxh3_64(*buf) == it->xxh3;
      if (!ok) {
        spdlog::error("queue: tuple {} is missing or corrupt on disk (segment gone, cut short, or another XXH3); "
                      "dropped and counted as corrupt", it->tuple_id);
        ++stats_.corrupt_total;
        const std::uint64_t id = it->tuple_id;
        if (!write_all(consumed_fd_, &id, sizeof id))
          spdlog::error("queue: cannot record dropped tuple {} as consumed: {}; it reappears after a restart", id,
                        std::strerror(errno));
        stats_.bytes -= it->length;
        --stats_.length;
        if (--live_per_segment_[it->segment] == 0) live_per_segment_.erase(it->segment);
        segment_of_.erase(id);
        it = entries_.erase(it);
        continue;
      }
      payload = std::move(buf);
    }
    it->in_flight = true;
    ++stats_.in_flight;
    bytes += it->length;
    out.push_back({it->tuple_id, it->xxh3, it->metadata, std::move(payload)});
    ++it;
  }
  return out;
}

result<void> overflow_queue::complete(const std::vector<std::uint64_t>& tuple_ids) {
  std::lock_guard lock(mutex_);
  if (!write_all(consumed_fd_, tuple_ids.data(), tuple_ids.size() * sizeof(std::uint64_t)) ||
      ::fdatasync(consumed_fd_) != 0)
    return make_error(500, sys_error("cannot record consumed queue entries"));
  std::unordered_set<std::uint64_t> done(tuple_ids.begin(), tuple_ids.end());
  for (auto it = entries_.begin(); it != entries_.end() && !done.empty();) {
    if (!done.erase(it->tuple_id)) {
      ++it;
      continue;
    }
    if (it->in_flight) --stats_.in_flight;
    if (it->cached) stats_.memory_bytes -= it->length;
    stats_.bytes -= it->length;
    --stats_.length;
    ++stats_.completed_total;
    if (--live_per_segment_[it->segment] == 0) live_per_segment_.erase(it->segment);
    segment_of_.erase(it->tuple_id);
    it = entries_.erase(it);
  }
  release_segments();
  return {};
}

void overflow_queue::release_segments() {
  // Segments older than the one being written with nothing queued left in them.
  std::error_code ec;
  for (auto it = on_disk_.begin(); it != on_disk_.end();) {
    if (*it == segment_ || live_per_segment_.count(*it)) {
      ++it;
      continue;
    }
    fs::remove(segment_path(*it), ec);
    it = on_disk_.erase(it);
  }
}

void overflow_queue::give_back(const std::vector<std::uint64_t>& tuple_ids) {
  std::lock_guard lock(mutex_);
  std::unordered_set<std::uint64_t> back(tuple_ids.begin(), tuple_ids.end());
  for (auto& e : entries_)
    if (e.in_flight && back.count(e.tuple_id)) {
      e.in_flight = false;
      --stats_.in_flight;
    }
}

bool overflow_queue::empty() const {
  std::lock_guard lock(mutex_);
  return entries_.empty();
}

bool overflow_queue::has_available() const {
  std::lock_guard lock(mutex_);
  return stats_.in_flight < entries_.size();
}

bool overflow_queue::full() const {
  std::lock_guard lock(mutex_);
  return stats_.bytes >= options_.max_bytes;
}

queue_stats overflow_queue::stats() const {
  std::lock_guard lock(mutex_);
  return stats_;
}

std::size_t dispatch_share(const queue_stats& q, std::size_t free_channels, std::size_t most) {
  const std::uint64_t available = q.length > q.in_flight ? q.length - q.in_flight : 0;
  const std::uint64_t free = std::max<std::uint64_t>(1, free_channels);
  const std::uint64_t share = (available + free - 1) / free;
  return static_cast<std::size_t>(std::clamp<std::uint64_t>(share, 1, std::max<std::size_t>(1, most)));
}

}  // namespace hio::master
