"""The simulated Hes1 sources of experiments/sources end to end: hio-sim-source (C++) and hes1_source.py
(NumPy) stream small sweeps into a real cluster with the features processor; every realization is stored
with its 67 features, params and regime, the truth files list every point, and the default sweep ranges
hold both regimes."""
import csv
import os
import subprocess
import sys
import tempfile

import pytest

sys.path.insert(0, os.path.dirname(__file__))
from cluster import BIN, Cluster  # noqa: E402

ROOT = os.environ.get("HIO_SOURCE", os.path.join(os.path.dirname(__file__), "..", ".."))
LIB = os.environ.get("HIO_LIB", os.path.join(BIN, "..", "lib"))
POINTS, REALIZATIONS = 4, 2


def read_truth(path):
    with open(path) as f:
        return list(csv.DictReader(f))


def check_records(records, source, truth):
    mine = [r for r in records if r["source"] == source]
    assert len(mine) == POINTS * REALIZATIONS, (source, len(mine))
    seen = set()
    for rec in mine:
        assert rec["status"] == "stored", rec
        assert len(rec["features"]) == 67, len(rec["features"])
        assert all(v is not None for v in rec["features"].values()), rec
        meta = rec["metadata"]
        assert meta["species"] == ["mRNA", "protein"], meta
        assert {"hill_n", "K", "mu_m", "mu_p", "k_t", "D"} <= set(meta["params"]), meta
        row = truth[meta["point"]]
        assert meta["regime"] == row["regime"] and meta["regime"] in ("oscillating", "steady"), (meta, row)
        assert abs(meta["params"]["hill_n"] - float(row["hill_n"])) < 1e-4, (meta, row)
        seen.add((meta["point"], meta["realization"]))
    assert seen == {(k, r) for k in range(POINTS) for r in range(REALIZATIONS)}, seen


def test_cpp_and_python_sources_are_stored_with_features_and_truth():
    c = Cluster(workers=1, channels=2, processor="features")
    tmp = tempfile.mkdtemp(prefix="hio-sources-")
    try:
        cpp_truth, py_truth = os.path.join(tmp, "cpp.csv"), os.path.join(tmp, "py.csv")
        p = subprocess.run([os.path.join(BIN, "hio-sim-source"), "--master", c.master_url, "--source", "sim-cpp",
                            "--points", str(POINTS), "--realizations", str(REALIZATIONS), "--timepoints", "200",
                            "--voxels", "8", "--seed", "3", "--truth", cpp_truth],
                           capture_output=True, text=True, timeout=300)
        assert p.returncode == 0, p.stdout + p.stderr
        env = dict(os.environ, PYTHONPATH=os.path.join(ROOT, "connector", "python"),
                   HIO_CONNECTOR_LIB=os.path.join(LIB, "libhio_connector.so"))
        p = subprocess.run(["/usr/bin/python3", os.path.join(ROOT, "experiments", "sources", "hes1_source.py"),
                            "--master", c.master_url, "--source", "sim-py", "--points", str(POINTS),
                            "--realizations", str(REALIZATIONS), "--timepoints", "200", "--voxels", "8",
                            "--seed", "3", "--truth", py_truth],
                           capture_output=True, text=True, env=env, timeout=300)
        assert p.returncode == 0, p.stdout + p.stderr
        c.wait_drained()
        records = c.records()
        for source, path in (("sim-cpp", cpp_truth), ("sim-py", py_truth)):
            truth = read_truth(path)
            assert [int(r["point"]) for r in truth] == list(range(POINTS)), truth
            check_records(records, source, truth)
    finally:
        c.close()


def test_default_sweep_holds_both_regimes():
    with tempfile.TemporaryDirectory() as tmp:
        cpp_truth, py_truth = os.path.join(tmp, "cpp.csv"), os.path.join(tmp, "py.csv")
        p = subprocess.run([os.path.join(BIN, "hio-sim-source"), "--realizations", "1", "--timepoints", "2",
                            "--voxels", "1", "--truth", cpp_truth], capture_output=True, text=True, timeout=120)
        assert p.returncode == 0, p.stdout + p.stderr
        truth = read_truth(cpp_truth)
        assert len(truth) == 16 and {r["regime"] for r in truth} == {"oscillating", "steady"}, truth
        p = subprocess.run(["/usr/bin/python3", os.path.join(ROOT, "experiments", "sources", "hes1_source.py"),
                            "--realizations", "1", "--timepoints", "2", "--voxels", "1", "--truth", py_truth],
                           capture_output=True, text=True, timeout=120)
        assert p.returncode == 0, p.stdout + p.stderr
        assert {r["regime"] for r in read_truth(py_truth)} == {"oscillating", "steady"}


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-q", "-p", "no:cacheprovider"]))
