#!/usr/bin/python3
"""Reference results from SciPy for the discovery unit tests.

Usage: scipy_linkage.py CASE.csv [CASE.csv ...]
Each CASE.csv holds one observation per line (comma-separated, full precision). Prints one JSON list
with, per case and per method (single, complete, average, ward): the linkage matrix, leaves_list, and
fcluster labels for a few 'distance' thresholds (midway between consecutive merge distances) and a few
'maxclust' counts (only 1..n-2: SciPy before 1.15 mishandles maxclust >= n-1, scipy/scipy#12651).
Exit status 3 when SciPy cannot be imported.
"""
import json
import sys

try:
    import numpy as np
    import scipy
    import scipy.cluster.hierarchy as hierarchy
except ImportError as e:  # the C++ test turns this into advice on getting SciPy
    print(f"cannot import SciPy: {e}", file=sys.stderr)
    sys.exit(3)

METHODS = ("single", "complete", "average", "ward")


def one_case(path):
    x = np.loadtxt(path, delimiter=",", ndmin=2)
    n = x.shape[0]
    out = {"n": n, "methods": {}}
    for method in METHODS:
        z = hierarchy.linkage(x, method=method)
        result = {
            "Z": z.tolist(),
            "leaves": [int(v) for v in hierarchy.leaves_list(z)],
            "distance": [],
            "maxclust": [],
        }
        heights = z[:, 2]
        for q in (0.25, 0.5, 0.9):
            i = min(int(q * (n - 1)), n - 3)
            if i < 0:
                continue
            t = (heights[i] + heights[i + 1]) / 2
            labels = hierarchy.fcluster(z, t, criterion="distance")
            result["distance"].append({"t": float(t), "labels": [int(v) for v in labels]})
        for k in sorted({1, 2, 3, 5, n // 2, n - 2}):
            if 1 <= k <= n - 2:
                labels = hierarchy.fcluster(z, k, criterion="maxclust")
                result["maxclust"].append({"k": k, "labels": [int(v) for v in labels]})
        out["methods"][method] = result
    return out


def main():
    cases = [one_case(p) for p in sys.argv[1:]]
    json.dump({"scipy": scipy.__version__, "cases": cases}, sys.stdout)


if __name__ == "__main__":
    main()
