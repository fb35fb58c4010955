"""The local provisioner: a load step makes the master add workers; when the load falls it removes them.
Every tuple is stored exactly once."""
import os
import subprocess
import sys
import tempfile
import time

import pytest

sys.path.insert(0, os.path.dirname(__file__))
from cluster import BIN, Cluster, check_exactly_once, random_files, wait_for  # noqa: E402


def test_a_load_step_scales_out_and_the_quiet_after_it_scales_back_in():
    c = Cluster(workers=0, wait=False, master_args=[
        "--autoscale", "--min-workers", "1", "--max-workers", "4", "--worker-channels", "1",
        "--worker-processor", "sleep:60", "--scaling-interval-ms", "500", "--target-delay-ms", "2000",
        "--scale-out-cooldown-ms", "1500", "--scale-in-cooldown-ms", "3000",
        "--repository", "{repository}", "--worker-log-dir", "{dir}"])
    try:
        c.wait_workers(1)  # min_workers, started by the master
        with tempfile.TemporaryDirectory() as tmp:
            groups = [random_files(os.path.join(tmp, f"s{s}"), 120, 1024, 64 << 10, seed=40 + s) for s in range(2)]
            t0 = time.time()
            procs = [subprocess.Popen([os.path.join(BIN, "hio"), "stream", "--master", c.master_url, "--source",
                                       f"source-{s}", "--quiet", *sorted(g)], stdout=subprocess.PIPE,
                                      stderr=subprocess.STDOUT, text=True) for s, g in enumerate(groups)]
            most = 1
            first_new = None
            while any(p.poll() is None for p in procs) or c.status()["queue"]["length"] > 0:
                n = len(c.status()["workers"])
                if n > 1 and first_new is None:
                    first_new = time.time() - t0
                most = max(most, n)
                time.sleep(0.2)
                assert time.time() - t0 < 300, "the load did not finish"
            for p in procs:
                out = p.communicate()[0]
                assert p.returncode == 0, out
            assert most > 1, "the master never scaled out"
            wait_for(lambda: len(c.status()["workers"]) == 1, 60, "the master to scale back in to 1 worker")
            expected = {k: v for g in groups for k, v in g.items()}
            problems = check_exactly_once(c.records(), expected)
            assert not problems, "\n".join(problems[:20])
            decisions = c.status()["scaling"]["decisions"]
            assert any(d["action"] == "scale_out" for d in decisions), decisions
            assert any(d["action"] == "scale_in" for d in decisions), decisions
            print(f"  first new worker after {first_new:.1f} s; at most {most} workers; "
                  f"{len(decisions)} scaling decisions")
    finally:
        c.close()


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-q", "-p", "no:cacheprovider"]))
