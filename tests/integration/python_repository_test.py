"""`hio.Repository` against a real cluster and against a hostile server: the features of NumPy realizations
(the `features` processor) read back as arrays are the same ids and values as `hio features --format jsonl`
prints, page by page; as a pandas DataFrame (when python3-pandas is installed); failed tuples have NaN rows;
knowledge after an `hio-discovery --once` tick labels every tuple and gives a SciPy-shaped linkage;
follow() yields exactly the tuples sent after it started; wait() returns the tuples of a batch. A fake
server's oversized, trickling, malformed or odd answers give a RepositoryError (or, for odd records,
defaults) and never a hang or a crash."""
import http.server
import importlib.util
import json
import math
import os
import subprocess
import sys
import threading
import time

import pytest

sys.path.insert(0, os.path.dirname(__file__))
from cluster import BIN, SECRET, Cluster, get_json, wait_for  # noqa: E402

ROOT = os.environ.get("HIO_SOURCE", os.path.join(os.path.dirname(__file__), "..", ".."))
LIB = os.environ.get("HIO_LIB", os.path.join(os.path.dirname(__file__), "..", "..", "build", "lib"))
sys.path.insert(0, os.path.join(ROOT, "connector", "python"))
import numpy as np  # noqa: E402

import hio  # noqa: E402 - Repository is pure Python: no library needed in this process

# Two regimes of Poisson / negative-binomial counts over parameter points; then two payloads that are not
# usable .npy (stored as failed). Prints [[tuple id, status], ...].
SEND = """
import json, sys, numpy as np, hio
points = json.loads(sys.argv[2])
rng = np.random.default_rng(int(sys.argv[3]))
arrays, meta = [], []
for p in points:
    for _ in range(p["realizations"]):
        if p["regime"] == "quiet":
            a = rng.poisson(2.0 + 0.1 * p["rate"], size=(2, 120, 16))
        else:
            a = rng.negative_binomial(2, 2.0 / (2.0 + 60.0 + p["rate"]), size=(2, 120, 16))
        arrays.append(a.astype(np.float32))
        meta.append({"species": ["A", "B"], "params": {"regime": p["regime"], "rate": p["rate"]}})
if sys.argv[4] == "bad":
    arrays += [b"not an npy at all", np.lib.format.magic(1, 0) + b"garbage"]
    meta += [None, {"params": "not an object"}]
with hio.Client(sys.argv[1], source="regimes") as cl:
    b = cl.send_many(arrays, metadata=meta)
print(json.dumps([[r.tuple_id, r.status] for r in b]))
"""

POINTS = [{"regime": g, "rate": r, "realizations": 2} for g in ("quiet", "burst") for r in (1, 2, 3)]


def send(master_url, points, seed, bad=False, wait=True):
    env = dict(os.environ, PYTHONPATH=os.path.join(ROOT, "connector", "python"),
               HIO_CONNECTOR_LIB=os.path.join(LIB, "libhio_connector.so"))
    argv = ["/usr/bin/python3", "-c", SEND, master_url, json.dumps(points), str(seed), "bad" if bad else "good"]
    p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    if not wait:
        return p
    return sent(p)


def sent(p):
    out, err = p.communicate(timeout=180)
    assert p.returncode == 0, out + err
    results = json.loads(out.strip().splitlines()[-1])
    assert all(r[1] in ("stored", "failed", "queued") for r in results), results
    return results


def cluster():
    return Cluster(workers=1, channels=2, processor="features", master_args=["--repository", "{repository}"])


def hio_features_jsonl(c):
    p = subprocess.run([os.path.join(BIN, "hio"), "features", "--repository", c.repository_url, "--format", "jsonl"],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    return [json.loads(line) for line in p.stdout.splitlines() if line.strip()]


def same_value(a, b):
    """A value of the table against the CLI's JSON (null where not finite)."""
    return (b is None and math.isnan(a)) or a == b


def test_features_match_hio_features_pandas_and_knowledge():
    c = cluster()
    try:
        results = send(c.master_url, POINTS, seed=1, bad=True)
        assert [r[1] for r in results] == ["stored"] * 12 + ["failed"] * 2, results
        wait_for(lambda: get_json(c.repository_url + "/v1/counts")["records"] == 14, 60, "14 records")

        repo = hio.Repository(master=c.master_url, page_size=5)  # 14 records: three pages
        assert repo.url == c.repository_url, repo.url
        t = repo.features()
        cli = [r for r in hio_features_jsonl(c) if r["status"] == "stored"]
        assert len(cli) == 12 and len(t) == 12, (len(cli), t)
        assert t.tuple_ids.dtype == np.uint64 and t.values.dtype == np.float64
        assert t.tuple_ids.tolist() == [r["id"] for r in cli]
        assert t.columns == sorted({k for r in cli for k in r["features"]}) and len(t.columns) > 20, t.columns[:5]
        assert t.values.shape == (12, len(t.columns))
        for i, r in enumerate(cli):
            for j, name in enumerate(t.columns):
                assert same_value(t.values[i, j], r["features"].get(name)), (r["id"], name, t.values[i, j])
        assert t.sources == ["regimes"] * 12 and t.status == ["stored"] * 12
        assert t.params == [r["metadata"]["params"] for r in cli]
        assert t.param("rate").tolist() == [float(r["metadata"]["params"]["rate"]) for r in cli]
        assert t.param("regime").tolist()[:2] == ["quiet", "quiet"]
        assert (t["A.mean_sm"] == t.values[:, t.columns.index("A.mean_sm")]).all()

        # Failed tuples: NaN rows with the reason; status=None reads everything.
        failed = repo.features(status="failed")
        assert len(failed) == 2 and np.isnan(failed.values).all() and all(".npy" in e for e in failed.errors)
        assert failed.params == [{}, {}], failed.params  # no metadata; params not an object
        everything = repo.features(status=None)
        assert len(everything) == 14 and everything.columns == t.columns

        # Columns by name and pattern, in the order asked; a name no tuple has is a column of NaN.
        sel = repo.features(columns=["B.mean_sm", "A.mean_*", "no.such"])
        assert sel.columns == ["B.mean_sm", "A.mean_sm", "no.such"], sel.columns
        assert (sel.values[:, 0] == t["B.mean_sm"]).all() and np.isnan(sel.values[:, 2]).all()

        # Cursor: a limited read, then the rest after its cursor, is the whole.
        first = repo.features(limit=5)
        rest = repo.features(after=first.cursor)
        assert len(first) == 5 and first.tuple_ids.tolist() + rest.tuple_ids.tolist() == t.tuple_ids.tolist()
        assert len(repo.features(after=rest.cursor)) == 0

        if importlib.util.find_spec("pandas") is None:
            print("  SKIP the pandas form: python3-pandas is not installed (scripts/setup.sh installs it)")
        else:
            df = repo.features(as_="pandas")
            assert df.index.name == "tuple_id" and df.index.tolist() == t.tuple_ids.tolist()
            n = len(t.columns)
            assert list(df.columns[:n]) == t.columns
            assert list(df.columns[n:]) == ["source", "param.rate", "param.regime"], list(df.columns[n:])
            assert np.array_equal(df[t.columns].to_numpy(), t.values, equal_nan=True)
            assert df["param.rate"].tolist() == t.param("rate").tolist()
            assert set(df["param.regime"]) == {"quiet", "burst"} and set(df["source"]) == {"regimes"}
            assert df.groupby("param.regime")["A.mean_sm"].mean()["burst"] > \
                df.groupby("param.regime")["A.mean_sm"].mean()["quiet"]
            df_all = repo.features(as_="pandas", status="all")
            assert df_all.loc[int(failed.tuple_ids[0]), "status"] == "failed"

        # Knowledge: none before discovery; after one tick every stored tuple has a label.
        try:
            repo.knowledge()
            raise AssertionError("knowledge before any was published")
        except hio.RepositoryError as e:
            assert e.status == 404 and "hio-discovery" in str(e), e
        p = subprocess.run([os.path.join(BIN, "hio-discovery"), "--repository", c.repository_url, "--data-dir",
                            os.path.join(c.dir, "discovery"), "--once"], capture_output=True, text=True,
                           env=dict(os.environ, HIO_SECRET=SECRET), timeout=120)
        assert p.returncode == 0, p.stdout + p.stderr
        k = repo.knowledge()
        doc = get_json(c.repository_url + "/v1/knowledge/latest")
        assert dict(k) == doc and k["version"] == k.version == 1
        assert k.tuple_ids.tolist() == sorted(t.tuple_ids.tolist())
        labels = k.labels_for(t.tuple_ids)
        assert labels.tolist() == [doc["labels"][str(i)] for i in t.tuple_ids.tolist()] and (labels >= 1).all()
        assert k.labels_for(failed.tuple_ids).tolist() == [-1, -1]
        regimes = t.param("regime")
        assert set(labels[regimes == "quiet"]).isdisjoint(labels[regimes == "burst"]), labels
        assert k.linkage.shape == (5, 4) and k.linkage.dtype == np.float64  # 6 parameter points
        assert k.linkage.tolist() == doc["linkage"] and k.linkage[-1, 3] == 6
        assert (np.diff(k.linkage[:, 2]) >= 0).all()
        assert sorted(k.leaf_order.tolist()) == list(range(6)) and k.projection.shape == (6, 2)
        assert len(k.point_names) == 6 and "rate=1, regime=quiet" in k.point_names, k.point_names
        assert sum(len(x) for x in k.point_tuples) == 12
        if importlib.util.find_spec("scipy") is not None:
            from scipy.cluster.hierarchy import dendrogram
            d = dendrogram(k.linkage, labels=k.point_names, no_plot=True)
            assert d["leaves"] == k.leaf_order.tolist(), (d["leaves"], k.leaf_order)
        assert repo.knowledge(1) == k
        try:
            repo.knowledge(7)
            raise AssertionError("knowledge version 7 does not exist")
        except hio.RepositoryError as e:
            assert e.status == 404 and "version 7" in str(e), e
        assert [v["version"] for v in repo.knowledge_versions()] == [1]
    finally:
        c.close()


def test_follow_yields_what_is_stored_after_it_started_and_wait_returns_a_batch():
    c = cluster()
    try:
        before = [r[0] for r in send(c.master_url, POINTS[:1], seed=2)]
        wait_for(lambda: get_json(c.repository_url + "/v1/counts")["records"] == 2, 60, "2 records")
        repo = hio.Repository(c.repository_url, page_size=3)
        follow = repo.follow(poll_s=0.1, timeout=90, max_rows=6)
        assert follow.cursor == 2, follow.cursor
        sender = send(c.master_url, POINTS[3:6], seed=3, wait=False)  # 6 tuples, while follow() polls
        batches = list(follow)
        new = [r[0] for r in sent(sender)]
        got = [i for b in batches for i in b.tuple_ids.tolist()]
        assert sorted(got) == sorted(new) and not set(got) & set(before), (got, new, before)
        width = len(repo.features(limit=1).columns)
        assert width > 20 and all(len(b) and b.values.shape[1] == width for b in batches), batches
        assert {p["regime"] for b in batches for p in b.params} == {"burst"}
        assert len(repo.features(after=follow.cursor)) == 0  # its cursor is past what it gave

        # Rows from the beginning, one at a time; resuming from a cursor gives the rest.
        f = repo.follow(after=0, rows=True, max_rows=5, poll_s=0.1, timeout=30)
        rows = list(f)
        assert [r.tuple_id for r in rows] == before + new[:3], rows
        assert all(isinstance(r, hio.Row) and r.status == "stored" and len(r.features) == width for r in rows)
        rest = list(repo.follow(after=f.cursor, rows=True, poll_s=0.1, timeout=1))
        assert [r.tuple_id for r in rest] == new[3:], rest

        # A stop event ends it while it waits for tuples that never come.
        stop = threading.Event()
        threading.Timer(0.3, stop.set).start()
        t0 = time.monotonic()
        assert list(repo.follow(poll_s=5, stop=stop, timeout=60)) == []
        assert time.monotonic() - t0 < 3

        # wait(): the tuples of one batch, in the batch's order, stored or failed.
        results = send(c.master_url, POINTS[:2], seed=4, bad=True)
        ids = [r[0] for r in results]
        table = repo.wait(ids, timeout=60)
        assert table.tuple_ids.tolist() == ids and table.status == [r[1] for r in results], table.status
        try:
            repo.wait([ids[-1] + 1000], timeout=0.5, poll_s=0.1)
            raise AssertionError("waited for a tuple that does not exist")
        except hio.RepositoryError as e:
            assert e.code == hio._native.HIO_ERR_TIMEOUT and str(ids[-1] + 1000) in str(e), e
    finally:
        c.close()


class FakeRepository(http.server.ThreadingHTTPServer):
    """Answers /<case>/v1/... with what the case says; the cases are a hostile or broken repository."""
    daemon_threads = True


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
        case, _, rest = self.path.lstrip("/").partition("/")
        odd = [{"id": 1, "cursor": 1, "status": "stored", "features": {"a": 1.5, "b": None, "c": "text", "d": True}},
               {"cursor": 2, "features": {"a": 2.0}},  # no id: left out
               {"id": 3, "cursor": 3, "status": "failed", "error": 7, "metadata": [1, 2]},  # no features
               {"id": 4, "cursor": 4, "source": ["x"], "features": [1, 2], "metadata": {"params": {"k": 0.5}}},
               {"id": -5, "cursor": 5}, {"id": 2 ** 64, "cursor": 6}]
        try:
            if case == "declared-huge":
                self.send(200, b"", [("Content-Length", str(10 << 30))])
            elif case == "endless":  # no length, more bytes than any limit, as fast as it can
                self.send_response(200)
                self.end_headers()
                line = (json.dumps({"id": 1, "cursor": 1, "features": {"x": 1.0}}) + "\n").encode() * 1000
                while True:
                    self.wfile.write(line)
            elif case == "trickle":  # a byte every 0.2 s: each read is quick, the answer never ends
                self.send_response(200)
                self.send_header("Content-Length", "100000")
                self.end_headers()
                while True:
                    self.wfile.write(b"{")
                    self.wfile.flush()
                    time.sleep(0.2)
            elif case == "malformed":
                self.send(200, b'{"id": 1, "cursor": 1}\n{"id": 2, "curs\n', [("X-Hio-Next-Cursor", "2")])
            elif case == "deep":
                self.send(200, b"[" * 200000 + b"\n", [("X-Hio-Next-Cursor", "1")])
            elif case == "not-objects":
                self.send(200, b"[1, 2]\n", [("X-Hio-Next-Cursor", "1")])
            elif case == "stuck":  # full pages whose cursor never moves
                body = "".join(json.dumps({"id": i + 1, "cursor": 1}) + "\n" for i in range(int(
                    rest.split("limit=")[1].split("&")[0])))
                self.send(200, body.encode(), [("X-Hio-Next-Cursor", "1")])
            elif case == "odd":
                if rest.startswith("v1/features"):
                    after = int(rest.split("after=")[1].split("&")[0])
                    limit = int(rest.split("limit=")[1].split("&")[0])
                    page = [r for r in odd if r["cursor"] > after][:limit]
                    self.send(200, "".join(json.dumps(r) + "\n" for r in page).encode(),
                              [("X-Hio-Next-Cursor", str(page[-1]["cursor"] if page else after))])
                elif rest.startswith("v1/knowledge"):
                    self.send(200, json.dumps({"version": 2, "labels": {"1": 1, "x": 2, "²": 3, "4": "a",
                                                                        "18446744073709551616": 1}}).encode())
                elif rest.startswith("v1/counts"):
                    self.send(200, b'{"records": 6}')
            elif case == "many-names":  # every record invents names: a dense table would be rows x names
                names = [{f"n{i}.{j}": 1.0 for j in range(20)} for i in range(10)]
                body = "".join(json.dumps({"id": i + 1, "cursor": i + 1, "status": "stored", "features": f}) + "\n"
                               for i, f in enumerate(names))
                self.send(200, body.encode(), [("X-Hio-Next-Cursor", "10")])
            elif case == "bad-linkage":
                self.send(200, json.dumps({"version": 1, "linkage": [[0, 1, 0.5], [1, 2, "x", 3]]}).encode())
            elif case == "error-page":
                self.send(500, b'{"error": "disk on fire\\u0007"}' + b" " * (1 << 20))
            elif case == "master-without-repository" and rest == "v1/status":
                self.send(200, json.dumps({"repository": ""}).encode())
            elif case == "master-file-repository" and rest == "v1/status":
                self.send(200, json.dumps({"repository": "file:///etc/passwd"}).encode())
            else:
                self.send(404, b'{"error": "no such case"}')
        except (BrokenPipeError, ConnectionResetError):
            pass


def raises(fn, *words):
    t0 = time.monotonic()
    try:
        fn()
    except hio.RepositoryError as e:
        text = str(e)
        assert all(w in text for w in words), (words, text)
        assert len(text) < 1000, text
        return e, time.monotonic() - t0
    raise AssertionError(f"no RepositoryError (expected one with {words})")


def test_a_hostile_repository_gives_clear_errors_and_odd_records_defaults():
    server = FakeRepository(("127.0.0.1", 0), FakeHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        def repo(case, **kw):
            return hio.Repository(f"{base}/{case}", **kw)

        raises(lambda: repo("declared-huge").features(), "over the limit")
        _, took = raises(lambda: repo("endless", max_response_bytes=1 << 20).features(), "over the limit")
        assert took < 10, took
        _, took = raises(lambda: repo("trickle", timeout=1).features(), "longer than 1 s")
        assert took < 3, took
        raises(lambda: repo("malformed").features(), "line 2 is not a JSON record")
        raises(lambda: repo("deep").features(), "not a JSON record")
        raises(lambda: repo("not-objects").features(), "not a JSON object")
        raises(lambda: repo("stuck", page_size=3).features(), "does not advance")
        raises(lambda: repo("many-names", max_columns=100).features(), "more than 100 distinct feature names")
        t = repo("many-names", max_columns=100).features(columns=["n1.*"], status=None)
        assert len(t) == 10 and len(t.columns) == 20 and np.isnan(t.values).sum() == 9 * 20
        e, _ = raises(lambda: repo("error-page").counts(), "HTTP 500", "disk on fire")
        assert e.status == 500 and "\x07" not in str(e)
        raises(lambda: repo("bad-linkage").knowledge(), "linkage")
        raises(lambda: hio.Repository(master=f"{base}/master-without-repository"), "names no repository")
        raises(lambda: hio.Repository(master=f"{base}/master-file-repository"), "http://")
        e, _ = raises(lambda: hio.Repository("http://127.0.0.1:1").counts(), "cannot reach")
        assert e.code == hio._native.HIO_ERR_CONNECT_FAILED
        assert isinstance(e, hio.HioError)

        # Odd records: missing fields and wrong types become defaults; a record without a usable id is left out.
        t = repo("odd", page_size=2).features(status=None)
        assert t.tuple_ids.tolist() == [1, 3, 4] and t.skipped == 3, t
        assert t.columns == ["a", "b", "c", "d"]
        assert t.values[0, 0] == 1.5 and np.isnan(t.values[0, 1:]).all() and np.isnan(t.values[1:]).all()
        assert t.status == ["stored", "failed", "unknown"] and t.errors == ["", "", ""]
        assert t.sources == ["", "", ""] and t.params == [{}, {}, {"k": 0.5}] and t.cursor == 6
        rows = list(repo("odd").follow(after=0, rows=True, status=None, timeout=0.5, poll_s=0.1))
        assert [r.tuple_id for r in rows] == [1, 3, 4]
        k = repo("odd").knowledge()
        assert k.tuple_ids.tolist() == [1] and k.labels.tolist() == [1] and k.linkage.shape == (0, 4)
        assert k.labels_for([1, 2]).tolist() == [1, -1]
    finally:
        server.shutdown()
        server.server_close()


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-q", "-p", "no:cacheprovider"]))
