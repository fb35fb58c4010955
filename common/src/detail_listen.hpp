#pragma once
// Opens, binds and listens an acceptor: shared by the HTTP server and the data-path receiver.

#include <hio/common/connection_limits.hpp>
#include <hio/common/error.hpp>

#include <boost/asio/ip/tcp.hpp>

#include <cstdint>
#include <string>

namespace hio::detail {

// The bound port, or an error saying which address could not be used and why.
inline result<std::uint16_t> listen(boost::asio::ip::tcp::acceptor& acceptor, const std::string& host,
                                    std::uint16_t port) {
  namespace asio = boost::asio;
  boost::system::error_code ec;
  const auto address = asio::ip::make_address(host, ec);
  if (ec) return make_error(0, "invalid listen address '" + host + "'");
  const asio::ip::tcp::endpoint ep(address, port);
  acceptor.open(ep.protocol(), ec);
  if (!ec) acceptor.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) acceptor.bind(ep, ec);
  if (!ec) acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) return make_error(0, "cannot listen on " + host + ":" + std::to_string(port) + ": " + ec.message());
  return acceptor.local_endpoint().port();
}

// Why a connection was closed at accept, for the log line.
inline std::string refusal_reason(connection_limits::verdict v, const connection_limit_options& o) {
  if (v == connection_limits::verdict::peer_full)
    return "that address holds " + std::to_string(o.per_peer) + " connections already (the per-peer limit)";
  return "the port holds " + std::to_string(o.total) + " connections already (its limit)";
}

}  // namespace hio::detail
