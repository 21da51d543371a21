package nvmetcp

import (
	"bytes"
	"errors"
	"io"
	"testing"

	"github.com/stretchr/testify/require"
)

// fuzzConfig turns the fuzzer's mode byte into a Reader config: role,
// state, digests, alignment and data limit all vary.
func fuzzConfig(mode uint8) ReaderConfig {
	cfg := ReaderConfig{
		Role:        Role(mode & 1),
		Established: mode&2 != 0,
		Digests:     Digests(mode>>2) & digestMask,
		PDA:         [4]uint8{0, 1, 3, MaxPDA}[mode>>4&3],
		BufferSize:  MinBufferSize,
	}
	if mode&0x40 != 0 {
		cfg.MaxData = 4096
	}
	return cfg
}

// modeFor returns the mode that reads a capture file from its start.
func modeFor(name string, digests Digests) uint8 {
	m := uint8(digests) << 2
	if roleOf(name) == RoleHost {
		m |= 1
	}
	return m
}

// FuzzReader feeds arbitrary bytes to a Reader. It must not panic, must
// consume exactly PLEN per PDU and never more than it was given, must fail
// only with a *ProtocolError (the input is a bytes.Reader), and every PDU it
// accepts must re-encode to bytes that decode to the same value.
func FuzzReader(f *testing.F) {
	for _, name := range captureNames() {
		b := loadHex(f, name)
		mode := modeFor(name, 0)
		f.Add(b[:min(len(b), 8192)], mode)
		// Single PDUs in the middle of a stream, plain and with digests.
		for i, d := range decodeStream(f, b, ReaderConfig{Role: roleOf(name)}) {
			if i == 0 || i > 12 {
				continue
			}
			f.Add(d.Raw, mode|2)
			e := Encoder{Digests: HeaderDigest | DataDigest, PDA: 3}
			enc, err := e.Append(nil, &d.PDU)
			if err == nil {
				f.Add(enc, modeFor(name, e.Digests)|2|2<<4)
			}
		}
	}
	for _, p := range samplePDUs() {
		if len(p.Data) <= 8192 {
			e := Encoder{Digests: HeaderDigest}
			mode := uint8(1<<2 | 2)
			if !p.Type.FromHost() {
				mode |= 1
			}
			if p.Type == TypeICReq || p.Type == TypeICResp {
				mode &^= 2
			}
			f.Add(encode(f, e, p), mode)
		}
	}

	f.Fuzz(func(t *testing.T, in []byte, mode uint8) {
		cfg := fuzzConfig(mode)
		r, err := NewReader(bytes.NewReader(in), cfg)
		require.NoError(t, err)
		enc := Encoder{Digests: cfg.Digests, PDA: cfg.PDA}
		for i := 0; i < 64; i++ {
			start := r.Offset()
			p, err := r.Read()
			require.LessOrEqual(t, r.Offset(), int64(len(in)))
			if err == io.EOF {
				require.Equal(t, int64(len(in)), start)
				return
			}
			if err != nil {
				var pe *ProtocolError
				require.True(t, errors.As(err, &pe), "unexpected error type %T: %v", err, err)
				require.NotZero(t, pe.Kind)
				require.LessOrEqual(t, len(pe.Header), MaxTermReqData)
				if pe.Fatal() {
					require.Nil(t, p)
					_, again := r.Read()
					require.Equal(t, err, again, "sticky")
					return
				}
				require.Equal(t, KindDataDigest, pe.Kind)
			}
			require.NotNil(t, p)
			require.Equal(t, int64(p.Header.PLen), r.Offset()-start, "consumed PLEN")
			require.Equal(t, p.Header.DataLen(), len(p.Data))
			if cfg.MaxData > 0 && p.Type.carriesData() {
				require.LessOrEqual(t, len(p.Data), cfg.MaxData)
			}
			got := clonePDU(p)

			b, err := enc.Append(nil, &got)
			require.NoError(t, err, "re-encoding %v", got.Type)
			cfg2 := cfg
			cfg2.Established = got.Type != TypeICReq && got.Type != TypeICResp
			again, err := readOne(t, b, cfg2)
			require.NoError(t, err, "decoding the re-encoded %v", got.Type)
			require.Equal(t, value(got), value(again))
			if got.Header.PDO == 0 || int(got.Header.PDO) == wantPDO(got.Type, enc) {
				require.Len(t, b, int(got.Header.PLen), "same framing, same length")
			}
		}
	})
}
