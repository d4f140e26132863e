package main

// `pvcluster cases`: for each input case, what ipfs-cluster stores when it reads the case, or
// why it refuses it. One JSON case per input line, one JSON verdict per output line:
//
//	in:  {"name": "...", "format": "ndjson"|"protobuf"|"msgpack", "input": "<hex>"}
//	out: {"name": "...", "accepted": true|false, "error": "...",
//	      "pins": [{"key": "/CIQ...", "proto": "<hex>", "json": "..."}],
//	      "dropped": [{"key": "...", "reason": "..."}]}
//
// How each format is read, with ipfs-cluster's own code:
//
//   - ndjson: the loop of `state import` (cmdutils importState: a json.Decoder over the whole
//     stream, Decode into api.Pin until EOF, st.Add each pin). Any error refuses the whole
//     import, as the crdt and raft state managers commit nothing then.
//   - protobuf: each uvarint-framed record through api.Pin.ProtoUnmarshal, then st.Add.
//   - msgpack: dsstate.State.Unmarshal of the stream.
//
// The state is a dsstate.State over the in-memory datastore, the state both consensus
// components use. "pins" is what st.List returns, sorted by datastore key: "proto" is the
// pin's ProtoMarshal bytes as the state then holds them (Add marshals; for msgpack, the listed
// pin marshalled again), "json" the line `state export` writes for it. "dropped" lists entries
// the datastore holds but List skips (a key that is not a CID, a value ProtoUnmarshal
// refuses): ipfs-cluster accepts those inputs and loses the pins without an error.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"

	"github.com/ipfs-cluster/ipfs-cluster/api"
	"github.com/ipfs-cluster/ipfs-cluster/datastore/inmem"
	"github.com/ipfs-cluster/ipfs-cluster/state/dsstate"
	dshelp "github.com/ipfs/boxo/datastore/dshelp"
	ds "github.com/ipfs/go-datastore"
	query "github.com/ipfs/go-datastore/query"
	codec "github.com/ugorji/go/codec"
)

type caseIn struct {
	Name   string `json:"name"`
	Format string `json:"format"`
	Input  string `json:"input"`
}

type storedPin struct {
	Key   string `json:"key"`
	Proto string `json:"proto"`
	JSON  string `json:"json"`
	// Why `state export` cannot write this pin (Go's JSON encoder refuses its value), if so.
	Unexportable string `json:"unexportable,omitempty"`
}

type droppedEntry struct {
	Key    string `json:"key"`
	Reason string `json:"reason"`
}

type verdict struct {
	Name     string         `json:"name"`
	Accepted bool           `json:"accepted"`
	Error    string         `json:"error,omitempty"`
	Pins     []storedPin    `json:"pins"`
	Dropped  []droppedEntry `json:"dropped"`
}

func runCases(in *bufio.Reader, out io.Writer) error {
	dec := json.NewDecoder(in)
	enc := json.NewEncoder(out)
	for {
		var c caseIn
		err := dec.Decode(&c)
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("reading cases: %w", err)
		}
		v, err := judge(c)
		if err != nil {
			return fmt.Errorf("case %q: %w", c.Name, err)
		}
		if err := enc.Encode(v); err != nil {
			return err
		}
	}
}

// judge reads one case into a fresh state. An error return is a fault of the tool, not a
// refusal by ipfs-cluster (that is a verdict with accepted=false).
func judge(c caseIn) (verdict, error) {
	ctx := context.Background()
	v := verdict{Name: c.Name, Pins: []storedPin{}, Dropped: []droppedEntry{}}
	input, err := hex.DecodeString(c.Input)
	if err != nil {
		return v, fmt.Errorf("input is not hex: %w", err)
	}
	store := inmem.New()
	st, err := dsstate.New(ctx, store, "", dsstate.DefaultHandle())
	if err != nil {
		return v, err
	}
	var refusal error
	switch c.Format {
	case "ndjson":
		refusal = readNDJSON(ctx, st, input)
	case "protobuf":
		refusal = readFrames(ctx, st, input)
	case "msgpack":
		refusal = st.Unmarshal(bytes.NewReader(input))
		if refusal == nil {
			if lost := swallowedTail(input); lost > 0 {
				v.Dropped = append(v.Dropped, droppedEntry{
					Key:    "(end of stream)",
					Reason: fmt.Sprintf("Unmarshal took a truncated last entry (%d bytes) for the end of the stream", lost),
				})
			}
		}
	default:
		return v, fmt.Errorf("unknown format %q", c.Format)
	}
	if refusal != nil {
		v.Error = refusal.Error()
		return v, nil
	}
	v.Accepted = true
	return v, describeState(ctx, store, st, &v)
}

// readNDJSON is cmdutils.importState's loop with no option overrides.
func readNDJSON(ctx context.Context, st *dsstate.State, input []byte) error {
	dec := json.NewDecoder(bytes.NewReader(input))
	for {
		var pin api.Pin
		err := dec.Decode(&pin)
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		if err := st.Add(ctx, pin); err != nil {
			return err
		}
	}
}

// readFrames reads uvarint-framed ProtoMarshal records, each through ProtoUnmarshal.
func readFrames(ctx context.Context, st *dsstate.State, input []byte) error {
	r := bytes.NewReader(input)
	for i := 0; r.Len() > 0; i++ {
		n, err := binary.ReadUvarint(r)
		if err != nil {
			return fmt.Errorf("frame %d: bad length: %w", i, err)
		}
		if n > uint64(r.Len()) {
			return fmt.Errorf("frame %d: truncated", i)
		}
		frame := make([]byte, n)
		if _, err := io.ReadFull(r, frame); err != nil {
			return err
		}
		var pin api.Pin
		if err := pin.ProtoUnmarshal(frame); err != nil {
			return fmt.Errorf("frame %d: %w", i, err)
		}
		if err := st.Add(ctx, pin); err != nil {
			return err
		}
	}
	return nil
}

// swallowedTail replays dsstate.Unmarshal's decoding loop (the same codec handle and entry
// type) and returns how many bytes after the last whole entry it ended on without an error:
// ugorji's decoder reports a stream cut inside an entry as io.EOF, which Unmarshal takes for
// the end of the stream.
func swallowedTail(input []byte) int {
	dec := codec.NewDecoder(bytes.NewReader(input), dsstate.DefaultHandle())
	whole := 0
	for {
		var entry struct {
			Key   string `codec:"k"`
			Value []byte `codec:"v"`
		}
		if err := dec.Decode(&entry); err != nil {
			break
		}
		whole = dec.NumBytesRead()
	}
	return len(input) - whole
}

// describeState fills v with what List returns and what it silently skips.
func describeState(ctx context.Context, store ds.Datastore, st *dsstate.State, v *verdict) error {
	pins := make(chan api.Pin, 16)
	errc := make(chan error, 1)
	go func() { errc <- st.List(ctx, pins) }()
	listed := map[string]bool{}
	for pin := range pins {
		key := dshelp.NewKeyFromBinary(pin.Cid.Bytes()).String()
		proto, err := pin.ProtoMarshal()
		if err != nil {
			return err
		}
		stored := storedPin{Key: key, Proto: hex.EncodeToString(proto)}
		var line bytes.Buffer
		if err := json.NewEncoder(&line).Encode(pin); err != nil {
			stored.Unexportable = err.Error()
		} else {
			stored.JSON = line.String()
		}
		listed[key] = true
		v.Pins = append(v.Pins, stored)
	}
	if err := <-errc; err != nil {
		return err
	}
	sort.Slice(v.Pins, func(i, j int) bool { return v.Pins[i].Key < v.Pins[j].Key })

	results, err := store.Query(ctx, query.Query{})
	if err != nil {
		return err
	}
	defer results.Close()
	for r := range results.Next() {
		if r.Error != nil {
			return r.Error
		}
		if listed[r.Key] {
			continue
		}
		reason := "skipped by List"
		var pin api.Pin
		if _, err := dshelp.BinaryFromDsKey(ds.NewKey(ds.NewKey(r.Key).BaseNamespace())); err != nil {
			reason = "bad key: " + err.Error()
		} else if err := pin.ProtoUnmarshal(r.Value); err != nil {
			reason = "ProtoUnmarshal: " + err.Error()
		}
		v.Dropped = append(v.Dropped, droppedEntry{Key: r.Key, Reason: reason})
	}
	sort.Slice(v.Dropped, func(i, j int) bool { return v.Dropped[i].Key < v.Dropped[j].Key })
	return nil
}
