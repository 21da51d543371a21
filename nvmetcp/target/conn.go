package target

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"net"
	"sync"
	"sync/atomic"
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
	sctPath            = 3    // path related
	scANAPersistLoss   = 0x01 // SCT 3: Asymmetric Access Persistent Loss
	scANAInaccessible  = 0x02 // SCT 3: Asymmetric Access Inaccessible
	scANATransition    = 0x03 // SCT 3: Asymmetric Access Transition
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

// conn is one queue: one TCP connection. See queue.go for who runs what.
type conn struct {
	s      *server
	nc     net.Conn
	ctx    context.Context // cancelled when the connection ends
	cancel context.CancelFunc
	r      *nvmetcp.Reader

	// Reader only.
	ctrl      *controller
	qid       uint16
	sqsize    uint16              // 0's based
	xfers     map[uint16]*command // writes waiting for H2CData, by TTAG
	nextTTag  uint16
	inlineN   uint32 // commands executed inline, for sampling their time
	inlineOut int    // commands completed inline since the reader last wrote
	idBuf     [nvmetcp.IdentifyLen]byte

	// sqhd is the SQ head: advanced by the reader as it takes each
	// command, read by whoever builds a CQE.
	sqhd atomic.Uint32

	// Output, under wmu: PDUs queued for the writer goroutine, the
	// buffers and slots to release once they are written.
	wmu      sync.Mutex
	out      *nvmetcp.Writer
	outRel   []*ioBuf
	outN     atomic.Int32 // PDUs queued (written under wmu, read by the reader without it)
	outSlots int
	wclosed  bool // the writer is gone
	final    bool // nothing more after what is queued (a TermReq)
	wake     chan struct{}

	// The write itself, under fmu: the Writer written (swapped with out)
	// and the buffers it releases.
	fmu   sync.Mutex
	spare *nvmetcp.Writer
	rel   []*ioBuf

	wstop chan struct{}
	wdone chan struct{}

	slots   chan struct{} // one per I/O command in flight
	work    chan *command // to idle workers
	workers sync.WaitGroup
	running atomic.Int32 // commands dispatched to workers, not completed
	fast    atomic.Int32 // I/O commands in a row faster than fastOp
}

func (c *conn) serve() {
	defer c.s.dropConn(c)
	cfg := c.s.cfg
	maxData := max(int(cfg.MaxH2CData), int(cfg.InCapsuleData), 8192)
	r, err := nvmetcp.NewReader(c.nc, nvmetcp.ReaderConfig{Role: nvmetcp.RoleController, MaxData: maxData})
	if err != nil {
		c.close()
		return
	}
	c.r = r
	c.out = nvmetcp.NewWriter(c.nc)
	c.spare = nvmetcp.NewWriter(c.nc)
	c.xfers = map[uint16]*command{}
	c.wake = make(chan struct{}, 1)
	c.wstop = make(chan struct{})
	c.wdone = make(chan struct{})
	c.slots = make(chan struct{}, mqes+1)
	c.work = make(chan *command)
	go c.writeLoop()
	defer c.shutdown()
	for {
		if err := c.readPDU(); err != nil {
			var pe *nvmetcp.ProtocolError
			if errors.As(err, &pe) && pe.Fatal() {
				c.terminate(pe)
			}
			return
		}
		// Write what is queued before the next read may block, or once a
		// batch is large enough (see flushBatch).
		if c.r.Buffered() == 0 || c.outN.Load() >= flushBatch {
			if c.running.Load() != 0 {
				c.kick()
			} else if _, err := c.flushOut(false); err != nil {
				c.closeWriter()
				return
			}
		}
	}
}

// shutdown ends the connection once the reader stopped: commands in
// flight are cancelled and waited for, what is queued is written (within
// 5 s), the connection closes and leaves its controller.
func (c *conn) shutdown() {
	c.cancel()
	c.workers.Wait()
	for ttag, cm := range c.xfers {
		delete(c.xfers, ttag)
		c.wmu.Lock()
		c.holdLocked(cm.buf, true)
		c.wmu.Unlock()
		freeCommand(cm)
	}
	close(c.wstop)
	<-c.wdone
	c.closeWriter()
	c.nc.Close()
	if c.ctrl != nil {
		c.s.detach(c.ctrl, c, c.qid == 0)
	}
}

// readPDU reads and handles one PDU; an error ends the connection.
func (c *conn) readPDU() error {
	p, err := c.r.ReadHeader()
	if err != nil {
		return err
	}
	if p.Type == nvmetcp.TypeH2CData {
		return c.h2cData(p)
	}
	data, err := c.r.ReadData(nil)
	digestKO := false
	if err != nil {
		var pe *nvmetcp.ProtocolError
		if !errors.As(err, &pe) || pe.Fatal() {
			return err
		}
		digestKO = true
	}
	switch p.Type {
	case nvmetcp.TypeICReq:
		d := p.ICReq.Digests
		resp := nvmetcp.PDU{Type: nvmetcp.TypeICResp, ICResp: nvmetcp.ICResp{Digests: d, MaxH2CData: c.s.cfg.MaxH2CData}}
		c.wmu.Lock()
		c.queueLocked(&resp)
		c.out.Encoder = nvmetcp.Encoder{Digests: d, PDA: p.ICReq.HPDA}
		c.wmu.Unlock()
		c.r.SetDigests(d)
		return nil
	case nvmetcp.TypeH2CTermReq:
		return errors.New("target: host terminated the connection")
	case nvmetcp.TypeCapsuleCmd:
		return c.capsule(p, data, digestKO)
	}
	return errors.New("target: unexpected PDU")
}

// terminate queues the C2HTermReq for a fatal protocol error and stops
// any further output; the caller closes the connection.
func (c *conn) terminate(pe *nvmetcp.ProtocolError) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if t, ok := pe.TermReqPDU(nvmetcp.TypeC2HTermReq); ok {
		c.queueLocked(&t)
	}
	// Completions of commands still in flight are not sent after it.
	c.final = true
}

// waitIdle waits until no command runs on a worker.
func (c *conn) waitIdle() {
	for c.running.Load() > 0 && c.ctx.Err() == nil {
		time.Sleep(100 * time.Microsecond)
	}
}

func (c *conn) fatal(kind nvmetcp.Kind, fes nvmetcp.FES, fei uint32, hdr []byte) error {
	pe := &nvmetcp.ProtocolError{Kind: kind, FES: fes, FEI: fei, Header: hdr, Msg: "target"}
	c.terminate(pe)
	return pe
}

// respond queues the CapsuleResp of sqe.
func (c *conn) respond(sqe *nvmetcp.SQE, s status, dw0, dw1 uint32) error {
	c.wmu.Lock()
	c.respondLocked(sqe.CID(), s, dw0, dw1)
	c.wmu.Unlock()
	return nil
}

func (c *conn) respondLocked(cid uint16, s status, dw0, dw1 uint32) {
	p := nvmetcp.PDU{Type: nvmetcp.TypeCapsuleResp}
	c.fillCQE(&p.CQE, cid, s, dw0, dw1)
	c.queueLocked(&p)
}

// completeAsync completes an AER the queue holds; any goroutine may call
// it.
func (c *conn) completeAsync(cid uint16, dw0 uint32) error {
	c.wmu.Lock()
	c.respondLocked(cid, stOK, dw0, 0)
	c.wmu.Unlock()
	c.kick()
	return nil
}

// advance moves the SQ head past a command the reader just took.
func (c *conn) advance() {
	h := c.sqhd.Load() + 1
	if c.sqsize != 0 && h > uint32(c.sqsize) {
		h = 0
	}
	c.sqhd.Store(h)
}

func (c *conn) fillCQE(q *nvmetcp.CQE, cid uint16, s status, dw0, dw1 uint32) {
	q.SetDW0(dw0)
	q.SetDW1(dw1)
	q.SetSQHead(uint16(c.sqhd.Load()))
	q.SetSQID(c.qid)
	q.SetCID(cid)
	q.SetStatus(uint16(s))
}

// sendData queues the answer of an admin command that returns data: a
// copy of data, which the caller may reuse at once.
func (c *conn) sendData(sqe *nvmetcp.SQE, data []byte, successOpt bool) error {
	if sqe.SGLIdentifier() != nvmetcp.SGLTransport {
		return c.respond(sqe, st(0, scSGLType, true), 0, 0)
	}
	if l := int(sqe.SGLLength()); l < len(data) {
		data = data[:l]
	}
	var buf *ioBuf
	if len(data) > 0 {
		buf = c.s.getBuf(len(data))
		copy(buf.b, data)
		data = buf.b
	}
	c.wmu.Lock()
	c.queueDataLocked(sqe.CID(), data, successOpt)
	c.holdLocked(buf, false)
	c.wmu.Unlock()
	return nil
}

// queueDataLocked queues data in C2HData PDUs then, unless the SUCCESS
// optimisation applies, a CapsuleResp.
func (c *conn) queueDataLocked(cid uint16, data []byte, successOpt bool) {
	chunk := int(c.s.cfg.C2HDataMax)
	for off := 0; off < len(data); off += chunk {
		end := min(off+chunk, len(data))
		p := nvmetcp.PDU{Type: nvmetcp.TypeC2HData, Data: data[off:end],
			C2HData: nvmetcp.C2HData{CCCID: cid, DataOffset: uint32(off), DataLength: uint32(end - off)}}
		if end == len(data) {
			p.Flags = nvmetcp.FlagLastPDU
			if successOpt {
				p.Flags |= nvmetcp.FlagSuccess
			}
		}
		c.queueLocked(&p)
	}
	if successOpt && len(data) > 0 {
		return
	}
	c.respondLocked(cid, stOK, 0, 0)
}

func (c *conn) capsule(p *nvmetcp.PDU, data []byte, digestKO bool) error {
	sqe := p.SQE
	c.advance()
	if digestKO {
		return c.respond(&sqe, st(0, scTransient, false), 0, 0)
	}
	if sqe.Opcode() == nvmetcp.OpcodeFabrics {
		return c.fabrics(&sqe, data)
	}
	if c.ctrl == nil {
		return c.respond(&sqe, stSequence, 0, 0)
	}
	if sqe.FUSE() != 0 || sqe.PSDT() != nvmetcp.PSDTSGL {
		return c.respond(&sqe, stInvalidField, 0, 0)
	}
	if c.qid == 0 {
		return c.admin(&sqe, data)
	}
	return c.io(&sqe, data)
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
		// Commands in flight complete first; the answer is the last PDU.
		c.kick()
		c.waitIdle()
		c.respond(sqe, stOK, 0, 0)
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
	if subNQN == nvmetcp.DiscoveryNQN {
		return c.connectDiscovery(sqe, qid, sqsize, host, hostID, kato)
	}
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
		ct, full := c.s.newController(sub, sizesOf(sub), host, hostID, kato, c, epoch)
		if full {
			return c.respond(sqe, stInternal, 0, 0) // no CNTLID left, as SPDK fails
		}
		if ct != nil {
			c.ctrl = ct
			break
		}
	}
	if qid != 0 {
		id := binary.LittleEndian.Uint16(d[cdCNTLID:])
		ct, ok := c.s.attach(id, qid, subNQN, host, c)
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

// connectDiscovery creates a discovery controller: any host may, on the
// admin queue only, when the Catalog is a DiscoveryCatalog.
func (c *conn) connectDiscovery(sqe *nvmetcp.SQE, qid, sqsize uint16, host string, hostID [16]byte,
	kato time.Duration) error {
	if qid != 0 {
		return c.connectInvalid(sqe, false, 42) // no I/O queues
	}
	entries, seq, ok := c.s.discovery(host)
	if !ok {
		return c.connectInvalid(sqe, true, cdSubNQN)
	}
	sub := &Subsystem{NQN: nvmetcp.DiscoveryNQN, AllowAnyHost: true}
	for c.ctrl == nil {
		c.s.mu.Lock()
		epoch := c.s.epoch
		c.s.mu.Unlock()
		ct, full := c.s.newController(sub, nil, host, hostID, kato, c, epoch)
		if full {
			return c.respond(sqe, stInternal, 0, 0)
		}
		c.ctrl = ct
	}
	c.s.mu.Lock()
	c.s.updateDiscoveryLocked(c.ctrl, entries, seq)
	c.s.mu.Unlock()
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
	sub := c.ctrl.sub.Load()
	for i := range sub.Namespaces {
		if n := &sub.Namespaces[i]; n.NSID == nsid {
			return n
		}
	}
	return nil
}

// errStatus maps a Namespace error to an NVMe status.
func errStatus(err error) status {
	if err == nil {
		return stOK // without the allocation of se below
	}
	return errStatusSlow(err)
}

func errStatusSlow(err error) status {
	var se *StatusError
	switch {
	case errors.As(err, &se):
		return st(se.SCT, se.SC, se.DNR)
	case errors.Is(err, ErrLBARange):
		return st(0, scLBARange, true)
	case errors.Is(err, ErrNotReady):
		return st(0, scNSNotReady, false)
	}
	return stInternal
}
