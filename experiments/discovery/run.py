#!/usr/bin/python3
"""Times the discovery clustering: exact linkage of 20,000 points per method and the two-stage method on
1,000,000 points (59 features, Gaussian blobs), each phase in its own process so that its peak memory
(ru_maxrss) is its own; besides wall and CPU time (all threads) each phase reports the CPU time of its
calling thread, the critical path when helper threads share the work. With SciPy available (HIO_SCIPY_PATH, or build/scipy-ref), also times
scipy.cluster.hierarchy.linkage and hio on the same smaller input in this run, for a ratio.

Usage: experiments/discovery/run.py [--build DIR] [--quick] [--no-scipy]
Writes results.json next to this script and prints a Markdown table.
"""
import argparse
import json
import os
import pathlib
import subprocess
import sys
import time

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parent.parent
METHODS = ("single", "complete", "average", "ward")

SCIPY_TIMER = r"""
import sys, time, resource
import numpy as np
import scipy, scipy.cluster.hierarchy as h
n, d, method = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
rng = np.random.default_rng(1)
centres = rng.uniform(-10, 10, (10, d))
x = centres[rng.integers(0, 10, n)] + rng.normal(size=(n, d))
t = time.perf_counter(); c = time.process_time()
h.linkage(x, method)
print(time.perf_counter() - t, time.process_time() - c, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
"""


def bench(binary, *args):
    out = subprocess.run([str(binary), *map(str, args)], check=True, capture_output=True, text=True).stdout
    return json.loads(out)


def scipy_path():
    env = os.environ.get("HIO_SCIPY_PATH")
    if env:
        return env
    fallback = ROOT / "build" / "scipy-ref" / "usr" / "lib" / "python3" / "dist-packages"
    return str(fallback) if fallback.exists() else None


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--build", default=str(ROOT / "build"), help="build folder holding bin/hio-discovery-bench")
    parser.add_argument("--quick", action="store_true", help="smaller inputs, for a smoke run")
    parser.add_argument("--no-scipy", action="store_true", help="skip the comparison with SciPy")
    args = parser.parse_args()
    binary = pathlib.Path(args.build) / "bin" / "hio-discovery-bench"
    if not binary.exists():
        sys.exit(f"{binary} not found: build the discovery module first")
    exact_n, big_n, small_n, d = (4000, 100_000, 1000, 59) if args.quick else (20_000, 1_000_000, 5000, 59)

    results = {"date": time.strftime("%Y-%m-%d"), "cpus": os.cpu_count(), "load_before": os.getloadavg()[0],
               "exact": [], "two_stage": [], "scipy_ratio": []}
    for method in METHODS:
        results["exact"].append(bench(binary, "exact", method, exact_n, d))
    for method in ("ward", "average"):
        results["two_stage"].append(bench(binary, "two-stage", method, big_n, d))
    path = None if args.no_scipy else scipy_path()
    if path:
        for method in METHODS:
            ours = bench(binary, "exact", method, small_n, d)
            env = dict(os.environ, PYTHONPATH=path)
            wall, cpu, peak = map(float, subprocess.run(["/usr/bin/python3", "-c", SCIPY_TIMER, str(small_n), str(d), method],
                                                        check=True, capture_output=True, text=True, env=env).stdout.split())
            results["scipy_ratio"].append({"method": method, "n": small_n, "d": d, "hio_cpu_seconds": ours["cpu_seconds"],
                                           "scipy_cpu_seconds": cpu, "scipy_seconds": wall, "scipy_peak_mib": peak,
                                           "speedup_cpu": cpu / ours["cpu_seconds"]})
    results["load_after"] = os.getloadavg()[0]
    (HERE / "results.json").write_text(json.dumps(results, indent=2) + "\n")

    print(f"load average before/after: {results['load_before']:.1f} / {results['load_after']:.1f} on {results['cpus']} CPUs")
    print("| phase | method | n | wall s | CPU s | calling thread's CPU s | peak MiB | ARI vs planted |")
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    for r in results["exact"] + results["two_stage"]:
        print(f"| {r['phase']} | {r['method']} | {r['n']:,} | {r['seconds']:.2f} | {r['cpu_seconds']:.2f} | "
              f"{r['thread_cpu_seconds']:.2f} | {r['peak_mib']:.0f} | {r['ari']:.4f} |")
    if results["scipy_ratio"]:
        print()
        print("| method | n | hio CPU s | SciPy CPU s | SciPy / hio |")
        print("|---|---:|---:|---:|---:|")
        for r in results["scipy_ratio"]:
            print(f"| {r['method']} | {r['n']:,} | {r['hio_cpu_seconds']:.2f} | {r['scipy_cpu_seconds']:.2f} | "
                  f"{r['speedup_cpu']:.1f}x |")


if __name__ == "__main__":
    main()
