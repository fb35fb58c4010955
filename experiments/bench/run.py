#!/usr/bin/env python3
"""hio against a broker pipeline and the loopback ceilings, across tuple sizes and processing costs.

For every tuple size (500 B .. 50 MB) and processing cost per tuple (0, 10, 100 ms of busy-wait CPU), in
one run on this machine:
  - hio over TCP: a real repository, master and one worker with C channels (`noop` or `busy:MS`), fed by
    `hio bench` with C sources; a tuple counts once the repository holds its record (the source has its
    acknowledgement and, for tuples that went through the master's overflow queue, the repository's
    count has reached it),
  - hio over UCX (`hio bench --transport ucx`), where the build has it,
  - a ZeroMQ pipeline through one extra hop: hio-zmq-source (C sender threads) -> hio-zmq-broker ->
    hio-zmq-sink (C threads pinned like hio's channels, verifying XXH3 and burning the same CPU per tuple),
    acknowledged end to end back through the broker,
  - the ceilings: iperf3 single stream and ucx_perftest tag_bw (UCX_TLS=tcp and posix,cma), per size.
Every hio point is checked exactly once against the repository's counts (records and stored grew by the
number of tuples sent, nothing failed); every broker point against the source's per-tuple acknowledgements.
Writes results.csv, results.svg and results.md into --out (default: beside this script) and exits non-zero
if any point lost or duplicated a tuple.

Usage: experiments/bench/run.py [--quick] [--bin build/bin] [--out DIR] [--channels N] [--seconds S] [--report-only]
"""
import argparse
import csv
import json
import math
import os
import platform
import socket
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))

SIZES = [500, 1_000, 10_000, 100_000, 1_000_000, 5_000_000, 10_000_000, 50_000_000]
SIZES_100MS = [500, 10_000, 1_000_000, 10_000_000, 50_000_000]
QUICK = {0: [500, 100_000, 5_000_000], 10: [1_000, 1_000_000], 100: [1_000]}
# For choosing counts only (the run measures the real rates): rough rates of this 2-core machine.
EST_BYTES_PER_S = 1.5e9
EST_TUPLES_PER_S = 30_000
# One lease may cover a source's whole share of a point (the master's default is 4096 ids per lease).
MAX_SESSION_TUPLES = 1 << 20

FIELDS = ["system", "transport", "cost_ms", "size_bytes", "count", "sources", "channels", "session_tuples",
          "seconds", "tuples_per_s", "mb_per_s", "bound_tuples_per_s", "exactly_once", "acknowledged",
          "stored_in_repository", "distinct_ids", "via_queue", "resent_duplicates", "load1", "status"]


def human(size):
    for unit, div in (("MB", 1_000_000), ("KB", 1_000)):
        if size >= div:
            return f"{size / div:g} {unit}"
    return f"{size} B"


def free_ports(n):
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


class sizer:
    """Chooses the tuples of each point of one system so that it runs about `seconds`: the rate this
    system measured at that size without processing cost, else the previous (smaller) size's tuples/s
    capped by twice the best bandwidth so far, else rough rates; never above channels / cost."""

    def __init__(self, channels, seconds, minimum):
        self.channels, self.seconds, self.minimum = channels, seconds, minimum
        self.by_size = {}
        self.last_tps, self.best_bps = EST_TUPLES_PER_S, None

    def count(self, size, cost_ms):
        if size in self.by_size:
            rate = self.by_size[size]
        else:
            bandwidth = min(EST_BYTES_PER_S, 2 * self.best_bps) if self.best_bps else EST_BYTES_PER_S
            rate = min(self.last_tps, bandwidth / size)
        if cost_ms:
            rate = min(rate, self.channels * 1000 / cost_ms)
        return max(self.minimum, math.ceil(rate * self.seconds))

    def measured(self, row, size, cost_ms):
        if row.get("status") != "ok" or not row.get("tuples_per_s"):
            return
        self.last_tps = row["tuples_per_s"]
        self.best_bps = max(self.best_bps or 0, row["mb_per_s"] * 1e6)
        if not cost_ms:
            self.by_size[size] = row["tuples_per_s"]


def stop(proc):
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


# --- ceilings ---------------------------------------------------------------------------------------------

def iperf3(seconds):
    if not shutil_which("iperf3"):
        return None, "n/a (iperf3 not installed)"
    port = str(free_ports(1)[0])
    server = subprocess.Popen(["iperf3", "-s", "-1", "-p", port], stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    time.sleep(0.5)
    try:
        out = subprocess.run(["iperf3", "-c", "127.0.0.1", "-p", port, "-t", str(seconds), "-J"],
                             capture_output=True, text=True, timeout=seconds + 30)
    finally:
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            stop(server)
    if out.returncode != 0:
        return None, "error: " + (out.stderr or out.stdout).strip()[-200:]
    return json.loads(out.stdout)["end"]["sum_received"]["bits_per_second"] / 8, "ok"


def ucx_perftest(tls, size, seconds):
    """tag_bw between two ucx_perftest processes on loopback, for at most about 2 x `seconds` (ucx_perftest
    has no time limit: past it the client is stopped and its last per-second report is taken).
    Returns bytes/s, status."""
    if not shutil_which("ucx_perftest"):
        return None, "n/a (ucx_perftest not installed: apt-get install ucx-utils)"
    env = dict(os.environ, UCX_TLS=tls)
    iterations = str(max(50, min(1_000_000, int(EST_BYTES_PER_S * seconds / size))))
    limit = 2 * seconds + 3
    error = "no report"
    for attempt in range(2):
        port = str(free_ports(1)[0])
        server = subprocess.Popen(["ucx_perftest", "-p", port], env=env, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL)
        time.sleep(0.5 + attempt)
        with tempfile.TemporaryFile("w+") as log:
            client = subprocess.Popen(["ucx_perftest", "127.0.0.1", "-p", port, "-t", "tag_bw", "-s", str(size),
                                       "-n", iterations, "-w", "100"], env=env, stdout=log,
                                      stderr=subprocess.STDOUT, text=True)
            try:
                client.wait(timeout=limit)
                stopped = ""
            except subprocess.TimeoutExpired:
                stopped = f" (stopped after {limit:g} s)"
            stop(client)
            stop(server)
            log.seek(0)
            text = log.read()
        # Final: iterations, latency 50%/avg/overall (us), bandwidth avg/overall (MB/s = 2^20 B/s), ...
        # [thread 0] (a report per second): the same columns after two words.
        final = [l.split()[6] for l in text.splitlines() if l.startswith("Final:")]
        reports = [l.split()[7] for l in text.splitlines() if l.startswith("[thread 0]")]
        if final or reports:
            return float((final or reports)[-1]) * 1048576, "ok" + ("" if final else stopped)
        error = text.strip()[-200:] or "no report" + stopped
    return None, "error: " + error


def shutil_which(name):
    import shutil
    return shutil.which(name)


# --- hio ----------------------------------------------------------------------------------------------------

def repository_counts(cluster):
    import cluster as cl
    return cl.get_json(cluster.repository_url + "/v1/counts")


def records_after(cluster, cursor):
    """The repository's records stored after `cursor`, and the cursor of the last one."""
    import cluster as cl
    out = []
    while True:
        status, body = cl.http("GET", f"{cluster.repository_url}/v1/features?after={cursor}&limit=100000")
        assert status == 200, body[:200]
        lines = [json.loads(l) for l in body.decode().splitlines() if l.strip()]
        out += lines
        if lines:
            cursor = lines[-1]["cursor"]
        if len(lines) < 100000:
            return out, cursor


def hio_transports(bin_dir):
    """Transports `hio bench` offers: tcp always; ucx when it has --transport and the build has UCX."""
    out = subprocess.run([os.path.join(bin_dir, "hio"), "bench", "--help"], capture_output=True, text=True)
    has_flag = "--transport" in out.stdout
    return {"tcp": "ok", "ucx": "ok" if has_flag else "n/a (not built: hio bench has no --transport)"}


def run_hio(bin_dir, cluster, transport, size, count, sources, cost_ms, channels, timeout):
    session = min(MAX_SESSION_TUPLES, max(64, math.ceil(count / sources)))
    before = repository_counts(cluster)
    queued_before = cluster.status()["queue"]["enqueued_total"]
    _, cursor = records_after(cluster, getattr(cluster, "bench_cursor", 0))
    argv = [os.path.join(bin_dir, "hio"), "bench", "--master", cluster.master_url, "--size", str(size),
            "--count", str(count), "--sources", str(sources), "--session-tuples", str(session)]
    if transport != "tcp":
        argv += ["--transport", transport]
    row = {"system": "hio", "transport": transport, "session_tuples": session}
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return dict(row, status=f"error: hio bench timed out after {timeout} s", exactly_once="no")
    exited = time.time()
    lines = proc.stdout.strip().splitlines()
    if not lines:
        return dict(row, status="error: " + proc.stderr.strip()[-300:], exactly_once="no")
    out = json.loads(lines[-1])
    # Tuples acknowledged as queued are stored once a channel takes them from the master's queue: the
    # point ends when the repository holds every record.
    waited = 0.0
    deadline = exited + 60 + count * cost_ms / 1000 / channels
    while True:
        now = repository_counts(cluster)
        if now["records"] - before["records"] >= count or time.time() > deadline:
            break
        time.sleep(0.02)
        waited = time.time() - exited
    seconds = out["seconds"] + waited
    records = now["records"] - before["records"]
    stored = now["stored"] - before["stored"]
    failed = now["failed"] - before["failed"]
    via_queue = cluster.status()["queue"]["enqueued_total"] - queued_before
    # Independently of the counters: the records themselves, one per tuple id, each stored.
    new, cluster.bench_cursor = records_after(cluster, cursor)
    distinct = len({r["id"] for r in new})
    all_stored = all(r["status"] == "stored" for r in new)
    ok = (proc.returncode == 0 and out["tuples"] == count and out["errors"] == 0 and records == count
          and stored == count and failed == 0 and len(new) == count and distinct == count and all_stored)
    status = "ok" if ok else (f"error: acknowledged {out['tuples']}, errors {out['errors']}, records {records}, "
                              f"stored {stored}, failed {failed}, new records {len(new)} with {distinct} ids; "
                              f"{proc.stderr.strip()[-200:]}")
    return dict(row, seconds=seconds, tuples_per_s=stored / seconds, mb_per_s=stored * size / seconds / 1e6,
                exactly_once="yes" if ok else "no", acknowledged=out["tuples"], stored_in_repository=stored,
                distinct_ids=distinct, via_queue=via_queue,
                resent_duplicates=now["duplicates"] - before["duplicates"], status=status)


# --- the ZeroMQ broker pipeline -----------------------------------------------------------------------------

class zmq_pipeline:
    """hio-zmq-broker and hio-zmq-sink running; sources are run per point."""

    def __init__(self, bin_dir, channels, cost_ms, workdir):
        self.bin_dir = bin_dir
        p = free_ports(4)
        self.data_in, self.data_out, self.acks_in, self.acks_out = (f"tcp://127.0.0.1:{x}" for x in p)
        self.log = open(os.path.join(workdir, f"zmq-{cost_ms}.log"), "ab")
        self.broker = subprocess.Popen([os.path.join(bin_dir, "hio-zmq-broker"), "--in", self.data_in,
                                        "--out", self.data_out, "--acks-in", self.acks_in,
                                        "--acks-out", self.acks_out], stdout=self.log, stderr=subprocess.STDOUT)
        ready = os.path.join(workdir, f"zmq-sink-{cost_ms}.ready")
        self.sink = subprocess.Popen([os.path.join(bin_dir, "hio-zmq-sink"), "--from", self.data_out,
                                      "--acks", self.acks_in, "--threads", str(channels),
                                      "--busy-ms", str(cost_ms), "--ready-file", ready],
                                     stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.time() + 20
        while not os.path.exists(ready):
            if time.time() > deadline or self.sink.poll() is not None or self.broker.poll() is not None:
                self.close()
                raise RuntimeError("the ZeroMQ broker or sink did not start; see " + self.log.name)
            time.sleep(0.05)

    def run(self, size, count, sources, timeout):
        argv = [os.path.join(self.bin_dir, "hio-zmq-source"), "--broker", self.data_in, "--acks", self.acks_out,
                "--size", str(size), "--count", str(count), "--sources", str(sources),
                "--timeout-s", str(int(timeout))]
        row = {"system": "zmq-broker", "transport": "tcp"}
        try:
            proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout + 30)
        except subprocess.TimeoutExpired:
            return dict(row, status="error: hio-zmq-source timed out", exactly_once="no")
        lines = proc.stdout.strip().splitlines()
        if not lines:
            return dict(row, status="error: " + proc.stderr.strip()[-300:], exactly_once="no")
        out = json.loads(lines[-1])
        ok = proc.returncode == 0 and out["tuples"] == count and out["duplicates"] == 0 and out["errors"] == 0
        status = "ok" if ok else (f"error: processed {out['tuples']}, missing {out['missing']}, duplicates "
                                  f"{out['duplicates']}, errors {out['errors']}")
        return dict(row, seconds=out["seconds"], tuples_per_s=out["tuples_per_s"],
                    mb_per_s=out["bytes_per_s"] / 1e6, exactly_once="yes" if ok else "no",
                    acknowledged=out["tuples"], stored_in_repository="", resent_duplicates=out["duplicates"],
                    status=status)

    def close(self):
        for p in (self.sink, self.broker):
            stop(p)
        self.log.close()


# --- report -------------------------------------------------------------------------------------------------

def machine():
    model = "unknown"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    with open("/proc/meminfo") as f:
        mem_kb = int(f.readline().split()[1])
    return {"cpu": model, "cores": os.cpu_count(), "memory_gb": round(mem_kb / 1e6, 1),
            "kernel": platform.release(), "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}


def fmt(v, digits=0):
    if v in ("", None):
        return "–"
    return f"{v:,.{digits}f}"


def markdown(rows, info, command):
    ceil = {(r["system"], r["transport"], r["size_bytes"]): r for r in rows if r["cost_ms"] == ""}
    iperf = next((r for r in rows if r["system"] == "iperf3"), None)
    iperf_mb = iperf["mb_per_s"] if iperf and iperf["status"].startswith("ok") else None
    lines = [f"Command: `{command}`", "",
             f"Machine: {info['cpu']}, {info['cores']} cores, {info['memory_gb']} GB, Linux {info['kernel']}; "
             f"{info['date']}; load average (1 min) {info['load_start']:.2f} at the start, "
             f"{info['load_end']:.2f} at the end, {info['load_min']:.2f}–{info['load_max']:.2f} over the points; "
             f"whole run {info['wall_s']:.0f} s.", ""]
    lines.append("Ceilings (same run): iperf3 single stream " + (f"{iperf_mb:,.0f} MB/s" if iperf_mb else
                                                                 (iperf["status"] if iperf else "not run")))
    for name, system, transport in (("hio over UCX", "hio", "ucx"), ("ZeroMQ broker", "zmq-broker", "tcp")):
        statuses = {r["status"] for r in rows if (r["system"], r["transport"]) == (system, transport)}
        if statuses and all(st.startswith("n/a") for st in statuses):
            lines[-1] += f"; {name}: {', '.join(sorted(statuses))}"
    lines[-1] += "."
    lines.append("")
    for cost in sorted({r["cost_ms"] for r in rows if r["cost_ms"] != ""}):
        pts = [r for r in rows if r["cost_ms"] == cost]
        bound = pts[0]["bound_tuples_per_s"]
        lines.append(f"### Processing {cost} ms per tuple" +
                     (f" (bound: {pts[0]['channels']} channels / {cost / 1000:g} s = {bound:,.0f} tuples/s)"
                      if bound != "" else ""))
        lines.append("")
        lines.append("| size | hio TCP tuples/s | hio TCP MB/s | hio UCX MB/s | broker tuples/s | broker MB/s | "
                     "hio / broker | hio / iperf3 | hio / ucx_perftest tcp | ucx_perftest tcp, posix+cma MB/s "
                     "| hio via queue | exactly once |")
        lines.append("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
        for size in sorted({r["size_bytes"] for r in pts}):
            at = {(r["system"], r["transport"]): r for r in pts if r["size_bytes"] == size}
            h, u, z = at.get(("hio", "tcp")), at.get(("hio", "ucx")), at.get(("zmq-broker", "tcp"))

            def val(r, key, digits=0):
                if not r:
                    return "–"
                if r["status"] != "ok" and r.get(key, "") == "":
                    return "error" if r["status"].startswith("error") else r["status"].split(" (")[0]
                return fmt(r.get(key, ""), digits)

            ut, uc = ceil.get(("ucx_perftest", "tcp", size)), ceil.get(("ucx_perftest", "posix,cma", size))
            ratio = lambda a, b: f"{a / b:.2f}" if a not in ("", None) and b not in ("", None, 0) else "–"
            hm = h.get("mb_per_s", "") if h else ""
            queued = f"{h['via_queue']:,} / {h['count']:,}" if h and h.get("via_queue", "") != "" else "–"
            once = ", ".join(f"{n}: {r['exactly_once']}" for n, r in (("hio", h), ("ucx", u), ("broker", z))
                             if r and r.get("exactly_once") in ("yes", "no"))
            lines.append(f"| {human(size)} | {val(h, 'tuples_per_s')} | {val(h, 'mb_per_s', 1)} | "
                         f"{val(u, 'mb_per_s', 1)} | {val(z, 'tuples_per_s')} | {val(z, 'mb_per_s', 1)} | "
                         f"{ratio(hm, z.get('mb_per_s', '') if z else '')} | {ratio(hm, iperf_mb)} | "
                         f"{ratio(hm, ut['mb_per_s'] if ut and ut['status'].startswith('ok') else '')} | "
                         f"{val(ut, 'mb_per_s')}, {val(uc, 'mb_per_s')} | {queued} | {once} |")
        lines.append("")
    return "\n".join(lines)


def plot(rows, path):
    try:
        import matplotlib
        matplotlib.use("Agg")
        matplotlib.rcParams["svg.fonttype"] = "none"  # text as text: a small, greppable SVG
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib not installed (apt-get install python3-matplotlib): no plot", file=sys.stderr)
        return False
    costs = sorted({r["cost_ms"] for r in rows if r["cost_ms"] != ""})
    fig, axes = plt.subplots(2, len(costs), figsize=(5.2 * len(costs), 8.5), squeeze=False, sharex=True)
    styles = {("hio", "tcp"): ("hio TCP", "C0", "o"), ("hio", "ucx"): ("hio UCX", "C2", "s"),
              ("zmq-broker", "tcp"): ("ZeroMQ via broker", "C3", "^")}
    ceilings = {("iperf3", "tcp"): ("iperf3 (1 stream)", "0.4", "--"),
                ("ucx_perftest", "tcp"): ("ucx_perftest tcp", "C1", ":"),
                ("ucx_perftest", "posix,cma"): ("ucx_perftest posix,cma", "C4", ":")}
    for col, cost in enumerate(costs):
        top, bottom = axes[0][col], axes[1][col]
        for key, (label, color, marker) in styles.items():
            pts = sorted((r for r in rows if r["cost_ms"] == cost and (r["system"], r["transport"]) == key
                          and r.get("mb_per_s", "") != ""), key=lambda r: r["size_bytes"])
            if pts:
                xs = [r["size_bytes"] for r in pts]
                top.plot(xs, [r["mb_per_s"] for r in pts], marker=marker, color=color, label=label)
                bottom.plot(xs, [r["tuples_per_s"] for r in pts], marker=marker, color=color, label=label)
        for key, (label, color, ls) in ceilings.items():
            pts = sorted((r for r in rows if r["cost_ms"] == "" and (r["system"], r["transport"]) == key
                          and r["status"].startswith("ok")), key=lambda r: r["size_bytes"] or 0)
            if not pts:
                continue
            if key[0] == "iperf3":
                top.axhline(pts[0]["mb_per_s"], color=color, ls=ls, label=label)
            else:
                top.plot([r["size_bytes"] for r in pts], [r["mb_per_s"] for r in pts], color=color, ls=ls,
                         marker="x", markersize=4, label=label)
        bound = next((r["bound_tuples_per_s"] for r in rows if r["cost_ms"] == cost), "")
        if bound != "":
            bottom.axhline(bound, color="0.4", ls="--", label=f"channels / {cost} ms")
        top.set_title(f"{cost} ms processing per tuple")
        for ax in (top, bottom):
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.grid(True, which="both", alpha=0.3)
            ax.set_xlabel("tuple size (bytes)")
        top.set_ylabel("MB/s, end to end")
        bottom.set_ylabel("tuples/s, end to end")
        top.legend(fontsize=7)
        bottom.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path)
    return True


# --- main ---------------------------------------------------------------------------------------------------

def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="a smoke run: few sizes, small counts (< 1 min)")
    ap.add_argument("--bin", default=os.path.join(ROOT, "build", "bin"))
    ap.add_argument("--out", help="folder for results.csv/.svg/.md (default: beside this script; "
                                  "--quick: a new temporary folder)")
    ap.add_argument("--channels", type=int, default=os.cpu_count() or 2,
                    help="hio channels = broker sink threads = sources (default: one per core)")
    ap.add_argument("--seconds", type=float, default=None,
                    help="target seconds per point, used to choose counts (default 3; --quick 0.3)")
    ap.add_argument("--no-ceilings", action="store_true")
    ap.add_argument("--report-only", action="store_true",
                    help="rewrite results.md and results.svg from results.json in --out, measuring nothing")
    args = ap.parse_args()
    if args.report_only:
        out_dir = args.out or HERE
        with open(os.path.join(out_dir, "results.json")) as f:
            saved = json.load(f)
        return report(saved["rows"], saved["machine"], saved["command"], out_dir)
    bin_dir = os.path.abspath(args.bin)
    os.environ["HIO_BIN"] = bin_dir
    import cluster  # after HIO_BIN is set

    out_dir = args.out or (tempfile.mkdtemp(prefix="hio-bench-") if args.quick else HERE)
    os.makedirs(out_dir, exist_ok=True)
    workdir = tempfile.mkdtemp(prefix="hio-bench-logs-")
    seconds = args.seconds or (0.3 if args.quick else 3.0)
    minimum = 2 * args.channels if args.quick else 4 * args.channels
    channels = sources = args.channels
    plan = QUICK if args.quick else {0: SIZES, 10: SIZES, 100: SIZES_100MS}

    started = time.time()
    info = machine()
    info["load_start"] = os.getloadavg()[0]
    loads = []
    rows = []

    def add(row):
        row["load1"] = round(os.getloadavg()[0], 2)
        loads.append(row["load1"])
        rows.append(row)
        tps = f"{row['tuples_per_s']:>10,.0f} tuples/s" if row.get("tuples_per_s", "") != "" else f"{'':19}"
        mbs = f"{row['mb_per_s']:>9,.1f} MB/s" if row.get("mb_per_s", "") != "" else f"{'':14}"
        speed = f"{tps} {mbs}"
        print(f"{row['system']:>12} {row['transport']:>9} {str(row['cost_ms']):>4} ms {human(row['size_bytes']) if row['size_bytes'] != '' else '':>7}"
              f" {speed}  {row['status']}", flush=True)

    # Ceilings first, on an idle pipeline.
    if not args.no_ceilings:
        bps, status = iperf3(1 if args.quick else 5)
        add({"system": "iperf3", "transport": "tcp", "cost_ms": "", "size_bytes": "", "status": status,
             "mb_per_s": bps / 1e6 if bps else "", "tuples_per_s": ""})
        for tls in ("tcp", "posix,cma"):
            for size in ([1_000_000] if args.quick else SIZES):
                bps, status = ucx_perftest(tls, size, 0.2 if args.quick else 1.0)
                add({"system": "ucx_perftest", "transport": tls, "cost_ms": "", "size_bytes": size,
                     "status": status, "mb_per_s": bps / 1e6 if bps else "", "tuples_per_s": bps / size if bps else ""})
                if status.startswith("n/a"):
                    break

    transports = hio_transports(bin_dir)
    sizers = {}
    zmq_built = all(os.path.exists(os.path.join(bin_dir, f"hio-zmq-{r}")) for r in ("source", "broker", "sink"))
    for cost, sizes in plan.items():
        bound = channels * 1000 / cost if cost else ""
        base = {"cost_ms": cost, "channels": channels, "sources": sources, "bound_tuples_per_s": bound}
        timeout_of = lambda count: 120 + 3 * count * cost / 1000 / channels + count * 1e-4
        for transport, available in transports.items():
            if available != "ok":
                for size in sizes:
                    add(dict(base, system="hio", transport=transport, size_bytes=size, status=available))
                continue
            size_for = sizers.setdefault(("hio", transport), sizer(channels, seconds, minimum))
            c = cluster.Cluster(workers=1, channels=channels, processor=f"busy:{cost}" if cost else "noop",
                                master_args=["--max-session-tuples", str(MAX_SESSION_TUPLES)])
            try:
                for size in sizes:
                    count = size_for.count(size, cost)
                    row = run_hio(bin_dir, c, transport, size, count, sources, cost, channels, timeout_of(count))
                    add(dict(base, size_bytes=size, count=count, **row))
                    size_for.measured(row, size, cost)
            finally:
                c.close()
        if not zmq_built:
            for size in sizes:
                add(dict(base, system="zmq-broker", transport="tcp", size_bytes=size,
                         status="n/a (not built: no cppzmq)"))
            continue
        size_for = sizers.setdefault(("zmq-broker", "tcp"), sizer(channels, seconds, minimum))
        z = zmq_pipeline(bin_dir, channels, cost, workdir)
        try:
            for size in sizes:
                count = size_for.count(size, cost)
                row = z.run(size, count, sources, timeout_of(count))
                add(dict(base, size_bytes=size, count=count, **row))
                size_for.measured(row, size, cost)
        finally:
            z.close()

    info["load_end"] = os.getloadavg()[0]
    info["load_min"], info["load_max"] = min(loads), max(loads)
    info["wall_s"] = time.time() - started
    command = ("experiments/bench/run.py " + " ".join(a for a in sys.argv[1:])).strip()
    with open(os.path.join(out_dir, "results.csv"), "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=FIELDS, extrasaction="ignore")
        w.writeheader()
        for r in rows:
            w.writerow({k: (round(v, 3) if isinstance(v, float) else v) for k, v in r.items()})
    with open(os.path.join(out_dir, "results.json"), "w") as f:
        json.dump({"machine": info, "command": command, "rows": rows}, f, indent=1)
    return report(rows, info, command, out_dir)


def report(rows, info, command, out_dir):
    """Writes results.md and results.svg; non-zero when a point lost or duplicated a tuple."""
    text = markdown(rows, info, command)
    with open(os.path.join(out_dir, "results.md"), "w") as f:
        f.write(text + "\n")
    plot(rows, os.path.join(out_dir, "results.svg"))
    print(text)
    print(f"results in {out_dir}")

    broken = [r for r in rows if r.get("exactly_once") == "no"]
    for r in broken:
        print(f"NOT EXACTLY ONCE: {r['system']} {r['transport']} {r['cost_ms']} ms {human(r['size_bytes'])}: "
              f"{r['status']}", file=sys.stderr)
    return 1 if broken else 0


if __name__ == "__main__":
    sys.exit(main())
