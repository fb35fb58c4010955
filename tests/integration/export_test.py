"""`hio export --format hdf5` against a real cluster and against a hostile server. The file, read back with
Debian's h5py, holds the same tuple ids, feature names and values as `hio features --format jsonl` prints
(NaN where a value is missing or was not finite), the parameters as columns (float64 or strings, a name
with '/' escaped), failed tuples with their errors, and after an `hio-discovery --once` tick the knowledge:
labels aligned with /tuple_id and the document's, its linkage and leaf order. A fake repository's
malformed, oversized, slow or odd answers give a short, clear error, and neither OUT nor OUT.tmp is
left (an existing OUT stays as it was). Skips (prints SKIP, exits 0) when h5py is not installed."""
import http.server
import json
import math
import os
import subprocess
import sys
import threading
import time

import pytest

try:
    import h5py
except ImportError:
    print("SKIP export_test: python3-h5py is not installed")
    sys.exit(0)
import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from cluster import BIN, SECRET, Cluster, get_json, wait_for  # noqa: E402

ROOT = os.environ.get("HIO_SOURCE", os.path.join(os.path.dirname(__file__), "..", ".."))
LIB = os.environ.get("HIO_LIB", os.path.join(os.path.dirname(__file__), "..", "..", "build", "lib"))

# Two regimes of counts over parameter points (regime, rate; "dt/s" only for the quiet ones), then two
# payloads that are not usable .npy (stored as failed). Prints [[tuple id, status], ...].
SEND = """
import json, sys, numpy as np, hio
points = json.loads(sys.argv[2])
rng = np.random.default_rng(3)
arrays, meta = [], []
for p in points:
    for _ in range(2):
        if p["regime"] == "quiet":
            a = rng.poisson(2.0 + 0.1 * p["rate"], size=(2, 120, 16))
            params = {"regime": "quiet", "rate": p["rate"], "dt/s": 0.5}
        else:
            a = rng.negative_binomial(2, 2.0 / (62.0 + p["rate"]), size=(2, 120, 16))
            params = {"regime": "burst", "rate": p["rate"]}
        arrays.append(a.astype(np.float32))
        meta.append({"species": ["A", "B"], "params": params})
arrays += [b"not an npy at all", np.lib.format.magic(1, 0) + b"garbage"]
meta += [None, {"params": "not an object"}]
with hio.Client(sys.argv[1], source="regimes") as cl:
    b = cl.send_many(arrays, metadata=meta)
print(json.dumps([[r.tuple_id, r.status] for r in b]))
"""

POINTS = [{"regime": g, "rate": r} for g in ("quiet", "burst") for r in (1, 2, 3)]


def hio(*args, timeout=120):
    return subprocess.run([os.path.join(BIN, "hio"), *args], capture_output=True, text=True, timeout=timeout)


def export(out, *args, timeout=120):
    p = hio("export", "--format", "hdf5", *args, out, timeout=timeout)
    assert not os.path.exists(out + ".tmp"), "export left " + out + ".tmp"
    return p


def strings(d):
    return [s.decode() if isinstance(s, bytes) else s for s in d[()]]


def same(a, b):
    """A value of the file against the CLI's JSON (null or missing: NaN)."""
    return math.isnan(a) if b is None else a == b


def test_export_matches_hio_features_params_failed_tuples_and_knowledge():
    c = Cluster(workers=1, channels=2, processor="features", master_args=["--repository", "{repository}"])
    try:
        env = dict(os.environ, PYTHONPATH=os.path.join(ROOT, "connector", "python"),
                   HIO_CONNECTOR_LIB=os.path.join(LIB, "libhio_connector.so"))
        p = subprocess.run(["/usr/bin/python3", "-c", SEND, c.master_url, json.dumps(POINTS)], capture_output=True,
                           text=True, env=env, timeout=180)
        assert p.returncode == 0, p.stdout + p.stderr
        sent = json.loads(p.stdout.strip().splitlines()[-1])
        assert [r[1] for r in sent] == ["stored"] * 12 + ["failed"] * 2, sent
        wait_for(lambda: get_json(c.repository_url + "/v1/counts")["records"] == 14, 60, "14 records")

        # Before discovery published: everything but /knowledge.
        out = os.path.join(c.dir, "before.h5")
        p = export(out, "--master", c.master_url)
        assert p.returncode == 0, p.stderr
        assert "exported 14 tuples" in p.stdout, p.stdout
        with h5py.File(out, "r") as f:
            assert "knowledge" not in f and f["features"].shape[0] == 14

        d = subprocess.run([os.path.join(BIN, "hio-discovery"), "--repository", c.repository_url, "--data-dir",
                            os.path.join(c.dir, "discovery"), "--once"], capture_output=True, text=True,
                           env=dict(os.environ, HIO_SECRET=SECRET), timeout=120)
        assert d.returncode == 0, d.stdout + d.stderr
        doc = get_json(c.repository_url + "/v1/knowledge/latest")

        out = os.path.join(c.dir, "sweep.h5")
        with open(out, "wb") as f:
            f.write(b"an older export")  # replaced as a whole
        p = export(out, "--repository", c.repository_url)
        assert p.returncode == 0, p.stderr
        assert f"knowledge version {doc['version']}" in p.stdout, p.stdout

        p = hio("features", "--repository", c.repository_url, "--format", "jsonl")
        assert p.returncode == 0, p.stderr
        cli = [json.loads(line) for line in p.stdout.splitlines() if line.strip()]
        assert len(cli) == 14
        with h5py.File(out, "r") as f:
            ids = f["tuple_id"][()]
            assert ids.dtype == np.uint64 and ids.tolist() == [r["id"] for r in cli]
            names = strings(f["feature_names"])
            assert set(names) == {k for r in cli for k in r["features"]} and len(names) == 67, names[:5]
            x = f["features"]
            assert x.dtype == np.float64 and x.shape == (14, len(names)), x.shape
            assert x.chunks is not None and x.compression == "gzip", (x.chunks, x.compression)
            x = x[()]
            for i, r in enumerate(cli):
                for j, name in enumerate(names):
                    assert same(x[i, j], r["features"].get(name)), (r["id"], name, x[i, j])
            assert strings(f["source"]) == ["regimes"] * 14
            status, errors = strings(f["status"]), strings(f["error"])
            assert status == [r["status"] for r in cli] == ["stored"] * 12 + ["failed"] * 2, status
            assert errors[:12] == [""] * 12 and all(".npy" in e for e in errors[12:]), errors
            assert errors[12:] == [r["error"] for r in cli[12:]]
            assert np.isnan(x[12:]).all() and not np.isnan(x[:12]).any()

            params = [(r.get("metadata") or {}).get("params") for r in cli]
            params = [p if isinstance(p, dict) else {} for p in params]
            assert sorted(f["params"]) == ["dt%2Fs", "rate", "regime"], list(f["params"])
            rate = f["params/rate"]
            assert rate.dtype == np.float64 and rate.attrs["name"] == "rate"
            assert all(same(v, p.get("rate")) for v, p in zip(rate[()], params)), rate[()]
            assert strings(f["params/regime"]) == [p.get("regime", "") for p in params]
            dt = f["params/dt%2Fs"]
            assert dt.attrs["name"] == "dt/s" and all(same(v, p.get("dt/s")) for v, p in zip(dt[()], params))

            a = f.attrs
            assert a["format"] == "hio-export" and a["format_version"] == 1 and a["hio_version"] == "0.1.0"
            assert a["repository"] == c.repository_url and a["cursor"] == c.records()[-1]["cursor"]
            assert abs(a["exported_at_ms"] / 1000 - time.time()) < 120 and a["exported_at"].endswith("Z")

            k = f["knowledge"]
            labels = k["labels"][()]
            assert labels.tolist() == [doc["labels"].get(str(i), 0) for i in ids.tolist()], labels
            assert (labels[:12] > 0).all() and (labels[12:] == 0).all(), labels  # failed tuples: not clustered
            z = k["linkage"][()]
            assert z.dtype == np.float64 and z.shape == (len(doc["point_labels"]) - 1, 4)
            assert z.tolist() == [[float(v) for v in row] for row in doc["linkage"]]
            assert k["leaf_order"][()].tolist() == doc["leaf_order"]
            assert k["point_label"][()].tolist() == [p["label"] for p in doc["point_labels"]]
            point = k["tuple_point"][()]
            assert [doc["point_labels"][j]["label"] if j >= 0 else 0 for j in point] == labels.tolist()
            assert k.attrs["version"] == doc["version"] and k.attrs["method"] == doc["method"]
            assert k.attrs["cut_criterion"] == doc["cut"]["criterion"]
            assert k.attrs["cut_clusters"] == doc["cut"]["clusters"] == len(doc["clusters"])
            assert json.loads(strings(k["document"])[0]) == doc
    finally:
        c.close()


class FakeRepository(http.server.ThreadingHTTPServer):
    """Answers /v1/... with what its case says; the cases are a hostile or broken repository (one server
    per case: the CLI's URLs are host:port, without a path)."""
    daemon_threads = True

    def __init__(self, case):
        self.case = case
        super().__init__(("127.0.0.1", 0), FakeHandler)
        threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server_address[1]}"

    def close(self):
        self.shutdown()
        self.server_close()


RECORD = {"id": 1, "cursor": 1, "status": "stored", "source": "s", "error": "", "features": {"a": 1.0}}


class FakeHandler(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def send(self, status, body, headers=()):
        self.send_response(status)
        for k, v in headers:
            self.send_header(k, v)
        if not any(k == "Content-Length" for k, _ in headers):
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):  # noqa: N802 - the http.server name
        case, rest = self.server.case, self.path.lstrip("/")
        good = (json.dumps(RECORD) + "\n").encode()
        try:
            if rest.startswith("v1/knowledge"):
                docs = {"bad-linkage": {"version": 1, "linkage": [[0, 1, 0.5], [1, 2, "x", 3]]},
                        "bad-labels": {"version": 1, "labels": {"1": 0}},
                        "labels-not-ids": {"version": 1, "labels": {"x": 1}},
                        "bad-leaf-order": {"version": 1, "linkage": [[0, 1, 0.5, 2]], "leaf_order": [0, 0]}}
                if case in docs:
                    self.send(200, json.dumps(docs[case]).encode())
                elif case == "knowledge-500":
                    self.send(500, b'{"error": "disk on fire"}')
                else:
                    self.send(404, b'{"error": "no knowledge"}')
            elif case == "declared-huge":
                self.send(200, b"", [("Content-Length", str(10 << 30))])
            elif case == "trickle":  # a byte every 0.2 s: each read is quick, the answer never ends
                self.send_response(200)
                self.send_header("Content-Length", "100000")
                self.end_headers()
                while True:
                    self.wfile.write(b"{")
                    self.wfile.flush()
                    time.sleep(0.2)
            elif case == "malformed":
                self.send(200, good + b'{"id": 2, "curs\n')
            elif case == "deep":
                self.send(200, b"[" * 200000 + b"\n")
            elif case == "not-objects":
                self.send(200, b"[1, 2]\n")
            elif case == "no-id":
                self.send(200, good + json.dumps({"cursor": 2, "features": {}}).encode() + b"\n")
            elif case == "negative-id":
                self.send(200, json.dumps({"id": -5, "cursor": 1}).encode() + b"\n")
            elif case == "twice":
                self.send(200, good + json.dumps(dict(RECORD, cursor=2)).encode() + b"\n")
            elif case == "stuck":  # full pages whose cursor never moves
                limit = int(rest.split("limit=")[1].split("&")[0])
                self.send(200, "".join(json.dumps({"id": i + 1, "cursor": 1}) + "\n" for i in range(limit)).encode())
            elif case == "too-many":  # more records than asked for
                limit = int(rest.split("limit=")[1].split("&")[0])
                self.send(200, "".join(json.dumps({"id": i + 1, "cursor": i + 1}) + "\n"
                                       for i in range(limit + 1)).encode())
            elif case == "many-names":  # every record invents names: the table would be rows x names
                body = "".join(json.dumps({"id": i + 1, "cursor": i + 1, "features": {f"n{i}.{j}": 1.0 for j in
                                                                                         range(20)}}) + "\n"
                               for i in range(10))
                self.send(200, body.encode())
            elif case == "error-page":
                self.send(500, b'{"error": "disk on fire\\u0007"}' + b" " * (1 << 20))
            elif case == "master-without-repository" and rest == "v1/status":
                self.send(200, json.dumps({"repository": ""}).encode())
            elif rest.startswith("v1/features"):  # the knowledge cases: one good record
                after = int(rest.split("after=")[1].split("&")[0])
                self.send(200, good if after == 0 else b"")
            else:
                self.send(404, b'{"error": "no such case"}')
        except (BrokenPipeError, ConnectionResetError):
            pass


def test_a_hostile_repository_gives_a_clear_error_and_no_file():
    directory = os.path.join(os.environ.get("TMPDIR", "/tmp"), f"hio-export-{os.getpid()}")
    os.makedirs(directory, exist_ok=True)
    try:
        def refused(case, *words, args=(), flag="--repository", within=30):
            out = os.path.join(directory, case + ".h5")
            server = FakeRepository(case)
            try:
                t0 = time.monotonic()
                p = export(out, flag, server.url, *args, timeout=within + 30)
                took = time.monotonic() - t0
            finally:
                server.close()
            assert p.returncode == 1, (case, p.returncode, p.stdout, p.stderr)
            text = p.stderr.strip()
            assert text.startswith("hio export: ") and len(text) < 600 and "\n" not in text, (case, text)
            assert all(w in text for w in words), (case, words, text)
            assert not os.path.exists(out), f"{case}: {out} was written"
            assert took < within, (case, took)
            return text

        refused("declared-huge", "cannot read the repository", "body limit")
        refused("trickle", "cannot read the repository", "timeout", args=("--timeout", "1"), within=5)
        refused("malformed", "malformed page", "line 2 is not a JSON object")
        refused("deep", "line 1 is not a JSON object of at most 64 levels")
        refused("not-objects", "line 1 is not a JSON object")
        refused("no-id", "line 2 has no tuple id")
        refused("negative-id", "line 1 has no tuple id")
        refused("twice", "tuple 1 comes twice")
        refused("stuck", "cursor does not advance")
        refused("too-many", "more than the 8192 records asked for")
        refused("many-names", "more than 100 distinct feature names", args=("--max-columns", "100"))
        text = refused("error-page", "answered HTTP 500", "disk on fire")
        assert "\x07" not in text
        refused("bad-linkage", "malformed knowledge document", "linkage row 0")
        refused("bad-labels", "the label of tuple 1 is not an integer >= 1")
        refused("labels-not-ids", "\"x\", not a tuple id")
        refused("bad-leaf-order", "leaf_order")
        refused("knowledge-500", "answered HTTP 500", "knowledge")
        refused("master-without-repository", "names no repository", flag="--master")
        p = export(os.path.join(directory, "unreachable.h5"), "--repository", "http://127.0.0.1:1")
        assert p.returncode == 1 and "cannot read the repository at http://127.0.0.1:1" in p.stderr, p.stderr

        # A failed export leaves an existing file as it was.
        out = os.path.join(directory, "kept.h5")
        with open(out, "wb") as f:
            f.write(b"the previous export")
        server = FakeRepository("malformed")
        p = export(out, "--repository", server.url)
        server.close()
        assert p.returncode == 1
        with open(out, "rb") as f:
            assert f.read() == b"the previous export"

        # The fake's one good record, with no knowledge published: a file without /knowledge.
        out = os.path.join(directory, "one.h5")
        server = FakeRepository("one-record")
        p = export(out, "--repository", server.url)
        server.close()
        assert p.returncode == 0, p.stderr
        with h5py.File(out, "r") as f:
            assert f["tuple_id"][()].tolist() == [1] and strings(f["feature_names"]) == ["a"]
            assert f["features"][()].tolist() == [[1.0]] and "knowledge" not in f
    finally:
        for name in os.listdir(directory):
            os.remove(os.path.join(directory, name))
        os.rmdir(directory)


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-q", "-p", "no:cacheprovider"]))
