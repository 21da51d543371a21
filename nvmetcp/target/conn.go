package target

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"net"
	"time"

	"github.com/virtual-disk-array/vda/nvmetcp"
)

// NVMe status codes used here (SCT 0 generic unless noted).
const (
	scSuccess          = 0x00
	scInvalidOpcode    = 0x01
	scInvalidField     = 0x02
	scDataTransfer     = 0x04
	scInternal         = 0x06
	scInvalidNS        = 0x0B
	scSequence         = 0x0C
	scSGLLength        = 0x0D
	scSGLType          = 0x11
	scTransient        = 0x22
	scLBARange         = 0x80
	scNSNotReady       = 0x82
	sctCmd             = 1    // command specific
	scAERLimit         = 0x05 // SCT 1
	scInvalidLogPage   = 0x09 // SCT 1
	scConnectInvParams = 0x82 // SCT 1: Connect Invalid Parameters
	scConnectInvHost   = 0x84 // SCT 1: Connect Invalid Host
)

type status uint16

func st(sct, sc uint8, dnr bool) status { return status(nvmetcp.StatusWord(sct, sc, dnr)) }

var (
	stOK           = status(0)
	stInvalidField = st(0, scInvalidField, true)
	stInvalidNS    = st(0, scInvalidNS, true)
	stSequence     = st(0, scSequence, true)
	stInternal     = st(0, scInternal, false)
)

// conn is one queue: one TCP connection.
type conn struct {
	s   *server
	nc  net.Conn
	ctx context.Context
	r   *nvmetcp.Reader
	w   *nvmetcp.Writer

	ctrl   *controller
	qid    uint16
	sqsize uint16 // 0's based
	sqhd   uint16

	xfers    map[uint16]*xfer // by TTAG
	nextTTag uint16
	idBuf    [nvmetcp.IdentifyLen]byte
}

// xfer is a command waiting for its data through R2T/H2CData.
type xfer struct {
	sqe      nvmetcp.SQE
	buf      []byte
	r2to     uint32 // offset of the outstanding R2T
	r2tl     uint32
	got      uint32 // bytes received of the outstanding R2T
	digestKO bool
}

func (c *conn) serve() {
	defer c.s.dropConn(c)
	defer c.nc.Close()
	cfg := c.s.cfg
	maxData := max(int(cfg.MaxH2CData), int(cfg.InCapsuleData), 8192)
	r, err := nvmetcp.NewReader(c.nc, nvmetcp.ReaderConfig{Role: nvmetcp.RoleController, MaxData: maxData})
	if err != nil {
		return
	}
	c.r, c.w = r, nvmetcp.NewWriter(c.nc)
	c.xfers = map[uint16]*xfer{}
	defer func() {
		if c.ctrl != nil {
			c.s.detach(c.ctrl, c, c.qid == 0)
		}
	}()
	for {
		p, err := c.r.Read()
		if err != nil {
			var pe *nvmetcp.ProtocolError
			if errors.As(err, &pe) && !pe.Fatal() {
				if c.handle(p, true) != nil {
					return
				}
				continue
			}
			if errors.As(err, &pe) {
				c.terminate(pe)
			}
			return
		}
		if c.handle(p, false) != nil {
			return
		}
	}
}

// terminate sends the C2HTermReq for a fatal protocol error; the caller
// closes the connection.
func (c *conn) terminate(pe *nvmetcp.ProtocolError) {
	if t, ok := pe.TermReqPDU(nvmetcp.TypeC2HTermReq); ok {
		c.nc.SetWriteDeadline(time.Now().Add(5 * time.Second))
		_ = c.w.WritePDU(&t)
	}
}

func (c *conn) fatal(kind nvmetcp.Kind, fes nvmetcp.FES, fei uint32, hdr []byte) error {
	pe := &nvmetcp.ProtocolError{Kind: kind, FES: fes, FEI: fei, Header: hdr, Msg: "target"}
	c.terminate(pe)
	return pe
}

// handle processes one PDU; an error ends the connection.
func (c *conn) handle(p *nvmetcp.PDU, digestKO bool) error {
	switch p.Type {
	case nvmetcp.TypeICReq:
		d := p.ICReq.Digests
		resp := nvmetcp.PDU{Type: nvmetcp.TypeICResp, ICResp: nvmetcp.ICResp{Digests: d, MaxH2CData: c.s.cfg.MaxH2CData}}
		if err := c.w.WritePDU(&resp); err != nil {
			return err
		}
		c.r.SetDigests(d)
		c.w.Encoder = nvmetcp.Encoder{Digests: d, PDA: p.ICReq.HPDA}
		return nil
	case nvmetcp.TypeH2CTermReq:
		return errors.New("target: host terminated the connection")
	case nvmetcp.TypeCapsuleCmd:
		return c.capsule(p, digestKO)
	case nvmetcp.TypeH2CData:
		return c.h2cData(p, digestKO)
	}
	return errors.New("target: unexpected PDU")
}

// respond queues and sends the CapsuleResp of sqe.
func (c *conn) respond(sqe *nvmetcp.SQE, s status, dw0, dw1 uint32) error {
	c.advance()
	p := nvmetcp.PDU{Type: nvmetcp.TypeCapsuleResp}
	c.fillCQE(&p.CQE, sqe, s, dw0, dw1)
	if err := c.w.Queue(&p); err != nil {
		return err
	}
	return c.w.Flush()
}

func (c *conn) advance() {
	c.sqhd++
	if c.sqsize != 0 && c.sqhd > c.sqsize {
		c.sqhd = 0
	}
}

func (c *conn) fillCQE(q *nvmetcp.CQE, sqe *nvmetcp.SQE, s status, dw0, dw1 uint32) {
	q.SetDW0(dw0)
	q.SetDW1(dw1)
	q.SetSQHead(c.sqhd)
	q.SetSQID(c.qid)
	q.SetCID(sqe.CID())
	q.SetStatus(uint16(s))
}

// sendData sends data to the host in C2HData PDUs then, unless the
// SUCCESS optimisation applies, a CapsuleResp.
func (c *conn) sendData(sqe *nvmetcp.SQE, data []byte, successOpt bool) error {
	if sqe.SGLIdentifier() != nvmetcp.SGLTransport {
		return c.respond(sqe, st(0, scSGLType, true), 0, 0)
	}
	if l := int(sqe.SGLLength()); l < len(data) {
		data = data[:l]
	}
	chunk := int(c.s.cfg.C2HDataMax)
	for off := 0; off < len(data); off += chunk {
		end := min(off+chunk, len(data))
		p := nvmetcp.PDU{Type: nvmetcp.TypeC2HData, Data: data[off:end],
			C2HData: nvmetcp.C2HData{CCCID: sqe.CID(), DataOffset: uint32(off), DataLength: uint32(end - off)}}
		if end == len(data) {
			p.Flags = nvmetcp.FlagLastPDU
			if successOpt {
				p.Flags |= nvmetcp.FlagSuccess
			}
		}
		if err := c.w.Queue(&p); err != nil {
			return err
		}
	}
	if successOpt && len(data) > 0 {
		c.advance()
		return c.w.Flush()
	}
	return c.respond(sqe, stOK, 0, 0)
}

func (c *conn) capsule(p *nvmetcp.PDU, digestKO bool) error {
	sqe := p.SQE
	if digestKO {
		return c.respond(&sqe, st(0, scTransient, false), 0, 0)
	}
	if sqe.Opcode() == nvmetcp.OpcodeFabrics {
		return c.fabrics(&sqe, p.Data)
	}
	if c.ctrl == nil {
		return c.respond(&sqe, stSequence, 0, 0)
	}
	if sqe.FUSE() != 0 || sqe.PSDT() != nvmetcp.PSDTSGL {
		return c.respond(&sqe, stInvalidField, 0, 0)
	}
	if c.qid == 0 {
		return c.admin(&sqe, p.Data)
	}
	return c.io(&sqe, p.Data)
}

// inCapsule returns the in-capsule data the SGL of sqe designates.
func inCapsule(sqe *nvmetcp.SQE, data []byte) ([]byte, bool) {
	off, n := sqe.SGLAddress(), uint64(sqe.SGLLength())
	if off > uint64(len(data)) || n > uint64(len(data))-off {
		return nil, false
	}
	return data[off : off+n], true
}

// Fabrics commands.
const (
	fcPropertySet = 0x00
	fcConnect     = 0x01
	fcPropertyGet = 0x04
	fcDisconnect  = 0x08
)

func (c *conn) fabrics(sqe *nvmetcp.SQE, data []byte) error {
	switch sqe.FCType() {
	case fcConnect:
		return c.connect(sqe, data)
	case fcPropertyGet, fcPropertySet:
		if c.ctrl == nil || c.qid != 0 {
			return c.respond(sqe, stSequence, 0, 0)
		}
		size8 := sqe.CDW10()&1 != 0
		off := sqe.CDW11()
		if sqe.FCType() == fcPropertyGet {
			v, ok := c.s.propertyGet(c.ctrl, off, size8)
			if !ok {
				return c.respond(sqe, stInvalidField, 0, 0)
			}
			return c.respond(sqe, stOK, uint32(v), uint32(v>>32))
		}
		v := uint64(sqe.CDW12()) | uint64(sqe.CDW13())<<32
		if !c.s.propertySet(c.ctrl, off, size8, v) {
			return c.respond(sqe, stInvalidField, 0, 0)
		}
		return c.respond(sqe, stOK, 0, 0)
	case fcDisconnect:
		if err := c.respond(sqe, stOK, 0, 0); err != nil {
			return err
		}
		return errors.New("target: disconnect")
	}
	return c.respond(sqe, st(0, scInvalidOpcode, true), 0, 0)
}

// Connect data layout.
const (
	connectDataLen = 1024
	cdHostID       = 0
	cdCNTLID       = 16
	cdSubNQN       = 256
	cdHostNQN      = 512
)

func cstring(b []byte) string {
	if i := bytes.IndexByte(b, 0); i >= 0 {
		b = b[:i]
	}
	return string(b)
}

// connectInvalid answers Connect Invalid Parameters with the offset of the
// parameter: in the data (IATTR 1) or in the SQE.
func (c *conn) connectInvalid(sqe *nvmetcp.SQE, inData bool, off uint16) error {
	dw0 := uint32(off)
	if inData {
		dw0 |= 1 << 16
	}
	return c.respond(sqe, st(sctCmd, scConnectInvParams, true), dw0, 0)
}

func (c *conn) connect(sqe *nvmetcp.SQE, data []byte) error {
	if c.ctrl != nil {
		return c.respond(sqe, stSequence, 0, 0)
	}
	if sqe.SGLIdentifier() != nvmetcp.SGLInCapsule {
		return c.respond(sqe, st(0, scSGLType, true), 0, 0)
	}
	d, ok := inCapsule(sqe, data)
	if !ok || len(d) < connectDataLen {
		return c.respond(sqe, st(0, scSGLLength, true), 0, 0)
	}
	qid := uint16(sqe.CDW10() >> 16)
	sqsize := uint16(sqe.CDW11())
	kato := time.Duration(sqe.CDW12()) * time.Millisecond
	if sqe.CDW10()&0xFFFF != 0 { // RECFMT
		return c.connectInvalid(sqe, false, 40)
	}
	if sqsize == 0 || sqsize > mqes {
		return c.connectInvalid(sqe, false, 44)
	}
	var hostID [16]byte
	copy(hostID[:], d[cdHostID:])
	subNQN := cstring(d[cdSubNQN : cdSubNQN+256])
	host := cstring(d[cdHostNQN : cdHostNQN+256])
	for {
		c.s.mu.Lock()
		epoch := c.s.epoch
		c.s.mu.Unlock()
		sub, ok := c.s.cat.Subsystem(subNQN)
		if !ok || sub == nil {
			return c.connectInvalid(sqe, true, cdSubNQN)
		}
		if !hostAllowed(sub, host) {
			return c.respond(sqe, st(sctCmd, scConnectInvHost, true), 0, 0)
		}
		if qid != 0 {
			break // the controller, not sub, is what Disconnect drops
		}
		// A Disconnect since the lookup may have removed host from
		// sub: look again.
		if c.ctrl = c.s.newController(sub, host, hostID, kato, c, epoch); c.ctrl != nil {
			break
		}
	}
	if qid != 0 {
		id := binary.LittleEndian.Uint16(d[cdCNTLID:])
		ct, ok := c.s.attach(id, subNQN, host, c)
		if !ok {
			return c.connectInvalid(sqe, true, cdCNTLID)
		}
		c.ctrl = ct
		if !c.s.enabled(ct) {
			c.ctrl = nil
			c.s.detach(ct, c, false)
			return c.respond(sqe, stSequence, 0, 0)
		}
		c.s.mu.Lock()
		n := ct.nsqr
		c.s.mu.Unlock()
		if n != 0xFFFF && qid > n+1 {
			c.ctrl = nil
			c.s.detach(ct, c, false)
			return c.connectInvalid(sqe, false, 42)
		}
	}
	c.qid, c.sqsize = qid, sqsize
	return c.respond(sqe, stOK, uint32(c.ctrl.id), 0)
}

func hostAllowed(sub *Subsystem, host string) bool {
	if sub.AllowAnyHost {
		return true
	}
	for _, h := range sub.Hosts {
		if h == host {
			return true
		}
	}
	return false
}

// ns returns the namespace nsid of the connection's subsystem.
func (c *conn) ns(nsid uint32) *NS {
	for i := range c.ctrl.sub.Namespaces {
		if n := &c.ctrl.sub.Namespaces[i]; n.NSID == nsid {
			return n
		}
	}
	return nil
}

// errStatus maps a Namespace error to an NVMe status.
func errStatus(err error) status {
	var se *StatusError
	switch {
	case err == nil:
		return stOK
	case errors.As(err, &se):
		return st(se.SCT, se.SC, se.DNR)
	case errors.Is(err, ErrLBARange):
		return st(0, scLBARange, true)
	case errors.Is(err, ErrNotReady):
		return st(0, scNSNotReady, false)
	}
	return stInternal
}
