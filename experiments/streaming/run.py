#!/usr/bin/python3
"""HarmonicIO's Table 3 on one machine: sequential against parallel streaming of the same tuples.

The sources run in their own network namespace, joined to the cluster by a veth pair, so their bytes cross
a real (virtual) link; with --limit the link is shaped with a token-bucket filter (`tc ... tbf`), as a
cluster's NIC would be. For each link: iperf3 single-stream and 4-stream (the ceilings, in the same run),
then the same N tuples sent by one source (sequential) and by 4 sources at once (parallel), each twice,
time from the first lease to the last tuple stored in the repository.

    /usr/bin/python3 experiments/streaming/run.py                      # needs root (ip netns, tc)
    HIO_BIN=build/bin /usr/bin/python3 experiments/streaming/run.py --count 120 --limits none,1gbit

Writes results.json next to this script (or --out) and prints a table.
"""
import argparse
import json
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "tests", "integration"))
from cluster import BIN, Cluster, get_json  # noqa: E402

NS, HOST_IF, NS_IF = "hio-src", "hio-veth0", "hio-veth1"
HOST_IP, NS_IP = "10.77.0.1", "10.77.0.2"


def sh(*argv, check=True):
    return subprocess.run(argv, check=check, capture_output=True, text=True)


def in_ns(*argv):
    return ["ip", "netns", "exec", NS, *argv]


def setup_link(limit):
    teardown_link()
    sh("ip", "netns", "add", NS)
    sh("ip", "link", "add", HOST_IF, "type", "veth", "peer", "name", NS_IF)
    sh("ip", "link", "set", NS_IF, "netns", NS)
    sh("ip", "addr", "add", f"{HOST_IP}/24", "dev", HOST_IF)
    sh("ip", "link", "set", HOST_IF, "up")
    sh(*in_ns("ip", "addr", "add", f"{NS_IP}/24", "dev", NS_IF))
    sh(*in_ns("ip", "link", "set", NS_IF, "up"))
    sh(*in_ns("ip", "link", "set", "lo", "up"))
    if limit != "none":
        # Shape what the sources send (egress of their end of the link).
        sh(*in_ns("tc", "qdisc", "add", "dev", NS_IF, "root", "tbf", "rate", limit, "burst", "4mb", "latency", "100ms"))


def teardown_link():
    sh("ip", "link", "del", HOST_IF, check=False)
    sh("ip", "netns", "del", NS, check=False)


def iperf(streams, seconds=4):
    server = subprocess.Popen(["iperf3", "-s", "-B", HOST_IP, "-1"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(0.5)
    try:
        out = sh(*in_ns("iperf3", "-c", HOST_IP, "-t", str(seconds), "-P", str(streams), "-J")).stdout
        return json.loads(out)["end"]["sum_received"]["bits_per_second"] / 8 / 1e6
    finally:
        server.wait(timeout=10)


def stored(c):
    return get_json(c.repository_url + "/v1/counts")["stored"]


def stream(c, sources, count, size):
    before = stored(c)
    t0 = time.time()
    out = subprocess.run(in_ns(os.path.join(BIN, "hio"), "bench", "--master", f"http://{HOST_IP}:{c.master_port}",
                               "--size", str(size), "--count", str(count), "--sources", str(sources)),
                         capture_output=True, text=True, timeout=900)
    assert out.returncode == 0, out.stdout + out.stderr
    while stored(c) < before + count:
        time.sleep(0.05)
        assert time.time() - t0 < 900, "tuples did not arrive"
    seconds = time.time() - t0
    return {"seconds": round(seconds, 2), "mb_per_s": round(count * size / seconds / 1e6, 1)}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=HERE)
    ap.add_argument("--count", type=int, default=100, help="tuples per run")
    ap.add_argument("--size", type=int, default=6 << 20, help="tuple bytes")
    ap.add_argument("--parallel", type=int, default=4, help="sources in the parallel runs")
    ap.add_argument("--limits", default="none,1gbit", help="link rates: none or a tc rate (e.g. 1gbit)")
    ap.add_argument("--repeats", type=int, default=2)
    args = ap.parse_args()
    if os.geteuid() != 0:
        print("needs root (ip netns, tc)")
        return 2
    results = []
    try:
        for limit in args.limits.split(","):
            setup_link(limit)
            c = Cluster(workers=2, channels=2, processor="noop",
                        master_args=["--host", "0.0.0.0", "--advertise-host", HOST_IP], worker_args=["--host", HOST_IP])
            try:
                row = {"link": limit, "iperf3_1_mb_per_s": round(iperf(1), 1),
                       f"iperf3_{args.parallel}_mb_per_s": round(iperf(args.parallel), 1), "runs": []}
                for _ in range(args.repeats):
                    row["runs"].append({"sequential": stream(c, 1, args.count, args.size),
                                        "parallel": stream(c, args.parallel, args.count, args.size)})
                results.append(row)
            finally:
                c.close()
    finally:
        teardown_link()
    load = os.getloadavg()
    doc = {"count": args.count, "size": args.size, "parallel_sources": args.parallel,
           "load_average": [round(x, 1) for x in load], "results": results}
    with open(os.path.join(args.out, "results.json"), "w") as f:
        json.dump(doc, f, indent=1)
    print(f"{args.count} tuples of {args.size / 1e6:.1f} MB; load average {load[0]:.1f}")
    print(f"{'link':>8} {'iperf3 1':>9} {'iperf3 P':>9} {'seq s':>7} {'seq MB/s':>9} {'par s':>7} {'par MB/s':>9}")
    for row in results:
        for run in row["runs"]:
            print(f"{row['link']:>8} {row['iperf3_1_mb_per_s']:>9} {row[f'iperf3_{args.parallel}_mb_per_s']:>9} "
                  f"{run['sequential']['seconds']:>7} {run['sequential']['mb_per_s']:>9} "
                  f"{run['parallel']['seconds']:>7} {run['parallel']['mb_per_s']:>9}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
