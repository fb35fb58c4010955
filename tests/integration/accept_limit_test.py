"""A server out of file descriptors does not spin: hio-repository started with `prlimit --nofile=64`,
flooded with 150 idle connections (accept then fails with EMFILE), uses little CPU while the flood lasts,
and serves again once the connections close."""
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

import pytest

sys.path.insert(0, os.path.dirname(__file__))
from cluster import BIN, SECRET, wait_for  # noqa: E402


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def test_out_of_descriptors_the_accept_loop_pauses_and_recovers():
    d = tempfile.mkdtemp(prefix="hio-fd-")
    port_file = os.path.join(d, "port")
    log = open(os.path.join(d, "log"), "wb")
    p = subprocess.Popen(["prlimit", "--nofile=64", os.path.join(BIN, "hio-repository"), "--data-dir",
                          os.path.join(d, "repo"), "--port", "0", "--port-file", port_file],
                         stdout=log, stderr=subprocess.STDOUT, env=dict(os.environ, HIO_SECRET=SECRET))
    flood = []
    try:
        wait_for(lambda: os.path.exists(port_file) and open(port_file).read().strip(), 20, "the repository's port")
        port = int(open(port_file).read())
        url = f"http://127.0.0.1:{port}/healthz"
        assert urllib.request.urlopen(url, timeout=5).status == 200
        for _ in range(150):
            s = socket.create_connection(("127.0.0.1", port), timeout=5)
            flood.append(s)
        time.sleep(0.5)
        before = cpu_seconds(p.pid)
        time.sleep(2)
        used = cpu_seconds(p.pid) - before
        assert p.poll() is None, "the repository died"
        assert used < 0.5, f"{used:.2f} s of CPU in 2 s while out of descriptors: the accept loop spins"
        for s in flood:
            s.close()
        flood = []
        wait_for(lambda: urllib.request.urlopen(url, timeout=5).status == 200, 30, "the repository to serve again")
        print(f"  {used:.2f} s of CPU in 2 s with 150 connections against 64 descriptors")
    finally:
        for s in flood:
            s.close()
        p.terminate()
        p.wait(timeout=30)


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-q", "-p", "no:cacheprovider"]))
