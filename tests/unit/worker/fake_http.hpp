#pragma once
// A fake HTTP peer for the worker's tests (a stand-in master or repository): serves on loopback from its
// own thread, records every request and answers through a replaceable function. Thread-safe.

#include <hio/common/http.hpp>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>

#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace hio::worker::test {

class fake_http {
 public:
  explicit fake_http(std::function<http::response(const http::request&)> answer =
                         [](const http::request&) { return http::json_response("{}"); })
      : answer_(std::move(answer)) {
    auto s = http::server::start(io_, http::server_options{}, [this](const http::request& r) {
      std::function<http::response(const http::request&)> answer;
      {
        std::lock_guard lock(mutex_);
        requests_.push_back(r);
        answer = answer_;
      }
      return answer(r);
    });
    if (s) server_ = std::move(*s);
    thread_ = std::thread([this] { io_.run(); });
  }
  ~fake_http() {
    if (server_) server_->stop();
    work_.reset();
    io_.stop();
    thread_.join();
  }

  bool ok() const { return server_ != nullptr; }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(server_->port()); }

  void answer_with(std::function<http::response(const http::request&)> answer) {
    std::lock_guard lock(mutex_);
    answer_ = std::move(answer);
  }
  std::vector<http::request> requests() const {
    std::lock_guard lock(mutex_);
    return requests_;
  }
  std::vector<http::request> requests(const std::string& method, const std::string& path) const {
    std::vector<http::request> out;
    for (auto& r : requests()) {
      if (r.method == method && r.path == path) out.push_back(r);
    }
    return out;
  }
  // Waits up to `limit` for `done()` to hold.
  static bool eventually(const std::function<bool()>& done,
                         std::chrono::milliseconds limit = std::chrono::seconds(10)) {
    const auto until = std::chrono::steady_clock::now() + limit;
    while (std::chrono::steady_clock::now() < until) {
      if (done()) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return done();
  }

 private:
  boost::asio::io_context io_{1};
  std::unique_ptr<boost::asio::executor_work_guard<boost::asio::io_context::executor_type>> work_ =
      std::make_unique<boost::asio::executor_work_guard<boost::asio::io_context::executor_type>>(io_.get_executor());
  mutable std::mutex mutex_;
  std::vector<http::request> requests_;
  std::function<http::response(const http::request&)> answer_;
  std::unique_ptr<http::server> server_;
  std::thread thread_;
};

}  // namespace hio::worker::test
