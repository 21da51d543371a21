package nvmetcp

import (
	"bytes"
	"encoding/hex"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// loadHex reads a testdata/*.hex file: hex lines, '#' comments.
func loadHex(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	require.NoError(t, err)
	var out []byte
	for line := range strings.SplitSeq(string(b), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		d, err := hex.DecodeString(line)
		require.NoError(t, err, "%s: %q", name, line)
		out = append(out, d...)
	}
	return out
}

// roleOf returns the role that reads a capture file: *-h2c.hex holds what a
// host sent, so a controller reads it.
func roleOf(name string) Role {
	if strings.HasSuffix(name, "-h2c.hex") {
		return RoleController
	}
	return RoleHost
}

// decoded is a PDU read from a stream, with its own copy of the data and
// the bytes it was read from.
type decoded struct {
	PDU PDU
	Raw []byte
}

// decodeStream reads every PDU of b and requires a clean end.
func decodeStream(t testing.TB, b []byte, cfg ReaderConfig) []decoded {
	t.Helper()
	r, err := NewReader(bytes.NewReader(b), cfg)
	require.NoError(t, err)
	var out []decoded
	for {
		start := r.Offset()
		p, err := r.Read()
		if err == io.EOF {
			break
		}
		require.NoError(t, err, "PDU %d at offset %d", len(out), start)
		require.Equal(t, int64(p.Header.PLen), r.Offset()-start, "PDU %d consumed its PLEN", len(out))
		out = append(out, decoded{clonePDU(p), b[start:r.Offset()]})
	}
	require.Equal(t, int64(len(b)), r.Offset())
	return out
}

func clonePDU(p *PDU) PDU {
	c := *p
	c.Data = bytes.Clone(p.Data)
	return c
}

// value strips what a re-encoding may legitimately change (the common
// header, digest flags) and leaves what the PDU means.
func value(p PDU) PDU {
	p.Header = CommonHeader{}
	p.Flags &= p.Type.semanticFlags()
	if len(p.Data) == 0 {
		p.Data = nil
	}
	return p
}

// readOne decodes exactly one PDU from b.
func readOne(t testing.TB, b []byte, cfg ReaderConfig) (PDU, error) {
	t.Helper()
	r, err := NewReader(bytes.NewReader(b), cfg)
	require.NoError(t, err)
	p, err := r.Read()
	if p == nil {
		return PDU{}, err
	}
	return clonePDU(p), err
}

// readerFor returns the config that reads PDUs of type typ as encoded by e.
func readerFor(typ Type, e Encoder) ReaderConfig {
	role := RoleHost
	if typ.FromHost() {
		role = RoleController
	}
	return ReaderConfig{
		Role:        role,
		PDA:         e.PDA,
		Digests:     e.Digests,
		Established: typ != TypeICReq && typ != TypeICResp,
	}
}

// loopReader serves b over and over, for benchmarks.
type loopReader struct {
	b   []byte
	off int
}

func (l *loopReader) Read(p []byte) (int, error) {
	n := copy(p, l.b[l.off:])
	l.off += n
	if l.off == len(l.b) {
		l.off = 0
	}
	return n, nil
}
