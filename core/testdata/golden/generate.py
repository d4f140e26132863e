#!/usr/bin/env python3
"""Regenerates the protobuf golden fixtures (*.bin) of pinvault-core.

The bytes come from Google's official Python protobuf runtime, not from pinvault: the script
compiles core/proto/types.proto (and pinvault_record.proto) with grpc_tools.protoc, fills the
messages following ipfs-cluster's Go `api.Pin.ProtoMarshal` rules (see README.md), and
serializes them. Python's protobuf, like Go's proto.Marshal, writes fields in tag order and
omits proto3 defaults, so the output is what Go writes for the same pin.

CIDs, peer IDs and multiaddrs are turned into bytes here by small independent decoders
(base58btc, base32, a multiaddr table for the few protocols used), so that the fixtures do not
depend on the Rust crates under test.

Usage (from the repository root):

    python3 -m venv /tmp/pvgolden-venv
    /tmp/pvgolden-venv/bin/pip install protobuf grpcio-tools
    /tmp/pvgolden-venv/bin/python core/testdata/golden/generate.py
"""

import importlib
import ipaddress
import os
import sys
import tempfile

from grpc_tools import protoc

HERE = os.path.dirname(os.path.abspath(__file__))
PROTO_DIR = os.path.normpath(os.path.join(HERE, "..", "..", "proto"))

CID_V0 = "QmYwAPJzv5CZsnA625s3Xf2nemtYgPpHdWEz79ojWnPbdG"
CID_V1 = "bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi"
CID_EMPTY_DIR = "QmUNLLsPACCz1vLxQVkXqqLX5R1X345qqfHbsf67hvA3Nn"
CID_RAW = "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku"
CID_HELLO = "bafkreifzjut3te2nhyekklss27nh3k72ysco7y32koao5eei66wof36n5e"
PEER_ED25519 = "12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5SA"
PEER_RSA = "QmNnooDu7bfjPFoTZYxMNLWUQJyrVwtbZg5gBMjTezGAJN"

B58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
B32 = "abcdefghijklmnopqrstuvwxyz234567"


def b58decode(s):
    n = 0
    for ch in s:
        n = n * 58 + B58.index(ch)
    body = n.to_bytes((n.bit_length() + 7) // 8, "big") if n else b""
    zeros = len(s) - len(s.lstrip("1"))
    return b"\x00" * zeros + body


def b32decode(s):
    bits = "".join(format(B32.index(ch), "05b") for ch in s)
    return bytes(int(bits[i:i + 8], 2) for i in range(0, len(bits) - len(bits) % 8, 8))


def cid_bytes(s):
    if s.startswith("Qm"):
        return b58decode(s)  # CIDv0: the bare sha2-256 multihash
    assert s[0] == "b", "only base32 CIDv1 are used here"
    return b32decode(s[1:])


def uvarint(n):
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def multiaddr_bytes(text):
    """Binary multiaddr for the protocols the fixtures use (codes from the multiaddr table)."""
    parts = text.strip("/").split("/")
    out = bytearray()
    i = 0
    while i < len(parts):
        proto = parts[i]
        if proto == "ip4":
            out += uvarint(0x04) + ipaddress.IPv4Address(parts[i + 1]).packed
            i += 2
        elif proto == "ip6":
            out += uvarint(0x29) + ipaddress.IPv6Address(parts[i + 1]).packed
            i += 2
        elif proto == "tcp":
            out += uvarint(0x06) + int(parts[i + 1]).to_bytes(2, "big")
            i += 2
        elif proto == "udp":
            out += uvarint(0x0111) + int(parts[i + 1]).to_bytes(2, "big")
            i += 2
        elif proto == "quic-v1":
            out += uvarint(0x01CD)  # quic-v1 (0x01CC is the older "quic")
            i += 1
        elif proto == "p2p":
            peer = b58decode(parts[i + 1])
            out += uvarint(0x01A5) + uvarint(len(peer)) + peer
            i += 2
        else:
            raise ValueError("protocol not in the fixture table: " + proto)
    return bytes(out)


def compile_protos():
    out_dir = tempfile.mkdtemp(prefix="pinvault-golden-")
    for name in ("types.proto", "pinvault_record.proto"):
        rc = protoc.main(["grpc_tools.protoc", "-I" + PROTO_DIR, "--python_out=" + out_dir, name])
        if rc != 0:
            sys.exit("protoc failed on " + name)
    sys.path.insert(0, out_dir)
    return importlib.import_module("types_pb2"), importlib.import_module("pinvault_record_pb2")


def go_pin(pb, cid, pin_type, max_depth, allocations=(), reference=None, timestamp=0, **opts):
    """A Pin filled as Go's ProtoMarshal fills it (Options always set, metadata sorted)."""
    pin = pb.Pin()
    pin.Cid = cid_bytes(cid)
    pin.Type = pin_type
    pin.Allocations.extend(b58decode(p) for p in allocations)
    pin.MaxDepth = max_depth
    if reference is not None:
        pin.Reference = cid_bytes(reference)
    pin.Options.SetInParent()  # Go always sets the Options pointer, even when empty
    o = pin.Options
    o.ReplicationFactorMin = opts.get("rf_min", 0)
    o.ReplicationFactorMax = opts.get("rf_max", 0)
    o.Name = opts.get("name", "")
    o.ShardSize = opts.get("shard_size", 0)
    if opts.get("pin_update"):
        o.PinUpdate = cid_bytes(opts["pin_update"])
    o.ExpireAt = opts.get("expire_at", 0) % (1 << 64)  # uint64(t.Unix()) wraps before 1970
    o.Origins.extend(multiaddr_bytes(m) for m in opts.get("origins", ()))
    for key in sorted(opts.get("metadata", {})):
        o.SortedMetadata.add(Key=key, Value=opts["metadata"][key])
    pin.Timestamp = timestamp % (1 << 64)
    return pin


def main():
    pb, rec = compile_protos()
    P = pb.Pin
    fixtures = {}

    fixtures["minimal_v0"] = go_pin(pb, CID_V0, P.DataType, -1)

    fixtures["full_v1"] = go_pin(
        pb, CID_V1, P.ShardType, 1,
        allocations=[PEER_ED25519, PEER_RSA],
        reference=CID_V0,
        timestamp=1714979289,  # 2024-05-06T07:08:09Z
        rf_min=-1, rf_max=-1,
        name="shard <1> & more",
        shard_size=104857600,
        pin_update=CID_EMPTY_DIR,
        expire_at=1893553445,  # 2030-01-02T03:04:05Z
        origins=[
            "/ip4/1.2.3.4/tcp/4001/p2p/" + PEER_ED25519,
            "/ip6/::1/udp/4001/quic-v1/p2p/" + PEER_RSA,
        ],
        metadata={"zeta": "last", "alpha": "a<b", "mid": "m"},  # inserted out of order
    )

    # A sharded DAG: the meta pin (the original CID) and the cluster DAG point at each other.
    fixtures["meta_pin"] = go_pin(
        pb, CID_HELLO, P.MetaType, -1, reference=CID_EMPTY_DIR, timestamp=1700000000,
        rf_min=2, rf_max=3, name="big file", shard_size=1048576,
    )
    fixtures["clusterdag_pin"] = go_pin(
        pb, CID_EMPTY_DIR, P.ClusterDAGType, 0, reference=CID_HELLO, timestamp=1700000001,
        rf_min=-1, rf_max=-1, name="big file-clusterDAG",
    )
    fixtures["shard_pin"] = go_pin(
        pb, CID_RAW, P.ShardType, 1, allocations=[PEER_RSA], reference=CID_V0,
        timestamp=1700000002, rf_min=1, rf_max=1, name="big file-shard-0",
    )
    # Before 1970: Go writes uint64(t.Unix()), a ten-byte varint, and reads it back negative.
    fixtures["pre_epoch"] = go_pin(
        pb, CID_V0, P.DataType, -1, timestamp=-1, expire_at=-86400,
    )

    # Decode-only: the deprecated map field 6 (as ipfs-cluster < 0.13 wrote metadata) together
    # with field 10; Go takes field 6, then overwrites with field 10 ("shared" -> "from-10").
    legacy = go_pin(pb, CID_V0, P.DataType, -1, metadata={"shared": "from-10", "zz": "z"})
    legacy.Options.Metadata["legacy"] = "yes"
    legacy.Options.Metadata["shared"] = "from-6"
    fixtures["deprecated_metadata_field6"] = legacy

    for name, msg in fixtures.items():
        with open(os.path.join(HERE, name + ".bin"), "wb") as f:
            f.write(msg.SerializeToString(deterministic=True))

    # A pinvault storage record: Go's bytes followed by the extension fields, for a pin that
    # Go's format cannot carry exactly (direct mode with max depth -1, user allocations, a
    # timestamp half a second after the epoch, an expiry at Go's zero instant).
    record_pin = go_pin(pb, CID_V1, P.DataType, -1)
    ext = rec.PinRecordExtensions()
    ext.Mode = 1
    ext.UserAllocations.append(b58decode(PEER_ED25519))
    ext.ExactTimestamp.Seconds = 0
    ext.ExactTimestamp.Nanos = 500000000
    ext.ExactExpireAt.Seconds = -62135596800
    ext.ExactExpireAt.SetInParent()
    with open(os.path.join(HERE, "record_extensions.bin"), "wb") as f:
        f.write(record_pin.SerializeToString(deterministic=True))
        f.write(ext.SerializeToString(deterministic=True))

    # The export stream: each pin's Go bytes behind a uvarint length (protodelim).
    with open(os.path.join(HERE, "export_stream.bin"), "wb") as f:
        for name in ("minimal_v0", "full_v1", "meta_pin"):
            body = fixtures[name].SerializeToString(deterministic=True)
            f.write(uvarint(len(body)) + body)

    print("wrote", ", ".join(sorted(fixtures)), "record_extensions, export_stream")


if __name__ == "__main__":
    main()
