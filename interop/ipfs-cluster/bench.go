package main

// `pvcluster bench`: the peer of `pinvault bench`. It runs pinvault's comparison workload
// (src/cli/workload.rs: the same pins, batch size, seed and random choices) on ipfs-cluster's
// own state store, so that `pinvault bench` can put ipfs-cluster beside its backends as columns
// measured in the same run:
//
//	pebble       state/dsstate over datastore/pebble with ipfs-cluster's default configuration,
//	             whose writes do not wait for fsync (go-ds-pebble's default, pebble.NoSync)
//	pebble-sync  the same datastore and configuration with pebble.Sync writes
//	crdt         the crdt consensus's state (consensus/crdt.OfflineState, go-ds-crdt over the
//	             same pebble datastore), the state `ipfs-cluster-service state import` writes on
//	             a crdt peer: every commit is a delta in the Merkle-DAG
//
// It prints one JSON object: each phase's operations and seconds, the process's peak RSS
// during the workload, and a digest of the final state (stateDigest: over every pin's
// ProtoMarshal bytes), which pinvault computes the same way over its own store from its own
// encoder: equal digests mean the two final states are equal record for record.

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/ipfs-cluster/ipfs-cluster/api"
	"github.com/ipfs-cluster/ipfs-cluster/consensus/crdt"
	pebblecfg "github.com/ipfs-cluster/ipfs-cluster/datastore/pebble"
	"github.com/ipfs-cluster/ipfs-cluster/state"
	"github.com/ipfs-cluster/ipfs-cluster/state/dsstate"
	gocid "github.com/ipfs/go-cid"
	ds "github.com/ipfs/go-datastore"
	pebbleds "github.com/ipfs/go-ds-pebble"
	peer "github.com/libp2p/go-libp2p/core/peer"
	mh "github.com/multiformats/go-multihash"
)

// benchSpec mirrors pinvault's WorkloadSpec.
type benchSpec struct {
	pins, ops, batch uint64
}

type benchPhase struct {
	Phase   string  `json:"phase"`
	Ops     uint64  `json:"ops"`
	Seconds float64 `json:"seconds"`
}

type benchResult struct {
	Store      string       `json:"store"`
	Durable    bool         `json:"durable_on_return"`
	Phases     []benchPhase `json:"phases"`
	PeakRSSKiB uint64       `json:"peak_rss_kib"`
	Digest     string       `json:"digest"`
	Pins       uint64       `json:"pins_left"`
}

// runBench parses `bench STORE PINS OPS BATCH DIR` and runs the workload in DIR (which must
// be empty or absent).
func runBench(args []string, out io.Writer) error {
	usage := fmt.Errorf("usage: pvcluster bench pebble|pebble-sync|crdt PINS OPS BATCH DIR")
	if len(args) != 5 {
		return usage
	}
	var spec benchSpec
	for i, p := range []*uint64{&spec.pins, &spec.ops, &spec.batch} {
		v, err := strconv.ParseUint(args[1+i], 10, 64)
		if err != nil {
			return usage
		}
		*p = v
	}
	if spec.pins == 0 || spec.batch == 0 || spec.ops > spec.pins {
		return fmt.Errorf("bench: needs PINS > 0, BATCH > 0 and OPS <= PINS (removes take distinct pins)")
	}
	store, dir := args[0], args[4]
	if entries, err := os.ReadDir(dir); err == nil && len(entries) > 0 {
		return fmt.Errorf("bench: %s is not empty", dir)
	}
	st, closeStore, err := openBenchState(store, dir)
	if err != nil {
		return err
	}
	defer closeStore()
	result := benchResult{Store: store, Durable: store == "pebble-sync"}
	result.Phases, err = benchWorkload(context.Background(), st, spec)
	if err != nil {
		return err
	}
	// The workload's peak, before the digest's listing.
	result.PeakRSSKiB = peakRSSKiB()
	result.Digest, result.Pins, err = stateDigest(context.Background(), st.point)
	if err != nil {
		return err
	}
	return json.NewEncoder(out).Encode(result)
}

// benchState is a column's state: batches for the import, and the state the point operations
// (one write each) go to.
type benchState struct {
	// newBatch returns a state whose writes land together at its Commit.
	newBatch func() (state.BatchingState, error)
	// point takes gets and single writes; commitEach says whether a write needs a Commit.
	point      state.State
	commitEach func(context.Context) error
}

// openBenchState opens the state a `bench` column measures, in dir.
func openBenchState(store, dir string) (*benchState, func(), error) {
	cfg := &pebblecfg.Config{}
	if err := cfg.Default(); err != nil {
		return nil, nil, err
	}
	cfg.SetBaseDir(dir)
	var dstore ds.Batching
	var err error
	switch store {
	case "pebble", "crdt":
		// Exactly ipfs-cluster's constructor, with its default (unsynced) writes.
		var d ds.Datastore
		d, err = pebblecfg.New(cfg)
		if err == nil {
			b, ok := d.(ds.Batching)
			if !ok {
				return nil, nil, fmt.Errorf("bench: ipfs-cluster's pebble datastore is not batching")
			}
			dstore = b
		}
	case "pebble-sync":
		// ipfs-cluster's configuration, opened the way its constructor does, plus sync writes
		// (which its constructor does not expose).
		if err := os.MkdirAll(cfg.GetFolder(), 0o700); err != nil {
			return nil, nil, err
		}
		dstore, err = pebbleds.NewDatastore(cfg.GetFolder(),
			pebbleds.WithPebbleOpts(&cfg.PebbleOptions), pebbleds.WithPebbleWriteOptions(pebble.Sync))
	default:
		return nil, nil, fmt.Errorf("bench: store must be pebble, pebble-sync or crdt, not %q", store)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("opening pebble in %s: %w", cfg.GetFolder(), err)
	}
	closeStore := func() { dstore.Close() }
	ctx := context.Background()
	if store == "crdt" {
		crdtCfg := &crdt.Config{}
		if err := crdtCfg.Default(); err != nil {
			closeStore()
			return nil, nil, err
		}
		// The crdt state batches every write until Commit, which publishes one delta.
		st, err := crdt.OfflineState(crdtCfg, dstore)
		if err != nil {
			closeStore()
			return nil, nil, err
		}
		return &benchState{
			newBatch:   func() (state.BatchingState, error) { return st, nil },
			point:      st,
			commitEach: st.Commit,
		}, closeStore, nil
	}
	// dsstate's batching state commits once (go-ds-pebble's batch is single-use): one per
	// import batch; point writes go straight to the datastore, one pebble write each.
	point, err := dsstate.New(ctx, dstore, benchNamespace, dsstate.DefaultHandle())
	if err != nil {
		closeStore()
		return nil, nil, err
	}
	return &benchState{
		newBatch: func() (state.BatchingState, error) {
			return dsstate.NewBatching(ctx, dstore, benchNamespace, dsstate.DefaultHandle())
		},
		point:      point,
		commitEach: func(context.Context) error { return nil },
	}, closeStore, nil
}

// benchNamespace is the crdt consensus's default datastore namespace, under which a crdt
// peer keeps its state.
var benchNamespace = crdt.DefaultDatastoreNamespace

// workloadPin is pinvault's `workload::pin(n)`, built with ipfs-cluster's types.
func workloadPin(n uint64) (api.Pin, error) {
	var nb [8]byte
	binary.BigEndian.PutUint64(nb[:], n)
	hash, err := mh.Sum(nb[:], mh.SHA2_256, -1)
	if err != nil {
		return api.Pin{}, err
	}
	opts := api.PinOptions{
		ReplicationFactorMin: 1,
		ReplicationFactorMax: 3,
		Name:                 fmt.Sprintf("bench-%d", n),
	}
	if n%4 == 0 {
		opts.ExpireAt = time.Unix(1_900_000_000+int64(n), 0)
	}
	pin := api.PinWithOpts(api.NewCid(gocid.NewCidV1(gocid.DagProtobuf, hash)), opts)
	// pinvault's workload pins carry no timestamp (Go's zero time).
	pin.Timestamp = time.Time{}
	for k := uint64(0); k <= n%3; k++ {
		peerHash, err := mh.Sum([]byte{'p', byte((n + k*5) % 16)}, mh.SHA2_256, -1)
		if err != nil {
			return api.Pin{}, err
		}
		id, err := peer.IDFromBytes(peerHash)
		if err != nil {
			continue
		}
		seen := false
		for _, a := range pin.Allocations {
			seen = seen || a == id
		}
		if !seen {
			pin.Allocations = append(pin.Allocations, id)
		}
	}
	return pin, nil
}

// choices is pinvault's workload generator (SplitMix64, seed 0x5eed).
type choices uint64

func (c *choices) next(below uint64) uint64 {
	*c += 0x9e3779b97f4a7c15
	z := uint64(*c)
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	if below == 0 {
		below = 1
	}
	return (z ^ (z >> 31)) % below
}

func gcd(a, b uint64) uint64 {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}

// benchWorkload runs the phases of pinvault's workload: import in batches (one Commit per
// batch), list, gets, updates and removes (one Commit per operation, as a peer commits each
// pin it is asked for).
func benchWorkload(ctx context.Context, bs *benchState, spec benchSpec) ([]benchPhase, error) {
	st := bs.point
	var phases []benchPhase
	timed := func(name string, ops uint64, f func() error) error {
		started := time.Now()
		if err := f(); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		phases = append(phases, benchPhase{name, ops, time.Since(started).Seconds()})
		return nil
	}
	err := timed("import", spec.pins, func() error {
		var batch state.BatchingState
		for n := uint64(0); n < spec.pins; n++ {
			pin, err := workloadPin(n)
			if err != nil {
				return err
			}
			if batch == nil {
				if batch, err = bs.newBatch(); err != nil {
					return err
				}
			}
			if err := batch.Add(ctx, pin); err != nil {
				return err
			}
			if (n+1)%spec.batch == 0 || n+1 == spec.pins {
				if err := batch.Commit(ctx); err != nil {
					return err
				}
				batch = nil
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	err = timed("list", spec.pins, func() error {
		listed, err := countPins(ctx, st)
		if err == nil && listed != spec.pins {
			err = fmt.Errorf("listed %d pins, imported %d", listed, spec.pins)
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	choose := choices(0x5eed)
	err = timed("get", spec.ops, func() error {
		for i := uint64(0); i < spec.ops; i++ {
			pin, err := workloadPin(choose.next(spec.pins))
			if err != nil {
				return err
			}
			if _, err := st.Get(ctx, pin.Cid); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	err = timed("update", spec.ops, func() error {
		for i := uint64(0); i < spec.ops; i++ {
			pin, err := workloadPin(choose.next(spec.pins))
			if err != nil {
				return err
			}
			pin.Name += "-updated"
			if err := st.Add(ctx, pin); err != nil {
				return err
			}
			if err := bs.commitEach(ctx); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	stride := uint64(1)
	for s := spec.pins - 1; s >= 1; s-- {
		if gcd(s, spec.pins) == 1 && s > spec.pins/2 {
			stride = s
			break
		}
	}
	err = timed("remove", spec.ops, func() error {
		for i := uint64(0); i < spec.ops; i++ {
			pin, err := workloadPin((i * stride) % spec.pins)
			if err != nil {
				return err
			}
			if err := st.Rm(ctx, pin.Cid); err != nil {
				return err
			}
			if err := bs.commitEach(ctx); err != nil {
				return err
			}
		}
		return nil
	})
	return phases, err
}

func countPins(ctx context.Context, st state.ReadOnly) (uint64, error) {
	pins := make(chan api.Pin, 1024)
	errc := make(chan error, 1)
	go func() { errc <- st.List(ctx, pins) }()
	var n uint64
	for range pins {
		n++
	}
	return n, <-errc
}

// stateDigest is the digest of a final state as pinvault's `audit::PinsetDigest` sums it: the
// sum, modulo 2^256, of SHA-256 over each pin's ProtoMarshal bytes (big-endian integers),
// which does not depend on listing order and needs no memory per pin; and the number of pins.
func stateDigest(ctx context.Context, st state.ReadOnly) (string, uint64, error) {
	pins := make(chan api.Pin, 1024)
	errc := make(chan error, 1)
	go func() { errc <- st.List(ctx, pins) }()
	var sum [sha256.Size]byte
	var count uint64
	var merr error
	for pin := range pins {
		b, err := pin.ProtoMarshal()
		if err != nil {
			if merr == nil {
				merr = err
			}
			continue
		}
		h := sha256.Sum256(b)
		addBigEndian(&sum, h[:])
		count++
	}
	if err := <-errc; err != nil {
		return "", 0, err
	}
	if merr != nil {
		return "", 0, merr
	}
	return hex.EncodeToString(sum[:]), count, nil
}

// addBigEndian adds x to sum, both 256-bit big-endian, dropping the carry out of the top.
func addBigEndian(sum *[sha256.Size]byte, x []byte) {
	carry := 0
	for i := len(sum) - 1; i >= 0; i-- {
		v := int(sum[i]) + int(x[i]) + carry
		sum[i] = byte(v)
		carry = v >> 8
	}
}

// peakRSSKiB is VmHWM from /proc/self/status (0 where there is none).
func peakRSSKiB() uint64 {
	status, err := os.ReadFile(filepath.Join("/proc", "self", "status"))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(status), "\n") {
		if fields := strings.Fields(line); len(fields) >= 2 && fields[0] == "VmHWM:" {
			v, _ := strconv.ParseUint(fields[1], 10, 64)
			return v
		}
	}
	return 0
}
