// The sender's end of a data-path session over UCX: one UCP worker and endpoint per session, connected
// either to the channel's UCP worker address from the lease (any transport UCX finds, shared memory
// included: UCX's sockaddr connections in 1.13 carry data over network lanes only) or to its UCP listener.
// DATA frames go as active messages: header = frame + sequence number + connection id (+ the metadata when
// it fits UCX's header limit), data = the payload straight from the caller's buffer. A contiguous payload
// matters: UCX 1.13 moves an I/O-vector rendezvous by copying fragments (half the speed over TCP and over
// shared memory, measured), so metadata and payload travel as a vector only when the metadata is too
// large for the header. Payloads from rndv_threshold up are forced onto the rendezvous protocol, so the
// receiver pulls them into its own buffer; smaller ones go eagerly with the message.
// Sends are pipelined: up to `send_window` are in flight, and an ACK is handed to the caller only once the
// send of its tuple has completed, so a buffer whose ACK came back is no longer UCX's. Answers come back
// as active messages carrying one or more frames.
#include "ucx_common.hpp"
#include "ucx_detail.hpp"

#include <hio/common/hash.hpp>
#include <hio/common/log.hpp>

#include <poll.h>

#include <algorithm>
#include <memory>
#include <atomic>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <vector>

namespace hio::detail {
namespace {

using steady = std::chrono::steady_clock;
// Payloads from this size on go by rendezvous. 64 KiB suits shared memory and RDMA (measured here over
// posix+cma: 100 KB tuples 5.5k/s by rendezvous, 0.3k/s eager); over UCX's TCP transport eager is faster
// up to ~1 MB (100 KB: 12.6k/s against 4.7k/s), so HIO_UCX_RNDV_THRESH (bytes) overrides it.
std::size_t rndv_threshold() {
  static const std::size_t value = [] {
    constexpr std::size_t fallback = std::size_t{64} << 10;
    const char* v = std::getenv("HIO_UCX_RNDV_THRESH");
    if (v == nullptr) return fallback;
    char* end = nullptr;
    const unsigned long long n = std::strtoull(v, &end, 10);
    if (end == v || *end != '\0') {
      spdlog::warn("HIO_UCX_RNDV_THRESH='{}' is not a number of bytes; using {}", v, fallback);
      return fallback;
    }
    return static_cast<std::size_t>(n);
  }();
  return value;
}

hio::error io_error(std::string what) { return make_error(0, std::move(what)); }

// DATA sends in flight per session. Four keep the receiver's buffers busy while the source hashes the
// next tuples; the caller's memory in flight is bounded by its own window (client_options).
constexpr std::size_t send_window = 4;
constexpr std::size_t frame_prefix = wire::header_size + 16;  // frame + sequence number + connection id

// One DATA send that UCX may still be working on: its header and I/O vector live here until it completes.
struct pending_send {
  std::vector<std::byte> header;
  std::vector<std::byte> joined;  // a two-piece payload, joined
  ucp_dt_iov_t iov[2]{};
  ucx_op op;
  void* request = nullptr;  // null: completed when posted
  std::uint64_t tuple_id = 0;
  bool done() const noexcept { return request == nullptr || op.done.load(std::memory_order_acquire); }
};

class ucx_link final : public data_link {
 public:
  ~ucx_link() override { close_all(); }

  static result<std::unique_ptr<data_link>> open(const std::string& host, std::uint16_t port,
                                                 std::string_view address_hex, std::chrono::milliseconds timeout) {
    auto w = ucx_new_worker(true);
    if (!w) return w.error();
    std::unique_ptr<ucx_link> link(new ucx_link(*w));
    if (auto s = ucp_worker_get_efd(link->worker_, &link->efd_); s != UCS_OK)
      return io_error(ucx_error("UCX wakeup descriptor", s));
    ucp_am_handler_param_t hp{};
    hp.field_mask = UCP_AM_HANDLER_PARAM_FIELD_ID | UCP_AM_HANDLER_PARAM_FIELD_CB | UCP_AM_HANDLER_PARAM_FIELD_ARG |
                    UCP_AM_HANDLER_PARAM_FIELD_FLAGS;
    hp.id = ucx_am_answer;
    hp.flags = UCP_AM_FLAG_WHOLE_MSG;
    hp.cb = &ucx_link::on_answer;
    hp.arg = link.get();
    if (auto s = ucp_worker_set_am_recv_handler(link->worker_, &hp); s != UCS_OK)
      return io_error(ucx_error("UCX handler", s));
    ucp_worker_attr_t wa{};
    wa.field_mask = UCP_WORKER_ATTR_FIELD_MAX_AM_HEADER;
    if (ucp_worker_query(link->worker_, &wa) == UCS_OK) link->max_header_ = wa.max_am_header;

    const auto deadline = steady::now() + timeout;
    const std::string where = host + ":" + std::to_string(port);
    ucp_ep_params_t ep{};
    ep.field_mask = UCP_EP_PARAM_FIELD_ERR_HANDLER | UCP_EP_PARAM_FIELD_ERR_HANDLING_MODE;
    ep.err_mode = UCP_ERR_HANDLING_MODE_PEER;
    ep.err_handler.cb = &ucx_link::on_error;
    ep.err_handler.arg = link.get();
    sockaddr_storage addr{};
    std::string remote;
    if (!address_hex.empty()) {
      auto bytes = from_hex(address_hex);
      if (!bytes || bytes->empty()) return io_error("the lease's UCX worker address is not valid hex");
      remote = std::move(*bytes);
      ep.field_mask |= UCP_EP_PARAM_FIELD_REMOTE_ADDRESS;
      ep.address = reinterpret_cast<const ucp_address_t*>(remote.data());
      std::random_device rd;
      while (link->conn_id_ == 0) link->conn_id_ = (std::uint64_t{rd()} << 32) | rd();
    } else {
      auto len = ucx_sockaddr(host, port, addr);
      if (!len) return len.error();
      ep.field_mask |= UCP_EP_PARAM_FIELD_FLAGS | UCP_EP_PARAM_FIELD_SOCK_ADDR;
      ep.flags = UCP_EP_PARAMS_FLAGS_CLIENT_SERVER;
      ep.sockaddr.addr = reinterpret_cast<const sockaddr*>(&addr);
      ep.sockaddr.addrlen = *len;
    }
    ucp_ep_h created = nullptr;
    auto s = link->conn_id_ != 0 ? create_by_address(link->worker_, ep, created, remote)
                                 : ucp_ep_create(link->worker_, &ep, &created);
    if (s != UCS_OK) return io_error("cannot connect to " + where + " over UCX: " + ucs_status_string(s));
    link->ep_ = created;
    if (link->conn_id_ != 0) {
      if (auto r = link->hello(deadline); !r) return io_error("cannot connect to " + where + " over UCX: " + r.error().message);
      return std::unique_ptr<data_link>(std::move(link));
    }
    // Through the listener the connection is established in the background; a flush completes once it is up.
    ucx_op op;
    ucp_request_param_t rp{};
    rp.op_attr_mask = UCP_OP_ATTR_FIELD_CALLBACK | UCP_OP_ATTR_FIELD_USER_DATA;
    rp.cb.send = &ucx_op_done;
    rp.user_data = &op;
    void* req = ucp_ep_flush_nbx(link->ep_, &rp);
    if (auto r = link->finish(req, op, deadline); !r)
      return io_error("cannot connect to " + where + " over UCX: " + r.error().message);
    return std::unique_ptr<data_link>(std::move(link));
  }

  result<void> send(const wire::frame_header& h, std::string_view metadata, payload_parts payload,
                    std::chrono::milliseconds timeout) override {
    wire::frame_header framed = h;
    framed.metadata_length = static_cast<std::uint32_t>(metadata.size());
    framed.payload_length = payload.size();
    std::vector<std::byte> joined;
    if (!payload.head.empty()) joined = payload.joined();
    const std::span<const std::byte> bytes = joined.empty() ? payload.body : std::span<const std::byte>(joined);
    return post(framed, metadata, bytes, timeout, std::move(joined));  // the move keeps the buffer in place
  }

  result<void> send_end(std::chrono::milliseconds timeout) override {
    return post(wire::make_end(), {}, {}, timeout);
  }

  result<answer> receive(std::chrono::milliseconds timeout) override {
    const auto deadline = steady::now() + timeout;
    const bool got = wait_until([&] { return !answers_.empty() || broken_ || shut_; }, deadline);
    std::unique_lock lock(state_mu_);
    if (answers_.empty()) {
      if (!got) return io_error("timed out waiting for the receiver's answer");
      if (shut_) return io_error("connection is shut down");
      return io_error("connection lost: " + failure_);
    }
    answer a = std::move(answers_.front());
    answers_.pop_front();
    // The caller frees a tuple once its ACK is back, so the ACK waits for that tuple's send to complete
    // (with rendezvous the completion may come after the receiver's answer); END waits for every send.
    if (a.header.type == wire::frame_type::ack || a.header.type == wire::frame_type::end) {
      const bool end = a.header.type == wire::frame_type::end;
      const std::uint64_t id = a.header.tuple_id;
      lock.unlock();
      if (auto r = complete_sends([&](const pending_send& p) { return end || p.tuple_id <= id; }, deadline); !r)
        return r.error();
    }
    return a;
  }

  // Ends the session: a send or receive in progress fails soon, and every send still in flight has
  // completed (cancelled) when this returns, so the caller may free the buffers of unacknowledged tuples.
  void shutdown_write() noexcept override {
    {
      std::lock_guard lock(state_mu_);
      shut_ = true;
    }
    force_close();
    ucp_worker_signal(worker_);
    cv_.notify_all();
    (void)complete_sends([](const pending_send&) { return true; }, steady::now() + std::chrono::seconds(5));
  }

  transport kind() const noexcept override { return transport::ucx; }

 private:
  explicit ucx_link(ucp_worker_h w) : worker_(w) {}

  static void on_error(void* arg, ucp_ep_h, ucs_status_t status) {
    auto* self = static_cast<ucx_link*>(arg);
    std::lock_guard lock(self->state_mu_);
    if (!self->broken_) self->failure_ = ucs_status_string(status);
    self->broken_ = true;
  }

  // Answers: header = 8-byte sequence number, data = one or more whole frames.
  static ucs_status_t on_answer(void* arg, const void* header, size_t header_length, void* data, size_t length,
                                const ucp_am_recv_param_t* param) {
    auto* self = static_cast<ucx_link*>(arg);
    std::lock_guard lock(self->state_mu_);
    if ((param->recv_attr & UCP_AM_RECV_ATTR_FLAG_RNDV) != 0 || header_length != 8) {
      // Receivers send answers eagerly with an 8-byte header: anything else would leave a gap in the
      // answers' sequence, so the session ends here rather than waiting for acks that cannot come.
      if (!self->broken_) self->failure_ = "an answer the receiver should not send (rendezvous or bad header)";
      self->broken_ = true;
      return UCS_OK;
    }
    std::uint64_t seq = 0;
    std::memcpy(&seq, header, 8);
    self->pending_answers_.emplace(seq, length > 0 ? std::string(static_cast<const char*>(data), length) : std::string());
    while (!self->pending_answers_.empty() && self->pending_answers_.begin()->first == self->next_answer_) {
      self->parse_answers(self->pending_answers_.begin()->second);
      self->pending_answers_.erase(self->pending_answers_.begin());
      ++self->next_answer_;
    }
    return UCS_OK;
  }

  // With state_mu_ held.
  void parse_answers(const std::string& bytes) {
    std::size_t at = 0;
    while (at + wire::header_size <= bytes.size()) {
      std::span<const std::byte, wire::header_size> raw(reinterpret_cast<const std::byte*>(bytes.data() + at),
                                                        wire::header_size);
      auto h = wire::decode(raw, 1 << 20);
      if (!h || h->type == wire::frame_type::data || h->metadata_length != 0 ||
          at + wire::header_size + h->payload_length > bytes.size()) {
        broken_ = true;
        failure_ = "malformed answer from the receiver";
        return;
      }
      answer a{*h, bytes.substr(at + wire::header_size, h->payload_length)};
      answers_.push_back(std::move(a));
      at += wire::header_size + h->payload_length;
    }
  }

  // Progresses the worker until `pred()` (read under state_mu_) holds or the deadline passes. One thread
  // progresses and sleeps on UCX's wakeup descriptor at a time; the other waits for it to come round.
  template <class Pred>
  bool wait_until(Pred pred, steady::time_point deadline) {
    std::unique_lock lock(state_mu_);
    while (!pred()) {
      const auto now = steady::now();
      if (now >= deadline) return false;
      if (progressing_) {
        cv_.wait_until(lock, std::min(deadline, now + std::chrono::milliseconds(20)));
        continue;
      }
      progressing_ = true;
      lock.unlock();
      unsigned n = 0;
      while (ucp_worker_progress(worker_) != 0) ++n;
      if (n == 0 && ucp_worker_arm(worker_) == UCS_OK) {
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - steady::now()).count();
        pollfd p{efd_, POLLIN, 0};
        ::poll(&p, 1, static_cast<int>(std::clamp<long long>(left, 0, 100)));
      }
      lock.lock();
      progressing_ = false;
      cv_.notify_all();
    }
    return true;
  }

  // Waits for a request started with `op` as its user data; frees it.
  result<void> finish(void* req, ucx_op& op, steady::time_point deadline) {
    if (req == nullptr) return {};
    if (UCS_PTR_IS_ERR(req)) return io_error(ucs_status_string(UCS_PTR_STATUS(req)));
    bool done = wait_until([&] { return op.done.load() || broken_; }, deadline);
    if (!op.done.load()) {
      // Broken or late: end the endpoint so the request completes (with an error) before its buffers go.
      force_close();
      wait_until([&] { return op.done.load(); }, steady::now() + std::chrono::seconds(5));
      done = false;
    }
    ucp_request_free(req);
    if (!done) {
      std::lock_guard lock(state_mu_);
      return io_error(broken_ ? "connection lost: " + failure_ : std::string("timed out sending to the receiver"));
    }
    if (op.status != UCS_OK) return io_error(ucs_status_string(op.status));
    return {};
  }

  // Waits (progressing) until every send in flight that `which` selects has completed, and frees the
  // completed ones. An error when one of them failed or they do not complete by the deadline.
  template <class Which>
  result<void> complete_sends(Which which, steady::time_point deadline) {
    const auto selected_done = [&] {
      return std::ranges::all_of(sends_, [&](const auto& p) { return !which(*p) || p->done(); });
    };
    const bool done = wait_until(selected_done, deadline);
    std::vector<std::unique_ptr<pending_send>> completed;
    bool broken = false;
    {
      std::lock_guard lock(state_mu_);
      broken = broken_;
      for (auto it = sends_.begin(); it != sends_.end();) {
        if ((*it)->done()) {
          completed.push_back(std::move(*it));
          it = sends_.erase(it);
        } else {
          ++it;
        }
      }
    }
    // Freed outside state_mu_: UCX takes its worker lock here, and its callbacks take state_mu_.
    std::string failure;
    for (auto& p : completed) {
      if (p->request == nullptr) continue;
      if (p->op.status != UCS_OK && failure.empty()) failure = ucs_status_string(p->op.status);
      ucp_request_free(p->request);
    }
    if (!failure.empty()) return io_error("sending to the receiver failed: " + failure);
    if (!done) {
      std::lock_guard lock(state_mu_);
      return io_error(broken ? "connection lost: " + failure_ : std::string("timed out sending to the receiver"));
    }
    return {};
  }

  // `owned` (may be empty) holds the payload's bytes when the link made them: it lives until the send completes.
  result<void> post(const wire::frame_header& h, std::string_view metadata, std::span<const std::byte> payload,
                    std::chrono::milliseconds timeout, std::vector<std::byte> owned = {}) {
    const auto deadline = steady::now() + timeout;
    // Room in the window: the oldest sends complete first.
    {
      std::unique_lock lock(state_mu_);
      if (sends_.size() >= send_window) {
        const std::uint64_t oldest = sends_.front()->tuple_id;
        lock.unlock();
        if (auto r = complete_sends([&](const pending_send& p) { return p.tuple_id <= oldest; }, deadline); !r)
          return r;
      }
    }
    auto p = std::make_unique<pending_send>();
    p->tuple_id = h.tuple_id;
    p->joined = std::move(owned);  // moving a vector keeps its buffer: `payload` still points into it
    // Metadata rides in the header when it fits: the payload then goes as one contiguous buffer.
    const bool in_header = !metadata.empty() && frame_prefix + metadata.size() <= max_header_;
    p->header.resize(frame_prefix + (in_header ? metadata.size() : 0));
    const auto frame = wire::encode(h);
    std::memcpy(p->header.data(), frame.data(), frame.size());
    std::memcpy(p->header.data() + wire::header_size, &send_seq_, 8);
    std::memcpy(p->header.data() + wire::header_size + 8, &conn_id_, 8);
    if (in_header) {
      std::memcpy(p->header.data() + frame_prefix, metadata.data(), metadata.size());
      metadata = {};
    }
    ++send_seq_;
    p->iov[0] = {const_cast<char*>(metadata.data()), metadata.size()};
    p->iov[1] = {const_cast<std::byte*>(payload.data()), payload.size()};
    ucp_request_param_t rp{};
    rp.op_attr_mask = UCP_OP_ATTR_FIELD_CALLBACK | UCP_OP_ATTR_FIELD_USER_DATA | UCP_OP_ATTR_FIELD_FLAGS;
    rp.cb.send = &ucx_op_done;
    rp.user_data = &p->op;
    rp.flags = UCP_AM_SEND_FLAG_REPLY;
    const std::size_t total = metadata.size() + payload.size();
    // Below the threshold the bytes travel with the message (UCX would otherwise pick rendezvous from a few
    // KiB on, one round trip per tuple); from it on the receiver pulls them into its registered buffer.
    rp.flags |= total >= rndv_threshold() ? UCP_AM_SEND_FLAG_RNDV : UCP_AM_SEND_FLAG_EAGER;
    void* buffer = nullptr;
    std::size_t count = 0;
    if (!metadata.empty() && !payload.empty()) {
      rp.op_attr_mask |= UCP_OP_ATTR_FIELD_DATATYPE;
      rp.datatype = ucp_dt_make_iov();
      buffer = p->iov;
      count = 2;
    } else if (!payload.empty()) {
      buffer = p->iov[1].buffer;
      count = payload.size();
    } else if (!metadata.empty()) {
      buffer = p->iov[0].buffer;
      count = metadata.size();
    }
    void* req = nullptr;
    {
      std::lock_guard lock(ep_mu_);
      {
        std::lock_guard state(state_mu_);
        if (shut_) return io_error("connection is shut down");
        if (broken_) return io_error("connection lost: " + failure_);
      }
      if (ep_ == nullptr) return io_error("connection is closed");
      req = ucp_am_send_nbx(ep_, ucx_am_data, p->header.data(), p->header.size(), buffer, count, &rp);
    }
    if (UCS_PTR_IS_ERR(req)) return io_error(std::string("sending to the receiver failed: ") + ucs_status_string(UCS_PTR_STATUS(req)));
    ucp_worker_signal(worker_);  // a thread asleep on the wakeup descriptor comes round to progress it
    p->request = req;
    {
      std::lock_guard lock(state_mu_);
      sends_.push_back(std::move(p));
    }
    // END has no ACK of its own to wait behind: it leaves when it has gone (and so has all before it).
    if (h.type == wire::frame_type::end) return complete_sends([](const pending_send&) { return true; }, deadline);
    return {};
  }

  // UCX's shared-memory transports (posix, sysv) cannot report a failed peer, so with UCX_TLS naming only
  // them an endpoint that asks for peer-failure handling finds no transport ("unreachable"). Then the
  // endpoint is made without it (logged once per receiver address): a receiver that dies is noticed by
  // the acknowledgement deadline instead (client_options::ack_timeout); nothing is lost either way.
  static ucs_status_t create_by_address(ucp_worker_h worker, ucp_ep_params_t& ep, ucp_ep_h& out,
                                        const std::string& remote) {
    static std::mutex mu;
    static std::set<std::string> without_peer_checks;  // receiver addresses reachable only that way
    bool known = false;
    {
      std::lock_guard lock(mu);
      known = without_peer_checks.contains(remote);
    }
    if (!known) {
      const auto s = ucp_ep_create(worker, &ep, &out);
      if (s != UCS_ERR_UNREACHABLE) return s;
      out = nullptr;
    }
    ep.err_mode = UCP_ERR_HANDLING_MODE_NONE;
    const auto s = ucp_ep_create(worker, &ep, &out);
    if (s == UCS_OK && !known) {
      std::lock_guard lock(mu);
      if (without_peer_checks.size() >= 4096) without_peer_checks.clear();
      without_peer_checks.insert(remote);
      spdlog::info("UCX: no transport to this receiver reports failed peers (shared memory only?); connected "
                   "without peer-failure detection, a lost receiver is noticed by the acknowledgement deadline");
    }
    return s;
  }

  // Connecting by address: the receiver learns of this session from a HELLO (header = connection id) and
  // answers on its reply endpoint; its empty answer (sequence 0) shows that both directions work.
  result<void> hello(steady::time_point deadline) {
    ucx_op op;
    ucp_request_param_t rp{};
    rp.op_attr_mask = UCP_OP_ATTR_FIELD_CALLBACK | UCP_OP_ATTR_FIELD_USER_DATA | UCP_OP_ATTR_FIELD_FLAGS;
    rp.cb.send = &ucx_op_done;
    rp.user_data = &op;
    rp.flags = UCP_AM_SEND_FLAG_EAGER | UCP_AM_SEND_FLAG_REPLY;
    void* req = ucp_am_send_nbx(ep_, ucx_am_hello, &conn_id_, sizeof conn_id_, nullptr, 0, &rp);
    if (auto sent = finish(req, op, deadline); !sent) return sent;
    if (!wait_until([&] { return next_answer_ > 0 || broken_; }, deadline))
      return io_error("no answer from the receiver");
    std::lock_guard lock(state_mu_);
    if (next_answer_ == 0) return io_error("connection lost: " + failure_);
    return {};
  }

  void force_close() noexcept {
    std::lock_guard lock(ep_mu_);
    if (ep_ == nullptr) return;
    ucp_request_param_t rp{};
    rp.op_attr_mask = UCP_OP_ATTR_FIELD_FLAGS;
    rp.flags = UCP_EP_CLOSE_FLAG_FORCE;
    close_req_ = ucp_ep_close_nbx(ep_, &rp);
    ep_ = nullptr;
  }

  void close_all() noexcept {
    void* req = nullptr;
    {
      std::lock_guard lock(ep_mu_);
      if (ep_ != nullptr) {
        ucp_request_param_t rp{};  // flush what is outstanding, then close
        req = ucp_ep_close_nbx(ep_, &rp);
        ep_ = nullptr;
      } else {
        req = close_req_;
      }
      close_req_ = nullptr;
    }
    if (req != nullptr && !UCS_PTR_IS_ERR(req)) {
      const auto deadline = steady::now() + std::chrono::seconds(2);
      while (ucp_request_check_status(req) == UCS_INPROGRESS && steady::now() < deadline) ucp_worker_progress(worker_);
      if (ucp_request_check_status(req) == UCS_INPROGRESS) ucp_request_cancel(worker_, req);
      ucp_request_free(req);
    }
    // The endpoint is closed: UCX has completed (or cancelled) every send by now.
    for (auto& p : sends_) {
      if (p->request == nullptr) continue;
      for (int i = 0; i < 1000 && !p->done(); ++i) ucp_worker_progress(worker_);
      ucp_request_free(p->request);
    }
    sends_.clear();
    ucp_worker_destroy(worker_);
  }

  ucp_worker_h worker_ = nullptr;
  int efd_ = -1;
  std::mutex ep_mu_;            // guards ep_ while a send is posted or the endpoint closed
  ucp_ep_h ep_ = nullptr;
  void* close_req_ = nullptr;
  std::uint64_t send_seq_ = 0;  // writer only
  std::size_t max_header_ = 0;  // UCX's limit on an active message's header
  std::uint64_t conn_id_ = 0;   // connected by worker address: names this session to the receiver; 0: listener

  std::mutex state_mu_;         // guards what follows
  std::condition_variable cv_;
  bool progressing_ = false;
  bool broken_ = false;
  bool shut_ = false;
  std::string failure_;
  std::deque<answer> answers_;
  std::map<std::uint64_t, std::string> pending_answers_;  // arrived ahead of their turn
  std::uint64_t next_answer_ = 0;
  std::deque<std::unique_ptr<pending_send>> sends_;  // DATA and END sends not yet freed, in order
};

}  // namespace

result<std::unique_ptr<data_link>> open_ucx_link(const std::string& host, std::uint16_t port,
                                                 std::string_view address_hex, std::chrono::milliseconds timeout) {
  return ucx_link::open(host, port, address_hex, timeout);
}

}  // namespace hio::detail

namespace hio {
bool ucx_compiled_in() noexcept { return true; }
}  // namespace hio
