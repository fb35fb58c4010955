#!/usr/bin/env python3
"""Hostile input against a real cluster: JSON nesting bombs in tuple metadata and in REST bodies, retry
leases over another source's tuple ids, and other bytes sent under a tuple id already stored.

Each attack must get a clear answer (a FAILED ack with the reason, or a 400), must not stop the cluster
serving honest sources, and must leave nothing downstream (repository, /v1/failures, /v1/features) that a
reader could choke on.
"""
import csv
import io
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bad_input_test import HEADER, answer, frame  # noqa: E402
from cluster import BIN, Cluster, check_exactly_once, get_json, hio_stream, http, random_files, xxh3_of  # noqa: E402

# 300,000 levels in 600 KB: under the 1 MiB metadata limit, far past what a recursive printer survives.
DEEP = b'{"a":' + b"[" * 300000 + b"]" * 300000 + b"}"


def empty_xxh3():
    with tempfile.NamedTemporaryFile() as f:
        return int(xxh3_of([f.name])[0], 16)


def answers(sock, n):
    got = []
    for _ in range(n):
        a = answer(sock)
        assert a is not None, f"the receiver closed after {got}"
        got.append(a)
    return got


def test_deeply_nested_metadata_fails_its_tuple_and_the_cluster_carries_on():
    c = Cluster(workers=1, channels=2, processor="noop")
    try:
        status, body = http("POST", c.master_url + "/v1/streams", {"source": "attacker", "count": 3})
        assert status == 200, body
        lease = json.loads(body)
        first, token, xxh = lease["first_id"], bytes.fromhex(lease["token"]), empty_xxh3()
        with socket.create_connection((lease["host"], lease["port"])) as s:
            s.sendall(frame(first, token, meta=DEEP, xxh3=xxh))
            s.sendall(frame(first + 1, token, meta=b"[1,2,3]", xxh3=xxh))
            s.sendall(frame(first + 2, token, meta=b'{"source":"at,\\"tack\\"\\ner","honest":true}', xxh3=xxh))
            s.sendall(HEADER.pack(0x464F4948, 1, 4, 0, b"\0" * 40, 0, 0, 0, 0, 0))  # END
            got = answers(s, 4)
        # ACK (type 2) failed (1) with the reason, twice, then stored (0); then END (4).
        assert [(t, f) for t, f, _ in got] == [(2, 1), (2, 1), (2, 0), (4, 0)], got
        assert "deeper than 64 levels" in got[0][2], got[0]
        assert "not a JSON object" in got[1][2], got[1]
        print(f"  refused: {got[0][2]!r}; {got[1][2]!r}")

        # The cluster carries on: an honest stream is stored exactly once.
        with tempfile.TemporaryDirectory() as tmp:
            files = random_files(tmp, 40, 1024, 256 << 10, seed=5)
            out = hio_stream(c.master_url, sorted(files), "honest")
            assert out.returncode == 0, out.stdout + out.stderr
            c.wait_drained()
            problems = check_exactly_once(c.records(), files)
            assert not problems, "\n".join(problems[:20])

        # Nothing of the refused tuples is stored; the honest one of the attacker's is; readers work.
        assert http("GET", f"{c.repository_url}/v1/tuples/{first}")[0] == 404
        assert http("GET", f"{c.repository_url}/v1/tuples/{first + 1}")[0] == 404
        assert get_json(f"{c.repository_url}/v1/tuples/{first + 2}")["metadata"]["honest"] is True
        # A client's text comes out of `hio features --format csv` quoted, as one field.
        out = subprocess.run([os.path.join(BIN, "hio"), "features", "--repository", c.repository_url, "--format",
                              "csv"], capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stderr
        rows = list(csv.reader(io.StringIO(out.stdout)))
        assert any(r[1] == 'at,"tack"\ner' and r[0] == str(first + 2) for r in rows[1:]), rows[:3]
        assert http("GET", c.repository_url + "/v1/counts")[0] == 200
        assert http("GET", c.repository_url + "/v1/features?limit=1000")[0] == 200
        assert get_json(c.master_url + "/v1/status")["workers"], "the worker is gone"
    finally:
        c.close()


def xxh3_bytes(data):
    with tempfile.NamedTemporaryFile() as f:
        f.write(data)
        f.flush()
        return int(xxh3_of([f.name])[0], 16)


def send_one(lease, tuple_id, payload, meta=b"{}"):
    """Sends one tuple and END under `lease`; returns the tuple's answer (type, flags, text)."""
    with socket.create_connection((lease["host"], lease["port"])) as s:
        s.sendall(frame(tuple_id, bytes.fromhex(lease["token"]), payload=payload, meta=meta,
                        xxh3=xxh3_bytes(payload)))
        s.sendall(HEADER.pack(0x464F4948, 1, 4, 0, b"\0" * 40, 0, 0, 0, 0, 0))
        return answer(s)


def retry_body(first, count, issued=None):
    body = {"retry": {"first": first, "count": count}}
    if issued is not None:
        body["retry"]["issued"] = issued
    return body


def issued_of(lease):
    return {"first": lease["first_id"], "count": lease["count"], "key": lease["retry_key"]}


def test_a_retry_lease_over_another_sources_ids_is_refused():
    c = Cluster(workers=1, channels=2, processor="noop")
    try:
        status, body = http("POST", c.master_url + "/v1/streams", {"source": "honest", "count": 4})
        assert status == 200, body
        honest = json.loads(body)
        tid = honest["first_id"]
        assert len(honest["retry_key"]) == 32, honest
        status, body = http("POST", c.master_url + "/v1/streams", {"source": "attacker", "count": 4})
        mine = json.loads(body)
        # Every way a second client can name the honest source's ids is refused with 403 and the reason.
        attempts = [
            retry_body(tid, 1),                                          # no key
            retry_body(tid, 1, issued_of(mine)),                         # its own key, not its ids
            retry_body(tid, 1, dict(issued_of(honest), key=mine["retry_key"])),  # the honest range, own key
            retry_body(tid, 1, dict(issued_of(honest), key="0" * 32)),   # a guessed key
            retry_body(tid, 1, {"first": tid, "count": 1, "key": honest["retry_key"]}),  # a key for 4, not 1
        ]
        for a in attempts:
            status, body = http("POST", c.master_url + "/v1/streams", a)
            assert status == 403, (a, status, body)
            assert "retry" in json.loads(body)["error"], body
        print(f"  refused: {json.loads(body)['error']!r}")
        status, body = http("POST", c.master_url + "/v1/streams", retry_body(tid, 1, {"first": tid, "count": "4",
                                                                                  "key": honest["retry_key"]}))
        assert status == 400 and "retry.issued" in json.loads(body)["error"], (status, body)
        s = get_json(c.master_url + "/v1/status")
        assert s["counters"]["retry_refusals"] == len(attempts), s["counters"]
        _, metrics = http("GET", c.master_url + "/metrics")
        assert f"hio_retry_refusals_total {len(attempts)}".encode() in metrics

        # The honest source's tuple is stored with its own bytes.
        real = send_one(honest, tid, b"the real tuple")
        assert real[:2] == (2, 0), real
        record = get_json(f"{c.repository_url}/v1/tuples/{tid}")
        assert record["xxh3"] == f"{xxh3_bytes(b'the real tuple'):016x}", record
        # Its holder may retry any part of its range, with the key of the whole range or of the retry lease.
        status, body = http("POST", c.master_url + "/v1/streams", retry_body(tid + 1, 2, issued_of(honest)))
        assert status == 200, body
        again = json.loads(body)
        status, body = http("POST", c.master_url + "/v1/streams", retry_body(tid + 2, 1, issued_of(again)))
        assert status == 200, body

        # Other bytes from the holder itself (a buggy source) are a conflict, never stored.
        status, body = http("POST", c.master_url + "/v1/streams", retry_body(tid, 1, issued_of(honest)))
        assert status == 200, body
        other = send_one(json.loads(body), tid, b"junk")
        assert other[:2] == (2, 1) and "conflict" in other[2], other
        counts = get_json(c.repository_url + "/v1/counts")
        assert counts["conflicts"] == 1, counts
        _, metrics = http("GET", c.repository_url + "/metrics")
        assert b"hio_repository_conflicts_total 1" in metrics, metrics[-600:]
        # A resend of the same bytes is a duplicate, acknowledged stored (exactly-once retries).
        status, body = http("POST", c.master_url + "/v1/streams", retry_body(tid, 1, issued_of(honest)))
        assert send_one(json.loads(body), tid, b"the real tuple")[:2] == (2, 0)
        assert get_json(f"{c.repository_url}/v1/tuples/{tid}")["xxh3"] == record["xxh3"]

        # While an honest stream runs, a second client tries retries over every id issued so far: all
        # refused, and the honest tuples are stored exactly once with their own bytes.
        stop, refused, granted = threading.Event(), [0], [0]

        def hijack():
            while not stop.is_set():
                st, b = http("POST", c.master_url + "/v1/streams", {"source": "attacker", "count": 1})
                if st != 200:
                    continue
                own = json.loads(b)
                for first in range(max(1, own["first_id"] - 256), own["first_id"], 16):
                    st, _ = http("POST", c.master_url + "/v1/streams", retry_body(first, 16, issued_of(own)))
                    granted[0] += st == 200
                    refused[0] += st == 403

        t = threading.Thread(target=hijack)
        t.start()
        try:
            with tempfile.TemporaryDirectory() as tmp:
                files = random_files(tmp, 60, 1024, 64 << 10, seed=9)
                out = hio_stream(c.master_url, sorted(files), "honest-stream")
                assert out.returncode == 0, out.stdout + out.stderr
        finally:
            stop.set()
            t.join()
        c.wait_drained()
        problems = check_exactly_once(c.records(), files)
        assert not problems, "\n".join(problems[:20])
        assert granted[0] == 0 and refused[0] > 0, (granted, refused)
        print(f"  {refused[0]} retry leases over other sources' ids refused during an honest stream")
    finally:
        c.close()


def test_a_rest_nesting_bomb_is_refused_at_once_and_workers_stay():
    c = Cluster(workers=1, channels=2, processor="noop")
    try:
        # 48 MiB of "[": past the 16 KiB a lease body may have, refused from its header (413) before a
        # byte of it is read; the server closes, so the sender may see its write fail instead.
        big = b"[" * (48 << 20)
        # 15 KiB of "[": within the limit, refused by the nesting scan before any parse (400).
        deep = b"[" * (15 << 10)
        results = []

        def post(body, want):
            t0 = time.time()
            try:
                status, answer = http("POST", c.master_url + "/v1/streams", body,
                                      {"Content-Type": "application/json"}, timeout=60)
            except (ConnectionError, urllib.error.URLError) as e:  # the server closed while we sent
                status, answer = 413, json.dumps({"error": f"connection closed: {e}"}).encode()
            results.append((want, status, answer, time.time() - t0))

        threads = [threading.Thread(target=post, args=a) for a in ((big, 413), (big, 413), (deep, 400))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        for want, status, body, seconds in results:
            assert status == want, (want, status, body[:200])
            if want == 400:
                assert "deeper than 64" in json.loads(body)["error"], body[:200]
        print(f"  two 48 MiB bodies answered 413, a 15 KiB nesting bomb 400, in {max(r[3] for r in results):.2f} s")
        # Heartbeats went on: the worker is still registered, and leases are still given.
        time.sleep(1.5)
        s = get_json(c.master_url + "/v1/status")
        assert len(s["workers"]) == 1, s["workers"]
        status, body = http("POST", c.master_url + "/v1/streams", {"source": "after", "count": 1})
        assert status == 200, body
    finally:
        c.close()


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-q", "-p", "no:cacheprovider"]))
