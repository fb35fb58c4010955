#!/usr/bin/python3
"""Measures how long after a tuple is stored its cluster can be shown: from the tuple being stored in the
repository to the first published knowledge version whose labels contain it, plus the dashboard's refresh
interval (it polls the latest version every 2 s) as the bound for "shown".

Starts a real repository, master, one worker (2 channels, `features` processor) and hio-discovery with
--interval-s INTERVAL on loopback (tests/integration/cluster.py), streams RATE tuples per second for
SECONDS seconds from a Python source (each its own parameter point, two regimes), then reads every
published version back. A tuple's store time is taken two ways:
- ack: when the source's send() returned with status "stored" (the repository had the features on disk;
  the true store time is at most this, by the acknowledgement's trip back);
- processed: the worker's processed_at_ms in the record (the tuple is stored after this, in the worker's
  next batch to the repository).
Published time: the version's stored_at_ms, assigned by the repository when it committed the document.

Usage: experiments/discovery/latency.py [--build DIR] [--discovery BIN] [--interval S] [--seconds S]
                                        [--rate R] [--dashboard-refresh S]
Writes latency.json next to this script and prints a Markdown table.
"""
import argparse
import json
import os
import pathlib
import statistics
import subprocess
import sys
import time

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parent.parent

SEND = """
import json, sys, time, numpy as np, hio
seconds, rate = float(sys.argv[1]), float(sys.argv[2])
rng = np.random.default_rng(7)
out = []
start = time.time()
i = 0
with hio.Client("{master}", source="latency") as cl:
    while time.time() - start < seconds:
        due = start + i / rate
        if due > time.time():
            time.sleep(due - time.time())
        regime = "quiet" if i % 2 else "burst"
        if regime == "quiet":
            a = rng.poisson(2.0 + 0.01 * i, size=(2, 120, 16))
        else:
            a = rng.negative_binomial(2, 2.0 / (62.0 + 0.01 * i), size=(2, 120, 16))
        sent = time.time()
        r = cl.send(a.astype(np.float32), metadata={{"species": ["A", "B"], "params": {{"regime": regime, "rate": i}}}})
        out.append([r.tuple_id, r.status, sent * 1000.0, time.time() * 1000.0])
        i += 1
print(json.dumps(out))
"""


def quantiles(values):
    values = sorted(values)
    pick = lambda q: values[min(len(values) - 1, int(q * (len(values) - 1) + 0.5))]
    return {"n": len(values), "median": statistics.median(values), "p90": pick(0.9), "max": values[-1],
            "min": values[0]}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--build", default=str(ROOT / "build"), help="build folder with bin/ and lib/")
    parser.add_argument("--discovery", help="hio-discovery to run (default: the build's)")
    parser.add_argument("--interval", type=float, default=2.0, help="hio-discovery --interval-s")
    parser.add_argument("--seconds", type=float, default=60.0, help="how long the source streams")
    parser.add_argument("--rate", type=float, default=5.0, help="tuples per second")
    parser.add_argument("--dashboard-refresh", type=float, default=2.0, help="the dashboard's polling interval")
    parser.add_argument("--method", default="ward", help="hio-discovery --method")
    args = parser.parse_args()
    build = pathlib.Path(args.build).resolve()
    os.environ["HIO_BIN"] = str(build / "bin")
    sys.path.insert(0, str(ROOT / "tests" / "integration"))
    from cluster import SECRET, Cluster, Process, get_json, wait_for  # noqa: E402

    discovery = args.discovery or str(build / "bin" / "hio-discovery")
    c = Cluster(workers=1, channels=2, processor="features")
    try:
        d = Process("discovery", [discovery, "--repository", c.repository_url, "--data-dir",
                                  os.path.join(c.dir, "discovery"), "--interval-s", str(args.interval),
                                  "--method", args.method],
                    os.path.join(c.dir, "discovery.log"), dict(os.environ, HIO_SECRET=SECRET))
        c.processes.append(d)
        env = dict(os.environ, PYTHONPATH=str(ROOT / "connector" / "python"),
                   HIO_CONNECTOR_LIB=str(build / "lib" / "libhio_connector.so"))
        load_before = os.getloadavg()[0]
        p = subprocess.run(["/usr/bin/python3", "-c", SEND.format(master=c.master_url), str(args.seconds),
                            str(args.rate)], capture_output=True, text=True, env=env, timeout=args.seconds + 300)
        if p.returncode != 0:
            sys.exit(f"the source failed:\n{p.stdout}\n{p.stderr}")
        sent = json.loads(p.stdout.strip().splitlines()[-1])
        ids = {str(t[0]) for t in sent}

        def covered():
            doc = get_json(c.repository_url + "/v1/knowledge/latest")
            return ids <= set(doc["labels"])
        wait_for(covered, 120, "a knowledge version labelling every tuple")
        load_after = os.getloadavg()[0]

        versions = sorted(get_json(c.repository_url + "/v1/knowledge?limit=10000")["versions"],
                          key=lambda v: v["version"])
        first = {}  # tuple id -> (version, stored_at_ms)
        ticks = []
        for v in versions:
            doc = get_json(f"{c.repository_url}/v1/knowledge/{v['version']}")
            ticks.append(doc.get("tick", {}).get("seconds", 0.0))
            for tid in doc["labels"]:
                first.setdefault(tid, (v["version"], v["stored_at_ms"]))
        processed = {str(r["id"]): r["processed_at_ms"] for r in c.records()}
        from_ack, from_processed = [], []
        for tid, status, _, ack_ms in sent:
            version, published_ms = first[str(tid)]
            if status == "stored":
                from_ack.append((published_ms - ack_ms) / 1000.0)
            from_processed.append((published_ms - processed[str(tid)]) / 1000.0)
    finally:
        c.close()

    shown = [s + args.dashboard_refresh for s in from_ack]
    result = {"date": time.strftime("%Y-%m-%d"), "cpus": os.cpu_count(), "load_before": load_before,
              "load_after": load_after, "interval_s": args.interval, "seconds": args.seconds, "rate": args.rate,
              "method": args.method, "tuples": len(sent), "stored_acks": len(from_ack), "versions": len(versions),
              "tick_seconds": quantiles(ticks) if ticks else None,
              "stored_to_published_from_ack_s": quantiles(from_ack),
              "stored_to_published_from_processed_s": quantiles(from_processed),
              "stored_to_shown_bound_s": quantiles(shown), "dashboard_refresh_s": args.dashboard_refresh}
    (HERE / "latency.json").write_text(json.dumps(result, indent=2) + "\n")

    print(f"{len(sent)} tuples over {args.seconds:.0f} s, discovery every {args.interval:g} s ({args.method}), "
          f"{len(versions)} versions; load average {load_before:.1f} / {load_after:.1f} on {os.cpu_count()} CPUs")
    print("| from | to | n | median s | p90 s | max s |")
    print("|---|---|---:|---:|---:|---:|")
    rows = [("stored (source's ack)", "published", result["stored_to_published_from_ack_s"]),
            ("processed (worker)", "published", result["stored_to_published_from_processed_s"]),
            ("stored (source's ack)", f"shown (+{args.dashboard_refresh:g} s refresh, bound)",
             result["stored_to_shown_bound_s"])]
    for a, b, q in rows:
        print(f"| {a} | {b} | {q['n']} | {q['median']:.2f} | {q['p90']:.2f} | {q['max']:.2f} |")
    if ticks:
        t = result["tick_seconds"]
        print(f"tick duration: median {t['median']:.3f} s, max {t['max']:.3f} s")


if __name__ == "__main__":
    main()
