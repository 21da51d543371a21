package model

import "slices"

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
		Hosts: slices.Clone(s.hosts), ANAReporting: s.anaReporting}
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
