#!/usr/bin/env python3
"""Per-tuple costs of the TCP data path, end to end, for 6 MB and 1 KB tuples.

Starts a real repository, master and one worker (two `noop` channels by default) on loopback, as the
integration tests do, and drives them with `hio bench` as the source. For each path it measures, per
tuple and per process (source, master, worker, repository):

  counts   syscalls (perf stat on the syscalls tracepoints: the total and the ones that matter here),
           context switches, heap allocations and bytes memcpy'd/memmove'd in user space (alloc_count.so,
           an LD_PRELOAD counter built from alloc_count.c beside this script);
  profile  (--profile) a CPU profile per process with perf record, and its top functions;
  rates    (--rates) the end-to-end rates without any instrumentation, with iperf3 in the same run.

Counts do not depend on machine load except where the path adapts to timing (how many tuples a batch
holds, how often a thread sleeps): those are marked in the README.

Usage: experiments/profile/run.py [--bin build/bin] [--label NAME] [--counts] [--profile] [--rates]
       [--quick]   (no mode flag: --counts --rates)
Writes (adds to) results-<label>.json, and with --profile profile-<label>/, beside this script.
"""
import argparse
import glob
import importlib.util
import json
import os
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))

SYSCALLS = ["read", "write", "readv", "writev", "recvfrom", "recvmsg", "sendto", "sendmsg", "epoll_wait",
            "epoll_ctl", "poll", "ppoll", "ioctl", "futex", "fsync", "fdatasync", "pwrite64", "pread64",
            "openat", "close", "clock_nanosleep", "nanosleep", "sched_yield", "mmap", "munmap", "madvise",
            "brk", "accept4", "connect", "socket", "timerfd_settime", "lseek", "rename", "getsockname"]
EVENTS = ["task-clock", "raw_syscalls:sys_enter", "context-switches"] + [f"syscalls:sys_enter_{s}" for s in SYSCALLS]

PATHS = {
    # name: bench arguments, (quick count, full count)
    "6mb": (["--size", str(6 << 20)], (40, 300)),
    "1kb": (["--size", "1024", "--session-tuples", "4096"], (20000, 100000)),
}


def build_counter(out_dir):
    so = os.path.join(out_dir, "alloc_count.so")
    subprocess.run(["cc", "-O2", "-shared", "-fPIC", "-o", so, os.path.join(HERE, "alloc_count.c"), "-lpthread"],
                   check=True)
    return so


def uptime():
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def read_counts(prof_dir, pid):
    path = os.path.join(prof_dir, f"{pid}.txt")
    out = {}
    with open(path) as f:
        for line in f:
            k, v = line.split()
            out[k] = v if k == "comm" else int(v)
    return out


def perf_stat_attach(pid, out):
    return subprocess.Popen(["perf", "stat", "-x", ",", "-o", out, "-e", ",".join(EVENTS), "-p", str(pid)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def parse_perf_stat(path):
    counts = {}
    with open(path) as f:
        for line in f:
            parts = line.strip().split(",")
            if len(parts) < 3 or not parts[0].replace(".", "").isdigit():
                continue
            name = parts[2]
            if name.startswith("syscalls:sys_enter_"):
                name = name[len("syscalls:sys_enter_"):]
            elif name == "raw_syscalls:sys_enter":
                name = "syscalls"
            counts[name] = counts.get(name, 0) + float(parts[0])  # task-clock: CPU milliseconds
    return counts


def bench_cmd(bin_dir, master, path, count):
    args, _ = PATHS[path]
    return [os.path.join(bin_dir, "hio"), "bench", "--master", master, *args, "--count", str(count)]


def last_json(text):
    return json.loads(text.strip().splitlines()[-1])


def start_cluster(cluster, channels, processor, env_extra):
    saved = dict(os.environ)
    os.environ.update(env_extra)
    try:
        return cluster.Cluster(workers=1, channels=channels, processor=processor)
    finally:
        os.environ.clear()
        os.environ.update(saved)


def measure_counts(args, cluster, so, tmp):
    prof_dir = os.path.join(tmp, "counts")
    os.makedirs(prof_dir)
    env = {"LD_PRELOAD": so, "HIO_PROF_DIR": prof_dir}
    c = start_cluster(cluster, args.channels, args.processor, env)
    results = {}
    try:
        servers = {"master": c.master.proc.pid, "worker": c.workers[0].proc.pid,
                   "repository": c.repository.proc.pid}
        # Warm up: connections, threads and buffers that live for the whole run exist before counting.
        subprocess.run(bench_cmd(args.bin, c.master_url, "6mb", 4), check=True, capture_output=True)
        subprocess.run(bench_cmd(args.bin, c.master_url, "1kb", 2000), check=True, capture_output=True)
        for path in args.paths:
            count = PATHS[path][1][0 if args.quick else 1]
            time.sleep(0.5)
            before = {n: read_counts(prof_dir, pid) for n, pid in servers.items()}
            perfs = {n: perf_stat_attach(pid, os.path.join(tmp, f"{path}-{n}.perf")) for n, pid in servers.items()}
            time.sleep(0.5)  # perf has attached
            source_perf = os.path.join(tmp, f"{path}-source.perf")
            source_dir = os.path.join(tmp, f"{path}-source")
            os.makedirs(source_dir)
            load = uptime()
            t0 = time.time()
            out = subprocess.run(["perf", "stat", "-x", ",", "-o", source_perf, "-e", ",".join(EVENTS), "--",
                                  "env", f"LD_PRELOAD={so}", f"HIO_PROF_DIR={source_dir}",
                                  *bench_cmd(args.bin, c.master_url, path, count)],
                                 check=True, capture_output=True, text=True)
            wall = time.time() - t0
            bench = last_json(out.stdout)
            time.sleep(0.5)  # acks and the last drain batches settle; the counter files are rewritten
            for p in perfs.values():
                p.send_signal(signal.SIGINT)
            for p in perfs.values():
                p.wait(timeout=30)
            after = {n: read_counts(prof_dir, pid) for n, pid in servers.items()}
            src_files = [f for f in glob.glob(os.path.join(source_dir, "*.txt")) if not f.endswith(".tmp")]
            src = max((read_counts(source_dir, os.path.basename(f)[:-4]) for f in src_files),
                      key=lambda d: d["allocs"])  # the bench itself, not `env`
            tuples = bench["tuples"]
            per = {}
            for name in ["source", "master", "worker", "repository"]:
                if name == "source":
                    alloc = {k: v for k, v in src.items() if k != "comm"}
                    sc = parse_perf_stat(source_perf)
                else:
                    alloc = {k: after[name][k] - before[name][k] for k in after[name] if k != "comm"}
                    sc = parse_perf_stat(os.path.join(tmp, f"{path}-{name}.perf"))
                row = {k: v / tuples for k, v in alloc.items()}
                row.update({k: v / tuples for k, v in sc.items()})
                row["totals"] = {**alloc, **sc}
                per[name] = row
            results[path] = {"bench": bench, "load_before": load, "wall_s": wall, "per_tuple": per,
                             "command": " ".join(bench_cmd("build/bin", "$MASTER", path, count))}
    finally:
        c.close()
    return results


def measure_profile(args, cluster, tmp, label):
    out_dir = os.path.join(HERE, f"profile-{label}")
    os.makedirs(out_dir, exist_ok=True)
    c = start_cluster(cluster, args.channels, args.processor, {})
    tops = {}
    try:
        servers = {"master": c.master.proc.pid, "worker": c.workers[0].proc.pid,
                   "repository": c.repository.proc.pid}
        subprocess.run(bench_cmd(args.bin, c.master_url, "1kb", 2000), check=True, capture_output=True)
        for path in args.paths:
            count = PATHS[path][1][0 if args.quick else 1]
            data = {n: os.path.join(tmp, f"{path}-{n}.data") for n in list(servers) + ["source"]}
            recs = {n: subprocess.Popen(["perf", "record", "-F", "999", "-g", "-o", data[n], "-p", str(pid)],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                    for n, pid in servers.items()}
            time.sleep(0.5)
            subprocess.run(["perf", "record", "-F", "999", "-g", "-o", data["source"], "--",
                            *bench_cmd(args.bin, c.master_url, path, count)],
                           check=True, capture_output=True)
            time.sleep(0.3)
            for p in recs.values():
                p.send_signal(signal.SIGINT)
            for p in recs.values():
                p.wait(timeout=60)
            tops[path] = {}
            for n, f in data.items():
                rep = subprocess.run(["perf", "report", "-i", f, "--stdio", "--no-children", "--sort", "dso,sym",
                                      "-g", "none", "--percent-limit", "1.5"],
                                     capture_output=True, text=True).stdout
                lines = [l.rstrip() for l in rep.splitlines() if l.strip() and not l.startswith("#")]
                tops[path][n] = lines[:15]
                with open(os.path.join(out_dir, f"{path}-{n}.txt"), "w") as fh:
                    fh.write(rep)
    finally:
        c.close()
    return tops


def iperf3(seconds):
    """Single-stream loopback iperf3, bytes/s: the throughput experiment's own measurement."""
    spec = importlib.util.spec_from_file_location(
        "throughput_run", os.path.join(HERE, "..", "throughput", "run.py"))
    throughput = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(throughput)
    return throughput.iperf3(seconds)


def measure_rates(args, cluster):
    out = {"load_before": uptime(), "iperf3_bytes_per_s": iperf3(3)}
    c = start_cluster(cluster, args.channels, args.processor, {})
    try:
        big = 100 if args.quick else 1000
        small = 20000 if args.quick else 200000
        r = subprocess.run(bench_cmd(args.bin, c.master_url, "6mb", big), check=True, capture_output=True, text=True)
        out["6mb"] = last_json(r.stdout)
        r = subprocess.run(bench_cmd(args.bin, c.master_url, "1kb", small), check=True, capture_output=True,
                           text=True)
        out["1kb"] = last_json(r.stdout)
    finally:
        c.close()
    out["load_after"] = uptime()
    out["ratio_6mb_to_iperf3"] = out["6mb"]["bytes_per_s"] / out["iperf3_bytes_per_s"]
    return out


def measure_compare(args, cluster):
    """Rates of several builds, interleaved round by round so that they share the machine's load."""
    bins = [os.path.abspath(b) for b in args.compare.split(",")]
    rounds = []
    for r in range(args.rounds):
        row = {"load": uptime(), "iperf3_bytes_per_s": iperf3(3), "builds": {}}
        for b in bins:
            os.environ["HIO_BIN"] = b
            cluster.BIN = b
            c = start_cluster(cluster, args.channels, args.processor, {})
            try:
                big = 100 if args.quick else 1000
                small = 20000 if args.quick else 200000
                out = {}
                for path, count in (("6mb", big), ("1kb", small)):
                    if path not in args.paths:
                        continue
                    res = subprocess.run(bench_cmd(b, c.master_url, path, count), check=True, capture_output=True,
                                         text=True)
                    out[path] = last_json(res.stdout)
            finally:
                c.close()
            row["builds"][b] = out
            line = f"round {r + 1} {b}:"
            if "6mb" in out:
                share = 100 * out["6mb"]["bytes_per_s"] / row["iperf3_bytes_per_s"]
                line += (f" 6 MB {out['6mb']['bytes_per_s'] / 1e9:.2f} GB/s ({share:.0f} % of iperf3 "
                         f"{row['iperf3_bytes_per_s'] / 1e9:.2f})")
            if "1kb" in out:
                line += (f" 1 KB {out['1kb']['tuples_per_s']:.0f}/s processed, "
                         f"{out['1kb']['tuples'] / out['1kb']['seconds_acknowledged']:.0f}/s acknowledged")
            print(line + f", load {row['load']}", flush=True)
        rounds.append(row)
    return rounds


def print_counts(results):
    cols = ["task-clock", "syscalls", "sendmsg", "sendto", "recvfrom", "recvmsg", "read", "write", "writev", "epoll_wait",
            "ioctl", "futex", "fdatasync", "fsync", "context-switches", "allocs", "copy_bytes", "big_copies"]
    for path, r in results.items():
        b = r["bench"]
        print(f"\n{path}: {b['tuples']} tuples, {b['via_queue']} via the queue, {b['tuples_per_s']:.0f} tuples/s "
              f"(instrumented), load {r['load_before']}")
        print("process     " + " ".join(f"{c[:10]:>10}" for c in cols))
        for name, row in r["per_tuple"].items():
            print(f"{name:11} " + " ".join(f"{row.get(c, 0):10.3f}" for c in cols))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default=os.path.join(ROOT, "build", "bin"))
    ap.add_argument("--label", default="run")
    ap.add_argument("--channels", type=int, default=2)
    ap.add_argument("--processor", default="noop")
    ap.add_argument("--paths", default="6mb,1kb")
    ap.add_argument("--counts", action="store_true")
    ap.add_argument("--profile", action="store_true")
    ap.add_argument("--rates", action="store_true")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--compare", help="comma-separated bin folders: their rates, interleaved over --rounds")
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    args.bin = os.path.abspath(args.bin)
    args.paths = args.paths.split(",")
    if not (args.counts or args.profile or args.rates or args.compare):
        args.counts = args.rates = True
    os.environ["HIO_BIN"] = args.bin
    import cluster  # after HIO_BIN is set

    results = {"date": time.strftime("%Y-%m-%d %H:%M"), "label": args.label, "processor": args.processor,
               "channels": args.channels}
    with tempfile.TemporaryDirectory(prefix="hio-prof-") as tmp:
        so = build_counter(tmp)
        if args.counts:
            results["counts"] = measure_counts(args, cluster, so, tmp)
            print_counts(results["counts"])
        if args.profile:
            results["profile"] = measure_profile(args, cluster, tmp, args.label)
            for path, procs in results["profile"].items():
                for n, lines in procs.items():
                    print(f"\n{path} {n}:")
                    print("\n".join(lines[:10]))
        if args.compare:
            results["compare"] = measure_compare(args, cluster)
        if args.rates:
            results["rates"] = measure_rates(args, cluster)
            r = results["rates"]
            print(f"\nrates (load {r['load_before']} -> {r['load_after']}): iperf3 {r['iperf3_bytes_per_s'] / 1e9:.2f} GB/s, "
                  f"6 MB {r['6mb']['bytes_per_s'] / 1e9:.2f} GB/s = {100 * r['ratio_6mb_to_iperf3']:.0f} %, "
                  f"1 KB {r['1kb']['tuples_per_s']:.0f}/s processed ({r['1kb']['via_queue']} via the queue, "
                  f"{r['1kb']['tuples'] / r['1kb']['seconds_acknowledged']:.0f}/s acknowledged)")
    name = f"results-{args.label}.json"
    try:  # runs of one label in several steps (--counts, then --profile, ...) add to one file
        with open(os.path.join(HERE, name)) as f:
            results = {**json.load(f), **results}
    except (OSError, ValueError):
        pass
    with open(os.path.join(HERE, name), "w") as f:
        json.dump(results, f, indent=2)
    print(f"\nwrote {name}")


if __name__ == "__main__":
    main()
