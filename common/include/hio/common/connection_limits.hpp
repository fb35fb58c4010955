#pragma once
// How many connections a server holds at once: at most `per_peer` from one IP address and `total` on
// its port. A pure policy, apart from the sockets: the accept loops of the HTTP server and the data
// receiver ask it before serving a connection and close the excess at once. Thread-safe.

#include <cstddef>
#include <cstdint>
#include <mutex>
#include <string>
#include <unordered_map>

namespace hio {

struct connection_limit_options {
  std::size_t per_peer = 256;  // connections from one IP address at once (0: no limit)
  std::size_t total = 1024;    // connections on one port at once (0: no limit)
};

class connection_limits {
 public:
  enum class verdict { admitted, peer_full, port_full };

  explicit connection_limits(connection_limit_options options = {}) : options_(options) {}

  // Takes a slot for a connection from `peer` (an address without port) unless a limit is reached;
  // a refusal is counted.
  verdict admit(const std::string& peer);
  // Gives back the slot admit() took for `peer`.
  void release(const std::string& peer);

  std::size_t open() const;
  std::size_t open_from(const std::string& peer) const;
  std::uint64_t refused() const;
  const connection_limit_options& options() const noexcept { return options_; }

 private:
  const connection_limit_options options_;
  mutable std::mutex mutex_;
  std::unordered_map<std::string, std::size_t> by_peer_;  // only peers with open connections
  std::size_t open_ = 0;
  std::uint64_t refused_ = 0;
};

}  // namespace hio
