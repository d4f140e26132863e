"""Writes dsstate_snapshot.msgpack: ipfs-cluster's state/dsstate snapshot (State.Marshal) of the
Go protobuf fixtures minimal_v0, full_v1, meta_pin, clusterdag_pin and shard_pin, in that order.

Go's Marshal encodes, for each datastore entry, serialEntry{Key: <key without namespace>,
Value: <stored bytes>} with ugorji/go codec's default MsgpackHandle: a 2-entry map with the
struct's codec tags "k" then "v", strings and []byte both in msgpack's legacy raw family
(WriteExt is off). msgpack-python's packer with use_bin_type=False writes the same family, and
is independent of the Rust code under test. The key is go-ipfs-ds-help's NewKeyFromBinary of
the CID bytes (RFC 4648 base32, upper case, no padding) without its leading "/"; the value is
the pin's ProtoMarshal bytes (the *.bin fixtures). The CID bytes come from field 1 of each
fixture's protobuf.

    python3 -m venv /tmp/pvmsgpack && /tmp/pvmsgpack/bin/pip install msgpack
    /tmp/pvmsgpack/bin/python core/testdata/golden/generate_msgpack.py
"""

import base64
import pathlib

import msgpack

HERE = pathlib.Path(__file__).parent
FIXTURES = ["minimal_v0", "full_v1", "meta_pin", "clusterdag_pin", "shard_pin"]


def varint(buf, i):
    shift = value = 0
    while True:
        b = buf[i]
        i += 1
        value |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            return value, i


def cid_bytes(record):
    assert record[0] == 0x0A, "field 1 (Cid, bytes) comes first"
    length, start = varint(record, 1)
    return record[start : start + length]


out = bytearray()
for name in FIXTURES:
    value = (HERE / f"{name}.bin").read_bytes()
    key = base64.b32encode(cid_bytes(value)).decode().rstrip("=")
    out += msgpack.packb({"k": key, "v": value}, use_bin_type=False)
(HERE / "dsstate_snapshot.msgpack").write_bytes(bytes(out))
print(f"dsstate_snapshot.msgpack: {len(FIXTURES)} entries, {len(out)} bytes")
