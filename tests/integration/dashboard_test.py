"""The dashboard as a scientist sees it: a real cluster (repository, master with --repository, two workers
with the features processor) takes a simulated Hes1 sweep from hio-sim-source and one tuple that fails;
hio-discovery --once publishes knowledge; Debian's Chromium, headless, loads the master's page, and the
numbers in the rendered DOM are checked against /v1/status, the knowledge document and the repository's
records. Then the repository is stopped and the page must say so while the system panels keep updating.
A screenshot is kept in <build>/artefacts/dashboard.png. Skips (exit 0) only when chromium is missing."""
import html.parser
import json
import os
import shutil
import subprocess
import sys
import tempfile

import pytest

sys.path.insert(0, os.path.dirname(__file__))
from cluster import BIN, SECRET, Cluster, get_json, http, wait_for  # noqa: E402

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
ARTEFACTS = os.path.join(BIN, "..", "artefacts")
POINTS, REALIZATIONS = 6, 2


class Dom(html.parser.HTMLParser):
    """Every element with an id, and the dashboard's cluster cards and failure rows, with their attributes
    and text."""

    def __init__(self):
        super().__init__()
        self.by_id, self.clusters, self.failure_rows = {}, [], []
        self.stack = []  # open elements: [tag, attrs, text parts]

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        node = [tag, a, []]
        if tag in ("br", "img", "meta", "link", "input", "hr"):
            self._record(node)
            return
        self.stack.append(node)

    def handle_endtag(self, tag):
        while self.stack:
            node = self.stack.pop()
            text = "".join(node[2])
            if self.stack:
                self.stack[-1][2].append(text)
            node[2] = [text]
            self._record(node)
            if node[0] == tag:
                break

    def handle_data(self, data):
        if self.stack:
            self.stack[-1][2].append(data)

    def _record(self, node):
        tag, a, parts = node
        entry = {"tag": tag, "attrs": a, "text": " ".join("".join(parts).split())}
        if "id" in a:
            self.by_id[a["id"]] = entry
        if "cluster" in a.get("class", "").split() and "data-label" in a:
            self.clusters.append(entry)
        if tag == "tr" and "data-id" in a:
            self.failure_rows.append(entry)


def chromium(url, out_dir, *extra):
    profile = tempfile.mkdtemp(prefix="hio-chromium-", dir=out_dir)
    argv = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
            "--disable-component-update", "--no-first-run", "--disable-sync", "--disable-dev-shm-usage",
            "--hide-scrollbars", f"--user-data-dir={profile}", "--virtual-time-budget=9000", *extra, url]
    p = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    shutil.rmtree(profile, ignore_errors=True)
    return p


def render(url, out_dir):
    p = chromium(url, out_dir, "--dump-dom")
    assert p.returncode == 0 and "</html>" in p.stdout, p.stderr[-2000:]
    d = Dom()
    d.feed(p.stdout)
    d.close()
    return d, p.stdout


def value(dom, id_):
    assert id_ in dom.by_id, f"no element #{id_} in the rendered page"
    return dom.by_id[id_]["attrs"].get("data-value")


def send_failing_tuple(c, tmp):
    bad = os.path.join(tmp, "not-numpy.bin")
    with open(bad, "wb") as f:
        f.write(b"this is not a NumPy array" * 40)
    p = subprocess.run([os.path.join(BIN, "hio"), "stream", "--master", c.master_url, "--source", "broken", "--quiet",
                        bad], capture_output=True, text=True, timeout=120)
    # hio stream exits non-zero and lists the failure: that is the point here.
    assert p.returncode != 0, p.stdout + p.stderr


def test_dashboard_shows_the_cluster_the_knowledge_and_the_failures():
    if not CHROMIUM:
        print("SKIP: chromium is not installed (scripts/setup.sh installs it)")
        return
    c = Cluster(workers=2, channels=1, processor="features", master_args=["--repository", "{repository}"])
    tmp = tempfile.mkdtemp(prefix="hio-dashboard-")
    try:
        p = subprocess.run([os.path.join(BIN, "hio-sim-source"), "--master", c.master_url, "--source", "hes1",
                            "--points", str(POINTS), "--realizations", str(REALIZATIONS), "--timepoints", "300",
                            "--voxels", "16", "--seed", "7"], capture_output=True, text=True, timeout=300)
        assert p.returncode == 0, p.stdout + p.stderr
        send_failing_tuple(c, tmp)
        total = POINTS * REALIZATIONS + 1
        c.wait_drained()
        wait_for(lambda: get_json(c.repository_url + "/v1/counts")["records"] == total, 60, f"{total} records")
        # A channel's "processed" counts every tuple it finished, the failed ones included.
        wait_for(lambda: c.status()["counters"]["processed"] == total, 10, "the master to count every tuple")
        d = subprocess.run([os.path.join(BIN, "hio-discovery"), "--repository", c.repository_url, "--data-dir",
                            os.path.join(c.dir, "discovery"), "--once"], capture_output=True, text=True,
                           env=dict(os.environ, HIO_SECRET=SECRET), timeout=120)
        assert d.returncode == 0, d.stdout + d.stderr
        doc = get_json(c.repository_url + "/v1/knowledge/latest")
        failed = [r for r in c.records() if r["status"] == "failed"]
        assert len(failed) == 1 and failed[0]["error"], failed

        # The page and its assets come from the master; the vendored library with a long cache.
        status, body = http("GET", c.master_url + "/")
        assert status == 200 and b"/dashboard/app.js" in body
        status, _ = http("GET", c.master_url + "/dashboard/vendor/chart.umd.min.js")
        assert status == 200
        # One sample a second: the newest shows every tuple processed, and a rate was seen on the way.
        history = lambda: get_json(c.master_url + "/v1/history?since=0")["samples"]  # noqa: E731
        wait_for(lambda: history()[-1]["processed"] == total, 10, "a history sample with every tuple")
        samples = history()
        assert samples[-1]["workers"] == 2 and samples[-1]["channels_total"] == 2, samples[-1]
        assert sum(x["tuples_per_s"] for x in samples) > 0, samples
        later = get_json(f"{c.master_url}/v1/history?since={samples[-2]['at_ms']}")["samples"]
        assert later and all(x["at_ms"] > samples[-2]["at_ms"] for x in later), later

        dom, text = render(c.master_url + "/", tmp)
        s = c.status()
        assert value(dom, "stat-workers") == str(len(s["workers"])) == "2"
        assert value(dom, "stat-channels-total") == str(s["channels"]["total"]) == "2"
        assert value(dom, "stat-processed") == str(s["counters"]["processed"]) == str(total)
        assert value(dom, "stat-failed") == str(s["counters"]["failed"]) == "1"
        assert value(dom, "count-processed") == str(s["counters"]["processed"])
        assert value(dom, "count-received") == str(total)
        assert value(dom, "count-stored") == str(POINTS * REALIZATIONS)
        assert dom.by_id["live"]["attrs"].get("data-state") == "ok", dom.by_id.get("live-text")

        # Science preview: the same clusters as the document, with their sizes.
        assert value(dom, "knowledge-version") == str(doc["version"])
        assert value(dom, "knowledge-clusters") == str(len(doc["clusters"]))
        assert value(dom, "knowledge-points") == str(doc["points"]) == str(POINTS * REALIZATIONS)
        shown = {int(e["attrs"]["data-label"]): int(e["attrs"]["data-size"]) for e in dom.clusters}
        assert shown == {cl["label"]: cl["size"] for cl in doc["clusters"]}, (shown, doc["clusters"])
        assert sum(shown.values()) == POINTS * REALIZATIONS
        for cl in doc["clusters"]:
            card = dom.by_id[f"cluster-{cl['label']}"]
            fixed = dom.by_id["fixed-params"]["text"]
            for name in cl["params_ranges"]:
                assert name in card["text"] or f" {name} " in fixed, (name, card["text"], fixed)
            rep = get_json(f"{c.master_url}/v1/tuples/{cl['representative_tuple']}")
            has_series = any(s.get("values") for s in rep.get("series") or [])
            box = dom.by_id[f"series-{cl['label']}"]
            assert box["attrs"].get("data-state") == ("shown" if has_series else "none"), (box, has_series)
            if not has_series:
                assert "no series stored (processor without preview)" in box["text"]
            else:
                assert box["attrs"].get("data-series") == str(len(rep["series"]))

        # The failure with its reason, as the repository recorded it.
        assert [int(r["attrs"]["data-id"]) for r in dom.failure_rows] == [failed[0]["id"]], dom.failure_rows
        assert failed[0]["error"][:40] in dom.failure_rows[0]["text"], (failed[0]["error"], dom.failure_rows)

        # Discovery's cut is named above the charts; ?k= (as the slider) re-cuts the tree in the page,
        # into the same clusters as hio-discovery --k publishes from the same rows.
        assert value(dom, "cut-clusters") == str(doc["cut"]["clusters"]) == str(len(doc["clusters"]))
        assert dom.by_id["cut"]["attrs"].get("data-mine") == "false"
        assert "discovery's cut: " + doc["cut"]["criterion"] in dom.by_id["cut-text"]["text"], dom.by_id["cut-text"]
        for k in (1, 3, POINTS):
            cut_dom, _ = render(f"{c.master_url}/?k={k}", tmp)
            assert value(cut_dom, "cut-clusters") == str(k)
            assert value(cut_dom, "knowledge-clusters") == str(k)
            sizes = {int(e["attrs"]["data-label"]): int(e["attrs"]["data-size"]) for e in cut_dom.clusters}
            assert len(sizes) == k and sum(sizes.values()) == POINTS * REALIZATIONS, sizes
            if k == POINTS:
                assert set(sizes.values()) == {REALIZATIONS}, sizes
            if k == 3:
                recut_sizes = sizes
        d = subprocess.run([os.path.join(BIN, "hio-discovery"), "--repository", c.repository_url, "--data-dir",
                            os.path.join(c.dir, "discovery-k3"), "--once", "--k", "3"], capture_output=True, text=True,
                           env=dict(os.environ, HIO_SECRET=SECRET), timeout=120)
        assert d.returncode == 0, d.stdout + d.stderr
        k3 = get_json(c.repository_url + "/v1/knowledge/latest")
        assert k3["cut"]["by"] == "k" and k3["linkage"] == doc["linkage"], k3["cut"]
        assert recut_sizes == {cl["label"]: cl["size"] for cl in k3["clusters"]}, (recut_sizes, k3["clusters"])

        os.makedirs(ARTEFACTS, exist_ok=True)
        shot = os.path.abspath(os.path.join(ARTEFACTS, "dashboard.png"))
        with open(os.path.join(ARTEFACTS, "dashboard.html"), "w") as f:
            f.write(text)
        p = chromium(c.master_url + "/", tmp, f"--screenshot={shot}", "--window-size=1600,1400")
        assert p.returncode == 0 and os.path.getsize(shot) > 20_000, p.stderr[-2000:]
        print(f"  screenshot: {shot}")

        # Without the repository the page says so plainly; the system panels carry on.
        c.repository.stop()
        dom, _ = render(c.master_url + "/", tmp)
        notice = dom.by_id["science-notice"]
        assert "hidden" not in notice["attrs"] and "unreachable" in notice["text"], notice
        assert "hidden" in dom.by_id["science-body"]["attrs"]
        assert value(dom, "stat-workers") == "2"
        assert dom.by_id["live"]["attrs"].get("data-state") == "ok"
    except AssertionError:
        print(c.logs())
        raise
    finally:
        c.close()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-q", "-p", "no:cacheprovider"]))
