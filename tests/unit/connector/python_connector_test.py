#!/usr/bin/python3
"""The Python connector against a test double of the master.

Run by hio-connector-tests ("the Python package sends bytes and NumPy arrays ..."), which starts the test
double and sets HIO_TEST_MASTER, HIO_CONNECTOR_LIB and PYTHONPATH. Exits non-zero on the first failure;
without HIO_TEST_MASTER it says so and exits 0.
"""

import io
import os
import sys
import traceback

import numpy as np

import hio


def check(condition, what):
    if not condition:
        raise AssertionError(what)


def raises(code, what, call, *args, **kwargs):
    """`call(*args, **kwargs)` raises HioError with `code`; returns the error."""
    try:
        call(*args, **kwargs)
    except hio.HioError as e:
        check(e.code == code, f"{what}: code {e.code}, expected {code}: {e}")
        return e
    raise AssertionError(f"{what}: no error")


def test_send_of_bytes_like_objects(url):
    with hio.Client(url, source="python-test") as c:
        r = c.send(b"hello from python", metadata={"step": 1})
        check(r.status == "stored", f"bytes: {r}")
        check(r.attempts == 1, f"attempts: {r}")
        first = r.tuple_id
        r = c.send(bytearray(b"x" * 5000))
        check(r.status == "stored" and r.tuple_id > first, f"bytearray: {r}")
        r = c.send(memoryview(b"0123456789")[2:8])  # a read-only slice: copied
        check(r.status == "stored", f"memoryview slice: {r}")
        r = c.send(b"")
        check(r.status == "stored", f"empty: {r}")


def test_numpy_arrays_travel_as_npy(url):
    with hio.Client(url, source="python-test") as c:
        a = np.arange(3 * 50 * 40, dtype=np.float64).reshape(3, 50, 40)
        r = c.send(a, metadata={"shape": list(a.shape)})
        check(r.status == "stored", f"numpy: {r}")
        r = c.send(np.asfortranarray(np.ones((20, 30), dtype=np.int32)))
        check(r.status == "stored", f"fortran-ordered numpy: {r}")
        # The payload is what numpy.lib.format writes (the C++ side compares checksums with the files
        # written here), whether the array's memory went as it is (send, send_many) or was copied.
        base = np.arange(4 * 60 * 10, dtype=np.float32).reshape(4, 60, 10)
        readonly = base.copy()
        readonly.flags.writeable = False
        arrays = [a, np.asfortranarray(base), base[:, ::3, :], readonly, np.zeros((0, 5)), base.astype(">i4")]
        sent = [(c.send(x), x) for x in arrays] + list(zip(c.send_many(arrays), arrays))
        sent.append((c.send_async(base[1]).result(), base[1]))
        expect = os.environ.get("HIO_TEST_EXPECT_DIR")
        for r, x in sent:
            check(r.status == "stored", f"array {x.shape}: {r}")
            buf = io.BytesIO()
            np.lib.format.write_array(buf, x, allow_pickle=False)
            check(np.array_equal(np.load(io.BytesIO(buf.getvalue())), x), "npy round trip")
            if expect:
                with open(os.path.join(expect, str(r.tuple_id)), "wb") as f:
                    f.write(buf.getvalue())


def test_async_sends_and_flush(url):
    with hio.Client(url, source="python-test", session_tuples=8) as c:
        rng = np.random.default_rng(5)
        futures = []
        for i in range(30):
            n = int(rng.integers(1, 200_000))
            data = rng.integers(0, 256, n, dtype=np.uint8).tobytes() if i % 3 else rng.random(n // 8 + 1)
            futures.append(c.send_async(data, metadata={"i": i}))
        counts = c.flush(timeout=60)
        check(counts["stored"] == 30 and counts["errors"] == 0, f"flush counts: {counts}")
        ids = [f.result(timeout=1).tuple_id for f in futures]
        check(all(f.result().status == "stored" for f in futures), "async statuses")
        check(ids == sorted(ids) and len(set(ids)) == 30, f"async ids in submission order: {ids}")


def test_send_many_in_one_call(url):
    with hio.Client(url, source="python-test", session_tuples=64) as c:
        items = [bytes([i % 251]) * (1 + i % 3000) for i in range(500)]
        batch = c.send_many(items, metadata={"run": 1})
        check(len(batch) == 500 and batch.stored == 500 and batch.errors == 0, f"bytes batch: {batch}")
        ids = batch.tuple_ids
        check(ids == sorted(ids) and len(set(ids)) == 500, "ids in item order, distinct")
        check(batch[-1].tuple_id == ids[-1] and batch[0].status == "stored", f"items: {batch[0]} {batch[-1]}")
        check([r.tuple_id for r in batch[10:13]] == ids[10:13], "slices")
        # Mixed kinds, metadata per item; one bad metadata fails that item alone.
        mixed = [b"raw", bytearray(b"ba" * 100), memoryview(b"0123456789")[1:5], np.arange(12.0).reshape(3, 4), b""]
        meta = [{"i": 0}, None, '{"i": 2}', {"i": 3}, "[1, 2]"]
        batch = c.send_many(mixed, metadata=meta)
        check(batch.stored == 4 and batch.errors == 1, f"mixed batch: {batch}")
        check(batch[4].status == "error" and "JSON object" in batch[4].reason, f"bad metadata item: {batch[4]}")
        check(all(batch[i].status == "stored" for i in range(4)), "the other items are stored")
        check(len(c.send_many([])) == 0, "an empty batch")
        raises(1, "two items with one metadata entry", c.send_many, [b"a", b"b"], metadata=[{"i": 0}])
    c = hio.Client(url, source="python-test")
    c.close()
    raises(5, "send_many on a closed client", c.send_many, [b"late"])


def test_errors_raise(url):
    with hio.Client(url, source="python-test") as c:
        e = raises(1, "metadata that is not an object", c.send, b"x", metadata="[1, 2]")
        check("JSON object" in str(e), f"bad metadata error: {e}")
    raises(1, "max_attempts=0", hio.Client, url, source="python-test", max_attempts=0)
    c = hio.Client(url, source="python-test")
    c.close()
    raises(5, "send on a closed client", c.send, b"late")


def main():
    url = os.environ.get("HIO_TEST_MASTER")
    if not url:
        print("python_connector_test: HIO_TEST_MASTER is not set (run through hio-connector-tests); skipped")
        return 0
    tests = [test_send_of_bytes_like_objects, test_numpy_arrays_travel_as_npy, test_async_sends_and_flush,
             test_send_many_in_one_call, test_errors_raise]
    failed = 0
    for t in tests:
        try:
            t(url)
            print(f"ok   {t.__name__}")
        except Exception:  # noqa: BLE001 - report every test
            failed += 1
            print(f"FAIL {t.__name__}")
            traceback.print_exc()
    print(f"python_connector_test: hio {hio.version()}, {len(tests) - failed}/{len(tests)} passed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
