// hio-zmq-source: the sending end of the ZeroMQ baseline. S sender threads push tuples (header frame +
// payload frame, sent from the source's own buffer without a copy) to the broker, each holding at most
// --window-bytes unacknowledged (hio's connector holds 256 MiB); one thread collects the sinks'
// acknowledgements. Prints one JSON line like `hio bench`; exit status 0 when every tuple was
// acknowledged exactly once as processed.

#include "zmq_pipeline.hpp"

#include <hio/common/hash.hpp>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>
#include <zmq.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <iostream>
#include <mutex>
#include <random>
#include <span>
#include <string>
#include <thread>
#include <vector>

namespace {

using steady = std::chrono::steady_clock;

// Unacknowledged bytes of one sender; the sender waits while it is over the window.
struct window {
  std::mutex m;
  std::condition_variable cv;
  std::uint64_t bytes = 0;
};

}  // namespace

int main(int argc, char** argv) {
  using namespace hio::bench;
  CLI::App app{"ZeroMQ source for experiments/bench: tuples through the broker, acknowledged end to end"};
  std::string broker, acks;
  std::uint64_t size = 1 << 20, count = 1000, window_bytes = 256ull << 20;
  unsigned sources = 1;
  int timeout_s = 900;
  app.add_option("--broker", broker, "Broker endpoint to push tuples to")->required();
  app.add_option("--acks", acks, "Broker endpoint to pull acknowledgements from")->required();
  app.add_option("--size", size, "Tuple bytes")->capture_default_str();
  app.add_option("--count", count, "Tuples in all")->capture_default_str();
  app.add_option("--sources", sources, "Concurrent sender threads")->capture_default_str();
  app.add_option("--window-bytes", window_bytes, "Unacknowledged bytes per sender")->capture_default_str();
  app.add_option("--timeout-s", timeout_s, "Give up waiting for acknowledgements after this")->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  if (sources == 0 || size == 0) {
    std::cerr << "hio-zmq-source: --sources and --size must be positive\n";
    return 2;
  }

  // A few distinct random tuples reused round-robin, as `hio bench` does.
  const std::size_t distinct = std::max<std::size_t>(1, std::min<std::size_t>(16, (256ull << 20) / size));
  std::vector<std::vector<std::byte>> tuples(distinct, std::vector<std::byte>(size));
  std::mt19937_64 rng(1);
  for (auto& t : tuples)
    for (std::size_t i = 0; i < t.size(); i += 8) {
      const auto v = rng();
      std::memcpy(t.data() + i, &v, std::min<std::size_t>(8, t.size() - i));
    }

  zmq::context_t ctx(1);
  zmq::socket_t ack_socket(ctx, zmq::socket_type::pull);
  ack_socket.connect(acks);
  std::vector<window> windows(sources);
  std::vector<std::uint8_t> seen(count, 0);
  std::uint64_t processed = 0, bad = 0, duplicates = 0, unknown = 0, answered = 0;
  std::atomic<bool> stop{false};
  std::atomic<std::uint64_t> send_errors{0};

  const auto start = steady::now();
  std::vector<std::thread> senders;
  for (unsigned s = 0; s < sources; ++s)
    senders.emplace_back([&, s] {
      try {
        zmq::socket_t out(ctx, zmq::socket_type::push);
        out.set(zmq::sockopt::linger, 0);
        out.connect(broker);
        auto& w = windows[s];
        for (std::uint64_t id = s; id < count && !stop; id += sources) {
          {
            std::unique_lock lock(w.m);
            w.cv.wait(lock, [&] { return stop || w.bytes == 0 || w.bytes + size <= window_bytes; });
            if (stop) break;
            w.bytes += size;
          }
          auto& t = tuples[id % tuples.size()];
          tuple_header h{id, hio::xxh3_64(std::span<const std::byte>(t)), s, 0};
          out.send(zmq::buffer(&h, sizeof h), zmq::send_flags::sndmore);
          out.send(zmq::message_t(t.data(), t.size(), nullptr, nullptr), zmq::send_flags::none);
        }
        // Keep the socket open until every tuple of this sender has left it (linger 0 would drop them).
        std::unique_lock lock(w.m);
        w.cv.wait(lock, [&] { return stop || w.bytes == 0; });
      } catch (const zmq::error_t& e) {
        std::cerr << "hio-zmq-source: sender " << s << ": " << e.what() << std::endl;
        ++send_errors;
      }
    });

  // Acknowledgements, until every tuple has one or the deadline passes.
  const auto deadline = start + std::chrono::seconds(timeout_s);
  std::uint64_t unique = 0;
  auto last_ack = start;
  zmq::message_t msg;
  while (unique < count && steady::now() < deadline && send_errors == 0) {
    zmq::pollitem_t item{ack_socket.handle(), 0, ZMQ_POLLIN, 0};
    zmq::poll(&item, 1, std::chrono::milliseconds(200));
    while (ack_socket.recv(msg, zmq::recv_flags::dontwait)) {
      ++answered;
      last_ack = steady::now();
      ack_frame a;
      if (msg.size() != sizeof a) {
        ++unknown;
        continue;
      }
      std::memcpy(&a, msg.data(), sizeof a);
      if (a.tuple_id >= count || a.sender >= sources) {
        ++unknown;
        continue;
      }
      if (seen[a.tuple_id]++ != 0) {
        ++duplicates;
        continue;
      }
      ++unique;
      (a.status == ack_status::processed ? processed : bad)++;
      auto& w = windows[a.sender];
      {
        std::lock_guard lock(w.m);
        w.bytes -= std::min(w.bytes, size);
      }
      w.cv.notify_one();
    }
  }
  stop = true;
  for (auto& w : windows) {
    std::lock_guard lock(w.m);
    w.cv.notify_all();
  }
  for (auto& t : senders) t.join();

  const double secs = std::chrono::duration<double>(last_ack - start).count();
  const std::uint64_t missing = count - unique;
  nlohmann::json out = {{"mode", "zmq"},
                        {"size", size},
                        {"sources", sources},
                        {"tuples", processed},
                        {"errors", bad + unknown + missing + send_errors.load()},
                        {"checksum_or_malformed", bad},
                        {"duplicates", duplicates},
                        {"missing", missing},
                        {"answered", answered},
                        {"seconds", secs},
                        {"tuples_per_s", secs > 0 ? static_cast<double>(processed) / secs : 0.0},
                        {"bytes_per_s", secs > 0 ? static_cast<double>(processed * size) / secs : 0.0}};
  std::cout << out.dump() << std::endl;
  return processed == count && duplicates == 0 && unknown == 0 ? 0 : 1;
}
