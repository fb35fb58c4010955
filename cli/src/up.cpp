// `hio up`: a local cluster of real processes (repository, master, workers, discovery) that stops cleanly on
// Ctrl-C/SIGTERM and restarts any of them that dies.
#include <hio/cli/commands.hpp>
#include <hio/common/http.hpp>
#include <hio/common/json.hpp>
#include <hio/common/log.hpp>
#include <hio/common/process.hpp>
#include <hio/common/secret.hpp>
#include <hio/common/token.hpp>

#include <nlohmann/json.hpp>

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <thread>

namespace hio::cli {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

namespace {

struct child {
  std::string name;
  std::vector<std::string> argv;
  std::string log;
  pid_t pid = -1;
  int restarts = 0;
};

fs::path bin_dir() {
  std::error_code ec;
  auto self = fs::read_symlink("/proc/self/exe", ec);
  return ec ? fs::path(".") : self.parent_path();
}

bool spawn(child& c) {
  c.pid = spawn_process(c.argv, c.log);
  if (c.pid < 0) {
    spdlog::error("cannot start {}: {}", c.argv[0], std::strerror(errno));
    return false;
  }
  return true;
}

std::string log_tail(const std::string& path) {
  std::ifstream in(path);
  std::vector<std::string> lines;
  for (std::string l; std::getline(in, l);) {
    lines.push_back(l);
    if (lines.size() > 8) lines.erase(lines.begin());
  }
  std::string out;
  for (auto& l : lines) out += "    " + l + "\n";
  return out;
}

// Waits for a port file written by the child; empty on timeout or if the child exits first.
std::string wait_port(child& c, const fs::path& port_file, std::chrono::seconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    std::ifstream in(port_file);
    std::string port;
    if (in >> port && !port.empty()) return port;
    int status = 0;
    if (::waitpid(c.pid, &status, WNOHANG) == c.pid) {
      c.pid = -1;
      return {};
    }
    std::this_thread::sleep_for(50ms);
  }
  return {};
}

void stop_children(std::vector<child*> group, std::chrono::seconds grace) {
  for (auto* c : group)
    if (c->pid > 0) ::kill(c->pid, SIGTERM);
  const auto deadline = std::chrono::steady_clock::now() + grace;
  for (auto* c : group) {
    while (c->pid > 0) {
      int status = 0;
      if (::waitpid(c->pid, &status, WNOHANG) == c->pid) {
        c->pid = -1;
        break;
      }
      if (std::chrono::steady_clock::now() > deadline) {
        spdlog::warn("{} did not stop within {} s; killing it", c->name, grace.count());
        ::kill(c->pid, SIGKILL);
        ::waitpid(c->pid, &status, 0);
        c->pid = -1;
        break;
      }
      std::this_thread::sleep_for(50ms);
    }
  }
}

std::string describe_exit(int status) {
  if (WIFSIGNALED(status)) return "killed by signal " + std::to_string(WTERMSIG(status));
  return "exited with status " + std::to_string(WEXITSTATUS(status));
}

// `given` when not empty; else the value kept in `file` by an earlier run (workers and sources of that run
// may still be at work with it); else `bytes` random bytes as hex, written to `file` (0600).
std::string kept_secret(const fs::path& file, std::string given, std::size_t bytes) {
  if (!given.empty()) return given;
  std::string value;
  std::ifstream(file) >> value;
  if (value.empty()) {
    value = random_secret(bytes);
    std::ofstream(file) << value << "\n";
    fs::permissions(file, fs::perms::owner_read | fs::perms::owner_write);
  }
  return value;
}

}  // namespace

int up(const up_options& o) {
  block_stop_signals();
  private_files();  // the data dir, its secret, queue and logs: this user's only (children inherit it)
  const fs::path data = fs::absolute(o.data_dir);
  const fs::path logs = data / "logs", run = data / "run";
  fs::create_directories(logs);
  fs::create_directories(run);
  for (auto f : {"master.port", "repository.port"}) fs::remove(run / f);

  // The cluster secret guards workers' and the repository's calls; the source token the lease port. Sources
  // on this machine find the token in <data dir>/source-token (the connector looks there by default).
  const std::string secret = kept_secret(data / "secret", o.secret.empty() ? env_or("HIO_SECRET") : o.secret, 32);
  const std::string token = kept_secret(data / "source-token", env_or("HIO_SOURCE_TOKEN"), 16);
  for (auto [value, what] : {std::pair{&secret, "cluster secret"}, std::pair{&token, "source token"}}) {
    if (auto why = weak_secret(*value, what); !why.empty()) {
      std::cerr << "hio up: " << why << "\n";
      return 2;
    }
  }
  ::setenv("HIO_SECRET", secret.c_str(), 1);
  ::setenv("HIO_SOURCE_TOKEN", token.c_str(), 1);
  // The processes started here stop when this one dies, even by kill -9 (stop_with_parent()).
  ::setenv(stop_with_parent_env, std::to_string(::getpid()).c_str(), 1);

  // Through the environment rather than argv: a URL may hold a password, and argv is visible in ps.
  if (!o.store.empty()) ::setenv("HIO_REPOSITORY_STORE", o.store.c_str(), 1);

  const fs::path bin = bin_dir();
  const std::string host = o.host;
  child repo{"repository",
             {(bin / "hio-repository").string(), "--data-dir", (data / "repository").string(), "--host", host,
              "--port", std::to_string(o.port + 1), "--port-file", (run / "repository.port").string(),
              "--log-level", o.log_level},
             (logs / "repository.log").string()};
  child master{"master",
               {(bin / "hio-master").string(), "--data-dir", (data / "master").string(), "--host", host, "--port",
                std::to_string(o.port), "--port-file", (run / "master.port").string(), "--log-level", o.log_level},
               (logs / "master.log").string()};

  if (!spawn(repo)) return 1;
  const std::string repo_port = wait_port(repo, run / "repository.port", 30s);
  if (repo_port.empty()) {
    std::cerr << "hio up: the repository did not start; its log (" << repo.log << "):\n" << log_tail(repo.log);
    stop_children({&repo}, 5s);
    return 1;
  }
  // The dashboard's science preview (and workers the master starts) read the repository.
  master.argv.push_back("--repository");
  master.argv.push_back("http://" + host + ":" + repo_port);
  if (o.autoscale) {
    // The master starts the workers itself; `hio up` starts none of its own.
    for (const std::string& a : std::vector<std::string>{"--autoscale", "--min-workers",
                          std::to_string(o.min_workers), "--max-workers", std::to_string(o.max_workers),
                          "--worker-channels", std::to_string(o.channels), "--worker-processor", o.processor,
                          "--worker-log-dir", logs.string(), "--provisioner", o.provisioner})
      master.argv.push_back(a);
  }
  master.argv.insert(master.argv.end(), o.master_args.begin(), o.master_args.end());
  if (!spawn(master)) return 1;
  const std::string master_port = wait_port(master, run / "master.port", 30s);
  if (master_port.empty()) {
    std::cerr << "hio up: the master did not start; its log (" << master.log << "):\n" << log_tail(master.log);
    stop_children({&master, &repo}, 5s);
    return 1;
  }
  const std::string master_url = "http://" + host + ":" + master_port;
  const std::string repo_url = "http://" + host + ":" + repo_port;

  std::vector<child> workers(o.autoscale ? 0 : static_cast<std::size_t>(std::max(0, o.workers)));
  const std::size_t expected_workers = o.autoscale ? static_cast<std::size_t>(std::max(0, o.min_workers)) : workers.size();
  for (std::size_t i = 0; i < workers.size(); ++i) {
    auto& w = workers[i];
    w.name = "w" + std::to_string(i + 1);
    w.argv = {(bin / "hio-worker").string(), "--master", master_url, "--repository", repo_url, "--name", w.name,
              "--host", host, "--channels", std::to_string(o.channels), "--processor", o.processor, "--log-level",
              o.log_level};
    w.log = (logs / (w.name + ".log")).string();
    if (!spawn(w)) {
      stop_children({&master, &repo}, 5s);
      return 1;
    }
  }

  char interval[32];
  std::snprintf(interval, sizeof interval, "%g", o.discovery_interval);
  child discovery{"discovery",
                  {(bin / "hio-discovery").string(), "--repository", repo_url, "--data-dir",
                   (data / "discovery").string(), "--interval-s", interval, "--log-level", o.log_level},
                  (logs / "discovery.log").string()};
  // A build without the discovery module has no hio-discovery: the cluster runs without knowledge.
  const bool with_discovery = fs::exists(discovery.argv[0]);
  if (!with_discovery) {
    std::cerr << "hio up: " << discovery.argv[0] << " not found; running without knowledge discovery\n";
  } else if (!spawn(discovery)) {
    std::vector<child*> started{&master, &repo};
    for (auto& w : workers) started.insert(started.begin(), &w);
    stop_children(started, 15s);
    return 1;
  }

  // Wait until every worker has registered, so the cluster is usable when this prints.
  http::client mc(master_url);
  std::size_t channels = 0;
  const auto deadline = std::chrono::steady_clock::now() + 30s;
  for (;;) {
    auto r = mc.get("/v1/status");
    if (r && r->status == 200) {
      auto s = hio::parse_json_or_discarded(r->body);
      if (!s.is_discarded() && s["workers"].size() >= expected_workers) {
        channels = s["channels"].value("total", 0u);
        break;
      }
    }
    if (std::chrono::steady_clock::now() > deadline) {
      std::cerr << "hio up: workers did not register within 30 s; see " << logs.string() << "\n";
      break;
    }
    std::this_thread::sleep_for(100ms);
  }

  {
    nlohmann::json cluster = {{"master", master_url}, {"repository", repo_url}, {"pid", ::getpid()},
                              {"logs", logs.string()}};
    std::ofstream out(data / "cluster.json");
    out << cluster.dump(2) << "\n";
  }
  std::cout << "hio is up\n"
            << "  master      " << master_url << "   (/v1/status, /metrics)\n"
            << "  dashboard   " << master_url << "/\n"
            << "  repository  " << repo_url << "\n"
            << "  workers     " << expected_workers << " with " << channels << " channels in all, processor "
            << o.processor << (o.autoscale ? " (autoscaling " + std::to_string(o.min_workers) + ".." +
                                                 std::to_string(o.max_workers) + ")"
                                           : std::string()) << "\n"
            << "  discovery   " << (with_discovery ? "every " + std::string(interval) + " s   (hio knowledge)" : std::string("off"))
            << "\n"
            << "  logs        " << logs.string() << "\n"
            << "  sources     present the token in " << (data / "source-token").string()
            << " (hio stream and the connectors read it there, or from $HIO_SOURCE_TOKEN)\n"
            << "Stream files with:  hio stream --master " << master_url << " FILE...\n"
            << "Stop with Ctrl-C." << std::endl;

  // Supervise until SIGINT/SIGTERM: a process that dies is logged and started again.
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  timespec tick{0, 200'000'000};
  std::vector<child*> all{&repo, &master, &discovery};
  for (auto& w : workers) all.push_back(&w);
  for (;;) {
    const int sig = ::sigtimedwait(&set, nullptr, &tick);
    if (sig == SIGINT || sig == SIGTERM) break;
    for (auto* c : all) {
      int status = 0;
      if (c->pid > 0 && ::waitpid(c->pid, &status, WNOHANG) == c->pid) {
        ++c->restarts;
        std::cerr << "hio up: " << c->name << " " << describe_exit(status) << "; starting it again (restart "
                  << c->restarts << ")" << std::endl;
        spawn(*c);
      }
    }
  }
  std::cout << "hio up: stopping (workers drain first)" << std::endl;
  std::vector<child*> ws;
  for (auto& w : workers) ws.push_back(&w);
  stop_children({&discovery}, 15s);
  stop_children(ws, 60s);
  stop_children({&master}, 15s);
  stop_children({&repo}, 15s);
  fs::remove(data / "cluster.json");
  std::cout << "hio up: stopped" << std::endl;
  return 0;
}

}  // namespace hio::cli
