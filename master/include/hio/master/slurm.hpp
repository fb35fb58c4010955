#pragma once
// The pure parts of the Slurm provisioner (master/src/provisioner_slurm.cpp): the job script, the sbatch
// command line, and reading the answers of sbatch and squeue. No I/O; unit-tested.

#include <hio/common/error.hpp>
#include <hio/master/provisioner.hpp>

#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace hio::master::slurm {

// The batch script of one worker. It `exec`s hio-worker, so the SIGTERM that `scancel --batch` sends
// reaches the worker itself (which drains, deregisters and exits, ending the job).
std::string job_script(const worker_template& t, const std::string& worker_id);

// sbatch's arguments, without the program: --parsable, the job name (= worker id), the log file, the
// partition, --cpus-per-task (when channels > 0 and extra_args does not set it) and extra_args.
// The script goes to sbatch's stdin. Error when extra_args has an unbalanced quote.
result<std::vector<std::string>> sbatch_args(const worker_template& t, const std::string& worker_id);

// The job id printed by `sbatch --parsable` ("123" or "123;cluster"). Error for anything else.
result<std::string> parse_job_id(std::string_view out);

// Lines of `squeue -h -t all -o "%i %T"` as job id -> state (e.g. "RUNNING"); bad lines are skipped.
std::map<std::string, std::string> parse_states(std::string_view out);

// Whether a job in `state` has ended (COMPLETED, CANCELLED, FAILED, TIMEOUT, NODE_FAIL, ...).
bool is_final(std::string_view state);

// Splits a command line on blanks; single and double quotes group. Error for an unbalanced quote.
result<std::vector<std::string>> split_args(std::string_view s);

// `s` as one word for /bin/sh.
std::string shell_quote(std::string_view s);

}  // namespace hio::master::slurm
