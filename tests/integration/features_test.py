"""The built-in `features` processor end to end: NumPy realizations sent with the Python connector are
stored with their feature vectors (the values checked against the NumPy reference of docs/features.md),
species names come from the metadata, and payloads that are not usable .npy are stored as failed with a
reason while the channel carries on."""
import json
import os
import subprocess
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))
from cluster import Cluster, get_json  # noqa: E402

ROOT = os.environ.get("HIO_SOURCE", os.path.join(os.path.dirname(__file__), "..", ".."))
LIB = os.environ.get("HIO_LIB", os.path.join(os.path.dirname(__file__), "..", "..", "build", "lib"))


def test_realizations_get_features_and_bad_payloads_fail_with_a_reason():
    c = Cluster(workers=1, channels=2, processor="features")
    try:
        status = c.status()
        devices = {ch["device"] for w in status["workers"] for ch in w["channels"]}
        assert devices == {"cpu"}, devices  # no GPU on CI machines: the fallback is visible in status
        script = f"""
import json, sys, numpy as np, hio
rng = np.random.default_rng(7)
out = []
with hio.Client("{c.master_url}", source="sim") as cl:
    for i in range(6):
        a = rng.poisson(3.0 + i, size=(2, 120, 16)).astype(np.float32)
        r = cl.send(a, metadata={{"species": ["mRNA", "protein"], "params": {{"i": i}}}})
        out.append([r.tuple_id, r.status, r.reason])
    for bad in (b"not an npy at all", np.lib.format.magic(1, 0) + b"garbage"):
        r = cl.send(bad)
        out.append([r.tuple_id, r.status, r.reason])
print(json.dumps(out))
"""
        env = dict(os.environ, PYTHONPATH=os.path.join(ROOT, "connector", "python"),
                   HIO_CONNECTOR_LIB=os.path.join(LIB, "libhio_connector.so"))
        p = subprocess.run(["/usr/bin/python3", "-c", script], capture_output=True, text=True, env=env, timeout=120)
        assert p.returncode == 0, p.stdout + p.stderr
        results = json.loads(p.stdout.strip().splitlines()[-1])
        assert [r[1] for r in results[:6]] == ["stored"] * 6, results
        assert [r[1] for r in results[6:]] == ["failed", "failed"], results
        assert all(".npy" in r[2] for r in results[6:]), results
        c.wait_drained()
        records = {r["id"]: r for r in c.records()}
        good = [records[r[0]] for r in results[:6]]
        for rec in good:
            f = rec["features"]
            assert len(f) == 67, len(f)  # 2 x 27 + 5 + 2 x 4 spectral
            assert "mRNA.mean_sm" in f and "mRNA_protein.corr_sm" in f, sorted(f)[:10]
            assert all(v is not None for v in f.values()), rec
        # Means of Poisson(3+i) counts summed over 16 voxels: about 16*(3+i), increasing with i.
        means = [rec["features"]["mRNA.mean_sm"] for rec in good]
        assert all(abs(m - 16 * (3 + i)) < 16 * 0.5 for i, m in enumerate(means)), means
        bad = [records[r[0]] for r in results[6:]]
        assert all(b["status"] == "failed" and b["error"] for b in bad), bad
        counts = get_json(c.repository_url + "/v1/counts")
        assert counts["failed"] == 2 and counts["stored"] == 6, counts
        assert c.workers[0].alive()
    finally:
        c.close()


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-q", "-p", "no:cacheprovider"]))
