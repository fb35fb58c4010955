"""Out-of-process processors in a real cluster (1 worker x 2 channels): the example C plugin
(plugin:libhio_example_plugin.so) with tuples that make it crash, and the example Python exec processor
(exec:python3 exec_stats.py) with a tuple that makes it hang. Every good tuple is stored with its
features, every bad one is stored as failed with the reason, the worker never dies, and the other channel
keeps going meanwhile. Tuples are sent with the Python connector, in this process."""
import os
import sys
import threading
import time

import pytest

sys.path.insert(0, os.path.dirname(__file__))
from cluster import BIN, Cluster, wait_for  # noqa: E402

SOURCE = os.environ.get("HIO_SOURCE", os.path.join(os.path.dirname(__file__), "..", ".."))
LIB = os.environ.get("HIO_LIB", os.path.join(BIN, "..", "lib"))
PLUGIN = os.path.abspath(os.path.join(LIB, "libhio_example_plugin.so"))
EXEC_STATS = os.path.abspath(os.path.join(SOURCE, "examples", "exec_stats.py"))
os.environ.setdefault("HIO_CONNECTOR_LIB", os.path.join(LIB, "libhio_connector.so"))
sys.path.insert(0, os.path.join(SOURCE, "connector", "python"))
import hio  # noqa: E402

try:
    import numpy
except ImportError:
    numpy = None


def send_all(master_url, source, items, results, started=None):
    """Sends (name, data, metadata) items in order with one client; results[name] = (data, metadata, result,
    seconds it took)."""
    with hio.Client(master_url, source=source) as client:
        for name, data, metadata in items:
            if started is not None:
                started.set()
            t0 = time.time()
            r = client.send(data, metadata=metadata)
            results[name] = (data, metadata, r, time.time() - t0, time.time())


def run_streams(master_url, streams):
    """Runs send_all for each (source, items) in its own thread; returns the merged results."""
    results = {}
    threads = [threading.Thread(target=send_all, args=(master_url, source, items, results)) for source, items in streams]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
        assert not t.is_alive(), "a client did not finish"
    return results


def records_by_id(c, n):
    wait_for(lambda: len(c.records()) >= n, 30, f"{n} records in the repository")
    return {r["id"]: r for r in c.records()}


def check_worker_alive(c):
    w = c.workers[0]
    assert w.alive(), f"the worker died:\n{w.log_tail()}"
    workers = c.status()["workers"]
    assert len(workers) == 1 and len(workers[0]["channels"]) == 2, workers


def test_a_crashing_c_plugin_fails_only_its_tuples_and_both_channels_keep_going():
    c = Cluster(workers=1, channels=2, processor=f"plugin:{PLUGIN}",
                worker_args=["--process-timeout-ms", "2000", "--process-retries", "2"])
    try:
        a = [(f"a{i}", bytes([i, 255 - i]) * (500 + i), {"crash": True} if i % 5 == 2 else {"i": i}) for i in range(20)]
        b = [(f"b{i}", os.urandom(64_000 + i), {"i": i}) for i in range(30)]
        results = run_streams(c.master_url, [("plugin-a", a), ("plugin-b", b)])
        assert len(results) == 50
        records = records_by_id(c, 50)
        crashed = 0
        reason = "processor crashed (signal 11) 3 times"
        for name, (data, metadata, r, _, _) in results.items():
            # "queued": no channel was free, the master's queue took it and a channel processes it later.
            rec = records[r.tuple_id]
            if metadata.get("crash"):
                crashed += 1
                assert r.status in ("failed", "queued"), (name, r)
                assert r.status == "queued" or r.reason == reason, (name, r.reason)
                assert rec["status"] == "failed" and rec["error"] == reason, rec
            else:
                assert r.status in ("stored", "queued"), (name, r, c.logs())
                assert rec["status"] == "stored", rec
                f = rec["features"]
                assert f["bytes"] == len(data), (name, f)
                assert abs(f["mean_byte"] - sum(data) / len(data)) < 1e-9, (name, f)
                assert f["calls"] >= 1
        assert crashed == 4
        check_worker_alive(c)
        assert {rec["channel"] for rec in records.values()} == {0, 1}, "both channels served tuples"
        log = open(c.workers[0].log_path, errors="replace").read()
        assert log.count("crashed (signal 11); restarting it") == 8, "two restarts for each crashing tuple"
    finally:
        c.close()


def test_a_hanging_python_exec_processor_is_killed_while_the_other_channel_keeps_going():
    c = Cluster(workers=1, channels=2, processor=f"exec:/usr/bin/python3 {EXEC_STATS}",
                worker_args=["--process-timeout-ms", "1000", "--process-retries", "2"])
    try:
        good_a = [(f"a{i}", bytes(range(256)) * (i + 1), {"i": i}) for i in range(5)]
        a = good_a[:2] + [("hang", b"zzz", {"hang": True})] + good_a[2:]
        if numpy is not None:
            a.append(("array", numpy.arange(1000, dtype=numpy.float64), {"kind": "array"}))
        b = [(f"b{i}", os.urandom(10_000), {"i": i}) for i in range(40)]

        results = {}
        hang_started = threading.Event()
        ta = threading.Thread(target=send_all, args=(c.master_url, "exec-a", a[:2], results))
        ta.start()
        ta.join(timeout=120)
        # The hanging tuple, and meanwhile the other stream on the other channel.
        th = threading.Thread(target=send_all, args=(c.master_url, "exec-hang", a[2:3], results, hang_started))
        th.start()
        hang_started.wait(timeout=30)
        time.sleep(0.3)
        tb = threading.Thread(target=send_all, args=(c.master_url, "exec-b", b, results))
        tb.start()
        for t in (th, tb):
            t.join(timeout=300)
            assert not t.is_alive(), "a client did not finish"
        send_all(c.master_url, "exec-a", a[3:], results)

        hang = results["hang"][2]
        assert hang.status == "failed", hang
        assert hang.reason == "processor timed out after 1000 ms 3 times", hang.reason
        assert results["hang"][3] >= 3.0, "three attempts of 1 s each"
        last_b_done = max(results[name][4] for name, _, _ in b)
        assert last_b_done < results["hang"][4], "the other channel finished its 40 tuples while one channel hung"

        records = records_by_id(c, len(a) + len(b))
        for name, (data, metadata, r, _, _) in results.items():
            rec = records[r.tuple_id]
            if name == "hang":
                assert rec["status"] == "failed" and rec["error"] == hang.reason, rec
                continue
            assert r.status in ("stored", "queued"), (name, r, c.logs())
            assert rec["status"] == "stored", rec
            f = rec["features"]
            if name == "array":
                assert f["elements"] == 1000 and abs(f["mean"] - 499.5) < 1e-9, f
            else:
                assert f["bytes"] == len(data), (name, f)
                assert abs(f["mean_byte"] - sum(data) / len(data)) < 1e-9, (name, f)
        check_worker_alive(c)
        log = open(c.workers[0].log_path, errors="replace").read()
        assert "timed out after 1000 ms; restarting it" in log
        assert "exec_stats: pid" in log, "the processor's stderr is in the worker's log"
    finally:
        c.close()


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-q", "-p", "no:cacheprovider"]))
