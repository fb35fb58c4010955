#pragma once
// How the master starts and stops workers when it scales: through an engine scientists already run.
// `local` spawns hio-worker processes on this machine; `command` runs the user's own scripts; `slurm`
// submits one batch job per worker; `kubernetes` scales a StatefulSet of worker pods.
// Implementations are called from the master's scaling thread only.

#include <hio/common/error.hpp>

#include <chrono>
#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace hio::master {

// `--provisioner slurm`: one batch job per worker, submitted with `sbatch --parsable`.
struct slurm_options {
  std::string partition;                    // sbatch --partition ("" = the cluster's default)
  std::string extra_args;                   // more sbatch arguments, split on blanks ("--time=8:00:00 --mem=8G")
  std::string worker_host;                  // the workers' --host ("" = the node's first address, `hostname -I`)
  std::string sbatch = "sbatch";            // the Slurm commands (names on PATH, or paths)
  std::string squeue = "squeue";
  std::string scancel = "scancel";
  std::chrono::milliseconds stop_timeout{120000};  // a drained job still running after this is scancelled
  std::chrono::milliseconds command_timeout{30000};  // one sbatch/squeue/scancel call
};

// `--provisioner kubernetes`: workers are the pods of a StatefulSet, scaled through its scale subresource.
struct kubernetes_options {
  std::string ns;                           // namespace ("" = the pod's own, else "default")
  std::string statefulset = "hio-worker";   // pods <statefulset>-0..N-1; worker id = pod name
  std::string api_server;                   // "" = https://$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT
  std::string token_file = "/var/run/secrets/kubernetes.io/serviceaccount/token";
  std::string ca_file = "/var/run/secrets/kubernetes.io/serviceaccount/ca.crt";
  std::chrono::milliseconds timeout{10000}; // one API request
};

struct worker_template {
  std::string worker_bin;         // path of hio-worker
  std::string master_url;         // where new workers register
  std::string repository_url;     // where their channels drain
  std::string host = "127.0.0.1"; // address new workers listen on
  int channels = 0;               // per worker (0: one per core)
  std::string processor = "noop";
  std::string log_dir;            // local, slurm: one log file per worker ("" = inherit / Slurm's default)
  std::string secret;             // slurm: exported to the jobs as HIO_SECRET ("" = the master's $HIO_SECRET)
  std::chrono::milliseconds command_timeout{60000};  // command: one run of a script (then it is killed)
  slurm_options slurm;            // --provisioner slurm
  kubernetes_options kubernetes;  // --provisioner kubernetes
};

// A registered worker that is not draining, offered to the provisioner when the master scales in.
struct scale_in_candidate {
  std::string id;
  std::size_t free_channels = 0;
};

class provisioner {
 public:
  virtual ~provisioner() = default;
  virtual std::string name() const = 0;
  // Asks for `n` new workers; returns the ids they will register with. Error when none could be started.
  virtual result<std::vector<std::string>> start_workers(int n) = 0;
  // Asks worker `id` (already told to drain by the master) to finish its tuples and exit.
  virtual result<void> stop_worker(const std::string& id) = 0;
  // Reaps what has exited; returns the ids of workers that ended without being asked to.
  virtual std::vector<std::string> poll() { return {}; }
  // Which worker to drain on a scale-in ("" = none of them may be stopped). By default the one this
  // master started (ids beginning "auto-") with the most free channels.
  virtual std::string choose_scale_in(const std::vector<scale_in_candidate>& workers) const;
};

// The ids a provisioner gives the workers it starts: "auto-[<engine>-]<host>-<pid>-" followed by a counter;
// unique per master process, and the "auto-" prefix marks a worker the master started.
std::string worker_id_prefix(std::string_view engine);

// kind: "local", "slurm", "kubernetes" or "command:<scale-out script>|<scale-in script>" (the scripts get
// the number of workers and a worker id as their argument, and the template as HIO_* environment variables).
// Error for an unknown kind or, for slurm and kubernetes, unusable options.
result<std::unique_ptr<provisioner>> make_provisioner(const std::string& kind, worker_template t);

result<std::unique_ptr<provisioner>> make_slurm_provisioner(worker_template t);
result<std::unique_ptr<provisioner>> make_kubernetes_provisioner(worker_template t);

}  // namespace hio::master
