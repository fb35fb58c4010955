"""Table-driven bad input against a running cluster: every case gets a clear error, the servers stay up,
and a concurrent well-behaved stream is unaffected."""
import json
import os
import socket
import struct
import subprocess
import sys
import tempfile
import time

import pytest

sys.path.insert(0, os.path.dirname(__file__))
from cluster import BIN, SECRET, Cluster, check_exactly_once, http, random_files, xxh3_of  # noqa: E402

HEADER = struct.Struct("<IHHQ40sQIHHQ")
MAGIC = 0x464F4948
SOURCE_TOKEN = "source-token-for-tests-0123456789"  # 32+ characters, as the master requires
MAX_TUPLE = 16 << 20
ERRORS = {1: "bad_magic", 2: "bad_version", 3: "bad_frame", 4: "too_large", 5: "bad_token", 6: "checksum",
          7: "busy", 8: "timeout", 9: "internal", 10: "unavailable", 11: "bad_codec"}


def frame(tuple_id=1, token=b"\0" * 40, payload=b"", meta=b"", xxh3=0, magic=MAGIC, version=1, ftype=1,
          payload_length=None, meta_length=None):
    return HEADER.pack(magic, version, ftype, tuple_id, token,
                       len(payload) if payload_length is None else payload_length,
                       len(meta) if meta_length is None else meta_length, 0, 0, xxh3) + meta + payload


def answer(sock, timeout=10):
    """The receiver's first answer as (type, flags, text), or None if it closed without one."""
    sock.settimeout(timeout)
    data = b""
    try:
        while len(data) < HEADER.size:
            chunk = sock.recv(HEADER.size - len(data))
            if not chunk:
                return None
            data += chunk
        magic, version, ftype, tid, _, plen, _, _, flags, _ = HEADER.unpack(data)
        text = b""
        while len(text) < plen:
            chunk = sock.recv(plen - len(text))
            if not chunk:
                break
            text += chunk
        return ftype, flags, text.decode(errors="replace")
    except (socket.timeout, ConnectionResetError):
        return None


def lease(c):
    status, body = http("POST", c.master_url + "/v1/streams", {"count": 1},
                        {"Authorization": f"Bearer {SOURCE_TOKEN}", "Content-Type": "application/json"})
    assert status == 200, body
    return json.loads(body)


def test_bad_input_gets_clear_errors_and_the_cluster_carries_on():
    c = Cluster(workers=1, channels=2, processor="noop",
                master_args=["--source-token", SOURCE_TOKEN, "--max-tuple-bytes", str(MAX_TUPLE)],
                worker_args=["--max-tuple-bytes", str(MAX_TUPLE)])
    try:
        tmp = tempfile.mkdtemp()
        files = random_files(os.path.join(tmp, "good"), 60, 1024, 512 << 10, seed=99)
        env = dict(os.environ, HIO_SOURCE_TOKEN=SOURCE_TOKEN)
        good = subprocess.Popen([os.path.join(BIN, "hio"), "stream", "--master", c.master_url, "--source", "good",
                                 "--quiet", *sorted(files)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                text=True, env=env)
        channel = c.status()["workers"][0]["channels"][0]
        chan_addr = ("127.0.0.1", channel["port"])
        auth = {"Authorization": f"Bearer {SOURCE_TOKEN}", "Content-Type": "application/json"}

        # --- REST ---
        rest_cases = [
            ("malformed JSON", "POST", c.master_url + "/v1/streams", b'{"count": ', auth, 400),
            ("JSON that is not an object", "POST", c.master_url + "/v1/streams", b"[1,2]", auth, 400),
            ("negative count", "POST", c.master_url + "/v1/streams", b'{"count": -3}', auth, 400),
            ("retry of ids never issued", "POST", c.master_url + "/v1/streams",
             b'{"retry": {"first": 999999999, "count": 1}}', auth, 400),
            ("oversize tuple announced", "POST", c.master_url + "/v1/streams",
             json.dumps({"count": 1, "bytes": MAX_TUPLE + 1}).encode(), auth, 413),
            ("unknown path", "GET", c.master_url + "/v1/nothing", None, {}, 404),
            ("wrong method", "GET", c.master_url + "/v1/streams", None, auth, 405),
            ("missing source token", "POST", c.master_url + "/v1/streams", b"{}", {}, 401),
            ("wrong source token", "POST", c.master_url + "/v1/streams", b"{}",
             {"Authorization": "Bearer nope"}, 401),
            ("worker call without the secret", "POST", c.master_url + "/v1/workers", b"{}", {}, 401),
            ("worker registration missing fields", "POST", c.master_url + "/v1/workers", b'{"id": "x"}',
             {"Authorization": f"Bearer {SECRET}"}, 400),
            ("repository records without the secret", "POST", c.repository_url + "/v1/records", b"junk", {}, 401),
            ("repository records that do not decode", "POST", c.repository_url + "/v1/records", b"junk",
             {"Authorization": f"Bearer {SECRET}"}, 400),
            ("repository bad cursor", "GET", c.repository_url + "/v1/features?after=abc", None, {}, 400),
            ("repository unknown tuple", "GET", c.repository_url + "/v1/tuples/123456789", None, {}, 404),
        ]
        for name, method, url, body, headers, expected in rest_cases:
            status, text = http(method, url, body, headers)
            assert status == expected, f"{name}: {status} {text[:200]!r}, expected {expected}"
            assert "error" in json.loads(text), f"{name}: no error message in {text!r}"
            print(f"  REST {name}: {status} {json.loads(text)['error'][:70]}")

        # --- data port ---
        def bad_magic(s):
            s.sendall(frame(magic=0x12345678))
            return 1

        def bad_version(s):
            s.sendall(frame(version=9))
            return 2

        def bad_length(s):
            s.sendall(frame(meta_length=(1 << 20) + 1))
            return 3

        def forged_token(s):
            s.sendall(frame(token=b"\1" * 40, payload=b"x"))
            return 5

        def checksum_mismatch(s):
            l = lease(c)
            with socket.create_connection((l["host"], l["port"])) as t:
                t.sendall(frame(l["first_id"], bytes.fromhex(l["token"]), payload=b"hello", xxh3=12345))
                return answer(t), 6

        def oversize(s):
            l = lease(c)
            with socket.create_connection((l["host"], l["port"])) as t:
                t.sendall(frame(l["first_id"], bytes.fromhex(l["token"]), payload_length=MAX_TUPLE + 1))
                return answer(t), 4

        def id_outside_lease(s):
            l = lease(c)
            with socket.create_connection((l["host"], l["port"])) as t:
                t.sendall(frame(l["first_id"] + 5, bytes.fromhex(l["token"]), payload=b"x"))
                return answer(t), 3

        for case in (bad_magic, bad_version, bad_length, forged_token, checksum_mismatch, oversize, id_outside_lease):
            with socket.create_connection(chan_addr) as s:
                expected = case(s)
                got = expected[0] if isinstance(expected, tuple) else answer(s)
                code = expected[1] if isinstance(expected, tuple) else expected
            assert got is not None, f"{case.__name__}: connection closed without an error frame"
            ftype, flags, text = got
            assert ftype == 3 and flags == code, f"{case.__name__}: got type {ftype} code {flags} ({text})"
            assert text, f"{case.__name__}: empty error message"
            print(f"  data {case.__name__}: {ERRORS[flags]}: {text[:70]}")

        # A truncated payload: the receiver waits for the rest, then gives up; nothing is stored.
        l = lease(c)
        with socket.create_connection((l["host"], l["port"])) as t:
            t.sendall(frame(l["first_id"], bytes.fromhex(l["token"]), payload_length=1000, payload=b"x" * 10))
        # A client that connects and stalls: closed after the first-frame deadline.
        with socket.create_connection(chan_addr) as stall:
            t0 = time.time()
            assert answer(stall, timeout=30) is None
            print(f"  data stalled client: closed after {time.time() - t0:.1f} s")

        out = good.communicate(timeout=300)[0]
        assert good.returncode == 0, f"the concurrent good stream failed:\n{out}\n{c.logs()}"
        c.wait_drained()
        records = c.records()
        problems = check_exactly_once(records, files)
        assert not problems, "\n".join(problems[:10])
        assert len(records) == len(files), f"{len(records)} records; bad input must store nothing"
        for p in c.processes:
            assert p.alive(), f"{p.name} died:\n{p.log_tail()}"
        for url in (c.master_url, c.repository_url):
            assert http("GET", url + "/healthz")[0] == 200
    finally:
        c.close()


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-q", "-p", "no:cacheprovider"]))
