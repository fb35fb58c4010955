"""experiments/bench/run.py --quick against this build: every point of hio (TCP, and UCX where built) and
of the ZeroMQ broker baseline delivers every tuple exactly once. For hio that is the repository's own
account: its counters grew by the number of tuples sent, and the records added hold each tuple id once,
all stored; and the source got every acknowledgement without an error, over TCP and over UCX alike.
Figures are not asserted (a benchmark is not a timed test)."""
import csv
import os
import subprocess
import sys
import tempfile

import pytest

sys.path.insert(0, os.path.dirname(__file__))
from cluster import BIN  # noqa: E402

ROOT = os.environ.get("HIO_SOURCE", os.path.join(os.path.dirname(__file__), "..", ".."))
# The points --quick plans: (cost ms, size) -> hio runs each over every transport, the broker once.
QUICK_POINTS = {(0, 500), (0, 100_000), (0, 5_000_000), (10, 1_000), (10, 1_000_000), (100, 1_000)}


def test_quick_bench_delivers_every_tuple_exactly_once():
    with tempfile.TemporaryDirectory() as out:
        p = subprocess.run(["/usr/bin/python3", os.path.join(ROOT, "experiments", "bench", "run.py"), "--quick",
                            "--bin", BIN, "--out", out], capture_output=True, text=True, timeout=300)
        # 1: some point was not exactly once from the source's side; the rows say which (checked below).
        assert p.returncode in (0, 1), p.stdout[-4000:] + p.stderr[-4000:]
        with open(os.path.join(out, "results.csv")) as f:
            rows = list(csv.DictReader(f))
        assert os.path.getsize(os.path.join(out, "results.md")) > 0

    def points(system, transport):
        return {(int(r["cost_ms"]), int(r["size_bytes"])): r for r in rows
                if r["system"] == system and r["transport"] == transport}

    hio_tcp = points("hio", "tcp")
    assert set(hio_tcp) == QUICK_POINTS, sorted(hio_tcp)
    hio_ucx = points("hio", "ucx")
    assert set(hio_ucx) == QUICK_POINTS, sorted(hio_ucx)
    for key, r in list(hio_tcp.items()) + list(hio_ucx.items()):
        if r["transport"] == "ucx" and r["status"].startswith("n/a"):  # a build without UCX
            continue
        n = int(r["count"])
        assert n > 0 and r["status"] == "ok" and r["exactly_once"] == "yes", (key, r)
        assert int(r["acknowledged"]) == n and int(r["stored_in_repository"]) == n, (key, r)
        assert int(r["distinct_ids"]) == n, (key, r)

    broker = points("zmq-broker", "tcp")
    assert set(broker) == QUICK_POINTS, sorted(broker)
    built = all(os.path.exists(os.path.join(BIN, f"hio-zmq-{x}")) for x in ("source", "broker", "sink"))
    for key, r in broker.items():
        if not built:
            assert r["status"].startswith("n/a"), (key, r)
            continue
        assert r["status"] == "ok" and r["exactly_once"] == "yes", (key, r)
        assert int(r["acknowledged"]) == int(r["count"]) and r["resent_duplicates"] == "0", (key, r)


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-q", "-p", "no:cacheprovider"]))
