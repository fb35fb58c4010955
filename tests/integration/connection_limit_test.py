#!/usr/bin/env python3
"""Connection limits per peer: one address (127.0.0.2) keeps 300 idle connections open to the master's REST
port, a worker channel's data port and the repository, topping them up as the servers close them, while
an honest source on 127.0.0.1 streams. With the default limit of 256 per address, the excess is closed at
once, counted in the master's /v1/status (its own ports, and the channel's as its worker reports them),
the repository's /v1/counts and both /metrics, logged at most
10 lines a second per port with a "suppressed" summary, and the honest tuples are all stored exactly
once."""
import os
import re
import select
import socket
import sys
import tempfile
import threading
import time

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cluster import Cluster, check_exactly_once, get_json, hio_stream, http, random_files, wait_for  # noqa: E402

FLOOD, PER_PEER = 300, 256
ATTACKER = "127.0.0.2"  # any 127/8 address reaches loopback on Linux


def connect_from(address, port):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind((address, 0))
    s.settimeout(5)
    s.connect(("127.0.0.1", port))
    return s


def closed_by_server(socks, wait=1.0):
    """The sockets the server has closed (readable: EOF or reset) within `wait` seconds."""
    deadline, closed = time.time() + wait, set()
    while time.time() < deadline:
        readable, _, _ = select.select([s for s in socks if s not in closed], [], [], 0.1)
        closed.update(readable)
    return closed


class Flood:
    """Holds FLOOD connections from ATTACKER to each port, replacing those the servers close."""

    def __init__(self, ports):
        self.ports, self.socks = ports, {p: [] for p in ports}
        self.stop, self.refused_at_once = threading.Event(), {}
        for p in ports:
            self.socks[p] = [connect_from(ATTACKER, p) for _ in range(FLOOD)]
            self.refused_at_once[p] = len(closed_by_server(self.socks[p]))
        self.thread = threading.Thread(target=self.top_up)
        self.thread.start()

    def top_up(self):
        while not self.stop.is_set():
            for p in self.ports:
                gone = closed_by_server(self.socks[p], 0.2)
                for s in gone:
                    s.close()
                self.socks[p] = [s for s in self.socks[p] if s not in gone]
                while len(self.socks[p]) < FLOOD:
                    self.socks[p].append(connect_from(ATTACKER, p))

    def close(self):
        self.stop.set()
        self.thread.join()
        for socks in self.socks.values():
            for s in socks:
                s.close()


def test_a_flood_from_one_address_is_capped_and_honest_sources_are_served():
    c = Cluster(workers=1, channels=2, processor="noop")
    flood = None
    try:
        channel_port = c.status()["workers"][0]["channels"][0]["port"]
        repository_port = int(c.repository_url.rsplit(":", 1)[1])
        t0 = time.time()
        flood = Flood([c.master_port, channel_port, repository_port])
        for port, n in flood.refused_at_once.items():
            assert n == FLOOD - PER_PEER, (port, n, flood.refused_at_once)
        with tempfile.TemporaryDirectory() as tmp:
            files = random_files(tmp, 40, 1024, 64 << 10, seed=3)
            out = hio_stream(c.master_url, sorted(files), "honest")
            assert out.returncode == 0, out.stdout + out.stderr
            counters = c.status()["counters"]
            repository = get_json(c.repository_url + "/v1/counts")
            flood.close()
            flood = None
            seconds = time.time() - t0
            c.wait_drained()
            problems = check_exactly_once(c.records(), files)
            assert not problems, "\n".join(problems[:20])
        # Counted by the master (its REST port; the channel's refusals are the worker's).
        assert counters["refused_connections"] >= FLOOD - PER_PEER, counters
        _, metrics = http("GET", c.master_url + "/metrics")
        total = int(re.search(rb"hio_refused_connections_total (\d+)", metrics).group(1))
        assert total >= counters["refused_connections"], metrics[-400:]
        assert repository["refused_connections"] >= FLOOD - PER_PEER, repository
        # The channel's refusals reach the master with the worker's heartbeats.
        wait_for(lambda: c.status()["counters"]["channel_refused_connections"] >= FLOOD - PER_PEER, 10,
                 "the worker to report its channel's refusals")
        channel = c.status()["workers"][0]["channels"][0]
        assert channel["refused_connections"] >= FLOOD - PER_PEER, channel
        _, metrics = http("GET", c.repository_url + "/metrics")
        assert re.search(rb"hio_repository_refused_connections_total [1-9]", metrics), metrics[-400:]
        # Logged, but at most 10 lines a second per port, and the rest summed up.
        for proc in (c.master, c.workers[0], c.repository):
            with open(proc.log_path, errors="replace") as f:
                lines = [l for l in f if "closed a connection from 127.0.0.2" in l]
            assert lines, f"{proc.name} did not log its refusals"
            assert len(lines) <= 10 * (int(seconds) + 2), (proc.name, len(lines), seconds)
            assert any("similar lines suppressed" in l for l in lines), lines[-3:]
        print(f"  {FLOOD - PER_PEER} of {FLOOD} connections closed at once on each port; "
              f"{counters['refused_connections']} refused by the master's REST port over {seconds:.1f} s")
    finally:
        if flood:
            flood.close()
        c.close()


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-q", "-p", "no:cacheprovider"]))
