#pragma once
// The data-path transports and the sender's side of a data connection behind one interface. A source
// asks the master for a lease on a transport ("tcp", "ucx", or "auto": UCX when the channel offers it),
// the lease names the one to use, and open_link() connects with it. The frame protocol is the same on
// every transport (docs/protocol.md, "Transports").

#include <hio/common/connection.hpp>
#include <hio/common/error.hpp>
#include <hio/common/wire.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace hio {

enum class transport { tcp, ucx };

// What a source asks for: one transport, or auto (UCX where the channel offers it, TCP elsewhere).
enum class transport_request { tcp, ucx, automatic };

std::string_view to_string(transport t) noexcept;
std::string_view to_string(transport_request t) noexcept;
// "tcp" | "ucx"; nullopt otherwise.
std::optional<transport> parse_transport(std::string_view s) noexcept;
// "tcp" | "ucx" | "auto"; nullopt otherwise.
std::optional<transport_request> parse_transport_request(std::string_view s) noexcept;

// The transport a lease uses on a channel offering `tcp`/`ucx`, for a source asking `want`; nullopt when
// the channel does not offer what the source requires. Pure.
std::optional<transport> choose_transport(transport_request want, bool offers_tcp, bool offers_ucx) noexcept;

// True when this build has the UCX transport (HIO_WITH_UCX).
bool ucx_compiled_in() noexcept;

// A DATA frame's payload in two pieces that travel as one payload of head.size() + body.size() bytes: the
// connector puts a header it wrote (a NumPy array's .npy header) in front of the caller's own memory
// without copying that memory. Most payloads are one piece, the body.
struct payload_parts {
  std::span<const std::byte> head;
  std::span<const std::byte> body;
  payload_parts() = default;
  payload_parts(std::span<const std::byte> b) noexcept : body(b) {}  // NOLINT: one piece converts implicitly
  payload_parts(const std::vector<std::byte>& b) noexcept : body(b) {}  // NOLINT: as above
  payload_parts(std::span<const std::byte> h, std::span<const std::byte> b) noexcept : head(h), body(b) {}
  std::size_t size() const noexcept { return head.size() + body.size(); }
  // Both pieces in one buffer, for what takes one (zstd's one-shot call, a UCX rendezvous).
  std::vector<std::byte> joined() const {
    std::vector<std::byte> out;
    out.reserve(size());
    out.insert(out.end(), head.begin(), head.end());
    out.insert(out.end(), body.begin(), body.end());
    return out;
  }
};

// The sender's end of one data-path session. One writer thread (send, send_end) and one reader thread
// (receive, shutdown_write) may use it at the same time; not otherwise thread-safe.
class data_link {
 public:
  virtual ~data_link() = default;
  // Sends one DATA frame (header lengths are set from the spans). The call may return while the bytes
  // are still in flight (UCX pipelines sends): metadata and payload must stay unchanged until the frame's
  // ACK has been received, or until shutdown_write() has returned or the link is gone. Error (code 0)
  // when the peer is gone or the send stalls past `timeout`. A two-piece payload goes without a copy over
  // TCP; over UCX it is joined into one buffer first (UCX 1.13 moves a vectored rendezvous in 8 KiB
  // copies, far slower than one memcpy).
  virtual result<void> send(const wire::frame_header& h, std::string_view metadata, payload_parts payload,
                            std::chrono::milliseconds timeout) = 0;
  virtual result<void> send_end(std::chrono::milliseconds timeout) = 0;
  // The next ACK, ERROR or END; an ACK or END only once the sends it covers have completed. Error
  // (code 0) on timeout, a lost connection or a malformed frame.
  virtual result<answer> receive(std::chrono::milliseconds timeout) = 0;
  // Gives up on the session: a blocked send and receive fail soon, the receiver sees the session end;
  // sends still in flight are cancelled and complete before it returns.
  virtual void shutdown_write() noexcept = 0;
  virtual transport kind() const noexcept = 0;
};

// Connects to a receiver on `host:port` with transport `t`; over UCX to the receiver's UCP worker address
// instead when the lease gives one (`ucx_address`, hex), which lets UCX use shared memory on one host.
// Error (code 0) when the peer cannot be reached, or when `t` is ucx in a build without UCX (the message
// says so).
result<std::unique_ptr<data_link>> open_link(transport t, const std::string& host, std::uint16_t port,
                                             std::chrono::milliseconds timeout, std::string_view ucx_address = {});

}  // namespace hio
