#include "ucx_common.hpp"

#include <netdb.h>

#include <cstring>
#include <mutex>

namespace hio::detail {

std::string ucx_error(const char* what, ucs_status_t s) {
  return std::string(what) + ": " + ucs_status_string(s);
}

result<ucp_context_h> ucx_context() {
  static std::mutex mutex;
  static ucp_context_h context = nullptr;
  static std::string failure;
  std::lock_guard lock(mutex);
  if (context != nullptr) return context;
  if (!failure.empty()) return make_error(0, failure);
  ucp_config_t* config = nullptr;
  if (auto s = ucp_config_read(nullptr, nullptr, &config); s != UCS_OK) {
    failure = ucx_error("UCX configuration", s);
    return make_error(0, failure);
  }
  ucp_params_t params{};
  params.field_mask = UCP_PARAM_FIELD_FEATURES | UCP_PARAM_FIELD_MT_WORKERS_SHARED | UCP_PARAM_FIELD_NAME;
  params.features = UCP_FEATURE_AM | UCP_FEATURE_WAKEUP;
  params.mt_workers_shared = 1;
  params.name = "hio";
  const auto s = ucp_init(&params, config, &context);
  ucp_config_release(config);
  if (s != UCS_OK) {
    context = nullptr;
    failure = ucx_error("UCX could not start (check UCX_TLS)", s);
    return make_error(0, failure);
  }
  return context;  // lives as long as the process: workers of any thread may use it until exit
}

result<socklen_t> ucx_sockaddr(const std::string& host, std::uint16_t port, sockaddr_storage& out) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = host.empty() ? AI_PASSIVE : 0;
  addrinfo* res = nullptr;
  if (const int rc = ::getaddrinfo(host.empty() ? nullptr : host.c_str(), std::to_string(port).c_str(), &hints, &res);
      rc != 0 || res == nullptr)
    return make_error(0, "cannot resolve " + host + ": " + ::gai_strerror(rc));
  std::memset(&out, 0, sizeof out);
  std::memcpy(&out, res->ai_addr, res->ai_addrlen);
  const auto len = static_cast<socklen_t>(res->ai_addrlen);
  ::freeaddrinfo(res);
  return len;
}

result<ucp_worker_h> ucx_new_worker(bool multi) {
  auto ctx = ucx_context();
  if (!ctx) return ctx.error();
  ucp_worker_params_t wp{};
  wp.field_mask = UCP_WORKER_PARAM_FIELD_THREAD_MODE;
  wp.thread_mode = multi ? UCS_THREAD_MODE_MULTI : UCS_THREAD_MODE_SINGLE;
  ucp_worker_h worker = nullptr;
  if (auto s = ucp_worker_create(*ctx, &wp, &worker); s != UCS_OK)
    return make_error(0, ucx_error("UCX worker", s));
  return worker;
}

void ucx_op_done(void*, ucs_status_t status, void* user_data) {
  auto* op = static_cast<ucx_op*>(user_data);
  op->status = status;
  op->done.store(true, std::memory_order_release);
}

}  // namespace hio::detail
