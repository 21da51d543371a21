package target

import (
	"net"
	"slices"
	"time"
)

// ControllerInfo is a live controller of an NVM subsystem, with what
// SPDK's nvmf_subsystem_get_controllers and nvmf_subsystem_get_qpairs
// report of it.
type ControllerInfo struct {
	SubNQN  string
	CNTLID  uint16
	HostNQN string
	HostID  [16]byte
	// Seq orders the controllers by creation, across the Servers that
	// share a ControllerIDs.
	Seq uint64
	// KATO is the keep-alive timeout the host set (0: none).
	KATO time.Duration
	// Queues are its connected queues: the admin queue (QID 0) first,
	// then the I/O queues by QID.
	Queues []QueueInfo
}

// QueueInfo is one connected queue (queue pair) of a controller.
type QueueInfo struct {
	QID uint16
	// Local is the target's end of its TCP connection, Peer the host's.
	Local, Peer net.Addr
}

// Controllers returns the live controllers of subsystem subnqn (discovery
// controllers are not listed), oldest first. It does not call the
// Catalog, so it may be called with any lock held that the Catalog does
// not take.
func (srv *Server) Controllers(subnqn string) []ControllerInfo {
	s := srv.s
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []ControllerInfo
	for _, ct := range s.ctrls {
		if ct.nqn != subnqn || ct.dead || ct.discovery {
			continue
		}
		ci := ControllerInfo{SubNQN: ct.nqn, CNTLID: ct.id, HostNQN: ct.hostNQN, HostID: ct.hostID, Seq: ct.seq,
			KATO: ct.kato}
		for c, qid := range ct.conns {
			ci.Queues = append(ci.Queues, QueueInfo{QID: qid, Local: c.nc.LocalAddr(), Peer: c.nc.RemoteAddr()})
		}
		slices.SortFunc(ci.Queues, func(a, b QueueInfo) int { return int(a.QID) - int(b.QID) })
		out = append(out, ci)
	}
	slices.SortFunc(out, func(a, b ControllerInfo) int {
		switch {
		case a.Seq < b.Seq:
			return -1
		case a.Seq > b.Seq:
			return 1
		}
		return 0
	})
	return out
}
