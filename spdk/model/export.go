package model

import (
	"slices"
	"strings"
)

// What the model exports to a real NVMe-oF target (package dataplane runs
// one per listen address): hooks to open and close the listening sockets,
// and a snapshot of a subsystem as a host sees it through one listener.

// ListenAddr is a listen address as the hooks name it: the address family
// is implied by the address, as it is for the Fabric.
type ListenAddr struct {
	Trtype, Traddr, Trsvcid string
}

func (a ListenAddr) key() string { return portKey(a.Trtype, a.Traddr, a.Trsvcid) }

// NVMfSubsystem is a subsystem as a host connecting through one listener
// sees it, at the time of the call. It shares nothing with the model
// except the namespaces' Devs.
type NVMfSubsystem struct {
	NQN, Serial, Model string
	AllowAnyHost       bool
	Hosts              []string
	ANAReporting       bool
	// Listening is whether the subsystem listens on the address asked
	// about: a host must not reach it through any other.
	Listening  bool
	Namespaces []NVMfNamespace // by nsid
	// MaxNamespaces is max_namespaces: the largest NSID it may have.
	MaxNamespaces uint32
	// MinCntlid and MaxCntlid are min_cntlid and max_cntlid: the range of
	// its controllers' CNTLIDs.
	MinCntlid, MaxCntlid uint16
	// Instance tells the subsystem apart from an earlier one of the same
	// NQN (deleted, then created again): it numbers the subsystems the
	// Target created, from 1.
	Instance uint64
}

// NVMfNamespace is one namespace of an NVMfSubsystem.
type NVMfNamespace struct {
	NSID        uint32
	NGUID, UUID [16]byte
	ANAGroup    uint32
	// ANAState is the state of the namespace's ANA group on the listener
	// ("optimized", "non_optimized", "inaccessible"); "" without ANA
	// reporting.
	ANAState string
	// BlockSize and Size (bytes) are the bdev's, also when Dev is nil.
	BlockSize uint32
	Size      uint64
	// Dev is the bdev's data path, nil when its module has none (its
	// I/O should fail as not ready).
	Dev *Dev
}

// NVMfSubsystem returns the subsystem called nqn as seen through the
// listener at addr. ok is false when there is no such subsystem or it is
// the discovery subsystem (which has no namespaces to serve).
func (t *Target) NVMfSubsystem(nqn string, addr ListenAddr) (NVMfSubsystem, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	s := t.subsystem(nqn)
	if s == nil || s.discovery {
		return NVMfSubsystem{}, false
	}
	out := NVMfSubsystem{NQN: s.nqn, Serial: s.serial, Model: s.model, AllowAnyHost: s.allowAnyHost,
		Hosts: slices.Clone(s.hosts), ANAReporting: s.anaReporting, MaxNamespaces: s.maxNS,
		MinCntlid: uint16(s.minCntlid), MaxCntlid: uint16(s.maxCntlid), Instance: s.instance}
	var l *listener
	for _, x := range s.listeners {
		if portKey(x.trtype, x.traddr, x.trsvcid) == addr.key() {
			l = x
			break
		}
	}
	out.Listening = l != nil
	for _, ns := range s.namespaces {
		n := NVMfNamespace{NSID: ns.nsid, ANAGroup: ns.anagrpid, BlockSize: ns.b.blockSize,
			Size: uint64(ns.b.blockSize) * ns.b.numBlocks}
		n.NGUID, _ = parseNGUID(ns.nguid)
		n.UUID, _ = parseUUID(ns.uuid)
		if dp := ns.b.dataPath(); dp != nil {
			n.Dev = &Dev{b: ns.b, dp: dp}
		}
		if s.anaReporting && l != nil && int(ns.anagrpid) <= len(l.ana) {
			n.ANAState = l.ana[ns.anagrpid-1]
		}
		out.Namespaces = append(out.Namespaces, n)
	}
	return out, true
}

// NVMfController is a live controller of a real target (Config.Controllers),
// with what nvmf_subsystem_get_controllers and nvmf_subsystem_get_qpairs
// report of it.
type NVMfController struct {
	CNTLID  int
	HostNQN string
	// HostID is the host identifier, a lower-case uuid.
	HostID string
	// Qpairs are its connected queues, the admin queue (QID 0) first.
	// num_io_qpairs counts them all, the admin queue included, as SPDK's
	// count does.
	Qpairs []NVMfQpair
}

// NVMfQpair is one connected queue (queue pair) of an NVMfController.
type NVMfQpair struct {
	QID int
	// State is SPDK's name of the queue's state: "enabled" once connected.
	State string
	// Local is the target's end of the queue's connection (SPDK's
	// listen_address), Peer the host's (peer_address), with Trtype in
	// SPDK's spelling ("TCP").
	Local, Peer ListenAddr
}

// json spells a queue's address as SPDK's qpair listing does, the
// address family from the address.
func (a ListenAddr) json() listenAddressJSON {
	adrfam := "IPv4"
	if strings.Contains(a.Traddr, ":") {
		adrfam = "IPv6"
	}
	return listenAddressJSON{Trtype: a.Trtype, Adrfam: adrfam, Traddr: a.Traddr, Trsvcid: a.Trsvcid}
}

// NVMfDiscoveryEntry is one entry of the Discovery log page: a listener
// of a subsystem.
type NVMfDiscoveryEntry struct {
	NQN string
	// Discovery is true for a listener of the discovery subsystem itself.
	Discovery bool
	// Trtype, Adrfam, Traddr and Trsvcid are spelled as SPDK spells them
	// ("TCP", "IPv4").
	Trtype, Adrfam, Traddr, Trsvcid string
	// PortID is the listener's port ID: SPDK numbers a subsystem's
	// listeners from 0 in the order they were added (here: their position
	// among the subsystem's current listeners).
	PortID uint16
}

// NVMfDiscovery returns the Discovery log page SPDK's discovery service
// gives hostnqn: every listener, on any address, of every subsystem the
// host may connect to (allowed host or allow_any_host), the discovery
// subsystem's own explicit listeners included, subsystems in creation
// order and listeners oldest first. It lists the listeners of every
// transport; the caller keeps those it serves.
func (t *Target) NVMfDiscovery(hostnqn string) []NVMfDiscoveryEntry {
	t.mu.Lock()
	defer t.mu.Unlock()
	var out []NVMfDiscoveryEntry
	for _, s := range t.subsystems {
		if !s.hostAllowed(hostnqn) {
			continue
		}
		for i, l := range s.listeners {
			out = append(out, NVMfDiscoveryEntry{NQN: s.nqn, Discovery: s.discovery, Trtype: l.trtype,
				Adrfam: l.adrfam, Traddr: l.traddr, Trsvcid: l.trsvcid, PortID: uint16(i)})
		}
	}
	return out
}

// changedHook calls Config.Changed for subsystem s. It runs under t.mu.
func (t *Target) changedHook(s *subsystem) {
	if t.notify != nil && s != nil {
		t.notify(s.nqn)
	}
}

// resized tells the hosts of every subsystem with a namespace on b that
// its size changed, as SPDK's bdev resize event does (hosts get a
// Namespace Attribute Changed notice). It runs under t.mu.
func (t *Target) resized(b *bdev) {
	for _, s := range t.subsystems {
		for _, ns := range s.namespaces {
			if ns.b == b {
				t.changedHook(s)
				break
			}
		}
	}
}

// listenPort is called when a listener is added on key: the first one on
// that address opens it through Config.Listen. It runs under t.mu.
func (t *Target) listenPort(key string, a ListenAddr) error {
	if t.listen == nil || t.listening[key] {
		return nil
	}
	if err := t.listen(a.Trtype, a.Traddr, a.Trsvcid); err != nil {
		return err
	}
	t.listening[key] = true
	return nil
}

// unlistenPort closes key through Config.Unlisten if Listen opened it. It
// runs under t.mu.
func (t *Target) unlistenPort(key string, a ListenAddr) {
	if !t.listening[key] {
		return
	}
	delete(t.listening, key)
	if t.unlisten != nil {
		t.unlisten(a.Trtype, a.Traddr, a.Trsvcid)
	}
}

// disconnectHook calls Config.Disconnect for subsystem s: every controller
// through addr (zero: every listener) of host ("": every host). It runs
// under t.mu.
func (t *Target) disconnectHook(s *subsystem, addr ListenAddr, host string) {
	if t.discon != nil && !s.discovery {
		t.discon(s.nqn, addr, host)
	}
}
