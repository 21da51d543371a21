package target

import (
	"slices"
	"strings"

	"github.com/virtual-disk-array/vda/nvmetcp"
)

// Notify tells the server that subsystem subnqn may have changed: its
// namespaces, their ANA states, or what the Discovery log page lists
// (hosts, listeners, subsystems). It only queues the NQN and returns at
// once, so it may be called from any goroutine, with any lock held (the
// model's included): a goroutine of the server then resolves the
// subsystem through the Catalog again for every controller of it, and
// gives each the new view. Namespaces added become usable, removed ones
// fail with Invalid Namespace, ANA states follow; when the view changed,
// the host gets an Asynchronous Event Notice (Namespace Attribute Changed
// with the Changed Namespace List, ANA Change), if it enabled that notice
// (Set Features 0Bh). Discovery controllers whose log page changed get a
// Discovery Log Page Change notice and a new generation counter.
func (srv *Server) Notify(subnqn string) {
	s := srv.s
	s.nmu.Lock()
	defer s.nmu.Unlock()
	s.notified[subnqn] = struct{}{}
	if !s.notifying {
		s.notifying = true
		go s.processNotices()
	}
}

// processNotices runs until the queue of notices is empty.
func (s *server) processNotices() {
	for {
		s.nmu.Lock()
		if len(s.notified) == 0 {
			s.notifying = false
			s.nmu.Unlock()
			return
		}
		nqns := make([]string, 0, len(s.notified))
		for n := range s.notified {
			nqns = append(nqns, n)
		}
		clear(s.notified)
		s.nmu.Unlock()
		for _, n := range nqns {
			s.refreshSubsystem(n)
		}
		s.refreshDiscovery()
	}
}

// refreshSubsystem gives the controllers of subsystem nqn its current
// view and raises the events the change calls for.
func (s *server) refreshSubsystem(nqn string) {
	if nqn == nvmetcp.DiscoveryNQN {
		return
	}
	s.mu.Lock()
	found := false
	for _, ct := range s.ctrls {
		if ct.nqn == nqn && !ct.dead {
			found = true
			break
		}
	}
	s.mu.Unlock()
	if !found {
		return
	}
	sub, ok := s.cat.Subsystem(nqn)
	if !ok || sub == nil {
		return // deleted or no longer listening here: Disconnect cuts its controllers
	}
	sizes := sizesOf(sub)
	var done []aerDone
	s.mu.Lock()
	for _, ct := range s.ctrls {
		if ct.nqn != nqn || ct.dead {
			continue
		}
		old := ct.sub.Swap(sub)
		changed, ana := diffNamespaces(old, ct.sizes, sub, sizes)
		ct.sizes = sizes
		if len(changed) > 0 {
			ct.changedNS = mergeSorted(ct.changedNS, changed)
			done = append(done, s.raiseLocked(ct, evNSAttr))
		}
		if ana && sub.ANAReporting {
			done = append(done, s.raiseLocked(ct, evANAChange))
		}
	}
	s.mu.Unlock()
	for _, d := range done {
		d.send()
	}
}

// sizesOf returns the sizes of the namespaces of s, by NSID.
func sizesOf(s *Subsystem) map[uint32]uint64 {
	m := make(map[uint32]uint64, len(s.Namespaces))
	for _, n := range s.Namespaces {
		m[n.NSID] = n.Dev.Size()
	}
	return m
}

// diffNamespaces returns the NSIDs added, removed or changed (identifiers,
// block size, size) from a (whose sizes were aSizes) to b, and whether an
// ANA state changed.
func diffNamespaces(a *Subsystem, aSizes map[uint32]uint64, b *Subsystem, bSizes map[uint32]uint64) (
	changed []uint32, ana bool) {
	find := func(s *Subsystem, nsid uint32) *NS {
		for i := range s.Namespaces {
			if s.Namespaces[i].NSID == nsid {
				return &s.Namespaces[i]
			}
		}
		return nil
	}
	for i := range a.Namespaces {
		x := &a.Namespaces[i]
		y := find(b, x.NSID)
		switch {
		case y == nil:
			changed = append(changed, x.NSID)
		case x.NGUID != y.NGUID || x.UUID != y.UUID || x.Dev.BlockSize() != y.Dev.BlockSize() ||
			aSizes[x.NSID] != bSizes[y.NSID]:
			changed = append(changed, x.NSID)
		default:
			ana = ana || anaOf(x) != anaOf(y) || x.group() != y.group()
		}
	}
	for i := range b.Namespaces {
		if y := &b.Namespaces[i]; find(a, y.NSID) == nil {
			changed = append(changed, y.NSID)
		}
	}
	slices.Sort(changed)
	return changed, ana
}

func anaOf(n *NS) nvmetcp.ANAState {
	if n.ANAState == 0 {
		return nvmetcp.ANAOptimized
	}
	return n.ANAState
}

// mergeSorted returns the sorted union of two sorted NSID lists.
func mergeSorted(a, b []uint32) []uint32 {
	out := append(slices.Clone(a), b...)
	slices.Sort(out)
	return slices.Compact(out)
}

// refreshDiscovery looks the Discovery log page up again for every
// discovery controller and tells those whose page changed.
func (s *server) refreshDiscovery() {
	s.mu.Lock()
	var cts []*controller
	for _, ct := range s.ctrls {
		if ct.discovery && !ct.dead {
			cts = append(cts, ct)
		}
	}
	s.mu.Unlock()
	for _, ct := range cts {
		entries, seq, ok := s.discovery(ct.hostNQN)
		if !ok {
			continue
		}
		s.mu.Lock()
		d := aerDone{}
		if s.updateDiscoveryLocked(ct, entries, seq) {
			d = s.raiseLocked(ct, evDiscovery)
		}
		s.mu.Unlock()
		d.send()
	}
}

// discovery asks the Catalog what host may reach; seq orders the answers.
func (s *server) discovery(host string) ([]DiscoveryEntry, uint64, bool) {
	dc, ok := s.cat.(DiscoveryCatalog)
	if !ok {
		return nil, 0, false
	}
	s.mu.Lock()
	s.discSeq++
	seq := s.discSeq
	s.mu.Unlock()
	return dc.Discovery(host), seq, true
}

// updateDiscoveryLocked records the entries a discovery controller sees
// (unless a later lookup was recorded already) and reports whether they
// changed, bumping the generation counter when they did.
func (s *server) updateDiscoveryLocked(ct *controller, entries []DiscoveryEntry, seq uint64) bool {
	if seq <= ct.discSeq {
		return false
	}
	first := ct.discSeq == 0 // at Connect: nothing to tell
	ct.discSeq = seq
	if slices.Equal(ct.disc, entries) {
		return false
	}
	ct.disc = entries
	if first {
		return false
	}
	s.discGen++
	return true
}

// discoveryLog builds the Discovery log page of entries, as SPDK fills
// it.
func discoveryLog(gen uint64, entries []DiscoveryEntry) *nvmetcp.DiscoveryLog {
	l := &nvmetcp.DiscoveryLog{GenCtr: gen}
	for _, e := range entries {
		le := nvmetcp.DiscoveryLogEntry{
			TRTYPE: nvmetcp.TransportTCP, ADRFAM: nvmetcp.AddressFamilyIPv4, SUBTYPE: nvmetcp.SubtypeNVM,
			TREQ: nvmetcp.TREQSecureChannelNotRequired, PORTID: e.PortID, CNTLID: nvmetcp.DynamicCNTLID,
			ASQSZ: mqes + 1, TRSVCID: e.Trsvcid, SUBNQN: e.NQN, TRADDR: e.Traddr,
		}
		if e.IPv6 || strings.Contains(e.Traddr, ":") {
			le.ADRFAM = nvmetcp.AddressFamilyIPv6
		}
		if e.Discovery {
			le.SUBTYPE = nvmetcp.SubtypeCurrentDiscovery
			le.EFLAGS = nvmetcp.EFlagDuplicateReturnedInfo | nvmetcp.EFlagExplicitPersistent
		}
		l.Entries = append(l.Entries, le)
	}
	return l
}
