// hio-zmq-broker: the extra hop of the ZeroMQ baseline. Relays tuples from sources (PULL) to sinks
// (PUSH) and acknowledgements from sinks (PULL) back to sources (PUSH), one proxy thread per direction.
// Nothing is stored: a tuple lives in the broker's memory only while it is relayed.

#include <CLI/CLI.hpp>
#include <zmq.hpp>

#include <cstdlib>
#include <iostream>
#include <string>
#include <thread>

int main(int argc, char** argv) {
  CLI::App app{"ZeroMQ broker for experiments/bench: PUSH->broker->PULL, acknowledgements back"};
  std::string data_in, data_out, acks_in, acks_out;
  int io_threads = 1;
  app.add_option("--in", data_in, "Endpoint to bind for sources' tuples, e.g. tcp://127.0.0.1:5601")->required();
  app.add_option("--out", data_out, "Endpoint to bind for sinks")->required();
  app.add_option("--acks-in", acks_in, "Endpoint to bind for sinks' acknowledgements")->required();
  app.add_option("--acks-out", acks_out, "Endpoint to bind for sources' acknowledgements")->required();
  app.add_option("--io-threads", io_threads, "ZeroMQ I/O threads")->capture_default_str();
  CLI11_PARSE(app, argc, argv);

  zmq::context_t ctx(io_threads);
  auto relay = [&ctx](const std::string& from, const std::string& to) {
    try {
      zmq::socket_t in(ctx, zmq::socket_type::pull), out(ctx, zmq::socket_type::push);
      in.bind(from);
      out.bind(to);
      zmq::proxy(in, out);
    } catch (const zmq::error_t& e) {
      std::cerr << "hio-zmq-broker: " << from << " -> " << to << ": " << e.what() << std::endl;
      std::exit(1);
    }
  };
  std::thread tuples(relay, data_in, data_out);
  std::thread acks(relay, acks_in, acks_out);
  tuples.join();
  acks.join();
  return 0;
}
