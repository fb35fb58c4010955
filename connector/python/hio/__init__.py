"""hio connector for Python: send tuples to an hio cluster and get an end-to-end acknowledgement.

    import hio, numpy as np
    with hio.Client("http://127.0.0.1:8080", source="my-simulation") as c:
        r = c.send(np.zeros((100, 64)), metadata={"k": 0.3})   # -> SendResult(tuple_id=..., status="stored")
        futures = [c.send_async(b"raw bytes") for _ in range(10)]
        c.flush()

Data may be bytes, bytearray, a memoryview (or anything with the buffer protocol), or a NumPy array, which
is sent as a .npy payload. A thin layer over libhio_connector.so (ctypes, see _native.py): sends release
the GIL, and a Client may be used from several threads at once.
"""

import concurrent.futures
import dataclasses
import io
import itertools
import json
import sys
import threading
import ctypes

from . import _native

__all__ = ["Client", "SendResult", "HioError", "version"]


class HioError(Exception):
    """A tuple got no acknowledgement, or a call failed. `code` is an HIO_ERR_* value of hio_connector.h."""

    def __init__(self, code, message):
        super().__init__(message)
        self.code = code


@dataclasses.dataclass(frozen=True)
class SendResult:
    tuple_id: int
    status: str  # "stored", "failed" (processed and failed: final), or "queued" (durably in the master's queue)
    reason: str
    attempts: int


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


def _npy(array):
    np = sys.modules["numpy"]
    buf = io.BytesIO()
    np.lib.format.write_array(buf, array, allow_pickle=False)
    return buf.getbuffer()  # a writable view of the .npy bytes, no second copy


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
        """Sends one tuple and waits for its acknowledgement. Returns a SendResult; raises HioError."""
        handle = self._live_handle()
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
