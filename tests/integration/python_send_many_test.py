"""`hio.Client.send_many` from Python against a real cluster: 2000 tuples of 1 B..256 KiB and NumPy arrays in
batches, one worker killed with -9 mid-stream; every tuple is stored exactly once with the XXH3 of what
was sent (computed by Debian's xxhsum from the files the tuples were read from)."""
import os
import subprocess
import sys
import tempfile
import threading
import time

import pytest

sys.path.insert(0, os.path.dirname(__file__))
from cluster import BIN, Cluster, check_exactly_once, get_json, random_files  # noqa: E402

SOURCE = os.environ.get("HIO_SOURCE", os.path.join(os.path.dirname(__file__), "..", ".."))
LIB = os.path.join(os.environ.get("HIO_LIB", os.path.join(BIN, "..", "lib")), "libhio_connector.so")

SENDER = r"""
import json, sys
import numpy as np
import hio
master, listing = sys.argv[1], sys.argv[2]
paths = open(listing).read().split()
items = [open(p, "rb").read() for p in paths]
with hio.Client(master, source="py-batches") as c:
    totals = {"stored": 0, "queued": 0, "failed": 0, "errors": 0}
    for at in range(0, len(items), 250):
        b = c.send_many(items[at:at + 250], metadata=[{"file": p} for p in paths[at:at + 250]])
        for k in totals:
            totals[k] += getattr(b, k)
    arrays = c.send_many([np.full((4, 100, 8), float(k), np.float32) for k in range(10)], metadata={"kind": "array"})
    print(json.dumps({"files": totals, "arrays": arrays.stored + arrays.queued, "errors": arrays.errors}))
"""


def test_send_many_stores_every_tuple_once_through_a_worker_kill():
    c = Cluster(workers=2, channels=1, processor="noop")
    try:
        with tempfile.TemporaryDirectory() as tmp:
            files = random_files(os.path.join(tmp, "t"), 2000, 1, 256 << 10, seed=41)
            listing = os.path.join(tmp, "listing")
            with open(listing, "w") as f:
                f.write("\n".join(sorted(files)))
            env = dict(os.environ, PYTHONPATH=os.path.join(SOURCE, "connector", "python"), HIO_CONNECTOR_LIB=LIB)
            sender = subprocess.Popen(["/usr/bin/python3", "-c", SENDER, c.master_url, listing],
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
            killed_mid_stream = []

            def kill_when_streaming():
                # Once some tuples are stored and the sender is still at it: kill one of the two workers.
                deadline = time.time() + 60
                while time.time() < deadline and sender.poll() is None:
                    # The repository's count is current (the master's comes with heartbeats, 500 ms late).
                    if get_json(c.repository_url + "/v1/counts")["stored"] >= 100:
                        c.workers[0].kill9()
                        killed_mid_stream.append(sender.poll() is None)
                        return
                    time.sleep(0.01)
            killer = threading.Thread(target=kill_when_streaming)
            killer.start()
            out, err = sender.communicate(timeout=300)
            killer.join()
            assert killed_mid_stream == [True], "the worker was not killed while the batches were streaming"
            assert sender.returncode == 0, err
            import json
            result = json.loads(out.strip().splitlines()[-1])
            assert result["files"]["errors"] == 0 and result["files"]["failed"] == 0, result
            assert result["files"]["stored"] + result["files"]["queued"] == 2000, result
            assert result["arrays"] == 10 and result["errors"] == 0, result
            c.wait_drained()
            records = c.records()
            problems = check_exactly_once(records, files)
            assert not problems, "\n".join(problems[:20])
            arrays = [r for r in records if (r.get("metadata") or {}).get("kind") == "array"]
            assert len(arrays) == 10, len(arrays)
            print(f"  {len(records)} records; {result}")
    finally:
        c.close()


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-q", "-p", "no:cacheprovider"]))
