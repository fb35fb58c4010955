#pragma once
// How the master starts and stops workers when it scales: through an engine scientists already run.
// `local` spawns hio-worker processes on this machine; `command` runs the user's own scripts.
// Implementations are called from the master's scaling thread only.

#include <hio/common/error.hpp>

#include <memory>
#include <string>
#include <vector>

namespace hio::master {

struct worker_template {
  std::string worker_bin;         // path of hio-worker
  std::string master_url;         // where new workers register
  std::string repository_url;     // where their channels drain
  std::string host = "127.0.0.1"; // address new workers listen on
  int channels = 0;               // per worker (0: one per core)
  std::string processor = "noop";
  std::string log_dir;            // local: one log file per worker ("" = inherit the master's stderr)
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
};

// kind: "local" or "command:<scale-out script>|<scale-in script>" (the scripts get the number of workers
// and a worker id as their argument, and the template as HIO_* environment variables).
result<std::unique_ptr<provisioner>> make_provisioner(const std::string& kind, worker_template t);

}  // namespace hio::master
