"""hes1_source.py: the spatial Hes1 model of hio-sim-source (see README.md), smaller and in NumPy:
tau-leaping over a few voxels, each realization sent as a float32 (2, T, V) .npy with the Python connector.

    HIO_CONNECTOR_LIB=build/lib/libhio_connector.so PYTHONPATH=connector/python \
        python3 experiments/sources/hes1_source.py --master http://127.0.0.1:8080 --points 4 --realizations 2
"""
import argparse
import csv
import math
import sys
import time

import numpy as np

ALPHA_P = 0.3


def sweep(points, seed, omega=10.0, n_range=(1.0, 10.0), d_range=(0.001, 0.1)):
    rng = np.random.default_rng(seed)

    def log_uniform(lo, hi):
        return float(math.exp(rng.uniform(math.log(lo), math.log(hi))))

    return [dict(hill_n=float(rng.uniform(*n_range)), K=5.0 * omega, alpha_m=1.0 * omega, alpha_p=ALPHA_P,
                 mu_m=log_uniform(0.01, 0.05), mu_p=log_uniform(0.01, 0.05), k_t=log_uniform(0.01, 0.1),
                 D=log_uniform(*d_range)) for _ in range(points)]


def transcription(p, p3):
    return p["alpha_m"] / (1.0 + (p3 / p["K"]) ** p["hill_n"])


def steady_state(p):
    def chain(p3):
        m = transcription(p, p3) / p["mu_m"]
        p1 = p["alpha_p"] * m / (p["k_t"] + p["mu_p"])
        p2 = p["k_t"] * p1 / (p["k_t"] + p["mu_p"])
        return m, p1, p2, p["k_t"] * p2 / p["mu_p"]

    lo, hi = 0.0, chain(0.0)[3]
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if chain(mid)[3] > mid else (lo, mid)
    return chain(0.5 * (lo + hi))


def regime(p):
    """(oscillating, gain_ratio): the Hopf test of README.md on the homogeneous steady state."""
    p3 = steady_state(p)[3]
    x = (p3 / p["K"]) ** p["hill_n"]
    gain = p["alpha_m"] * p["hill_n"] * x / p3 / (1 + x) ** 2 * p["alpha_p"] * p["k_t"] ** 2
    d = [p["mu_m"], p["k_t"] + p["mu_p"], p["k_t"] + p["mu_p"], p["mu_p"]]
    lo, hi = 0.0, 1e3
    for _ in range(200):
        w = 0.5 * (lo + hi)
        lo, hi = (w, hi) if sum(math.atan(w / di) for di in d) < math.pi else (lo, w)
    magnitude = math.prod(math.hypot(w, di) for di in d)
    return gain > magnitude, gain / magnitude


def simulate(p, timepoints, voxels, dt, rng, max_leap=0.2):
    """Tau-leaping; outflows of a species from a voxel are capped at its count."""
    substeps = max(1, math.ceil(dt * max(p["mu_m"], p["k_t"] + p["mu_p"] + 2 * p["D"]) / max_leap))
    tau = dt / substeps
    x = rng.poisson(np.array(steady_state(p))[:, None], size=(4, voxels)).astype(np.int64)
    out = np.empty((2, timepoints, voxels), dtype=np.float32)
    for t in range(timepoints):
        out[0, t], out[1, t] = x[0], x[1:].sum(axis=0)
        for _ in range(substeps):
            dx = np.zeros_like(x)
            dx[0] += rng.poisson(transcription(p, x[3]) * tau)
            dx[0] -= np.minimum(x[0], rng.poisson(p["mu_m"] * x[0] * tau))
            dx[1] += rng.poisson(p["alpha_p"] * x[0] * tau)
            for s in (1, 2, 3):
                left = x[s].copy()
                taken = []
                for rate in (p["mu_p"], p["k_t"] if s < 3 else 0.0, p["D"], p["D"]):
                    k = np.minimum(left, rng.poisson(rate * x[s] * tau))
                    left -= k
                    taken.append(k)
                degraded, converted, to_left, to_right = taken
                to_left[0] = 0
                to_right[-1] = 0
                dx[s] -= degraded + converted + to_left + to_right
                if s < 3:
                    dx[s + 1] += converted
                dx[s, :-1] += to_left[1:]
                dx[s, 1:] += to_right[:-1]
            x += dx
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--master", default="", help="master URL; empty: only simulate")
    ap.add_argument("--source", default="hes1-sim-py")
    ap.add_argument("--points", type=int, default=4)
    ap.add_argument("--realizations", type=int, default=2)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--timepoints", type=int, default=300)
    ap.add_argument("--voxels", type=int, default=8)
    ap.add_argument("--omega", type=float, default=10.0, help="system size: K = 5 omega, alpha_m = omega")
    ap.add_argument("--dt", type=float, default=2.0)
    ap.add_argument("--rate", type=float, default=0.0, help="realizations per second (0: as fast as made)")
    ap.add_argument("--truth", default="", help="write point,params,regime CSV here")
    a = ap.parse_args(argv)

    grid = sweep(a.points, a.seed, a.omega)
    truth = [regime(p) for p in grid]
    if a.truth:
        with open(a.truth, "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["point", *grid[0].keys(), "regime", "gain_ratio"])
            for k, (p, (osc, ratio)) in enumerate(zip(grid, truth)):
                w.writerow([k, *(f"{v:.6g}" for v in p.values()), "oscillating" if osc else "steady", f"{ratio:.6g}"])

    client = None
    if a.master:
        import hio
        client = hio.Client(a.master, source=a.source)
    start, sent, futures = time.time(), 0, []
    try:
        for k, p in enumerate(grid):
            for r in range(a.realizations):
                data = simulate(p, a.timepoints, a.voxels, a.dt, np.random.default_rng([a.seed, k, r]))
                if client is None:
                    continue
                if a.rate > 0:
                    time.sleep(max(0.0, start + sent / a.rate - time.time()))
                meta = {"species": ["mRNA", "protein"], "params": dict(p, dt=a.dt),
                        "regime": "oscillating" if truth[k][0] else "steady", "point": k, "realization": r,
                        "method": "tau-numpy"}
                futures.append(client.send_async(data, metadata=meta))
                sent += 1
        results = [f.result() for f in futures]
    finally:
        if client is not None:
            client.close()
    bad = [r for r in results if r.status == "failed"] if client else []
    print(f"{a.points * a.realizations} realizations in {time.time() - start:.2f} s; sent {sent}, "
          f"{len(bad)} failed", flush=True)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
