package main

// The offline cluster peer behind `export`, `import` and `raft-msgpack`: configured as
// `ipfs-cluster-service init --consensus C --datastore pebble` does (cmdutils.ConfigHelper,
// default configuration, new identity, empty peerstore), then loaded from disk and given a
// state manager as every `ipfs-cluster-service state ...` command gets one.

import (
	"bufio"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/ipfs-cluster/ipfs-cluster/api"
	"github.com/ipfs-cluster/ipfs-cluster/cmdutils"
	"github.com/ipfs-cluster/ipfs-cluster/consensus/raft"
	"github.com/ipfs-cluster/ipfs-cluster/datastore/inmem"
	"github.com/ipfs-cluster/ipfs-cluster/pstoremgr"
	"github.com/ipfs-cluster/ipfs-cluster/state"
	"github.com/ipfs-cluster/ipfs-cluster/state/dsstate"
	peer "github.com/libp2p/go-libp2p/core/peer"
)

// initPeer writes a peer's configuration and identity into dir, as `init` does.
func initPeer(dir, consensus string) error {
	cfgPath := filepath.Join(dir, "service.json")
	identPath := filepath.Join(dir, "identity.json")
	ch := cmdutils.NewConfigHelper(cfgPath, identPath, consensus, "pebble")
	defer ch.Manager().Shutdown()
	if err := ch.Manager().Default(); err != nil {
		return fmt.Errorf("default configuration: %w", err)
	}
	if err := ch.SaveConfigToDisk(); err != nil {
		return fmt.Errorf("saving configuration: %w", err)
	}
	if err := ch.Identity().Default(); err != nil {
		return fmt.Errorf("generating an identity: %w", err)
	}
	if err := ch.SaveIdentityToDisk(); err != nil {
		return fmt.Errorf("saving the identity: %w", err)
	}
	pm := pstoremgr.New(context.Background(), nil, ch.Configs().Cluster.GetPeerstorePath())
	return pm.SavePeerstore([]peer.AddrInfo{})
}

// loadPeer loads the peer in dir as `state import|export` do (getStateManager).
func loadPeer(dir string) (*cmdutils.ConfigHelper, cmdutils.StateManager, error) {
	ch, err := cmdutils.NewLoadedConfigHelper(filepath.Join(dir, "service.json"), filepath.Join(dir, "identity.json"))
	if err != nil {
		return nil, nil, fmt.Errorf("loading configurations: %w", err)
	}
	ch.Manager().Shutdown()
	mgr, err := cmdutils.NewStateManagerWithHelper(ch)
	if err != nil {
		return nil, nil, fmt.Errorf("creating state manager: %w", err)
	}
	return ch, mgr, nil
}

// importedPeer runs `init` and then the real `state import` of in on a fresh peer in dir, and
// returns the peer loaded again, as the next `state ...` command would load it.
func importedPeer(dir, consensus string, in io.Reader) (*cmdutils.ConfigHelper, cmdutils.StateManager, error) {
	if err := initPeer(dir, consensus); err != nil {
		return nil, nil, err
	}
	_, mgr, err := loadPeer(dir)
	if err != nil {
		return nil, nil, err
	}
	if err := mgr.ImportState(in, api.PinOptions{}); err != nil {
		return nil, nil, fmt.Errorf("importing state: %w", err)
	}
	return loadPeer(dir)
}

// importExport is `state import` followed by `state export` on a fresh peer.
func importExport(dir, consensus string, in io.Reader, out io.Writer) error {
	if consensus != "crdt" && consensus != "raft" {
		return fmt.Errorf("consensus must be crdt or raft, not %q", consensus)
	}
	_, mgr, err := importedPeer(dir, consensus, in)
	if err != nil {
		return err
	}
	return mgr.ExportState(out)
}

// exportAs imports Go-JSON pins into a fresh crdt/pebble peer (or a raft peer for
// raft-snapshot) with the real `state import` and writes its state in format.
func exportAs(dir, format string, in io.Reader, out io.Writer) error {
	consensus := "crdt"
	switch format {
	case "ndjson", "protobuf", "msgpack":
	case "raft-snapshot":
		consensus = "raft"
	default:
		return fmt.Errorf("format must be ndjson, protobuf, msgpack or raft-snapshot, not %q", format)
	}
	ch, mgr, err := importedPeer(dir, consensus, in)
	if err != nil {
		return err
	}
	switch format {
	case "ndjson":
		return mgr.ExportState(out)
	case "raft-snapshot":
		return copyRaftSnapshotState(ch.Configs().Raft.GetDataFolder(), out)
	}
	store, err := mgr.GetStore()
	if err != nil {
		return err
	}
	defer store.Close()
	st, err := mgr.GetOfflineState(store)
	if err != nil {
		return err
	}
	if format == "msgpack" {
		return st.Marshal(out)
	}
	return writeProtoFrames(st, out)
}

// writeProtoFrames writes every pin of st, in listing order, as ProtoMarshal bytes behind a
// uvarint length: the framing of pinvault's protobuf export (Go's protodelim framing).
func writeProtoFrames(st state.ReadOnly, out io.Writer) error {
	pins := make(chan api.Pin, 1024)
	errc := make(chan error, 1)
	go func() { errc <- st.List(context.Background(), pins) }()
	var werr error
	var lenBuf [binary.MaxVarintLen64]byte
	for pin := range pins {
		if werr != nil {
			continue
		}
		b, err := pin.ProtoMarshal()
		if err != nil {
			werr = err
			continue
		}
		n := binary.PutUvarint(lenBuf[:], uint64(len(b)))
		if _, err := out.Write(lenBuf[:n]); err != nil {
			werr = err
			continue
		}
		if _, err := out.Write(b); err != nil {
			werr = err
		}
	}
	if werr != nil {
		return werr
	}
	return <-errc
}

// copyRaftSnapshotState writes the state bytes of the newest raft snapshot in dataFolder
// (hashicorp/raft's FileSnapshotStore: snapshots/<id>/state.bin).
func copyRaftSnapshotState(dataFolder string, out io.Writer) error {
	matches, err := filepath.Glob(filepath.Join(dataFolder, "snapshots", "*", "state.bin"))
	if err != nil {
		return err
	}
	if len(matches) != 1 {
		return fmt.Errorf("expected one raft snapshot in %s, found %d", dataFolder, len(matches))
	}
	f, err := os.Open(matches[0])
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = io.Copy(out, bufio.NewReader(f))
	return err
}

// raftFromMsgpack saves a dsstate msgpack snapshot as a raft peer's snapshot, the way `state
// import` on a raft peer does (raft.SnapshotSave of a dsstate over the in-memory datastore),
// then runs the real `state export` on that peer, which reads it back through
// raft.OfflineState.
func raftFromMsgpack(dir string, in io.Reader, out io.Writer) error {
	if err := initPeer(dir, "raft"); err != nil {
		return err
	}
	ch, _, err := loadPeer(dir)
	if err != nil {
		return err
	}
	cfg := ch.Configs().Raft
	st, err := dsstate.New(context.Background(), inmem.New(), cfg.DatastoreNamespace, dsstate.DefaultHandle())
	if err != nil {
		return err
	}
	if err := st.Unmarshal(in); err != nil {
		return fmt.Errorf("dsstate Unmarshal: %w", err)
	}
	if err := raft.SnapshotSave(cfg, st, []peer.ID{ch.Identity().ID}); err != nil {
		return fmt.Errorf("raft SnapshotSave: %w", err)
	}
	_, mgr, err := loadPeer(dir)
	if err != nil {
		return err
	}
	return mgr.ExportState(out)
}
