// hio-worker: one pinned channel per core, registered with the master, draining to the repository.
#include <hio/common/http.hpp>
#include <hio/common/log.hpp>
#include <hio/common/process.hpp>
#include <hio/common/secret.hpp>
#include <hio/common/transport.hpp>
#include <hio/worker/controller.hpp>

#include <CLI/CLI.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>

#include <csignal>
#include <functional>
#include <cstdlib>
#include <string>
#include <thread>
#include <unistd.h>

namespace {

std::string default_worker_id() {
  char host[256] = {};
  if (gethostname(host, sizeof host - 1) != 0 || host[0] == '\0') return "worker-" + std::to_string(getpid());
  return std::string(host) + "-" + std::to_string(getpid());
}

}  // namespace

int main(int argc, char** argv) {
  hio::worker::controller_options o;
  const char* env_secret = std::getenv("HIO_SECRET");
  o.secret = env_secret != nullptr ? env_secret : "";
  o.worker_id = default_worker_id();
  std::string log_level = "info";
  std::uint32_t heartbeat_ms = static_cast<std::uint32_t>(o.heartbeat_interval.count());
  std::uint32_t drain_timeout_s = static_cast<std::uint32_t>(o.drain_timeout.count());

  CLI::App app{"hio worker: persistent per-core channels that process tuples and drain features"};
  app.add_option("--master", o.master_url, "master URL, e.g. http://127.0.0.1:8080")->required();
  app.add_option("--repository", o.repository_url, "repository URL, e.g. http://127.0.0.1:8081")->required();
  std::string secret_file;
  app.add_option("--secret", o.secret, "cluster secret (default: $HIO_SECRET; visible in ps: prefer the file)");
  app.add_option("--secret-file", secret_file, "read the cluster secret from this file's first line");
  app.add_option("--name", o.worker_id, "worker id (default: <hostname>-<pid>)");
  app.add_option("--host", o.host, "address the channels listen on and advertise")->capture_default_str();
  app.add_option("--channels", o.channels, "number of channels; 0: one per core")->capture_default_str();
  app.add_option("--processor", o.processor,
                 "noop | checksum | sleep:MS | busy:MS | plugin:PATH | exec:COMMAND (see docs/processors.md)")
      ->capture_default_str();
  std::uint32_t process_timeout_ms = static_cast<std::uint32_t>(o.process_timeout.count());
  app.add_option("--process-timeout-ms", process_timeout_ms,
                 "plugin/exec: deadline for one tuple; a processor past it is killed and restarted")
      ->capture_default_str()
      ->check(CLI::Range(1u, 86400000u));
  app.add_option("--process-retries", o.process_retries,
                 "plugin/exec: more attempts for a tuple after a crash, a timeout or garbage; then it fails")
      ->capture_default_str()
      ->check(CLI::Range(0u, 100u));
  app.add_option("--max-tuple-bytes", o.max_tuple_bytes, "largest tuple accepted")->capture_default_str();
  app.add_option("--max-connections-per-peer", o.connections.per_peer,
                 "connections one address may hold at once on a channel's port (0: no limit)")->capture_default_str();
  app.add_option("--max-connections", o.connections.total,
                 "connections a channel's port may hold at once (0: no limit)")->capture_default_str();
  app.add_option("--channel-sessions", o.channel_sessions,
                 "sessions each channel serves at once, from any sources (its credits at the master)")
      ->capture_default_str()
      ->check(CLI::Range(1u, 256u));
  app.add_option("--heartbeat-ms", heartbeat_ms, "heartbeat interval")->capture_default_str()->check(
      CLI::Range(10u, 600000u));
  app.add_option("--drain-timeout-s", drain_timeout_s, "how long a drain waits for active sessions")
      ->capture_default_str();
  app.add_option("--log-level", log_level, "trace, debug, info, warn, error")->capture_default_str();
  app.add_option("--port-base", o.port_base, "0: any free ports; else channel i listens on P+i")
      ->capture_default_str();
  app.add_option("--transport", o.transport,
                 "what channels offer sources: tcp | ucx | both | auto (both when UCX starts here, else tcp); "
                 "TCP always listens too, for the master's queue dispatcher; " +
                     std::string(hio::ucx_compiled_in() ? "this build has UCX" : "this build has no UCX"))
      ->capture_default_str()
      ->check(CLI::IsMember({"tcp", "ucx", "both", "auto"}));
  app.add_option("--ucx-port-base", o.ucx_port_base, "0: any free ports; else channel i's UCX listener on P+i")
      ->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  o.heartbeat_interval = std::chrono::milliseconds(heartbeat_ms);
  o.drain_timeout = std::chrono::seconds(drain_timeout_s);
  o.process_timeout = std::chrono::milliseconds(process_timeout_ms);

  hio::init_logging("worker", log_level);
  hio::stop_with_parent();  // started by `hio up`: stop when it dies
  for (const auto* url : {&o.master_url, &o.repository_url}) {
    if (auto parsed = hio::http::parse_url(*url); !parsed) {
      spdlog::error("bad URL '{}': {}", *url, parsed.error().message);
      return 2;
    }
  }
  auto secret = hio::start_daemon(argc, argv, o.secret, secret_file);  // the master's
  if (!secret) return 2;
  o.secret = *secret;

  // Signals go to a small io_context of their own: the first SIGTERM/SIGINT drains, a second one stops.
  boost::asio::io_context signal_io(1);
  boost::asio::signal_set signals(signal_io, SIGINT, SIGTERM);

  auto started = hio::worker::controller::start(o);
  if (!started) {
    spdlog::error("{}", started.error().message);
    return 1;
  }
  auto& controller = **started;
  int received = 0;
  std::function<void(const boost::system::error_code&, int)> on_signal =
      [&](const boost::system::error_code& ec, int signo) {
        if (ec) return;
        if (++received == 1) {
          spdlog::info("signal {}: draining (send it again to stop at once)", signo);
          controller.request_drain();
        } else {
          spdlog::warn("signal {}: stopping without waiting for active sessions", signo);
          controller.request_stop();
        }
        signals.async_wait(on_signal);
      };
  signals.async_wait(on_signal);
  std::thread signal_thread([&] { signal_io.run(); });

  auto outcome = controller.run();
  signal_io.stop();
  signal_thread.join();
  started->reset();
  if (!outcome) spdlog::warn("worker stopped, but: {}", outcome.error().message);
  return 0;
}
