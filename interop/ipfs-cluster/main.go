// Command pvcluster runs ipfs-cluster v1.1.6's own code over pinvault's inputs and outputs, so
// that pinvault's interop tests have the real Go implementation as their oracle. It
// re-implements no format: every pin is read and written by ipfs-cluster's `api`,
// `state/dsstate`, `cmdutils` (the code behind `ipfs-cluster-service state import|export`),
// `consensus/crdt`, `consensus/raft` and `datastore/pebble` packages.
//
// Subcommands (all read stdin and write stdout):
//
//	cases                 one verdict per input case: what ipfs-cluster stores for it, or why it
//	                      refuses it (see cases.go)
//	export FORMAT         pins (Go's JSON, one per line) imported the way `state import` does on
//	                      a crdt peer with the pebble datastore, then written as FORMAT: ndjson
//	                      (`state export`), protobuf (ProtoMarshal frames in listing order),
//	                      msgpack (dsstate Marshal over pebble) or raft-snapshot (the msgpack
//	                      state inside the raft snapshot `state import` writes on a raft peer)
//	import CONSENSUS      NDJSON through the real `state import` into a crdt (pebble) or raft
//	                      peer, then the real `state export`
//	raft-msgpack          a dsstate msgpack snapshot saved as a raft snapshot (raft.SnapshotSave),
//	                      then the real `state export` of that raft peer
//	gen N SEED [held]     N varied pins as Go's JSON, from a seeded generator (see gen.go)
//	golden DIR            the golden fixtures of core/testdata/golden (see golden.go)
//	bench STORE PINS OPS BATCH DIR
//	                      pinvault's comparison workload on ipfs-cluster's state store (pebble,
//	                      pebble-sync or crdt) in DIR; one JSON line of timings (see bench.go)
package main

import (
	"bufio"
	"fmt"
	"os"
	"strconv"

	logging "github.com/ipfs/go-log/v2"
)

func main() {
	// ipfs-cluster logs warnings (unknown pin modes, bad depths) on its default logger; they
	// must not mix with the output.
	logging.SetAllLoggers(logging.LevelError)
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "pvcluster:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	if len(args) == 0 {
		return fmt.Errorf("usage: pvcluster cases|export FORMAT|import CONSENSUS|raft-msgpack|gen N SEED [held]|golden DIR|bench STORE PINS OPS BATCH DIR")
	}
	in := bufio.NewReaderSize(os.Stdin, 1<<20)
	out := bufio.NewWriterSize(os.Stdout, 1<<20)
	defer out.Flush()
	var err error
	switch args[0] {
	case "cases":
		err = runCases(in, out)
	case "export":
		if len(args) != 2 {
			return fmt.Errorf("usage: pvcluster export ndjson|protobuf|msgpack|raft-snapshot")
		}
		err = withPeerDir(func(dir string) error { return exportAs(dir, args[1], in, out) })
	case "import":
		if len(args) != 2 {
			return fmt.Errorf("usage: pvcluster import crdt|raft")
		}
		err = withPeerDir(func(dir string) error { return importExport(dir, args[1], in, out) })
	case "raft-msgpack":
		err = withPeerDir(func(dir string) error { return raftFromMsgpack(dir, in, out) })
	case "gen":
		if len(args) != 3 && !(len(args) == 4 && args[3] == "held") {
			return fmt.Errorf("usage: pvcluster gen N SEED [held]")
		}
		n, err1 := strconv.Atoi(args[1])
		seed, err2 := strconv.ParseInt(args[2], 10, 64)
		if err1 != nil || err2 != nil || n < 0 {
			return fmt.Errorf("gen: N and SEED must be integers")
		}
		err = generate(n, seed, len(args) == 3, out)
	case "bench":
		err = runBench(args[1:], out)
	case "golden":
		if len(args) != 2 {
			return fmt.Errorf("usage: pvcluster golden DIR")
		}
		err = writeGolden(args[1])
	default:
		return fmt.Errorf("unknown subcommand %q", args[0])
	}
	if err != nil {
		return err
	}
	return out.Flush()
}

// withPeerDir runs f with a fresh directory for one offline cluster peer, removed afterwards.
func withPeerDir(f func(dir string) error) error {
	dir, err := os.MkdirTemp("", "pvcluster-peer-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	return f(dir)
}
