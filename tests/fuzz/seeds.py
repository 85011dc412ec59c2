#!/usr/bin/env python3
"""tests/fuzz/seeds.py - writes the hand-made seeds of the decoder corpus.

Run from the top of the tree: python3 tests/fuzz/seeds.py. It writes
tests/fuzz/corpus/decoder/{raw,snappy}-*.bin: small decoded WriteRequests
(raw-*) that reach the scanner's corners, and snappy bodies (snappy-*) of
some of them and of one capture, compressed with the system libsnappy. The
captures themselves (tests/fixtures/req*.bin) are copied as they are.
"""
import ctypes
import ctypes.util
import os
import struct

OUT = "tests/fuzz/corpus/decoder"

snappy = ctypes.CDLL(ctypes.util.find_library("snappy") or "libsnappy.so.1")


def compress(raw):
    cap = ctypes.c_size_t(snappy.snappy_max_compressed_length(
        ctypes.c_size_t(len(raw))))
    out = ctypes.create_string_buffer(cap.value)
    if snappy.snappy_compress(raw, ctypes.c_size_t(len(raw)), out,
                              ctypes.byref(cap)) != 0:
        raise RuntimeError("snappy_compress failed")
    return out.raw[:cap.value]


def uncompress(z):
    n = ctypes.c_size_t(0)
    if snappy.snappy_uncompressed_length(z, ctypes.c_size_t(len(z)),
                                         ctypes.byref(n)) != 0:
        raise RuntimeError("bad snappy block")
    out = ctypes.create_string_buffer(n.value)
    if snappy.snappy_uncompress(z, ctypes.c_size_t(len(z)), out,
                                ctypes.byref(n)) != 0:
        raise RuntimeError("bad snappy block")
    return out.raw[:n.value]


def varint(v):
    b = bytearray()
    while v >= 0x80:
        b.append((v & 0x7F) | 0x80)
        v >>= 7
    b.append(v)
    return bytes(b)


def tag(field, wt):
    return varint(field << 3 | wt)


def ld(field, payload):
    return tag(field, 2) + varint(len(payload)) + payload


def vi(field, v):
    return tag(field, 0) + varint(v & 0xFFFFFFFFFFFFFFFF)


def f64(field, d):
    return tag(field, 1) + struct.pack("<d", d)


def zz(v):
    return (v << 1) ^ (v >> 63)


def label(name, value):
    return ld(1, ld(1, name.encode()) + ld(2, value.encode()))


def sample(value, ts):
    return ld(2, f64(1, value) + vi(2, ts))


def series(labels, *rest):
    return ld(1, b"".join(label(n, v) for n, v in labels) + b"".join(rest))


UP = [("__name__", "up"), ("instance", "localhost:9090"), ("job", "prom")]
TS = 1700000000000

seeds = {}
seeds["raw-empty"] = b""
seeds["raw-one-series"] = series(UP, sample(1.0, TS))
seeds["raw-two-series-stale"] = (
    series(UP, sample(1.0, TS), sample(0.0, TS + 15000)) +
    series([("__name__", "up"), ("job", "node")],
           ld(2, struct.pack("<BQ", 0x09, 0x7FF0000000000002) + vi(2, TS))))
seeds["raw-tenant-label"] = series(
    [("__name__", "x"), ("job", "j"), ("tenant", "other")], sample(2.5, TS))
seeds["raw-exemplar"] = series(
    [("__name__", "http_requests_total"), ("job", "api")],
    sample(10, TS),
    ld(3, ld(1, ld(1, b"trace_id") + ld(2, b"4bf92f3577b34da6")) +
       f64(2, 0.25) + vi(3, TS)))
span = ld(11, vi(1, zz(0)) + vi(2, 2)) + ld(11, vi(1, zz(3)) + vi(2, 1))
seeds["raw-histogram"] = series(
    [("__name__", "rpc_latency_seconds"), ("job", "rpc")],
    ld(4, vi(1, 7) + f64(3, 1.5) + vi(4, zz(3)) + f64(5, 1e-128) +
       vi(6, 1) + span + ld(12, varint(zz(2)) + varint(zz(-1)) +
                             varint(zz(1))) +
       vi(14, 2) + vi(15, TS)),
    ld(4, f64(2, 7.0) + f64(7, 1.0) + ld(8, vi(1, zz(-2)) + vi(2, 1)) +
       ld(13, struct.pack("<3d", 1, 2, 4)) + tag(10, 1) +
       struct.pack("<d", 0.5) + vi(9, zz(1)) + vi(15, TS)))
seeds["raw-metadata"] = (
    series(UP, sample(1.0, TS)) +
    ld(3, vi(1, 1) + ld(2, b"http_requests_total") +
       ld(4, b"Total HTTP requests.") + ld(5, b"requests")) +
    ld(3, vi(1, 2) + ld(2, b"temp_celsius") + ld(4, "Température".encode())))
# Labels after samples, as a sender may write them.
seeds["raw-interleaved"] = ld(1, sample(1.0, TS) + label("__name__", "a") +
                              sample(2.0, TS + 1) + label("job", "b"))
# Non-canonical label encodings: value before name, a repeated name (the last
# wins), an unknown field inside a label, a two-byte length.
seeds["raw-odd-labels"] = ld(1, (
    ld(1, ld(2, b"v1") + ld(1, b"__name__")) +
    ld(1, ld(1, b"zzz") + ld(1, b"a_label") + ld(2, b"v2") + vi(7, 1)) +
    ld(1, ld(1, b"b_label") + ld(2, b"x" * 200)) +
    sample(3.0, TS)))
# More labels than the scanner keeps on its stack, and more canonical label
# bytes than it hashes on the stack.
seeds["raw-many-labels"] = series(
    [("__name__", "wide")] + [("l%03d" % i, "value-%03d-" % i + "v" * 30)
                              for i in range(80)],
    sample(1.0, TS))
# Unknown fields: top level (2 is reserved), in a series, in a sample, fixed32.
seeds["raw-unknown-fields"] = (
    ld(2, b"reserved") +
    series(UP, ld(2, f64(1, 1.0) + vi(2, TS) + vi(3, 1)), vi(9, 5),
           tag(10, 5) + b"\x01\x02\x03\x04") +
    vi(6, 300) + tag(7, 1) + b"\x00" * 8)
seeds["raw-v2"] = ld(4, b"\x0a\x00") + ld(5, b"")
seeds["raw-bad-unsorted"] = series([("job", "a"), ("__name__", "b")],
                                   sample(1.0, TS))
seeds["raw-bad-utf8"] = series([("__name__", "a")],
                               ld(1, ld(1, b"job") + ld(2, b"\xc0\xaf")))

os.makedirs(OUT, exist_ok=True)
for name, raw in seeds.items():
    with open(os.path.join(OUT, name + ".bin"), "wb") as f:
        f.write(raw)
for name in ("raw-one-series", "raw-histogram", "raw-many-labels",
             "raw-interleaved", "raw-v2"):
    with open(os.path.join(OUT, "snappy-" + name[4:] + ".bin"), "wb") as f:
        f.write(compress(seeds[name]))
# One capture decoded, so that raw inputs start from a real request too.
with open("tests/fixtures/req00014.bin", "rb") as f:
    capture = uncompress(f.read())
with open(os.path.join(OUT, "raw-req00014.bin"), "wb") as f:
    f.write(capture)
