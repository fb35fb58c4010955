"""kill -9 of a worker mid-stream: every tuple is still stored exactly once."""
import os
import sys
import tempfile
import time

import pytest

sys.path.insert(0, os.path.dirname(__file__))
from cluster import BIN, Cluster, check_exactly_once, random_files, wait_for  # noqa: E402
import subprocess  # noqa: E402


def test_a_worker_killed_mid_stream_loses_nothing():
    c = Cluster(workers=2, channels=2, processor="sleep:25")
    try:
        with tempfile.TemporaryDirectory() as tmp:
            groups = [random_files(os.path.join(tmp, f"s{s}"), 100, 1024, 2 << 20, seed=10 + s) for s in range(2)]
            procs = [subprocess.Popen([os.path.join(BIN, "hio"), "stream", "--master", c.master_url, "--source",
                                       f"source-{s}", "--quiet", *sorted(g)], stdout=subprocess.PIPE,
                                      stderr=subprocess.STDOUT, text=True) for s, g in enumerate(groups)]
            wait_for(lambda: len(c.records()) >= 40, 120, "40 tuples stored")
            victim = c.workers[0]
            victim.kill9()
            killed_at = len(c.records())
            outs = [p.communicate(timeout=600)[0] for p in procs]
            for p, out in zip(procs, outs):
                assert p.returncode == 0, f"hio stream failed:\n{out}\n{c.logs()}"
            c.wait_drained()
            expected = {k: v for g in groups for k, v in g.items()}
            problems = check_exactly_once(c.records(), expected)
            assert not problems, "\n".join(problems[:20])
            assert killed_at < 200, "the worker was killed after the stream ended; the test proves nothing"
            wait_for(lambda: len(c.status()["workers"]) == 1, 10, "the master to drop the dead worker")
            print(f"  killed {victim.name} after {killed_at} of 200 tuples were stored")
    finally:
        c.close()


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-q", "-p", "no:cacheprovider"]))
