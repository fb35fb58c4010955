// hio-repository: stores the feature records workers drain and serves them over REST.

#include <hio/common/http.hpp>
#include <hio/common/log.hpp>
#include <hio/common/process.hpp>
#include <hio/common/secret.hpp>
#include <hio/repository/service.hpp>
#include <hio/repository/store.hpp>

#include <CLI/CLI.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>

#include <atomic>
#include <csignal>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <fstream>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

namespace {

// Writes the port to a temporary file beside `path`, then renames it: readers see all or nothing.
bool write_port_file(const std::filesystem::path& path, std::uint16_t port) {
  auto tmp = path;
  tmp += ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << port << '\n';
    if (!out.flush()) return false;
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  return !ec;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"hio-repository: stores the feature records workers extract and serves them over REST"};
  hio::repository::service_options options;
  std::string data_dir = options.data_dir.string();
  std::string port_file;
  std::string log_level = "info";
  unsigned threads = 2;
  app.add_option("--data-dir", data_dir, "Directory of the SQLite store")->capture_default_str();
  app.add_option("--store", options.store,
                 "PostgreSQL database instead of SQLite: postgres://user@host:port/db, postgresql://... or a libpq "
                 "key=value conninfo (several repositories may share one database; see docs/repository.md)")
      ->envname("HIO_REPOSITORY_STORE");
  app.add_option("--host", options.host, "Address to listen on")->capture_default_str();
  app.add_option("--port", options.port, "Port to listen on (0: any free port)")->capture_default_str();
  app.add_option("--port-file", port_file, "Once listening, write the bound port to this file");
  std::string secret_file;
  app.add_option("--secret", options.secret, "Cluster secret required to POST records (visible in ps: prefer $HIO_SECRET or the file)")
      ->envname("HIO_SECRET");
  app.add_option("--secret-file", secret_file, "Read the cluster secret from this file's first line");
  app.add_option("--segment-bytes", options.segment_bytes, "Segment file rollover size")->capture_default_str();
  app.add_option("--log-level", log_level, "trace, debug, info, warn or error")->capture_default_str();
  app.add_option("--threads", threads, "Threads serving requests")->capture_default_str()->check(CLI::Range(1u, 256u));
  hio::connection_limit_options connections;
  app.add_option("--max-connections-per-peer", connections.per_peer,
                 "Connections one address may hold at once (0: no limit)")->capture_default_str();
  app.add_option("--max-connections", connections.total, "Connections the port may hold at once (0: no limit)")
      ->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  options.data_dir = data_dir;

  hio::init_logging("repository", log_level);
  hio::stop_with_parent();  // started by `hio up`: stop when it dies
  // Without a secret anyone could write records: the repository does not start without one.
  auto secret = hio::start_daemon(argc, argv, options.secret, secret_file);
  if (!secret) return 2;
  options.secret = *secret;

  auto opened = hio::repository::store::open(hio::repository::to_store_options(options));
  if (!opened) {
    spdlog::error("cannot open the store: {}", opened.error().message);
    return 1;
  }
  std::shared_ptr<hio::repository::store> store = std::move(*opened);
  const auto records = store->counts().records;
  const auto where = store->location();

  try {
    boost::asio::io_context io(static_cast<int>(threads));
    hio::http::server_options server_options;
    server_options.host = options.host;
    server_options.port = options.port;
    server_options.body_limit = hio::repository::body_limit;
    server_options.connections = connections;
    // The handler exists before the server: it reads the server's count through this once it runs.
    auto running = std::make_shared<std::atomic<const hio::http::server*>>(nullptr);
    options.refused_connections = [running] {
      const auto* s = running->load();
      return s ? s->refused_connections() : std::uint64_t{0};
    };
    auto server = hio::http::server::start(io, server_options, hio::repository::make_handler(store, options));
    if (!server) {
      spdlog::error("cannot listen on {}:{}: {}", options.host, options.port, server.error().message);
      return 1;
    }
    running->store(server->get());
    const auto port = (*server)->port();
    if (!port_file.empty() && !write_port_file(port_file, port)) {
      spdlog::error("cannot write the port file {}", port_file);
      return 1;
    }

    boost::asio::signal_set signals(io, SIGINT, SIGTERM);
    signals.async_wait([&](const boost::system::error_code& ec, int signal) {
      if (ec) return;
      spdlog::info("signal {}: stopping", signal);
      (*server)->stop();
      io.stop();
    });

    spdlog::info("listening on http://{}:{}, data in {}, {} records", options.host, port,
                 where, records);

    std::atomic<int> status{0};
    auto run = [&] {
      try {
        io.run();
      } catch (const std::exception& e) {
        spdlog::error("repository stopped: {}", e.what());
        status = 1;
        io.stop();
      }
    };
    std::vector<std::thread> pool;
    for (unsigned i = 1; i < threads; ++i) pool.emplace_back(run);
    run();
    for (auto& t : pool) t.join();
    if (status != 0) return status;
  } catch (const std::exception& e) {
    spdlog::error("repository stopped: {}", e.what());
    return 1;
  }
  spdlog::info("stopped");
  return 0;
}
