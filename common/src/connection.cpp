#include <hio/common/connection.hpp>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <optional>
#include <vector>

namespace hio {
namespace {

using clock_type = std::chrono::steady_clock;

result<void> io_error(std::string what) { return make_error(0, std::move(what)); }

int remaining_ms(clock_type::time_point deadline) {
  const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - clock_type::now()).count();
  return left < 0 ? 0 : static_cast<int>(std::min<long long>(left, 1 << 30));
}

// Waits until `fd` is ready for `events` or the deadline passes.
bool wait_ready(int fd, short events, clock_type::time_point deadline) {
  for (;;) {
    pollfd p{fd, events, 0};
    const int r = ::poll(&p, 1, remaining_ms(deadline));
    if (r > 0) return true;
    if (r == 0) return false;
    if (errno != EINTR) return false;
  }
}

result<void> read_exact(int fd, void* dst, std::size_t n, clock_type::time_point deadline) {
  auto* p = static_cast<char*>(dst);
  while (n > 0) {
    const ssize_t r = ::recv(fd, p, n, 0);
    if (r > 0) {
      p += r;
      n -= static_cast<std::size_t>(r);
    } else if (r == 0) {
      return io_error("connection closed by the receiver");
    } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
      if (!wait_ready(fd, POLLIN, deadline)) return io_error("timed out waiting for the receiver's answer");
    } else if (errno != EINTR) {
      return io_error(std::string("receive failed: ") + std::strerror(errno));
    }
  }
  return {};
}

}  // namespace

result<connection> connection::open(const std::string& host, std::uint16_t port, std::chrono::milliseconds timeout) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  if (const int rc = ::getaddrinfo(host.c_str(), std::to_string(port).c_str(), &hints, &res); rc != 0)
    return make_error(0, "cannot resolve " + host + ": " + ::gai_strerror(rc));
  const auto deadline = clock_type::now() + timeout;
  std::string last = "no address";
  for (addrinfo* ai = res; ai; ai = ai->ai_next) {
    const int fd = ::socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
    if (fd < 0) continue;
    int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (::connect(fd, ai->ai_addr, ai->ai_addrlen) == 0 ||
        (errno == EINPROGRESS && wait_ready(fd, POLLOUT, deadline))) {
      int err = 0;
      socklen_t len = sizeof err;
      ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
      if (err == 0) {
        ::freeaddrinfo(res);
        return connection(fd);
      }
      last = std::strerror(err);
    } else {
      last = errno == EINPROGRESS ? "timed out" : std::strerror(errno);
    }
    ::close(fd);
  }
  ::freeaddrinfo(res);
  return make_error(0, "cannot connect to " + host + ":" + std::to_string(port) + ": " + last);
}

connection::~connection() { close(); }

connection::connection(connection&& o) noexcept
    : fd_(o.fd_), inbox_(std::move(o.inbox_)), in_begin_(o.in_begin_), in_end_(o.in_end_) {
  o.fd_ = -1;
  o.in_begin_ = o.in_end_ = 0;
}

connection& connection::operator=(connection&& o) noexcept {
  if (this != &o) {
    close();
    fd_ = o.fd_;
    inbox_ = std::move(o.inbox_);
    in_begin_ = o.in_begin_;
    in_end_ = o.in_end_;
    o.fd_ = -1;
    o.in_begin_ = o.in_end_ = 0;
  }
  return *this;
}

namespace {

// Writes the vector in full, advancing it past what went out. Fails when the socket stays full for
// `timeout`, counted from the first time it is (the clock is not read while sends go straight through).
result<void> send_iov(int fd, iovec* iov, std::size_t count, std::chrono::milliseconds timeout) {
  std::optional<clock_type::time_point> deadline;
  std::size_t first = 0;
  while (first < count && iov[first].iov_len == 0) ++first;
  while (first < count) {
    msghdr msg{};
    msg.msg_iov = iov + first;
    msg.msg_iovlen = count - first;
    const ssize_t n = ::sendmsg(fd, &msg, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) {
        if (!deadline) deadline = clock_type::now() + timeout;
        if (!wait_ready(fd, POLLOUT, *deadline)) return io_error("timed out sending to the receiver");
        continue;
      }
      return io_error(std::string("send failed: ") + std::strerror(errno));
    }
    auto left = static_cast<std::size_t>(n);
    while (first < count && left >= iov[first].iov_len) {
      left -= iov[first].iov_len;
      ++first;
    }
    if (first < count) {
      iov[first].iov_base = static_cast<char*>(iov[first].iov_base) + left;
      iov[first].iov_len -= left;
    }
  }
  return {};
}

}  // namespace

result<void> connection::send(const wire::frame_header& h, std::string_view metadata,
                              std::span<const std::byte> payload, std::chrono::milliseconds timeout) {
  return send(h, metadata, {}, payload, timeout);
}

result<void> connection::send(const wire::frame_header& h, std::string_view metadata,
                              std::span<const std::byte> head, std::span<const std::byte> body,
                              std::chrono::milliseconds timeout) {
  if (fd_ < 0) return io_error("connection is closed");
  wire::frame_header framed = h;
  framed.metadata_length = static_cast<std::uint32_t>(metadata.size());
  framed.payload_length = head.size() + body.size();
  const auto header = wire::encode(framed);
  iovec iov[4] = {{const_cast<std::byte*>(header.data()), header.size()},
                  {const_cast<char*>(metadata.data()), metadata.size()},
                  {const_cast<std::byte*>(head.data()), head.size()},
                  {const_cast<std::byte*>(body.data()), body.size()}};
  return send_iov(fd_, iov, 4, timeout);
}

result<void> connection::send_batch(std::span<const outgoing_frame> frames, std::chrono::milliseconds timeout) {
  if (fd_ < 0) return io_error("connection is closed");
  constexpr std::size_t per_call = 340;  // 3 iovecs a frame, under IOV_MAX (1024)
  std::vector<wire::header_bytes> headers(std::min(frames.size(), per_call));
  std::vector<iovec> iov(3 * headers.size());
  for (std::size_t at = 0; at < frames.size(); at += per_call) {
    const std::size_t n = std::min(per_call, frames.size() - at);
    for (std::size_t i = 0; i < n; ++i) {
      const auto& f = frames[at + i];
      wire::frame_header framed = f.header;
      framed.metadata_length = static_cast<std::uint32_t>(f.metadata.size());
      framed.payload_length = f.payload.size();
      headers[i] = wire::encode(framed);
      iov[3 * i] = {headers[i].data(), headers[i].size()};
      iov[3 * i + 1] = {const_cast<char*>(f.metadata.data()), f.metadata.size()};
      iov[3 * i + 2] = {const_cast<std::byte*>(f.payload.data()), f.payload.size()};
    }
    if (auto r = send_iov(fd_, iov.data(), 3 * n, timeout); !r) return r;
  }
  return {};
}

result<void> connection::send_end(std::chrono::milliseconds timeout) {
  return send(wire::make_end(), {}, {}, timeout);
}

result<void> connection::fill(std::size_t n, clock_type::time_point deadline) {
  if (!inbox_) inbox_ = std::make_unique_for_overwrite<std::byte[]>(inbox_capacity);
  if (in_begin_ + n > inbox_capacity) {
    std::memmove(inbox_.get(), inbox_.get() + in_begin_, in_end_ - in_begin_);
    in_end_ -= in_begin_;
    in_begin_ = 0;
  }
  while (in_end_ - in_begin_ < n) {
    const ssize_t r = ::recv(fd_, inbox_.get() + in_end_, inbox_capacity - in_end_, 0);
    if (r > 0) {
      in_end_ += static_cast<std::size_t>(r);
    } else if (r == 0) {
      return io_error("connection closed by the receiver");
    } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
      if (!wait_ready(fd_, POLLIN, deadline)) return io_error("timed out waiting for the receiver's answer");
    } else if (errno != EINTR) {
      return io_error(std::string("receive failed: ") + std::strerror(errno));
    }
  }
  return {};
}

result<answer> connection::receive(std::chrono::milliseconds timeout) {
  if (fd_ < 0) return make_error(0, "connection is closed");
  const auto deadline = clock_type::now() + timeout;
  if (auto r = fill(wire::header_size, deadline); !r) return r.error();
  auto h = wire::decode(std::span<const std::byte, wire::header_size>(inbox_.get() + in_begin_, wire::header_size),
                        1 << 20);
  in_begin_ += wire::header_size;
  if (!h) return make_error(0, "malformed answer from the receiver: " + h.error().message);
  if (h->type == wire::frame_type::data) return make_error(0, "receiver answered with a DATA frame");
  if (h->metadata_length != 0) return make_error(0, "malformed answer from the receiver: metadata on an answer");
  answer a{*h, {}};
  const auto text = static_cast<std::size_t>(h->payload_length);
  if (text <= inbox_capacity) {
    if (auto r = fill(text, deadline); !r) return r.error();
    a.text.assign(reinterpret_cast<const char*>(inbox_.get() + in_begin_), text);
    in_begin_ += text;
  } else {
    // A long message: what is read ahead, then the rest straight into it.
    a.text.resize(text);
    const std::size_t have = in_end_ - in_begin_;
    std::memcpy(a.text.data(), inbox_.get() + in_begin_, have);
    in_begin_ = in_end_ = 0;
    if (auto r = read_exact(fd_, a.text.data() + have, text - have, deadline); !r) return r.error();
  }
  return a;
}

void connection::shutdown_write() noexcept {
  if (fd_ >= 0) ::shutdown(fd_, SHUT_WR);
}

void connection::close() noexcept {
  if (fd_ >= 0) {
    ::close(fd_);
    fd_ = -1;
  }
}

}  // namespace hio
