#include <hio/master/slurm.hpp>

#include <doctest/doctest.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

using namespace hio::master;
namespace fs = std::filesystem;

namespace {

worker_template tmpl() {
  worker_template t;
  t.worker_bin = "/opt/hio/bin/hio-worker";
  t.master_url = "http://10.0.0.1:8080";
  t.repository_url = "http://10.0.0.2:8081";
  t.channels = 4;
  t.processor = "exec:python3 my proc.py";
  t.log_dir = "/scratch/hio/logs";
  return t;
}

std::string slurp(const fs::path& p) {
  std::ifstream f(p);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

// Stand-ins for sbatch, squeue and scancel: shell scripts that keep the jobs' states in files, so a test
// can end a job or keep it running past the stop timeout (which the real Slurm test cannot force).
struct fake_slurm {
  fs::path dir;
  fake_slurm() {
    dir = fs::temp_directory_path() / ("hio-fake-slurm-" + std::to_string(::getpid()) + "-" + std::to_string(std::rand()));
    fs::create_directories(dir / "jobs");
    write("sbatch", "n=$(($(cat " + (dir / "next").string() + " 2>/dev/null || echo 100) + 1)); echo $n > " +
                        (dir / "next").string() + "\n[ -f " + (dir / "fail").string() + " ] && { echo 'sbatch: error: " +
                        "invalid partition specified: nosuch' >&2; exit 1; }\ncat > " + (dir / "script-").string() +
                        "$n\necho \"$@\" > " + (dir / "args-").string() + "$n\necho \"$HIO_SECRET\" > " + (dir / "secret-").string() + "$n\necho RUNNING > " + (dir / "jobs").string() +
                        "/$n\necho \"$n;cluster\"\n");
    write("squeue", "for j in $(echo \"$7\" | tr , ' '); do [ -f " + (dir / "jobs").string() + "/$j ] && echo \"$j $(cat " +
                        (dir / "jobs").string() + "/$j)\"; done; exit 0\n");
    write("scancel", "echo \"$@\" >> " + (dir / "scancel.log").string() + "\n");
  }
  ~fake_slurm() { fs::remove_all(dir); }
  void write(const std::string& name, const std::string& body) {
    std::ofstream(dir / name) << "#!/bin/sh\n" << body;
    fs::permissions(dir / name, fs::perms::owner_all);
  }
  void set_state(const std::string& job, const std::string& state) { std::ofstream(dir / "jobs" / job) << state << "\n"; }
  worker_template configure(worker_template t) const {
    t.slurm.sbatch = (dir / "sbatch").string();
    t.slurm.squeue = (dir / "squeue").string();
    t.slurm.scancel = (dir / "scancel").string();
    return t;
  }
};

}  // namespace

TEST_CASE("the job script execs the worker with the template's flags under the chosen id") {
  auto t = tmpl();
  t.slurm.worker_host = "node's addr";
  const auto s = slurm::job_script(t, "auto-slurm-m-1-3");
  CHECK(s.starts_with("#!/bin/sh\n"));
  CHECK(s.find("host='node'\\''s addr'\n") != std::string::npos);
  CHECK(s.find("exec '/opt/hio/bin/hio-worker' --master 'http://10.0.0.1:8080' --repository 'http://10.0.0.2:8081' "
               "--name 'auto-slurm-m-1-3' --host \"$host\" --channels 4 --processor 'exec:python3 my proc.py'\n") !=
        std::string::npos);
  t.slurm.worker_host.clear();
  CHECK(slurm::job_script(t, "w").find("hostname -I") != std::string::npos);
}

TEST_CASE("sbatch gets the job name, log, partition, CPUs and the extra arguments") {
  auto t = tmpl();
  t.slurm.partition = "short";
  t.slurm.extra_args = "--time=8:00:00 --comment='two words'";
  auto a = slurm::sbatch_args(t, "w1");
  REQUIRE(a.has_value());
  CHECK(*a == std::vector<std::string>{"--parsable", "--job-name=w1", "--output=/scratch/hio/logs/w1.log",
                                       "--partition=short", "--cpus-per-task=4", "--time=8:00:00",
                                       "--comment=two words"});
  t.slurm.extra_args = "-c 8";
  a = slurm::sbatch_args(t, "w1");
  REQUIRE(a.has_value());
  CHECK(std::count(a->begin(), a->end(), "--cpus-per-task=4") == 0);
  t.slurm.extra_args = "--comment='open";
  CHECK_FALSE(slurm::sbatch_args(t, "w1").has_value());
}

TEST_CASE("sbatch's and squeue's answers are read") {
  CHECK(slurm::parse_job_id("1234\n").value() == "1234");
  CHECK(slurm::parse_job_id("1234;cluster\n").value() == "1234");
  CHECK(slurm::parse_job_id("site notice\n77\n").value() == "77");
  CHECK_FALSE(slurm::parse_job_id("").has_value());
  CHECK_FALSE(slurm::parse_job_id("Submitted batch job 12\n").has_value());
  const auto st = slurm::parse_states("12 RUNNING\n13 PENDING\n14 CANCELLED by 0\nbad\n");
  CHECK(st.size() == 3);
  CHECK(st.at("14") == "CANCELLED by 0");
  CHECK(slurm::is_final("COMPLETED"));
  CHECK(slurm::is_final("CANCELLED by 0"));
  CHECK(slurm::is_final("TIMEOUT"));
  CHECK(slurm::is_final("NODE_FAIL"));
  CHECK_FALSE(slurm::is_final("RUNNING"));
  CHECK_FALSE(slurm::is_final("PENDING"));
  CHECK_FALSE(slurm::is_final("COMPLETING"));
}

TEST_CASE("a failed submission is an error with sbatch's message") {
  fake_slurm f;
  std::ofstream(f.dir / "fail") << "";
  auto p = make_provisioner("slurm", f.configure(tmpl()));
  REQUIRE(p.has_value());
  auto ids = (*p)->start_workers(2);
  REQUIRE_FALSE(ids.has_value());
  CHECK(ids.error().message.find("invalid partition specified: nosuch") != std::string::npos);
}

TEST_CASE("slurm jobs: submitted with the script, lost ones reported, a drained one cancelled after the timeout") {
  fake_slurm f;
  auto t = f.configure(tmpl());
  t.secret = "s3cret";
  t.slurm.stop_timeout = std::chrono::milliseconds(300);
  auto p = make_provisioner("slurm", t);
  REQUIRE(p.has_value());
  auto ids = (*p)->start_workers(3);
  REQUIRE(ids.has_value());
  REQUIRE(ids->size() == 3);
  CHECK((*ids)[0].starts_with("auto-slurm-"));
  CHECK(slurp(f.dir / "script-101").find("--name '" + (*ids)[0] + "'") != std::string::npos);
  CHECK(slurp(f.dir / "secret-101") == "s3cret\n");
  CHECK(slurp(f.dir / "args-101").find("--job-name=" + (*ids)[0]) != std::string::npos);
  CHECK((*p)->poll().empty());

  // Job 102 fails on its own: reported once.
  f.set_state("102", "FAILED");
  CHECK((*p)->poll() == std::vector<std::string>{(*ids)[1]});
  CHECK((*p)->poll().empty());

  // Job 101 is told to drain (SIGTERM to the batch step) and ends by itself: not reported, not cancelled.
  REQUIRE((*p)->stop_worker((*ids)[0]).has_value());
  CHECK(slurp(f.dir / "scancel.log") == "--batch --signal=TERM 101\n");
  f.set_state("101", "COMPLETED");
  CHECK((*p)->poll().empty());

  // Job 103 is told to drain and does not end: scancelled once the stop timeout has passed.
  REQUIRE((*p)->stop_worker((*ids)[2]).has_value());
  CHECK((*p)->poll().empty());
  CHECK(slurp(f.dir / "scancel.log").find("\n103\n") == std::string::npos);
  std::this_thread::sleep_for(std::chrono::milliseconds(400));
  CHECK((*p)->poll().empty());
  CHECK(slurp(f.dir / "scancel.log") == "--batch --signal=TERM 101\n--batch --signal=TERM 103\n103\n");
  CHECK_FALSE((*p)->stop_worker("not-mine").has_value());
}
