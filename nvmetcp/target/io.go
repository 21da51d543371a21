package target

import (
	"encoding/binary"

	"github.com/virtual-disk-array/vda/nvmetcp"
)

// NVM command set opcodes.
const (
	opFlush       = 0x00
	opWrite       = 0x01
	opRead        = 0x02
	opWriteZeroes = 0x08
	opDSM         = 0x09
)

const dsmRangeLen = 16

func (c *conn) io(sqe *nvmetcp.SQE, data []byte) error {
	n := c.ns(sqe.NSID())
	if n == nil {
		return c.respond(sqe, stInvalidNS, 0, 0)
	}
	switch sqe.Opcode() {
	case opFlush:
		return c.respond(sqe, errStatus(n.Dev.Flush(c.ctx)), 0, 0)
	case opRead, opWrite, opWriteZeroes:
		off, length, s := c.lbaRange(sqe, n)
		if s != stOK {
			return c.respond(sqe, s, 0, 0)
		}
		switch sqe.Opcode() {
		case opWriteZeroes:
			return c.respond(sqe, errStatus(n.Dev.WriteZeroes(c.ctx, off, length)), 0, 0)
		case opRead:
			if length > uint64(c.s.cfg.MaxIO) {
				return c.respond(sqe, stInvalidField, 0, 0)
			}
			if uint64(sqe.SGLLength()) != length {
				return c.respond(sqe, st(0, scSGLLength, true), 0, 0)
			}
			buf := make([]byte, length)
			if err := n.Dev.ReadAt(c.ctx, buf, off); err != nil {
				return c.respond(sqe, errStatus(err), 0, 0)
			}
			return c.sendData(sqe, buf, c.s.cfg.C2HSuccess)
		}
		if length > uint64(c.s.cfg.MaxIO) {
			return c.respond(sqe, stInvalidField, 0, 0)
		}
		if uint64(sqe.SGLLength()) != length {
			return c.respond(sqe, st(0, scSGLLength, true), 0, 0)
		}
		return c.dataOut(sqe, data)
	case opDSM:
		nr := uint64(sqe.CDW10()&0xFF) + 1
		if uint64(sqe.SGLLength()) < nr*dsmRangeLen {
			return c.respond(sqe, st(0, scSGLLength, true), 0, 0)
		}
		return c.dataOut(sqe, data)
	}
	return c.respond(sqe, st(0, scInvalidOpcode, true), 0, 0)
}

// lbaRange returns the byte range of a Read, Write or Write Zeroes.
func (c *conn) lbaRange(sqe *nvmetcp.SQE, n *NS) (off, length uint64, _ status) {
	slba := uint64(sqe.CDW10()) | uint64(sqe.CDW11())<<32
	nlb := uint64(sqe.CDW12()&0xFFFF) + 1
	bs := uint64(n.Dev.BlockSize())
	blocks := n.Dev.Size() / bs
	if slba > blocks || nlb > blocks-slba {
		return 0, 0, st(0, scLBARange, true)
	}
	return slba * bs, nlb * bs, stOK
}

// dataOut gets the data of a Write or DSM, in the capsule or by R2T, and
// executes the command once all of it is there.
func (c *conn) dataOut(sqe *nvmetcp.SQE, data []byte) error {
	switch sqe.SGLIdentifier() {
	case nvmetcp.SGLInCapsule:
		if sqe.SGLLength() > c.s.cfg.InCapsuleData {
			return c.respond(sqe, st(0, scSGLLength, true), 0, 0)
		}
		d, ok := inCapsule(sqe, data)
		if !ok {
			return c.respond(sqe, st(0, scSGLLength, true), 0, 0)
		}
		return c.execOut(sqe, d)
	case nvmetcp.SGLTransport:
		if len(data) != 0 {
			return c.respond(sqe, stInvalidField, 0, 0)
		}
		n := sqe.SGLLength()
		if n == 0 {
			return c.execOut(sqe, nil)
		}
		if len(c.xfers) >= mqes+1 {
			return c.respond(sqe, st(0, scInternal, false), 0, 0)
		}
		c.nextTTag++
		for c.xfers[c.nextTTag] != nil {
			c.nextTTag++
		}
		x := &xfer{sqe: *sqe, buf: make([]byte, n)}
		c.xfers[c.nextTTag] = x
		return c.sendR2T(c.nextTTag, x, 0)
	}
	return c.respond(sqe, st(0, scSGLType, true), 0, 0)
}

func (c *conn) sendR2T(ttag uint16, x *xfer, off uint32) error {
	l := min(uint32(len(x.buf))-off, c.s.cfg.MaxH2CData)
	x.r2to, x.r2tl, x.got = off, l, 0
	p := nvmetcp.PDU{Type: nvmetcp.TypeR2T, R2T: nvmetcp.R2T{CCCID: x.sqe.CID(), TTAG: ttag, Offset: off, Length: l}}
	return c.w.WritePDU(&p)
}

// h2cHeader rebuilds the header of an H2CData PDU as the error data of a
// TermReq.
func h2cHeader(p *nvmetcp.PDU) []byte {
	h := make([]byte, nvmetcp.H2CDataLen)
	h[0], h[1], h[2], h[3] = byte(p.Header.Type), byte(p.Header.Flags), p.Header.HLen, p.Header.PDO
	binary.LittleEndian.PutUint32(h[4:], p.Header.PLen)
	binary.LittleEndian.PutUint16(h[8:], p.H2CData.CCCID)
	binary.LittleEndian.PutUint16(h[10:], p.H2CData.TTAG)
	binary.LittleEndian.PutUint32(h[12:], p.H2CData.DataOffset)
	binary.LittleEndian.PutUint32(h[16:], p.H2CData.DataLength)
	return h
}

func (c *conn) h2cData(p *nvmetcp.PDU, digestKO bool) error {
	d := p.H2CData
	x := c.xfers[d.TTAG]
	switch {
	case x == nil:
		return c.fatal(nvmetcp.KindField, nvmetcp.FESInvalidHeaderField, 10, h2cHeader(p))
	case x.sqe.CID() != d.CCCID:
		return c.fatal(nvmetcp.KindField, nvmetcp.FESInvalidHeaderField, 8, h2cHeader(p))
	case d.DataLength > c.s.cfg.MaxH2CData:
		return c.fatal(nvmetcp.KindDataLimit, nvmetcp.FESDataLimitExceeded, 0, h2cHeader(p))
	case d.DataOffset != x.r2to+x.got || d.DataLength > x.r2tl-x.got:
		return c.fatal(nvmetcp.KindDataRange, nvmetcp.FESDataOutOfRange, 0, h2cHeader(p))
	}
	last := x.got+d.DataLength == x.r2tl
	if last != (p.Flags&nvmetcp.FlagLastPDU != 0) {
		return c.fatal(nvmetcp.KindFlags, nvmetcp.FESInvalidHeaderField, 1, h2cHeader(p))
	}
	copy(x.buf[d.DataOffset:], p.Data)
	x.got += d.DataLength
	x.digestKO = x.digestKO || digestKO
	if !last {
		return nil
	}
	if end := x.r2to + x.r2tl; end < uint32(len(x.buf)) {
		return c.sendR2T(d.TTAG, x, end)
	}
	delete(c.xfers, d.TTAG)
	if x.digestKO {
		return c.respond(&x.sqe, st(0, scTransient, false), 0, 0)
	}
	return c.execOut(&x.sqe, x.buf)
}

// execOut runs a Write or DSM whose data is all there.
func (c *conn) execOut(sqe *nvmetcp.SQE, data []byte) error {
	n := c.ns(sqe.NSID())
	if n == nil {
		return c.respond(sqe, stInvalidNS, 0, 0)
	}
	if sqe.Opcode() == opWrite {
		off, length, s := c.lbaRange(sqe, n)
		if s != stOK {
			return c.respond(sqe, s, 0, 0)
		}
		if uint64(len(data)) != length {
			return c.respond(sqe, st(0, scSGLLength, true), 0, 0)
		}
		return c.respond(sqe, errStatus(n.Dev.WriteAt(c.ctx, data, off)), 0, 0)
	}
	// Dataset Management.
	nr := int(sqe.CDW10()&0xFF) + 1
	if len(data) < nr*dsmRangeLen {
		return c.respond(sqe, st(0, scSGLLength, true), 0, 0)
	}
	if sqe.CDW11()&0x4 == 0 { // no Deallocate: attributes are hints
		return c.respond(sqe, stOK, 0, 0)
	}
	bs := uint64(n.Dev.BlockSize())
	blocks := n.Dev.Size() / bs
	for i := range nr {
		r := data[i*dsmRangeLen:]
		nlb := uint64(binary.LittleEndian.Uint32(r[4:]))
		slba := binary.LittleEndian.Uint64(r[8:])
		if slba > blocks || nlb > blocks-slba {
			return c.respond(sqe, st(0, scLBARange, true), 0, 0)
		}
	}
	for i := range nr {
		r := data[i*dsmRangeLen:]
		nlb := uint64(binary.LittleEndian.Uint32(r[4:]))
		slba := binary.LittleEndian.Uint64(r[8:])
		if nlb == 0 {
			continue
		}
		if err := n.Dev.Unmap(c.ctx, slba*bs, nlb*bs); err != nil {
			return c.respond(sqe, errStatus(err), 0, 0)
		}
	}
	return c.respond(sqe, stOK, 0, 0)
}
