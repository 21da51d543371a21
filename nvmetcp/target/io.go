package target

import (
	"encoding/binary"
	"errors"

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
	if s := anaStatus(c, n); s != stOK {
		return c.respond(sqe, s, 0, 0)
	}
	var off, length uint64
	op := sqe.Opcode()
	switch op {
	case opFlush:
	case opRead, opWrite, opWriteZeroes:
		var s status
		if off, length, s = c.lbaRange(sqe, n); s != stOK {
			return c.respond(sqe, s, 0, 0)
		}
		if op == opWriteZeroes {
			break
		}
		if length > uint64(c.s.cfg.MaxIO) {
			return c.respond(sqe, stInvalidField, 0, 0)
		}
		if uint64(sqe.SGLLength()) != length {
			return c.respond(sqe, st(0, scSGLLength, true), 0, 0)
		}
		if op == opRead && sqe.SGLIdentifier() != nvmetcp.SGLTransport {
			return c.respond(sqe, st(0, scSGLType, true), 0, 0)
		}
	case opDSM:
		nr := uint64(sqe.CDW10()&0xFF) + 1
		if uint64(sqe.SGLLength()) < nr*dsmRangeLen {
			return c.respond(sqe, st(0, scSGLLength, true), 0, 0)
		}
	default:
		return c.respond(sqe, st(0, scInvalidOpcode, true), 0, 0)
	}
	if !c.acquire() {
		return errors.New("target: connection closing")
	}
	cm := newCommand()
	cm.sqe, cm.ns, cm.off, cm.len = *sqe, n, off, length
	switch op {
	case opRead:
		cm.buf = c.s.getBuf(int(length))
		cm.data = cm.buf.b
	case opWrite, opDSM:
		c.dataOut(cm, data)
		return nil
	}
	c.dispatch(cm)
	return nil
}

// anaStatus is SPDK's answer to I/O on a path whose ANA group is neither
// optimized nor non-optimized: a path error without DNR, so that the host
// retries on another path (Linux's multipath requeues it and rereads the
// ANA log) instead of failing the I/O. Without ANA reporting every path is
// optimized, as in SPDK.
func anaStatus(c *conn, n *NS) status {
	if !c.ctrl.sub.Load().ANAReporting {
		return stOK
	}
	switch n.ANAState {
	case nvmetcp.ANAInaccessible:
		return st(sctPath, scANAInaccessible, false)
	case nvmetcp.ANAPersistentLoss:
		return st(sctPath, scANAPersistLoss, false)
	case nvmetcp.ANAChange:
		return st(sctPath, scANATransition, false)
	}
	return stOK
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
// dispatches the command once all of it is there.
func (c *conn) dataOut(cm *command, data []byte) {
	sqe := &cm.sqe
	switch sqe.SGLIdentifier() {
	case nvmetcp.SGLInCapsule:
		if sqe.SGLLength() > c.s.cfg.InCapsuleData {
			c.complete(cm, st(0, scSGLLength, true), false)
			return
		}
		d, ok := inCapsule(sqe, data)
		if !ok {
			c.complete(cm, st(0, scSGLLength, true), false)
			return
		}
		cm.data = d // a view of the reader's buffer: dispatch copies it if needed
		c.dispatch(cm)
	case nvmetcp.SGLTransport:
		if len(data) != 0 {
			c.complete(cm, stInvalidField, false)
			return
		}
		n := sqe.SGLLength()
		if n == 0 {
			c.dispatch(cm)
			return
		}
		c.nextTTag++
		for c.xfers[c.nextTTag] != nil {
			c.nextTTag++
		}
		cm.buf = c.s.getBuf(int(n))
		cm.data = cm.buf.b
		c.xfers[c.nextTTag] = cm
		c.sendR2T(c.nextTTag, cm, 0)
	default:
		c.complete(cm, st(0, scSGLType, true), false)
	}
}

func (c *conn) sendR2T(ttag uint16, cm *command, off uint32) {
	l := min(uint32(len(cm.data))-off, c.s.cfg.MaxH2CData)
	cm.r2to, cm.r2tl, cm.got = off, l, 0
	p := nvmetcp.PDU{Type: nvmetcp.TypeR2T, R2T: nvmetcp.R2T{CCCID: cm.sqe.CID(), TTAG: ttag, Offset: off, Length: l}}
	c.wmu.Lock()
	c.queueLocked(&p)
	c.wmu.Unlock()
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

// h2cData checks an H2CData header against its command, then reads the
// data straight into the command's buffer.
func (c *conn) h2cData(p *nvmetcp.PDU) error {
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
	if _, err := c.r.ReadData(x.data[d.DataOffset : d.DataOffset+d.DataLength]); err != nil {
		var pe *nvmetcp.ProtocolError
		if !errors.As(err, &pe) || pe.Fatal() {
			return err
		}
		x.digestKO = true
	}
	x.got += d.DataLength
	if !last {
		return nil
	}
	if end := x.r2to + x.r2tl; end < uint32(len(x.data)) {
		c.sendR2T(d.TTAG, x, end)
		return nil
	}
	delete(c.xfers, d.TTAG)
	if x.digestKO {
		c.complete(x, st(0, scTransient, false), false)
		return nil
	}
	// The namespace may have gone or changed since the capsule.
	n := c.ns(x.sqe.NSID())
	if n == nil {
		c.complete(x, stInvalidNS, false)
		return nil
	}
	x.ns = n
	if x.sqe.Opcode() == opWrite {
		off, length, s := c.lbaRange(&x.sqe, n)
		if s != stOK {
			c.complete(x, s, false)
			return nil
		}
		x.off, x.len = off, length
	}
	c.dispatch(x)
	return nil
}

// exec runs an I/O command whose data is all there and completes it.
func (c *conn) exec(cm *command, async bool) {
	dev := cm.ns.Dev
	var s status
	switch cm.sqe.Opcode() {
	case opRead:
		if err := dev.ReadAt(c.ctx, cm.data, cm.off); err != nil {
			s = errStatus(err)
			break
		}
		c.wmu.Lock()
		c.queueDataLocked(cm.sqe.CID(), cm.data, c.s.cfg.C2HSuccess)
		c.holdLocked(cm.buf, true)
		c.wmu.Unlock()
		c.completed(cm, async)
		return
	case opWrite:
		if uint64(len(cm.data)) != cm.len {
			s = st(0, scSGLLength, true)
			break
		}
		s = errStatus(dev.WriteAt(c.ctx, cm.data, cm.off))
	case opFlush:
		s = errStatus(dev.Flush(c.ctx))
	case opWriteZeroes:
		s = errStatus(dev.WriteZeroes(c.ctx, cm.off, cm.len))
	case opDSM:
		s = c.dsm(cm)
	}
	c.complete(cm, s, async)
}

// complete queues the CapsuleResp of an I/O command and releases it.
func (c *conn) complete(cm *command, s status, async bool) {
	c.wmu.Lock()
	c.respondLocked(cm.sqe.CID(), s, 0, 0)
	c.holdLocked(cm.buf, true)
	c.wmu.Unlock()
	c.completed(cm, async)
}

func (c *conn) completed(cm *command, async bool) {
	freeCommand(cm)
	if async {
		c.running.Add(-1)
		c.kick()
	}
}

// dsm runs a Dataset Management command.
func (c *conn) dsm(cm *command) status {
	n, data := cm.ns, cm.data
	sqe := &cm.sqe
	nr := int(sqe.CDW10()&0xFF) + 1
	if len(data) < nr*dsmRangeLen {
		return st(0, scSGLLength, true)
	}
	if sqe.CDW11()&0x4 == 0 { // no Deallocate: attributes are hints
		return stOK
	}
	bs := uint64(n.Dev.BlockSize())
	blocks := n.Dev.Size() / bs
	for i := range nr {
		r := data[i*dsmRangeLen:]
		nlb := uint64(binary.LittleEndian.Uint32(r[4:]))
		slba := binary.LittleEndian.Uint64(r[8:])
		if slba > blocks || nlb > blocks-slba {
			return st(0, scLBARange, true)
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
			return errStatus(err)
		}
	}
	return stOK
}
