"""`hio up` as a user runs it: a cluster of real processes, `hio stream`, the Python connector sending a
NumPy array, `hio status` and `hio features --format jsonl` reading it, a killed worker restarted, and a
clean stop on SIGTERM."""
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time

import pytest

sys.path.insert(0, os.path.dirname(__file__))
from cluster import BIN, random_files, wait_for  # noqa: E402

SOURCE = os.environ.get("HIO_SOURCE", os.path.join(os.path.dirname(__file__), "..", ".."))


def free_port_pair():
    """A port p such that p and p + 1 are free (the master takes p, the repository p + 1)."""
    for _ in range(50):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            p = s.getsockname()[1]
        try:
            with socket.socket() as s2:
                s2.bind(("127.0.0.1", p + 1))
            return p
        except OSError:
            continue
    raise RuntimeError("no free port pair")


def hio(data, *args, **kw):
    return subprocess.run([os.path.join(BIN, "hio"), "--data-dir", data, *args], capture_output=True, text=True,
                          timeout=300, **kw)


def read_banner(up):
    """What `hio up` prints until it says the cluster is up (it fails the test if hio up exits first)."""
    banner = ""
    while "Stop with Ctrl-C" not in banner:
        line = up.stdout.readline()
        assert line, f"hio up exited early:\n{banner}"
        banner += line
    return banner


def children_of(pid):
    out = subprocess.run(["ps", "-o", "pid=,stat=", "--ppid", str(pid)], capture_output=True, text=True).stdout
    return [int(l.split()[0]) for l in out.splitlines() if l.strip() and not l.split()[1].startswith("Z")]


def test_hio_up_runs_streams_reports_restarts_and_stops_cleanly():
    tmp = tempfile.mkdtemp(prefix="hio-up-")
    data = os.path.join(tmp, "cluster")
    port = free_port_pair()
    up = subprocess.Popen([os.path.join(BIN, "hio"), "--data-dir", data, "up", "--workers", "2", "--channels", "1",
                           "--port", str(port), "--processor", "checksum"], stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True)
    try:
        banner = read_banner(up)
        print("  " + banner.replace("\n", "\n  ").rstrip())
        master = f"http://127.0.0.1:{port}"
        assert master in banner

        files = random_files(os.path.join(tmp, "files"), 20, 1000, 300_000, seed=5)
        s = hio(data, "stream", "--quiet", "--source", "files", *sorted(files))
        assert s.returncode == 0, s.stderr

        # The connector finds hio up's source token in $HIO_DATA_DIR (./hio-data without it).
        env = dict(os.environ, PYTHONPATH=os.path.join(SOURCE, "connector", "python"), HIO_DATA_DIR=data,
                   HIO_CONNECTOR_LIB=os.path.join(os.environ.get("HIO_LIB", os.path.join(BIN, "..", "lib")),
                                                  "libhio_connector.so"))
        py = subprocess.run(["/usr/bin/python3", "-c", f"""
import numpy as np, hio
with hio.Client("{master}", source="numpy-sim") as c:
    r = c.send(np.arange(2 * 50 * 8, dtype=np.float32).reshape(2, 50, 8), metadata={{"params": {{"k": 1.5}}}})
    print(r.status, r.tuple_id)
"""], capture_output=True, text=True, env=env, timeout=120)
        assert py.returncode == 0 and py.stdout.startswith("stored"), py.stdout + py.stderr

        # Counters reach the master with the workers' heartbeats (every 500 ms).
        wait_for(lambda: json.loads(hio(data, "status", "--format", "json").stdout)["counters"]["processed"] == 21,
                 10, "the master to count 21 processed tuples")
        st = hio(data, "status", "--format", "json")
        assert st.returncode == 0, st.stderr
        status = json.loads(st.stdout)
        assert len(status["workers"]) == 2 and status["channels"]["total"] == 2, status
        text = hio(data, "status").stdout
        assert "worker w1" in text and "checksum" in text, text

        fe = hio(data, "features", "--format", "jsonl")
        assert fe.returncode == 0, fe.stderr
        lines = [json.loads(l) for l in fe.stdout.splitlines()]
        assert len(lines) == 21, fe.stdout[:500]
        for l in lines:
            assert {"id", "source", "size", "xxh3", "status", "features"} <= set(l), l
            assert re.fullmatch(r"[0-9a-f]{16}", l["xxh3"]), l["xxh3"]
            assert isinstance(l["features"], dict) and "mean_byte" in l["features"], l
        by_source = {l["source"] for l in lines}
        assert by_source == {"files", "numpy-sim"}, by_source
        npy = next(l for l in lines if l["source"] == "numpy-sim")
        assert npy["metadata"]["params"] == {"k": 1.5}, npy
        sizes = {os.path.getsize(p) for p in files}
        assert {l["size"] for l in lines if l["source"] == "files"} == sizes

        # A worker killed with -9 is started again by `hio up`.
        workers = [p for p in children_of(up.pid)
                   if "hio-worker" in open(f"/proc/{p}/cmdline").read()]
        assert len(workers) == 2, workers
        os.kill(workers[0], signal.SIGKILL)
        wait_for(lambda: len([p for p in children_of(up.pid)
                              if "hio-worker" in open(f"/proc/{p}/cmdline").read()]) == 2
                 and workers[0] not in children_of(up.pid), 20, "the worker to be restarted")
        wait_for(lambda: json.loads(hio(data, "status", "--format", "json").stdout)["channels"]["free"] == 2, 20,
                 "both channels free again")
    finally:
        kids = children_of(up.pid)
        up.send_signal(signal.SIGTERM)
        out = up.communicate(timeout=120)[0]
    assert up.returncode == 0, out
    assert "stopped" in out, out
    time.sleep(0.2)
    alive = [p for p in kids if os.path.exists(f"/proc/{p}") and
             not open(f"/proc/{p}/stat").read().split()[2] == "Z"]
    assert not alive, f"processes left running: {alive}"


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-q", "-p", "no:cacheprovider"]))
