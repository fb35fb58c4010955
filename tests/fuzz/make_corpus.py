#!/usr/bin/env python3
"""Writes the seed corpus of the fuzz targets: tests/fuzz/corpus/<target>/<seed>, a few small valid and
invalid inputs each (the formats are in docs/protocol.md). Needs the zstd command for compressed
record batches. Reproducers of fixed crashes ("crash-*") and other inputs the fuzzers found are kept
beside these seeds; this script leaves them alone. Usage: /usr/bin/python3 tests/fuzz/make_corpus.py"""
import json
import os
import shutil
import struct
import subprocess
import tempfile

root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")


def write(target, name, data):
    d = os.path.join(root, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode())


# --- frame_header: 80-byte header, then optionally the receiver's maximum payload (u64) ---
def frame(type_=1, tuple_id=7, token=bytes(range(40)), payload=100, metadata=2, codec=0, flags=0,
          xxh3=0x1234, magic=0x464F4948, version=1):
    return (struct.pack("<IHHQ", magic, version, type_, tuple_id) + token +
            struct.pack("<QIHHQ", payload, metadata, codec, flags, xxh3))


write("frame_header", "data", frame())
write("frame_header", "data_zstd", frame(codec=1))
write("frame_header", "ack_failed", frame(type_=2, token=bytes(40), payload=6, metadata=0, flags=1, xxh3=0))
write("frame_header", "error_busy", frame(type_=3, token=bytes(40), payload=4, metadata=0, flags=7, xxh3=0))
write("frame_header", "end", frame(type_=4, tuple_id=0, token=bytes(40), payload=0, metadata=0, xxh3=0))
write("frame_header", "data_max_payload", frame(payload=4096) + struct.pack("<Q", 4096))
write("frame_header", "bad_magic", frame(magic=0x50545448))
write("frame_header", "bad_version", frame(version=2))
write("frame_header", "bad_type", frame(type_=9))
write("frame_header", "bad_codec", frame(codec=2))
write("frame_header", "metadata_too_long", frame(metadata=(1 << 20) + 1))
write("frame_header", "payload_too_large", frame(payload=4097) + struct.pack("<Q", 4096))
write("frame_header", "truncated", frame()[:79])


# --- record_batch: one mode byte (odd: the rest is compressed by the target), then the batch ---
def string(s):
    b = s.encode()
    return struct.pack("<Q", len(b)) + b


def record(tuple_id, series=True, status=0):
    r = struct.pack("<QQ", tuple_id, 0) + string("src") + struct.pack("<QQB", 4096, 0xabcdef, status)
    r += string("") + string('{"run":1}') + string("w1/0") + struct.pack("<Iq", 0, 1700000000000)
    r += struct.pack("<Q", 2) + string("mean") + struct.pack("<d", 0.5) + string("var") + struct.pack("<d", 2.0)
    if series:
        r += struct.pack("<Q", 1) + string("sum") + struct.pack("<Q", 3) + struct.pack("<3f", 1, 2, 3)
    return r


def batch(magic, records):
    return b"\x01" + struct.pack("<IQ", magic, len(records)) + b"".join(records)


v2 = batch(0x32524948, [record(1), record(2)])
write("record_batch", "raw_v2_two", b"\x01" + v2)
write("record_batch", "raw_v2_empty", b"\x01" + batch(0x32524948, []))
write("record_batch", "raw_v1_one", b"\x01" + batch(0x31524948, [record(3, series=False)]))
write("record_batch", "raw_unknown_magic", b"\x01" + batch(0x33524948, []))
write("record_batch", "raw_truncated", b"\x01" + v2[:-5])
write("record_batch", "raw_failed", b"\x01" + batch(0x32524948, [record(4, status=1)]))
write("record_batch", "raw_unknown_status", b"\x01" + batch(0x32524948, [record(5, status=7)]))
write("record_batch", "raw_huge_count", b"\x01" + b"\x01" + struct.pack("<IQ", 0x32524948, 1 << 40))
with tempfile.TemporaryDirectory() as tmp:
    raw = os.path.join(tmp, "batch")
    with open(raw, "wb") as f:
        f.write(v2)
    subprocess.run(["zstd", "-q", "-f", "--no-check", raw, "-o", raw + ".zst"], check=True)
    with open(raw + ".zst", "rb") as f:
        zst = f.read()
write("record_batch", "zstd_v2_two", b"\x00" + zst)
write("record_batch", "zstd_truncated", b"\x00" + zst[:-3])
write("record_batch", "not_zstd", b"\x00" + b"HIR2 but not compressed")


# --- npy: a tuple payload ---
def npy(descr, shape, payload, fortran=False, major=1):
    header = "{'descr': '%s', 'fortran_order': %s, 'shape': (%s), }" % (
        descr, "True" if fortran else "False", "".join("%d, " % d for d in shape))
    length = 2 if major == 1 else 4
    pad = (-(6 + 2 + length + len(header) + 1)) % 64
    header = header + " " * pad + "\n"
    return (b"\x93NUMPY" + bytes([major, 0]) + struct.pack("<H" if major == 1 else "<I", len(header)) +
            header.encode() + payload)


write("npy", "f8_2x3", npy("<f8", (2, 3), struct.pack("<6d", 0, 1, 2, 3, 4, float("nan"))))
write("npy", "f4_1x2x3_big_fortran_v2", npy(">f4", (1, 2, 3), struct.pack(">6f", *range(6)), True, 2))
write("npy", "u1_1x1x2x2_v3", npy("|u1", (1, 1, 2, 2), bytes([0, 1, 254, 255]), major=3))
write("npy", "i8_2x2", npy("<i8", (2, 2), struct.pack("<4q", -1, 2**63 - 1, -2**63, 5)))
write("npy", "i2_native", npy("=i2", (2, 1), struct.pack("<2h", -7, 7)))
write("npy", "bad_magic", b"\x93NUMPX\x01\x00")
write("npy", "truncated_header", npy("<f8", (2, 3), b"")[:30])
write("npy", "size_mismatch", npy("<f8", (2, 3), struct.pack("<5d", 0, 1, 2, 3, 4)))
write("npy", "structured", npy("[('a', '<f8')]", (2, 2), bytes(32)).replace(b"'[(", b"[(").replace(b")]'", b")]"))
write("npy", "rank1", npy("<f8", (4,), bytes(32)))
write("npy", "huge_shape", npy("<f8", (2**32, 2**32), bytes(8)))

# --- lease_body: the JSON body of POST /v1/streams ---
for name, body in {
    "empty_object": {},
    "count_source": {"count": 4, "source": "sim", "client": "sim-1", "transport": "auto", "bytes": 4096},
    "retry": {"retry": {"first": 10, "count": 2}, "ends": 3},
    "wrong_types": {"count": -1, "source": 5, "transport": ["ucx"], "retry": {"first": "x"}},
    "float_count": {"count": 1.5e300, "bytes": 1.0},
}.items():
    write("lease_body", name, json.dumps(body))
write("lease_body", "deep", "[" * 65 + "]" * 65)
write("lease_body", "at_limit", "[" * 64 + "]" * 64)
write("lease_body", "not_json", '{"count": 4,')
write("lease_body", "retry_issued", json.dumps({"retry": {"first": 12, "count": 2, "issued": {
    "first": 10, "count": 64, "key": "00112233445566778899aabbccddeeff"}}, "source": "sim"}))
write("lease_body", "repeated_count", '{"count": 1, "source": "sim", "count": 65536}')
write("lease_body", "repeated_nested", '{"retry": {"first": 10, "first": 1}, "count": 2}')
write("lease_body", "escapes", '{"source": "\\u00e9\\ud83d\\ude00\\"\\\\", "transport": "tcp"}')

# --- metadata: the metadata field of a DATA frame ---
write("metadata", "object", '{"run": 1, "params": {"k": [1, 2.5, null, true]}, "name": "r\\u00e9"}')
write("metadata", "empty_object", " {} ")
write("metadata", "array", "[1, 2]")
write("metadata", "string", '"{"')
write("metadata", "unclosed", '{"a": ')
write("metadata", "deep", '{"a":' * 65 + "1" + "}" * 65)
write("metadata", "bom_object", b"\xef\xbb\xbf{}")
write("metadata", "brackets_in_string", '{"a": "[[[[{{{{"}')
write("metadata", "nul_after_object", b'{"a": 1}\x00[[[')
