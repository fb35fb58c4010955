#!/usr/bin/python3
"""Times the repository's store, SQLite against PostgreSQL in the same run, through the store API
(hio-repository-bench, no REST): stored records per second at 1 KiB and 6 MiB records, and the cost of
discovery's incremental read (since) at 10^4, 10^5 and 10^6 stored records of 1 KiB (10^6: 200 B).
PostgreSQL is a throwaway server on loopback (tests/integration/postgres.py), a fresh schema per phase.

Usage: experiments/repository/run.py [--build DIR] [--quick]
Writes results.json next to this script and prints a Markdown table.
"""
import argparse
import json
import os
import pathlib
import shutil
import subprocess
import sys
import tempfile

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parent.parent
sys.path.insert(0, str(ROOT / "tests" / "integration"))
from postgres import Postgres  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default=str(ROOT / "build"))
    ap.add_argument("--quick", action="store_true", help="smaller counts, a smoke run")
    a = ap.parse_args()
    subprocess.run(["ninja", "-C", a.build, "hio-repository-bench"], check=True, stdout=subprocess.DEVNULL)
    bench = os.path.join(a.build, "bin", "hio-repository-bench")
    q = a.quick
    put_phases = [(1024, 2000 if q else 20000, 100), (6 << 20, 5 if q else 40, 1)]
    since_phases = [(10**4, 1024), (10**5, 1024)] + ([] if q else [(10**6, 200)])

    pg = Postgres.start()
    tmp = tempfile.mkdtemp(prefix="hio-repo-bench-")
    results = []
    try:
        counter = 0

        def stores():
            nonlocal counter
            counter += 1
            schema = f"bench_{counter}"
            pg.psql(f"DROP SCHEMA IF EXISTS {schema} CASCADE; CREATE SCHEMA {schema}")
            d = os.path.join(tmp, f"sqlite_{counter}")
            return [("sqlite", "", d), ("postgres", f"{pg.conninfo} options='-csearch_path={schema}'", d + "-unused")]

        def run(backend, argv):
            out = subprocess.run([bench, *argv], check=True, capture_output=True, text=True).stdout
            r = json.loads(out.strip().splitlines()[-1])
            r["backend"] = backend
            print(json.dumps(r), flush=True)
            results.append(r)

        for bytes_, count, batch in put_phases:
            for backend, store, d in stores():
                run(backend, ["put", store, d, str(bytes_), str(count), str(batch)])
        for n, bytes_ in since_phases:
            for backend, store, d in stores():
                run(backend, ["since", store, d, str(n), str(bytes_)])
    finally:
        pg.stop()
        shutil.rmtree(tmp, ignore_errors=True)

    (HERE / "results.json").write_text(json.dumps(results, indent=1) + "\n")
    by = {(r["mode"], r["backend"], r.get("record_bytes"), r.get("stored")): r for r in results}
    print("\n| record | batch | SQLite records/s | PostgreSQL records/s | PostgreSQL / SQLite |")
    print("|---|---:|---:|---:|---:|")
    for bytes_, count, batch in put_phases:
        s, p = by[("put", "sqlite", bytes_, None)], by[("put", "postgres", bytes_, None)]
        label = "6 MiB" if bytes_ == 6 << 20 else f"{bytes_} B"
        print(f"| {label} | {batch} | {s['records_per_s']:,.0f} ({s['mib_per_s']:.0f} MiB/s) | "
              f"{p['records_per_s']:,.0f} ({p['mib_per_s']:.0f} MiB/s) | {p['records_per_s'] / s['records_per_s']:.2f} |")
    print("\n| stored | record | SQLite empty poll ms | SQLite 1,000 new ms | PostgreSQL empty poll ms | "
          "PostgreSQL 1,000 new ms |")
    print("|---:|---:|---:|---:|---:|---:|")
    for n, bytes_ in since_phases:
        s, p = by[("since", "sqlite", bytes_, n)], by[("since", "postgres", bytes_, n)]
        print(f"| {n:,} | {bytes_} B | {s['empty_poll_ms']:.3f} | {s['read_1000_ms']:.2f} | "
              f"{p['empty_poll_ms']:.3f} | {p['read_1000_ms']:.2f} |")


if __name__ == "__main__":
    main()
