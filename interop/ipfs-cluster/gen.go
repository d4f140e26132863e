package main

// `pvcluster gen N SEED [held]`: N varied pins built with ipfs-cluster's own types and written as Go's
// JSON, one per line (json.Encoder, as `state export` writes them). The same N and SEED always
// give the same bytes. The pins cover every pin type (and the bad type), CIDv0 and CIDv1 with
// several codecs and hash functions (identity CIDs longer than 64 bytes included), peer IDs of
// identity and sha2-256 form, origins of every protocol go-multiaddr knows (values made from
// random bytes through the protocol's own transcoder), metadata with HTML and control
// characters, user allocations, expiries and timestamps from before 1970 to 9999 with
// nanoseconds, and extreme numbers (replication factors and depths beyond int32, min above
// max, shard sizes up to 2^64-1). With `held`, only values pinvault holds (no identity CID
// over 64 bytes), for the bulk comparisons.

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"math/rand"
	"strings"
	"time"

	"github.com/ipfs-cluster/ipfs-cluster/api"
	cid "github.com/ipfs/go-cid"
	peer "github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
	mh "github.com/multiformats/go-multihash"
)

type gen struct {
	r *rand.Rand
	// longIdentity makes one identity CID in eight longer than 64 bytes (which pinvault
	// refuses); without it every value is one pinvault holds.
	longIdentity bool
}

func generate(n int, seed int64, longIdentity bool, out io.Writer) error {
	g := gen{r: rand.New(rand.NewSource(seed)), longIdentity: longIdentity}
	enc := json.NewEncoder(out)
	for i := 0; i < n; i++ {
		pin, err := g.pin(i)
		if err != nil {
			return fmt.Errorf("pin %d: %w", i, err)
		}
		if err := enc.Encode(pin); err != nil {
			return fmt.Errorf("pin %d: %w", i, err)
		}
	}
	return nil
}

func (g gen) pick(n int) int { return g.r.Intn(n) }

func (g gen) bytes(n int) []byte {
	b := make([]byte, n)
	g.r.Read(b)
	return b
}

func (g gen) pin(i int) (api.Pin, error) {
	c, err := g.cid(i)
	if err != nil {
		return api.Pin{}, err
	}
	types := []api.PinType{api.DataType, api.DataType, api.MetaType, api.ClusterDAGType, api.ShardType, api.BadType}
	pin := api.Pin{
		Cid:         c,
		Type:        types[g.pick(len(types))],
		Allocations: g.peers(g.pick(4)),
		MaxDepth:    api.PinDepth(g.depth()),
		Timestamp:   g.time(),
	}
	if g.pick(3) == 0 {
		ref, err := g.cid(-1)
		if err != nil {
			return api.Pin{}, err
		}
		pin.Reference = &ref
	}
	pin.ReplicationFactorMin = g.factor()
	pin.ReplicationFactorMax = g.factor()
	pin.Name = g.text(g.pick(24))
	if g.pick(4) == 0 {
		pin.Mode = api.PinModeDirect
	}
	if g.pick(5) == 0 {
		pin.ShardSize = math.MaxUint64 - uint64(g.pick(3))
	} else {
		pin.ShardSize = uint64(g.r.Int63n(1 << 40))
	}
	if g.pick(3) == 0 {
		pin.UserAllocations = g.peers(1 + g.pick(2))
	}
	pin.ExpireAt = g.time()
	if g.pick(2) == 0 {
		pin.Metadata = map[string]string{}
		for k := g.pick(4); k >= 0; k-- {
			key := g.text(g.pick(10))
			if key == "" && g.pick(2) == 0 {
				key = "k"
			}
			pin.Metadata[key] = g.text(g.pick(30))
		}
	}
	if g.pick(4) == 0 {
		up, err := g.cid(-1)
		if err != nil {
			return api.Pin{}, err
		}
		pin.PinUpdate = up
	}
	for k := g.pick(4); k > 0; k-- {
		o, err := g.multiaddr()
		if err != nil {
			return api.Pin{}, err
		}
		pin.Origins = append(pin.Origins, api.NewMultiaddrWithValue(o))
	}
	return pin, nil
}

// cid returns a CID; i >= 0 mixes the index in, so the pins of one run are distinct.
func (g gen) cid(i int) (api.Cid, error) {
	data := g.bytes(16)
	if i >= 0 {
		binary.BigEndian.PutUint64(data, uint64(i))
	}
	if g.pick(4) == 0 {
		h, err := mh.Sum(data, mh.SHA2_256, -1)
		if err != nil {
			return api.Cid{}, err
		}
		return api.NewCid(cid.NewCidV0(h)), nil
	}
	codecs := []uint64{cid.DagProtobuf, cid.Raw, cid.DagCBOR, cid.DagJSON, cid.Libp2pKey, cid.GitRaw, 0x0200, 0x0129, 0x0300}
	hashes := []uint64{mh.SHA2_256, mh.SHA2_512, mh.SHA3_256, mh.BLAKE2B_MIN + 31, mh.BLAKE3, mh.IDENTITY}
	code := hashes[g.pick(len(hashes))]
	var h mh.Multihash
	var err error
	if code == mh.IDENTITY {
		// Identity digests of 16 to 64 bytes, and one in eight longer (up to 128 bytes), beyond
		// the 64 that pinvault's CIDs hold.
		extra := g.pick(49)
		if g.longIdentity && g.pick(8) == 0 {
			extra = 49 + g.pick(64)
		}
		payload := append(data, g.bytes(extra)...)
		h, err = mh.Sum(payload, mh.IDENTITY, -1)
	} else {
		h, err = mh.Sum(data, code, -1)
	}
	if err != nil {
		return api.Cid{}, err
	}
	return api.NewCid(cid.NewCidV1(codecs[g.pick(len(codecs))], h)), nil
}

func (g gen) peers(n int) []peer.ID {
	out := make([]peer.ID, 0, n)
	for ; n > 0; n-- {
		out = append(out, g.peer())
	}
	return out
}

// peer returns an ed25519- or secp256k1-style identity peer ID or an RSA-style sha2-256 one.
func (g gen) peer() peer.ID {
	var h mh.Multihash
	switch g.pick(3) {
	case 0:
		// The protobuf of an ed25519 public key: type 1, 32 bytes.
		h, _ = mh.Sum(append([]byte{0x08, 0x01, 0x12, 0x20}, g.bytes(32)...), mh.IDENTITY, -1)
	case 1:
		// secp256k1: type 2, 33 bytes.
		h, _ = mh.Sum(append([]byte{0x08, 0x02, 0x12, 0x21}, g.bytes(33)...), mh.IDENTITY, -1)
	default:
		h, _ = mh.Sum(g.bytes(64), mh.SHA2_256, -1)
	}
	return peer.ID(h)
}

func (g gen) depth() int {
	switch g.pick(8) {
	case 0:
		return 0
	case 1:
		return 1 + g.pick(10)
	case 2:
		return -2 - g.pick(5)
	case 3:
		return math.MaxInt32 + 1 + g.pick(5)
	default:
		return -1
	}
}

func (g gen) factor() int {
	switch g.pick(10) {
	case 0:
		return -1
	case 1:
		return math.MaxInt32
	case 2:
		return math.MinInt32
	case 3:
		return math.MaxInt32 + 1 + g.pick(1000)
	case 4:
		return -2 - g.pick(3)
	default:
		return g.pick(12)
	}
}

// time returns Go's zero time, the Unix epoch, or an instant from 1900 to 9999, in UTC, with
// or without nanoseconds. (Go's json refuses years above 9999, so none are made.)
func (g gen) time() time.Time {
	switch g.pick(6) {
	case 0:
		return time.Time{}
	case 1:
		return time.Unix(0, 0).UTC()
	case 2:
		return time.Date(1900+g.pick(70), time.Month(1+g.pick(12)), 1+g.pick(28), g.pick(24), g.pick(60), g.pick(60), 0, time.UTC)
	}
	secs := g.r.Int63n(253402300799 - 1) // up to 9999-12-31T23:59:59Z
	nanos := int64(0)
	if g.pick(2) == 0 {
		nanos = g.r.Int63n(1e9)
	}
	return time.Unix(secs, nanos).UTC()
}

var alphabet = []rune("abcdefXYZ019 _-./:<>&\"\\'\u00e9\u4e2d\U0001F600\u2028\u2029\n\t\x01\x7f\u00a0")

func (g gen) text(n int) string {
	var b strings.Builder
	for ; n > 0; n-- {
		b.WriteRune(alphabet[g.pick(len(alphabet))])
	}
	return b.String()
}

// multiaddr returns one to three components of protocols go-multiaddr knows, each value made
// from random bytes by the protocol's own transcoder.
func (g gen) multiaddr() (ma.Multiaddr, error) {
	var out ma.Multiaddr
	for k := 1 + g.pick(3); k > 0; k-- {
		p := ma.Protocols[g.pick(len(ma.Protocols))]
		c, err := g.component(p)
		if err != nil {
			return nil, fmt.Errorf("/%s: %w", p.Name, err)
		}
		out = append(out, *c)
	}
	return out, nil
}

func (g gen) component(p ma.Protocol) (*ma.Component, error) {
	if p.Size == 0 {
		return ma.NewComponent(p.Name, "")
	}
	var raw []byte
	switch p.Name {
	case "unix":
		raw = []byte("/" + strings.Trim(g.path(), "/") + "/s.sock")
	case "http-path":
		raw = []byte(g.path())
	case "dns", "dns4", "dns6", "dnsaddr", "sni":
		raw = []byte(g.host())
	case "ip6zone":
		raw = []byte("eth" + fmt.Sprint(g.pick(10)))
	case "p2p":
		raw = []byte(g.peer())
	case "certhash":
		h, err := mh.Sum(g.bytes(8), mh.SHA2_256, -1)
		if err != nil {
			return nil, err
		}
		raw = h
	case "onion":
		raw = append(g.bytes(10), 0, byte(1+g.pick(255)))
	case "onion3":
		raw = append(g.bytes(35), 0, byte(1+g.pick(255)))
	case "garlic64":
		raw = g.bytes(386 + g.pick(20))
	case "garlic32":
		raw = g.bytes(35 + g.pick(10))
	case "ip6":
		raw = g.bytes(16)
		if g.pick(3) == 0 { // IPv4-mapped
			copy(raw, []byte{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff})
		} else if g.pick(3) == 0 { // zero runs
			copy(raw[2:12], make([]byte, 10))
		}
	default:
		if p.Size < 0 {
			raw = g.bytes(1 + g.pick(20))
		} else {
			raw = g.bytes(p.Size / 8)
		}
	}
	if err := p.Transcoder.ValidateBytes(raw); err != nil {
		return nil, err
	}
	text, err := p.Transcoder.BytesToString(raw)
	if err != nil {
		return nil, err
	}
	return ma.NewComponent(p.Name, text)
}

func (g gen) path() string {
	parts := []string{"tmp", "run", "a b", "x%y", "deep", "é"}
	var b strings.Builder
	for k := 1 + g.pick(3); k > 0; k-- {
		b.WriteString("/")
		b.WriteString(parts[g.pick(len(parts))])
	}
	return b.String()
}

func (g gen) host() string {
	labels := []string{"example", "com", "ipfs", "io", "a-b", "x1", "cluster"}
	var parts []string
	for k := 1 + g.pick(3); k > 0; k-- {
		parts = append(parts, labels[g.pick(len(labels))])
	}
	return strings.Join(parts, ".")
}
