package nvmetcp

import (
	"encoding/binary"
	"fmt"
	"math"
	"slices"
)

// Encoder turns PDUs into bytes for one direction of one connection. Its
// zero value suits the ICReq/ICResp exchange; set Digests and PDA from that
// exchange before sending anything else.
//
// Encoding is append-style into a caller's buffer and never allocates when
// the buffer has room. The Encoder refuses (with *EncodeError) any PDU the
// Reader would reject, so a bug shows up at the sender, not as a TermReq.
type Encoder struct {
	// Digests are the digests negotiated for the connection. IC and TermReq
	// PDUs never carry digests whatever this says; data digests go only on
	// PDUs with data.
	Digests Digests
	// PDA is the data alignment the peer asked for, 0's based in dwords
	// (0..31): the CPDA of the ICResp when a host sends, the HPDA of the
	// ICReq when a controller sends. Data then starts at a multiple of
	// (PDA+1)×4 bytes from the PDU start, zero padding filling the gap.
	PDA uint8
}

// layout is where each part of an encoded PDU goes.
type layout struct {
	flags Flags
	hlen  int
	hd    int // header digest bytes, 0 or 4
	pad   int // zero bytes between header (and digest) and data
	pdo   int
	plen  uint32
}

func (e Encoder) fail(t Type, format string, args ...any) error {
	return &EncodeError{Type: t, Msg: fmt.Sprintf(format, args...)}
}

// plan validates p and computes its layout.
func (e Encoder) plan(p *PDU) (layout, error) {
	t := p.Type
	var l layout
	if !t.Valid() {
		return l, e.fail(t, "reserved PDU type")
	}
	if e.PDA > MaxPDA {
		return l, e.fail(t, "PDA %d above %d", e.PDA, MaxPDA)
	}
	if extra := p.Flags &^ (t.semanticFlags() | digestFlags); extra != 0 {
		return l, e.fail(t, "flags %v not allowed", extra)
	}
	l.flags = p.Flags & t.semanticFlags()
	if l.flags&(FlagSuccess|FlagLastPDU) == FlagSuccess {
		return l, e.fail(t, "SUCCESS without LAST_PDU")
	}
	l.hlen = t.HeaderLen()
	n := len(p.Data)
	if err := e.checkFields(p); err != nil {
		return l, err
	}
	if t.usesDigests() {
		if e.Digests&HeaderDigest != 0 {
			l.flags |= FlagHDGST
			l.hd = DigestLen
		}
		if e.Digests&DataDigest != 0 && n > 0 {
			l.flags |= FlagDDGST
		}
	}
	full := l.hlen + l.hd
	total := uint64(full) + uint64(n)
	if n > 0 && t.carriesData() {
		align := (int(e.PDA) + 1) * 4
		l.pdo = (full + align - 1) / align * align
		l.pad = l.pdo - full
		total = uint64(l.pdo) + uint64(n)
		if l.flags&FlagDDGST != 0 {
			total += DigestLen
		}
	}
	if total > math.MaxUint32 {
		return l, e.fail(t, "%d data bytes do not fit in PLEN", n)
	}
	l.plen = uint32(total)
	return l, nil
}

// checkFields applies the Reader's PDU-specific rules to p.
func (e Encoder) checkFields(p *PDU) error {
	t, n := p.Type, len(p.Data)
	if n > 0 && !t.carriesData() && t != TypeH2CTermReq && t != TypeC2HTermReq {
		return e.fail(t, "%d data bytes on a PDU without data", n)
	}
	switch t {
	case TypeICReq:
		if p.ICReq.PFV != 0 {
			return e.fail(t, "PFV %d", p.ICReq.PFV)
		}
		if p.ICReq.HPDA > MaxPDA {
			return e.fail(t, "HPDA %d above %d", p.ICReq.HPDA, MaxPDA)
		}
		if p.ICReq.Digests&^digestMask != 0 {
			return e.fail(t, "reserved DGST bits %#x", uint8(p.ICReq.Digests))
		}
	case TypeICResp:
		if p.ICResp.PFV != 0 {
			return e.fail(t, "PFV %d", p.ICResp.PFV)
		}
		if p.ICResp.CPDA > MaxPDA {
			return e.fail(t, "CPDA %d above %d", p.ICResp.CPDA, MaxPDA)
		}
		if p.ICResp.Digests&^digestMask != 0 {
			return e.fail(t, "reserved DGST bits %#x", uint8(p.ICResp.Digests))
		}
		if m := p.ICResp.MaxH2CData; m < MinMaxH2CData || m%4 != 0 {
			return e.fail(t, "MAXH2CDATA %d not a multiple of 4 of at least %d", m, MinMaxH2CData)
		}
	case TypeH2CTermReq, TypeC2HTermReq:
		if n > MaxTermReqData {
			return e.fail(t, "%d bytes of error data, at most %d", n, MaxTermReqData)
		}
	case TypeH2CData:
		return e.checkData(t, n, p.H2CData.DataOffset, p.H2CData.DataLength)
	case TypeC2HData:
		return e.checkData(t, n, p.C2HData.DataOffset, p.C2HData.DataLength)
	case TypeR2T:
		if p.R2T.Length == 0 {
			return e.fail(t, "R2TL 0")
		}
		if uint64(p.R2T.Offset)+uint64(p.R2T.Length) > math.MaxUint32 {
			return e.fail(t, "R2TO %d + R2TL %d beyond 2^32", p.R2T.Offset, p.R2T.Length)
		}
	}
	return nil
}

func (e Encoder) checkData(t Type, n int, off, length uint32) error {
	switch {
	case n == 0:
		return e.fail(t, "no data")
	case uint64(length) != uint64(n):
		return e.fail(t, "DATAL %d for %d data bytes", length, n)
	case uint64(off)+uint64(length) > math.MaxUint32:
		return e.fail(t, "DATAO %d + DATAL %d beyond 2^32", off, length)
	}
	return nil
}

// AppendHeader appends everything of p that precedes its data: common
// header, PDU-specific header, header digest and padding. With Data sent
// separately (writev) and AppendDataDigest after it, the result is the PDU
// that Append produces.
func (e Encoder) AppendHeader(dst []byte, p *PDU) ([]byte, error) {
	l, err := e.plan(p)
	if err != nil {
		return dst, err
	}
	start := len(dst)
	size := l.hlen + l.hd + l.pad
	dst = slices.Grow(dst, size)[:start+size]
	h := dst[start:]
	clear(h)
	h[0] = byte(p.Type)
	h[1] = byte(l.flags)
	h[2] = byte(l.hlen)
	h[3] = byte(l.pdo)
	le := binary.LittleEndian
	le.PutUint32(h[4:], l.plen)
	switch p.Type {
	case TypeICReq:
		le.PutUint16(h[8:], p.ICReq.PFV)
		h[10] = p.ICReq.HPDA
		h[11] = byte(p.ICReq.Digests)
		le.PutUint32(h[12:], p.ICReq.MaxR2T)
	case TypeICResp:
		le.PutUint16(h[8:], p.ICResp.PFV)
		h[10] = p.ICResp.CPDA
		h[11] = byte(p.ICResp.Digests)
		le.PutUint32(h[12:], p.ICResp.MaxH2CData)
	case TypeH2CTermReq, TypeC2HTermReq:
		le.PutUint16(h[8:], uint16(p.TermReq.FES))
		le.PutUint32(h[10:], p.TermReq.FEI)
	case TypeCapsuleCmd:
		copy(h[8:72], p.SQE[:])
	case TypeCapsuleResp:
		copy(h[8:24], p.CQE[:])
	case TypeH2CData:
		le.PutUint16(h[8:], p.H2CData.CCCID)
		le.PutUint16(h[10:], p.H2CData.TTAG)
		le.PutUint32(h[12:], p.H2CData.DataOffset)
		le.PutUint32(h[16:], p.H2CData.DataLength)
	case TypeC2HData:
		le.PutUint16(h[8:], p.C2HData.CCCID)
		le.PutUint32(h[12:], p.C2HData.DataOffset)
		le.PutUint32(h[16:], p.C2HData.DataLength)
	case TypeR2T:
		le.PutUint16(h[8:], p.R2T.CCCID)
		le.PutUint16(h[10:], p.R2T.TTAG)
		le.PutUint32(h[12:], p.R2T.Offset)
		le.PutUint32(h[16:], p.R2T.Length)
	}
	if l.hd != 0 {
		le.PutUint32(h[l.hlen:], CRC32C(h[:l.hlen]))
	}
	return dst, nil
}

// hasDataDigest reports whether p, encoded by e, ends in a data digest.
func (e Encoder) hasDataDigest(p *PDU) bool {
	return e.Digests&DataDigest != 0 && p.Type.carriesData() && len(p.Data) > 0
}

// AppendDataDigest appends p's data digest if p gets one (data digests
// negotiated and p carries data), and otherwise returns dst unchanged.
func (e Encoder) AppendDataDigest(dst []byte, p *PDU) []byte {
	if !e.hasDataDigest(p) {
		return dst
	}
	return binary.LittleEndian.AppendUint32(dst, CRC32C(p.Data))
}

// Append appends the whole PDU p to dst: header, digest, padding, a copy of
// the data, data digest.
func (e Encoder) Append(dst []byte, p *PDU) ([]byte, error) {
	dst, err := e.AppendHeader(dst, p)
	if err != nil {
		return dst, err
	}
	dst = append(dst, p.Data...)
	return e.AppendDataDigest(dst, p), nil
}

// EncodedLen returns the PLEN of p as e would encode it.
func (e Encoder) EncodedLen(p *PDU) (int, error) {
	l, err := e.plan(p)
	if err != nil {
		return 0, err
	}
	return int(l.plen), nil
}
