#!/usr/bin/env python3
"""Writes the checked-in seed corpus under fuzz/corpus/<target>/ (standard library only).

Seeds are real inputs: the golden ipfs-cluster fixtures (core/testdata/golden), the 20-pin
export in examples/pinset.ndjson, and hand-encoded KV-layout records. Re-running it rewrites
the same files; it never deletes other seeds. Run from anywhere: python3 fuzz/make_seeds.py
"""

import hashlib
import pathlib

FUZZ = pathlib.Path(__file__).resolve().parent
ROOT = FUZZ.parent
GOLDEN = ROOT / "core" / "testdata" / "golden"
CORPUS = FUZZ / "corpus"


def seed(target, name, data):
    d = CORPUS / target
    d.mkdir(parents=True, exist_ok=True)
    (d / name).write_bytes(data if isinstance(data, bytes) else data.encode())


# --- protobuf encoding, enough for the KV layout's prost messages -------------------------


def varint(n):
    n &= (1 << 64) - 1
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def f_varint(tag, n):
    return varint(tag << 3) + varint(n) if n else b""


def f_bytes(tag, b):
    b = b.encode() if isinstance(b, str) else b
    return varint(tag << 3 | 2) + varint(len(b)) + b if b else b""


def f_msg(tag, b):
    return varint(tag << 3 | 2) + varint(len(b)) + b


B58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"


def b58decode(s):
    n = 0
    for c in s:
        n = n * 58 + B58.index(c)
    raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return b"\0" * (len(s) - len(s.lstrip("1"))) + raw


def object_record(size, data, version, stage_id):
    return (f_varint(1, size) + f_bytes(2, hashlib.sha256(data).digest())
            + f_varint(3, version) + f_bytes(4, stage_id))


def order_preserving(n):
    return ((n & ((1 << 64) - 1)) ^ (1 << 63)).to_bytes(8, "big")


# --- protobuf_decode: Go's bytes, a storage record, an export stream ----------------------

for f in sorted(GOLDEN.glob("*.bin")):
    seed("protobuf_decode", f.name, f.read_bytes())

# --- ndjson_import: golden lines, the example export in chunks, BOM/CRLF, a bad line --------

for f in sorted(GOLDEN.glob("*.ndjson")):
    seed("ndjson_import", f.name, f.read_bytes())
lines = (ROOT / "examples" / "pinset.ndjson").read_bytes().splitlines(keepends=True)
for i in range(0, len(lines), 5):
    seed("ndjson_import", f"pinset_{i // 5 + 1}.ndjson", b"".join(lines[i:i + 5]))
minimal = (GOLDEN / "minimal_v0.ndjson").read_bytes().rstrip(b"\n")
full = (GOLDEN / "full_v1.ndjson").read_bytes().rstrip(b"\n")
seed("ndjson_import", "bom_crlf_blank.ndjson", b"\xef\xbb\xbf" + minimal + b"\r\n\r\n" + full + b"\r\n")
seed("ndjson_import", "duplicate_then_bad.ndjson",
     minimal + b"\n" + full + b"\n" + minimal + b"\n" + b'{"cid":"not-a-cid"}\n' + full + b"\n")

# --- manifest_decode: KV layout records and keys -------------------------------------------

cid_v0 = b58decode("QmYwAPJzv5CZsnA625s3Xf2nemtYgPpHdWEz79ojWnPbdG")
parts = [(b"a,b\n1,2\n", "part-0001.csv"), (b"3,4\n", "data/part-0002.csv")]
objects = b"".join(
    f_msg(5, f_bytes(1, name) + f_msg(2, object_record(len(data), data, 7, f"stage-{i}")))
    for i, (data, name) in enumerate(parts)
)
set_record = (f_varint(1, 7) + f_varint(2, 1_795_000_000) + f_varint(3, 123_456_789)
              + f_bytes(4, b'{"rows":3,"schema":"v1"}') + objects)
seed("manifest_decode", "set_record.bin", set_record)
seed("manifest_decode", "set_record_pre_epoch.bin", f_varint(1, 1) + f_varint(2, -86_400) + objects)
for name in ["full_v1.bin", "record_extensions.bin", "minimal_v0.bin"]:
    record = f_varint(1, 42) + f_bytes(2, (GOLDEN / name).read_bytes())
    seed("manifest_decode", "pin_" + name, b"\x02" + record)
obj_key = b"sales/date=2026-11-22/part-0001.csv\0sales/date=2026-11-22"
seed("manifest_decode", "objects_entry.bin",
     bytes([len(obj_key)]) + obj_key + object_record(8, parts[0][0], 7, "stage-0"))
seed("manifest_decode", "object_key.bin", b"a/b/c\0a")
expiry_at = 1_795_000_000
seed("manifest_decode", "expiry_key.bin", order_preserving(expiry_at // 3600)
     + order_preserving(expiry_at) + (500).to_bytes(4, "big") + cid_v0)
seed("manifest_decode", "staged_record.bin", f_bytes(1, "sales") + f_bytes(2, "part-0001.csv")
     + f_varint(3, 8) + f_bytes(4, hashlib.sha256(parts[0][0]).digest())
     + f_varint(5, 1_795_000_000) + f_varint(6, 5))

# --- url_parse ---------------------------------------------------------------------------

urls = {
    "memory": "memory:",
    "memory_slashes": "MEMORY://",
    "rocksdb": "rocksdb:///var/lib/x?sync=false",
    "rocksdb_escaped": "rocksdb:///var/lib/pin%20vault",
    "sled": "sled:///srv/pins?sync=1",
    "fs": "fs:///srv/objects",
    "s3": "s3://bucket/prefix?region=x",
    "s3_endpoint": "s3://b/p/q/?endpoint=http%3A%2F%2F127.0.0.1%3A9000&region=x&allow_http=true",
    "gs": "gs://bucket/a/b",
    "az": "az://container?account=dev",
    "scylla": "scylla://h1:9042,h2/ks?tls=true",
    "scylla_v6": "scylla://10.0.0.1:9042,db2,[::1]:19042/pins?local_dc=dc1&replication=3",
    "bad_twice": "sled:///x?sync=1&sync=0",
    "bad_scheme": "redis://localhost/0",
}
for name, url in urls.items():
    seed("url_parse", name + ".txt", url)

# --- names: whole names, and set 0xFF object pairs ------------------------------------------

names = {
    "plain": b"a/b.txt",
    "partition": b"sales/date=2026-11-22",
    "dotdot": b"../x",
    "inner_dotdot": b"a/../../x",
    "dots_in_segment": b"a.b/c..d",
    "absolute": b"/etc/passwd",
    "reserved": b"a/_pinvault.manifest",
    "unicode": "ünïcode/日本".encode(),
    "pair": b"sales/2026\xffdata/part-1.parquet",
    "pair_lookalike": b"a/b\xffc",
    "pair_bad_name": b"a\xff../c",
}
for name, data in names.items():
    seed("names", name + ".bin", data)
