#pragma once
// Internal to common's UCX translation units: the process-wide UCP context and small helpers.

#include <hio/common/error.hpp>

#include <ucp/api/ucp.h>

#include <netinet/in.h>
#include <sys/socket.h>

#include <atomic>
#include <cstdint>
#include <string>

namespace hio::detail {

// The process's UCP context (active messages + wakeup), created on first use from the UCX_* environment
// (UCX_TLS, ...). Thread-safe. Error when UCX finds no usable transport.
result<ucp_context_h> ucx_context();

std::string ucx_error(const char* what, ucs_status_t s);

// Resolves host (IPv4/IPv6 literal or name) and port into `out`. Error when it does not resolve.
result<socklen_t> ucx_sockaddr(const std::string& host, std::uint16_t port, sockaddr_storage& out);

// Creates a worker on the process context with a wakeup file descriptor. `multi`: callable from several
// threads at once (UCS_THREAD_MODE_MULTI), else from one thread only.
result<ucp_worker_h> ucx_new_worker(bool multi);

// Completion flag of a non-blocking UCX request whose callback receives a pointer to it as user_data.
struct ucx_op {
  std::atomic<bool> done{false};
  ucs_status_t status = UCS_OK;  // valid once done
};
void ucx_op_done(void* request, ucs_status_t status, void* user_data);

}  // namespace hio::detail
