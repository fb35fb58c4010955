#!/usr/bin/env python3
"""Dashboard and CLI output against a hostile master and repository.

The dashboard: every text and number it shows comes from a
fake server (Python's http.server, on a free loopback port) as HTML that would run script if it were
inserted raw (`<img src=x onerror=...>`, attribute breakouts, strings where numbers belong), in decisions,
failures, knowledge and cluster cards. Debian's Chromium, headless, renders the page; the DOM must hold no
element or attribute the payloads would make, and show them as text. Serves dashboard/ of the source tree
($HIO_DASHBOARD_DIR to try another copy); skips only when chromium is missing.
`hio features --format csv`: records whose text and numbers hold commas, quotes and line breaks come out
as RFC 4180 fields that Python's csv module reads back to the same values."""
import csv
import html.parser
import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

BIN = os.environ.get("HIO_BIN", "build/bin")
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
SOURCE = os.environ.get("HIO_SOURCE") or os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
DASHBOARD = os.environ.get("HIO_DASHBOARD_DIR") or os.path.join(SOURCE, "dashboard")

# Each payload names itself, so a failure says which field was inserted raw.
def payload(name):
    return f'{name}"\'><img src=x data-hostile="{name}" onerror="document.title=\'pwned {name}\'">'


def documents():
    status = {
        "version": payload("version"), "uptime_s": 12, "workers": [{"id": payload("worker"), "draining": False}],
        "channels": {"free": 1, "total": 2, "busy": 1, "credits": 3},
        "queue": {"length": 0, "bytes": 0}, "rates": {"tuples_per_s": 1.5, "bytes_per_s": 100},
        "counters": {"processed": 3, "bytes": 10, "failed": 1, "channel_restarts": 0, "queued": 0},
        "scaling": {"enabled": True, "phase": payload("status-phase"), "reason": payload("status-reason"),
                    "min_workers": 1, "max_workers": 2},
    }
    history = {"now_ms": 1700000000000, "samples": [], "decisions": [
        {"at_ms": payload("decision-at"), "phase": payload("decision-phase"), "action": "scale_out",
         "workers": payload("decision-workers"), "reason": payload("decision-reason"),
         "result": payload("decision-result")}]}
    failures = {"counts": {"stored": 2, "records": 3, "failed": 1}, "recent": [
        {"processed_at_ms": 1700000000000, "id": payload("failure-id"), "source": payload("failure-source"),
         "worker": payload("failure-worker"), "channel": payload("failure-channel"),
         "error": payload("failure-error")}]}
    knowledge = {
        "version": payload("knowledge-version"), "method": payload("method"), "points": payload("points"),
        "groups": payload("groups"), "columns": payload("columns"), "created_at_ms": 1700000000000,
        "linkage": [], "point_labels": [], "projection": [],
        "cut": {"criterion": payload("criterion"), "by": "criterion", "clusters": 1, "levels": []},
        "clusters": [{"label": payload("cluster-label"), "size": payload("cluster-size"),
                      "groups": payload("cluster-groups"), "representative_tuple": payload("representative"),
                      "params_ranges": {payload("range-name"): [payload("range-low"), 2]},
                      "params_values": {payload("value-name"): [payload("value")],
                                        payload("lone-name"): payload("lone-value")}}],
    }
    return {
        "/v1/status": (200, status), "/v1/history": (200, history), "/v1/failures": (200, failures),
        "/v1/knowledge": (200, {"versions": [{"version": knowledge["version"]}]}),
        "/v1/knowledge/latest": (200, knowledge),
    }


# As GET /v1/features of a hostile repository: text and numbers with commas, quotes and line breaks.
RECORDS = [
    {"id": 7, "cursor": 1, "source": 'at,"tack"\ner', "size": 4096, "xxh3": "00ff", "status": "stored",
     "features": {"mean,1": 0.5, 'q"uote': "1,2\n3", "nested": {"a": [1, 2]}}},
    {"id": '8,"9"\n', "cursor": 2, "source": "s", "size": "1,000", "xxh3": 'x"', "status": "failed\r\n",
     "features": {"mean,1": -1.25, 'q"uote': 3, "nested": None}},
]


class Handler(BaseHTTPRequestHandler):
    docs = documents()

    def do_GET(self):  # noqa: N802 - http.server's name
        path = self.path.split("?")[0]
        if path == "/" or path.startswith("/dashboard/"):
            name = "index.html" if path == "/" else path[len("/dashboard/"):]
            full = os.path.realpath(os.path.join(DASHBOARD, name))
            if not full.startswith(os.path.realpath(DASHBOARD)) or not os.path.isfile(full):
                return self.answer(404, {"error": "no such file"})
            kind = {"html": "text/html", "js": "text/javascript", "css": "text/css"}.get(full.rsplit(".", 1)[-1],
                                                                                         "text/plain")
            with open(full, "rb") as f:
                return self.answer(200, f.read(), kind)
        if path == "/v1/features":
            after = int(dict(kv.split("=", 1) for kv in self.path.split("?", 1)[1].split("&")).get("after", 0))
            lines = [json.dumps(r) for r in RECORDS if r["cursor"] > after]
            return self.answer(200, "".join(line + "\n" for line in lines).encode(), "application/x-ndjson")
        if path.startswith("/v1/tuples/"):
            return self.answer(404, {"error": payload("tuple-error")})
        status, body = self.docs.get(path, (404, {"error": "no such endpoint"}))
        return self.answer(status, body)

    def answer(self, status, body, kind="application/json"):
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


class Elements(html.parser.HTMLParser):
    """Every element's tag and attributes, the page's title and all its text."""

    def __init__(self):
        super().__init__()
        self.elements, self.text, self.title, self._in_title = [], [], "", False

    def handle_starttag(self, tag, attrs):
        self.elements.append((tag, dict(attrs)))
        self._in_title = tag == "title"

    def handle_endtag(self, tag):
        self._in_title = False

    def handle_data(self, data):
        self.text.append(data)
        if self._in_title:
            self.title += data


def test_client_text_in_the_dashboard_renders_as_text_never_as_html():
    if not CHROMIUM:
        print("SKIP: chromium is not installed (scripts/setup.sh installs it)")
        return
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    tmp = tempfile.mkdtemp(prefix="hio-dashboard-escape-")
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/"
        argv = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                "--disable-component-update", "--no-first-run", "--disable-sync", "--disable-dev-shm-usage",
                f"--user-data-dir={tmp}", "--virtual-time-budget=6000", "--dump-dom", url]
        p = subprocess.run(argv, capture_output=True, text=True, timeout=120)
        assert p.returncode == 0 and "</html>" in p.stdout, p.stderr[-2000:]
        page = Elements()
        page.feed(p.stdout)
        page.close()
        made = sorted({a.get("data-hostile") for t, a in page.elements if "data-hostile" in a or "onerror" in a})
        assert not made, f"fields inserted as HTML: {made}"
        assert not any(t == "img" for t, _ in page.elements), "an <img> element was made from a payload"
        assert "pwned" not in page.title, page.title
        text = "".join(page.text)
        # The page did render the hostile documents, as text: these fields must be on it.
        shown = ["decision-reason", "decision-workers", "decision-phase", "failure-id", "failure-error",
                 "failure-channel", "knowledge-version", "method", "cluster-label", "representative",
                 "value-name", "lone-value", "criterion", "tuple-error", "status-reason"]
        missing = [name for name in shown if payload(name) not in text]
        assert not missing, f"not shown as text: {missing}"
        print(f"  {len(shown)} hostile fields shown as text, none made an element")
    finally:
        server.shutdown()
        shutil.rmtree(tmp, ignore_errors=True)


def test_hio_features_csv_quotes_every_field_a_repository_sent():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        out = subprocess.run([os.path.join(BIN, "hio"), "features", "--repository",
                              f"http://127.0.0.1:{server.server_address[1]}", "--format", "csv"],
                             capture_output=True, timeout=60)  # bytes: text mode would turn \r\n into \n
        assert out.returncode == 0, out.stderr
        rows = list(csv.reader(io.StringIO(out.stdout.decode(), newline="")))
        # Feature columns in the order hio prints them: by name.
        assert rows[0] == ["id", "source", "size", "xxh3", "status", "mean,1", "nested", 'q"uote'], rows[0]
        assert rows[1] == ["7", 'at,"tack"\ner', "4096", "00ff", "stored", "0.5", '{"a":[1,2]}', "1,2\n3"], rows[1]
        assert rows[2] == ['8,"9"\n', "s", "1,000", 'x"', "failed\r\n", "-1.25", "null", "3"], rows[2]
        assert len(rows) == 3, rows
    finally:
        server.shutdown()


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-q", "-p", "no:cacheprovider"]))
