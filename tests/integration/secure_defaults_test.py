"""Secure by default: every daemon refuses to start without a cluster secret or with a weak one (and the
master with a weak source token), reads it from a file when asked, warns when a secret is on its command
line, compares secrets in constant time (unit-tested), and everything a running cluster writes to its data
dirs is private to its user (files 0600, directories 0700)."""
import os
import stat
import subprocess
import sys
import tempfile

import pytest

sys.path.insert(0, os.path.dirname(__file__))
from cluster import BIN, SECRET, Cluster, http, random_files, wait_for  # noqa: E402

DAEMONS = {
    "hio-repository": ["--port", "0"],
    "hio-master": ["--port", "0", "--data-port", "0"],
    "hio-worker": ["--master", "http://127.0.0.1:9", "--repository", "http://127.0.0.1:9", "--channels", "1"],
    "hio-discovery": ["--repository", "http://127.0.0.1:9", "--once"],
}


def start(name, extra, env, data):
    argv = [os.path.join(BIN, name), *DAEMONS[name], *extra]
    if name != "hio-worker":
        argv += ["--data-dir", data]
    clean = {k: v for k, v in env.items() if k not in ("HIO_SECRET", "HIO_SOURCE_TOKEN")}
    clean.update({k: v for k, v in env.items() if k in ("HIO_SECRET", "HIO_SOURCE_TOKEN") and v is not None})
    return subprocess.run(argv, capture_output=True, text=True, timeout=30, env=clean)


def test_daemons_refuse_missing_and_weak_secrets():
    tmp = tempfile.mkdtemp(prefix="hio-secure-")
    base = dict(os.environ)
    for name in DAEMONS:
        data = os.path.join(tmp, name)
        for env, why in ((dict(base, HIO_SECRET=None), "no cluster secret"),
                         (dict(base, HIO_SECRET="integration-secret"), "too weak"),
                         (dict(base, HIO_SECRET="a" * 40), "too weak")):
            r = start(name, [], env, data)
            assert r.returncode == 2, (name, why, r.returncode, r.stdout + r.stderr)
            assert why in r.stdout + r.stderr, (name, why, r.stdout + r.stderr)
        # A secret file that cannot be read is refused with its name.
        r = start(name, ["--secret-file", os.path.join(tmp, "nope")], dict(base, HIO_SECRET=None), data)
        assert r.returncode == 2 and "nope" in r.stdout + r.stderr, (name, r.stdout + r.stderr)
    r = start("hio-master", ["--source-token", "short"], dict(base, HIO_SECRET=SECRET), os.path.join(tmp, "m"))
    assert r.returncode == 2 and "source token is too weak" in r.stdout + r.stderr, r.stdout + r.stderr


def test_secret_file_argv_warning_and_private_data():
    tmp = tempfile.mkdtemp(prefix="hio-secure-")
    secret_file = os.path.join(tmp, "secret")
    with open(secret_file, "w") as f:
        f.write(SECRET + "\n")
    # The repository runs with the secret from its file: a write without it is refused, with it accepted.
    port_file = os.path.join(tmp, "repo.port")
    env = {k: v for k, v in os.environ.items() if k != "HIO_SECRET"}
    p = subprocess.Popen([os.path.join(BIN, "hio-repository"), "--data-dir", os.path.join(tmp, "repo"), "--port", "0",
                          "--port-file", port_file, "--secret-file", secret_file], env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        wait_for(lambda: os.path.exists(port_file) or p.poll() is not None, 30, "the repository to listen")
        assert p.poll() is None, p.stdout.read()
        url = f"http://127.0.0.1:{int(open(port_file).read())}/v1/knowledge"
        status, _ = http("POST", url, b"{}")
        assert status == 401, status
        status, _ = http("POST", url, b'{"clusters": []}', {"Authorization": f"Bearer {SECRET}"})
        assert status in (200, 201), status
    finally:
        p.terminate()
        out = p.communicate(timeout=30)[0].decode()
    assert "on the command line" not in out, out

    # A secret on argv works but is named as visible to every user.
    r = subprocess.run([os.path.join(BIN, "hio-discovery"), "--repository", "http://127.0.0.1:9", "--once",
                        "--data-dir", os.path.join(tmp, "d"), "--secret", SECRET], capture_output=True, text=True,
                       timeout=30, env=env)
    assert "--secret on the command line can be read by every user" in r.stdout + r.stderr, r.stdout + r.stderr

    # A real cluster that stored and queued tuples: nothing in its data dirs is readable by others.
    c = Cluster(workers=1, channels=1, processor="sleep:20")
    try:
        files = random_files(os.path.join(c.dir, "in"), 30, 1000, 200000, seed=4)
        s = subprocess.run([os.path.join(BIN, "hio"), "stream", "--master", c.master_url, "--quiet", *files],
                           capture_output=True, text=True, timeout=120, env=c.env)
        assert s.returncode == 0, s.stdout + s.stderr
        c.wait_drained()
        checked = 0
        for sub in ("repository", "master"):
            for root, dirs, names in os.walk(os.path.join(c.dir, sub)):
                for d in dirs:
                    mode = stat.S_IMODE(os.stat(os.path.join(root, d)).st_mode)
                    assert mode == 0o700, (os.path.join(root, d), oct(mode))
                for n in names:
                    mode = stat.S_IMODE(os.stat(os.path.join(root, n)).st_mode)
                    assert mode & 0o077 == 0, (os.path.join(root, n), oct(mode))
                    checked += 1
        assert checked >= 3, checked
        print(f"  {checked} files under the repository's and master's data dirs, none readable by others")
    finally:
        c.close()


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-q", "-p", "no:cacheprovider"]))
