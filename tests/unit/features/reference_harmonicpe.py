#!/usr/bin/python3
"""Independent float64 port of the feature code of the original HarmonicPE (Services.g2 in batch.py of
HASTE-project/HarmonicPE), for checking hio's `harmonicpe` definitions. Written from the original's
formulas and loop order, not from the C++ code. Usage:

    reference_harmonicpe.py [--names a,b,...] FILE.npy ...

prints one line per feature: FILE<TAB>REALIZATION<TAB>NAME<TAB>VALUE (VALUE as repr(float)), in the
original's order. Deliberate departures from the original, as in docs/features.md:
- no random 1 is written into all-zero rows and columns (the original's check_arrays);
- a constant series has mean x[0] and sd exactly 0 (NumPy's rounded mean can leave a residue);
- where the original divides by zero (NaN or Inf in NumPy) the value is 0: burstiness of an all-zero
  series, CV with mean 0, skewness and correlations with sd 0, an autocorrelation lag with a constant
  segment; and any value that would still be NaN or Inf is 0."""

import sys

import numpy as np


def mean_sd(y):
    y = np.asarray(y, dtype=np.float64)
    if y.min() == y.max():
        return float(y[0]), 0.0
    return float(np.mean(y)), float(np.std(y))


def burstiness(y):
    mu, sd = mean_sd(y)
    return 0.0 if sd + mu == 0 else (sd - mu) / (sd + mu)


def skewness(y):
    # The original's "Pearson skewness": (3 * mean - median) / std.
    mu, sd = mean_sd(y)
    return 0.0 if sd == 0 else (3.0 * mu - float(np.median(y))) / sd


def cv(y):
    mu, sd = mean_sd(y)
    return 0.0 if mu == 0 else sd / mu


def corrcoef(y, z):
    if mean_sd(y)[1] == 0 or mean_sd(z)[1] == 0:
        return 0.0
    return float(np.clip(np.corrcoef(y, z)[0, 1], -1.0, 1.0))


def autocorrelations(y, k):
    # Lags 1 .. k-1; each correlates y[0:N-i] and y[i:N] about their own means, divided by N.
    y = np.asarray(y, dtype=np.float64)
    n = len(y)
    out = []
    for i in range(1, k):
        a, b = y[0:n - i], y[i:n]
        (ma, sa), (mb, sb) = mean_sd(a), mean_sd(b)
        if sa == 0 or sb == 0:
            out.append(0.0)
            continue
        out.append(float(np.sum((a - ma) * (b - mb) / n / sa / sb)))
    return out


def fft_norm(y):
    y = np.asarray(y, dtype=np.float64)
    mu, _ = mean_sd(y)
    return float(np.linalg.norm(np.abs(np.fft.fft(y - mu))))


def norm_mean_var(values):
    v = np.asarray(values, dtype=np.float64)
    return [float(np.linalg.norm(v)), float(np.mean(v)), float(np.var(v))]


def g2_features(x, prefixes):
    """x: float64 [S][T][V], species in the order of the tuple. Returns a list of (name, value)."""
    S = x.shape[0]
    species = [(x[s], x[s].T) for s in range(S)]  # (m: rows per timepoint, mT: rows per voxel)
    totals = [(m.sum(axis=1), m.sum(axis=0)) for m, _ in species]
    out = []
    for c, (sm, smt) in enumerate(totals):
        p = prefixes[c] + "."
        out += [(p + "mean_sm", mean_sd(sm)[0]), (p + "burstiness_sm", burstiness(sm)),
                (p + "burstiness_smt", burstiness(smt)), (p + "hpe_skew_sm", skewness(sm)),
                (p + "cv_sm", cv(sm)), (p + "cv_smt", cv(smt)),
                (p + "hpe_acf_norm_sm", float(np.linalg.norm(autocorrelations(sm, len(sm) // 2)))),
                (p + "fft_norm_sm", fft_norm(sm)), (p + "fft_norm_smt", fft_norm(smt))]
        for i in range(1, S - c):
            out.append((prefixes[c] + "_" + prefixes[c + i] + ".corr_sm", corrcoef(sm, totals[c + i][0])))
    for c, (m, mt) in enumerate(species):
        p = prefixes[c] + "."
        bm = [burstiness(v) for v in m]
        sk = [skewness(v) for v in m]
        cm = [cv(v) for v in m]
        bmt = [burstiness(v) for v in mt]
        skt = [skewness(v) for v in mt]
        cmt = [cv(v) for v in mt]
        for i in range(1, S - c):
            nm, nmt = species[c + i]
            q = prefixes[c] + "_" + prefixes[c + i] + "."
            corr1 = [corrcoef(v, nm[e]) for e, v in enumerate(m)]
            corr2 = [corrcoef(v, nmt[e]) for e, v in enumerate(mt)]
            out += [(q + "per_timepoint.corr_norm", float(np.linalg.norm(corr1))),
                    (q + "per_voxel.corr_norm", float(np.linalg.norm(corr2))),
                    (q + "per_timepoint.corr_var", float(np.var(corr1))),
                    (q + "per_voxel.corr_var", float(np.var(corr2)))]
        for label, values in (("per_timepoint.burstiness", bm), ("per_voxel.burstiness", bmt),
                              ("per_timepoint.hpe_skew", sk), ("per_voxel.hpe_skew", skt),
                              ("per_timepoint.cv", cm), ("per_voxel.cv", cmt)):
            n, mu, var = norm_mean_var(values)
            out += [(p + label + "_norm", n), (p + label + "_mean", mu), (p + label + "_var", var)]
    return [(name, value if np.isfinite(value) else 0.0) for name, value in out]


def main(argv):
    names = None
    files = []
    i = 0
    while i < len(argv):
        if argv[i] == "--names":
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
            for name, value in g2_features(a[r], prefixes):
                print("%s\t%d\t%s\t%r" % (f, r, name, float(value)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
