#pragma once
// A blocking data-path connection for senders (the connector, the master's queue dispatcher): writes DATA
// frames straight from the caller's buffers (one sendmsg, no copy; send_batch gathers many frames into
// one) and reads the receiver's answers, many per recv. One writer thread and one reader thread may use
// it at the same time; not otherwise thread-safe.

#include <hio/common/error.hpp>
#include <hio/common/wire.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>

namespace hio {

// One frame for send_batch; the views must stay valid until it returns.
struct outgoing_frame {
  wire::frame_header header;
  std::string_view metadata;
  std::span<const std::byte> payload;
};

struct answer {
  wire::frame_header header;  // ACK, ERROR or END
  std::string text;           // an ACK's failure reason or an ERROR's message
};

class connection {
 public:
  // Connects with TCP_NODELAY (socket buffers stay auto-tuned). Error (code 0) when the peer cannot be
  // reached. shutdown_write() may be called from the reader thread while a writer sends.
  static result<connection> open(const std::string& host, std::uint16_t port,
                                 std::chrono::milliseconds timeout = std::chrono::seconds(5));
  connection() = default;
  ~connection();
  connection(connection&& o) noexcept;
  connection& operator=(connection&& o) noexcept;

  bool is_open() const noexcept { return fd_ >= 0; }

  // Sends header, metadata and payload (the payload as it travels: compressed when the header says so).
  // The header's metadata_length and payload_length are set from the spans given.
  // Error (code 0) when the peer is gone or the write stalls (the socket stays full) past `timeout`.
  result<void> send(const wire::frame_header& h, std::string_view metadata,
                    std::span<const std::byte> payload,
                    std::chrono::milliseconds timeout = std::chrono::seconds(30));
  // The same with the payload in two pieces, `head` then `body`, written by one sendmsg.
  result<void> send(const wire::frame_header& h, std::string_view metadata, std::span<const std::byte> head,
                    std::span<const std::byte> body, std::chrono::milliseconds timeout);
  // Sends the frames in order with as few sendmsg calls as the kernel allows (up to ~340 frames per
  // call); each header's lengths are set from its spans. Errors as send(); on error an unknown prefix of
  // the frames went out.
  result<void> send_batch(std::span<const outgoing_frame> frames,
                          std::chrono::milliseconds timeout = std::chrono::seconds(30));
  result<void> send_end(std::chrono::milliseconds timeout = std::chrono::seconds(5));

  // Reads the next answer. Error (code 0) on timeout, a closed connection or a malformed frame.
  result<answer> receive(std::chrono::milliseconds timeout = std::chrono::seconds(60));

  void shutdown_write() noexcept;
  void close() noexcept;

 private:
  explicit connection(int fd) : fd_(fd) {}
  // Reads until the inbox holds `n` (<= inbox_capacity) bytes, as many more as are there already.
  result<void> fill(std::size_t n, std::chrono::steady_clock::time_point deadline);

  static constexpr std::size_t inbox_capacity = 16 * 1024;
  int fd_ = -1;
  std::unique_ptr<std::byte[]> inbox_;  // answers read ahead; reader thread only
  std::size_t in_begin_ = 0, in_end_ = 0;
};

}  // namespace hio
