// hio-zmq-sink: the processing end of the ZeroMQ baseline. N threads, each pinned to core i (as hio's
// channels are), each with its own PULL socket from the broker: receive a tuple, verify its XXH3, burn
// --busy-ms of CPU (the same loop as `busy:MS`), then acknowledge it through the broker. Runs until killed.

#include "zmq_pipeline.hpp"

#include <hio/common/hash.hpp>

#include <CLI/CLI.hpp>
#include <zmq.hpp>

#include <pthread.h>
#include <sched.h>

#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <span>
#include <string>
#include <thread>
#include <vector>

namespace {

void pin_to_core(unsigned core) {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(core, &set);
  if (pthread_setaffinity_np(pthread_self(), sizeof(set), &set) != 0)
    std::cerr << "hio-zmq-sink: could not pin a thread to core " << core << " (running unpinned)\n";
}

void serve(zmq::context_t& ctx, const std::string& from, const std::string& acks, unsigned core,
           std::chrono::milliseconds cost) {
  using namespace hio::bench;
  pin_to_core(core);
  zmq::socket_t in(ctx, zmq::socket_type::pull), out(ctx, zmq::socket_type::push);
  in.connect(from);
  out.connect(acks);
  zmq::message_t header, payload;
  for (;;) {
    if (!in.recv(header)) continue;
    ack_frame ack;
    bool complete = header.more() && in.recv(payload) && !payload.more();
    while (payload.more() && in.recv(payload)) complete = false;  // skip the rest of a malformed message
    if (!complete || header.size() != sizeof(tuple_header)) {
      ack.status = ack_status::malformed;
      if (header.size() >= sizeof(std::uint64_t)) std::memcpy(&ack.tuple_id, header.data(), sizeof(std::uint64_t));
    } else {
      tuple_header h;
      std::memcpy(&h, header.data(), sizeof h);
      ack.tuple_id = h.tuple_id;
      ack.sender = h.sender;
      const auto sum = hio::xxh3_64(std::span(static_cast<const std::byte*>(payload.data()), payload.size()));
      if (sum != h.xxh3) {
        ack.status = ack_status::checksum_mismatch;
      } else {
        if (cost.count() > 0) burn_cpu(cost);
        ack.status = ack_status::processed;
      }
    }
    out.send(zmq::buffer(&ack, sizeof ack));
  }
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"ZeroMQ sink for experiments/bench: verify, burn CPU, acknowledge"};
  std::string from, acks, ready_file;
  unsigned threads = 2;
  int busy_ms = 0, io_threads = 0;
  app.add_option("--from", from, "Broker endpoint to pull tuples from")->required();
  app.add_option("--acks", acks, "Broker endpoint to push acknowledgements to")->required();
  app.add_option("--threads", threads, "Processing threads, thread i pinned to core i mod cores")->capture_default_str();
  app.add_option("--busy-ms", busy_ms, "CPU burnt per tuple, ms")->capture_default_str();
  app.add_option("--io-threads", io_threads, "ZeroMQ I/O threads (0: one per processing thread)");
  app.add_option("--ready-file", ready_file, "Written once every thread has connected");
  CLI11_PARSE(app, argc, argv);

  zmq::context_t ctx(io_threads > 0 ? io_threads : static_cast<int>(threads));
  const unsigned cores = std::max(1u, std::thread::hardware_concurrency());
  std::vector<std::thread> pool;
  for (unsigned i = 0; i < threads; ++i)
    pool.emplace_back([&, i] {
      try {
        serve(ctx, from, acks, i % cores, std::chrono::milliseconds(busy_ms));
      } catch (const zmq::error_t& e) {
        std::cerr << "hio-zmq-sink: thread " << i << ": " << e.what() << std::endl;
        std::exit(1);
      }
    });
  if (!ready_file.empty()) {
    std::this_thread::sleep_for(std::chrono::milliseconds(200));  // connects are asynchronous in ZeroMQ
    std::ofstream(ready_file) << "ready\n";
  }
  for (auto& t : pool) t.join();
  return 0;
}
