#pragma once
// Internal to common: the UCX pieces the transport-neutral code calls (ucx_link.cpp, or ucx_stub.cpp in
// a build without UCX).

#include <hio/common/transport.hpp>

namespace hio::detail {

// Active message ids of the data path over UCX.
inline constexpr unsigned ucx_am_data = 1;    // source -> receiver: header = frame (+ sequence), data = metadata + payload
inline constexpr unsigned ucx_am_answer = 2;  // receiver -> source: header = sequence, data = answer frames
inline constexpr unsigned ucx_am_hello = 3;   // source -> receiver, by worker address: header = connection id

// `address_hex`: the receiver's UCP worker address (hex, from the lease); empty: its listener on host:port.
result<std::unique_ptr<data_link>> open_ucx_link(const std::string& host, std::uint16_t port,
                                                 std::string_view address_hex, std::chrono::milliseconds timeout);

}  // namespace hio::detail
