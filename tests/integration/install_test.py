"""`cmake --install` as a user runs it: the installed programs start a cluster (`hio up`, defaults), a C
simulation built outside the tree against the installed package (examples/consumer, `find_package(hio)`)
sends to it, and the installed Python package, which finds the installed library by itself, reads the
results back."""
import glob
import os
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(__file__))
from cluster import BIN  # noqa: E402
from hio_up_test import free_port_pair, read_banner  # noqa: E402

SOURCE = os.environ.get("HIO_SOURCE", os.path.join(os.path.dirname(__file__), "..", ".."))
BUILD = os.path.dirname(os.path.abspath(BIN))


def run(*args, **kw):
    r = subprocess.run(list(args), capture_output=True, text=True, timeout=600, **kw)
    assert r.returncode == 0, f"{' '.join(args)} failed ({r.returncode}):\n{r.stdout}\n{r.stderr}"
    return r


def test_installed_package_builds_a_consumer_that_streams_to_an_installed_cluster():
    tmp = tempfile.mkdtemp(prefix="hio-install-")
    prefix = os.path.join(tmp, "prefix")
    run("cmake", "--install", BUILD, "--prefix", prefix, "--strip")

    for program in ("hio", "hio-master", "hio-worker", "hio-plugin-host", "hio-repository", "hio-discovery"):
        assert os.access(os.path.join(prefix, "bin", program), os.X_OK), program
    for f in ("include/hio_connector.h", "include/hio_processor.h", "lib/cmake/hio/hioConfig.cmake",
              "lib/cmake/hio/hioConfigVersion.cmake", "lib/python3/dist-packages/hio/__init__.py"):
        assert os.path.isfile(os.path.join(prefix, f)), f
    libs = sorted(os.path.basename(p) for p in glob.glob(os.path.join(prefix, "lib", "libhio_connector.so*")))
    assert libs[:2] == ["libhio_connector.so", "libhio_connector.so.0"], libs
    # Nothing of the build tree or the C++ internals is exported: a consumer needs only the C library.
    exported = open(os.path.join(prefix, "lib/cmake/hio/hioTargets.cmake")).read()
    assert BUILD not in exported and os.path.abspath(SOURCE) not in exported
    assert "hio::connector" in exported and "hio::processor" in exported and "hio::common" not in exported

    consumer = os.path.join(tmp, "consumer")
    run("cmake", "-S", os.path.join(SOURCE, "examples", "consumer"), "-B", consumer, "-G", "Ninja",
        f"-DCMAKE_PREFIX_PATH={prefix}")
    run("cmake", "--build", consumer)
    # The package says which versions it serves: 0.x is not 1.x.
    probe = os.path.join(tmp, "probe")
    os.makedirs(probe)
    with open(os.path.join(probe, "CMakeLists.txt"), "w") as f:
        f.write("cmake_minimum_required(VERSION 3.25)\nproject(p LANGUAGES C)\nfind_package(hio 1 REQUIRED)\n")
    r = subprocess.run(["cmake", "-S", probe, "-B", os.path.join(probe, "b"), f"-DCMAKE_PREFIX_PATH={prefix}"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode != 0 and "hio" in r.stderr, r.stderr

    data = os.path.join(tmp, "cluster")
    port = free_port_pair()
    up = subprocess.Popen([os.path.join(prefix, "bin", "hio"), "--data-dir", data, "up", "--port", str(port)],
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        read_banner(up)
        master = f"http://127.0.0.1:{port}"
        # No LD_LIBRARY_PATH, no HIO_CONNECTOR_LIB: the consumer's RUNPATH and the package's own lookup.
        env = {k: v for k, v in os.environ.items() if k not in ("LD_LIBRARY_PATH", "HIO_CONNECTOR_LIB")}
        env["HIO_DATA_DIR"] = data  # where hio up keeps the source token
        sent = run(os.path.join(consumer, "oscillator"), master, "40", env=env)
        print("  " + sent.stdout.strip())
        assert "40 realizations" in sent.stdout and "0 failed, 0 errors" in sent.stdout

        env["PYTHONPATH"] = os.path.join(prefix, "lib", "python3", "dist-packages")
        read = run("/usr/bin/python3", "-c", f"""
import time, numpy as np, hio, hio._native as native
lib = native.load()._name
assert lib.startswith({prefix!r}), lib
with hio.Client("{master}", source="installed-python") as c:
    c.send(np.ones((64, 1)), metadata={{"params": {{"omega": -1.0}}}})
repo = hio.Repository(master="{master}")
deadline = time.monotonic() + 120
while True:
    t = repo.features()
    if sum(s == "oscillator" for s in t.sources) == 40 and "installed-python" in t.sources:
        break
    assert time.monotonic() < deadline, (len(t), t.sources[:5])
    time.sleep(0.5)
omega = sorted(set(np.round(t.param("omega")[[s == "oscillator" for s in t.sources]], 3)))
print(len(t), "tuples read back; omega", omega)
assert omega == [0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.45], omega
""", env=env)
        print("  " + read.stdout.strip())
    finally:
        up.terminate()
        try:
            up.wait(timeout=60)
        except subprocess.TimeoutExpired:
            up.kill()
            up.wait()
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    import pytest

    sys.exit(pytest.main([__file__, "-q", "-p", "no:cacheprovider"]))
