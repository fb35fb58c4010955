"""A throwaway PostgreSQL server on loopback for tests and experiments: initdb into a temporary directory,
postgres listening on 127.0.0.1 on a free port with its socket in that directory, stopped by PID.

initdb and postgres refuse to run as root: as root they run as the `postgres` system user (Debian's
postgresql package creates it), with the directory given to that user. The server is this process's
child, so a kill -9 leaves no zombie holding its PID in postmaster.pid (PID 1 here does not reap).

    pg = Postgres.start()          # or None from Postgres.find_binaries() when none are installed
    pg.url                         # postgres://postgres@127.0.0.1:PORT/postgres
    pg.kill9(); pg.restart()       # what a crash and a restart of the server look like
    pg.stop()
"""
import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time


def find_binaries():
    """The directory holding initdb and postgres (newest version first), or None."""
    for d in sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(p.split("/")[-2]), reverse=True):
        if os.access(os.path.join(d, "initdb"), os.X_OK) and os.access(os.path.join(d, "postgres"), os.X_OK):
            return d
    return None


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Postgres:
    def __init__(self, bindir, directory, user):
        self.bindir, self.dir, self.user = bindir, directory, user
        self.data = os.path.join(directory, "data")
        self.log_path = os.path.join(directory, "postgres.log")
        self.port = None
        self.proc = None

    @classmethod
    def start(cls, bindir=None, settings=()):
        bindir = bindir or find_binaries()
        assert bindir, "no PostgreSQL binaries: scripts/setup.sh installs postgresql"
        directory = tempfile.mkdtemp(prefix="hio-pg-")
        user = "postgres" if os.geteuid() == 0 else None
        if user:
            pw = pwd.getpwnam(user)
            os.chown(directory, pw.pw_uid, pw.pw_gid)
        pg = cls(bindir, directory, user)
        pg.settings = list(settings)
        r = subprocess.run([os.path.join(bindir, "initdb"), "-D", pg.data, "-A", "trust", "-U", "postgres",
                            "-E", "UTF8", "--locale=C", "--no-sync"], capture_output=True, text=True, timeout=120,
                           cwd=directory, **pg._popen_kwargs())
        assert r.returncode == 0, f"initdb failed:\n{r.stdout}{r.stderr}"
        pg._launch(free_port())
        return pg

    def _popen_kwargs(self):
        return {"user": self.user, "group": "postgres", "extra_groups": []} if self.user else {}

    def _launch(self, port, timeout=30, same_port=False):
        for attempt in range(1 if same_port else 5):
            self.port = port
            argv = [os.path.join(self.bindir, "postgres"), "-D", self.data, "-p", str(port), "-k", self.dir,
                    "-c", "listen_addresses=127.0.0.1", "-c", "max_connections=60", "-c", "shared_buffers=64MB",
                    "-c", "max_wal_size=1GB", "-c", "log_min_messages=warning"]
            for s in self.settings:
                argv += ["-c", s]
            with open(self.log_path, "ab") as log:
                kwargs = self._popen_kwargs()
                self.proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, cwd=self.dir, **kwargs)
            deadline = time.time() + timeout
            while time.time() < deadline and self.proc.poll() is None:
                if self.ready():
                    return
                time.sleep(0.1)
            if self.proc.poll() is None:
                raise AssertionError(f"postgres did not accept connections in {timeout} s:\n{self.log_tail()}")
            self.proc = None
            port = free_port()  # lost a race for the port: take another
        raise AssertionError(f"postgres did not start:\n{self.log_tail()}")

    def ready(self):
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                pass
        except OSError:
            return False
        r = subprocess.run([os.path.join(self.bindir, "pg_isready"), "-q", "-h", "127.0.0.1", "-p", str(self.port),
                            "-U", "postgres"],
                           capture_output=True)
        return r.returncode == 0

    @property
    def url(self):
        return f"postgres://postgres@127.0.0.1:{self.port}/postgres"

    @property
    def conninfo(self):
        return f"host=127.0.0.1 port={self.port} user=postgres dbname=postgres"

    def psql(self, sql):
        """Runs SQL with psql; returns its stdout (tuples only, unaligned)."""
        psql = os.path.join(self.bindir, "psql")
        if not os.path.exists(psql):
            psql = shutil.which("psql")
        r = subprocess.run([psql, "-X", "-q", "-t", "-A", "-v", "ON_ERROR_STOP=1", "-d", self.conninfo, "-c", sql],
                           capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, f"psql failed: {r.stderr}"
        return r.stdout

    def _children(self):
        """PIDs of the server's processes besides the postmaster (backends, checkpointer, ...)."""
        pids = []
        for status in glob.glob("/proc/[0-9]*/status"):
            try:
                with open(status) as f:
                    fields = dict(line.split(":\t", 1) for line in f if ":\t" in line)
                if int(fields.get("PPid", "0")) == self.proc.pid and fields.get("State", "").strip()[:1] != "Z":
                    pids.append(int(status.split("/")[2]))
            except (OSError, ValueError):
                pass
        return pids

    def kill9(self):
        """kill -9 of the postmaster and every process it started, as a crash of the server's host would."""
        children = self._children()
        self.proc.send_signal(signal.SIGKILL)
        for pid in children:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.proc.wait(timeout=10)
        self.proc = None

    def restart(self):
        """Starts the server again on the same port and data (it recovers from its WAL)."""
        self._launch(self.port, timeout=60, same_port=True)

    def stop(self, keep=False):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)  # fast shutdown
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill9()
        self.proc = None
        if not keep:
            shutil.rmtree(self.dir, ignore_errors=True)

    def log_tail(self, n=30):
        try:
            with open(self.log_path, "rb") as f:
                return b"\n".join(f.read().splitlines()[-n:]).decode(errors="replace")
        except OSError:
            return ""
