#pragma once
// The receiving end of the data path over UCX (UCP active messages), for worker channels: a UCP listener
// on host:port whose connections speak the same frame protocol as the TCP receiver (docs/protocol.md,
// "Transports"): the lease token is checked before any payload is taken, large payloads arrive by
// rendezvous straight into one reused, UCX-registered buffer that the handler reads, and each tuple
// is answered with one ACK after the handler's flush.
//
// Runs on the io_context the caller gives it: UCX's wakeup file descriptor is waited on there and every
// UCX call and handler call happens on that io_context's thread (it must be single-threaded). This header
// does not include UCX's; in a build without UCX start() fails with a message saying so.

#include <hio/common/error.hpp>
#include <hio/common/receiver.hpp>

#include <boost/asio/io_context.hpp>

#include <cstdint>
#include <memory>
#include <string>

namespace hio {

// Thread-safety: start, port and counters from any thread; stop from any thread.
class ucx_receiver {
 public:
  // Error when UCX cannot start (no usable transport, see UCX_TLS) or the address cannot be bound.
  static result<std::unique_ptr<ucx_receiver>> start(boost::asio::io_context& io, receiver_options options,
                                                     tuple_handler& handler);
  ~ucx_receiver();
  std::uint16_t port() const noexcept;
  // The receiver's UCP worker address as hex: sources that have it connect by address (see open_link).
  std::string address() const;
  receiver_counters counters() const;
  // Stops listening and closes every endpoint (sessions end unclean). Must be followed by running the
  // io_context or destroying the receiver; the destructor releases UCX resources.
  void stop();

  struct impl;

 private:
  explicit ucx_receiver(std::shared_ptr<impl> p);
  std::shared_ptr<impl> impl_;
};

}  // namespace hio
