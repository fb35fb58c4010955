"""4 concurrent sources x 100 tuples of 1 KB..8 MB through 2 workers x 2 channels, processing slower than
arrival so the overflow queue is used: every tuple stored exactly once with the XXH3 that was sent."""
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(__file__))
from cluster import BIN, Cluster, check_exactly_once, get_json, random_files  # noqa: E402
from runner import run  # noqa: E402


def test_four_sources_through_two_workers_with_the_queue_in_use():
    c = Cluster(workers=2, channels=2, processor="sleep:40")
    try:
        with tempfile.TemporaryDirectory() as tmp:
            groups = [random_files(os.path.join(tmp, f"s{s}"), 100, 1024, 8 << 20, seed=s) for s in range(4)]
            procs = [subprocess.Popen([os.path.join(BIN, "hio"), "stream", "--master", c.master_url, "--source",
                                       f"source-{s}", "--quiet", *sorted(g)], stdout=subprocess.PIPE,
                                      stderr=subprocess.STDOUT, text=True) for s, g in enumerate(groups)]
            outs = [p.communicate(timeout=900)[0] for p in procs]
            for p, out in zip(procs, outs):
                assert p.returncode == 0, f"hio stream failed:\n{out}\n{c.logs()}"
            c.wait_drained()
            expected = {k: v for g in groups for k, v in g.items()}
            records = c.records()
            problems = check_exactly_once(records, expected)
            assert not problems, "\n".join(problems[:20])
            assert len(records) == 400, f"{len(records)} records for 400 tuples"
            counts = get_json(c.repository_url + "/v1/counts")
            assert counts["duplicates"] == 0, f"tuples were processed twice without any fault: {counts}"
            status = c.status()
            assert status["counters"]["queued"] > 0, "the overflow queue was never used"
            assert status["queue"]["length"] == 0, status["queue"]
            sources = {r["source"] for r in records}
            assert sources == {f"source-{s}" for s in range(4)}, sources
            print(f"  queued {status['counters']['queued']} of 400 tuples; "
                  f"{status['counters']['channel_leases']} channel leases, "
                  f"{status['counters']['queue_leases']} queue leases")
    finally:
        c.close()


if __name__ == "__main__":
    run(globals())
