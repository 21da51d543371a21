package nvmetcp

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func pattern(n int, seed byte) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = seed + byte(i*7)
	}
	return b
}

func sampleSQE(opcode uint8, cid uint16, sgl uint8, length uint32) SQE {
	var s SQE
	s.SetOpcode(opcode)
	s.SetCID(cid)
	s.SetNSID(1)
	s.SetSGL(sgl, 0, length)
	s.SetCDW(10, 0x1234)
	s.SetCDW(12, 7)
	return s
}

func sampleCQE(cid uint16, status uint16) CQE {
	var c CQE
	c.SetDW0(0x00040002)
	c.SetDW1(0xdeadbeef)
	c.SetSQHead(9)
	c.SetSQID(1)
	c.SetCID(cid)
	c.SetStatus(status)
	return c
}

// samplePDUs has every PDU type, with and without data where both exist.
func samplePDUs() []PDU {
	return []PDU{
		{Type: TypeICReq, ICReq: ICReq{HPDA: 3, Digests: HeaderDigest | DataDigest, MaxR2T: 7}},
		{Type: TypeICResp, ICResp: ICResp{CPDA: 31, Digests: DataDigest, MaxH2CData: 131072}},
		{Type: TypeH2CTermReq, TermReq: TermReq{FES: FESInvalidHeaderField, FEI: 2}, Data: pattern(72, 1)},
		{Type: TypeC2HTermReq, TermReq: TermReq{FES: FESHeaderDigestError}, Data: pattern(128, 2)},
		{Type: TypeC2HTermReq, TermReq: TermReq{FES: FESPDUSequenceError}},
		{Type: TypeCapsuleCmd, SQE: sampleSQE(0x02, 5, SGLTransport, 4096)},
		{Type: TypeCapsuleCmd, SQE: sampleSQE(0x01, 6, SGLInCapsule, 4096), Data: pattern(4096, 3)},
		{Type: TypeCapsuleCmd, SQE: sampleSQE(OpcodeFabrics, 0, SGLInCapsule, 1024), Data: pattern(1024, 4)},
		{Type: TypeCapsuleCmd, SQE: sampleSQE(0x01, 7, SGLInCapsule, 1), Data: []byte{0xa5}},
		{Type: TypeCapsuleResp, CQE: sampleCQE(5, 0)},
		{Type: TypeCapsuleResp, CQE: sampleCQE(6, StatusWord(0, 0x22, true)|1)},
		{Type: TypeH2CData, Flags: FlagLastPDU, H2CData: H2CData{CCCID: 37, TTAG: 6, DataOffset: 0, DataLength: 8192}, Data: pattern(8192, 5)},
		{Type: TypeH2CData, H2CData: H2CData{CCCID: 38, TTAG: 7, DataOffset: 4096, DataLength: 3}, Data: []byte{1, 2, 3}},
		{Type: TypeC2HData, Flags: FlagLastPDU | FlagSuccess, C2HData: C2HData{CCCID: 4, DataLength: 4096}, Data: pattern(4096, 6)},
		{Type: TypeC2HData, C2HData: C2HData{CCCID: 4, DataOffset: 65536, DataLength: 131072}, Data: pattern(131072, 7)},
		{Type: TypeC2HData, Flags: FlagLastPDU, C2HData: C2HData{CCCID: 4, DataOffset: 1, DataLength: 513}, Data: pattern(513, 8)},
		{Type: TypeR2T, R2T: R2T{CCCID: 37, TTAG: 6, Offset: 0, Length: 131072}},
	}
}

var testEncoders = []Encoder{
	{},
	{Digests: HeaderDigest},
	{Digests: DataDigest},
	{Digests: HeaderDigest | DataDigest},
	{PDA: 1},
	{Digests: HeaderDigest, PDA: 3},
	{Digests: HeaderDigest | DataDigest, PDA: 15},
	{Digests: HeaderDigest | DataDigest, PDA: 31},
}

// wantPDO is the data offset a PDU of type t with data gets from e.
func wantPDO(t Type, e Encoder) int {
	full := t.HeaderLen()
	if e.Digests&HeaderDigest != 0 && t.usesDigests() {
		full += DigestLen
	}
	align := (int(e.PDA) + 1) * 4
	return (full + align - 1) / align * align
}

func TestRoundTrip(t *testing.T) {
	for _, e := range testEncoders {
		for _, p := range samplePDUs() {
			name := fmt.Sprintf("%v/%d-bytes/digests=%d/pda=%d", p.Type, len(p.Data), e.Digests, e.PDA)
			t.Run(name, func(t *testing.T) {
				b, err := e.Append(nil, &p)
				require.NoError(t, err)
				n, err := e.EncodedLen(&p)
				require.NoError(t, err)
				require.Len(t, b, n)

				got, err := readOne(t, b, readerFor(p.Type, e))
				require.NoError(t, err)
				assert.Equal(t, value(p), value(got))
				h := got.Header
				assert.Equal(t, uint32(len(b)), h.PLen)
				assert.Equal(t, len(p.Data), h.DataLen())

				hdgst := e.Digests&HeaderDigest != 0 && p.Type.usesDigests()
				ddgst := e.Digests&DataDigest != 0 && p.Type.usesDigests() && len(p.Data) > 0
				assert.Equal(t, hdgst, h.Flags&FlagHDGST != 0, "HDGSTF")
				assert.Equal(t, ddgst, h.Flags&FlagDDGST != 0, "DDGSTF")
				switch {
				case p.Type.carriesData() && len(p.Data) > 0:
					assert.Equal(t, wantPDO(p.Type, e), int(h.PDO))
					assert.Equal(t, p.Data, b[h.PDO:int(h.PDO)+len(p.Data)])
					assert.Zero(t, int(h.PDO)%((int(e.PDA)+1)*4), "aligned")
				default:
					assert.Equal(t, uint8(0), h.PDO)
				}

				// The header-only encoding plus data plus trailer is the same PDU.
				hdr, err := e.AppendHeader(nil, &p)
				require.NoError(t, err)
				split := append(append(hdr, p.Data...), e.AppendDataDigest(nil, &p)...)
				assert.Equal(t, b, split)
			})
		}
	}
}

// TestReadPaths reads the same PDUs through each way data can be returned:
// a view of the read buffer, the Reader's own buffer, the caller's buffer.
func TestReadPaths(t *testing.T) {
	e := Encoder{Digests: HeaderDigest | DataDigest, PDA: 7}
	var stream []byte
	var want []PDU
	for _, p := range samplePDUs() {
		if p.Type.FromHost() || p.Type == TypeICResp {
			continue
		}
		var err error
		stream, err = e.Append(stream, &p)
		require.NoError(t, err)
		want = append(want, value(p))
	}
	cfg := ReaderConfig{Role: RoleHost, Established: true, Digests: e.Digests, PDA: e.PDA}

	for _, size := range []int{MinBufferSize, DefaultBufferSize, 1 << 20} {
		t.Run(fmt.Sprintf("Read/buffer=%d", size), func(t *testing.T) {
			cfg := cfg
			cfg.BufferSize = size
			got := decodeStream(t, stream, cfg)
			require.Len(t, got, len(want))
			for i := range want {
				assert.Equal(t, want[i], value(got[i].PDU))
			}
		})
	}

	t.Run("ReadData into caller buffer", func(t *testing.T) {
		r, err := NewReader(bytes.NewReader(stream), cfg)
		require.NoError(t, err)
		dst := make([]byte, 200<<10)
		for i := range want {
			p, err := r.ReadHeader()
			require.NoError(t, err)
			assert.Nil(t, p.Data)
			n := p.Header.DataLen()
			data, err := r.ReadData(dst)
			require.NoError(t, err)
			require.Len(t, data, n)
			if n > 0 {
				assert.Same(t, &dst[0], &data[0], "data read in place")
			}
			assert.Equal(t, want[i], value(clonePDU(p)))
			again, err := r.ReadData(dst)
			require.NoError(t, err)
			assert.Empty(t, again, "data read once")
		}
		_, err = r.ReadHeader()
		assert.Equal(t, io.EOF, err)
	})

	t.Run("ReadData buffer too small", func(t *testing.T) {
		r, err := NewReader(bytes.NewReader(stream), cfg)
		require.NoError(t, err)
		for {
			p, err := r.ReadHeader()
			require.NoError(t, err)
			if p.Header.DataLen() > 0 {
				break
			}
		}
		_, err = r.ReadData(make([]byte, 1))
		require.Error(t, err)
		var pe *ProtocolError
		assert.False(t, errors.As(err, &pe), "a caller mistake, not the peer's")
		data, err := r.ReadData(nil)
		require.NoError(t, err, "the Reader is still usable")
		assert.NotEmpty(t, data)
	})

	t.Run("skipping data", func(t *testing.T) {
		r, err := NewReader(bytes.NewReader(stream), cfg)
		require.NoError(t, err)
		for i := range want {
			p, err := r.ReadHeader()
			require.NoError(t, err)
			assert.Equal(t, want[i].Type, p.Type)
		}
		_, err = r.ReadHeader()
		assert.Equal(t, io.EOF, err)
		assert.Equal(t, int64(len(stream)), r.Offset())
	})
}

// TestSequence walks a connection through ICReq/ICResp and a TermReq
// before ICResp.
func TestSequence(t *testing.T) {
	var h2c []byte
	for _, p := range []PDU{
		{Type: TypeICReq, ICReq: ICReq{Digests: HeaderDigest | DataDigest}},
		{Type: TypeCapsuleCmd, SQE: sampleSQE(1, 1, SGLInCapsule, 4), Data: []byte{1, 2, 3, 4}},
	} {
		e := Encoder{}
		if p.Type != TypeICReq {
			e.Digests = HeaderDigest | DataDigest
		}
		var err error
		h2c, err = e.Append(h2c, &p)
		require.NoError(t, err)
	}
	r, err := NewReader(bytes.NewReader(h2c), ReaderConfig{})
	require.NoError(t, err)
	assert.False(t, r.Established())
	p, err := r.Read()
	require.NoError(t, err)
	require.Equal(t, TypeICReq, p.Type)
	assert.True(t, r.Established())
	r.SetDigests(p.ICReq.Digests)
	assert.Equal(t, HeaderDigest|DataDigest, r.Digests())
	p, err = r.Read()
	require.NoError(t, err)
	assert.Equal(t, []byte{1, 2, 3, 4}, p.Data)

	// A controller may refuse an ICReq with a C2HTermReq instead of an ICResp.
	term, err := Encoder{}.Append(nil, &PDU{Type: TypeC2HTermReq, TermReq: TermReq{FES: FESUnsupportedParameter, FEI: 8}, Data: h2c[:8]})
	require.NoError(t, err)
	got, err := readOne(t, term, ReaderConfig{Role: RoleHost})
	require.NoError(t, err)
	assert.Equal(t, TermReq{FES: FESUnsupportedParameter, FEI: 8}, got.TermReq)
	assert.Equal(t, h2c[:8], got.Data)
}

// recordingWriter keeps every slice handed to Write, without copying.
type recordingWriter struct{ writes [][]byte }

func (w *recordingWriter) Write(p []byte) (int, error) {
	w.writes = append(w.writes, p)
	return len(p), nil
}

func TestWriter(t *testing.T) {
	for _, e := range testEncoders {
		t.Run(fmt.Sprintf("digests=%d/pda=%d", e.Digests, e.PDA), func(t *testing.T) {
			var want []byte
			rec := &recordingWriter{}
			w := NewWriter(rec)
			w.Encoder = e
			pdus := samplePDUs()
			for i := range pdus {
				var err error
				want, err = e.Append(want, &pdus[i])
				require.NoError(t, err)
				require.NoError(t, w.Queue(&pdus[i]))
			}
			assert.Equal(t, len(want), w.Buffered())
			require.NoError(t, w.Flush())
			assert.Equal(t, 0, w.Buffered())

			var got []byte
			large := 0
			for _, b := range rec.writes {
				got = append(got, b...)
				for _, p := range pdus {
					if len(p.Data) > inlineDataMax && len(b) > 0 && &b[0] == &p.Data[0] {
						large++
					}
				}
			}
			assert.Equal(t, want, got)
			n := 0
			for _, p := range pdus {
				if len(p.Data) > inlineDataMax {
					n++
				}
			}
			assert.Equal(t, n, large, "large data written from the caller's slice, not copied")
			assert.LessOrEqual(t, len(rec.writes), 2*n+1, "header runs merged between data slices")
		})
	}

	t.Run("encode error leaves the queue", func(t *testing.T) {
		var buf bytes.Buffer
		w := NewWriter(&buf)
		require.NoError(t, w.Queue(&PDU{Type: TypeCapsuleResp}))
		err := w.Queue(&PDU{Type: TypeR2T})
		var ee *EncodeError
		require.ErrorAs(t, err, &ee)
		assert.Equal(t, TypeR2T, ee.Type)
		require.NoError(t, w.WritePDU(&PDU{Type: TypeCapsuleResp}))
		assert.Equal(t, 2*CapsuleRespLen, buf.Len())
	})

	t.Run("write error is sticky", func(t *testing.T) {
		w := NewWriter(failWriter{})
		err := w.WritePDU(&PDU{Type: TypeCapsuleResp})
		require.ErrorIs(t, err, io.ErrClosedPipe)
		assert.Equal(t, err, w.Queue(&PDU{Type: TypeCapsuleResp}))
		assert.Equal(t, err, w.Flush())
	})
}

type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, io.ErrClosedPipe }

// TestTCP sends a queue of PDUs over a real TCP connection (writev) and
// reads them on the other side.
func TestTCP(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	e := Encoder{Digests: HeaderDigest | DataDigest, PDA: 3}
	var pdus []PDU
	for _, p := range samplePDUs() {
		if !p.Type.FromHost() && p.Type != TypeICResp {
			pdus = append(pdus, p)
		}
	}
	errc := make(chan error, 1)
	go func() {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			errc <- err
			return
		}
		defer c.Close()
		w := NewWriter(c)
		w.Encoder = e
		for round := 0; round < 3; round++ {
			for i := range pdus {
				if err := w.Queue(&pdus[i]); err != nil {
					errc <- err
					return
				}
			}
			if err := w.Flush(); err != nil {
				errc <- err
				return
			}
		}
		errc <- nil
	}()
	c, err := ln.Accept()
	require.NoError(t, err)
	defer c.Close()
	r, err := NewReader(c, ReaderConfig{Role: RoleHost, Established: true, Digests: e.Digests, PDA: e.PDA})
	require.NoError(t, err)
	for round := 0; round < 3; round++ {
		for i := range pdus {
			p, err := r.Read()
			require.NoError(t, err)
			require.Equal(t, value(pdus[i]), value(clonePDU(p)))
		}
	}
	_, err = r.Read()
	assert.Equal(t, io.EOF, err)
	require.NoError(t, <-errc)
}

func TestEncoderRejects(t *testing.T) {
	tests := []struct {
		name string
		e    Encoder
		p    PDU
	}{
		{"reserved type", Encoder{}, PDU{Type: 0x08}},
		{"PDA above 31", Encoder{PDA: 32}, PDU{Type: TypeCapsuleResp}},
		{"LAST on CapsuleCmd", Encoder{}, PDU{Type: TypeCapsuleCmd, Flags: FlagLastPDU}},
		{"SUCCESS without LAST", Encoder{}, PDU{Type: TypeC2HData, Flags: FlagSuccess, C2HData: C2HData{DataLength: 1}, Data: []byte{1}}},
		{"data on CapsuleResp", Encoder{}, PDU{Type: TypeCapsuleResp, Data: []byte{1}}},
		{"data on R2T", Encoder{}, PDU{Type: TypeR2T, R2T: R2T{Length: 1}, Data: []byte{1}}},
		{"data on ICReq", Encoder{}, PDU{Type: TypeICReq, Data: []byte{1}}},
		{"ICReq PFV", Encoder{}, PDU{Type: TypeICReq, ICReq: ICReq{PFV: 1}}},
		{"ICReq HPDA", Encoder{}, PDU{Type: TypeICReq, ICReq: ICReq{HPDA: 32}}},
		{"ICReq DGST", Encoder{}, PDU{Type: TypeICReq, ICReq: ICReq{Digests: 4}}},
		{"ICResp MAXH2CDATA small", Encoder{}, PDU{Type: TypeICResp, ICResp: ICResp{MaxH2CData: 1024}}},
		{"ICResp MAXH2CDATA odd", Encoder{}, PDU{Type: TypeICResp, ICResp: ICResp{MaxH2CData: 4098}}},
		{"ICResp CPDA", Encoder{}, PDU{Type: TypeICResp, ICResp: ICResp{CPDA: 40, MaxH2CData: 4096}}},
		{"TermReq data", Encoder{}, PDU{Type: TypeC2HTermReq, Data: make([]byte, 129)}},
		{"H2CData without data", Encoder{}, PDU{Type: TypeH2CData}},
		{"DATAL mismatch", Encoder{}, PDU{Type: TypeH2CData, H2CData: H2CData{DataLength: 2}, Data: []byte{1}}},
		{"DATAO overflow", Encoder{}, PDU{Type: TypeC2HData, C2HData: C2HData{DataOffset: 1<<32 - 1, DataLength: 2}, Data: []byte{1, 2}}},
		{"R2TL 0", Encoder{}, PDU{Type: TypeR2T}},
		{"R2T overflow", Encoder{}, PDU{Type: TypeR2T, R2T: R2T{Offset: 1<<32 - 1, Length: 2}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dst := []byte("keep")
			out, err := tc.e.Append(dst, &tc.p)
			var ee *EncodeError
			require.ErrorAs(t, err, &ee)
			assert.Equal(t, tc.p.Type, ee.Type)
			assert.Equal(t, []byte("keep"), out, "dst untouched")
		})
	}
}

func TestTermReqFromError(t *testing.T) {
	b, err := Encoder{}.Append(nil, &PDU{Type: TypeCapsuleCmd, SQE: sampleSQE(1, 1, SGLTransport, 0)})
	require.NoError(t, err)
	b[2] = 71 // hlen
	_, err = readOne(t, b, ReaderConfig{Established: true})
	var pe *ProtocolError
	require.ErrorAs(t, err, &pe)
	term, ok := pe.TermReqPDU(TypeC2HTermReq)
	require.True(t, ok)
	assert.Equal(t, TermReq{FES: FESInvalidHeaderField, FEI: 2}, term.TermReq)
	assert.Equal(t, b[:71], term.Data, "the offending header, as far as HLEN says")
	out, err := Encoder{Digests: HeaderDigest}.Append(nil, &term)
	require.NoError(t, err)
	got, err := readOne(t, out, ReaderConfig{Role: RoleHost, Established: true, Digests: HeaderDigest})
	require.NoError(t, err)
	assert.Equal(t, value(term), value(got))
	assert.Equal(t, Flags(0), got.Header.Flags, "no digests on a TermReq")
}
