// The C ABI (hio_connector.h) over hio::connector::client. Every entry point catches everything: no C++
// exception crosses into C, Fortran or Python.

#include <hio_connector.h>

#include <hio/common/transport.hpp>
#include <hio/common/version.hpp>
#include <hio/connector/client.hpp>

#include <charconv>
#include <condition_variable>
#include <cstring>
#include <memory>
#include <mutex>
#include <new>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

using hio::connector::client;
using hio::connector::client_options;
using hio::connector::errc;
using hio::connector::send_result;
using hio::connector::send_status;

// Options are collected until the first send, which creates the client.
struct hio_client {
  std::mutex mu;
  client_options options;
  std::unique_ptr<client> impl;

  std::mutex counts_mu;
  hio_flush_counts counts{};
  std::optional<hio::error> first_error;  // of an asynchronous tuple since the last flush

  // The client goes first: its threads run callbacks that use the counts.
  ~hio_client() { impl.reset(); }
};

namespace {

thread_local std::string last_error;

int set_error(int code, std::string message) {
  last_error = std::move(message);
  return code;
}

int set_error(const hio::error& e) {
  const int code = e.code > 0 ? e.code : HIO_ERR_INTERNAL;
  return set_error(code, e.message);
}

void fill(hio_send_result* out, const send_result& r) {
  if (!out) return;
  out->tuple_id = r.tuple_id;
  out->status = r.status == send_status::stored   ? HIO_STATUS_STORED
                : r.status == send_status::failed ? HIO_STATUS_FAILED
                                                  : HIO_STATUS_QUEUED;
  out->attempts = r.attempts;
  const std::size_t n = std::min(r.reason.size(), sizeof(out->reason) - 1);
  std::memcpy(out->reason, r.reason.data(), n);
  out->reason[n] = '\0';
}

void clear(hio_send_result* out) {
  if (!out) return;
  *out = hio_send_result{};
}

bool parse_u64(std::string_view text, std::uint64_t& v) {
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  return ec == std::errc{} && ptr == text.data() + text.size() && !text.empty();
}

// The client, created on first use. nullptr (and last_error set) when that fails.
client* get(hio_client* c) {
  std::lock_guard lk(c->mu);
  if (!c->impl) c->impl = std::make_unique<client>(c->options);
  return c->impl.get();
}

std::string_view metadata_of(const char* metadata_json) {
  return metadata_json ? std::string_view(metadata_json) : std::string_view();
}

}  // namespace

extern "C" {

const char* hio_last_error(void) { return last_error.c_str(); }

const char* hio_version(void) { return hio::version; }

hio_client* hio_client_new(const char* master_url, const char* source_name) {
  try {
    if (!master_url || !*master_url) {
      set_error(HIO_ERR_INVALID_ARGUMENT, "hio_client_new: master_url is empty");
      return nullptr;
    }
    auto c = std::make_unique<hio_client>();
    c->options.master_url = master_url;
    if (source_name && *source_name) c->options.source_name = source_name;
    return c.release();
  } catch (const std::exception& e) {
    set_error(HIO_ERR_INTERNAL, std::string("hio_client_new: ") + e.what());
    return nullptr;
  }
}

int hio_client_set_option(hio_client* c, const char* name, const char* value) {
  try {
    if (!c || !name || !value) return set_error(HIO_ERR_INVALID_ARGUMENT, "hio_client_set_option: NULL argument");
    std::lock_guard lk(c->mu);
    if (c->impl)
      return set_error(HIO_ERR_INVALID_ARGUMENT, "hio_client_set_option: options must be set before the first send");
    const std::string_view n(name), v(value);
    auto& o = c->options;
    std::uint64_t x = 0;
    const bool number = parse_u64(v, x);
    auto bad = [&] {
      return set_error(HIO_ERR_INVALID_ARGUMENT,
                       "hio_client_set_option: bad value '" + std::string(v) + "' for " + std::string(n));
    };
    if (n == "token") {
      o.source_token = v;
    } else if (n == "session_tuples") {
      if (!number || x > 1'000'000) return bad();
      o.session_tuples = static_cast<std::uint32_t>(x);
    } else if (n == "session_max_ms") {
      if (!number || x == 0 || x > 3'600'000) return bad();
      o.session_max = std::chrono::milliseconds(x);
    } else if (n == "session_idle_ms") {
      if (!number || x > 3'600'000) return bad();
      o.session_idle = std::chrono::milliseconds(x);
    } else if (n == "max_bytes_in_flight") {
      if (!number || x == 0) return bad();
      o.max_bytes_in_flight = x;
    } else if (n == "max_attempts") {
      if (!number || x == 0 || x > 1000) return bad();
      o.max_attempts = static_cast<std::uint32_t>(x);
    } else if (n == "lease_timeout_ms") {
      if (!number || x > 86'400'000) return bad();
      o.lease_timeout = std::chrono::milliseconds(x);
    } else if (n == "ack_timeout_ms") {
      if (!number || x == 0 || x > 86'400'000) return bad();
      o.ack_timeout = std::chrono::milliseconds(x);
    } else if (n == "close_timeout_ms") {
      if (!number || x > 86'400'000) return bad();
      o.close_timeout = std::chrono::milliseconds(x);
    } else if (n == "compress") {
      if (v == "1" || v == "true") o.compress = true;
      else if (v == "0" || v == "false") o.compress = false;
      else return bad();
    } else if (n == "transport") {
      if (v != "tcp" && v != "ucx" && v != "auto") return bad();
      if (v == "ucx" && !hio::ucx_compiled_in())
        return set_error(HIO_ERR_INVALID_ARGUMENT,
                         "hio_client_set_option: transport ucx needs UCX, but this connector was built without it");
      o.transport = v;
    } else {
      return set_error(HIO_ERR_INVALID_ARGUMENT, "hio_client_set_option: unknown option '" + std::string(n) + "'");
    }
    return HIO_OK;
  } catch (const std::exception& e) {
    return set_error(HIO_ERR_INTERNAL, std::string("hio_client_set_option: ") + e.what());
  }
}

int hio_send(hio_client* c, const void* data, size_t len, const char* metadata_json, hio_send_result* out) {
  try {
    clear(out);
    if (!c || (!data && len > 0)) return set_error(HIO_ERR_INVALID_ARGUMENT, "hio_send: NULL client or data");
    client* impl = get(c);
    auto r = impl->send(std::span<const std::byte>(static_cast<const std::byte*>(data), len), metadata_of(metadata_json));
    if (!r) return set_error(r.error());
    fill(out, *r);
    return HIO_OK;
  } catch (const std::exception& e) {
    return set_error(HIO_ERR_INTERNAL, std::string("hio_send: ") + e.what());
  }
}

int hio_send_async(hio_client* c, const void* data, size_t len, const char* metadata_json, int flags,
                   hio_send_callback callback, void* user_data) {
  try {
    if (!c || (!data && len > 0))
      return set_error(HIO_ERR_INVALID_ARGUMENT, "hio_send_async: NULL client or data");
    client* impl = get(c);
    std::span<const std::byte> view(static_cast<const std::byte*>(data), len);
    std::shared_ptr<std::vector<std::byte>> copy;
    if (flags & HIO_SEND_COPY) {
      copy = std::make_shared<std::vector<std::byte>>(view.begin(), view.end());
      view = std::span<const std::byte>(*copy);
    }
    auto done = [c, callback, user_data, copy](hio::result<send_result> r) {
      {
        std::lock_guard lk(c->counts_mu);
        if (!r) {
          ++c->counts.errors;
          if (!c->first_error) c->first_error = r.error();
        } else if (r->status == send_status::stored) {
          ++c->counts.stored;
        } else if (r->status == send_status::failed) {
          ++c->counts.failed;
        } else {
          ++c->counts.queued;
        }
      }
      if (!callback) return;
      hio_send_result out{};
      if (r) {
        fill(&out, *r);
        callback(user_data, HIO_OK, &out, "");
      } else {
        const int code = r.error().code > 0 ? r.error().code : HIO_ERR_INTERNAL;
        callback(user_data, code, &out, r.error().message.c_str());
      }
    };
    auto r = impl->async_send_view(view, metadata_of(metadata_json), std::move(done));
    if (!r) return set_error(r.error());
    return HIO_OK;
  } catch (const std::exception& e) {
    return set_error(HIO_ERR_INTERNAL, std::string("hio_send_async: ") + e.what());
  }
}

int hio_send_many(hio_client* c, size_t count, const void* const* data, const size_t* lens,
                  const char* const* metadata_json, hio_send_result* results, int32_t* codes,
                  hio_flush_counts* counts) {
  return hio_send_many_parts(c, count, nullptr, nullptr, data, lens, metadata_json, results, codes, counts);
}

int hio_send_many_parts(hio_client* c, size_t count, const void* const* heads, const size_t* head_lens,
                        const void* const* data, const size_t* lens, const char* const* metadata_json,
                        hio_send_result* results, int32_t* codes, hio_flush_counts* counts) {
  try {
    if (counts) *counts = hio_flush_counts{};
    if (!c || (count > 0 && (!data || !lens || !results || !codes)) || (!heads != !head_lens))
      return set_error(HIO_ERR_INVALID_ARGUMENT, "hio_send_many: NULL client or array");
    for (size_t i = 0; i < count; ++i) {
      if (!data[i] && lens[i] > 0) return set_error(HIO_ERR_INVALID_ARGUMENT, "hio_send_many: NULL data with a length");
      if (heads && !heads[i] && head_lens[i] > 0)
        return set_error(HIO_ERR_INVALID_ARGUMENT, "hio_send_many: NULL head with a length");
    }
    client* impl = get(c);
    // The handlers write into the caller's arrays and this frame: the call returns only once every
    // queued tuple has its result, which the client guarantees in bounded time.
    struct batch {
      std::mutex mu;
      std::condition_variable cv;
      size_t left = 0;
      hio_flush_counts totals{};
      int first_code = HIO_OK;
      std::string first_message;
      void record(hio_send_result* out, int32_t* code, const hio::result<send_result>& r) {
        std::lock_guard lk(mu);
        if (r) {
          fill(out, *r);
          *code = HIO_OK;
          if (r->status == send_status::stored) ++totals.stored;
          else if (r->status == send_status::failed) ++totals.failed;
          else ++totals.queued;
        } else {
          *code = r.error().code > 0 ? r.error().code : HIO_ERR_INTERNAL;
          const std::size_t n = std::min(r.error().message.size(), sizeof(out->reason) - 1);
          std::memcpy(out->reason, r.error().message.data(), n);
          out->reason[n] = '\0';
          ++totals.errors;
          if (first_code == HIO_OK) {
            first_code = *code;
            first_message = r.error().message;
          }
        }
        if (--left == 0) cv.notify_all();
      }
    } b;
    b.left = count;
    for (size_t i = 0; i < count; ++i) {
      clear(&results[i]);
      try {  // nothing may leave this loop while queued tuples can still call back into `b`
        const std::span<const std::byte> view(static_cast<const std::byte*>(data[i]), lens[i]);
        std::span<const std::byte> head;
        if (heads && head_lens[i] > 0) head = {static_cast<const std::byte*>(heads[i]), head_lens[i]};
        auto r = impl->async_send_view(head, view, metadata_of(metadata_json ? metadata_json[i] : nullptr),
                                       [&b, out = &results[i], code = &codes[i]](hio::result<send_result> res) {
                                         b.record(out, code, res);
                                       });
        if (!r) b.record(&results[i], &codes[i], r.error());
      } catch (const std::exception& e) {
        b.record(&results[i], &codes[i], hio::make_error(HIO_ERR_INTERNAL, std::string("hio_send_many: ") + e.what()));
      }
    }
    std::unique_lock lk(b.mu);
    b.cv.wait(lk, [&] { return b.left == 0; });
    if (counts) *counts = b.totals;
    if (b.first_code != HIO_OK) return set_error(b.first_code, b.first_message);
    return HIO_OK;
  } catch (const std::exception& e) {
    return set_error(HIO_ERR_INTERNAL, std::string("hio_send_many: ") + e.what());
  }
}

int hio_flush(hio_client* c, int64_t timeout_ms, hio_flush_counts* counts) {
  try {
    if (counts) *counts = hio_flush_counts{};
    if (!c) return set_error(HIO_ERR_INVALID_ARGUMENT, "hio_flush: NULL client");
    client* impl = nullptr;
    {
      std::lock_guard lk(c->mu);
      impl = c->impl.get();
    }
    if (impl) {
      auto r = impl->flush(std::chrono::milliseconds(timeout_ms > 0 ? timeout_ms : 600000));
      if (!r) return set_error(r.error());
    }
    std::optional<hio::error> first;
    {
      std::lock_guard lk(c->counts_mu);
      if (counts) *counts = c->counts;
      c->counts = hio_flush_counts{};
      first.swap(c->first_error);
    }
    if (first) return set_error(*first);
    return HIO_OK;
  } catch (const std::exception& e) {
    return set_error(HIO_ERR_INTERNAL, std::string("hio_flush: ") + e.what());
  }
}

void hio_client_free(hio_client* c) {
  try {
    delete c;  // ~client waits for tuples in flight (close_timeout), then joins its threads
  } catch (...) {
    // A destructor does not throw; nothing can be reported here.
  }
}

}  // extern "C"
