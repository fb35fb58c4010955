#!/usr/bin/env python3
"""The Python connector against the C++ one, in one run, on one cluster (one worker, 2 `noop` channels,
every option at its default):
  - 1 KiB tuples: `hio bench --size 1024` (C++ connector, pipelined) against `hio.Client.send_many` in
    batches, and against the per-tuple `send_async` + `flush()`;
  - 6 MB NumPy arrays (float64, 786,432 values, sent as .npy): `hio bench --size 6291456` against
    `send_many` of arrays.
A tuple counts once it is acknowledged stored; every point checks that the repository got as many new
stored records as tuples were sent. Writes results.json beside this script (or into --out).

Usage: experiments/python/run.py [--bin build/bin] [--count 100000] [--big 600] [--batch 10000]
                                [--big-batch 20] [--out DIR]
"""
import argparse
import json
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
sys.path.insert(0, os.path.join(ROOT, "connector", "python"))


def stored_records(cluster):
    from cluster import get_json
    return get_json(cluster.repository_url + "/v1/counts")["stored"]


def cpp_bench(bin_dir, master, size, count):
    out = subprocess.run([os.path.join(bin_dir, "hio"), "bench", "--master", master, "--size", str(size), "--count",
                          str(count)], check=True, capture_output=True, text=True, timeout=900).stdout
    r = json.loads(out.strip().splitlines()[-1])
    return {"tuples_per_s": r["tuples_per_s"], "bytes_per_s": r["bytes_per_s"], "via_queue": r["via_queue"]}


def timed(fn, count, size):
    start = time.perf_counter()
    fn()
    secs = time.perf_counter() - start
    return {"tuples_per_s": count / secs, "bytes_per_s": count * size / secs, "seconds": secs}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default=os.path.join(ROOT, "build", "bin"))
    ap.add_argument("--count", type=int, default=100000, help="1 KiB tuples per point")
    ap.add_argument("--big", type=int, default=600, help="6 MB arrays per point")
    ap.add_argument("--batch", type=int, default=10000, help="send_many batch of 1 KiB tuples")
    ap.add_argument("--big-batch", type=int, default=20, help="send_many batch of 6 MB arrays")
    ap.add_argument("--out", default=HERE)
    args = ap.parse_args()
    os.environ["HIO_BIN"] = os.path.abspath(args.bin)
    os.environ.setdefault("HIO_CONNECTOR_LIB", os.path.join(os.path.abspath(args.bin), "..", "lib",
                                                            "libhio_connector.so"))
    import numpy as np
    import hio
    from cluster import Cluster

    c = Cluster(workers=1, channels=2, processor="noop")
    results = {"date": time.strftime("%Y-%m-%d %H:%M"), "cluster": "1 worker x 2 noop channels, defaults"}
    try:
        def check(before, n, what):
            got = stored_records(c) - before
            assert got == n, f"{what}: {got} new stored records for {n} tuples"

        small = [os.urandom(1024) for _ in range(args.batch)]
        before = stored_records(c)
        results["cpp_1k"] = cpp_bench(args.bin, c.master_url, 1024, args.count)
        c.wait_drained()
        check(before, args.count, "hio bench 1 KiB")

        def many_small():
            with hio.Client(c.master_url, source="py-many") as cl:
                for _ in range(args.count // args.batch):
                    b = cl.send_many(small)
                    assert b.stored + b.queued == len(small), b
        before = stored_records(c)
        results["python_send_many_1k"] = timed(many_small, args.count // args.batch * args.batch, 1024)
        c.wait_drained()
        check(before, args.count // args.batch * args.batch, "send_many 1 KiB")

        n_async = min(args.count, 20000)

        def async_small():
            with hio.Client(c.master_url, source="py-async") as cl:
                for i in range(n_async):
                    cl.send_async(small[i % len(small)])
                counts = cl.flush()
                assert counts["errors"] == 0, counts
        before = stored_records(c)
        results["python_send_async_1k"] = timed(async_small, n_async, 1024)
        c.wait_drained()
        check(before, n_async, "send_async 1 KiB")

        size = 6291456
        # Warm up first: the worker's receive buffers and the repository fault their pages in on the first
        # big tuples, which would count against whichever side ran first.
        cpp_bench(args.bin, c.master_url, size, 40)
        c.wait_drained()
        before = stored_records(c)
        results["cpp_6m"] = cpp_bench(args.bin, c.master_url, size, args.big)
        c.wait_drained()
        check(before, args.big, "hio bench 6 MB")
        # As many distinct arrays as hio bench cycles through at this size (16): the same cache behaviour.
        arrays = [np.random.default_rng(i).random(size // 8) for i in range(16)]

        def many_big():
            with hio.Client(c.master_url, source="py-arrays") as cl:
                left = args.big
                while left > 0:
                    k = min(args.big_batch, left)
                    b = cl.send_many([arrays[(args.big - left + i) % 16] for i in range(k)])
                    assert b.stored + b.queued == k, b
                    left -= k
        before = stored_records(c)
        results["python_send_many_6m"] = timed(many_big, args.big, size)
        c.wait_drained()
        check(before, args.big, "send_many 6 MB")
    finally:
        c.close()
    results["ratio_1k_send_many"] = results["python_send_many_1k"]["tuples_per_s"] / results["cpp_1k"]["tuples_per_s"]
    results["ratio_1k_send_async"] = results["python_send_async_1k"]["tuples_per_s"] / results["cpp_1k"]["tuples_per_s"]
    results["ratio_6m_send_many"] = results["python_send_many_6m"]["bytes_per_s"] / results["cpp_6m"]["bytes_per_s"]
    print(f"{'what':44} {'tuples/s':>10} {'MB/s':>8} {'x C++':>6}")
    for key, base in [("cpp_1k", None), ("python_send_many_1k", "cpp_1k"), ("python_send_async_1k", "cpp_1k"),
                      ("cpp_6m", None), ("python_send_many_6m", "cpp_6m")]:
        r = results[key]
        ratio = f"{r['bytes_per_s'] / results[base]['bytes_per_s']:6.2f}" if base else ""
        print(f"{key:44} {r['tuples_per_s']:10.0f} {r['bytes_per_s'] / 1e6:8.0f} {ratio}")
    with open(os.path.join(args.out, "results.json"), "w") as f:
        json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
