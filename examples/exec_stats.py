#!/usr/bin/env python3
"""An example hio exec processor: a persistent process speaking the processor protocol on stdin/stdout.

    hio-worker --processor "exec:/usr/bin/python3 /path/to/exec_stats.py" ...

The worker starts one per channel and sends it every tuple of that channel (docs/processors.md has the
protocol byte by byte). Features of each tuple: bytes, mean_byte, calls (tuples this process has served);
for a .npy payload, when NumPy is importable, also elements and mean (of the array's values). For tests,
the tuple's metadata can ask it to misbehave:
    "crash": true   dies of SIGSEGV      "hang": true   never answers      "fail": true   answers "failed"
    "garbage": true writes text instead of a response
Standard library only; NumPy optional.
"""
import io
import json
import os
import signal
import struct
import sys
import time

REQUEST = struct.Struct("<4sQIQ")    # magic "HIOQ", tuple id, metadata length, payload length
RESPONSE = struct.Struct("<4sIQII")  # magic "HIOR", status, tuple id, feature count, error length
OK, FAILED = 0, 1

try:
    import numpy
except ImportError:  # optional
    numpy = None


def read_exactly(stream, n):
    """n bytes, or None at the end of the input (the worker is done with us)."""
    data = stream.read(n)
    if len(data) < n:
        return None
    return data


def response(tuple_id, features=(), error=None):
    """The response frame: features a list of (name, value), or error text for a failed tuple."""
    if error is not None:
        text = error.encode("utf-8")
        return RESPONSE.pack(b"HIOR", FAILED, tuple_id, 0, len(text)) + text
    parts = [RESPONSE.pack(b"HIOR", OK, tuple_id, len(features), 0)]
    for name, value in features:
        encoded = name.encode("utf-8")
        parts.append(struct.pack("<I", len(encoded)) + encoded + struct.pack("<d", float(value)))
    return b"".join(parts)


def features_of(payload, calls):
    n = len(payload)
    if numpy is not None:
        mean_byte = float(numpy.frombuffer(payload, dtype=numpy.uint8).mean()) if n else 0.0
    else:
        mean_byte = sum(payload) / n if n else 0.0
    features = [("bytes", n), ("mean_byte", mean_byte), ("calls", calls)]
    if numpy is not None and payload[:6] == b"\x93NUMPY":
        array = numpy.load(io.BytesIO(payload), allow_pickle=False)
        features += [("elements", array.size), ("mean", float(array.mean()) if array.size else 0.0)]
    return features


def main():
    requests = sys.stdin.buffer
    # The protocol owns the real stdout; anything else printed (print(), a library's chatter) goes to
    # stderr, which the worker copies into its log.
    responses = os.fdopen(os.dup(sys.stdout.fileno()), "wb")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    sys.stdout = sys.stderr
    print(f"exec_stats: pid {os.getpid()} serving channel {os.environ.get('HIO_CHANNEL', '?')}", file=sys.stderr,
          flush=True)
    calls = 0
    while True:
        header = read_exactly(requests, REQUEST.size)
        if header is None:
            return 0
        magic, tuple_id, metadata_len, payload_len = REQUEST.unpack(header)
        if magic != b"HIOQ":
            print(f"exec_stats: bad request magic {magic!r}", file=sys.stderr)
            return 3
        metadata = read_exactly(requests, metadata_len) if metadata_len else b""
        payload = read_exactly(requests, payload_len) if payload_len else b""
        if metadata is None or payload is None:
            return 3
        calls += 1
        try:
            meta = json.loads(metadata) if metadata else {}
        except ValueError:
            meta = {}
        if not isinstance(meta, dict):
            meta = {}
        if meta.get("crash") is True:
            os.kill(os.getpid(), signal.SIGSEGV)
        if meta.get("hang") is True:
            while True:
                time.sleep(3600)
        if meta.get("garbage") is True:
            responses.write(b"this is not a response\n")
            responses.flush()
            continue
        if meta.get("fail") is True:
            frame = response(tuple_id, error="asked to fail by the tuple's metadata")
        else:
            try:
                frame = response(tuple_id, features_of(payload, calls))
            except Exception as e:  # noqa: BLE001 - a bad tuple fails alone; the process carries on
                frame = response(tuple_id, error=f"{type(e).__name__}: {e}")
        responses.write(frame)
        responses.flush()


if __name__ == "__main__":
    sys.exit(main())
