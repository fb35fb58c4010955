// The data path's receiving end over UCX. Everything runs on the caller's single-threaded io_context:
// UCX's wakeup descriptor is awaited there, then the worker is progressed and each connection's frames
// are handled in order, outside UCX's callbacks (which only queue what arrived, and create endpoints).
// Sources connect through the listener (host:port) or by the worker's address from their lease; the
// latter start with a HELLO, are answered on UCX's reply endpoint, and name their connection in every
// message. A connection's messages are taken in order into a short pipeline: a rendezvous payload is
// received into one of the channel's registered buffers while the tuple before it is checked and
// processed, and tuples are handed to the session strictly in order.
#include <hio/common/ucx_receiver.hpp>

#include "ucx_common.hpp"
#include "ucx_detail.hpp"

#include <hio/common/hash.hpp>
#include <hio/common/log.hpp>
#include <hio/common/receiver_session.hpp>

#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>

#include <arpa/inet.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <map>
#include <memory>
#include <utility>
#include <vector>

namespace hio {

namespace asio = boost::asio;
using steady = std::chrono::steady_clock;

namespace {

constexpr std::size_t frame_prefix = wire::header_size + 16;  // frame + sequence number + connection id
constexpr std::size_t receive_buffers = 2;   // registered rendezvous buffers per channel
constexpr std::size_t pipeline_depth = 4;    // messages of one connection taken ahead of the session
constexpr std::size_t kept_buffer_bytes = std::size_t{64} << 20;  // larger buffers are freed after use
// Messages one connection may have waiting ahead of its session (bytes: receiver_options::max_ahead_bytes).
// An honest source's session has at most 65,536 tuples (docs/protocol.md): twice that is room.
constexpr std::size_t max_inbox_messages = 131072;

// One active message as it arrived: its frame header, the metadata when it rode in the header, and its
// data (eager: bytes UCX keeps for us until released, or a copy when UCX could not keep them; rendezvous:
// a descriptor to receive from).
struct message {
  wire::header_bytes frame{};
  std::string metadata;
  bool metadata_in_header = false;
  void* data = nullptr;
  std::size_t length = 0;
  bool rndv = false;
  std::shared_ptr<std::vector<std::byte>> copy;  // eager bytes UCX lends only for the callback's duration
};

// A message taken from the inbox, its header accepted by the session: ready (eager, END) or being received
// into a buffer (rendezvous).
struct stage {
  message m;
  wire::frame_header h;
  int buffer = -1;          // rendezvous: the receive buffer it lands in
  void* request = nullptr;  // rendezvous: the receive (1: it completed at once)
  detail::ucx_op op;
  bool ready() const noexcept { return buffer < 0 || op.done.load(std::memory_order_acquire); }
};

// A registered buffer that rendezvous payloads land in, reused from tuple to tuple.
struct receive_buffer {
  std::byte* data = nullptr;
  std::size_t size = 0;
  ucp_mem_h memh = nullptr;
  bool busy = false;
};

struct ucx_conn : std::enable_shared_from_this<ucx_conn> {
  ucp_ep_h ep = nullptr;
  std::uint64_t id = 0;  // connected by address: the id the source's messages carry; 0: through the listener
  std::string peer;
  std::map<std::uint64_t, message> inbox;  // by sequence number
  std::uint64_t inbox_bytes = 0;           // eager bytes held in the inbox
  std::uint64_t next_seq = 0;
  std::uint64_t answer_seq = 0;
  steady::time_point deadline;
  std::unique_ptr<receiver_session> session;  // null once closed
  bool closed = false;     // the session is over; waiting for the endpoint to go
  bool peer_gone = false;  // UCX reported the endpoint failed
  std::string gone_reason;
  std::string refused;     // why a message of it was dropped (the session then fails with this reason)
  bool flushing = false;   // a flush of its session is in flight
  bool end_seen = false;   // END was taken: answered once every flush is
  std::deque<std::unique_ptr<stage>> stages;  // taken from the inbox, in order, not yet accepted
  bool receiving() const noexcept {
    return std::ranges::any_of(stages, [](const auto& s) { return s->request != nullptr && !s->ready(); });
  }
};

std::string format_peer(const sockaddr_storage& a) {
  char host[INET6_ADDRSTRLEN] = {};
  std::uint16_t port = 0;
  if (a.ss_family == AF_INET) {
    const auto* in = reinterpret_cast<const sockaddr_in*>(&a);
    ::inet_ntop(AF_INET, &in->sin_addr, host, sizeof host);
    port = ntohs(in->sin_port);
  } else if (a.ss_family == AF_INET6) {
    const auto* in = reinterpret_cast<const sockaddr_in6*>(&a);
    ::inet_ntop(AF_INET6, &in->sin6_addr, host, sizeof host);
    port = ntohs(in->sin6_port);
  }
  return std::string(host) + ":" + std::to_string(port) + " (ucx)";
}

}  // namespace

struct ucx_receiver::impl : std::enable_shared_from_this<ucx_receiver::impl> {
  impl(asio::io_context& io, receiver_options o, tuple_handler& h)
      : io_(io), options_(std::move(o)), handler_(h), timer_(io) {}

  asio::io_context& io_;
  receiver_options options_;
  tuple_handler& handler_;
  ucp_worker_h worker_ = nullptr;
  ucp_listener_h listener_ = nullptr;
  int efd_ = -1;
  std::unique_ptr<asio::posix::stream_descriptor> wake_;
  asio::steady_timer timer_;
  std::uint16_t port_ = 0;
  std::atomic<bool> stopped_{false};
  bool released_ = false;
  receiver_stats stats_;

  std::array<receive_buffer, receive_buffers> buffers_;

  std::string address_;  // this worker's UCP address, hex
  std::map<ucp_ep_h, std::shared_ptr<ucx_conn>> conns_;
  std::map<std::uint64_t, ucx_conn*> by_id_;  // connections made by address, by their id
  std::vector<std::shared_ptr<ucx_conn>> greeting_;  // made by address, not yet answered
  std::uint64_t strays_ = 0;  // messages for no known connection since the last tick
  std::vector<std::shared_ptr<ucx_conn>> dying_;  // closed with receives still in flight
  std::vector<void*> close_reqs_;

  // ---- setup ----
  result<void> open() {
    auto w = detail::ucx_new_worker(false);
    if (!w) return w.error();
    worker_ = *w;
    if (auto s = ucp_worker_get_efd(worker_, &efd_); s != UCS_OK)
      return make_error(0, detail::ucx_error("UCX wakeup descriptor", s));
    ucp_am_handler_param_t hp{};
    hp.field_mask = UCP_AM_HANDLER_PARAM_FIELD_ID | UCP_AM_HANDLER_PARAM_FIELD_CB | UCP_AM_HANDLER_PARAM_FIELD_ARG |
                    UCP_AM_HANDLER_PARAM_FIELD_FLAGS;
    hp.id = detail::ucx_am_data;
    hp.flags = UCP_AM_FLAG_WHOLE_MSG | UCP_AM_FLAG_PERSISTENT_DATA;
    hp.cb = &impl::on_data;
    hp.arg = this;
    if (auto s = ucp_worker_set_am_recv_handler(worker_, &hp); s != UCS_OK)
      return make_error(0, detail::ucx_error("UCX handler", s));
    hp.id = detail::ucx_am_hello;
    hp.flags = UCP_AM_FLAG_WHOLE_MSG;
    hp.cb = &impl::on_hello;
    if (auto s = ucp_worker_set_am_recv_handler(worker_, &hp); s != UCS_OK)
      return make_error(0, detail::ucx_error("UCX handler", s));
    ucp_address_t* own = nullptr;
    std::size_t own_length = 0;
    if (auto s = ucp_worker_get_address(worker_, &own, &own_length); s != UCS_OK)
      return make_error(0, detail::ucx_error("UCX worker address", s));
    address_ = to_hex(std::span<const std::byte>(reinterpret_cast<const std::byte*>(own), own_length));
    ucp_worker_release_address(worker_, own);
    sockaddr_storage addr{};
    auto len = detail::ucx_sockaddr(options_.host, options_.port, addr);
    if (!len) return len.error();
    ucp_listener_params_t lp{};
    lp.field_mask = UCP_LISTENER_PARAM_FIELD_SOCK_ADDR | UCP_LISTENER_PARAM_FIELD_CONN_HANDLER;
    lp.sockaddr.addr = reinterpret_cast<const sockaddr*>(&addr);
    lp.sockaddr.addrlen = *len;
    lp.conn_handler.cb = &impl::on_connect;
    lp.conn_handler.arg = this;
    if (auto s = ucp_listener_create(worker_, &lp, &listener_); s != UCS_OK)
      return make_error(0, "cannot listen on " + options_.host + ":" + std::to_string(options_.port) +
                               " over UCX: " + ucs_status_string(s));
    ucp_listener_attr_t la{};
    la.field_mask = UCP_LISTENER_ATTR_FIELD_SOCKADDR;
    if (auto s = ucp_listener_query(listener_, &la); s != UCS_OK)
      return make_error(0, detail::ucx_error("UCX listener address", s));
    port_ = la.sockaddr.ss_family == AF_INET6 ? ntohs(reinterpret_cast<const sockaddr_in6*>(&la.sockaddr)->sin6_port)
                                              : ntohs(reinterpret_cast<const sockaddr_in*>(&la.sockaddr)->sin_port);
    wake_ = std::make_unique<asio::posix::stream_descriptor>(io_, efd_);
    return {};
  }

  void begin() {
    asio::post(io_, [self = shared_from_this()] { self->pump(); });
    tick();
  }

  std::unique_ptr<receiver_session> new_session(const std::string& peer) {
    return std::make_unique<receiver_session>(options_, handler_, stats_, peer);
  }

  // ---- UCX callbacks: only record what happened ----
  static void on_connect(ucp_conn_request_h request, void* arg) {
    auto* self = static_cast<impl*>(arg);
    if (self->stopped_) {
      ucp_listener_reject(self->listener_, request);
      return;
    }
    auto c = std::make_shared<ucx_conn>();
    ucp_conn_request_attr_t ra{};
    ra.field_mask = UCP_CONN_REQUEST_ATTR_FIELD_CLIENT_ADDR;
    if (ucp_conn_request_query(request, &ra) == UCS_OK) c->peer = format_peer(ra.client_address);
    ucp_ep_params_t ep{};
    ep.field_mask = UCP_EP_PARAM_FIELD_CONN_REQUEST | UCP_EP_PARAM_FIELD_ERR_HANDLER |
                    UCP_EP_PARAM_FIELD_ERR_HANDLING_MODE;
    ep.conn_request = request;
    ep.err_mode = UCP_ERR_HANDLING_MODE_PEER;
    ep.err_handler.cb = &impl::on_ep_error;
    ep.err_handler.arg = self;
    if (auto s = ucp_ep_create(self->worker_, &ep, &c->ep); s != UCS_OK) {
      spdlog::info("receiver {}: UCX connection from {} failed: {}", self->options_.target, c->peer,
                   ucs_status_string(s));
      return;
    }
    c->deadline = steady::now() + self->options_.first_frame_timeout;
    c->session = self->new_session(c->peer);
    self->conns_[c->ep] = std::move(c);
  }

  static void on_ep_error(void* arg, ucp_ep_h ep, ucs_status_t status) {
    auto* self = static_cast<impl*>(arg);
    if (auto it = self->conns_.find(ep); it != self->conns_.end()) {
      it->second->peer_gone = true;
      it->second->gone_reason = ucs_status_string(status);
    }
  }

  // A source connecting by address: header = its connection id. It is answered on the endpoint UCX made
  // for it (the reply endpoint; an endpoint of our own to the source's address lost early answers with
  // UCX 1.13 over shared memory). The connection exists from here on, as its data may follow at once;
  // its first answer is sent from drive().
  static ucs_status_t on_hello(void* arg, const void* header, size_t header_length, void*, size_t,
                               const ucp_am_recv_param_t* param) {
    auto* self = static_cast<impl*>(arg);
    std::uint64_t id = 0;
    if (header_length == 8) std::memcpy(&id, header, 8);
    if (self->stopped_) return UCS_OK;  // the source gets no answer and gives up
    if (id == 0 || (param->recv_attr & UCP_AM_RECV_ATTR_FIELD_REPLY_EP) == 0 || self->by_id_.contains(id) ||
        self->conns_.contains(param->reply_ep)) {
      spdlog::info("receiver {}: refused a UCX HELLO (connection id {}): malformed, without a reply endpoint, or "
                   "a connection that exists already", self->options_.target, to_hex16(id));
      return UCS_OK;
    }
    auto c = std::make_shared<ucx_conn>();
    c->id = id;
    c->ep = param->reply_ep;
    c->peer = "UCX connection " + to_hex16(id) + " (by address)";
    c->deadline = steady::now() + self->options_.first_frame_timeout;
    c->session = self->new_session(c->peer);
    self->by_id_[id] = c.get();
    self->greeting_.push_back(std::move(c));
    return UCS_OK;
  }

  static ucs_status_t on_data(void* arg, const void* header, size_t header_length, void* data, size_t length,
                              const ucp_am_recv_param_t* param) {
    auto* self = static_cast<impl*>(arg);
    const bool rndv = (param->recv_attr & UCP_AM_RECV_ATTR_FLAG_RNDV) != 0;
    const bool kept = rndv || (param->recv_attr & UCP_AM_RECV_ATTR_FLAG_DATA) != 0;
    ucx_conn* c = nullptr;
    std::uint64_t id = 0;
    if (header_length >= frame_prefix) std::memcpy(&id, static_cast<const std::byte*>(header) + wire::header_size + 8, 8);
    if (id != 0) {
      if (auto it = self->by_id_.find(id); it != self->by_id_.end()) c = it->second;
    } else if ((param->recv_attr & UCP_AM_RECV_ATTR_FIELD_REPLY_EP) != 0) {
      if (auto it = self->conns_.find(param->reply_ep); it != self->conns_.end()) c = it->second.get();
    }
    if (c == nullptr || c->closed || header_length < frame_prefix) {
      // Not from a connection of ours, or malformed: dropped (a connection then fails its session).
      if (c != nullptr && !c->closed) {
        c->peer_gone = true;
        c->gone_reason = "a malformed message";
      } else if (c == nullptr) {
        ++self->strays_;  // logged by tick()
      }
      return UCS_OK;
    }
    if (!c->refused.empty()) return UCS_OK;  // failing: nothing more is taken
    message m;
    std::memcpy(m.frame.data(), header, wire::header_size);
    std::uint64_t seq = 0;
    std::memcpy(&seq, static_cast<const std::byte*>(header) + wire::header_size, 8);
    if (header_length > frame_prefix) {  // the metadata rode in the header (checked against the frame later)
      m.metadata.assign(static_cast<const char*>(header) + frame_prefix, header_length - frame_prefix);
      m.metadata_in_header = true;
    }
    m.length = length;
    m.rndv = rndv;
    const std::uint64_t held = rndv ? m.metadata.size() : length + m.metadata.size();
    if (const char* why = refuse_ahead(*c, seq, held, self->options_.max_ahead_bytes)) {
      // Dropped here (UCX frees what it passed); the session fails at the next drive().
      if (c->refused.empty()) c->refused = why;
      return UCS_OK;
    }
    c->inbox_bytes += held;
    if (length > 0 && !kept) {
      // Eager bytes UCX cannot leave with us (e.g. read from a TCP stream buffer): valid only during this
      // callback. Small messages take this path, so the copy is small.
      m.copy = std::make_shared<std::vector<std::byte>>(static_cast<const std::byte*>(data),
                                                       static_cast<const std::byte*>(data) + length);
      m.data = m.copy->data();
      c->inbox.emplace(seq, std::move(m));
      return UCS_OK;
    }
    m.data = length > 0 ? data : nullptr;
    c->inbox.emplace(seq, std::move(m));
    return length > 0 ? UCS_INPROGRESS : UCS_OK;
  }

  // Why a message of sequence `seq` holding `held` bytes cannot wait in `c`'s inbox; null when it can.
  static const char* refuse_ahead(const ucx_conn& c, std::uint64_t seq, std::uint64_t held, std::uint64_t most) {
    if (seq < c.next_seq || c.inbox.contains(seq)) return "a message with a sequence number it sent before";
    if (c.inbox.size() >= max_inbox_messages) return "more messages ahead of its session than a session holds";
    if (c.inbox_bytes + held > most) return "more bytes ahead of its session than the receiver holds for one";
    return nullptr;
  }

  static void on_received(void*, ucs_status_t status, size_t, void* user_data) {
    detail::ucx_op_done(nullptr, status, user_data);
  }

  // ---- the loop ----
  void pump() {
    if (stopped_) return;
    for (;;) {
      while (ucp_worker_progress(worker_) != 0) {
      }
      drive();
      if (stopped_) return;
      if (ucp_worker_progress(worker_) != 0) continue;  // what drive() sent
      const auto s = ucp_worker_arm(worker_);
      if (s == UCS_ERR_BUSY) continue;
      break;
    }
    wake_->async_wait(asio::posix::stream_descriptor::wait_read,
                      [self = shared_from_this()](const boost::system::error_code& ec) {
                        if (!ec) self->pump();
                      });
  }

  // Deadlines, and a regular turn of the loop (UCX keepalives need progress too).
  void tick() {
    timer_.expires_after(std::chrono::milliseconds(200));
    timer_.async_wait([self = shared_from_this()](const boost::system::error_code& ec) {
      if (ec || self->stopped_) return;
      if (self->strays_ != 0) {
        spdlog::info("receiver {}: dropped {} UCX messages naming no connection of this channel", self->options_.target,
                     self->strays_);
        self->strays_ = 0;
      }
      const auto now = steady::now();
      for (auto& [ep, c] : self->conns_) {
        if (c->closed || c->peer_gone || now < c->deadline) continue;
        if (c->receiving())
          spdlog::info("receiver {}: tuple from {} stalled past the transfer deadline", self->options_.target, c->peer);
        else if (!c->session->begun())
          spdlog::info("receiver {}: {} sent nothing within {} ms; closed", self->options_.target, c->peer,
                       self->options_.first_frame_timeout.count());
        else
          spdlog::info("receiver {}: session from {} idle past {} ms; closed", self->options_.target, c->peer,
                       self->options_.idle_timeout.count());
        self->close(*c, false);
      }
      while (ucp_worker_progress(self->worker_) != 0) {
      }
      self->drive();
      self->tick();
    });
  }

  void drive() {
    for (auto& c : std::exchange(greeting_, {})) {
      send_answer(*c, {});  // sequence 0, no frames: the source's connect completes
      conns_[c->ep] = std::move(c);
    }
    for (auto it = conns_.begin(); it != conns_.end();) {
      auto c = it->second;  // keeps it alive while handled
      if (!c->closed) {
        if (c->peer_gone) {
          spdlog::info("receiver {}: connection from {} ended: {}", options_.target, c->peer, c->gone_reason);
          close(*c, false);
        } else if (!c->refused.empty()) {
          fail(*c, {c->session->last_id(), wire::error_code::bad_frame, "the source sent " + c->refused});
        } else {
          process(*c);
        }
      }
      if (c->closed && c->ep == nullptr) {
        if (c->id != 0) by_id_.erase(c->id);
        if (!c->stages.empty()) dying_.push_back(c);
        it = conns_.erase(it);
      } else {
        ++it;
      }
    }
    std::erase_if(dying_, [&](const std::shared_ptr<ucx_conn>& c) { return !drop_stages(*c); });
    std::erase_if(close_reqs_, [&](void* req) {
      if (ucp_request_check_status(req) == UCS_INPROGRESS) return false;
      ucp_request_free(req);
      return true;
    });
  }

  // Frees a stage's receive and its buffer once the receive is complete. False while it is in flight.
  bool finish_receive(stage& st) {
    if (st.buffer < 0) return true;
    if (!st.op.done.load(std::memory_order_acquire)) return false;
    if (st.request != nullptr && st.request != reinterpret_cast<void*>(1)) ucp_request_free(st.request);
    st.request = nullptr;
    auto& b = buffers_[static_cast<std::size_t>(st.buffer)];
    b.busy = false;
    if (b.size > kept_buffer_bytes) unmap(b);  // a rare huge tuple does not pin its memory for good
    st.buffer = -1;
    return true;
  }

  // A closed connection's stages: eager bytes go back to UCX, receives are awaited. True while some
  // receive is still in flight (its buffer cannot be reused before).
  bool drop_stages(ucx_conn& c) {
    while (!c.stages.empty()) {
      auto& st = *c.stages.front();
      if (!finish_receive(st)) return true;
      if (st.request == nullptr) release(st.m);
      c.stages.pop_front();
    }
    return false;
  }

  void process(ucx_conn& c) {
    while (!c.closed && !c.end_seen && !stopped_) {
      if (c.flushing && c.session->pending_full()) return;  // on_flushed() goes on
      take(c);
      if (c.closed) return;
      if (c.stages.empty() || !c.stages.front()->ready()) {
        // Nothing to hand over now: what was handed over becomes durable and is acknowledged meanwhile
        // (the flush runs on the handler's thread; the next payloads go on arriving).
        start_flush(c);
        return;
      }
      std::unique_ptr<stage> st = std::move(c.stages.front());
      c.stages.pop_front();
      complete(c, *st);
    }
  }

  // Takes the connection's next messages in order, as far as the pipeline and the buffers allow: headers
  // go through the session now, rendezvous payloads start arriving into a free buffer.
  void take(ucx_conn& c) {
    while (!c.closed && c.stages.size() < pipeline_depth) {
      auto next = c.inbox.find(c.next_seq);
      if (next == c.inbox.end()) return;
      int buffer = -1;
      if (next->second.rndv) {
        const auto free = std::ranges::find_if(buffers_, [](const receive_buffer& b) { return !b.busy; });
        if (free == buffers_.end()) return;  // a receive of this or another connection ends first
        buffer = static_cast<int>(free - buffers_.begin());
      }
      auto st = std::make_unique<stage>();
      st->m = std::move(next->second);
      c.inbox_bytes -= st->m.rndv ? st->m.metadata.size() : st->m.length + st->m.metadata.size();
      c.inbox.erase(next);
      ++c.next_seq;
      auto h = c.session->on_header(st->m.frame);
      if (h && h->type == wire::frame_type::data) {
        if (auto l = check_lengths(*h, st->m); !l) h = l.error();
      }
      if (!h) {
        release(st->m);
        return fail(c, h.error());
      }
      st->h = *h;
      if (buffer >= 0 && h->type == wire::frame_type::data) {
        if (auto r = receive_into(c, *st, buffer); !r) {
          release(st->m);
          return fail(c, {h->tuple_id, wire::error_code::internal, r.error().message});
        }
      }
      c.stages.push_back(std::move(st));
    }
  }

  // The lengths a message carries are the ones its frame declares (metadata in the header or in the data).
  static session_result<void> check_lengths(const wire::frame_header& h, const message& m) {
    if (m.metadata_in_header && m.metadata.size() != h.metadata_length)
      return session_fault{h.tuple_id, wire::error_code::bad_frame,
                           "metadata of " + std::to_string(m.metadata.size()) + " bytes in the header, the frame says " +
                               std::to_string(h.metadata_length)};
    return receiver_session::check_length(h, m.length + m.metadata.size());
  }

  // Starts the rendezvous receive of `st`'s data into buffer `index` (grown when needed).
  result<void> receive_into(ucx_conn& c, stage& st, int index) {
    auto& b = buffers_[static_cast<std::size_t>(index)];
    if (auto r = reserve(b, st.m.length); !r) return r;
    b.busy = true;
    st.buffer = index;
    c.deadline = steady::now() + options_.transfer_timeout;
    ucp_request_param_t rp{};
    rp.op_attr_mask = UCP_OP_ATTR_FIELD_CALLBACK | UCP_OP_ATTR_FIELD_USER_DATA;
    rp.cb.recv_am = &impl::on_received;
    rp.user_data = &st.op;
    if (b.memh != nullptr) {
      rp.op_attr_mask |= UCP_OP_ATTR_FIELD_MEMH;
      rp.memh = b.memh;
    }
    void* req = ucp_am_recv_data_nbx(worker_, st.m.data, b.data, st.m.length, &rp);
    st.m.data = nullptr;  // the descriptor is UCX's again
    if (req == nullptr || UCS_PTR_IS_ERR(req)) {
      st.request = reinterpret_cast<void*>(1);  // completed (or failed) at once
      st.op.status = req == nullptr ? UCS_OK : UCS_PTR_STATUS(req);
      st.op.done.store(true, std::memory_order_release);
    } else {
      st.request = req;
    }
    return {};
  }

  // A stage at the front whose bytes are all here: its tuple goes to the session (END: the session ends).
  void complete(ucx_conn& c, stage& st) {
    if (st.h.type == wire::frame_type::end) {
      release(st.m);
      c.end_seen = true;
      finish_end(c);
      return;
    }
    if (st.buffer >= 0 && st.op.status != UCS_OK) {
      spdlog::info("receiver {}: tuple {} from {} truncated: {}", options_.target, st.h.tuple_id, c.peer,
                   ucs_status_string(st.op.status));
      finish_receive(st);
      close(c, false);
      return;
    }
    // Eager bytes are where UCX put them; a rendezvous payload is in its buffer. Lengths: check_lengths.
    const auto* bytes = st.buffer < 0 ? static_cast<const std::byte*>(st.m.data)
                                      : buffers_[static_cast<std::size_t>(st.buffer)].data;
    const std::span<const std::byte> data(bytes, st.m.length);
    if (st.m.metadata_in_header) accept(c, st.h, std::as_bytes(std::span(st.m.metadata)), data);
    else accept(c, st.h, data.first(st.h.metadata_length), data.subspan(st.h.metadata_length));
    finish_receive(st);  // the buffer is free again
    release(st.m);       // eager bytes go back to UCX
  }

  void release(message& m) {
    if (m.data != nullptr && !m.copy) ucp_am_data_release(worker_, m.data);
    m.data = nullptr;
    m.copy.reset();
  }

  // `b` holds at least `n` bytes (grown and registered again when needed).
  result<void> reserve(receive_buffer& b, std::size_t n) {
    if (n <= b.size && b.data != nullptr) return {};
    unmap(b);
    const std::size_t size = (std::max<std::size_t>(n, 1 << 20) + 4095) / 4096 * 4096;
    b.data = static_cast<std::byte*>(std::aligned_alloc(4096, size));
    if (b.data == nullptr) return make_error(0, "out of memory for a " + std::to_string(n) + "-byte tuple");
    b.size = size;
    auto ctx = detail::ucx_context();
    ucp_mem_map_params_t mp{};
    mp.field_mask = UCP_MEM_MAP_PARAM_FIELD_ADDRESS | UCP_MEM_MAP_PARAM_FIELD_LENGTH;
    mp.address = b.data;
    mp.length = b.size;
    if (!ctx || ucp_mem_map(*ctx, &mp, &b.memh) != UCS_OK) {
      b.memh = nullptr;  // UCX registers per transfer then: slower, still correct
      spdlog::warn("receiver {}: cannot register a {}-byte receive buffer with UCX; each transfer registers its own",
                   options_.target, b.size);
    }
    return {};
  }

  void unmap(receive_buffer& b) {
    if (b.memh != nullptr) {
      if (auto ctx = detail::ucx_context()) ucp_mem_unmap(*ctx, b.memh);
      b.memh = nullptr;
    }
    std::free(b.data);
    b.data = nullptr;
    b.size = 0;
  }

  // A whole message: the session checks it and hands the tuple to the handler.
  void accept(ucx_conn& c, const wire::frame_header& h, std::span<const std::byte> metadata,
              std::span<const std::byte> payload) {
    auto due = c.session->on_body(h, metadata, payload);
    if (!due) return fail(c, due.error());
    c.deadline = steady::now() + options_.idle_timeout;
    if (*due) start_flush(c);
  }

  // After END: the session's last tuples are flushed, then END is answered and the connection closed.
  void finish_end(ucx_conn& c) {
    if (c.closed || c.flushing) return;  // on_flushed() comes back here
    if (c.session->has_pending()) return start_flush(c);
    if (send_answer(c, receiver_session::end_frame())) close(c, true);
  }

  // Starts making the pending tuples durable (unless a flush is in flight); on_flushed() sends their
  // acks from this io_context.
  void start_flush(ucx_conn& c) {
    if (c.closed || c.flushing || !c.session->has_pending()) return;
    c.flushing = true;
    c.deadline = steady::time_point::max();  // the store has a deadline of its own
    c.session->start_flush([self = shared_from_this(), conn = c.weak_from_this()](session_result<std::string> r) {
      asio::post(self->io_, [self, conn, r = std::move(r)]() mutable { self->on_flushed(conn, std::move(r)); });
    });
  }

  void on_flushed(const std::weak_ptr<ucx_conn>& conn, session_result<std::string> r) {
    const auto c = conn.lock();
    if (!c || stopped_) return;
    c->flushing = false;
    if (c->closed) return;  // the session ended meanwhile; its source resends what was not acknowledged
    if (!r) {
      fail(*c, r.error());
    } else {
      c->deadline = steady::now() + options_.idle_timeout;
      if (!r->empty() && !send_answer(*c, std::move(*r))) return;
      // What arrived meanwhile goes in the next flush at once: one store covers all of it.
      if (c->end_seen) finish_end(*c);
      else start_flush(*c);
    }
    // This ran outside pump(): send what was queued, take what arrived meanwhile, and go on with the
    // connections (this one's next tuples, when it had to wait for the flush).
    while (ucp_worker_progress(worker_) != 0) {
    }
    drive();
  }

  static void on_answer_sent(void*, ucs_status_t, void* user_data) { delete static_cast<std::string*>(user_data); }

  bool send_answer(ucx_conn& c, std::string frames) {
    if (c.ep == nullptr) return false;
    auto* owned = new std::string(std::move(frames));
    // Answers are small (80 bytes an ack) but a batch of acks can pass UCX's rendezvous threshold; the
    // source takes answers only as whole eager messages, so they are sent eagerly whatever their size.
    ucp_request_param_t rp{};
    rp.op_attr_mask = UCP_OP_ATTR_FIELD_CALLBACK | UCP_OP_ATTR_FIELD_USER_DATA | UCP_OP_ATTR_FIELD_FLAGS;
    rp.flags = UCP_AM_SEND_FLAG_EAGER;
    rp.cb.send = &impl::on_answer_sent;
    rp.user_data = owned;
    const std::uint64_t seq = c.answer_seq++;
    void* req = ucp_am_send_nbx(c.ep, detail::ucx_am_answer, &seq, sizeof seq, owned->data(), owned->size(), &rp);
    if (req == nullptr) {
      delete owned;
      return true;
    }
    if (UCS_PTR_IS_ERR(req)) {
      delete owned;
      spdlog::info("receiver {}: cannot answer {}: {}", options_.target, c.peer, ucs_status_string(UCS_PTR_STATUS(req)));
      close(c, false);
      return false;
    }
    ucp_request_free(req);  // the callback still runs and frees the bytes
    return true;
  }

  void fail(ucx_conn& c, const session_fault& f) {
    send_answer(c, c.session->reject(f));
    close(c, false);
  }

  // Ends the connection's session and closes its endpoint (flushing what was sent, unless the peer is
  // gone). A receive still in flight completes (with an error) before the buffer is reused.
  void close(ucx_conn& c, bool clean) {
    if (c.closed) return;
    c.closed = true;
    for (auto& [seq, m] : c.inbox) release(m);
    c.inbox.clear();
    c.inbox_bytes = 0;
    const bool receiving = c.receiving();
    if (clean) c.session->finish();
    c.session->end();
    c.session.reset();
    if (c.ep != nullptr) {
      ucp_request_param_t rp{};
      if (c.peer_gone || stopped_ || receiving) {
        rp.op_attr_mask = UCP_OP_ATTR_FIELD_FLAGS;
        rp.flags = UCP_EP_CLOSE_FLAG_FORCE;
      }
      void* req = ucp_ep_close_nbx(c.ep, &rp);
      if (req != nullptr && !UCS_PTR_IS_ERR(req)) close_reqs_.push_back(req);
      // The error handler may still name this endpoint; it is no longer in conns_ by then.
      c.ep = nullptr;
    }
  }

  void shutdown() {
    if (released_) return;
    released_ = true;
    stopped_ = true;
    boost::system::error_code ignored;
    timer_.cancel();
    if (wake_) {
      wake_->cancel(ignored);
      wake_->release();  // UCX owns the descriptor
    }
    if (listener_ != nullptr) ucp_listener_destroy(listener_);
    listener_ = nullptr;
    for (auto& [ep, c] : conns_) {
      c->peer_gone = true;
      close(*c, false);
      if (!c->stages.empty()) dying_.push_back(c);
    }
    conns_.clear();
    for (auto& c : greeting_) {
      for (auto& [seq, m] : c->inbox) release(m);
      c->inbox.clear();
    }
    greeting_.clear();
    by_id_.clear();
    const auto deadline = steady::now() + std::chrono::seconds(2);
    while ((!dying_.empty() || !close_reqs_.empty()) && steady::now() < deadline) {
      ucp_worker_progress(worker_);
      std::erase_if(dying_, [&](const std::shared_ptr<ucx_conn>& c) { return !drop_stages(*c); });
      std::erase_if(close_reqs_, [&](void* req) {
        if (ucp_request_check_status(req) == UCS_INPROGRESS) return false;
        ucp_request_free(req);
        return true;
      });
    }
    if (dying_.empty())
      for (auto& b : buffers_) unmap(b);  // else leaked rather than freed under a transfer
    if (worker_ != nullptr) ucp_worker_destroy(worker_);
    worker_ = nullptr;
  }
};

result<std::unique_ptr<ucx_receiver>> ucx_receiver::start(asio::io_context& io, receiver_options options,
                                                          tuple_handler& handler) {
  auto p = std::make_shared<impl>(io, std::move(options), handler);
  if (auto r = p->open(); !r) {
    p->shutdown();
    return r.error();
  }
  p->begin();
  return std::unique_ptr<ucx_receiver>(new ucx_receiver(std::move(p)));
}

ucx_receiver::ucx_receiver(std::shared_ptr<impl> p) : impl_(std::move(p)) {}

ucx_receiver::~ucx_receiver() { impl_->shutdown(); }

std::uint16_t ucx_receiver::port() const noexcept { return impl_->port_; }

std::string ucx_receiver::address() const { return impl_->address_; }

void ucx_receiver::stop() {
  impl_->stopped_ = true;
  asio::post(impl_->io_, [self = impl_] {
    boost::system::error_code ignored;
    self->timer_.cancel();
    if (self->wake_) self->wake_->cancel(ignored);
  });
}

receiver_counters ucx_receiver::counters() const {
  return impl_->stats_.snapshot();
}

}  // namespace hio
