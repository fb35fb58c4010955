"""Many concurrent sources through the direct path and the overflow queue, with default options.

- 4 sources x 40 tuples of 1 KB..1 MB through 2 workers x 1 channel, processing far slower than any
  arrival (sleep:150, about 7 tuples/s per channel) so the channels saturate and the overflow queue is used;
- 8 sources through one worker x 2 channels with `noop`: the channels have room throughout, so the queue
  takes (almost) nothing;
- 8 sources into `sleep:20` channels: what the channels cannot take is queued durably, then stored.
Every tuple stored exactly once with the XXH3 that was sent."""
import os
import subprocess
import sys
import tempfile

import pytest

sys.path.insert(0, os.path.dirname(__file__))
from cluster import BIN, Cluster, check_exactly_once, get_json, random_files, wait_for  # noqa: E402


def stream_concurrently(c, groups, prefix):
    procs = [subprocess.Popen([os.path.join(BIN, "hio"), "stream", "--master", c.master_url, "--source",
                               f"{prefix}-{s}", "--quiet", *sorted(g)], stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True) for s, g in enumerate(groups)]
    outs = [p.communicate(timeout=900)[0] for p in procs]
    for p, out in zip(procs, outs):
        assert p.returncode == 0, f"hio stream failed:\n{out}\n{c.logs()}"


def check_all_stored_once(c, groups):
    c.wait_drained()
    expected = {k: v for g in groups for k, v in g.items()}
    records = c.records()
    problems = check_exactly_once(records, expected)
    assert not problems, "\n".join(problems[:20])
    assert len(records) == len(expected), f"{len(records)} records for {len(expected)} tuples"
    counts = get_json(c.repository_url + "/v1/counts")
    assert counts["duplicates"] == 0, f"tuples were processed twice without any fault: {counts}"
    return c.status()


def test_four_sources_through_two_workers_with_the_queue_in_use():
    # Arrival must outpace processing on any machine: a loaded CI host still moves 1 MB tuples far faster
    # than 7 per second, so the channels report saturated and the sources' next sessions are queued.
    c = Cluster(workers=2, channels=1, processor="sleep:150")
    try:
        with tempfile.TemporaryDirectory() as tmp:
            groups = [random_files(os.path.join(tmp, f"s{s}"), 40, 1024, 1 << 20, seed=s) for s in range(4)]
            stream_concurrently(c, groups, "source")
            status = check_all_stored_once(c, groups)
            assert status["counters"]["queued"] > 0, f"the overflow queue was never used: {status['counters']}"
            assert status["queue"]["length"] == 0, status["queue"]
            sources = {r["source"] for r in c.records()}
            assert sources == {f"source-{s}" for s in range(4)}, sources
            print(f"  queued {status['counters']['queued']} of 160 tuples; "
                  f"{status['counters']['channel_leases']} channel leases, "
                  f"{status['counters']['queue_leases']} queue leases")
    finally:
        c.close()


def test_eight_sources_stream_straight_to_channels_with_room():
    c = Cluster(workers=1, channels=2, processor="noop")
    try:
        with tempfile.TemporaryDirectory() as tmp:
            groups = [random_files(os.path.join(tmp, f"s{s}"), 60, 1024, 2 << 20, seed=100 + s) for s in range(8)]
            stream_concurrently(c, groups, "direct")
            status = check_all_stored_once(c, groups)
            queued, total = status["counters"]["queued"], 8 * 60
            # Every session has ended: each credit is back (the last "free" messages may lag a moment).
            wait_for(lambda: c.status()["channels"]["credits"] == 32, 10, "every channel credit to be free")
            # 2 channels x 16 sessions: room for every source at once.
            assert queued <= total * 0.02, f"{queued} of {total} tuples went through the queue: {status['counters']}"
            print(f"  queued {queued} of {total}; {status['counters']['channel_leases']} channel leases, "
                  f"{status['counters']['queue_leases']} queue leases")
    finally:
        c.close()


def test_eight_sources_into_slow_channels_queue_the_excess_and_store_it_all():
    c = Cluster(workers=1, channels=2, processor="sleep:20")
    try:
        with tempfile.TemporaryDirectory() as tmp:
            # More than the socket buffers hold: sources stay blocked on the channels until their sessions
            # pass session_max, and their next leases find the channels saturated.
            groups = [random_files(os.path.join(tmp, f"s{s}"), 100, 16 << 10, 256 << 10, seed=200 + s)
                      for s in range(8)]
            stream_concurrently(c, groups, "slow")
            status = check_all_stored_once(c, groups)
            counters = status["counters"]
            assert counters["queued"] > 0, f"the channels took everything at 20 ms a tuple: {counters}"
            assert counters["channel_leases"] > 0, counters
            assert status["queue"]["dispatched_total"] == counters["queued"], status["queue"]
            print(f"  queued {counters['queued']} of {8 * 100}; {counters['channel_leases']} channel leases, "
                  f"{counters['queue_leases']} queue leases")
    finally:
        c.close()


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-q", "-p", "no:cacheprovider"]))
