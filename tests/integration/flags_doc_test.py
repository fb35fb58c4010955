"""docs/flags.md documents every flag of every program: it must equal what scripts/flags_doc.py writes
from the programs' own --help (so a new, renamed or re-defaulted flag fails here until the page is
regenerated), and it must name every long option each program accepts."""
import os
import re
import subprocess
import sys

import pytest

import pytest

sys.path.insert(0, os.path.dirname(__file__))

ROOT = os.environ.get("HIO_SOURCE", os.path.join(os.path.dirname(__file__), "..", ".."))
BIN = os.environ.get("HIO_BIN", os.path.join(ROOT, "build", "bin"))


def test_docs_flags_md_is_the_programs_help():
    p = subprocess.run([sys.executable, os.path.join(ROOT, "scripts", "flags_doc.py"), "--check", "--bin", BIN],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=120)
    assert p.returncode == 0, p.stdout


def test_every_long_option_of_each_daemon_is_in_its_section():
    with open(os.path.join(ROOT, "docs", "flags.md")) as f:
        page = f.read()
    for exe in ("hio-master", "hio-worker", "hio-repository", "hio-discovery"):
        out = subprocess.run([os.path.join(BIN, exe), "--help"], stdout=subprocess.PIPE, text=True,
                             timeout=30).stdout
        flags = set(re.findall(r"(?<![\w-])--[a-z0-9][a-z0-9-]+", out))
        assert len(flags) > 5, (exe, out)
        section = page.split(f"## `{exe}`", 1)[1].split("\n## ", 1)[0]
        missing = sorted(f for f in flags if f not in section)
        assert not missing, (exe, missing)


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-q", "-p", "no:cacheprovider"]))
