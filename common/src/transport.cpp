#include <hio/common/transport.hpp>

#include "ucx_detail.hpp"

namespace hio {
namespace {

// TCP: the blocking connection, as a data_link.
class tcp_link final : public data_link {
 public:
  explicit tcp_link(connection c) : conn_(std::move(c)) {}
  result<void> send(const wire::frame_header& h, std::string_view metadata, payload_parts payload,
                    std::chrono::milliseconds timeout) override {
    return conn_.send(h, metadata, payload.head, payload.body, timeout);
  }
  result<void> send_end(std::chrono::milliseconds timeout) override { return conn_.send_end(timeout); }
  result<answer> receive(std::chrono::milliseconds timeout) override { return conn_.receive(timeout); }
  void shutdown_write() noexcept override { conn_.shutdown_write(); }
  transport kind() const noexcept override { return transport::tcp; }

 private:
  connection conn_;
};

}  // namespace

result<std::unique_ptr<data_link>> open_link(transport t, const std::string& host, std::uint16_t port,
                                             std::chrono::milliseconds timeout, std::string_view ucx_address) {
  if (t == transport::ucx) return detail::open_ucx_link(host, port, ucx_address, timeout);
  auto c = connection::open(host, port, timeout);
  if (!c) return c.error();
  return std::unique_ptr<data_link>(std::make_unique<tcp_link>(std::move(*c)));
}

}  // namespace hio
