#include <hio/common/log.hpp>
#include <hio/common/process.hpp>
#include <hio/master/provisioner.hpp>

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <map>

namespace hio::master {

namespace {

// Spawns hio-worker processes; stops them with SIGTERM (they drain, deregister and exit).
class local_provisioner : public provisioner {
 public:
  explicit local_provisioner(worker_template t) : t_(std::move(t)), prefix_(worker_id_prefix("")) {}
  ~local_provisioner() override {
    for (auto& [id, pid] : pids_) ::kill(pid, SIGTERM);
    for (auto& [id, pid] : pids_) ::waitpid(pid, nullptr, 0);
  }
  std::string name() const override { return "local"; }

  result<std::vector<std::string>> start_workers(int n) override {
    std::vector<std::string> ids;
    for (int i = 0; i < n; ++i) {
      const std::string id = prefix_ + std::to_string(++counter_);
      std::vector<std::string> argv = {t_.worker_bin, "--master", t_.master_url, "--repository", t_.repository_url,
                                       "--name", id, "--host", t_.host, "--channels", std::to_string(t_.channels),
                                       "--processor", t_.processor};
      const pid_t pid = spawn_process(argv, t_.log_dir.empty() ? "" : t_.log_dir + "/" + id + ".log");
      if (pid < 0) {
        if (ids.empty()) return make_error(0, "cannot start " + t_.worker_bin + ": " + std::strerror(errno));
        break;
      }
      pids_[id] = pid;
      ids.push_back(id);
    }
    return ids;
  }

  result<void> stop_worker(const std::string& id) override {
    auto it = pids_.find(id);
    if (it == pids_.end()) return make_error(0, "worker " + id + " was not started here");
    ::kill(it->second, SIGTERM);
    stopping_[id] = it->second;
    pids_.erase(it);
    return {};
  }

  std::vector<std::string> poll() override {
    std::vector<std::string> died;
    for (auto it = pids_.begin(); it != pids_.end();) {
      if (::waitpid(it->second, nullptr, WNOHANG) == it->second) {
        died.push_back(it->first);
        it = pids_.erase(it);
      } else {
        ++it;
      }
    }
    for (auto it = stopping_.begin(); it != stopping_.end();)
      it = ::waitpid(it->second, nullptr, WNOHANG) == it->second ? stopping_.erase(it) : std::next(it);
    return died;
  }

 private:
  worker_template t_;
  std::string prefix_;
  int counter_ = 0;
  std::map<std::string, pid_t> pids_, stopping_;
};

// Runs the user's scripts: `<out> <n>` prints the ids of the workers it starts (one per line, or
// nothing: then ids are not tracked); `<in> <worker id>` stops one.
class command_provisioner : public provisioner {
 public:
  command_provisioner(std::string out, std::string in, worker_template t)
      : out_(std::move(out)), in_(std::move(in)), t_(std::move(t)) {}
  std::string name() const override { return "command"; }

  result<std::vector<std::string>> start_workers(int n) override {
    auto out = run(out_, std::to_string(n));
    if (!out) return out.error();
    std::vector<std::string> ids;
    std::size_t start = 0;
    while (start < out->size()) {
      auto end = out->find('\n', start);
      if (end == std::string::npos) end = out->size();
      if (end > start) ids.push_back(out->substr(start, end - start));
      start = end + 1;
    }
    return ids;
  }

  result<void> stop_worker(const std::string& id) override {
    auto out = run(in_, id);
    if (!out) return out.error();
    return {};
  }

 private:
  // The user's script line (their own configuration) runs under sh; the argument, which may come from a
  // registered worker's id, is handed over as "$1", never spliced into the line.
  result<std::string> run(const std::string& script, const std::string& arg) {
    const std::vector<std::string> env = {"HIO_MASTER=" + t_.master_url, "HIO_REPOSITORY=" + t_.repository_url,
                                          "HIO_PROCESSOR=" + t_.processor,
                                          "HIO_CHANNELS=" + std::to_string(t_.channels),
                                          "HIO_WORKER_BIN=" + t_.worker_bin};
    auto r = run_command({"/bin/sh", "-c", script + " \"$@\"", "hio-provisioner", arg}, "", env,
                         t_.command_timeout);
    if (!r) return r.error();
    if (r->status != 0) {
      std::string why = r->err.substr(0, 512);
      std::replace(why.begin(), why.end(), '\n', ' ');
      const std::string how = r->status < 0 ? "was stopped" : "exited " + std::to_string(r->status);
      return make_error(0, "'" + script + "' " + how + (why.empty() ? "" : ": " + why));
    }
    return std::move(r->out);
  }

  std::string out_, in_;
  worker_template t_;
};

}  // namespace

std::string provisioner::choose_scale_in(const std::vector<scale_in_candidate>& workers) const {
  std::string victim;
  std::size_t best_free = 0;
  for (const auto& w : workers) {
    if (w.id.starts_with("auto-") && w.free_channels >= best_free) {
      best_free = w.free_channels;
      victim = w.id;
    }
  }
  return victim;
}

result<std::unique_ptr<provisioner>> make_provisioner(const std::string& kind, worker_template t) {
  if (kind == "local") return std::unique_ptr<provisioner>(new local_provisioner(std::move(t)));
  if (kind == "slurm") return make_slurm_provisioner(std::move(t));
  if (kind == "kubernetes") return make_kubernetes_provisioner(std::move(t));
  if (kind.starts_with("command:")) {
    const std::string rest = kind.substr(8);
    const auto bar = rest.find('|');
    if (bar == std::string::npos)
      return make_error(0, "command provisioner: use command:<scale-out script>|<scale-in script>");
    return std::unique_ptr<provisioner>(new command_provisioner(rest.substr(0, bar), rest.substr(bar + 1), std::move(t)));
  }
  return make_error(0, "unknown provisioner '" + kind + "' (local, slurm, kubernetes, command:OUT|IN)");
}

std::string worker_id_prefix(std::string_view engine) {
  char host[128] = {};
  ::gethostname(host, sizeof host - 1);
  std::string out = "auto-";
  if (!engine.empty()) out.append(engine).append("-");
  return out + host + "-" + std::to_string(::getpid()) + "-";
}

}  // namespace hio::master
