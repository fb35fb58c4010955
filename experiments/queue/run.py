#!/usr/bin/env python3
"""The overflow queue's own speed: how fast the master drains what it holds into channels.

For each tuple size, in one run on this machine, with every hio option at its default:
  - "queued": `hio bench` against a master with no worker: every tuple goes to the master's queue and
    is acknowledged `queued` once it is durable there (appends and fsyncs batched per queue session);
  - "drained": then one worker with 2 `noop` channels registers and the master's dispatcher sends the
    queue to it; timed from the worker's registration to the last tuple stored in the repository;
  - "direct": the same `hio bench` with the worker present from the start (the channels take every
    tuple; nothing goes through the queue), the rate the drain is compared with.
Each point checks the repository: as many records as tuples, all stored, none twice.
Writes results.json and results.md beside this script (or into --out).

Usage: experiments/queue/run.py [--bin build/bin] [--out DIR] [--quick]
"""
import argparse
import json
import os
import platform
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))

KiB, MiB = 1 << 10, 1 << 20
# (size, tuples): about 64-600 MB per point, a few seconds each on this 2-core machine.
POINTS = [(1 * KiB, 60_000), (64 * KiB, 6_000), (6 * MiB, 100)]


def human(size):
    return f"{size // MiB} MiB" if size >= MiB else f"{size // KiB} KiB"


def bench(bin_dir, cluster, size, count):
    return subprocess.Popen([os.path.join(bin_dir, "hio"), "bench", "--master", cluster.master_url,
                             "--size", str(size), "--count", str(count)],
                            env=cluster.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def check_records(cluster, count):
    records = cluster.records()
    ids = [r["id"] for r in records]
    assert len(ids) == count and len(set(ids)) == count, f"{len(ids)} records, {len(set(ids))} distinct, {count} sent"
    assert all(r["status"] == "stored" for r in records)


def point(bin_dir, size, count):
    from cluster import Cluster, get_json, wait_for

    out = {"size": size, "tuples": count}
    # Queued, then drained.
    c = Cluster(workers=0)
    try:
        t0 = time.monotonic()
        b = bench(bin_dir, c, size, count)
        wait_for(lambda: c.status()["queue"]["length"] >= count, 600, "every tuple queued")
        out["queued_s"] = time.monotonic() - t0
        c.add_worker("w1", channels=2)
        c.wait_workers(1)
        t1 = time.monotonic()
        wait_for(lambda: c.status()["queue"]["length"] == 0, 600, "the queue to drain")
        wait_for(lambda: get_json(c.repository_url + "/v1/counts")["records"] >= count, 600, "every tuple stored")
        out["drained_s"] = time.monotonic() - t1
        b.communicate(timeout=120)
        check_records(c, count)
        out["queue"] = c.status()["queue"]
    finally:
        c.close()
    # Direct, for comparison.
    c = Cluster(workers=1, channels=2)
    try:
        t0 = time.monotonic()
        b = bench(bin_dir, c, size, count)
        b.communicate(timeout=600)
        out["direct_s"] = time.monotonic() - t0
        check_records(c, count)
        out["direct_via_queue"] = c.status()["queue"]["enqueued_total"]
    finally:
        c.close()
    for k in ("queued", "drained", "direct"):
        out[f"{k}_tuples_per_s"] = count / out[f"{k}_s"]
        out[f"{k}_mb_per_s"] = count * size / out[f"{k}_s"] / 1e6
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bin", default=os.path.join(ROOT, "build", "bin"))
    ap.add_argument("--out", default=HERE)
    ap.add_argument("--quick", action="store_true", help="a tenth of the tuples")
    a = ap.parse_args()
    os.environ["HIO_BIN"] = os.path.abspath(a.bin)
    results = []
    for size, count in POINTS:
        n = max(10, count // 10) if a.quick else count
        r = point(os.path.abspath(a.bin), size, n)
        results.append(r)
        print(f"{human(size):>7} x {n}: queued {r['queued_tuples_per_s']:,.0f}/s, drained {r['drained_tuples_per_s']:,.0f}/s"
              f" ({r['drained_mb_per_s']:,.0f} MB/s), direct {r['direct_tuples_per_s']:,.0f}/s", flush=True)
    os.makedirs(a.out, exist_ok=True)
    with open(os.path.join(a.out, "results.json"), "w") as f:
        json.dump({"machine": platform.node(), "cpus": os.cpu_count(), "points": results}, f, indent=1)
    with open(os.path.join(a.out, "results.md"), "w") as f:
        f.write("| size | tuples | queued (tuples/s) | drained (tuples/s) | drained (MB/s) | direct (tuples/s) | drained / direct |\n")
        f.write("|---|---:|---:|---:|---:|---:|---:|\n")
        for r in results:
            f.write(f"| {human(r['size'])} | {r['tuples']:,} | {r['queued_tuples_per_s']:,.0f} | {r['drained_tuples_per_s']:,.0f}"
                    f" | {r['drained_mb_per_s']:,.0f} | {r['direct_tuples_per_s']:,.0f}"
                    f" | {r['drained_tuples_per_s'] / r['direct_tuples_per_s']:.2f} |\n")


if __name__ == "__main__":
    main()
