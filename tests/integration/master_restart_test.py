"""A restart of the master (kill -9) while tuples are queued: every tuple is still stored exactly once."""
import os
import subprocess
import sys
import tempfile

import pytest

sys.path.insert(0, os.path.dirname(__file__))
from cluster import BIN, Cluster, check_exactly_once, random_files, wait_for  # noqa: E402


def test_a_master_restarted_with_a_full_queue_loses_nothing():
    c = Cluster(workers=1, channels=1, processor="sleep:60")
    try:
        with tempfile.TemporaryDirectory() as tmp:
            groups = [random_files(os.path.join(tmp, f"s{s}"), 60, 1024, 256 << 10, seed=20 + s) for s in range(2)]
            procs = [subprocess.Popen([os.path.join(BIN, "hio"), "stream", "--master", c.master_url, "--source",
                                       f"source-{s}", "--quiet", *sorted(g)], stdout=subprocess.PIPE,
                                      stderr=subprocess.STDOUT, text=True) for s, g in enumerate(groups)]
            wait_for(lambda: c.status()["queue"]["length"] >= 20, 120, "20 tuples in the queue")
            queued = c.status()["queue"]["length"]
            c.restart_master(kill=True)
            resumed = c.status()["queue"]["length"]
            outs = [p.communicate(timeout=600)[0] for p in procs]
            for p, out in zip(procs, outs):
                assert p.returncode == 0, f"hio stream failed:\n{out}\n{c.logs()}"
            c.wait_drained()
            expected = {k: v for g in groups for k, v in g.items()}
            problems = check_exactly_once(c.records(), expected)
            assert not problems, "\n".join(problems[:20]) + "\n" + c.logs()
            assert resumed > 0, "the restarted master resumed an empty queue"
            print(f"  {queued} tuples queued at the kill, {resumed} resumed by the new master")
    finally:
        c.close()


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-q", "-p", "no:cacheprovider"]))
