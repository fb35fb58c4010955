// The Slurm provisioner: one batch job per worker.
//
// start_workers submits `sbatch --parsable` with a script that execs hio-worker under an id chosen here,
// so the master can match the registration. stop_worker (called after the master stopped leasing the
// worker's channels) signals the batch step with SIGTERM: the worker finishes its tuples, deregisters and
// exits, which ends the job. poll() asks squeue about every job: a job that ended without being asked is
// reported to the master; a stopped job still running after stop_timeout is scancelled.
#include <hio/common/log.hpp>
#include <hio/common/process.hpp>
#include <hio/master/provisioner.hpp>
#include <hio/master/slurm.hpp>

#include <algorithm>
#include <array>
#include <charconv>
#include <cstdlib>
#include <map>
#include <thread>

namespace hio::master {

namespace slurm {

std::string shell_quote(std::string_view s) {
  std::string out = "'";
  for (char c : s) {
    if (c == '\'')
      out += "'\\''";
    else
      out += c;
  }
  return out + "'";
}

result<std::vector<std::string>> split_args(std::string_view s) {
  std::vector<std::string> out;
  std::string word;
  bool in_word = false;
  char quote = 0;
  for (char c : s) {
    if (quote) {
      if (c == quote)
        quote = 0;
      else
        word += c;
    } else if (c == '\'' || c == '"') {
      quote = c;
      in_word = true;
    } else if (c == ' ' || c == '\t' || c == '\n') {
      if (in_word) out.push_back(std::move(word));
      word.clear();
      in_word = false;
    } else {
      word += c;
      in_word = true;
    }
  }
  if (quote) return make_error(0, "unbalanced quote in '" + std::string(s) + "'");
  if (in_word) out.push_back(std::move(word));
  return out;
}

std::string job_script(const worker_template& t, const std::string& worker_id) {
  std::string s = "#!/bin/sh\n# hio worker " + worker_id + ", submitted by hio-master --provisioner slurm\n";
  if (t.slurm.worker_host.empty())
    s += "host=$(hostname -I 2>/dev/null | awk '{print $1}')\nhost=${host:-$(hostname)}\n";
  else
    s += "host=" + shell_quote(t.slurm.worker_host) + "\n";
  s += "exec " + shell_quote(t.worker_bin) + " --master " + shell_quote(t.master_url) + " --repository " +
       shell_quote(t.repository_url) + " --name " + shell_quote(worker_id) + " --host \"$host\" --channels " +
       std::to_string(t.channels) + " --processor " + shell_quote(t.processor) + "\n";
  return s;
}

result<std::vector<std::string>> sbatch_args(const worker_template& t, const std::string& worker_id) {
  auto extra = split_args(t.slurm.extra_args);
  if (!extra) return extra.error();
  std::vector<std::string> a = {"--parsable", "--job-name=" + worker_id};
  if (!t.log_dir.empty()) a.push_back("--output=" + t.log_dir + "/" + worker_id + ".log");
  if (!t.slurm.partition.empty()) a.push_back("--partition=" + t.slurm.partition);
  const bool sets_cpus = std::any_of(extra->begin(), extra->end(), [](const std::string& x) {
    return x == "-c" || x.starts_with("--cpus-per-task");
  });
  if (t.channels > 0 && !sets_cpus) a.push_back("--cpus-per-task=" + std::to_string(t.channels));
  a.insert(a.end(), extra->begin(), extra->end());
  return a;
}

result<std::string> parse_job_id(std::string_view out) {
  while (!out.empty() && (out.back() == '\n' || out.back() == ' ' || out.back() == '\r')) out.remove_suffix(1);
  // With --parsable sbatch prints "<job id>[;<cluster>]"; site plugins may print notices before it.
  if (const auto nl = out.rfind('\n'); nl != std::string_view::npos) out.remove_prefix(nl + 1);
  const auto id = out.substr(0, out.find(';'));
  std::uint64_t n = 0;
  const auto [end, ec] = std::from_chars(id.data(), id.data() + id.size(), n);
  if (id.empty() || ec != std::errc() || end != id.data() + id.size())
    return make_error(0, "sbatch printed no job id: '" + std::string(out) + "'");
  return std::string(id);
}

std::map<std::string, std::string> parse_states(std::string_view out) {
  std::map<std::string, std::string> states;
  std::size_t start = 0;
  while (start < out.size()) {
    auto end = out.find('\n', start);
    if (end == std::string_view::npos) end = out.size();
    const auto line = out.substr(start, end - start);
    start = end + 1;
    const auto sp = line.find(' ');
    if (sp == 0 || sp == std::string_view::npos) continue;
    auto state = line.substr(sp + 1);
    while (!state.empty() && (state.back() == ' ' || state.back() == '\r')) state.remove_suffix(1);
    if (!state.empty()) states[std::string(line.substr(0, sp))] = std::string(state);
  }
  return states;
}

bool is_final(std::string_view state) {
  static constexpr std::array<std::string_view, 11> final_states = {
      "COMPLETED", "CANCELLED", "FAILED",        "TIMEOUT", "NODE_FAIL", "PREEMPTED",
      "BOOT_FAIL", "DEADLINE",  "OUT_OF_MEMORY", "REVOKED", "SPECIAL_EXIT"};
  // squeue may print "CANCELLED by 0".
  const auto word = state.substr(0, state.find(' '));
  return std::find(final_states.begin(), final_states.end(), word) != final_states.end();
}

}  // namespace slurm

namespace {

std::string one_line(std::string s) {
  std::replace(s.begin(), s.end(), '\n', ' ');
  while (!s.empty() && s.back() == ' ') s.pop_back();
  return s;
}

class slurm_provisioner : public provisioner {
 public:
  explicit slurm_provisioner(worker_template t) : t_(std::move(t)), prefix_(worker_id_prefix("slurm")) {
    if (t_.secret.empty()) {
      if (const char* s = std::getenv("HIO_SECRET")) t_.secret = s;
    }
  }

  // Drains every job still running (the master still answers their deregistration), waits up to
  // stop_timeout, then cancels what is left.
  ~slurm_provisioner() override {
    for (auto& [id, j] : jobs_)
      if (!j.stopping) signal_drain(id, j);
    const auto deadline = clock::now() + std::min<std::chrono::milliseconds>(t_.slurm.stop_timeout, std::chrono::seconds(60));
    while (!jobs_.empty() && clock::now() < deadline) {
      refresh();
      if (!jobs_.empty()) std::this_thread::sleep_for(std::chrono::milliseconds(250));
    }
    if (jobs_.empty()) return;
    std::vector<std::string> argv = {t_.slurm.scancel};
    for (auto& [id, j] : jobs_) argv.push_back(j.job_id);
    spdlog::warn("slurm: {} job(s) did not end within the stop timeout; cancelling them", jobs_.size());
    (void)run_command(argv, "", {}, t_.slurm.command_timeout);
  }

  std::string name() const override { return "slurm"; }

  result<std::vector<std::string>> start_workers(int n) override {
    std::vector<std::string> ids;
    for (int i = 0; i < n; ++i) {
      const std::string id = prefix_ + std::to_string(++counter_);
      auto args = slurm::sbatch_args(t_, id);
      if (!args) return args.error();
      args->insert(args->begin(), t_.slurm.sbatch);
      std::vector<std::string> env;
      if (!t_.secret.empty()) env.push_back("HIO_SECRET=" + t_.secret);
      auto r = run_command(*args, slurm::job_script(t_, id), env, t_.slurm.command_timeout);
      result<std::string> job = r ? (r->status == 0 ? slurm::parse_job_id(r->out)
                                                    : result<std::string>(make_error(0, "sbatch failed (status " +
                                                                                        std::to_string(r->status) +
                                                                                        "): " + one_line(r->err))))
                                  : result<std::string>(r.error());
      if (!job) {
        spdlog::error("slurm: submitting worker {}: {}", id, job.error().message);
        if (ids.empty()) return job.error();
        break;  // the master keeps the jobs submitted so far and asks again later
      }
      spdlog::info("slurm: worker {} is job {}", id, *job);
      jobs_[id] = job_info{*job};
      ids.push_back(id);
    }
    return ids;
  }

  result<void> stop_worker(const std::string& id) override {
    auto it = jobs_.find(id);
    if (it == jobs_.end()) return make_error(0, "worker " + id + " is not a Slurm job of this master");
    return signal_drain(id, it->second);
  }

  std::vector<std::string> poll() override {
    auto lost = refresh();
    for (auto& [id, j] : jobs_) {
      if (j.stopping && !j.cancelled && clock::now() >= j.stop_deadline) {
        spdlog::warn("slurm: worker {} (job {}) still runs {} ms after it was told to drain; cancelling it", id,
                     j.job_id, t_.slurm.stop_timeout.count());
        auto r = run_command({t_.slurm.scancel, j.job_id}, "", {}, t_.slurm.command_timeout);
        if (!r || r->status != 0)
          spdlog::error("slurm: scancel {}: {}", j.job_id, r ? one_line(r->err) : r.error().message);
        j.cancelled = true;
      }
    }
    return lost;
  }

 private:
  using clock = std::chrono::steady_clock;
  struct job_info {
    std::string job_id;
    bool stopping = false;   // told to drain
    bool cancelled = false;  // scancelled after the stop timeout
    clock::time_point stop_deadline{};
  };

  result<void> signal_drain(const std::string& id, job_info& j) {
    j.stopping = true;
    j.stop_deadline = clock::now() + t_.slurm.stop_timeout;
    // SIGTERM to the batch step (the worker, which the script exec'd): it drains and exits. A job that
    // is not running yet has nothing to drain and is cancelled outright.
    auto r = run_command({t_.slurm.scancel, "--batch", "--signal=TERM", j.job_id}, "", {}, t_.slurm.command_timeout);
    if (r && r->status == 0) {
      spdlog::info("slurm: worker {} (job {}) told to drain", id, j.job_id);
      return {};
    }
    const std::string why = r ? one_line(r->err) : r.error().message;
    auto c = run_command({t_.slurm.scancel, j.job_id}, "", {}, t_.slurm.command_timeout);
    if (c && c->status == 0) {
      spdlog::info("slurm: job {} of worker {} could not be signalled ({}); cancelled it", j.job_id, id, why);
      j.cancelled = true;
      return {};
    }
    return make_error(0, "scancel job " + j.job_id + " of worker " + id + ": " + why);
  }

  // Asks squeue about every job; forgets those that ended and returns the ids of those that ended
  // without being told to drain.
  std::vector<std::string> refresh() {
    std::vector<std::string> lost;
    if (jobs_.empty()) return lost;
    std::string list;
    for (auto& [id, j] : jobs_) list += (list.empty() ? "" : ",") + j.job_id;
    auto r = run_command({t_.slurm.squeue, "-h", "-t", "all", "-o", "%i %T", "-j", list}, "", {},
                         t_.slurm.command_timeout);
    std::map<std::string, std::string> states;
    if (!r) {
      spdlog::warn("slurm: {}", r.error().message);
      return lost;
    }
    if (r->status != 0) {
      // squeue fails for a list of only unknown ids (purged after MinJobAge): they all ended.
      if (r->err.find("Invalid job id") == std::string::npos) {
        spdlog::warn("slurm: squeue failed (status {}): {}", r->status, one_line(r->err));
        return lost;
      }
    } else {
      states = slurm::parse_states(r->out);
    }
    for (auto it = jobs_.begin(); it != jobs_.end();) {
      const auto s = states.find(it->second.job_id);
      const bool ended = s == states.end() || slurm::is_final(s->second);
      if (!ended) {
        ++it;
        continue;
      }
      const std::string state = s == states.end() ? "gone from squeue" : s->second;
      if (it->second.stopping) {
        spdlog::info("slurm: worker {} (job {}) ended: {}", it->first, it->second.job_id, state);
      } else {
        spdlog::warn("slurm: worker {} (job {}) ended without being asked: {}", it->first, it->second.job_id, state);
        lost.push_back(it->first);
      }
      it = jobs_.erase(it);
    }
    return lost;
  }

  worker_template t_;
  std::string prefix_;
  int counter_ = 0;
  std::map<std::string, job_info> jobs_;  // by worker id
};

}  // namespace

result<std::unique_ptr<provisioner>> make_slurm_provisioner(worker_template t) {
  if (auto a = slurm::split_args(t.slurm.extra_args); !a) return make_error(0, "--slurm-args: " + a.error().message);
  if (t.slurm.stop_timeout.count() < 0) return make_error(0, "slurm: the stop timeout must not be negative");
  return std::unique_ptr<provisioner>(new slurm_provisioner(std::move(t)));
}

}  // namespace hio::master
