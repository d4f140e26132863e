package main

// `pvcluster golden DIR`: writes the golden fixtures of core/testdata/golden with ipfs-cluster's
// own code: each fixture pin is built as an api.Pin and written by Pin.ProtoMarshal (*.bin),
// `state export`'s json.Encoder over the pin ProtoUnmarshal reads back (*.ndjson),
// dsstate.State.Marshal over the pebble datastore (dsstate_snapshot.msgpack) and ProtoMarshal
// frames (export_stream.bin). The deprecated metadata map of field 6 is no longer written by
// ProtoMarshal, so that fixture is ipfs-cluster's generated pb.Pin marshalled by Go's protobuf
// runtime. record_extensions.bin is pinvault's own storage record, not ipfs-cluster's format;
// generate.py still writes it.

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/ipfs-cluster/ipfs-cluster/api"
	"github.com/ipfs-cluster/ipfs-cluster/api/pb"
	"github.com/ipfs-cluster/ipfs-cluster/datastore/pebble"
	"github.com/ipfs-cluster/ipfs-cluster/state/dsstate"
	peer "github.com/libp2p/go-libp2p/core/peer"
	"google.golang.org/protobuf/proto"
)

const (
	cidV0       = "QmYwAPJzv5CZsnA625s3Xf2nemtYgPpHdWEz79ojWnPbdG"
	cidV1       = "bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi"
	cidEmptyDir = "QmUNLLsPACCz1vLxQVkXqqLX5R1X345qqfHbsf67hvA3Nn"
	cidRaw      = "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku"
	cidHello    = "bafkreifzjut3te2nhyekklss27nh3k72ysco7y32koao5eei66wof36n5e"
	peerEd25519 = "12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5SA"
	peerRSA     = "QmNnooDu7bfjPFoTZYxMNLWUQJyrVwtbZg5gBMjTezGAJN"
)

func mustCid(s string) api.Cid {
	c, err := api.DecodeCid(s)
	if err != nil {
		panic(err)
	}
	return c
}

func mustPeer(s string) peer.ID {
	p, err := peer.Decode(s)
	if err != nil {
		panic(err)
	}
	return p
}

func mustAddr(s string) api.Multiaddr {
	m, err := api.NewMultiaddr(s)
	if err != nil {
		panic(err)
	}
	return m
}

func ref(s string) *api.Cid {
	c := mustCid(s)
	return &c
}

// goldenPins are the fixtures whose *.bin is ProtoMarshal and *.ndjson the export line.
func goldenPins() map[string]api.Pin {
	pins := map[string]api.Pin{}
	pins["minimal_v0"] = api.Pin{Cid: mustCid(cidV0), Type: api.DataType, MaxDepth: -1}
	full := api.Pin{
		Cid:         mustCid(cidV1),
		Type:        api.ShardType,
		Allocations: []peer.ID{mustPeer(peerEd25519), mustPeer(peerRSA)},
		MaxDepth:    1,
		Reference:   ref(cidV0),
		Timestamp:   time.Unix(1714979289, 0), // 2024-05-06T07:08:09Z
	}
	full.ReplicationFactorMin, full.ReplicationFactorMax = -1, -1
	full.Name = "shard <1> & more"
	full.ShardSize = 104857600
	full.PinUpdate = mustCid(cidEmptyDir)
	full.ExpireAt = time.Unix(1893553445, 0) // 2030-01-02T03:04:05Z
	full.Origins = []api.Multiaddr{
		mustAddr("/ip4/1.2.3.4/tcp/4001/p2p/" + peerEd25519),
		mustAddr("/ip6/::1/udp/4001/quic-v1/p2p/" + peerRSA),
	}
	full.Metadata = map[string]string{"zeta": "last", "alpha": "a<b", "mid": "m"}
	pins["full_v1"] = full

	meta := api.Pin{Cid: mustCid(cidHello), Type: api.MetaType, MaxDepth: -1, Reference: ref(cidEmptyDir), Timestamp: time.Unix(1700000000, 0)}
	meta.ReplicationFactorMin, meta.ReplicationFactorMax, meta.Name, meta.ShardSize = 2, 3, "big file", 1048576
	pins["meta_pin"] = meta
	dag := api.Pin{Cid: mustCid(cidEmptyDir), Type: api.ClusterDAGType, MaxDepth: 0, Reference: ref(cidHello), Timestamp: time.Unix(1700000001, 0)}
	dag.ReplicationFactorMin, dag.ReplicationFactorMax, dag.Name = -1, -1, "big file-clusterDAG"
	pins["clusterdag_pin"] = dag
	shard := api.Pin{Cid: mustCid(cidRaw), Type: api.ShardType, MaxDepth: 1, Allocations: []peer.ID{mustPeer(peerRSA)}, Reference: ref(cidV0), Timestamp: time.Unix(1700000002, 0)}
	shard.ReplicationFactorMin, shard.ReplicationFactorMax, shard.Name = 1, 1, "big file-shard-0"
	pins["shard_pin"] = shard
	pre := api.Pin{Cid: mustCid(cidV0), Type: api.DataType, MaxDepth: -1, Timestamp: time.Unix(-1, 0)}
	pre.ExpireAt = time.Unix(-86400, 0)
	pins["pre_epoch"] = pre
	return pins
}

// jsonOnlyEscapes is a pin as the REST API holds it, never through protobuf.
func jsonOnlyEscapes() api.Pin {
	p := api.Pin{
		Cid:         mustCid(cidV1),
		Type:        api.DataType,
		Allocations: []peer.ID{mustPeer(peerEd25519)},
		MaxDepth:    0,
		Timestamp:   time.Date(2024, 5, 6, 7, 8, 9, 123400000, time.UTC),
	}
	p.ReplicationFactorMin, p.ReplicationFactorMax = 1, 2
	p.Name = "tab\there \"quoted\" back\\slash\nline\x01 café \u2028 <script>"
	p.Mode = api.PinModeDirect
	p.UserAllocations = []peer.ID{mustPeer(peerRSA), mustPeer(peerEd25519)}
	p.ExpireAt = time.Date(2030, 1, 2, 3, 4, 5, 500000000, time.UTC)
	p.Metadata = map[string]string{"a&b": "\r\f\b"}
	p.Origins = []api.Multiaddr{}
	return p
}

// deprecatedMetadata is ipfs-cluster's pb.Pin with metadata in both the deprecated map
// (field 6: legacy, shared=from-6) and the sorted list (field 10: shared=from-10, zz).
func deprecatedMetadata() ([]byte, error) {
	c := mustCid(cidV0)
	msg := &pb.Pin{
		Cid:      c.Bytes(),
		Type:     pb.Pin_DataType,
		MaxDepth: -1,
		Options: &pb.PinOptions{
			Metadata: map[string]string{"legacy": "yes", "shared": "from-6"},
			SortedMetadata: []*pb.Metadata{
				{Key: "shared", Value: "from-10"},
				{Key: "zz", Value: "z"},
			},
		},
	}
	return proto.MarshalOptions{Deterministic: true}.Marshal(msg)
}

func exportLine(p api.Pin) ([]byte, error) {
	var b bytes.Buffer
	err := json.NewEncoder(&b).Encode(p)
	return b.Bytes(), err
}

func writeGolden(dir string) error {
	write := func(name string, data []byte) error {
		return os.WriteFile(filepath.Join(dir, name), data, 0o644)
	}
	pins := goldenPins()
	records := map[string][]byte{}
	for name, p := range pins {
		b, err := p.ProtoMarshal()
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		records[name] = b
		var stored api.Pin
		if err := stored.ProtoUnmarshal(b); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		line, err := exportLine(stored)
		if err != nil {
			return err
		}
		if err := write(name+".bin", b); err != nil {
			return err
		}
		if err := write(name+".ndjson", line); err != nil {
			return err
		}
	}
	legacy, err := deprecatedMetadata()
	if err != nil {
		return err
	}
	var legacyPin api.Pin
	if err := legacyPin.ProtoUnmarshal(legacy); err != nil {
		return err
	}
	legacyLine, err := exportLine(legacyPin)
	if err != nil {
		return err
	}
	if err := write("deprecated_metadata_field6.bin", legacy); err != nil {
		return err
	}
	if err := write("deprecated_metadata_field6.ndjson", legacyLine); err != nil {
		return err
	}
	escapes, err := exportLine(jsonOnlyEscapes())
	if err != nil {
		return err
	}
	if err := write("json_only_escapes.ndjson", escapes); err != nil {
		return err
	}

	var stream bytes.Buffer
	for _, name := range []string{"minimal_v0", "full_v1", "meta_pin"} {
		stream.Write(binary.AppendUvarint(nil, uint64(len(records[name]))))
		stream.Write(records[name])
	}
	if err := write("export_stream.bin", stream.Bytes()); err != nil {
		return err
	}

	// dsstate over a pebble datastore, as a crdt peer's state is, then Marshal.
	snapshot, err := pebbleSnapshot(dir, []api.Pin{pins["minimal_v0"], pins["full_v1"], pins["meta_pin"], pins["clusterdag_pin"], pins["shard_pin"]})
	if err != nil {
		return err
	}
	return write("dsstate_snapshot.msgpack", snapshot)
}

func pebbleSnapshot(dir string, pins []api.Pin) ([]byte, error) {
	tmp, err := os.MkdirTemp("", "pvcluster-pebble-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	cfg := &pebble.Config{}
	if err := cfg.Default(); err != nil {
		return nil, err
	}
	cfg.SetBaseDir(tmp)
	store, err := pebble.New(cfg)
	if err != nil {
		return nil, err
	}
	defer store.Close()
	ctx := context.Background()
	st, err := dsstate.New(ctx, store, "/pins", dsstate.DefaultHandle())
	if err != nil {
		return nil, err
	}
	for _, p := range pins {
		if err := st.Add(ctx, p); err != nil {
			return nil, err
		}
	}
	var out bytes.Buffer
	err = st.Marshal(&out)
	return out.Bytes(), err
}
