"""The repository's store contract against a real PostgreSQL server on loopback: starts one (initdb into a
temporary directory, tests/integration/postgres.py) and runs hio-repository-postgres-tests
(tests/postgres/store_test.cpp) against it. Skips (prints SKIP, exits 0) only when the PostgreSQL server
binaries are missing; scripts/setup.sh installs them."""
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(__file__))
from cluster import BIN  # noqa: E402
from postgres import Postgres, find_binaries  # noqa: E402
from runner import run  # noqa: E402


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


if __name__ == "__main__":
    if find_binaries() is None:
        print("SKIP postgres_store_test: no PostgreSQL server binaries in /usr/lib/postgresql/*/bin "
              "(scripts/setup.sh installs postgresql)")
        sys.exit(0)
    run(globals())
