#!/usr/bin/env python3
"""The direct path under many sources: hio with default options against the loopback baselines.

In one run on this machine, against one worker with 2 channels (what `hio up --workers 1 --channels 2`
starts; every hio option at its default):
  - `hio bench` with 1, 2, 4, 8 and 16 concurrent sources at 1 KiB, 64 KiB, 1 MiB and 6 MiB, with the
    `noop` processor and with `sleep:20` (20 ms per tuple: the channels take 100 tuples/s, the overflow
    queue must take the rest). A tuple counts once it is stored (acknowledged `stored`, or acknowledged
    `queued` and then the master's queue has drained into the channels): `hio bench` waits for that;
  - `hio stream` of 160 files of 6 MiB (in the page cache), one source, alternating with `hio bench` of
    160 tuples of 6 MiB from memory, 3 rounds each (medians; both timed with their process start);
  - iperf3, one TCP stream, and ZeroMQ PUSH -> PULL from Python (pyzmq, no acknowledgements, one PULL
    socket, the same numbers of sources as PUSH sockets in threads), at every size.
Reports tuples/s, MB/s and the share of tuples that went through the queue, and checks each hio point
against the repository: as many new records as tuples, all stored, none twice.
Writes results.json and results.md beside this script (or into --out).

Usage: experiments/concurrency/run.py [--bin build/bin] [--out DIR] [--seconds S] [--quick]
"""
import argparse
import importlib.util
import json
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
from cluster import Cluster, get_json  # noqa: E402

# The loopback ceiling, measured as experiments/bench measures it.
_spec = importlib.util.spec_from_file_location("bench_run", os.path.join(ROOT, "experiments", "bench", "run.py"))
bench_run = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench_run)

KiB, MiB = 1 << 10, 1 << 20
SIZES = [1 * KiB, 64 * KiB, 1 * MiB, 6 * MiB]
SOURCES = [1, 2, 4, 8, 16]
# For choosing counts only (the run measures the real rates): rough rates on this 2-core machine.
EST_TUPLES_PER_S = {1 * KiB: 100_000, 64 * KiB: 20_000, 1 * MiB: 1_500, 6 * MiB: 250}


def human(size):
    return f"{size // MiB} MiB" if size >= MiB else f"{size // KiB} KiB"


def zmq_push_pull(size, sources, seconds):
    """Messages of `size` bytes from `sources` PUSH sockets (threads) into one PULL socket: no
    acknowledgements, nothing stored. Returns (messages/s, bytes/s) or None without pyzmq."""
    try:
        import zmq
    except ImportError:
        return None
    ctx = zmq.Context(io_threads=2)
    pull = ctx.socket(zmq.PULL)
    port = pull.bind_to_random_port("tcp://127.0.0.1")
    payload = os.urandom(size)
    stop = threading.Event()

    def push():
        s = ctx.socket(zmq.PUSH)
        s.setsockopt(zmq.SNDHWM, 1000)
        s.setsockopt(zmq.SNDTIMEO, 100)  # a blocked send gives up now and then to look at `stop`
        s.connect(f"tcp://127.0.0.1:{port}")
        while not stop.is_set():
            try:
                s.send(payload, copy=False)
            except zmq.Again:
                pass
        s.close(linger=0)

    threads = [threading.Thread(target=push, daemon=True) for _ in range(sources)]
    for t in threads:
        t.start()
    for _ in range(1000):  # warm up
        pull.recv(copy=False)
    n, start = 0, time.time()
    while time.time() - start < seconds:
        for _ in range(256):
            pull.recv(copy=False)
        n += 256
    elapsed = time.time() - start
    stop.set()
    for t in threads:  # each gives up its blocked send within SNDTIMEO; sockets are closed by their thread
        t.join()
    pull.close(linger=0)
    ctx.term()
    return n / elapsed, n * size / elapsed


def repository_counts(cluster):
    return get_json(cluster.repository_url + "/v1/counts")


def run_bench(bin_dir, cluster, size, sources, count, timeout):
    before = repository_counts(cluster)
    argv = [os.path.join(bin_dir, "hio"), "bench", "--master", cluster.master_url, "--size", str(size),
            "--count", str(count), "--sources", str(sources)]
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"status": f"error: hio bench timed out after {timeout} s"}
    lines = proc.stdout.strip().splitlines()
    if proc.returncode != 0 or not lines:
        return {"status": "error: " + (proc.stderr.strip()[-300:] or "no output")}
    out = json.loads(lines[-1])
    deadline = time.time() + 30
    while True:  # a queued tuple's record lands a moment after the queue reports it dispatched
        now = repository_counts(cluster)
        if now["records"] - before["records"] >= count or time.time() > deadline:
            break
        time.sleep(0.02)
    records = now["records"] - before["records"]
    stored = now["stored"] - before["stored"]
    duplicates = now["duplicates"] - before["duplicates"]
    ok = out["tuples"] == count and out["errors"] == 0 and records == count and stored == count
    return {"tuples": count, "seconds": out["seconds"], "tuples_per_s": out["tuples_per_s"],
            "mb_per_s": out["bytes_per_s"] / 1e6, "via_queue": out["via_queue"] / count,
            "sessions": out["sessions"], "resent_duplicates": duplicates,
            "exactly_once": ok, "status": "ok" if ok else
            f"error: acknowledged {out['tuples']}, errors {out['errors']}, records {records}, stored {stored}"}


def run_stream(bin_dir, cluster, files, size):
    before = repository_counts(cluster)
    start = time.time()
    proc = subprocess.run([os.path.join(bin_dir, "hio"), "stream", "--master", cluster.master_url, "--source",
                           "files", "--quiet", *files], capture_output=True, text=True, timeout=600)
    deadline = time.time() + 60
    while cluster.status()["queue"]["length"] > 0 and time.time() < deadline:
        time.sleep(0.02)
    seconds = time.time() - start
    now = repository_counts(cluster)
    stored = now["stored"] - before["stored"]
    ok = proc.returncode == 0 and stored == len(files)
    return {"tuples": len(files), "seconds": seconds, "tuples_per_s": stored / seconds,
            "mb_per_s": stored * size / seconds / 1e6, "exactly_once": ok,
            "status": "ok" if ok else "error: " + proc.stderr.strip()[-300:]}


def machine():
    return {"cpus": os.cpu_count(), "kernel": platform.release(),
            "cpu": next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")),
                        platform.processor())}


def markdown(res):
    lines = [f"Machine: {res['machine']['cpus']} cores, {res['machine']['cpu']}, Linux {res['machine']['kernel']}.",
             f"Command: `{res['command']}`.", "",
             f"Baselines in the same run: iperf3 single stream {res['iperf3_mb_per_s']:,.0f} MB/s.", ""]
    for proc, rows in res["hio"].items():
        lines += [f"### hio, `{proc}`, 1 worker x 2 channels, default options", "",
                  "| size | sources | tuples/s | MB/s | via queue | x 1 source | ZeroMQ PUSH→PULL msgs/s | ZeroMQ MB/s |",
                  "|---|---|---|---|---|---|---|---|"]
        for r in rows:
            one = next((x for x in rows if x["size"] == r["size"] and x["sources"] == 1), None)
            z = res["zmq"].get(f"{r['size']}/{r['sources']}") if proc == "noop" else None
            if "tuples_per_s" not in r:
                lines.append(f"| {human(r['size'])} | {r['sources']} | {r['status']} | | | | | |")
                continue
            rel = r["tuples_per_s"] / one["tuples_per_s"] if one and one.get("tuples_per_s") else 0
            lines.append(f"| {human(r['size'])} | {r['sources']} | {r['tuples_per_s']:,.0f} | {r['mb_per_s']:,.0f} | "
                         f"{100 * r['via_queue']:.1f} % | {rel:.2f} | "
                         f"{z[0]:,.0f} | {z[1] / 1e6:,.0f} |" if z else
                         f"| {human(r['size'])} | {r['sources']} | {r['tuples_per_s']:,.0f} | {r['mb_per_s']:,.0f} | "
                         f"{100 * r['via_queue']:.1f} % | {rel:.2f} | | |")
        lines.append("")
    if res.get("stream"):
        s = res["stream"]
        lines += [f"`hio stream` of {s['tuples']} files of 6 MiB (page cache), 1 source: {s['mb_per_s']:,.0f} MB/s "
                  f"({s['ratio_to_bench']:.2f} x `hio bench` of as many 6 MiB tuples from memory, "
                  f"{s['bench_mb_per_s']:,.0f} MB/s; medians of 3 alternating rounds).", ""]
    bad = [r for rows in res["hio"].values() for r in rows if not r.get("exactly_once")]
    if res.get("stream") and not res["stream"]["exactly_once"]:
        bad.append(res["stream"])
    lines.append("Every point exactly once (records = stored = tuples sent)." if not bad else
                 f"{len(bad)} points were NOT exactly once: " + "; ".join(r["status"] for r in bad))
    return "\n".join(lines) + "\n"


def main():
    try:
        import zmq  # noqa: F401
    except ImportError:
        # Debian's python3-zmq is installed for Debian's interpreter; another python3 first on PATH lacks it.
        if os.path.exists("/usr/bin/python3") and os.path.realpath(sys.executable) != "/usr/bin/python3":
            os.execv("/usr/bin/python3", ["/usr/bin/python3", *sys.argv])
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default=os.path.join(ROOT, "build", "bin"))
    ap.add_argument("--out", default=HERE)
    ap.add_argument("--seconds", type=float, default=3.0, help="about how long each noop point runs")
    ap.add_argument("--quick", action="store_true", help="1, 4 and 8 sources at 1 KiB and 6 MiB only")
    args = ap.parse_args()
    os.environ["HIO_BIN"] = args.bin
    sizes = [1 * KiB, 6 * MiB] if args.quick else SIZES
    sources = [1, 4, 8] if args.quick else SOURCES
    res = {"machine": machine(), "command": "experiments/concurrency/run.py" + (" --quick" if args.quick else ""),
           "hio": {}, "zmq": {}}
    res["iperf3_mb_per_s"] = (bench_run.iperf3(5)[0] or 0) / 1e6
    for size in sizes:
        for n in sources:
            z = zmq_push_pull(size, n, 2.0)
            if z:
                res["zmq"][f"{size}/{n}"] = z
    for proc in ["noop", "sleep:20"]:
        rows = []
        c = Cluster(workers=1, channels=2, processor=proc)
        try:
            for size in sizes:
                for n in sources:
                    if proc == "noop":
                        count = max(n * 64, int(EST_TUPLES_PER_S[size] * args.seconds))
                    else:  # 2 channels x 50 tuples/s: a few seconds of processing
                        count = max(n * 20, 300)
                    count -= count % n
                    r = run_bench(args.bin, c, size, n, count, timeout=600)
                    r.update(size=size, sources=n)
                    rows.append(r)
                    print(json.dumps({"processor": proc, **r}), flush=True)
            if proc == "noop" and 6 * MiB in sizes:
                with tempfile.TemporaryDirectory() as tmp:
                    files = []
                    for i in range(160):
                        path = os.path.join(tmp, f"r{i:03d}.bin")
                        with open(path, "wb") as f:
                            f.write(os.urandom(6 * MiB))
                        files.append(path)
                    run_stream(args.bin, c, files[:8], 6 * MiB)  # warm the path
                    # Alternately, the same 160 tuples from files and from memory; the medians of 3 rounds.
                    streams, benches = [], []
                    for _ in range(3):
                        streams.append(run_stream(args.bin, c, files, 6 * MiB))
                        benches.append(run_bench(args.bin, c, 6 * MiB, 1, len(files), timeout=600))
                    s = sorted(streams, key=lambda r: r["mb_per_s"])[1]
                    b = sorted(benches, key=lambda r: r.get("mb_per_s", 0))[1]
                    s["bench_mb_per_s"] = b.get("mb_per_s", 0)
                    s["ratio_to_bench"] = s["mb_per_s"] / b["mb_per_s"] if b.get("mb_per_s") else 0
                    s["exactly_once"] = all(r["exactly_once"] for r in streams + benches)
                    res["stream"] = s
                    print(json.dumps({"stream": s}), flush=True)
        finally:
            c.close()
        res["hio"][proc] = rows
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "results.json"), "w") as f:
        json.dump(res, f, indent=1)
    md = markdown(res)
    with open(os.path.join(args.out, "results.md"), "w") as f:
        f.write(md)
    print(md)
    bad = [r for rows in res["hio"].values() for r in rows if not r.get("exactly_once")]
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
