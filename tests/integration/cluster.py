"""Starts real hio processes on loopback for integration tests: repository, master, workers.

Every process gets its own port (port 0 + --port-file), log file and data directory under one temporary
directory. Processes are stopped by PID at the end (PID 1 here does not reap, so nothing relies on the
process table being clean).
"""
import json
import os
import random
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.error
import urllib.request

BIN = os.environ.get("HIO_BIN", os.path.join(os.path.dirname(__file__), "..", "..", "build", "bin"))
SECRET = "integration-secret-0123456789abcdef"  # 32+ characters: the daemons refuse weaker ones


def http(method, url, body=None, headers=None, timeout=10):
    """Returns (status, body bytes). Never raises for HTTP error statuses."""
    data = body if body is None or isinstance(body, bytes) else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def get_json(url, timeout=10):
    status, body = http("GET", url, timeout=timeout)
    assert status == 200, f"GET {url} -> {status} {body[:200]!r}"
    return json.loads(body)


class Process:
    def __init__(self, name, argv, log_path, env):
        self.name, self.argv, self.log_path, self.env = name, argv, log_path, env
        self.proc = None
        self.start()

    def start(self):
        self.log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(self.argv, stdout=self.log, stderr=subprocess.STDOUT, env=self.env)

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def kill9(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self, timeout=30):
        if not self.alive():
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)

    def log_tail(self, n=30):
        with open(self.log_path, "rb") as f:
            return b"\n".join(f.read().splitlines()[-n:]).decode(errors="replace")


def wait_for(predicate, timeout, what):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            if predicate():
                return
        except (OSError, AssertionError, ValueError):
            pass
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


class Cluster:
    def __init__(self, workers=2, channels=2, processor="noop", master_args=(), worker_args=(), wait=True,
                 repository_args=()):
        """repository_args: more hio-repository flags, e.g. ["--store", postgres_url]."""
        self.dir = tempfile.mkdtemp(prefix="hio-it-")
        self.env = dict(os.environ, HIO_SECRET=SECRET)
        self.master_args = list(master_args)
        self.worker_args = list(worker_args)
        self.repository_args = list(repository_args)
        self.processes = []
        self.repository = self._start_repository("repository")
        self.repository_url = f"http://127.0.0.1:{self._port('repository')}"
        self.master_port = None
        self.master = self._start_master()
        self.workers = [self.add_worker(f"w{i + 1}", channels, processor) for i in range(workers)]
        if wait:
            self.wait_workers(workers)

    def _start_repository(self, name, port=0):
        return self._server(name, [os.path.join(BIN, "hio-repository"), "--data-dir", os.path.join(self.dir, name),
                                   "--port", str(port), *self.repository_args])

    def add_repository(self, name):
        """Another repository process with the same flags (with --store, on the same database); its URL."""
        self._start_repository(name)
        return f"http://127.0.0.1:{self._port(name)}"

    def restart_repository(self, kill=True):
        """Stops the first repository (kill -9 or SIGTERM) and starts it again on the same port."""
        port = self._port("repository")
        if kill:
            self.repository.kill9()
        else:
            self.repository.stop()
        self.processes.remove(self.repository)
        self.repository = self._start_repository("repository", port)

    def _server(self, name, argv):
        port_file = os.path.join(self.dir, f"{name}.port")
        if os.path.exists(port_file):
            os.remove(port_file)
        p = Process(name, argv + ["--port-file", port_file], os.path.join(self.dir, f"{name}.log"), self.env)
        self.processes.append(p)
        wait_for(lambda: os.path.exists(port_file) or not p.alive(), 30, f"{name} to listen")
        assert p.alive(), f"{name} died:\n{p.log_tail()}"
        return p

    def _port(self, name):
        with open(os.path.join(self.dir, f"{name}.port")) as f:
            return int(f.read())

    def _start_master(self):
        port = ["--port", str(self.master_port)] if self.master_port else ["--port", "0"]
        args = [a.replace("{repository}", self.repository_url).replace("{dir}", self.dir) for a in self.master_args]
        m = self._server("master", [os.path.join(BIN, "hio-master"), "--data-dir", os.path.join(self.dir, "master"),
                                    *port, *args])
        self.master_port = self._port("master")
        self.master_url = f"http://127.0.0.1:{self.master_port}"
        return m

    def restart_master(self, kill=True):
        if kill:
            self.master.kill9()
        else:
            self.master.stop()
        self.processes.remove(self.master)
        self.master = self._start_master()

    def add_worker(self, name, channels=2, processor="noop", repository_url=None):
        p = Process(name, [os.path.join(BIN, "hio-worker"), "--master", self.master_url,
                           "--repository", repository_url or self.repository_url, "--name", name,
                           "--channels", str(channels),
                           "--processor", processor, *self.worker_args],
                    os.path.join(self.dir, f"{name}.log"), self.env)
        self.processes.append(p)
        return p

    def status(self):
        return get_json(self.master_url + "/v1/status")

    def wait_workers(self, n, timeout=30):
        wait_for(lambda: len(self.status()["workers"]) == n, timeout, f"{n} workers to register")

    def wait_drained(self, timeout=120):
        """Tuples acknowledged as QUEUED are the master's until a channel stores them: wait for that."""
        wait_for(lambda: self.status()["queue"]["length"] == 0, timeout, "the overflow queue to drain")

    def records(self, repository_url=None):
        """Every stored record, from the repository's JSON lines."""
        out, after = [], 0
        while True:
            status, body = http("GET", f"{repository_url or self.repository_url}/v1/features?after={after}&limit=10000")
            assert status == 200, body
            lines = [json.loads(l) for l in body.decode().splitlines() if l.strip()]
            out += lines
            if len(lines) < 10000:
                return out
            after = lines[-1]["cursor"]

    def logs(self):
        return "\n".join(f"--- {p.name}\n{p.log_tail()}" for p in self.processes)

    def close(self, keep=False):
        for p in reversed(self.processes):
            p.stop(timeout=20)
        if not keep:
            shutil.rmtree(self.dir, ignore_errors=True)


def random_files(directory, count, min_size, max_size, seed):
    """Writes `count` files of random sizes and contents; returns {path: xxh3 hex}."""
    rng = random.Random(seed)
    os.makedirs(directory, exist_ok=True)
    paths = []
    for i in range(count):
        path = os.path.join(directory, f"t{i:04d}.bin")
        with open(path, "wb") as f:
            f.write(rng.randbytes(rng.randint(min_size, max_size)))
        paths.append(path)
    return dict(zip(paths, xxh3_of(paths)))


def xxh3_of(paths):
    """XXH3-64 of each file as 16 hex digits, computed by Debian's xxhsum (independent of hio)."""
    out = subprocess.run(["xxhsum", "-H3", *paths], check=True, capture_output=True, text=True).stdout
    sums = {}
    for line in out.splitlines():
        if line.startswith("XXH3 ("):  # BSD style: XXH3 (path) = hex
            path, digest = line[len("XXH3 ("):].rsplit(") = ", 1)
        else:  # GNU style: [XXH3_]hex  path
            digest, path = line.split(None, 1)
            digest = digest.split("_")[-1]
        sums[path.strip()] = digest.strip().rjust(16, "0")
    return [sums[p] for p in paths]


def hio_stream(master_url, files, source, timeout=600):
    return subprocess.run([os.path.join(BIN, "hio"), "stream", "--master", master_url, "--source", source,
                           "--quiet", *files], capture_output=True, text=True, timeout=timeout)


def check_exactly_once(records, expected):
    """Every file in `expected` ({path: xxh3}) is stored exactly once, intact. Returns a list of problems."""
    by_file = {}
    for r in records:
        f = (r.get("metadata") or {}).get("file")
        if f is not None:
            by_file.setdefault(f, []).append(r)
    problems = []
    for path, digest in expected.items():
        rs = by_file.get(path, [])
        if len(rs) != 1:
            problems.append(f"{path}: stored {len(rs)} times")
        elif rs[0]["xxh3"] != digest or rs[0]["status"] != "stored":
            problems.append(f"{path}: xxh3 {rs[0]['xxh3']} status {rs[0]['status']}, expected {digest} stored")
    return problems
