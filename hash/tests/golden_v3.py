#!/usr/bin/env python3
"""Computes the version 3 golden digests of long values from hash/ENCODING.md
alone (no Rust), so that tests/golden.rs can check its table against an
independent encoder. It needs the `blake3` package from PyPI (the chunk
digests); run from hash/tests/:

    python3 -m venv /tmp/hashvenv && /tmp/hashvenv/bin/pip install blake3
    /tmp/hashvenv/bin/python golden_v3.py > golden_v3.txt
"""
import hashlib
import struct

from blake3 import blake3

MIB = 1 << 20
DOMAIN = b"jobcache-hash\0" + struct.pack("<I", 3)
TAG_VALUE, TAG_BYTES, TAG_VALUE_TREE, TAG_BYTES_TREE = 1, 2, 3, 4


def varint(n):
    out = bytearray()
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def root(run):
    # SHA-256 of the chunks' BLAKE3-256 digests, then u64_le(length).
    sha = hashlib.sha256()
    for at in range(0, len(run), MIB):
        sha.update(blake3(run[at:at + MIB]).digest())
    sha.update(struct.pack("<Q", len(run)))
    return sha.digest()


def item(encoding, short_tag, tree_tag):
    if len(encoding) >= MIB:
        return bytes([tree_tag]) + root(encoding)
    return bytes([short_tag]) + encoding


def value_digest(encoding):
    return hashlib.sha256(DOMAIN + item(encoding, TAG_VALUE, TAG_VALUE_TREE)).hexdigest()


def raw_digest(data):
    short = varint(len(data)) + data
    body = bytes([TAG_BYTES_TREE]) + root(data) if len(data) >= MIB else bytes([TAG_BYTES]) + short
    return hashlib.sha256(DOMAIN + body).hexdigest()


def pattern(n):
    return bytes((i * 31 + i // 251) % 256 for i in range(n))


def array(shape, floats):
    # ndarray's serde form: struct { v: 1u8, dim: tuple of usize, data: seq }
    dim = b"".join(varint(d) for d in shape)
    data = varint(len(floats)) + b"".join(struct.pack("<d", x) for x in floats)
    return b"\x01" + dim + data


floats = [i * 0.25 for i in range(3 * MIB // 8)]
rows = [
    ("vec_u8_1MiB_minus_1", value_digest(varint(MIB - 4) + pattern(MIB - 4))),
    ("vec_u8_1MiB_tree", value_digest(varint(MIB - 3) + pattern(MIB - 3))),
    ("bytes_3MiB_plus_5_tree", value_digest(varint(3 * MIB + 5) + pattern(3 * MIB + 5))),
    ("array1_f64_3MiB_tree", value_digest(array([len(floats)], floats))),
    ("array2_f64_3MiB_c_tree", value_digest(array([768, 512], floats))),
    ("array2_f64_3MiB_fortran_tree", value_digest(array([768, 512], floats))),
    ("raw_bytes_2MiB_plus_1_tree", raw_digest(pattern(2 * MIB + 1))),
]
for name, digest in rows:
    print(name, digest)
