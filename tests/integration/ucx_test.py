"""The UCX transport end to end (no RDMA here): UCX over TCP sockets and over shared memory, every tuple
stored exactly once with matching XXH3, a worker killed mid-stream, and the clear errors when UCX is
required but missing."""
import json
import os
import subprocess
import sys
import tempfile

import pytest

sys.path.insert(0, os.path.dirname(__file__))
from cluster import BIN, SECRET, Cluster, check_exactly_once, http, random_files, wait_for  # noqa: E402


def ucx_built():
    """Whether this build has UCX (hio-worker --help says)."""
    r = subprocess.run([os.path.join(BIN, "hio-worker"), "--help"], capture_output=True, text=True)
    assert "this build has" in r.stdout, r.stdout
    return "this build has UCX" in r.stdout


def with_ucx_tls(tls):
    os.environ["UCX_TLS"] = tls
    # A peer killed without closing its endpoint is noticed within a second or two (the default is 60 s).
    os.environ.setdefault("UCX_KEEPALIVE_INTERVAL", "1s")


def stream(master_url, files, source, transport="ucx", timeout=120):
    return subprocess.run([os.path.join(BIN, "hio"), "stream", "--master", master_url, "--source", source,
                           "--transport", transport, "--quiet", *files], capture_output=True, text=True,
                          timeout=timeout)


def channel_lines(c):
    return [ch for w in c.status()["workers"] for ch in w["channels"]]


def exactly_once_over(tls):
    with_ucx_tls(tls)
    c = Cluster(workers=2, channels=2, processor="checksum", worker_args=["--transport", "both"])
    try:
        chans = channel_lines(c)
        assert all(ch["transports"] == ["tcp", "ucx"] and ch["ucx_port"] > 0 for ch in chans), chans
        with tempfile.TemporaryDirectory() as tmp:
            files = random_files(tmp, 120, 1, 1 << 20, seed=7)  # eager and rendezvous sizes
            files.update(random_files(os.path.join(tmp, "big"), 8, 6 << 20, 6 << 20, seed=8))
            r = stream(c.master_url, sorted(files), f"ucx-{tls}")
            assert r.returncode == 0, f"{r.stderr}\n{c.logs()}"
            assert " 0 tcp," in r.stderr and " ucx)" in r.stderr and " 0 ucx)" not in r.stderr, r.stderr
            problems = check_exactly_once(c.records(), files)
            assert not problems, "\n".join(problems[:20])
        s = c.status()
        assert s["counters"]["ucx_leases"] > 0, s["counters"]
        used = [ch["lease_transport"] for ch in channel_lines(c) if ch["lease_id"] > 0]
        assert used and all(t == "ucx" for t in used), used
        # The same cluster still serves TCP sources.
        with tempfile.TemporaryDirectory() as tmp:
            files = random_files(tmp, 10, 1, 100_000, seed=9)
            r = stream(c.master_url, sorted(files), "tcp-source", transport="tcp")
            assert r.returncode == 0 and " 0 ucx)" in r.stderr, r.stderr
            assert not check_exactly_once(c.records(), files)
        print(f"  UCX_TLS={tls}: {s['counters']['ucx_leases']} UCX leases, 128 tuples stored once")
    finally:
        c.close()


def test_ucx_over_tcp_stores_every_tuple_once():
    if not UCX:
        return
    exactly_once_over("tcp")


def test_ucx_over_shared_memory_alone_stores_every_tuple_once():
    # No TCP in UCX_TLS: sources can only reach the channels by the UCP worker address their lease carries
    # (UCX's listener connects through TCP), and the bytes move through shared memory (posix) and
    # cross-memory attach (cma).
    if not UCX:
        return
    exactly_once_over("posix,cma")


def test_ucx_with_shared_memory_and_tcp_stores_every_tuple_once():
    if not UCX:
        return
    exactly_once_over("posix,cma,tcp")


def test_a_ucx_lease_carries_the_channels_worker_address():
    if not UCX:
        return
    with_ucx_tls("tcp")
    c = Cluster(workers=1, channels=1, processor="checksum", worker_args=["--transport", "both"])
    try:
        status, body = http("POST", c.master_url + "/v1/streams", {"source": "probe", "count": 1, "transport": "ucx"})
        assert status == 200, body
        lease = json.loads(body)
        assert lease["transport"] == "ucx" and len(bytes.fromhex(lease["ucx_address"])) > 8, lease
        status, body = http("POST", c.master_url + "/v1/streams", {"source": "probe", "count": 1, "transport": "tcp"})
        assert status == 200 and "ucx_address" not in json.loads(body), body
    finally:
        c.close()


def test_a_worker_killed_mid_ucx_stream_loses_nothing():
    if not UCX:
        return
    with_ucx_tls("tcp")
    # Sessions last at most a second and may move between the two workers: a kill that lands between
    # two sessions cuts none and proves nothing about resending, so such a run is tried again.
    for attempt in range(3):
        if kill_a_worker_mid_ucx_stream(seed=11 + attempt):
            return
        print(f"  attempt {attempt + 1}: the kill cut no session; again")
    assert False, "in 3 attempts the kill never cut a UCX session"


def kill_a_worker_mid_ucx_stream(seed):
    """Exactly-once holds whatever the kill hits; True when the kill cut a session (the connector resent)."""
    c = Cluster(workers=2, channels=2, processor="sleep:20", worker_args=["--transport", "both"])
    try:
        with tempfile.TemporaryDirectory() as tmp:
            files = random_files(tmp, 150, 1024, 1 << 20, seed=seed)
            proc = subprocess.Popen([os.path.join(BIN, "hio"), "stream", "--master", c.master_url, "--source",
                                     "ucx-crash", "--transport", "ucx", "--quiet", *sorted(files)],
                                    stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            wait_for(lambda: len(c.records()) >= 30, 60, "30 tuples stored")
            # The worker whose channel holds the source's current session, so that the kill cuts it.
            leased = [w["id"] for w in c.status()["workers"] if any(ch["sessions"] > 0 for ch in w["channels"])]
            victim = next((p for p in c.workers if leased and p.name == leased[0]), c.workers[0])
            victim.kill9()
            killed_at = len(c.records())
            out = proc.communicate(timeout=120)[0]
            assert proc.returncode == 0, f"hio stream failed:\n{out}\n{c.logs()}"
            c.wait_drained()
            problems = check_exactly_once(c.records(), files)
            assert not problems, "\n".join(problems[:20])
            assert killed_at < 150, "the worker was killed after the stream ended; the test proves nothing"
            print(f"  killed {victim.name} after {killed_at} of 150 tuples; {out.strip().splitlines()[-1]}")
            return "repeated" in out  # the connector resent what the dead worker had not acknowledged
    finally:
        c.close()


def test_requiring_ucx_where_it_is_missing_fails_clearly():
    with_ucx_tls("tcp")
    if not UCX:
        # Compiled out: the worker and the source refuse "ucx" with a message that says why.
        r = subprocess.run([os.path.join(BIN, "hio-worker"), "--master", "http://127.0.0.1:9", "--repository",
                            "http://127.0.0.1:9", "--transport", "ucx", "--secret", SECRET], capture_output=True,
                           text=True, timeout=30)
        assert r.returncode != 0 and "built without" in (r.stdout + r.stderr), r.stdout + r.stderr
        print("  UCX compiled out: worker and source refuse --transport ucx with a clear error")
        return
    # Built with UCX, but the workers offer TCP only: the master refuses a source that requires UCX.
    c = Cluster(workers=1, channels=1, processor="noop", worker_args=["--transport", "tcp"])
    try:
        assert channel_lines(c)[0]["transports"] == ["tcp"]
        with tempfile.TemporaryDirectory() as tmp:
            files = random_files(tmp, 2, 10, 100, seed=3)
            r = stream(c.master_url, sorted(files), "needs-ucx")
            assert r.returncode != 0 and "no worker channel offers the UCX transport" in r.stderr, r.stderr
            r = stream(c.master_url, sorted(files), "auto-source", transport="auto")
            assert r.returncode == 0 and " 0 ucx)" in r.stderr, r.stderr  # auto falls to TCP where UCX is not offered
    finally:
        c.close()
    # A worker that requires UCX where UCX cannot start exits with UCX's reason instead of serving TCP.
    env = dict(os.environ, UCX_TLS="no_such_transport", HIO_SECRET=SECRET)
    r = subprocess.run([os.path.join(BIN, "hio-worker"), "--master", "http://127.0.0.1:9", "--repository",
                        "http://127.0.0.1:9", "--transport", "ucx", "--channels", "1"], capture_output=True,
                       text=True, timeout=30, env=env)
    assert r.returncode != 0 and "UCX" in (r.stdout + r.stderr), r.stdout + r.stderr


UCX = ucx_built()

if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-q", "-p", "no:cacheprovider"]))
