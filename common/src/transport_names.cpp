// The transports' names and the choice between them: pure, no I/O (transport.cpp opens the links).
#include <hio/common/transport.hpp>

namespace hio {

std::string_view to_string(transport t) noexcept { return t == transport::ucx ? "ucx" : "tcp"; }

std::string_view to_string(transport_request t) noexcept {
  switch (t) {
    case transport_request::tcp: return "tcp";
    case transport_request::ucx: return "ucx";
    case transport_request::automatic: return "auto";
  }
  return "tcp";
}

std::optional<transport> parse_transport(std::string_view s) noexcept {
  if (s == "tcp") return transport::tcp;
  if (s == "ucx") return transport::ucx;
  return std::nullopt;
}

std::optional<transport_request> parse_transport_request(std::string_view s) noexcept {
  if (s == "tcp") return transport_request::tcp;
  if (s == "ucx") return transport_request::ucx;
  if (s == "auto") return transport_request::automatic;
  return std::nullopt;
}

std::optional<transport> choose_transport(transport_request want, bool offers_tcp, bool offers_ucx) noexcept {
  switch (want) {
    case transport_request::tcp: return offers_tcp ? std::optional(transport::tcp) : std::nullopt;
    case transport_request::ucx: return offers_ucx ? std::optional(transport::ucx) : std::nullopt;
    case transport_request::automatic:
      if (offers_ucx) return transport::ucx;
      if (offers_tcp) return transport::tcp;
      return std::nullopt;
  }
  return std::nullopt;
}

}  // namespace hio
