// Command multiaddr-golden prints go-multiaddr v0.16.1's verdict on each input, the version
// ipfs-cluster v1.1.6 uses. pinvault-core's Multiaddr is tested against its output
// (core/testdata/multiaddr/go_v0.16.1.tsv, checked by core/tests/multiaddr_go_golden.rs).
//
// Input (stdin), one case per line, tab-separated:
//
//	T <text>   parsed with NewMultiaddr
//	B <hex>    parsed with NewMultiaddrBytes
//
// Output (stdout), one line per case: kind, input, OK or ERR, then for OK the String() and the
// hex of Bytes(), for ERR the error message and an empty column. A String() that is not valid
// UTF-8 or holds control characters is written as "hex:" and its bytes in hex (a multiaddr's text
// always starts with "/", so the two forms cannot be confused). Error messages are only for
// people: ones that are not plain UTF-8 are written Go-quoted.
//
// Since the input columns are the first two output columns, the golden file regenerates itself:
//
//	cut -f1,2 go_v0.16.1.tsv | go run ./cmd/multiaddr-golden > new.tsv
package main

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"fmt"
	"os"
	"strconv"
	"strings"
	"unicode/utf8"

	ma "github.com/multiformats/go-multiaddr"
)

func plain(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			return false
		}
	}
	return true
}

func text(s string) string {
	if plain(s) {
		return s
	}
	return "hex:" + hex.EncodeToString([]byte(s))
}

func message(err error) string {
	if s := err.Error(); plain(s) {
		return s
	}
	return strconv.QuoteToASCII(err.Error())
}

func parse(kind, input string) (ma.Multiaddr, error) {
	switch kind {
	case "T":
		return ma.NewMultiaddr(input)
	case "B":
		b, err := hex.DecodeString(input)
		if err != nil {
			return nil, fmt.Errorf("bad hex input %q: %w", input, err)
		}
		return ma.NewMultiaddrBytes(b)
	}
	return nil, fmt.Errorf("unknown input kind %q", kind)
}

func run() error {
	in := bufio.NewScanner(os.Stdin)
	in.Buffer(make([]byte, 1<<20), 1<<20)
	out := bufio.NewWriter(os.Stdout)
	defer out.Flush()
	for line := 1; in.Scan(); line++ {
		kind, input, ok := strings.Cut(in.Text(), "\t")
		if !ok || strings.Contains(input, "\t") {
			return fmt.Errorf("line %d: want KIND<TAB>INPUT", line)
		}
		m, err := parse(kind, input)
		if err != nil {
			if strings.HasPrefix(err.Error(), "bad hex input") || strings.HasPrefix(err.Error(), "unknown input kind") {
				return fmt.Errorf("line %d: %w", line, err)
			}
			fmt.Fprintf(out, "%s\t%s\tERR\t%s\t\n", kind, input, message(err))
			continue
		}
		// The golden test also checks that the canonical text parses back to the same bytes;
		// make sure Go itself agrees before recording a row.
		again, err := ma.NewMultiaddr(m.String())
		if err != nil || !bytes.Equal(again.Bytes(), m.Bytes()) {
			return fmt.Errorf("line %d: go-multiaddr does not round-trip %q through its own text %q (%v)", line, input, m.String(), err)
		}
		fmt.Fprintf(out, "%s\t%s\tOK\t%s\t%s\n", kind, input, text(m.String()), hex.EncodeToString(m.Bytes()))
	}
	return in.Err()
}

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "multiaddr-golden:", err)
		os.Exit(1)
	}
}
