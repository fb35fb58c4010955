#!/usr/bin/env python3
"""hio over UCX against ucx_perftest, and hio over TCP against iperf3, at 6 MB, in one run.

For each UCX_TLS setting (default: "tcp" and "posix,cma"):
  1. ucx_perftest -t tag_bw -s 6291456 on loopback (UCX's own ceiling for that transport),
  2. `hio bench --transport ucx --size 6291456` end to end (noop channels: acknowledged, stored).
Then iperf3 (single stream) and `hio bench --transport tcp` the same way. Prints a table and writes
ucx_results.json beside this script.

Usage: experiments/throughput/ucx.py [--bin build/bin] [--count 300] [--tls tcp --tls posix,cma]
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
sys.path.insert(0, HERE)
from run import iperf3  # noqa: E402


def perftest(tls, size, iters):
    env = dict(os.environ, UCX_TLS=tls)
    server = subprocess.Popen(["ucx_perftest", "-p", "13338"], env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    time.sleep(1)
    try:
        out = subprocess.run(["ucx_perftest", "127.0.0.1", "-p", "13338", "-t", "tag_bw", "-s", str(size), "-n",
                              str(iters)], env=env, check=True, capture_output=True, text=True, timeout=300).stdout
    finally:
        server.wait(timeout=30)
    final = [l for l in out.splitlines() if l.startswith("Final:")][0].split()
    return float(final[6]) * 1e6  # overall bandwidth, MB/s (10^6 bytes) as ucx_perftest prints it


def bench(bin_dir, master, transport, size, count, env):
    out = subprocess.run([os.path.join(bin_dir, "hio"), "bench", "--master", master, "--transport", transport,
                          "--size", str(size), "--count", str(count)], check=True, capture_output=True, text=True,
                         timeout=900, env=env).stdout
    return json.loads(out.strip().splitlines()[-1])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default=os.path.join(ROOT, "build", "bin"))
    ap.add_argument("--count", type=int, default=300)
    ap.add_argument("--tls", action="append")
    args = ap.parse_args()
    os.environ["HIO_BIN"] = os.path.abspath(args.bin)
    import cluster  # after HIO_BIN is set

    size = 6 << 20
    results = {"date": time.strftime("%Y-%m-%d %H:%M"), "size": size, "count": args.count, "ucx": {}}
    for tls in args.tls or ["tcp", "posix,cma"]:
        os.environ["UCX_TLS"] = tls
        row = {"ucx_perftest_bytes_per_s": perftest(tls, size, args.count)}
        c = cluster.Cluster(workers=1, channels=2, processor="noop", worker_args=["--transport", "both"])
        try:
            row["hio"] = bench(args.bin, c.master_url, "ucx", size, args.count, dict(os.environ))
        finally:
            c.close()
        row["ratio"] = row["hio"]["bytes_per_s"] / row["ucx_perftest_bytes_per_s"]
        results["ucx"][tls] = row
    os.environ.pop("UCX_TLS", None)
    results["iperf3_bytes_per_s"] = iperf3(5)
    c = cluster.Cluster(workers=1, channels=2, processor="noop")
    try:
        results["tcp"] = bench(args.bin, c.master_url, "tcp", size, args.count, dict(os.environ))
    finally:
        c.close()
    results["tcp_ratio"] = results["tcp"]["bytes_per_s"] / results["iperf3_bytes_per_s"]

    print(f"{'what':40} {'GB/s':>8} {'share':>7}")
    for tls, row in results["ucx"].items():
        print(f"{'ucx_perftest tag_bw 6 MB, UCX_TLS=' + tls:40} {row['ucx_perftest_bytes_per_s'] / 1e9:8.2f}")
        print(f"{'hio --transport ucx, UCX_TLS=' + tls:40} {row['hio']['bytes_per_s'] / 1e9:8.2f} "
              f"{row['ratio'] * 100:6.0f}%")
    print(f"{'iperf3 single stream':40} {results['iperf3_bytes_per_s'] / 1e9:8.2f}")
    print(f"{'hio --transport tcp':40} {results['tcp']['bytes_per_s'] / 1e9:8.2f} {results['tcp_ratio'] * 100:6.0f}%")
    with open(os.path.join(HERE, "ucx_results.json"), "w") as f:
        json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
