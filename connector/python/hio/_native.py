"""ctypes binding of libhio_connector.so (the C ABI in connector/include/hio_connector.h).

Internal to the package: use hio.Client. The library is looked up, in order, at $HIO_CONNECTOR_LIB (a file,
or a folder holding libhio_connector.so), in build/lib/ of the source tree this package sits in, in
<prefix>/lib when the package is installed (<prefix>/lib/python3/dist-packages/hio: cmake --install),
and through the system loader.
"""

import ctypes
import os
import pathlib
import threading

LIBRARY_NAME = "libhio_connector.so"

HIO_OK = 0
HIO_ERR_INVALID_ARGUMENT = 1
HIO_ERR_LEASE_REFUSED = 2
HIO_ERR_LEASE_TIMEOUT = 3
HIO_ERR_ATTEMPTS_EXHAUSTED = 4
HIO_ERR_CLOSED = 5
HIO_ERR_TIMEOUT = 6
HIO_ERR_BAD_LEASE = 7
HIO_ERR_CONNECT_FAILED = 8
HIO_ERR_INTERNAL = 99

HIO_SEND_COPY = 1

STATUS_NAMES = {0: "stored", 1: "failed", 2: "queued"}


class SendResultStruct(ctypes.Structure):
    _fields_ = [
        ("tuple_id", ctypes.c_uint64),
        ("status", ctypes.c_int32),
        ("attempts", ctypes.c_uint32),
        ("reason", ctypes.c_char * 256),
    ]


class FlushCountsStruct(ctypes.Structure):
    _fields_ = [
        ("stored", ctypes.c_uint64),
        ("failed", ctypes.c_uint64),
        ("queued", ctypes.c_uint64),
        ("errors", ctypes.c_uint64),
    ]


CALLBACK = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_int, ctypes.POINTER(SendResultStruct), ctypes.c_char_p)

_lock = threading.Lock()
_lib = None


def _candidates():
    env = os.environ.get("HIO_CONNECTOR_LIB")
    if env:
        p = pathlib.Path(env)
        yield str(p / LIBRARY_NAME) if p.is_dir() else str(p)
        return  # an explicit choice is not second-guessed
    package = pathlib.Path(__file__).resolve().parent  # <repo>/connector/python/hio
    for base in (package.parent.parent, package.parent.parent.parent):
        candidate = base / "build" / "lib" / LIBRARY_NAME
        if candidate.exists():
            yield str(candidate)
    installed = package.parents[2] / LIBRARY_NAME  # <prefix>/lib/python3/dist-packages/hio -> <prefix>/lib
    if installed.exists():
        yield str(installed)
    yield LIBRARY_NAME


def _declare(lib):
    c_void_p, c_char_p, c_int, c_size_t = ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int, ctypes.c_size_t
    lib.hio_last_error.argtypes = []
    lib.hio_last_error.restype = c_char_p
    lib.hio_version.argtypes = []
    lib.hio_version.restype = c_char_p
    lib.hio_client_new.argtypes = [c_char_p, c_char_p]
    lib.hio_client_new.restype = c_void_p
    lib.hio_client_set_option.argtypes = [c_void_p, c_char_p, c_char_p]
    lib.hio_client_set_option.restype = c_int
    lib.hio_send.argtypes = [c_void_p, c_void_p, c_size_t, c_char_p, ctypes.POINTER(SendResultStruct)]
    lib.hio_send.restype = c_int
    lib.hio_send_async.argtypes = [c_void_p, c_void_p, c_size_t, c_char_p, c_int, CALLBACK, c_void_p]
    lib.hio_send_async.restype = c_int
    lib.hio_send_many.argtypes = [c_void_p, c_size_t, ctypes.POINTER(c_char_p), ctypes.POINTER(c_size_t),
                                  ctypes.POINTER(c_char_p), ctypes.POINTER(SendResultStruct),
                                  ctypes.POINTER(ctypes.c_int32), ctypes.POINTER(FlushCountsStruct)]
    lib.hio_send_many.restype = c_int
    lib.hio_send_many_parts.argtypes = [c_void_p, c_size_t, ctypes.POINTER(c_char_p), ctypes.POINTER(c_size_t),
                                        ctypes.POINTER(c_char_p), ctypes.POINTER(c_size_t),
                                        ctypes.POINTER(c_char_p), ctypes.POINTER(SendResultStruct),
                                        ctypes.POINTER(ctypes.c_int32), ctypes.POINTER(FlushCountsStruct)]
    lib.hio_send_many_parts.restype = c_int
    lib.hio_flush.argtypes = [c_void_p, ctypes.c_int64, ctypes.POINTER(FlushCountsStruct)]
    lib.hio_flush.restype = c_int
    lib.hio_client_free.argtypes = [c_void_p]
    lib.hio_client_free.restype = None
    return lib


def load():
    """The loaded library (once per process). Raises OSError naming every place that was tried."""
    global _lib
    with _lock:
        if _lib is not None:
            return _lib
        tried = []
        for candidate in _candidates():
            try:
                _lib = _declare(ctypes.CDLL(candidate))
                return _lib
            except OSError as e:
                tried.append(f"{candidate}: {e}")
        raise OSError(
            "cannot load the hio connector library; set HIO_CONNECTOR_LIB to libhio_connector.so. Tried:\n  "
            + "\n  ".join(tried)
        )


def last_error(lib):
    message = lib.hio_last_error()
    return message.decode("utf-8", "replace") if message else ""
