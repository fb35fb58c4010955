#!/usr/bin/env python3
"""Writes docs/flags.md from the --help of every executable, or checks that it is up to date.

Usage: scripts/flags_doc.py [--check] [--bin DIR]   (DIR: the build's bin folder, default build/bin)

The reference is the programs' own help, so a flag cannot be added, renamed or given a new default
without docs/flags.md changing too: tests/integration/flags_doc_test.py runs --check in CI.
"""
import argparse
import difflib
import os
import re
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DOC = os.path.join(ROOT, "docs", "flags.md")

# (executable, arguments, what it is); the order of the document.
PROGRAMS = [
    ("hio", [], "the command line: starts a cluster, streams, reads results"),
    ("hio", ["up"], ""),
    ("hio", ["status"], ""),
    ("hio", ["features"], ""),
    ("hio", ["knowledge"], ""),
    ("hio", ["export"], ""),
    ("hio", ["stream"], ""),
    ("hio", ["bench"], ""),
    ("hio-master", [], "the master: leases, overflow queue, workers, scaling (docs/scaling.md)"),
    ("hio-worker", [], "a worker: its channels, processors and drain (docs/processors.md)"),
    ("hio-repository", [], "the repository (docs/repository.md)"),
    ("hio-discovery", [], "the knowledge-discovery unit (docs/discovery.md)"),
    ("hio-features-bench", [], "times the feature extraction, CPU and GPU (docs/features.md)"),
    ("hio-features-wisdom", [], "regenerates the shipped FFT plans (docs/features.md, \"FFT plans\")"),
]

HEADER = """# Every flag of every program

Generated from each program's `--help` by `scripts/flags_doc.py`; `tests/integration/flags_doc_test.py`
fails when a program's flags and this page differ. `hio-master` also reads its flags from a TOML/INI file
(`--config FILE`, one `name = value` per flag, without the dashes). Secrets are best passed as files
(`--secret-file`, `--source-token-file`) or in the environment (`HIO_SECRET`, `HIO_SOURCE_TOKEN`), never
in argv (docs/security.md). `hio-plugin-host` is not run by hand: a worker starts one per channel for a
`plugin:PATH` processor.
"""


def help_text(bin_dir, exe, args):
    path = os.path.join(bin_dir, exe)
    p = subprocess.run([path, *args, "--help"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       text=True, timeout=30)
    # The usage line names the program by the path it was started with: make it the bare name.
    return re.sub(re.escape(path), exe, p.stdout).rstrip() + "\n"


def document(bin_dir):
    out = [HEADER]
    for exe, args, what in PROGRAMS:
        name = " ".join([exe, *args])
        out.append(f"\n## `{name}`\n")
        if what:
            out.append(f"\n{what[0].upper()}{what[1:]}.\n")
        out.append("\n```text\n" + help_text(bin_dir, exe, args) + "```\n")
    return "".join(out)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="fail if docs/flags.md is not up to date")
    ap.add_argument("--bin", default=os.path.join(ROOT, "build", "bin"))
    a = ap.parse_args()
    text = document(a.bin)
    if not a.check:
        with open(DOC, "w") as f:
            f.write(text)
        return 0
    with open(DOC) as f:
        current = f.read()
    if current == text:
        print("flags_doc: docs/flags.md matches every program's --help")
        return 0
    sys.stdout.writelines(difflib.unified_diff(current.splitlines(True), text.splitlines(True),
                                               "docs/flags.md", "--help of the programs"))
    print("flags_doc: docs/flags.md is out of date: run scripts/flags_doc.py --bin BUILD/bin", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
