#!/usr/bin/env python3
"""End-to-end rate of a worker running `features` against the same worker running `noop`, in one run.

One worker with two channels; one source (`hio bench --npy 2x3000x250`) sends float32 realizations of
(2 species, 3000 timepoints, 250 voxels) = 6 MB each. Also prints the CPU extraction time per realization
on one core from `hio-features-bench`.

Usage: experiments/features/run.py [--count N] [--bin build/bin]
"""
import argparse
import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--count", type=int, default=200)
    ap.add_argument("--bin", default=os.path.join(ROOT, "build", "bin"))
    args = ap.parse_args()
    os.environ["HIO_BIN"] = os.path.abspath(args.bin)
    import cluster

    results = {}
    for processor in ("noop", "features:cpu"):
        c = cluster.Cluster(workers=1, channels=2, processor=processor)
        try:
            out = subprocess.run([os.path.join(args.bin, "hio"), "bench", "--master", c.master_url, "--npy",
                                  "2x3000x250", "--count", str(args.count)], check=True, capture_output=True,
                                 text=True, timeout=900).stdout
            results[processor] = json.loads(out.strip().splitlines()[-1])
            c.wait_drained()
            failed = sum(1 for r in c.records() if r["status"] != "stored")
            assert failed == 0, f"{failed} realizations failed with {processor}"
        finally:
            c.close()
    noop, feat = results["noop"], results["features:cpu"]
    print(f"noop      {noop['tuples_per_s']:8.1f} realizations/s  {noop['bytes_per_s'] / 1e6:8.0f} MB/s")
    print(f"features  {feat['tuples_per_s']:8.1f} realizations/s  {feat['bytes_per_s'] / 1e6:8.0f} MB/s"
          f"  = {100 * feat['tuples_per_s'] / noop['tuples_per_s']:.0f} % of noop")
    with open(os.path.join(HERE, "results.json"), "w") as f:
        json.dump(results, f, indent=2)


if __name__ == "__main__":
    main()
