"""The Slurm provisioner against a real Slurm: munged, slurmctld and slurmd run on this machine with a
minimal configuration in a temporary directory. A load step makes the master submit worker jobs; when the
load falls, the master drains them and their jobs end by themselves. Every tuple is stored exactly once.
A job cancelled from outside is reported as lost and replaced; a submission Slurm refuses shows in the
master's status. Skips (exit 0) when the Slurm or MUNGE binaries are missing."""
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

import pytest

sys.path.insert(0, os.path.dirname(__file__))
from cluster import BIN, Cluster, check_exactly_once, get_json, random_files, wait_for  # noqa: E402

os.environ["PATH"] = os.environ.get("PATH", "") + ":/usr/sbin:/sbin"  # munged, slurmctld, slurmd
NEEDED = ["munged", "slurmctld", "slurmd", "sbatch", "squeue", "scancel", "sinfo"]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Slurm:
    """munged + slurmctld + slurmd, all in the foreground of this script, stopped by PID."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="hio-slurm-")
        os.chmod(self.dir, 0o700)
        d = self.dir
        for sub in ("munge", "state", "spool", "log"):
            os.makedirs(os.path.join(d, sub), mode=0o700)
        key = os.path.join(d, "munge", "munge.key")
        with open(key, "wb") as f:
            f.write(os.urandom(128))
        os.chmod(key, 0o600)
        self.socket = os.path.join(d, "munge", "munge.socket")
        self.procs = []
        self.munged = self._start("munged", ["munged", "-F", "--force", f"--key-file={key}", f"--socket={self.socket}",
                                             f"--pid-file={d}/munge/munged.pid", f"--log-file={d}/log/munged.log",
                                             f"--seed-file={d}/munge/seed"])
        wait_for(lambda: os.path.exists(self.socket), 10, "munged's socket")
        node = subprocess.run(["slurmd", "-C"], capture_output=True, text=True, check=True).stdout.splitlines()[0]
        self.conf = os.path.join(d, "slurm.conf")
        with open(self.conf, "w") as f:
            f.write(f"""ClusterName=hiotest
SlurmctldHost={socket.gethostname().split('.')[0]}
SlurmctldPort={free_port()}
SlurmdPort={free_port()}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket={self.socket}
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
MpiDefault=none
ReturnToService=2
MinJobAge=600
StateSaveLocation={d}/state
SlurmdSpoolDir={d}/spool
SlurmctldPidFile={d}/slurmctld.pid
SlurmdPidFile={d}/slurmd.pid
SlurmctldLogFile={d}/log/slurmctld.log
SlurmdLogFile={d}/log/slurmd.log
{node} State=UNKNOWN
PartitionName=hio Nodes=ALL Default=YES MaxTime=INFINITE State=UP OverSubscribe=FORCE:4
""")
        self.env = dict(os.environ, SLURM_CONF=self.conf)
        self.ctld = self._start("slurmctld", ["slurmctld", "-D", "-i"])
        self.slurmd = self._start("slurmd", ["slurmd", "-D"])
        wait_for(lambda: "idle" in self.cmd("sinfo", "-h", "-o", "%T"), 30, "the Slurm node to be idle")

    def _start(self, name, argv):
        log = open(os.path.join(self.dir, "log", f"{name}.out"), "ab")
        p = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT,
                             env=dict(os.environ, SLURM_CONF=os.path.join(self.dir, "slurm.conf")))
        self.procs.append(p)
        return p

    def cmd(self, *argv):
        return subprocess.run(argv, capture_output=True, text=True, env=self.env, timeout=30).stdout

    def jobs(self):
        """{job name: [(job id, state)]} of every job this Slurm knows (ended ones too)."""
        out = {}
        for line in self.cmd("squeue", "-h", "-t", "all", "-o", "%i %T %j").splitlines():
            job, state, name = line.split(None, 2)
            out.setdefault(name, []).append((job, state))
        return out

    def running(self):
        return [n for n, js in self.jobs().items() if any(s in ("RUNNING", "PENDING") for _, s in js)]

    def log(self, name):
        with open(os.path.join(self.dir, "log", name), "rb") as f:
            return b"\n".join(f.read().splitlines()[-20:]).decode(errors="replace")

    def close(self):
        live = [j for js in self.jobs().values() for j, s in js if s in ("RUNNING", "PENDING")]
        if live:
            self.cmd("scancel", *live)
            try:
                wait_for(lambda: not self.running(), 15, "the jobs to end")
            except AssertionError:
                pass
        for p in (self.slurmd, self.ctld, self.munged):  # PID 1 does not reap: stop each by its PID
            p.terminate()
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(timeout=5)
        shutil.rmtree(self.dir, ignore_errors=True)


def master_args(extra=()):
    return ["--autoscale", "--provisioner", "slurm", "--slurm-worker-host", "127.0.0.1",
            "--slurm-stop-timeout-s", "30", "--min-workers", "1", "--max-workers", "3", "--worker-channels", "1",
            "--worker-processor", "sleep:60", "--scaling-interval-ms", "500", "--target-delay-ms", "2000",
            "--scale-out-cooldown-ms", "1500", "--scale-in-cooldown-ms", "3000", "--repository", "{repository}",
            "--worker-log-dir", "{dir}", *extra]


def test_slurm_jobs_follow_the_load_and_every_tuple_is_stored_once():
    t0 = time.time()
    slurm = Slurm()
    print(f"  slurm up in {time.time() - t0:.1f} s")
    os.environ["SLURM_CONF"] = slurm.conf  # the master and the sbatch/squeue/scancel it runs
    c = None
    try:
        c = Cluster(workers=0, wait=False, master_args=master_args())
        c.wait_workers(1)  # min_workers: one job submitted by the master
        assert len(slurm.running()) == 1, slurm.jobs()
        with tempfile.TemporaryDirectory() as tmp:
            groups = [random_files(os.path.join(tmp, f"s{s}"), 120, 1024, 64 << 10, seed=70 + s) for s in range(2)]
            t1 = time.time()
            procs = [subprocess.Popen([os.path.join(BIN, "hio"), "stream", "--master", c.master_url, "--source",
                                       f"source-{s}", "--quiet", *sorted(g)], stdout=subprocess.PIPE,
                                      stderr=subprocess.STDOUT, text=True) for s, g in enumerate(groups)]
            most_workers = most_jobs = 1
            while any(p.poll() is None for p in procs) or c.status()["queue"]["length"] > 0:
                most_workers = max(most_workers, len(c.status()["workers"]))
                most_jobs = max(most_jobs, len(slurm.running()))
                time.sleep(0.3)
                assert time.time() - t1 < 90, "the load did not finish"
            for p in procs:
                out = p.communicate()[0]
                assert p.returncode == 0, out
            load_s = time.time() - t1
            assert most_jobs >= 2 and most_workers >= 2, f"no scale-out: {most_jobs} jobs, {most_workers} workers"
            wait_for(lambda: len(c.status()["workers"]) == 1 and len(slurm.running()) == 1, 45,
                     "the master to scale back in to 1 worker and 1 job")
            expected = {k: v for g in groups for k, v in g.items()}
            problems = check_exactly_once(c.records(), expected)
            assert not problems, "\n".join(problems[:20])
        decisions = c.status()["scaling"]["decisions"]
        assert any(d["action"] == "scale_out" and d["result"].startswith("started") for d in decisions), decisions
        assert any(d["action"] == "scale_in" and d["result"].startswith("draining") for d in decisions), decisions
        # Drained jobs ended by themselves (the worker exited 0): COMPLETED, never cancelled.
        jobs = slurm.jobs()
        ended = {n: s for n, js in jobs.items() for _, s in js if s not in ("RUNNING", "PENDING")}
        assert ended and all(s == "COMPLETED" for s in ended.values()), jobs
        assert "cancelling it" not in c.master.log_tail(400), c.master.log_tail(40)
        print(f"  load of 240 tuples in {load_s:.1f} s; at most {most_jobs} jobs / {most_workers} workers; "
              f"{len(ended)} drained jobs COMPLETED")

        # A job cancelled from outside: the master hears of it from squeue and submits a replacement.
        (victim,) = slurm.running()
        slurm.cmd("scancel", *[j for j, s in slurm.jobs()[victim] if s == "RUNNING"])
        wait_for(lambda: any(d["action"] == "lost" and victim in d["reason"]
                             for d in c.status()["scaling"]["decisions"]), 20, "the master to report the lost job")
        history = get_json(c.master_url + "/v1/history")  # what the dashboard plots
        assert any(d["action"] == "lost" and victim in d["reason"] for d in history["decisions"]), history["decisions"]
        wait_for(lambda: len(c.status()["workers"]) == 1 and c.status()["workers"][0]["id"] != victim, 30,
                 "a replacement worker")
        c.close()
        c = None

        # A submission Slurm refuses: the error is in the master's status, and no worker appears.
        c = Cluster(workers=0, wait=False, master_args=master_args(["--slurm-partition", "nosuch"]))
        wait_for(lambda: any(d["result"].startswith("failed") for d in c.status()["scaling"]["decisions"]), 10,
                 "the failed submission in the status")
        failed = [d["result"] for d in c.status()["scaling"]["decisions"] if d["result"].startswith("failed")]
        assert "invalid partition" in failed[0].lower() or "nosuch" in failed[0], failed
        assert not c.status()["workers"]
        print(f"  refused submission shown as: {failed[0][:100]}")
    except Exception:
        if c is not None:
            print(c.logs())
        print("--- slurmctld\n" + slurm.log("slurmctld.log"))
        raise
    finally:
        if c is not None:
            c.close()
        slurm.close()
        print(f"  whole test {time.time() - t0:.1f} s")


if __name__ == "__main__":
    missing = [b for b in NEEDED if shutil.which(b) is None]
    if missing:
        print(f"SKIP: Slurm/MUNGE binaries missing ({', '.join(missing)}); scripts/setup.sh installs slurm-wlm munge")
        sys.exit(0)
    sys.exit(pytest.main([__file__, "-q", "-p", "no:cacheprovider"]))
