// The only translation unit that includes Boost.Beast.
#include <hio/common/http.hpp>
#include <hio/common/log.hpp>

#include "detail_listen.hpp"
#include "detail_spawn.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <mutex>
#include <set>

namespace hio::http {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = asio::ip::tcp;

std::string request::header(const std::string& lower_name) const {
  auto it = headers.find(lower_name);
  return it == headers.end() ? std::string{} : it->second;
}

std::string request::bearer() const {
  const std::string h = header("authorization");
  constexpr std::string_view prefix = "Bearer ";
  if (h.size() > prefix.size() && std::equal(prefix.begin(), prefix.end(), h.begin())) return h.substr(prefix.size());
  return {};
}

response error_response(int status, std::string_view message) {
  response r;
  r.status = status;
  r.body = nlohmann::json{{"error", message}}.dump() + "\n";
  return r;
}

response json_response(std::string body, int status) {
  response r;
  r.status = status;
  r.body = std::move(body);
  if (r.body.empty() || r.body.back() != '\n') r.body.push_back('\n');
  return r;
}

namespace {

std::string url_decode(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '+') {
      out.push_back(' ');
    } else if (s[i] == '%' && i + 2 < s.size() && std::isxdigit(static_cast<unsigned char>(s[i + 1])) &&
               std::isxdigit(static_cast<unsigned char>(s[i + 2]))) {
      out.push_back(static_cast<char>(std::stoi(std::string(s.substr(i + 1, 2)), nullptr, 16)));
      i += 2;
    } else {
      out.push_back(s[i]);
    }
  }
  return out;
}

void split_target(request& r) {
  const auto q = r.target.find('?');
  r.path = url_decode(std::string_view(r.target).substr(0, q));
  if (q == std::string::npos) return;
  std::string_view rest = std::string_view(r.target).substr(q + 1);
  while (!rest.empty()) {
    const auto amp = rest.find('&');
    const std::string_view kv = rest.substr(0, amp);
    const auto eq = kv.find('=');
    if (!kv.empty())
      r.query[url_decode(kv.substr(0, eq))] = eq == std::string_view::npos ? "" : url_decode(kv.substr(eq + 1));
    if (amp == std::string_view::npos) break;
    rest = rest.substr(amp + 1);
  }
}

bhttp::response<bhttp::string_body> to_beast(response&& r, unsigned version, bool keep_alive) {
  bhttp::response<bhttp::string_body> res{static_cast<bhttp::status>(r.status), version};
  res.set(bhttp::field::server, "hio");
  res.set(bhttp::field::content_type, r.content_type);
  for (auto& [k, v] : r.headers) res.set(k, v);
  res.keep_alive(keep_alive);
  res.body() = std::move(r.body);
  res.prepare_payload();
  return res;
}

}  // namespace

struct server::impl : std::enable_shared_from_this<server::impl> {
  impl(asio::io_context& io, server_options o, handler h)
      : io_(io), options_(std::move(o)), handler_(std::move(h)), acceptor_(io) {}

  asio::io_context& io_;
  server_options options_;
  handler handler_;
  tcp::acceptor acceptor_;
  std::uint16_t port_ = 0;
  std::mutex mutex_;
  std::set<std::shared_ptr<beast::tcp_stream>> open_;
  std::atomic<bool> stopped_{false};
  connection_limits limits_{options_.connections};
  log_limiter refusal_log_;

  asio::awaitable<void> accept_loop() {
    auto self = shared_from_this();
    std::chrono::steady_clock::time_point last_log{};
    while (!stopped_) {
      auto [ec, socket] = co_await acceptor_.async_accept(asio::as_tuple(asio::use_awaitable));
      if (ec) {
        if (stopped_ || ec == asio::error::operation_aborted) co_return;
        co_await detail::after_accept_error(ec, "http", last_log);
        continue;
      }
      boost::system::error_code ignored;
      std::string address;
      if (auto ep = socket.remote_endpoint(ignored); !ignored) address = ep.address().to_string();
      if (const auto v = limits_.admit(address); v != connection_limits::verdict::admitted) {
        socket.close(ignored);
        log_limited(refusal_log_, spdlog::level::warn, "http :{}: closed a connection from {}: {}", port_, address,
                    detail::refusal_reason(v, limits_.options()));
        continue;
      }
      auto stream = std::make_shared<beast::tcp_stream>(std::move(socket));
      {
        std::lock_guard lock(mutex_);
        open_.insert(stream);
      }
      asio::co_spawn(stream->get_executor(), serve(stream, std::move(address)), detail::reported("http: connection"));
    }
  }

  // `address` holds a slot of limits_, given back when the connection ends.
  asio::awaitable<void> serve(std::shared_ptr<beast::tcp_stream> stream, std::string address) {
    auto self = shared_from_this();
    const detail::on_exit release_slot([&] { limits_.release(address); });
    beast::flat_buffer buffer;
    std::string remote;
    {
      boost::system::error_code ec;
      auto ep = stream->socket().remote_endpoint(ec);
      if (!ec) remote = ep.address().to_string() + ":" + std::to_string(ep.port());
    }
    const detail::on_exit close_stream([&] {
      boost::system::error_code ignored;
      stream->socket().shutdown(tcp::socket::shutdown_both, ignored);
      stream->socket().close(ignored);
      std::lock_guard lock(mutex_);
      open_.erase(stream);
    });
    bool first = true;
    for (;;) {
      bhttp::request_parser<bhttp::string_body> parser;
      parser.body_limit(options_.max_body_bytes);
      parser.header_limit(64 * 1024);
      stream->expires_after(first ? options_.read_timeout : options_.idle_timeout);
      auto [ec, n] = co_await bhttp::async_read_header(*stream, buffer, parser, asio::as_tuple(asio::use_awaitable));
      if (!ec && options_.body_limit) {
        // The endpoint's own limit, decided before a byte of the body is read (a lease body is a few
        // hundred bytes: the master does not take 64 MiB to find that out).
        const std::string_view target(parser.get().target().data(), parser.get().target().size());
        const std::string_view path = target.substr(0, target.find('?'));
        const std::string_view method(parser.get().method_string().data(), parser.get().method_string().size());
        const std::uint64_t limit = std::min(options_.max_body_bytes, options_.body_limit(method, path));
        parser.body_limit(limit);  // holds for a chunked body as it arrives
        // The parser compared a declared Content-Length with the limit it had while reading the header.
        if (const auto declared = parser.content_length(); declared && *declared > limit) ec = bhttp::error::body_limit;
      }
      if (!ec && !parser.is_done()) {
        auto [body_ec, m] = co_await bhttp::async_read(*stream, buffer, parser, asio::as_tuple(asio::use_awaitable));
        ec = body_ec;
        n += m;
      }
      (void)n;
      if (ec) {
        if (ec == bhttp::error::end_of_stream || ec == beast::error::timeout || ec == asio::error::eof ||
            ec == asio::error::operation_aborted || ec == asio::error::connection_reset)
          break;
        // Malformed or too large: answer once, then close.
        const int status = ec == bhttp::error::body_limit ? 413 : 400;
        static log_limiter limit;
        log_limited(limit, spdlog::level::info, "http: {} from {}: {}", status, remote, ec.message());
        auto res = to_beast(error_response(status, "malformed request: " + ec.message()), 11, false);
        stream->expires_after(options_.read_timeout);
        co_await bhttp::async_write(*stream, res, asio::as_tuple(asio::use_awaitable));
        break;
      }
      first = false;
      auto& breq = parser.get();
      request req;
      req.method = std::string(breq.method_string());
      req.target = std::string(breq.target());
      for (auto& f : breq) {
        std::string name(f.name_string());
        std::transform(name.begin(), name.end(), name.begin(), [](unsigned char c) { return std::tolower(c); });
        req.headers[name] = std::string(f.value());
      }
      req.body = std::move(breq.body());
      req.remote = remote;
      split_target(req);
      response r;
      try {
        r = handler_(req);
      } catch (const std::exception& e) {
        static log_limiter limit;
        log_limited(limit, spdlog::level::err, "http: handler for {} {} threw: {}", log_escape(req.method, 16),
                    log_escape(req.path, 200), log_escape(e.what()));
        r = error_response(500, std::string("internal error: ") + e.what());
      }
      const bool keep = breq.keep_alive() && !stopped_;
      auto res = to_beast(std::move(r), breq.version(), keep);
      stream->expires_after(options_.read_timeout);
      auto [wec, wn] = co_await bhttp::async_write(*stream, res, asio::as_tuple(asio::use_awaitable));
      (void)wn;
      if (wec || !keep) break;
    }
  }

  void stop() {
    if (stopped_.exchange(true)) return;
    asio::post(acceptor_.get_executor(), [self = shared_from_this()] {
      boost::system::error_code ec;
      self->acceptor_.close(ec);
      std::lock_guard lock(self->mutex_);
      for (auto& s : self->open_) s->socket().close(ec);
    });
  }
};

result<std::unique_ptr<server>> server::start(asio::io_context& io, server_options options, handler h) {
  auto p = std::make_shared<impl>(io, std::move(options), std::move(h));
  auto port = detail::listen(p->acceptor_, p->options_.host, p->options_.port);
  if (!port) return port.error();
  p->port_ = *port;
  asio::co_spawn(io, p->accept_loop(), detail::reported("http: accept loop"));
  return std::unique_ptr<server>(new server(std::move(p)));
}

server::server(std::shared_ptr<impl> p) : impl_(std::move(p)) {}
server::~server() { stop(); }
std::uint16_t server::port() const noexcept { return impl_->port_; }
std::uint64_t server::refused_connections() const { return impl_->limits_.refused(); }
void server::stop() { impl_->stop(); }

struct client::impl {
  asio::io_context io;
  std::optional<beast::tcp_stream> stream;
  beast::flat_buffer buffer;
  url_parts where;
  std::string host_header;
  std::string bearer;
  std::chrono::milliseconds timeout{};
  std::uint64_t max_body = 4ull << 30;
  std::string parse_error;

  // Runs the io_context until `done` or the stream's deadline; returns the operation's error code.
  template <class Op>
  boost::system::error_code run(Op&& op) {
    boost::system::error_code result = asio::error::would_block;
    op([&](boost::system::error_code ec, auto&&...) { result = ec; });
    io.restart();
    io.run();
    return result;
  }

  boost::system::error_code connect() {
    stream.emplace(io);
    tcp::resolver resolver(io);
    boost::system::error_code ec;
    auto endpoints = resolver.resolve(where.host, std::to_string(where.port), ec);
    if (ec) return ec;
    stream->expires_after(timeout);
    ec = run([&](auto h) { stream->async_connect(endpoints, h); });
    if (!ec) stream->socket().set_option(tcp::no_delay(true), ec);
    return ec;
  }

  boost::system::error_code exchange(bhttp::request<bhttp::string_body>& req,
                                     bhttp::response<bhttp::string_body>& res) {
    stream->expires_after(timeout);
    auto ec = run([&](auto h) { bhttp::async_write(*stream, req, h); });
    if (ec) return ec;
    bhttp::response_parser<bhttp::string_body> parser;
    parser.body_limit(max_body);
    stream->expires_after(timeout);
    ec = run([&](auto h) { bhttp::async_read(*stream, buffer, parser, h); });
    if (!ec) res = parser.release();
    return ec;
  }
};

client::client(std::string base_url, std::string bearer, std::chrono::milliseconds timeout)
    : base_url_(std::move(base_url)), impl_(std::make_unique<impl>()) {
  auto parts = parse_url(base_url_);
  if (parts) {
    impl_->where = *parts;
    impl_->host_header = parts->host + ":" + std::to_string(parts->port);
  } else {
    impl_->parse_error = parts.error().message;
  }
  impl_->bearer = std::move(bearer);
  impl_->timeout = timeout;
}

void client::set_max_body_bytes(std::uint64_t limit) noexcept { impl_->max_body = limit; }

client::~client() = default;
client::client(client&&) noexcept = default;
client& client::operator=(client&&) noexcept = default;

result<response> client::request(std::string_view method, std::string_view target, std::string_view body,
                                 std::string_view content_type) {
  auto& d = *impl_;
  if (!d.parse_error.empty()) return make_error(0, d.parse_error);
  bhttp::request<bhttp::string_body> req{bhttp::string_to_verb(method), target, 11};
  req.set(bhttp::field::host, d.host_header);
  req.set(bhttp::field::user_agent, "hio");
  if (!d.bearer.empty()) req.set(bhttp::field::authorization, "Bearer " + d.bearer);
  if (!body.empty() || method == "POST" || method == "PUT") {
    req.set(bhttp::field::content_type, content_type);
    req.body() = std::string(body);
  }
  req.keep_alive(true);
  req.prepare_payload();

  boost::system::error_code ec;
  bhttp::response<bhttp::string_body> res;
  for (int attempt = 0; attempt < 2; ++attempt) {
    const bool reused = d.stream.has_value();
    if (!reused) {
      d.buffer.clear();
      ec = d.connect();
      if (ec) {
        d.stream.reset();
        return make_error(0, "cannot reach " + base_url_ + ": " + ec.message());
      }
    }
    ec = d.exchange(req, res);
    if (!ec) break;
    d.stream.reset();
    d.buffer.clear();
    if (!reused || ec == beast::error::timeout) break;  // only a stale keep-alive connection is retried
  }
  if (ec) return make_error(0, std::string(method) + " " + base_url_ + std::string(target) + ": " + ec.message());
  response r;
  r.status = static_cast<int>(res.result_int());
  r.content_type = std::string(res[bhttp::field::content_type]);
  for (auto& f : res)
    if (f.name() != bhttp::field::content_type) r.headers.emplace_back(std::string(f.name_string()), std::string(f.value()));
  r.body = std::move(res.body());
  if (!res.keep_alive()) {
    d.stream.reset();
    d.buffer.clear();
  }
  return r;
}

}  // namespace hio::http
