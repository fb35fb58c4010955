#!/usr/bin/python3
"""Independent float64 reference for the hio feature set, written from the formulas in docs/features.md
(not from the C++ code). Usage:

    reference_features.py [--no-spectral] [--names a,b,...] FILE.npy ...

prints one line per feature: FILE<TAB>REALIZATION<TAB>NAME<TAB>VALUE (VALUE as repr(float))."""

import sys

import numpy as np

PEAK_TIE_TOLERANCE = 1e-9
PEAKED_SHARE = 0.5


def moments(x):
    """Mean and population standard deviation; a constant series has mean x[0] and sd exactly 0."""
    if x.min() == x.max():
        return float(x[0]), 0.0
    return float(np.mean(x)), float(np.std(x))


def burstiness(x):
    mu, sd = moments(x)
    return 0.0 if sd + mu == 0 else (sd - mu) / (sd + mu)


def cv(x):
    mu, sd = moments(x)
    return 0.0 if mu == 0 else sd / mu


def skew(x):
    mu, sd = moments(x)
    return 0.0 if sd == 0 else 3.0 * (mu - float(np.median(x))) / sd


def corr(x, y):
    if moments(x)[1] == 0 or moments(y)[1] == 0:
        return 0.0
    return float(np.clip(np.corrcoef(x, y)[0, 1], -1.0, 1.0))


def acf_norm(x):
    n = len(x)
    max_lag = n // 2 - 1
    mu, sd = moments(x)
    if max_lag < 1 or sd == 0:
        return 0.0
    d = x - mu
    c0 = float(np.dot(d, d))
    r = [float(np.dot(d[: n - k], d[k:])) / c0 for k in range(1, max_lag + 1)]
    return float(np.linalg.norm(r))


def fft_norm(x):
    mu, _ = moments(x)
    return float(np.linalg.norm(np.abs(np.fft.fft(x - mu))))


def dominant(x):
    """(period, share) of one voxel's series."""
    n = len(x)
    mu, sd = moments(x)
    if n < 2 or sd == 0:
        return 0.0, 0.0
    power = np.abs(np.fft.rfft(x - mu)) ** 2
    power = power[1:]  # bins k = 1 .. n//2
    peak = power.max()
    total = power.sum()
    if total == 0:
        return 0.0, 0.0
    k = int(np.argmax(power >= (1 - PEAK_TIE_TOLERANCE) * peak)) + 1
    return n / k, float(peak / total)


def summaries(values):
    v = np.asarray(values, dtype=np.float64)
    return float(np.linalg.norm(v)), float(np.mean(v)), float(np.var(v))


def realization_features(x, prefixes, spectral):
    """x: float64 [S][T][V]. Returns a list of (name, value)."""
    S, T, V = x.shape
    out = []
    for s in range(S):
        p = prefixes[s] + "."
        sm = x[s].sum(axis=1)   # length T
        smt = x[s].sum(axis=0)  # length V
        mu_sm, _ = moments(sm)
        out += [(p + "mean_sm", mu_sm), (p + "burstiness_sm", burstiness(sm)), (p + "burstiness_smt", burstiness(smt)),
                (p + "skew_sm", skew(sm)), (p + "cv_sm", cv(sm)), (p + "cv_smt", cv(smt)),
                (p + "acf_norm_sm", acf_norm(sm)), (p + "fft_norm_sm", fft_norm(sm)), (p + "fft_norm_smt", fft_norm(smt))]
        rows = [x[s, t, :] for t in range(T)]
        cols = [x[s, :, v] for v in range(V)]
        for label, series in (("per_timepoint.", rows), ("per_voxel.", cols)):
            for stat_name, stat in (("burstiness", burstiness), ("skew", skew), ("cv", cv)):
                norm, mean, var = summaries([stat(z) for z in series])
                out += [(p + label + stat_name + "_norm", norm), (p + label + stat_name + "_mean", mean),
                        (p + label + stat_name + "_var", var)]
        if spectral:
            dom = [dominant(c) for c in cols]
            periods = np.array([d[0] for d in dom])
            shares = np.array([d[1] for d in dom])
            out += [(p + "spec.period_mean", float(periods.mean())), (p + "spec.period_std", float(periods.std())),
                    (p + "spec.share_mean", float(shares.mean())),
                    (p + "spec.peaked_fraction", float(np.mean(shares > PEAKED_SHARE)))]
    for s in range(S):
        for u in range(s + 1, S):
            p = prefixes[s] + "_" + prefixes[u] + "."
            tp = [corr(x[s, t, :], x[u, t, :]) for t in range(T)]
            vx = [corr(x[s, :, v], x[u, :, v]) for v in range(V)]
            tn, _, tv = summaries(tp)
            vn, _, vv = summaries(vx)
            out += [(p + "corr_sm", corr(x[s].sum(axis=1), x[u].sum(axis=1))),
                    (p + "per_timepoint.corr_norm", tn), (p + "per_timepoint.corr_var", tv),
                    (p + "per_voxel.corr_norm", vn), (p + "per_voxel.corr_var", vv)]
    return [(name, value if np.isfinite(value) else 0.0) for name, value in out]


def main(argv):
    spectral = True
    names = None
    files = []
    i = 0
    while i < len(argv):
        if argv[i] == "--no-spectral":
            spectral = False
        elif argv[i] == "--names":
            i += 1
            names = argv[i].split(",")
        else:
            files.append(argv[i])
        i += 1
    for f in files:
        a = np.load(f).astype(np.float64)
        if a.ndim == 2:
            a = a[np.newaxis, np.newaxis]
        elif a.ndim == 3:
            a = a[np.newaxis]
        prefixes = names if names else ["s%d" % s for s in range(a.shape[1])]
        for r in range(a.shape[0]):
            for name, value in realization_features(a[r], prefixes, spectral):
                print("%s\t%d\t%s\t%r" % (f, r, name, float(value)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
