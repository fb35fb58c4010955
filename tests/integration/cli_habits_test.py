"""The CLI as a user's habits expect it, against a real `hio up`:
- global options after the subcommand (`hio up --data-dir D`, `hio status --data-dir D`);
- `hio features --master URL` reads the repository that master stores into;
- `hio stream --wait stored` returns only when tuples acknowledged QUEUED are stored too;
- a lease body with a wrongly typed field is refused with 400;
- `hio up` killed with -9 takes its repository, master, workers and discovery with it, and frees its ports."""
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

import pytest

sys.path.insert(0, os.path.dirname(__file__))
from cluster import BIN, random_files, wait_for  # noqa: E402
from hio_up_test import children_of, free_port_pair, read_banner  # noqa: E402


def hio(*args):
    return subprocess.run([os.path.join(BIN, "hio"), *args], capture_output=True, text=True, timeout=300)


def alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split()[2] != "Z"
    except FileNotFoundError:
        return False


def port_free(port):
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the servers bind (TIME_WAIT is fine)
        try:
            s.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


def test_cli_habits_on_a_real_cluster():
    tmp = tempfile.mkdtemp(prefix="hio-cli-")
    data = os.path.join(tmp, "cluster")
    port = free_port_pair()
    # --data-dir after the subcommand; one slow channel so that a stream overflows into the queue.
    up = subprocess.Popen([os.path.join(BIN, "hio"), "up", "--data-dir", data, "--workers", "1", "--channels", "1",
                           "--port", str(port), "--processor", "sleep:150"], stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True)
    kids = []
    try:
        read_banner(up)
        master = f"http://127.0.0.1:{port}"
        assert os.path.exists(os.path.join(data, "cluster.json")), "hio up did not use --data-dir after `up`"
        st = hio("status", "--data-dir", data, "--format", "json")
        assert st.returncode == 0, st.stderr
        assert json.loads(st.stdout)["repository"] == f"http://127.0.0.1:{port + 1}", st.stdout

        # hio up made a source token: a lease request without it is refused; with it a number where the
        # source name goes is refused, with the field named.
        with open(os.path.join(data, "source-token")) as f:
            token = f.read().strip()
        assert len(token) >= 32 and os.stat(os.path.join(data, "source-token")).st_mode & 0o077 == 0
        bare = urllib.request.Request(master + "/v1/streams", data=b'{"source": "s"}', method="POST",
                                      headers={"Content-Type": "application/json"})
        try:
            urllib.request.urlopen(bare, timeout=10)
            raise AssertionError("a lease without the source token was granted")
        except urllib.error.HTTPError as e:
            assert e.code == 401, e.code
        req = urllib.request.Request(master + "/v1/streams", data=b'{"source": 12}', method="POST",
                                     headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"})
        try:
            urllib.request.urlopen(req, timeout=10)
            raise AssertionError('{"source": 12} was accepted')
        except urllib.error.HTTPError as e:
            assert e.code == 400, e.code
            why = json.loads(e.read().decode())["error"]
            assert '"source" must be a string' in why, why

        # 40 x 1 MB at 150 ms a tuple: the first session fills the channel, the rest is queued. With
        # --wait stored the stream returns only once every file is stored.
        files = random_files(os.path.join(tmp, "files"), 40, 1 << 20, 1 << 20, seed=11)
        # The token is found in the data dir (--data-dir after the subcommand, as above).
        s = hio("stream", "--master", master, "--data-dir", data, "--source", "waiting", "--wait", "stored",
                *sorted(files))
        assert s.returncode == 0, s.stderr
        counters = json.loads(hio("status", "--master", master, "--format", "json").stdout)["counters"]
        assert counters["queued"] > 0, f"nothing was queued, so --wait stored was not exercised: {counters}"
        assert "queued tuples stored since" in s.stderr, s.stderr
        fe = hio("features", "--master", master, "--format", "jsonl")
        assert fe.returncode == 0, fe.stderr
        stored = [json.loads(l) for l in fe.stdout.splitlines()]
        assert len(stored) == 40 and all(r["status"] == "stored" for r in stored), \
            f"{len(stored)} records right after --wait stored returned"
        assert {r["metadata"]["file"] for r in stored} == set(files)
        same = hio("features", "--repository", f"http://127.0.0.1:{port + 1}", "--format", "jsonl")
        assert same.stdout == fe.stdout
        bad = hio("features", "--master", "http://127.0.0.1:1")
        assert bad.returncode != 0 and "cannot reach the master" in bad.stderr, bad.stderr

        # kill -9 of `hio up`: its children stop on their own.
        kids = children_of(up.pid)
        assert len(kids) >= 3, kids  # repository, master, worker (and discovery)
        up.send_signal(signal.SIGKILL)
        up.wait(timeout=10)
        wait_for(lambda: not any(alive(p) for p in kids), 30, "hio up's children to stop after it was killed")
        wait_for(lambda: port_free(port) and port_free(port + 1), 10, "the master's and repository's ports")
    finally:
        if up.poll() is None:
            up.send_signal(signal.SIGTERM)
            up.communicate(timeout=120)
        for p in kids:
            if alive(p):
                os.kill(p, signal.SIGKILL)


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-q", "-p", "no:cacheprovider"]))
