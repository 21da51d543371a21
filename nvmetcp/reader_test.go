package nvmetcp

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func encode(t testing.TB, e Encoder, p PDU) []byte {
	t.Helper()
	b, err := e.Append(nil, &p)
	require.NoError(t, err)
	return b
}

// with returns a copy of b changed by f.
func with(b []byte, f func(b []byte)) []byte {
	c := bytes.Clone(b)
	f(c)
	return c
}

func setPLen(v uint32) func([]byte) {
	return func(b []byte) { binary.LittleEndian.PutUint32(b[4:], v) }
}

func TestMalformed(t *testing.T) {
	ctrl := ReaderConfig{Role: RoleController, Established: true}
	host := ReaderConfig{Role: RoleHost, Established: true}
	fresh := ReaderConfig{Role: RoleController}
	freshHost := ReaderConfig{Role: RoleHost}
	withCfg := func(c ReaderConfig, f func(*ReaderConfig)) ReaderConfig { f(&c); return c }

	none := Encoder{}
	hd := Encoder{Digests: HeaderDigest}
	dd := Encoder{Digests: DataDigest}
	icreq := encode(t, none, PDU{Type: TypeICReq})
	icresp := encode(t, none, PDU{Type: TypeICResp, ICResp: ICResp{MaxH2CData: 131072}})
	cmd := encode(t, none, PDU{Type: TypeCapsuleCmd, SQE: sampleSQE(2, 1, SGLTransport, 4096)})
	cmdData := encode(t, none, PDU{Type: TypeCapsuleCmd, SQE: sampleSQE(1, 1, SGLInCapsule, 16), Data: pattern(16, 1)})
	resp := encode(t, none, PDU{Type: TypeCapsuleResp, CQE: sampleCQE(1, 0)})
	respHD := encode(t, hd, PDU{Type: TypeCapsuleResp, CQE: sampleCQE(1, 0)})
	c2h := encode(t, none, PDU{Type: TypeC2HData, Flags: FlagLastPDU, C2HData: C2HData{CCCID: 1, DataLength: 4096}, Data: pattern(4096, 2)})
	c2hSmall := encode(t, none, PDU{Type: TypeC2HData, C2HData: C2HData{CCCID: 1, DataLength: 4}, Data: []byte{1, 2, 3, 4}})
	c2hDD := encode(t, dd, PDU{Type: TypeC2HData, C2HData: C2HData{CCCID: 1, DataLength: 1}, Data: []byte{9}})
	h2c := encode(t, none, PDU{Type: TypeH2CData, H2CData: H2CData{CCCID: 1, TTAG: 2, DataLength: 8192}, Data: pattern(8192, 3)})
	r2t := encode(t, none, PDU{Type: TypeR2T, R2T: R2T{CCCID: 1, TTAG: 2, Length: 4096}})
	term := encode(t, none, PDU{Type: TypeC2HTermReq, TermReq: TermReq{FES: FESHeaderDigestError}, Data: pattern(24, 4)})
	hterm := encode(t, none, PDU{Type: TypeH2CTermReq, TermReq: TermReq{FES: FESHeaderDigestError}, Data: pattern(24, 4)})

	tests := []struct {
		name string
		cfg  ReaderConfig
		in   []byte
		kind Kind
		fes  FES
		fei  uint32
	}{
		{"reserved type 0x08", host, with(resp, func(b []byte) { b[0] = 0x08 }), KindType, FESInvalidHeaderField, 0},
		{"reserved type 0xff", ctrl, with(cmd, func(b []byte) { b[0] = 0xff }), KindType, FESInvalidHeaderField, 0},
		{"C2HData to a controller", ctrl, c2h, KindType, FESInvalidHeaderField, 0},
		{"CapsuleCmd to a host", host, cmd, KindType, FESInvalidHeaderField, 0},
		{"H2CTermReq to a host", host, hterm, KindType, FESInvalidHeaderField, 0},
		{"CapsuleCmd before ICReq", fresh, cmd, KindSequence, FESPDUSequenceError, 0},
		{"second ICReq", ctrl, icreq, KindSequence, FESPDUSequenceError, 0},
		{"CapsuleResp before ICResp", freshHost, resp, KindSequence, FESPDUSequenceError, 0},
		{"second ICResp", host, icresp, KindSequence, FESPDUSequenceError, 0},
		{"HDGSTF on ICReq", fresh, with(icreq, func(b []byte) { b[1] = byte(FlagHDGST) }), KindFlags, FESInvalidHeaderField, 1},
		{"LAST_PDU on CapsuleResp", host, with(resp, func(b []byte) { b[1] = byte(FlagLastPDU) }), KindFlags, FESInvalidHeaderField, 1},
		{"reserved flag on C2HData", host, with(c2h, func(b []byte) { b[1] |= 0x10 }), KindFlags, FESInvalidHeaderField, 1},
		{"SUCCESS without LAST_PDU", host, with(c2h, func(b []byte) { b[1] = byte(FlagSuccess) }), KindFlags, FESInvalidHeaderField, 1},
		{"HDGSTF missing", withCfg(host, func(c *ReaderConfig) { c.Digests = HeaderDigest }), resp, KindFlags, FESInvalidHeaderField, 1},
		{"HDGSTF not negotiated", host, respHD, KindFlags, FESInvalidHeaderField, 1},
		{"DDGSTF missing", withCfg(host, func(c *ReaderConfig) { c.Digests = DataDigest }), c2h, KindFlags, FESInvalidHeaderField, 1},
		{"DDGSTF not negotiated", host, c2hDD, KindFlags, FESInvalidHeaderField, 1},
		{"DDGSTF without data", withCfg(ctrl, func(c *ReaderConfig) { c.Digests = DataDigest }),
			with(cmd, func(b []byte) { b[1] = byte(FlagDDGST) }), KindFlags, FESInvalidHeaderField, 1},
		{"flags on a TermReq", host, with(term, func(b []byte) { b[1] = 1 }), KindFlags, 0, 0},
		{"CapsuleCmd hlen 71", ctrl, with(cmd, func(b []byte) { b[2] = 71 }), KindHeaderLength, FESInvalidHeaderField, 2},
		{"CapsuleResp hlen 128", host, with(resp, func(b []byte) { b[2] = 128 }), KindHeaderLength, FESInvalidHeaderField, 2},
		{"ICReq hlen 0", fresh, with(icreq, func(b []byte) { b[2] = 0 }), KindHeaderLength, FESInvalidHeaderField, 2},
		{"C2HData hlen 28", host, with(c2h, func(b []byte) { b[2] = 28 }), KindHeaderLength, FESInvalidHeaderField, 2},
		{"ICReq pdo 8", fresh, with(icreq, func(b []byte) { b[3] = 8 }), KindDataOffset, FESInvalidHeaderField, 3},
		{"ICReq plen 132", fresh, with(icreq, setPLen(132)), KindPDULength, FESInvalidHeaderField, 4},
		{"R2T pdo 24", host, with(r2t, func(b []byte) { b[3] = 24 }), KindDataOffset, FESInvalidHeaderField, 3},
		{"CapsuleResp plen 28 without digest", host, append(with(resp, setPLen(28)), 0, 0, 0, 0), KindPDULength, FESInvalidHeaderField, 4},
		{"CapsuleCmd plen below hlen", ctrl, with(cmd, setPLen(60)), KindPDULength, FESInvalidHeaderField, 4},
		{"CapsuleCmd pdo inside header", ctrl, with(cmdData, func(b []byte) { b[3] = 64 }), KindDataOffset, FESInvalidHeaderField, 3},
		{"CapsuleCmd pdo not aligned to CPDA", withCfg(ctrl, func(c *ReaderConfig) { c.PDA = 3 }), cmdData, KindDataOffset, FESInvalidHeaderField, 3},
		{"C2HData pdo at plen", host, with(c2hSmall, func(b []byte) { b[3] = 28 }), KindDataOffset, FESInvalidHeaderField, 3},
		{"C2HData pdo beyond plen", host, with(c2hSmall, func(b []byte) { b[3] = 200 }), KindDataOffset, FESInvalidHeaderField, 3},
		{"C2HData pdo 0 with data", host, with(c2h, func(b []byte) { b[3] = 0 }), KindDataOffset, FESInvalidHeaderField, 3},
		{"H2CData without data", ctrl, with(h2c[:24], func(b []byte) { b[3] = 0; binary.LittleEndian.PutUint32(b[4:], 24) }), KindPDULength, FESInvalidHeaderField, 4},
		{"data digest but no data", withCfg(host, func(c *ReaderConfig) { c.Digests = DataDigest }), with(c2hDD[:28], setPLen(28)), KindPDULength, FESInvalidHeaderField, 4},
		{"data above MaxData", withCfg(ctrl, func(c *ReaderConfig) { c.MaxData = 4096 }), h2c, KindDataLimit, FESDataLimitExceeded, 0},
		{"plen 4 GiB", host, with(c2h[:24], setPLen(0xffffffff)), KindDataLimit, FESDataLimitExceeded, 0},
		{"in-capsule data above MaxData", withCfg(ctrl, func(c *ReaderConfig) { c.MaxData = 15 }), cmdData, KindDataLimit, FESDataLimitExceeded, 0},
		{"header digest mismatch", withCfg(host, func(c *ReaderConfig) { c.Digests = HeaderDigest }),
			with(respHD, func(b []byte) { b[8] ^= 1 }), KindHeaderDigest, FESHeaderDigestError, 0},
		{"header digest corrupted", withCfg(host, func(c *ReaderConfig) { c.Digests = HeaderDigest }),
			with(respHD, func(b []byte) { b[25] ^= 0x80 }), KindHeaderDigest, FESHeaderDigestError, 0},
		{"DATAL short of the data", host, with(c2h, func(b []byte) { binary.LittleEndian.PutUint32(b[16:], 4095) }), KindField, FESInvalidHeaderField, 16},
		{"DATAL beyond the data", ctrl, with(h2c, func(b []byte) { binary.LittleEndian.PutUint32(b[16:], 1<<20) }), KindField, FESInvalidHeaderField, 16},
		{"DATAO+DATAL beyond 2^32", host, with(c2h, func(b []byte) { binary.LittleEndian.PutUint32(b[12:], 0xffffffff) }), KindDataRange, FESDataOutOfRange, 0},
		{"R2TL 0", host, with(r2t, func(b []byte) { binary.LittleEndian.PutUint32(b[16:], 0) }), KindField, FESInvalidHeaderField, 16},
		{"R2TO+R2TL beyond 2^32", host, with(r2t, func(b []byte) { binary.LittleEndian.PutUint32(b[12:], 0xfffff000) }), KindDataRange, FESDataOutOfRange, 0},
		{"ICReq PFV 1", fresh, with(icreq, func(b []byte) { b[8] = 1 }), KindUnsupported, FESUnsupportedParameter, 8},
		{"ICReq HPDA 32", fresh, with(icreq, func(b []byte) { b[10] = 32 }), KindUnsupported, FESUnsupportedParameter, 10},
		{"ICResp CPDA 32", freshHost, with(icresp, func(b []byte) { b[10] = 32 }), KindUnsupported, FESUnsupportedParameter, 10},
		{"ICResp MAXH2CDATA 1024", freshHost, with(icresp, func(b []byte) { binary.LittleEndian.PutUint32(b[12:], 1024) }), KindUnsupported, FESUnsupportedParameter, 12},
		{"ICResp MAXH2CDATA 4098", freshHost, with(icresp, func(b []byte) { binary.LittleEndian.PutUint32(b[12:], 4098) }), KindUnsupported, FESUnsupportedParameter, 12},
		{"TermReq plen 153", host, append(with(term, setPLen(153)), make([]byte, 200)...), KindPDULength, 0, 0},
		{"TermReq plen 20", host, with(term, setPLen(20)), KindPDULength, 0, 0},
		{"TermReq pdo 8", host, with(term, func(b []byte) { b[3] = 8 }), KindDataOffset, 0, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, err := NewReader(bytes.NewReader(tc.in), tc.cfg)
			require.NoError(t, err)
			p, err := r.Read()
			assert.Nil(t, p)
			var pe *ProtocolError
			require.ErrorAs(t, err, &pe)
			assert.Equal(t, tc.kind, pe.Kind, "kind: %v", pe)
			assert.Equal(t, tc.fes, pe.FES, "FES: %v", pe)
			assert.Equal(t, tc.fei, pe.FEI, "FEI: %v", pe)
			assert.Equal(t, Type(tc.in[0]), pe.Type)
			assert.True(t, pe.Fatal())
			if pe.FES != 0 {
				assert.GreaterOrEqual(t, len(pe.Header), CommonHeaderLen)
				assert.Equal(t, tc.in[:len(pe.Header)], pe.Header)
			} else {
				_, ok := pe.TermReqPDU(TypeC2HTermReq)
				assert.False(t, ok, "no TermReq answers this")
			}
			assert.Equal(t, int64(0), r.Offset(), "nothing consumed")
			_, again := r.Read()
			assert.Same(t, pe, again, "errors are sticky")
		})
	}
}

func TestDataDigestErrorIsNotFatal(t *testing.T) {
	e := Encoder{Digests: HeaderDigest | DataDigest}
	first := encode(t, e, PDU{Type: TypeH2CData, H2CData: H2CData{CCCID: 1, DataLength: 4096}, Data: pattern(4096, 1)})
	second := encode(t, e, PDU{Type: TypeCapsuleCmd, SQE: sampleSQE(1, 2, SGLInCapsule, 100), Data: pattern(100, 2)})
	stream := append(with(first, func(b []byte) { b[100] ^= 0xff }), second...)
	for _, dst := range [][]byte{nil, make([]byte, 8192)} {
		r, err := NewReader(bytes.NewReader(stream), ReaderConfig{Established: true, Digests: e.Digests})
		require.NoError(t, err)
		var p *PDU
		if dst == nil {
			p, err = r.Read()
		} else {
			p, err = r.ReadHeader()
			require.NoError(t, err)
			_, err = r.ReadData(dst)
		}
		var pe *ProtocolError
		require.ErrorAs(t, err, &pe)
		assert.Equal(t, KindDataDigest, pe.Kind)
		assert.False(t, pe.Fatal())
		assert.Equal(t, FES(0), pe.FES)
		require.NotNil(t, p, "the PDU comes with the error")
		assert.Equal(t, uint16(1), p.H2CData.CCCID)
		assert.Len(t, p.Data, 4096)

		p, err = r.Read()
		require.NoError(t, err, "the stream is still in step")
		assert.Equal(t, uint16(2), p.SQE.CID())
		assert.Equal(t, pattern(100, 2), p.Data)
	}
}

// TestTruncated cuts a stream at every byte: each cut reads as io.EOF at a
// PDU boundary and as KindTruncated anywhere else.
func TestTruncated(t *testing.T) {
	e := Encoder{Digests: HeaderDigest | DataDigest, PDA: 3}
	var stream []byte
	var ends []int
	for _, p := range samplePDUs() {
		if p.Type.FromHost() || p.Type == TypeICResp || len(p.Data) > 8192 {
			continue
		}
		stream = append(stream, encode(t, e, p)...)
		ends = append(ends, len(stream))
	}
	cfg := ReaderConfig{Role: RoleHost, Established: true, Digests: e.Digests, PDA: e.PDA, BufferSize: MinBufferSize}
	for cut := 0; cut < len(stream); cut++ {
		r, err := NewReader(bytes.NewReader(stream[:cut]), cfg)
		require.NoError(t, err)
		complete := 0
		for _, end := range ends {
			if end <= cut {
				complete++
			}
		}
		for i := 0; i < complete; i++ {
			_, err := r.Read()
			require.NoError(t, err, "cut %d PDU %d", cut, i)
		}
		_, err = r.Read()
		if complete > 0 && ends[complete-1] == cut || cut == 0 {
			require.Equal(t, io.EOF, err, "cut %d at a boundary", cut)
			continue
		}
		var pe *ProtocolError
		require.ErrorAs(t, err, &pe, "cut %d", cut)
		require.Equal(t, KindTruncated, pe.Kind, "cut %d: %v", cut, err)
		require.ErrorIs(t, err, io.ErrUnexpectedEOF)
		require.Equal(t, FES(0), pe.FES)
		require.LessOrEqual(t, r.Offset(), int64(cut))
	}
}

// flakyReader fails once with a timeout before serving its bytes.
type flakyReader struct {
	b      []byte
	failed bool
}

var errTimeout = os.ErrDeadlineExceeded

func (f *flakyReader) Read(p []byte) (int, error) {
	if !f.failed {
		f.failed = true
		return 0, errTimeout
	}
	if len(f.b) == 0 {
		return 0, io.EOF
	}
	n := copy(p, f.b)
	f.b = f.b[n:]
	return n, nil
}

func TestReadErrorBetweenPDUsCanBeRetried(t *testing.T) {
	b := encode(t, Encoder{}, PDU{Type: TypeCapsuleResp, CQE: sampleCQE(3, 0)})
	r, err := NewReader(&flakyReader{b: b}, ReaderConfig{Role: RoleHost, Established: true})
	require.NoError(t, err)
	_, err = r.Read()
	require.ErrorIs(t, err, errTimeout)
	var pe *ProtocolError
	assert.False(t, errors.As(err, &pe))
	p, err := r.Read()
	require.NoError(t, err)
	assert.Equal(t, uint16(3), p.CQE.CID())
}

// midFailReader serves n bytes, then fails.
type midFailReader struct {
	b []byte
	n int
}

func (m *midFailReader) Read(p []byte) (int, error) {
	if m.n == 0 {
		return 0, errTimeout
	}
	k := copy(p[:min(len(p), m.n)], m.b)
	m.b, m.n = m.b[k:], m.n-k
	return k, nil
}

func TestReadErrorInsideDataIsFatal(t *testing.T) {
	b := encode(t, Encoder{}, PDU{Type: TypeC2HData, C2HData: C2HData{DataLength: 65536}, Data: pattern(65536, 1)})
	r, err := NewReader(&midFailReader{b: b, n: 30000}, ReaderConfig{Role: RoleHost, Established: true, BufferSize: MinBufferSize})
	require.NoError(t, err)
	_, err = r.Read()
	require.ErrorIs(t, err, errTimeout)
	_, again := r.Read()
	assert.Equal(t, err, again)
}

func TestProtocolErrorText(t *testing.T) {
	b := encode(t, Encoder{}, PDU{Type: TypeCapsuleCmd, SQE: sampleSQE(1, 1, SGLTransport, 0)})
	stream := append(bytes.Clone(b), with(b, func(b []byte) { b[2] = 71 })...)
	r, err := NewReader(bytes.NewReader(stream), ReaderConfig{Established: true})
	require.NoError(t, err)
	_, err = r.Read()
	require.NoError(t, err)
	_, err = r.Read()
	require.Error(t, err)
	msg := err.Error()
	for _, want := range []string{"nvmetcp:", "CapsuleCmd", "offset 72", "hlen 71, want 72", "Invalid PDU Header Field", "FEI 2"} {
		assert.True(t, strings.Contains(msg, want), "%q lacks %q", msg, want)
	}
}

func TestReaderConfigValidate(t *testing.T) {
	require.NoError(t, ReaderConfig{}.Validate())
	err := ReaderConfig{Role: 7, MaxData: -1, PDA: 32, Digests: 4, BufferSize: 100}.Validate()
	require.Error(t, err)
	for _, want := range []string{"role", "MaxData", "PDA", "digests", "BufferSize"} {
		assert.Contains(t, err.Error(), want)
	}
	_, err = NewReader(bytes.NewReader(nil), ReaderConfig{PDA: 40})
	require.Error(t, err)
}

func TestStrings(t *testing.T) {
	assert.Equal(t, "C2HData", TypeC2HData.String())
	assert.Equal(t, "PDU(0x08)", Type(8).String())
	assert.Equal(t, "LAST_PDU|SUCCESS", (FlagLastPDU | FlagSuccess).String())
	assert.Equal(t, "HDGSTF|0x80", (FlagHDGST | 0x80).String())
	assert.Equal(t, "Data Transfer Limit Exceeded", FESDataLimitExceeded.String())
	assert.Equal(t, "truncated PDU", KindTruncated.String())
	assert.Equal(t, "host", RoleHost.String())
}
