#include <hio/worker/channel.hpp>

#include <hio/common/log.hpp>

#include <boost/asio/post.hpp>

#include <exception>
#include <stdexcept>
#include <utility>

namespace hio::worker {

result<std::unique_ptr<channel>> channel::start(channel_options options, std::unique_ptr<processor> p,
                                                std::unique_ptr<record_sink> sink, free_notifier notify,
                                                const topology* topo) {
  auto handler = std::make_unique<channel_handler>(options.worker_id, options.index, std::move(p),
                                                   std::move(sink), std::move(notify), options.sessions);
  const std::uint16_t port = options.port;
  const std::uint16_t ucx_port = options.ucx_port;
  std::unique_ptr<channel> c(new channel(std::move(options), std::move(handler), topo));
  {
    std::lock_guard lock(c->mutex_);
    if (auto opened = c->open_receiver(port, ucx_port); !opened) return opened.error();
  }
  c->thread_ = std::thread([raw = c.get()] { raw->run(); });
  return c;
}

channel::channel(channel_options options, std::unique_ptr<channel_handler> handler, const topology* topo)
    : options_(std::move(options)), handler_(std::move(handler)), topo_(topo) {}

channel::~channel() {
  stop();
  std::lock_guard lock(mutex_);
  ucx_receiver_.reset();
  receiver_.reset();  // before the io_context its connections live on
  handler_->wait_stores();  // a store's answer is posted to the io_context: it must still exist
  guard_.reset();
  io_.reset();
}

result<void> channel::open_receiver(std::uint16_t port, std::uint16_t ucx_port) {
  io_ = std::make_unique<boost::asio::io_context>(1);
  guard_.emplace(io_->get_executor());
  receiver_options ro;
  ro.host = options_.host;
  ro.port = port;
  ro.secret = options_.secret;
  ro.target = channel_target(options_.worker_id, options_.index);
  ro.max_tuple_bytes = options_.max_tuple_bytes;
  ro.connections = options_.connections;
  auto r = receiver::start(*io_, ro, *handler_);
  if (!r) {
    guard_.reset();
    io_.reset();
    return make_error(r.error().code, "channel " + std::to_string(options_.index) + ": cannot listen on " +
                                          options_.host + ":" + std::to_string(port) + ": " +
                                          r.error().message);
  }
  if (options_.ucx) {
    ro.port = ucx_port;
    auto u = ucx_receiver::start(*io_, std::move(ro), *handler_);
    if (!u) {
      (*r).reset();
      guard_.reset();
      io_.reset();
      return make_error(u.error().code, "channel " + std::to_string(options_.index) + ": " + u.error().message);
    }
    ucx_receiver_ = std::move(*u);
    ucx_port_.store(ucx_receiver_->port());
    std::lock_guard lock(address_mutex_);
    ucx_address_ = ucx_receiver_->address();
  }
  receiver_ = std::move(*r);
  port_.store(receiver_->port());
  return {};
}

std::string channel::ucx_address() const {
  std::lock_guard lock(address_mutex_);
  return ucx_address_;
}

channel_status channel::status() const {
  auto s = handler_->status();
  s.port = port_.load();
  std::lock_guard lock(mutex_);
  s.refused_connections = refused_before_ + (receiver_ ? receiver_->counters().refused_connections : 0);
  return s;
}

void channel::stop() {
  if (stopping_.exchange(true)) {
    if (thread_.joinable() && thread_.get_id() != std::this_thread::get_id()) thread_.join();
    return;
  }
  handler_->sink().cancel();
  {
    std::lock_guard lock(mutex_);
    if (receiver_) receiver_->stop();
    if (ucx_receiver_) ucx_receiver_->stop();
    if (io_) io_->stop();
  }
  if (thread_.joinable()) thread_.join();
}

void channel::inject_fault() {
  std::lock_guard lock(mutex_);
  if (io_) {
    boost::asio::post(*io_, [] { throw std::runtime_error("injected fault"); });
  }
}

void channel::run() {
  if (topo_ != nullptr && options_.core >= 0) {
    if (auto bound = topo_->bind_current_thread(static_cast<std::size_t>(options_.core)); !bound) {
      spdlog::warn("channel {}: not pinned: {}", options_.index, bound.error().message);
    }
  }
  while (!stopping_.load()) {
    std::string why;
    try {
      boost::asio::io_context* io = nullptr;
      {
        std::lock_guard lock(mutex_);
        io = io_.get();
      }
      if (io != nullptr) {
        io->run();
        if (stopping_.load()) break;
        why = "its io_context stopped";
      } else {
        why = "it has no listening socket";
      }
    } catch (const std::exception& e) {
      why = e.what();
    } catch (...) {
      why = "unknown exception";
    }
    if (stopping_.load()) break;
    spdlog::error("channel {}: run loop failed ({}); restarting (restart {})", options_.index, why,
                  handler_->status().restarts + 1);
    if (restart()) handler_->count_restart();  // counted once it listens again
  }
}

bool channel::restart() {
  {
    std::lock_guard lock(mutex_);
    if (receiver_) {
      receiver_->stop();
      refused_before_ += receiver_->counters().refused_connections;
    }
    ucx_receiver_.reset();
    receiver_.reset();
    handler_->wait_stores();  // their answers are posted to the io_context: it must still exist
    guard_.reset();
    io_.reset();  // destroys the connections' coroutines
  }
  handler_->abort_session();
  std::this_thread::sleep_for(options_.restart_delay);
  const std::uint16_t old_port = port_.load();
  const std::uint16_t old_ucx_port = ucx_port_.load();
  for (int attempt = 0;; ++attempt) {
    {
      std::lock_guard lock(mutex_);
      if (stopping_.load()) return false;  // stop() found no io_context to stop; it only joins
      // The same port first (for ~1 s: a closing socket may hold it briefly), then any free one.
      const std::uint16_t port = attempt < 10 ? old_port : std::uint16_t{0};
      auto opened = open_receiver(port, attempt < 10 ? old_ucx_port : std::uint16_t{0});
      if (opened) {
        if (port_.load() != old_port) {
          spdlog::warn("channel {}: restarted on port {} (port {} could not be bound again)", options_.index,
                       port_.load(), old_port);
        }
        return true;
      }
      if (attempt >= 10) spdlog::error("{}", opened.error().message);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
}

}  // namespace hio::worker
