package target

import (
	"sync"
	"time"
)

// controller is one dynamic controller: created by an admin-queue Connect,
// joined by I/O-queue Connects with its CNTLID, dropped when its admin
// connection ends or its keep-alive timer fires. Fields are guarded by
// server.mu.
type controller struct {
	id      uint16
	sub     *Subsystem
	hostNQN string
	hostID  [16]byte

	cc, csts uint32
	kato     time.Duration
	timer    *time.Timer
	nsqr     uint16 // granted I/O queues, 0's based; 0xFFFF until set
	aec      uint32
	aers     []uint16 // CIDs of the AERs held
	conns    map[*conn]struct{}
	dead     bool
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

// newController allocates a controller with a fresh CNTLID (1..0xFFEF).
// It returns nil, allocating nothing, when Disconnect was called since
// epoch: sub may be stale.
func (s *server) newController(sub *Subsystem, host string, hostID [16]byte, kato time.Duration, admin *conn,
	epoch uint64) *controller {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.epoch != epoch {
		return nil
	}
	ct := &controller{id: s.ids.alloc(), sub: sub, hostNQN: host, hostID: hostID, kato: kato, nsqr: 0xFFFF,
		conns: map[*conn]struct{}{admin: {}}}
	s.ctrls[ct.id] = ct
	if kato > 0 {
		ct.timer = time.AfterFunc(katoGrace(kato), func() { s.expire(ct) })
	}
	return ct
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
	delete(s.ctrls, ct.id)
	s.ids.release(ct.id)
	for c := range ct.conns {
		c.nc.Close()
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

// attach joins an I/O queue connection to controller id; false is a
// Connect failure.
func (s *server) attach(id uint16, subNQN, host string, c *conn) (*controller, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ct, ok := s.ctrls[id]
	if !ok || ct.dead || ct.sub.NQN != subNQN || ct.hostNQN != host {
		return nil, false
	}
	ct.conns[c] = struct{}{}
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
// CSTS: EN makes the controller ready, clearing EN resets it, a shutdown
// notification completes at once.
func (s *server) propertySet(ct *controller, off uint32, size8 bool, v uint64) bool {
	if off != propCC || size8 {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	cc := uint32(v)
	ct.cc = cc
	if cc&1 != 0 {
		ct.csts |= 1 // RDY
	} else {
		ct.csts &^= 1
		ct.aers = nil
	}
	if shn := (cc >> 14) & 3; shn != 0 {
		ct.csts = ct.csts&^(3<<2) | 2<<2 // SHST: shutdown complete
	} else {
		ct.csts &^= 3 << 2
	}
	return true
}

func (s *server) enabled(ct *controller) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return ct.csts&1 != 0 && !ct.dead
}

// ControllerIDs hands out CNTLIDs (1..0xFFEF). Servers that serve the same
// subsystems on several listeners share one (Config.ControllerIDs): a host
// rejects a second controller of a subsystem with a CNTLID it already
// has, which is what separate counters would give its second path.
type ControllerIDs struct {
	mu   sync.Mutex
	next uint16
	used map[uint16]bool
}

func (p *ControllerIDs) alloc() uint16 {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.used == nil {
		p.used = map[uint16]bool{}
	}
	for {
		p.next++
		if p.next == 0 || p.next > 0xFFEF {
			p.next = 1
		}
		if !p.used[p.next] {
			p.used[p.next] = true
			return p.next
		}
	}
}

func (p *ControllerIDs) release(id uint16) {
	p.mu.Lock()
	delete(p.used, id)
	p.mu.Unlock()
}
