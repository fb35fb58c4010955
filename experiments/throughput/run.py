#!/usr/bin/env python3
"""Throughput of the hio data path on loopback, against iperf3 measured in the same run.

Starts a real repository, master and worker (noop processing), then measures:
  1. iperf3 single-stream loopback bandwidth (the ceiling),
  2. end-to-end 6 MB tuples (acknowledged, stored) with `hio bench`,
  3. end-to-end 1 KB tuples per second,
  4. master leases per second (wrk, closed loop), and latency at a fixed 5,000 leases/s (`hio bench`,
     open loop: requests paced to the rate, latency measured from the send).
Prints a table and writes results.json beside this script.

Usage: experiments/throughput/run.py [--quick] [--bin build/bin]
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


def iperf3(seconds):
    port = "5299"
    server = subprocess.Popen(["iperf3", "-s", "-1", "-p", port], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(0.5)
    try:
        out = subprocess.run(["iperf3", "-c", "127.0.0.1", "-p", port, "-t", str(seconds), "-J"], check=True,
                             capture_output=True, text=True).stdout
    finally:
        server.wait(timeout=10)
    return json.loads(out)["end"]["sum_received"]["bits_per_second"] / 8


def wrk_leases(master, seconds):
    """Closed-loop lease requests from wrk (2 threads, 8 connections): the master's ceiling."""
    script = os.path.join(HERE, "lease.lua")
    out = subprocess.run(["wrk", "-t", "2", "-c", "8", "-d", f"{seconds}s", "-s", script, "--latency",
                          master + "/v1/streams"], check=True, capture_output=True, text=True).stdout
    rate = float(out.split("Requests/sec:")[1].split()[0])
    p99 = out.split("99%")[1].split()[0]
    return {"leases_per_s": rate, "p99": p99, "raw": out}


def bench(bin_dir, master, *args):
    out = subprocess.run([os.path.join(bin_dir, "hio"), "bench", "--master", master, *args], check=True,
                         capture_output=True, text=True, timeout=900).stdout
    return json.loads(out.strip().splitlines()[-1])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="small counts, for a smoke test")
    ap.add_argument("--bin", default=os.path.join(ROOT, "build", "bin"))
    ap.add_argument("--channels", type=int, default=2)
    args = ap.parse_args()
    os.environ["HIO_BIN"] = os.path.abspath(args.bin)
    import cluster  # after HIO_BIN is set

    big = 20 if args.quick else 1000
    small = 5000 if args.quick else 200000
    leases = 2000 if args.quick else 50000

    results = {"date": time.strftime("%Y-%m-%d"), "host_cores": os.cpu_count()}
    results["iperf3_bytes_per_s"] = iperf3(2 if args.quick else 5)
    c = cluster.Cluster(workers=1, channels=args.channels, processor="noop")
    try:
        results["tuples_6mb"] = bench(args.bin, c.master_url, "--size", str(6 << 20), "--count", str(big))
        results["tuples_1kb"] = bench(args.bin, c.master_url, "--size", "1024", "--count", str(small),
                                      "--session-tuples", "4096")
        results["leases_max"] = wrk_leases(c.master_url, 2 if args.quick else 10)
        results["leases_at_5000"] = bench(args.bin, c.master_url, "--mode", "leases", "--count",
                                          str(leases // 5), "--sources", "4", "--rate", "5000")
    finally:
        c.close()

    ratio = results["tuples_6mb"]["bytes_per_s"] / results["iperf3_bytes_per_s"]
    results["ratio_6mb_to_iperf3"] = ratio
    print(f"iperf3 single stream, loopback      {results['iperf3_bytes_per_s'] / 1e9:8.2f} GB/s")
    print(f"hio 6 MB tuples end to end (noop)   {results['tuples_6mb']['bytes_per_s'] / 1e9:8.2f} GB/s"
          f"  = {100 * ratio:.0f} % of iperf3  ({results['tuples_6mb']['tuples_per_s']:.0f} tuples/s)")
    print(f"hio 1 KB tuples end to end (noop)   {results['tuples_1kb']['tuples_per_s']:8.0f} tuples/s")
    print(f"master leases, wrk 8 connections    {results['leases_max']['leases_per_s']:8.0f} leases/s"
          f"  p99 {results['leases_max']['p99']}")
    print(f"master leases at 5,000/s            p50 {results['leases_at_5000']['p50_ms']:.2f} ms"
          f"  p99 {results['leases_at_5000']['p99_ms']:.2f} ms")
    with open(os.path.join(HERE, "results.json" if not args.quick else "results-quick.json"), "w") as f:
        json.dump(results, f, indent=2)


if __name__ == "__main__":
    main()
