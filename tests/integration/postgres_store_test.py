"""The repository's store contract against a real PostgreSQL server on loopback: starts one (initdb into a
temporary directory, tests/integration/postgres.py) and runs hio-repository-postgres-tests
(tests/postgres/store_test.cpp) against it; and `hio up --store` puts a cluster's records there. Skips (prints SKIP, exits 0) only when the PostgreSQL server
binaries are missing; scripts/setup.sh installs them."""
import os
import shutil
import signal
import subprocess
import sys
import tempfile

import pytest

sys.path.insert(0, os.path.dirname(__file__))
from cluster import BIN, random_files  # noqa: E402
from hio_up_test import free_port_pair, read_banner  # noqa: E402
from postgres import Postgres, find_binaries  # noqa: E402


def test_the_store_contract_holds_on_postgresql():
    pg = Postgres.start()
    try:
        r = subprocess.run([os.path.join(BIN, "hio-repository-postgres-tests")],
                           env=dict(os.environ, HIO_TEST_POSTGRES=pg.conninfo), capture_output=True, text=True,
                           timeout=300)
        print(r.stdout[-3000:])
        assert r.returncode == 0, f"{r.stdout[-6000:]}\n{r.stderr[-3000:]}\n--- postgres\n{pg.log_tail()}"
    finally:
        pg.stop()


def test_hio_up_store_keeps_the_cluster_records_in_postgresql():
    pg = Postgres.start()
    tmp = tempfile.mkdtemp(prefix="hio-up-pg-")
    data = os.path.join(tmp, "cluster")
    up = subprocess.Popen([os.path.join(BIN, "hio"), "--data-dir", data, "up", "--store", pg.url, "--port",
                           str(free_port_pair()), "--workers", "1", "--channels", "1"],
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          env={k: v for k, v in os.environ.items() if k != "HIO_SECRET"})
    try:
        banner = read_banner(up)
        master = next(l.split()[1] for l in banner.splitlines() if l.strip().startswith("master"))
        files = random_files(os.path.join(tmp, "in"), 5, 1000, 50000, seed=7)
        r = subprocess.run([os.path.join(BIN, "hio"), "--data-dir", data, "stream", "--master", master, "--quiet",
                            *sorted(files)], capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, r.stdout + r.stderr
        assert pg.psql("SELECT count(*) FROM hio_tuples").strip() == "5"
        with open(os.path.join(data, "logs", "repository.log")) as f:
            log = f.read()
        assert f"data in PostgreSQL {pg.url}" in log, log
        assert not os.path.exists(os.path.join(data, "repository", "repository.db")), "SQLite was used too"
    finally:
        up.send_signal(signal.SIGTERM)
        up.communicate(timeout=60)
        pg.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    if find_binaries() is None:
        print("SKIP postgres_store_test: no PostgreSQL server binaries in /usr/lib/postgresql/*/bin "
              "(scripts/setup.sh installs postgresql)")
        sys.exit(0)
    sys.exit(pytest.main([__file__, "-q", "-p", "no:cacheprovider"]))
