#!/usr/bin/env python3
"""Worker control traffic is not starved by public requests. The master's REST threads answer the
dashboard's reads by asking the repository; here that repository accepts connections and never answers,
so each read holds a REST thread for the reader's 2 s timeout. Four clients keep reading while the workers
heartbeat with --worker-timeout-ms 1500: their heartbeats go to the master's control port, served on a
thread of its own, so no worker is removed, and a source's stream is stored exactly once."""
import os
import socket
import sys
import tempfile
import threading
import time

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cluster import Cluster, check_exactly_once, get_json, hio_stream, http, random_files  # noqa: E402


class SilentServer:
    """Accepts connections on a free loopback port and never answers."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port, self.held, self.stop = self.sock.getsockname()[1], [], False
        threading.Thread(target=self.accept, daemon=True).start()

    def accept(self):
        while not self.stop:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.held.append(conn)

    def close(self):
        self.stop = True
        self.sock.close()
        for c in self.held:
            c.close()


def test_heartbeats_go_on_while_every_rest_thread_waits_for_the_repository():
    silent = SilentServer()
    c = Cluster(workers=2, channels=1, processor="noop",
                master_args=["--repository", f"http://127.0.0.1:{silent.port}", "--worker-timeout-ms", "1500"])
    stop, reads = threading.Event(), [0]
    try:
        status = c.status()
        assert status["control_port"] not in (0, c.master_port), status.get("control_port")

        def read():
            while not stop.is_set():
                http("GET", c.master_url + "/v1/tuples/1", timeout=30)
                reads[0] += 1

        readers = [threading.Thread(target=read) for _ in range(4)]
        t0 = time.time()
        for t in readers:
            t.start()
        time.sleep(4)  # past the worker timeout, with the REST threads held for the first 2 s of it
        with tempfile.TemporaryDirectory() as tmp:
            files = random_files(tmp, 20, 1024, 16 << 10, seed=4)
            out = hio_stream(c.master_url, sorted(files), "honest")
            assert out.returncode == 0, out.stdout + out.stderr
            stop.set()
            for t in readers:
                t.join()
            c.wait_drained()
            problems = check_exactly_once(c.records(), files)
            assert not problems, "\n".join(problems[:20])
        seconds = time.time() - t0
        with open(c.master.log_path, errors="replace") as f:
            log = f.read()
        assert "missed its heartbeats" not in log, log[-2000:]
        assert len(get_json(c.master_url + "/v1/status")["workers"]) == 2
        for w in c.workers:
            with open(w.log_path, errors="replace") as f:
                assert "heartbeats go to the master's control port" in f.read(), w.name
        print(f"  {reads[0]} reads held the REST threads; 2 workers kept over {seconds:.1f} s")
    finally:
        stop.set()
        c.close()
        silent.close()


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-q", "-p", "no:cacheprovider"]))
