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

connection::connection(connection&& o) noexcept : fd_(o.fd_) { o.fd_ = -1; }

connection& connection::operator=(connection&& o) noexcept {
  if (this != &o) {
    close();
    fd_ = o.fd_;
    o.fd_ = -1;
  }
  return *this;
}

result<void> connection::send(const wire::frame_header& h, std::string_view metadata,
                              std::span<const std::byte> payload, std::chrono::milliseconds timeout) {
  if (fd_ < 0) return io_error("connection is closed");
  wire::frame_header framed = h;
  framed.metadata_length = static_cast<std::uint32_t>(metadata.size());
  framed.payload_length = payload.size();
  const auto header = wire::encode(framed);
  iovec iov[3] = {{const_cast<std::byte*>(header.data()), header.size()},
                  {const_cast<char*>(metadata.data()), metadata.size()},
                  {const_cast<std::byte*>(payload.data()), payload.size()}};
  int first = 0;
  const auto deadline = clock_type::now() + timeout;
  while (first < 3) {
    msghdr msg{};
    msg.msg_iov = iov + first;
    msg.msg_iovlen = static_cast<std::size_t>(3 - first);
    const ssize_t n = ::sendmsg(fd_, &msg, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) {
        if (!wait_ready(fd_, POLLOUT, deadline)) return io_error("timed out sending to the receiver");
        continue;
      }
      return io_error(std::string("send failed: ") + std::strerror(errno));
    }
    auto left = static_cast<std::size_t>(n);
    while (first < 3 && left >= iov[first].iov_len) {
      left -= iov[first].iov_len;
      ++first;
    }
    if (first < 3) {
      iov[first].iov_base = static_cast<char*>(iov[first].iov_base) + left;
      iov[first].iov_len -= left;
    }
  }
  return {};
}

result<void> connection::send_end(std::chrono::milliseconds timeout) {
  return send(wire::make_end(), {}, {}, timeout);
}

result<answer> connection::receive(std::chrono::milliseconds timeout) {
  if (fd_ < 0) return make_error(0, "connection is closed");
  const auto deadline = clock_type::now() + timeout;
  wire::header_bytes raw;
  if (auto r = read_exact(fd_, raw.data(), raw.size(), deadline); !r) return r.error();
  auto h = wire::decode(raw, 1 << 20);
  if (!h) return make_error(0, "malformed answer from the receiver: " + h.error().message);
  if (h->type == wire::frame_type::data) return make_error(0, "receiver answered with a DATA frame");
  if (h->metadata_length != 0) return make_error(0, "malformed answer from the receiver: metadata on an answer");
  answer a{*h, {}};
  a.text.resize(h->payload_length);
  if (auto r = read_exact(fd_, a.text.data(), a.text.size(), deadline); !r) return r.error();
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
