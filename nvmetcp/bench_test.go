package nvmetcp

import (
	"io"
	"testing"

	"github.com/stretchr/testify/require"
)

func benchC2HData(n int) PDU {
	return PDU{Type: TypeC2HData, Flags: FlagLastPDU | FlagSuccess,
		C2HData: C2HData{CCCID: 3, DataLength: uint32(n)}, Data: pattern(n, 9)}
}

func benchCapsuleCmd() PDU {
	return PDU{Type: TypeCapsuleCmd, SQE: sampleSQE(0x02, 3, SGLTransport, 4096)}
}

func benchInCapsuleWrite() PDU {
	return PDU{Type: TypeCapsuleCmd, SQE: sampleSQE(0x01, 3, SGLInCapsule, 4096), Data: pattern(4096, 1)}
}

var (
	allDigests = Encoder{Digests: HeaderDigest | DataDigest}
	noDigests  = Encoder{}
)

// newLoopingReader returns a Reader over an endless repetition of p as e
// encodes it, warmed up so that its buffers have their final size.
func newLoopingReader(tb testing.TB, p PDU, e Encoder) (*Reader, int) {
	wire := encode(tb, e, p)
	r, err := NewReader(&loopReader{b: wire}, readerFor(p.Type, e))
	require.NoError(tb, err)
	for range 4 {
		_, err := r.Read()
		require.NoError(tb, err)
	}
	return r, len(wire)
}

func BenchmarkRead(b *testing.B) {
	cases := []struct {
		name string
		p    PDU
		e    Encoder
		into bool // ReadHeader + ReadData into a caller's buffer
	}{
		{"C2HData-4KiB", benchC2HData(4096), noDigests, false},
		{"C2HData-4KiB-digests", benchC2HData(4096), allDigests, false},
		{"C2HData-4KiB-into", benchC2HData(4096), noDigests, true},
		{"C2HData-128KiB", benchC2HData(128 << 10), noDigests, false},
		{"C2HData-128KiB-into", benchC2HData(128 << 10), noDigests, true},
		{"CapsuleCmd", benchCapsuleCmd(), noDigests, false},
		{"CapsuleCmd-digests", benchCapsuleCmd(), allDigests, false},
		{"CapsuleCmd-4KiB-in-capsule", benchInCapsuleWrite(), noDigests, false},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			r, size := newLoopingReader(b, c.p, c.e)
			dst := make([]byte, len(c.p.Data))
			b.SetBytes(int64(size))
			b.ReportAllocs()
			for b.Loop() {
				if c.into {
					if _, err := r.ReadHeader(); err != nil {
						b.Fatal(err)
					}
					if _, err := r.ReadData(dst); err != nil {
						b.Fatal(err)
					}
				} else if _, err := r.Read(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkEncode(b *testing.B) {
	cases := []struct {
		name       string
		p          PDU
		e          Encoder
		headerOnly bool // AppendHeader + AppendDataDigest: the data is sent from its own slice
	}{
		{"C2HData-4KiB", benchC2HData(4096), noDigests, false},
		{"C2HData-4KiB-digests", benchC2HData(4096), allDigests, false},
		{"C2HData-4KiB-header-only", benchC2HData(4096), noDigests, true},
		{"C2HData-4KiB-header-only-digests", benchC2HData(4096), allDigests, true},
		{"CapsuleCmd", benchCapsuleCmd(), noDigests, false},
		{"CapsuleCmd-digests", benchCapsuleCmd(), allDigests, false},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			buf := make([]byte, 0, 8192)
			n, err := c.e.EncodedLen(&c.p)
			require.NoError(b, err)
			b.SetBytes(int64(n))
			b.ReportAllocs()
			for b.Loop() {
				var err error
				if c.headerOnly {
					buf, err = c.e.AppendHeader(buf[:0], &c.p)
					buf = c.e.AppendDataDigest(buf, &c.p)
				} else {
					buf, err = c.e.Append(buf[:0], &c.p)
				}
				if err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkWriter(b *testing.B) {
	resp := PDU{Type: TypeCapsuleResp, CQE: sampleCQE(3, 0)}
	cases := []struct {
		name string
		ps   []PDU
		e    Encoder
	}{
		{"C2HData-4KiB", []PDU{benchC2HData(4096)}, noDigests},
		{"C2HData-4KiB-digests", []PDU{benchC2HData(4096)}, allDigests},
		{"CapsuleCmd", []PDU{benchCapsuleCmd()}, noDigests},
		{"8xC2HData-4KiB+CapsuleResp-one-flush", append(repeat(benchC2HData(4096), 8), resp), noDigests},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			w := NewWriter(io.Discard)
			w.Encoder = c.e
			size := 0
			for i := range c.ps {
				n, err := c.e.EncodedLen(&c.ps[i])
				require.NoError(b, err)
				size += n
			}
			b.SetBytes(int64(size))
			b.ReportAllocs()
			for b.Loop() {
				for i := range c.ps {
					if err := w.Queue(&c.ps[i]); err != nil {
						b.Fatal(err)
					}
				}
				if err := w.Flush(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func repeat(p PDU, n int) []PDU {
	out := make([]PDU, n)
	for i := range out {
		out[i] = p
	}
	return out
}

// TestSteadyStateAllocs holds the codec to zero allocations per PDU once
// its buffers have grown.
func TestSteadyStateAllocs(t *testing.T) {
	if testing.Short() {
		t.Skip("allocation counts")
	}
	for _, p := range []PDU{benchC2HData(4096), benchC2HData(128 << 10), benchCapsuleCmd(), benchInCapsuleWrite()} {
		for _, e := range []Encoder{noDigests, allDigests} {
			r, _ := newLoopingReader(t, p, e)
			require.Zero(t, testing.AllocsPerRun(100, func() {
				if _, err := r.Read(); err != nil {
					t.Fatal(err)
				}
			}), "Read %v %d bytes, digests %d", p.Type, len(p.Data), e.Digests)

			buf := make([]byte, 0, 256<<10)
			require.Zero(t, testing.AllocsPerRun(100, func() {
				var err error
				if buf, err = e.Append(buf[:0], &p); err != nil {
					t.Fatal(err)
				}
			}), "Append %v", p.Type)

			w := NewWriter(io.Discard)
			w.Encoder = e
			require.NoError(t, w.WritePDU(&p))
			require.Zero(t, testing.AllocsPerRun(100, func() {
				if err := w.WritePDU(&p); err != nil {
					t.Fatal(err)
				}
			}), "WritePDU %v", p.Type)
		}
	}
}
