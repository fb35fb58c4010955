#pragma once
// A small HTTP/1.1 server and client. Boost.Beast stays inside http.cpp: everything that serves or calls
// REST goes through here, so only one translation unit pays for Beast.

#include <hio/common/connection_limits.hpp>
#include <hio/common/error.hpp>

#include <boost/asio/io_context.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace hio::http {

struct request {
  std::string method;   // "GET", "POST", ...
  std::string target;   // path and query, as sent
  std::string path;     // target without the query
  std::map<std::string, std::string> query;  // decoded query parameters
  std::map<std::string, std::string> headers;  // lower-case names
  std::string body;
  std::string remote;   // peer address

  std::string header(const std::string& lower_name) const;
  // The token of an "Authorization: Bearer <token>" header, or "".
  std::string bearer() const;
};

struct response {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;
};

// {"error": message} with the given status.
response error_response(int status, std::string_view message);
response json_response(std::string body, int status = 200);

using handler = std::function<response(const request&)>;

struct server_options {
  std::string host = "127.0.0.1";
  std::uint16_t port = 0;                                   // 0: any free port
  std::uint64_t max_body_bytes = 64ull << 20;               // larger bodies get 413
  // The body limit of one request, from its method and path (after the header arrived, before the body
  // is read); at most max_body_bytes. Empty: max_body_bytes for every request.
  std::function<std::uint64_t(std::string_view method, std::string_view path)> body_limit;
  std::chrono::milliseconds read_timeout{10000};            // a request must arrive within this
  std::chrono::milliseconds idle_timeout{60000};            // keep-alive connections close after this
  connection_limit_options connections;                     // connections at once, per peer address and in all
};

// Serves `handler` on every connection, one coroutine per connection, on the given io_context (which
// the caller runs, from one or more threads; handlers may then run concurrently). A handler that throws
// produces a 500 and a log line; malformed requests get 400 without reaching the handler.
class server {
 public:
  // Error when the address cannot be bound.
  static result<std::unique_ptr<server>> start(boost::asio::io_context& io, server_options options,
                                               handler h);
  ~server();
  std::uint16_t port() const noexcept;
  // Connections closed at accept because a limit of options.connections was reached.
  std::uint64_t refused_connections() const;
  void stop();  // stops accepting and closes open connections; safe to call twice

  struct impl;

 private:
  explicit server(std::shared_ptr<impl> p);
  std::shared_ptr<impl> impl_;
};

// A blocking keep-alive client for one host. Not thread-safe: one per thread.
class client {
 public:
  // `base_url` is "http://host:port"; `bearer` (if not empty) goes into every request's Authorization.
  explicit client(std::string base_url, std::string bearer = {},
                  std::chrono::milliseconds timeout = std::chrono::seconds(10));
  ~client();
  client(client&&) noexcept;
  client& operator=(client&&) noexcept;

  // The response of any status; an error (code 0) only when no response came (refused, timeout, reset).
  // A stale keep-alive connection is reopened once before giving up.
  result<response> request(std::string_view method, std::string_view target, std::string_view body = {},
                           std::string_view content_type = "application/json");
  result<response> get(std::string_view target) { return request("GET", target); }
  result<response> post(std::string_view target, std::string_view body,
                        std::string_view content_type = "application/json") {
    return request("POST", target, body, content_type);
  }

  const std::string& base_url() const noexcept { return base_url_; }
  // Answers with a longer body are an error (code 0), read no further than the limit (default 4 GiB).
  void set_max_body_bytes(std::uint64_t limit) noexcept;

 private:
  struct impl;
  std::string base_url_;
  std::unique_ptr<impl> impl_;
};

struct url_parts {
  std::string host;
  std::uint16_t port = 0;
};
// Parses "http://host:port[/path...]", or "host:port" (http:// understood), with Boost.URL (common/src/url.cpp).
// The host is a name, an IPv4 address or a bracketed IPv6 one ([::1], given back without brackets).
// Error, saying why, for another scheme (hio speaks plain HTTP), a user name or password in the URL,
// no port, or a port outside 1..65535.
result<url_parts> parse_url(std::string_view url);

}  // namespace hio::http
