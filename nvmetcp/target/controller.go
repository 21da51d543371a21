package target

import (
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/virtual-disk-array/vda/nvmetcp"
)

// controller is one dynamic controller: created by an admin-queue Connect,
// joined by I/O-queue Connects with its CNTLID, dropped when its admin
// connection ends or its keep-alive timer fires. Fields are guarded by
// server.mu.
type controller struct {
	id  uint16
	nqn string // the subsystem's NQN (nvmetcp.DiscoveryNQN for a discovery controller)
	// instance is the subsystem's Instance, seq the creation order of
	// the controller (ControllerIDs).
	instance uint64
	seq      uint64
	// sub is the controller's view of its subsystem: taken at Connect,
	// replaced (never changed) when Notify finds the subsystem changed.
	// Queues read it without server.mu.
	sub       atomic.Pointer[Subsystem]
	discovery bool
	hostNQN   string
	hostID    [16]byte
	admin     *conn

	cc, csts uint32
	kato     time.Duration
	timer    *time.Timer
	nsqr     uint16 // granted I/O queues, 0's based; 0xFFFF until set
	aec      uint32
	aers     []uint16         // CIDs of the AERs held
	conns    map[*conn]uint16 // its queues' connections, with their QIDs
	dead     bool

	// Asynchronous events: pending are events not yet reported (no AER
	// was outstanding); masked are the kinds reported and not yet cleared
	// by a read of their log page; changedNS is the Changed Namespace List.
	pending   []event
	masked    event
	changedNS []uint32
	// sizes are the namespaces' sizes as last told to the host (a
	// Namespace's Size may change in place: a resized bdev).
	sizes map[uint32]uint64
	// disc is the discovery log content last seen by a discovery
	// controller (at Connect, by a log page read or by Notify), discSeq
	// the order of the Catalog call that gave it.
	disc    []DiscoveryEntry
	discSeq uint64
}

// event is one kind of asynchronous event (a bit, also used in masks).
type event uint8

const (
	evNSAttr    event = 1 << iota // Namespace Attribute Changed: log 04h
	evANAChange                   // ANA Change: log 0Ch
	evDiscovery                   // Discovery Log Page Change: log 70h
)

// Async Event Configuration bits (Set Features 0Bh) and completion DW0s
// (AET 2 notice, AEI, log page identifier).
func (e event) aecBit() uint32 {
	switch e {
	case evNSAttr:
		return 1 << 8
	case evANAChange:
		return 1 << 11
	}
	return 1 << 31
}

func (e event) dw0() uint32 {
	const notice = 2
	switch e {
	case evNSAttr:
		return notice | 0x00<<8 | nvmetcp.LogChangedNamespaces<<16
	case evANAChange:
		return notice | 0x03<<8 | nvmetcp.LogANA<<16
	}
	return notice | 0xF0<<8 | nvmetcp.LogDiscovery<<16
}

// aerDone is an AER to complete on the admin queue, outside server.mu.
type aerDone struct {
	c   *conn
	cid uint16
	dw0 uint32
}

func (d aerDone) send() {
	if d.c != nil {
		_ = d.c.completeAsync(d.cid, d.dw0)
	}
}

// raiseLocked reports event e: at once on an outstanding AER, or later on
// the next one. An event the host did not enable, or whose kind was
// reported and its log page not read since, is not reported again. It
// runs under server.mu; the caller sends the returned completion.
func (s *server) raiseLocked(ct *controller, e event) aerDone {
	if ct.dead || ct.aec&e.aecBit() == 0 || ct.masked&e != 0 || slices.Contains(ct.pending, e) {
		return aerDone{}
	}
	if len(ct.aers) == 0 || ct.csts&1 == 0 {
		ct.pending = append(ct.pending, e)
		return aerDone{}
	}
	cid := ct.aers[0]
	ct.aers = ct.aers[1:]
	ct.masked |= e
	return aerDone{c: ct.admin, cid: cid, dw0: e.dw0()}
}

// Properties (offsets of the controller registers).
const (
	propCAP  = 0x00
	propVS   = 0x08
	propCC   = 0x14
	propCSTS = 0x1C
	propCRTO = 0x68
)

const (
	mqes = 127 // CAP.MQES, 0's based: 128 entries
	// capValue: MQES 127, CQR, TO 15 s, CSS NVM, MPSMIN = MPSMAX = 4 KiB.
	capValue = uint64(mqes) | 1<<16 | 0x1E<<24 | 1<<37
	vsValue  = 0x00020000
	crtoVal  = 0x1E
)

// ctrlKey names a controller in a server: CNTLIDs are unique per
// subsystem only.
type ctrlKey struct {
	nqn string
	id  uint16
}

// newController allocates a controller with a fresh CNTLID of sub's
// range. It returns nil, allocating nothing, when Disconnect was called
// since epoch (sub may be stale), and nil with full set when every
// CNTLID of the range is taken.
func (s *server) newController(sub *Subsystem, sizes map[uint32]uint64, host string, hostID [16]byte,
	kato time.Duration, admin *conn, epoch uint64) (ct *controller, full bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.epoch != epoch {
		return nil, false
	}
	id, seq, ok := s.ids.alloc(sub)
	if !ok {
		return nil, true
	}
	ct = &controller{id: id, nqn: sub.NQN, instance: sub.Instance, seq: seq,
		discovery: sub.NQN == nvmetcp.DiscoveryNQN, hostNQN: host, hostID: hostID, kato: kato, nsqr: 0xFFFF,
		admin: admin, conns: map[*conn]uint16{admin: 0}, sizes: sizes}
	ct.sub.Store(sub)
	s.ctrls[ctrlKey{ct.nqn, ct.id}] = ct
	if kato > 0 {
		ct.timer = time.AfterFunc(katoGrace(kato), func() { s.expire(ct) })
	}
	return ct, false
}

// katoGrace is how long after the last Keep Alive the controller is
// dropped: KATO plus the slack Linux and SPDK targets also give.
func katoGrace(kato time.Duration) time.Duration { return kato + kato/2 + time.Second }

// expire drops a controller whose keep-alive deadline passed.
func (s *server) expire(ct *controller) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.dropLocked(ct)
}

func (s *server) dropLocked(ct *controller) {
	if ct.dead {
		return
	}
	ct.dead = true
	if ct.timer != nil {
		ct.timer.Stop()
	}
	delete(s.ctrls, ctrlKey{ct.nqn, ct.id})
	s.ids.release(ct.nqn, ct.instance, ct.id)
	for c := range ct.conns {
		c.close()
	}
}

// keepAlive restarts the keep-alive deadline.
func (s *server) keepAlive(ct *controller) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if ct.timer != nil && !ct.dead {
		ct.timer.Reset(katoGrace(ct.kato))
	}
}

func (s *server) setKATO(ct *controller, kato time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if ct.dead {
		return
	}
	ct.kato = kato
	switch {
	case kato == 0 && ct.timer != nil:
		ct.timer.Stop()
		ct.timer = nil
	case kato > 0 && ct.timer != nil:
		ct.timer.Reset(katoGrace(kato))
	case kato > 0:
		ct.timer = time.AfterFunc(katoGrace(kato), func() { s.expire(ct) })
	}
}

// attach joins an I/O queue connection (queue qid) to controller id of
// subsystem subNQN; false is a Connect failure.
func (s *server) attach(id, qid uint16, subNQN, host string, c *conn) (*controller, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ct, ok := s.ctrls[ctrlKey{subNQN, id}]
	if !ok || ct.dead || ct.discovery || ct.hostNQN != host {
		return nil, false
	}
	ct.conns[c] = qid
	return ct, true
}

// detach removes a connection from its controller; the end of the admin
// queue drops the controller.
func (s *server) detach(ct *controller, c *conn, admin bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(ct.conns, c)
	if admin {
		s.dropLocked(ct)
	}
}

// propertyGet returns the value of a property, false for an unknown one.
func (s *server) propertyGet(ct *controller, off uint32, size8 bool) (uint64, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case off == propCAP && size8:
		return capValue, true
	case off == propVS && !size8:
		return vsValue, true
	case off == propCC && !size8:
		return uint64(ct.cc), true
	case off == propCSTS && !size8:
		return uint64(ct.csts), true
	case off == propCRTO && !size8:
		return crtoVal, true
	}
	return 0, false
}

// propertySet sets CC (the only writable property) and follows it with
// CSTS. EN 0 to 1 makes the controller ready. EN 1 to 0 resets it: its
// I/O queues' connections close, the AERs held are dropped (never
// completed, as SPDK's TCP transport does: hosts reuse their CIDs), events
// not yet reported are forgotten and Number of Queues may be set again;
// the admin queue stays, and a later EN=1 brings the controller back. A
// shutdown notification (SHN) closes the I/O queues and drops the AERs as
// well and completes at once (SHST 10b); RDY follows EN.
func (s *server) propertySet(ct *controller, off uint32, size8 bool, v uint64) bool {
	if off != propCC || size8 {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	cc := uint32(v)
	wasEN := ct.cc&1 != 0
	shn := (cc >> 14) & 3
	prevSHN := (ct.cc >> 14) & 3
	ct.cc = cc
	if (wasEN && cc&1 == 0) || (shn != 0 && prevSHN == 0) {
		s.teardownLocked(ct)
	}
	if cc&1 == 0 && wasEN {
		ct.nsqr = 0xFFFF
		ct.pending, ct.masked, ct.changedNS = nil, 0, nil
	}
	if cc&1 != 0 {
		ct.csts |= 1 // RDY
	} else {
		ct.csts &^= 1
	}
	if shn != 0 {
		ct.csts = ct.csts&^(3<<2) | 2<<2 // SHST: shutdown complete
	} else {
		ct.csts &^= 3 << 2
	}
	return true
}

// teardownLocked closes the controller's I/O queues and drops its AERs.
func (s *server) teardownLocked(ct *controller) {
	for c := range ct.conns {
		if c != ct.admin {
			c.close()
		}
	}
	ct.aers = nil
}

// enabled is whether the controller is ready and not shut down.
func (s *server) enabled(ct *controller) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return ct.csts&1 != 0 && ct.csts&(3<<2) == 0 && !ct.dead
}

// ControllerIDs hands out CNTLIDs as SPDK does: per subsystem, from its
// MinCNTLID to its MaxCNTLID (1..0xFFEF by default), the next one after
// the last handed out that no live controller of the subsystem holds, so
// that a freed CNTLID is not reused at once. Servers that serve the same
// subsystems on several listeners share one (Config.ControllerIDs): the
// controllers of a subsystem reached through two listeners (two paths of
// a host, which rejects a second controller with a CNTLID it already has)
// then get distinct CNTLIDs. A subsystem with a new Instance (deleted and
// created again under its NQN) starts again from MinCNTLID. The zero
// value is ready to use.
type ControllerIDs struct {
	mu   sync.Mutex
	subs map[string]*cntlidPool
	// seq numbers the controllers in creation order, across subsystems
	// and Servers (ControllerInfo.Seq).
	seq uint64
}

// cntlidPool is the CNTLIDs of one subsystem instance.
type cntlidPool struct {
	instance uint64
	next     uint16 // the last handed out; 0 before the first
	used     map[uint16]bool
}

// cntlidRange is sub's CNTLID range, defaults applied.
func cntlidRange(sub *Subsystem) (lo, hi uint16) {
	lo, hi = sub.MinCNTLID, sub.MaxCNTLID
	if lo == 0 {
		lo = 1
	}
	if hi == 0 || hi > maxCNTLID {
		hi = maxCNTLID
	}
	return lo, max(lo, hi)
}

// maxCNTLID is the largest CNTLID of a dynamic controller.
const maxCNTLID = 0xFFEF

// alloc returns a free CNTLID of sub and the creation sequence number of
// its controller; ok is false when every CNTLID of its range is taken.
func (p *ControllerIDs) alloc(sub *Subsystem) (id uint16, seq uint64, ok bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.subs == nil {
		p.subs = map[string]*cntlidPool{}
	}
	pool := p.subs[sub.NQN]
	if pool == nil || pool.instance != sub.Instance {
		pool = &cntlidPool{instance: sub.Instance, used: map[uint16]bool{}}
		p.subs[sub.NQN] = pool
	}
	lo, hi := cntlidRange(sub)
	for range int(hi-lo) + 1 {
		if pool.next < lo || pool.next >= hi {
			pool.next = lo
		} else {
			pool.next++
		}
		if !pool.used[pool.next] {
			pool.used[pool.next] = true
			p.seq++
			return pool.next, p.seq, true
		}
	}
	return 0, 0, false
}

// release frees CNTLID id of instance of subsystem nqn.
func (p *ControllerIDs) release(nqn string, instance uint64, id uint16) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if pool := p.subs[nqn]; pool != nil && pool.instance == instance {
		delete(pool.used, id)
	}
}
