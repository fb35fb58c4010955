#!/usr/bin/python3
"""HarmonicIO's Figures 18-20 on one machine, with the master scaling by itself.

One worker and no load (phase 1), then one simulated source the worker can just keep up with (phase 2),
then a second source (phase 3): the autoscaler adds workers through the local provisioner; when both sources
have finished the spare workers are drained and stopped (phase 1 again, back to one worker). The master's
/v1/status is sampled every 0.5 s. Writes samples.csv, decisions.json, summary.json and phases.png (three
panels as the thesis plotted them: workers and queue; free channels per worker; the phase over time) next
to this script, or to --out.

    /usr/bin/python3 experiments/phases/run.py            # about 2.5 minutes
    HIO_BIN=build/bin /usr/bin/python3 experiments/phases/run.py --out /tmp/phases

Time is scaled down 10x from the thesis (its periods were 10 s, here 1 s): a source makes `--rate`
realizations per second, a channel needs `--process-ms` per tuple (`sleep:MS`, which takes no CPU, so the
channels' capacity and not this 2-core machine's CPU sets the phases), a worker has `--channels` channels.
"""
import argparse
import csv
import json
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "tests", "integration"))
from cluster import BIN, Cluster  # noqa: E402


def sample(c, t0):
    s = c.status()
    workers = s["workers"]
    return {
        "t": round(time.time() - t0, 2),
        "workers": len(workers),
        "draining": sum(1 for w in workers if w["draining"]),
        "channels": s["channels"]["total"],
        "free": s["channels"]["free"],
        "queue": s["queue"]["length"],
        "processed": s["counters"]["processed"],
        "phase": s["scaling"].get("phase", 0),
        "per_worker": {w["id"]: {"free": w["free"], "channels": len(w["channels"]),
                                 "processed": sum(ch["processed"] for ch in w["channels"])} for w in workers},
    }


def source(c, name, points, realizations, rate, seed):
    argv = [os.path.join(BIN, "hio-sim-source"), "--master", c.master_url, "--source", name,
            "--points", str(points), "--realizations", str(realizations), "--rate", str(rate),
            "--seed", str(seed), "--timepoints", "500", "--voxels", "100"]
    return subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=HERE)
    ap.add_argument("--channels", type=int, default=2, help="channels per worker")
    ap.add_argument("--process-ms", type=int, default=1000, help="processing time per tuple")
    ap.add_argument("--rate", type=float, default=1.6, help="realizations per second per source")
    ap.add_argument("--idle-s", type=float, default=10, help="phase 1 before the first source")
    ap.add_argument("--alone-s", type=float, default=40, help="the first source alone")
    ap.add_argument("--together-s", type=float, default=50, help="both sources")
    ap.add_argument("--max-workers", type=int, default=4)
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)

    per_worker_rate = args.channels * 1000.0 / args.process_ms
    c = Cluster(workers=0, wait=False, master_args=[
        "--autoscale", "--min-workers", "1", "--max-workers", str(args.max_workers),
        "--worker-channels", str(args.channels), "--worker-processor", f"sleep:{args.process_ms}",
        "--scaling-interval-ms", "1000", "--target-delay-ms", "5000",
        "--scale-out-cooldown-ms", "5000", "--scale-in-cooldown-ms", "10000",
        "--repository", "{repository}", "--worker-log-dir", "{dir}"])
    samples, events = [], {}
    try:
        c.wait_workers(1)
        t0 = time.time()

        def run_until(t_end, stop=None):
            while time.time() - t0 < t_end and not (stop and stop()):
                samples.append(sample(c, t0))
                time.sleep(0.5)

        run_until(args.idle_s)
        # Source 1 runs for alone + together seconds, source 2 for together seconds: they end together.
        n1 = max(1, round(args.rate * (args.alone_s + args.together_s)))
        n2 = max(1, round(args.rate * args.together_s))
        events["source 1 starts"] = time.time() - t0
        s1 = source(c, "source-1", n1, 1, args.rate, 11)
        run_until(args.idle_s + args.alone_s)
        events["source 2 starts"] = time.time() - t0
        workers_before = set(samples[-1]["per_worker"])
        s2 = source(c, "source-2", n2, 1, args.rate, 22)
        run_until(10_000, stop=lambda: s1.poll() is not None and s2.poll() is not None)
        events["sources end"] = time.time() - t0
        out1, out2 = s1.communicate()[0], s2.communicate()[0]
        assert s1.returncode == 0 and s2.returncode == 0, out1 + out2
        # Drain the queue, then wait for the scale-in back to one worker.
        run_until(10_000, stop=lambda: samples and samples[-1]["queue"] == 0 and samples[-1]["free"] ==
                  samples[-1]["channels"])
        events["load ends"] = time.time() - t0
        run_until(events["load ends"] + 120, stop=lambda: samples[-1]["workers"] == 1)
        run_until(time.time() - t0 + 5)
        decisions = c.status()["scaling"]["decisions"]

        # Every realization stored exactly once.
        records = c.records()
        by_source = {}
        ids = [r["id"] for r in records]
        for r in records:
            by_source[r["source"]] = by_source.get(r["source"], 0) + 1
        lost = (n1 - by_source.get("source-1", 0)) + (n2 - by_source.get("source-2", 0))
        duplicates = len(ids) - len(set(ids))
    finally:
        c.close()

    # Seconds from the load step (source 2) to the first new worker taking tuples.
    step = events["source 2 starts"]
    first_new = next((s["t"] - step for s in samples if s["t"] >= step and any(
        w not in workers_before and v["processed"] > 0 for w, v in s["per_worker"].items())), None)
    # Worker-seconds: integral of the worker count over the run, against a fixed cluster sized for the peak.
    ws = sum(samples[i]["workers"] * (samples[i + 1]["t"] - samples[i]["t"]) for i in range(len(samples) - 1))
    peak = max(s["workers"] for s in samples)
    duration = samples[-1]["t"] - samples[0]["t"]
    summary = {
        "per_worker_rate": per_worker_rate, "source_rate": args.rate, "sent": n1 + n2, "stored": len(ids),
        "lost": lost, "duplicates": duplicates, "events_s": {k: round(v, 1) for k, v in events.items()},
        "first_new_worker_taking_tuples_s": None if first_new is None else round(first_new, 1),
        "peak_workers": peak, "worker_seconds": round(ws, 1), "fixed_peak_worker_seconds": round(peak * duration, 1),
        "duration_s": round(duration, 1),
        "phases_seen": sorted({s["phase"] for s in samples}),
        "scale_outs": sum(1 for d in decisions if d["action"] == "scale_out"),
        "scale_ins": sum(1 for d in decisions if d["action"] == "scale_in"),
    }
    with open(os.path.join(args.out, "samples.csv"), "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["t", "workers", "draining", "channels", "free", "queue", "processed", "phase"])
        for s in samples:
            w.writerow([s[k] for k in ("t", "workers", "draining", "channels", "free", "queue", "processed", "phase")])
    with open(os.path.join(args.out, "decisions.json"), "w") as f:
        json.dump(decisions, f, indent=1)
    with open(os.path.join(args.out, "summary.json"), "w") as f:
        json.dump(summary, f, indent=1)
    plot(samples, events, decisions, t0, os.path.join(args.out, "phases.png"))
    print(json.dumps(summary, indent=1))
    return 0 if lost == 0 and duplicates == 0 else 1


def plot(samples, events, decisions, t0_unix, path):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib missing (apt-get install python3-matplotlib): no plot")
        return
    t = [s["t"] for s in samples]
    fig, ax = plt.subplots(3, 1, figsize=(11, 9), sharex=True, gridspec_kw={"height_ratios": [3, 3, 1]})
    ax[0].step(t, [s["workers"] for s in samples], where="post", label="workers", lw=2)
    ax[0].step(t, [s["queue"] for s in samples], where="post", label="tuples in queue", lw=1.5)
    ax[0].step(t, [s["free"] for s in samples], where="post", label="free channels", lw=1, ls="--")
    ax[0].set_ylabel("workers / tuples")
    ax[0].set_title("Workers, queue and free channels (cf. HarmonicIO Figure 18); ▲ scale out, ▼ scale in")
    ids = sorted({w for s in samples for w in s["per_worker"]})
    for i, wid in enumerate(ids):
        ax[1].step(t, [s["per_worker"].get(wid, {}).get("free", float("nan")) + 0.04 * i for s in samples],
                   where="post", label=f"worker {i + 1}")
    ax[1].set_ylabel("free channels")
    ax[1].set_title("Free channels per worker (cf. Figure 19)")
    ax[2].step(t, [s["phase"] for s in samples], where="post", color="black")
    ax[2].set_yticks([1, 2, 3])
    ax[2].set_ylabel("phase")
    ax[2].set_xlabel("seconds")
    ax[2].set_title("The autoscaler's phase (cf. Figure 20)")
    for name, at in events.items():
        for a in ax:
            a.axvline(at, color="grey", lw=0.8, ls=":")
        if name != "load ends":  # a second after "sources end": its label would cover that one
            ax[0].annotate(name, (at, ax[0].get_ylim()[1]), rotation=90, va="top", ha="right", fontsize=8)
    for d in decisions:
        if d["action"] in ("scale_out", "scale_in"):
            at = d["at_unix_ms"] / 1000 - t0_unix
            up = d["action"] == "scale_out"
            ax[0].plot([at], [0.2], marker="^" if up else "v", color="green" if up else "red", ms=9)
    for a in ax[:2]:
        a.legend(loc="upper left", fontsize=8)
        a.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    print(f"wrote {path}")


if __name__ == "__main__":
    sys.exit(main())
