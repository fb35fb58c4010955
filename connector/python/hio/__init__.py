"""hio connector for Python: send tuples to an hio cluster and get an end-to-end acknowledgement; read
the results back as arrays (Repository).

    import hio, numpy as np
    with hio.Client("http://127.0.0.1:8080", source="my-simulation") as c:
        r = c.send(np.zeros((100, 64)), metadata={"k": 0.3})   # -> SendResult(tuple_id=..., status="stored")
        futures = [c.send_async(b"raw bytes") for _ in range(10)]
        c.flush()
        batch = c.send_many([b"x" * 1024] * 20000, metadata={"run": 7})  # one call, pipelined
        print(batch.stored, batch.queued, batch[0].tuple_id)

    repo = hio.Repository(master="http://127.0.0.1:8080")  # reads results back (pure Python, see repository.py)
    table = repo.wait(batch.tuple_ids)          # FeatureTable: .values (tuples x features), .columns, .tuple_ids
    df = repo.features(as_="pandas")            # every stored tuple: features, source, param.<name>
    labels = repo.knowledge().labels_for(table.tuple_ids)

Data may be bytes, bytearray, a memoryview (or anything with the buffer protocol), or a NumPy array, which
is sent as a .npy payload: by send and send_many without a copy (its header, then the array's own memory,
which must not change until the call returns; a non-contiguous array is made contiguous first), by
send_async copied once. A thin layer over libhio_connector.so (ctypes, see _native.py): sends release
the GIL, and a Client may be used from several threads at once.
"""

import collections.abc
import concurrent.futures
import dataclasses
import io
import itertools
import json
import sys
import threading
import ctypes

from . import _native
from ._errors import HioError
from .repository import FeatureTable, Follow, Knowledge, Repository, RepositoryError, Row

__all__ = ["Client", "SendResult", "BatchResult", "HioError", "version", "Repository", "RepositoryError",
           "FeatureTable", "Knowledge", "Row", "Follow"]


@dataclasses.dataclass(frozen=True)
class SendResult:
    tuple_id: int
    status: str  # "stored", "failed" (processed and failed: final), or "queued" (durably in the master's queue)
    reason: str
    attempts: int


class BatchResult(collections.abc.Sequence):
    """The results of Client.send_many: one SendResult per item, in order, built when first read, and the
    totals. A tuple that got no acknowledgement (see HioError) has status "error", its message in reason."""

    def __init__(self, results, codes, counts, n):
        self._results, self._codes, self._n = results, codes, n
        self.stored: int = counts.stored
        self.failed: int = counts.failed
        self.queued: int = counts.queued
        self.errors: int = counts.errors

    def __len__(self):
        return self._n

    def __getitem__(self, i):
        if isinstance(i, slice):
            return [self[k] for k in range(*i.indices(self._n))]
        if i < 0:
            i += self._n
        if not 0 <= i < self._n:
            raise IndexError(i)
        r = self._results[i]
        status = "error" if self._codes[i] != _native.HIO_OK else _native.STATUS_NAMES.get(r.status, str(r.status))
        return SendResult(r.tuple_id, status, r.reason.decode("utf-8", "replace"), r.attempts)

    @property
    def tuple_ids(self):
        """The tuple id of each item (0 where a tuple got none)."""
        return [r.tuple_id for r in self._results]

    def __repr__(self):
        return (f"BatchResult({self._n} tuples: {self.stored} stored, {self.queued} queued, {self.failed} failed, "
                f"{self.errors} errors)")


def version():
    return _native.load().hio_version().decode()


def _metadata_bytes(metadata):
    if metadata is None:
        return None
    if isinstance(metadata, (bytes, bytearray)):
        return bytes(metadata)
    if isinstance(metadata, str):
        return metadata.encode("utf-8")
    return json.dumps(metadata).encode("utf-8")


def _npy_header(array):
    """The .npy header (format 1.0, or 2.0 when over 64 KiB) of a C- or Fortran-contiguous array."""
    np = sys.modules["numpy"]
    head = io.BytesIO()
    fields = np.lib.format.header_data_from_array_1_0(array)  # fortran_order when only F-contiguous
    try:
        np.lib.format.write_array_header_1_0(head, fields)
    except ValueError:  # a header over 64 KiB (a very wide structured dtype)
        np.lib.format.write_array_header_2_0(head, fields)
    return head.getvalue()


def _npy(array):
    """The .npy bytes of `array` in one buffer: its header, then its data copied once behind it (writing
    through BytesIO took 28 ms for 6 MB). For send_async, which keeps one piece per tuple."""
    np = sys.modules["numpy"]
    if array.dtype.hasobject or not (array.flags.c_contiguous or array.flags.f_contiguous):
        buf = io.BytesIO()
        np.lib.format.write_array(buf, array, allow_pickle=False)
        return buf.getbuffer()  # a writable view of the .npy bytes, no second copy
    header = _npy_header(array)
    out = bytearray(len(header) + array.nbytes)
    view = memoryview(out)
    view[:len(header)] = header
    if array.nbytes:
        view[len(header):] = memoryview(array.reshape(-1, order="A")).cast("B")  # one memcpy
    return out


def _parts(data):
    """(head, pointer, length, keepalive) of one tuple for hio_send_many_parts. A NumPy array goes as its
    .npy header (head) and then its own memory, not copied; a non-contiguous one is made contiguous first
    (the only copy). Anything else as _payload, without a head."""
    np = sys.modules.get("numpy")
    if np is not None and isinstance(data, np.ndarray) and not data.dtype.hasobject:
        if not (data.flags.c_contiguous or data.flags.f_contiguous):
            data = np.ascontiguousarray(data)
        return _npy_header(data), (data.ctypes.data if data.nbytes else None), data.nbytes, data
    pointer, n, keepalive = _payload(data)
    return None, pointer, n, keepalive


def _payload(data):
    """(pointer argument, length, keepalive): keepalive must live until the C library is done with the bytes."""
    np = sys.modules.get("numpy")
    if np is not None and isinstance(data, np.ndarray):
        data = _npy(data)
    if isinstance(data, bytes):
        return data, len(data), data
    view = memoryview(data)
    if not view.c_contiguous:
        data = view.tobytes()
        return data, len(data), data
    view = view.cast("B") if view.format != "B" or view.ndim != 1 else view
    n = view.nbytes
    if n == 0:
        return None, 0, None
    if view.readonly:
        if isinstance(view.obj, bytes) and len(view.obj) == n:
            return view.obj, n, view.obj
        data = view.tobytes()  # a read-only slice: ctypes cannot point into it
        return data, n, data
    array = (ctypes.c_char * n).from_buffer(view)
    return ctypes.addressof(array), n, (array, view, data)


class Client:
    """A connection to one hio master for one data source. Thread-safe; close() (or `with`) when done.

    Options (None keeps the library default): session_tuples (ids per lease; 0, the default, sizes
    sessions to the tuples), max_bytes_in_flight,
    max_attempts, lease_timeout (seconds), compress (bool), transport ("tcp", "ucx" or "auto").
    """

    def __init__(self, master_url, source="python", token=None, *, session_tuples=None,
                 max_bytes_in_flight=None, max_attempts=None, lease_timeout=None, compress=None,
                 transport=None):
        self._lib = _native.load()
        handle = self._lib.hio_client_new(master_url.encode(), source.encode())
        if not handle:
            raise HioError(_native.HIO_ERR_INVALID_ARGUMENT, _native.last_error(self._lib))
        self._handle = handle
        self._lock = threading.Lock()
        self._pending = {}  # key -> (future, keepalive)
        self._keys = itertools.count(1)
        self._callback = _native.CALLBACK(self._on_done)  # must outlive every asynchronous send
        options = {
            "token": token,
            "session_tuples": session_tuples,
            "max_bytes_in_flight": max_bytes_in_flight,
            "max_attempts": max_attempts,
            "lease_timeout_ms": None if lease_timeout is None else int(lease_timeout * 1000),
            "compress": None if compress is None else ("1" if compress else "0"),
            "transport": transport,
        }
        try:
            for name, value in options.items():
                if value is not None:
                    self._check(self._lib.hio_client_set_option(handle, name.encode(), str(value).encode()))
        except Exception:
            self.close()
            raise

    def _check(self, code):
        if code != _native.HIO_OK:
            raise HioError(code, _native.last_error(self._lib))

    def _live_handle(self):
        handle = self._handle
        if handle is None:
            raise HioError(_native.HIO_ERR_CLOSED, "client is closed")
        return handle

    def send(self, data, metadata=None):
        """Sends one tuple and waits for its acknowledgement. Returns a SendResult; raises HioError. A NumPy
        array is not copied (see send_many)."""
        handle = self._live_handle()
        np = sys.modules.get("numpy")
        if np is not None and isinstance(data, np.ndarray):
            r = self.send_many([data], [metadata])
            if r._codes[0] != _native.HIO_OK:
                raise HioError(r._codes[0], r[0].reason)
            return r[0]
        pointer, n, keepalive = _payload(data)
        out = _native.SendResultStruct()
        code = self._lib.hio_send(handle, pointer, n, _metadata_bytes(metadata), ctypes.byref(out))
        del keepalive
        self._check(code)
        return SendResult(out.tuple_id, _native.STATUS_NAMES.get(out.status, str(out.status)),
                          out.reason.decode("utf-8", "replace"), out.attempts)

    def send_async(self, data, metadata=None):
        """Queues one tuple; returns a concurrent.futures.Future of its SendResult (or HioError). Blocks only
        while max_bytes_in_flight are held. The data is not copied: it is kept referenced until the result."""
        handle = self._live_handle()
        pointer, n, keepalive = _payload(data)
        future = concurrent.futures.Future()
        key = next(self._keys)
        with self._lock:
            self._pending[key] = (future, keepalive)
        code = self._lib.hio_send_async(handle, pointer, n, _metadata_bytes(metadata), 0, self._callback, key)
        if code != _native.HIO_OK:
            with self._lock:
                self._pending.pop(key, None)
            self._check(code)
        return future

    def send_many(self, items, metadata=None) -> BatchResult:
        """Sends every item of `items` (each what send() takes) and waits for all their results, in one call
        into the library: the tuples travel pipelined and the GIL is released for the whole batch, with no
        Future or callback per tuple. `metadata` is None, one object for every item, or a list or tuple with
        one entry per item (None: none). Returns a BatchResult. Raises HioError only when the call itself
        is refused (closed client); each tuple's own outcome is in the result."""
        handle = self._live_handle()
        if not isinstance(items, (list, tuple)):
            items = list(items)
        n = len(items)
        counts = _native.FlushCountsStruct()
        if n == 0:
            return BatchResult([], [], counts, 0)
        meta = None
        if isinstance(metadata, (list, tuple)):
            if len(metadata) != n:
                raise HioError(_native.HIO_ERR_INVALID_ARGUMENT,
                               f"{len(metadata)} metadata entries for {n} items")
            meta = (ctypes.c_char_p * n)(*(_metadata_bytes(m) for m in metadata))
        elif metadata is not None:
            meta = (ctypes.c_char_p * n)(*([_metadata_bytes(metadata)] * n))
        results = (_native.SendResultStruct * n)()
        codes = (ctypes.c_int32 * n)()
        if all(type(x) is bytes for x in items):  # the common case: no per-item work in Python
            data = (ctypes.c_char_p * n)(*items)
            lens = (ctypes.c_size_t * n)(*map(len, items))
            code = self._lib.hio_send_many(handle, n, data, lens, meta, results, codes, ctypes.byref(counts))
        else:
            # NumPy arrays travel as their .npy header followed by their own memory: no copy of the data.
            parts = [_parts(x) for x in items]
            heads = (ctypes.c_char_p * n)(*(p[0] for p in parts))
            head_lens = (ctypes.c_size_t * n)(*(len(p[0]) if p[0] else 0 for p in parts))
            data = (ctypes.c_char_p * n)(*(p[1] for p in parts))
            lens = (ctypes.c_size_t * n)(*(p[2] for p in parts))
            code = self._lib.hio_send_many_parts(handle, n, heads, head_lens, data, lens, meta, results, codes,
                                                 ctypes.byref(counts))
            del parts  # the library is done with every piece
        if code != _native.HIO_OK and counts.stored + counts.failed + counts.queued + counts.errors == 0:
            self._check(code)
        return BatchResult(results, codes, counts, n)

    def _on_done(self, user_data, code, result, message):
        # Runs on a library thread (ctypes takes the GIL). Must not raise.
        try:
            with self._lock:
                future, _ = self._pending.pop(user_data, (None, None))
            if future is None:
                return
            if code == _native.HIO_OK:
                r = result.contents
                future.set_result(SendResult(r.tuple_id, _native.STATUS_NAMES.get(r.status, str(r.status)),
                                             r.reason.decode("utf-8", "replace"), r.attempts))
            else:
                future.set_exception(HioError(code, (message or b"").decode("utf-8", "replace")))
        except Exception:  # noqa: BLE001 - nothing may escape into the C library's thread
            pass

    def flush(self, timeout=600.0):
        """Waits until every queued tuple has its result. Returns the counts of asynchronous results since
        the previous flush ({"stored", "failed", "queued", "errors"}); raises HioError on timeout. Errors
        of single tuples are in their futures, not raised here."""
        handle = self._live_handle()
        counts = _native.FlushCountsStruct()
        code = self._lib.hio_flush(handle, int(timeout * 1000), ctypes.byref(counts))
        if code == _native.HIO_ERR_TIMEOUT:
            self._check(code)
        return {"stored": counts.stored, "failed": counts.failed, "queued": counts.queued, "errors": counts.errors}

    def close(self):
        """Waits (up to the library's close timeout) for tuples in flight, then frees the client."""
        handle, self._handle = self._handle, None
        if handle is not None:
            self._lib.hio_client_free(handle)
        with self._lock:
            left, self._pending = self._pending, {}
        for future, _ in left.values():
            if not future.done():
                future.set_exception(HioError(_native.HIO_ERR_CLOSED, "client closed before the tuple had a result"))

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def __del__(self):
        try:
            self.close()
        except Exception:  # noqa: BLE001 - interpreter shutdown
            pass
