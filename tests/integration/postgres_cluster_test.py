"""A cluster whose two repository processes share one PostgreSQL database (a real server on loopback,
tests/integration/postgres.py): each worker drains to its own repository while two sources stream, and
mid-stream one repository is killed with -9 and restarted, then PostgreSQL itself is killed with -9 and
restarted. Every tuple is still stored exactly once, and an incremental reader that followed the
cursors of the other repository throughout saw every record once, in cursor order, none skipped.
Skips (prints SKIP, exits 0) only when the PostgreSQL server binaries are missing."""
import json
import os
import subprocess
import sys
import tempfile
import threading
import time

import pytest

sys.path.insert(0, os.path.dirname(__file__))
from cluster import BIN, Cluster, check_exactly_once, http, random_files, wait_for  # noqa: E402
from postgres import Postgres, find_binaries  # noqa: E402


class IncrementalReader(threading.Thread):
    """Follows /v1/features?after=<cursor> of one repository as discovery does, until stopped."""

    def __init__(self, url):
        super().__init__(daemon=True)
        self.url, self.seen, self.errors, self.done = url, [], 0, threading.Event()

    def read_once(self, after):
        status, body = http("GET", f"{self.url}/v1/features?after={after}&limit=25", timeout=10)
        if status != 200:
            self.errors += 1
            return after, 0
        rows = [json.loads(line) for line in body.decode().splitlines() if line.strip()]
        self.seen += rows
        return (rows[-1]["cursor"] if rows else after), len(rows)

    def run(self):
        after = 0
        while not self.done.is_set():
            try:
                after, n = self.read_once(after)
            except OSError:
                self.errors += 1
                n = 0
            if n == 0:
                time.sleep(0.05)
        while True:  # what was committed before stop()
            after, n = self.read_once(after)
            if n == 0:
                return

    def stop(self):
        self.done.set()
        self.join(timeout=60)


def test_repositories_on_postgresql_killed_mid_stream_store_every_tuple_once():
    pg = Postgres.start()
    c = None
    try:
        c = Cluster(workers=1, channels=2, processor="sleep:80", repository_args=["--store", pg.url], wait=False)
        second = c.add_repository("repository-2")
        c.workers.append(c.add_worker("w2", 2, "sleep:80", repository_url=second))
        c.wait_workers(2)
        reader = IncrementalReader(second)
        reader.start()
        with tempfile.TemporaryDirectory() as tmp:
            groups = [random_files(os.path.join(tmp, f"s{s}"), 100, 256 << 10, 2 << 20, seed=40 + s) for s in range(2)]
            procs = [subprocess.Popen([os.path.join(BIN, "hio"), "stream", "--master", c.master_url, "--source",
                                       f"source-{s}", "--quiet", *sorted(g)], stdout=subprocess.PIPE,
                                      stderr=subprocess.STDOUT, text=True) for s, g in enumerate(groups)]
            t0 = time.time()
            wait_for(lambda: len(c.records(second)) >= 30, 120, "30 tuples stored")
            print(f"  30 stored after {time.time() - t0:.1f} s")
            c.restart_repository(kill=True)
            repository_killed_at = len(c.records(second))
            wait_for(lambda: len(c.records(second)) >= repository_killed_at + 30, 120, "30 more tuples stored")
            postgres_killed_at = len(c.records(second))
            print(f"  {postgres_killed_at} stored after {time.time() - t0:.1f} s")
            pg.kill9()
            time.sleep(1)
            pg.restart()
            outs = [p.communicate(timeout=600)[0] for p in procs]
            for p, out in zip(procs, outs):
                assert p.returncode == 0, f"hio stream failed:\n{out}\n{c.logs()}"
            c.wait_drained()
            reader.stop()

            expected = {k: v for g in groups for k, v in g.items()}
            final = c.records()
            problems = check_exactly_once(final, expected)
            assert not problems, "\n".join(problems[:20]) + "\n" + c.logs()
            assert [r["cursor"] for r in c.records(second)] == [r["cursor"] for r in final]
            cursors = [r["cursor"] for r in reader.seen]
            assert cursors == sorted(set(cursors)), "the incremental reader saw a cursor twice or out of order"
            assert cursors == [r["cursor"] for r in final], (
                f"the incremental reader missed {len(set(r['cursor'] for r in final) - set(cursors))} records")
            assert postgres_killed_at < 200, "PostgreSQL was killed after the stream ended; the test proves nothing"
            counts = json.loads(http("GET", f"{second}/v1/counts")[1])
            assert counts["records"] == 200, counts
            print(f"  repository killed after {repository_killed_at}, PostgreSQL after {postgres_killed_at} of 200 "
                  f"tuples; the reader followed {len(cursors)} cursors ({reader.errors} failed reads while down)")
    except Exception:
        if c is not None:
            print(c.logs())
        print("--- postgres\n" + pg.log_tail())
        raise
    finally:
        if c is not None:
            c.close()
        pg.stop()


if __name__ == "__main__":
    if find_binaries() is None:
        print("SKIP postgres_cluster_test: no PostgreSQL server binaries in /usr/lib/postgresql/*/bin "
              "(scripts/setup.sh installs postgresql)")
        sys.exit(0)
    sys.exit(pytest.main([__file__, "-q", "-p", "no:cacheprovider"]))
