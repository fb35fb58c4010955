// The UCX entry points of a build without UCX (HIO_WITH_UCX=OFF or libucx-dev missing): each fails with
// a message saying so, so a source or worker that requires UCX never falls back silently.
#include <hio/common/ucx_receiver.hpp>

#include "ucx_detail.hpp"

namespace hio {

namespace {
constexpr const char* not_built =
    "UCX transport not available: hio was built without UCX (install libucx-dev and rebuild with HIO_WITH_UCX=AUTO or ON)";
}

bool ucx_compiled_in() noexcept { return false; }

namespace detail {
result<std::unique_ptr<data_link>> open_ucx_link(const std::string&, std::uint16_t, std::string_view,
                                                 std::chrono::milliseconds) {
  return make_error(0, not_built);
}
}  // namespace detail

struct ucx_receiver::impl {};

result<std::unique_ptr<ucx_receiver>> ucx_receiver::start(boost::asio::io_context&, receiver_options,
                                                          tuple_handler&) {
  return make_error(0, not_built);
}
ucx_receiver::ucx_receiver(std::shared_ptr<impl> p) : impl_(std::move(p)) {}
ucx_receiver::~ucx_receiver() = default;
std::uint16_t ucx_receiver::port() const noexcept { return 0; }
std::string ucx_receiver::address() const { return {}; }
receiver_counters ucx_receiver::counters() const { return {}; }
void ucx_receiver::stop() {}

}  // namespace hio
