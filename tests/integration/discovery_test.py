"""Knowledge discovery end to end: NumPy realizations of two clearly different regimes go through the
`features` processor into the repository; `hio-discovery --once` clusters them and publishes knowledge
that separates the regimes (and three nested regimes with the default cut); later ticks read from the repository only the rows they have not seen (the
repository's rows_read counter), a restarted hio-discovery resumes from its own copy, and `hio knowledge`
prints the document."""
import json
import os
import subprocess
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))
from cluster import BIN, SECRET, Cluster, get_json, http, wait_for  # noqa: E402

ROOT = os.environ.get("HIO_SOURCE", os.path.join(os.path.dirname(__file__), "..", ".."))
LIB = os.environ.get("HIO_LIB", os.path.join(os.path.dirname(__file__), "..", "..", "build", "lib"))

# Regime "quiet": low Poisson counts; regime "burst": high, overdispersed counts (negative binomial).
SEND = """
import json, sys, numpy as np, hio
points = json.loads(sys.argv[1])
rng = np.random.default_rng(int(sys.argv[2]))
out = []
with hio.Client("{master}", source="regimes") as cl:
    for p in points:
        for _ in range(p["realizations"]):
            if p["regime"] == "quiet":
                a = rng.poisson(2.0 + 0.1 * p["rate"], size=(2, 120, 16))
            else:
                a = rng.negative_binomial(2, 2.0 / (2.0 + 60.0 + p["rate"]), size=(2, 120, 16))
            r = cl.send(a.astype(np.float32), metadata={{"species": ["A", "B"],
                                                        "params": {{"regime": p["regime"], "rate": p["rate"]}}}})
            out.append([r.tuple_id, r.status])
print(json.dumps(out))
"""


def send(c, points, seed):
    env = dict(os.environ, PYTHONPATH=os.path.join(ROOT, "connector", "python"),
               HIO_CONNECTOR_LIB=os.path.join(LIB, "libhio_connector.so"))
    p = subprocess.run(["/usr/bin/python3", "-c", SEND.format(master=c.master_url), json.dumps(points), str(seed)],
                       capture_output=True, text=True, env=env, timeout=180)
    assert p.returncode == 0, p.stdout + p.stderr
    results = json.loads(p.stdout.strip().splitlines()[-1])
    assert all(r[1] == "stored" for r in results), results
    return [r[0] for r in results]


def discover(c, data_dir, *extra):
    p = subprocess.run([os.path.join(BIN, "hio-discovery"), "--repository", c.repository_url, "--data-dir", data_dir,
                        "--once", *extra], capture_output=True, text=True, env=dict(os.environ, HIO_SECRET=SECRET),
                       timeout=120)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "tick: pulled" in p.stdout + p.stderr, p.stdout + p.stderr
    return get_json(c.repository_url + "/v1/knowledge/latest")


def rows_read(c):
    return get_json(c.repository_url + "/v1/counts")["rows_read"]


def wait_stored(c, n):
    wait_for(lambda: get_json(c.repository_url + "/v1/counts")["stored"] == n, 60, f"{n} stored records")


def regime_labels(doc):
    labels = {}
    for p in doc["point_labels"]:
        labels.setdefault(p["params"]["regime"], set()).add(p["label"])
    return labels


def test_discovery_separates_regimes_reads_only_new_rows_and_resumes():
    c = Cluster(workers=1, channels=2, processor="features")
    try:
        data_dir = os.path.join(c.dir, "discovery")
        status, _ = http("GET", c.repository_url + "/v1/knowledge/latest")
        assert status == 404, status

        points = [{"regime": g, "rate": r, "realizations": 2} for g in ("quiet", "burst") for r in (1, 2, 3, 4)]
        first_ids = send(c, points, seed=1)
        wait_stored(c, len(first_ids))

        before = rows_read(c)
        doc = discover(c, data_dir)
        assert rows_read(c) - before == len(first_ids)
        assert doc["points"] == 16 and doc["groups"] == 8, {k: doc[k] for k in ("points", "groups")}
        assert doc["tick"]["pulled"] == 16, doc["tick"]
        labels = regime_labels(doc)
        assert len(labels["quiet"]) == 1 and len(labels["burst"]) == 1, labels
        assert labels["quiet"] != labels["burst"], labels
        assert set(doc["labels"]) == {str(i) for i in first_ids}
        assert len(doc["linkage"]) == 7 and all(len(row) == 4 for row in doc["linkage"])
        assert sorted(doc["leaf_order"]) == list(range(8))
        assert len(doc["projection"]) == 8
        for cl in doc["clusters"]:
            assert str(cl["representative_tuple"]) in doc["labels"], cl
            assert doc["labels"][str(cl["representative_tuple"])] == cl["label"], cl
            assert "rate" in cl["params_ranges"], cl
        assert sorted(cl["params_values"]["regime"][0] for cl in doc["clusters"]) == ["burst", "quiet"], doc["clusters"]
        assert all(len(cl["params_values"]["regime"]) == 1 for cl in doc["clusters"]), doc["clusters"]
        v1 = doc["version"]

        # N more tuples: the next tick reads exactly those N rows.
        more = [{"regime": "quiet", "rate": 5, "realizations": 2}, {"regime": "burst", "rate": 5, "realizations": 3}]
        new_ids = send(c, more, seed=2)
        wait_stored(c, len(first_ids) + len(new_ids))
        before = rows_read(c)
        doc = discover(c, data_dir)
        assert rows_read(c) - before == len(new_ids), (rows_read(c) - before, len(new_ids))
        assert doc["version"] > v1
        assert doc["points"] == 21 and doc["groups"] == 10
        assert doc["tick"]["pulled"] == len(new_ids)
        labels = regime_labels(doc)
        assert len(labels["quiet"]) == 1 and len(labels["burst"]) == 1 and labels["quiet"] != labels["burst"], labels

        # A restarted hio-discovery with nothing new reads nothing again and still publishes.
        before = rows_read(c)
        v2 = doc["version"]
        doc = discover(c, data_dir)
        assert rows_read(c) - before == 0
        assert doc["version"] > v2 and doc["points"] == 21 and doc["tick"]["pulled"] == 0

        history = get_json(c.repository_url + "/v1/knowledge?limit=2")["versions"]
        assert [h["version"] for h in history] == [doc["version"], v2], history
        assert history[0]["summary"]["points"] == 21

        hio = os.path.join(BIN, "hio")
        out = subprocess.run([hio, "knowledge", "--repository", c.repository_url, "--format", "json"],
                             capture_output=True, text=True, timeout=30)
        assert out.returncode == 0, out.stderr
        assert json.loads(out.stdout)["version"] == doc["version"]
        text = subprocess.run([hio, "knowledge", "--repository", c.repository_url], capture_output=True, text=True,
                              timeout=30)
        assert text.returncode == 0, text.stderr
        assert "representative" in text.stdout and "rate" in text.stdout, text.stdout
        assert "2 clusters (cut: silhouette, score " in text.stdout, text.stdout  # 10 points: below mojena's 16
        assert "regime quiet" in text.stdout and "regime burst" in text.stdout, text.stdout
    finally:
        c.close()


# Three regimes of a simulation that starts every realization from the same state: steady; oscillating
# with a period of about 25; with a period of about 90. Two of them (the oscillating ones) are closer to
# each other than to the steady one: nested regimes.
NESTED = """
import json, sys, numpy as np, hio
rng = np.random.default_rng(int(sys.argv[1]))
t = np.arange(240)
out = []
with hio.Client("{master}", source="nested") as cl:
    for i in range(48):
        regime = ("steady", "period25", "period90")[i % 3]
        a = np.empty((2, 240, 4))
        for s in range(2):
            period = {{"period25": rng.uniform(24, 26), "period90": rng.uniform(88, 92)}}.get(regime)
            base = 50.0 if period is None else 50 + 30 * rng.uniform(0.95, 1.05) * np.sin(
                2 * np.pi * t / period + rng.uniform(0, 0.3))
            for v in range(4):
                a[s, :, v] = base * (1 + 0.1 * v) * (1 + 0.02 * rng.standard_normal(240))
        r = cl.send(a.astype(np.float32), metadata={{"params": {{"regime": regime, "realization": i}}}})
        out.append([r.tuple_id, r.status])
print(json.dumps(out))
"""


def purity(doc):
    by_label = {}
    for p in doc["point_labels"]:
        by_label.setdefault(p["label"], []).append(p["params"]["regime"])
    return sum(max(v.count(r) for r in set(v)) for v in by_label.values()) / len(doc["point_labels"])


def test_nested_regimes_are_recovered_by_the_default_cut():
    c = Cluster(workers=1, channels=2, processor="features")
    try:
        env = dict(os.environ, PYTHONPATH=os.path.join(ROOT, "connector", "python"),
                   HIO_CONNECTOR_LIB=os.path.join(LIB, "libhio_connector.so"))
        p = subprocess.run(["/usr/bin/python3", "-c", NESTED.format(master=c.master_url), "1"], capture_output=True,
                           text=True, env=env, timeout=180)
        assert p.returncode == 0, p.stdout + p.stderr
        results = json.loads(p.stdout.strip().splitlines()[-1])
        assert all(r[1] == "stored" for r in results), results
        wait_stored(c, 48)

        doc = discover(c, os.path.join(c.dir, "discovery"))
        assert doc["groups"] == 48, doc["groups"]
        assert doc["cut"]["criterion"] == "mojena" and doc["cut"]["by"] == "criterion", doc["cut"]
        assert len(doc["clusters"]) == 3 and doc["cut"]["clusters"] == 3, (doc["cut"], doc["clusters"])
        assert purity(doc) == 1.0, doc["point_labels"]
        assert [lv["clusters"] for lv in doc["cut"]["levels"][:3]] == [2, 3, 4], doc["cut"]["levels"]

        # The widest gap, as before the criterion existed, keeps only the top split: steady | oscillating.
        gap = discover(c, os.path.join(c.dir, "discovery-gap"), "--cut", "widest-gap")
        assert gap["cut"]["criterion"] == "widest-gap" and len(gap["clusters"]) == 2, gap["cut"]
        assert purity(gap) < 0.7
    finally:
        c.close()


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-q", "-p", "no:cacheprovider"]))
