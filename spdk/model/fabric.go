package model

import (
	"strings"
	"sync"
)

// Fabric is an in-process NVMe-oF network: the listeners of the Targets
// that share it, by transport address, so that one Target's
// bdev_nvme_attach_controller reaches another Target's subsystem. A
// connection is a link that either side can cut: the target when the
// subsystem is deleted or the host fenced, the initiator on detach.
//
// A Fabric holds no Target lock while it works, and Targets never hold
// each other's locks at once, so any Targets may attach to any others
// (even to themselves).
type Fabric struct {
	mu sync.Mutex
	// ports maps a listen address (see portKey) to the Target that
	// listens there.
	ports map[string]*Target
}

// NewFabric returns an empty network.
func NewFabric() *Fabric {
	return &Fabric{ports: map[string]*Target{}}
}

// portKey identifies a listening socket: transport, address and port
// (the address family is implied by the address).
func portKey(trtype, traddr, trsvcid string) string {
	return strings.ToUpper(trtype) + " " + traddr + " " + trsvcid
}

// bind makes t the listener at key. It fails if another Target listens
// there already; a Target may bind the same key several times (for several
// subsystems), counted by its listeners.
func (f *Fabric) bind(key string, t *Target) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if o := f.ports[key]; o != nil && o != t {
		return false
	}
	f.ports[key] = t
	return true
}

// unbind stops t listening at key.
func (f *Fabric) unbind(key string, t *Target) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.ports[key] == t {
		delete(f.ports, key)
	}
}

func (f *Fabric) target(key string) *Target {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.ports[key]
}

// connectRequest is what an initiator presents when it connects.
type connectRequest struct {
	trtype, adrfam, traddr, trsvcid string
	subnqn, hostnqn, hostid         string
	// Config.Dial's extras: digests and I/O queues asked for.
	hdgst, ddgst bool
	ioQueues     int
}

// connect opens a connection to the subsystem listening at the request's
// address. It fails (the initiator sees -5) when nothing listens there,
// the subsystem is unknown or does not listen on that address, or the
// host is not allowed.
func (f *Fabric) connect(req connectRequest) (*link, bool) {
	t := f.target(portKey(req.trtype, req.traddr, req.trsvcid))
	if t == nil {
		return nil, false // connection refused
	}
	return t.acceptConnect(req)
}

// link is one established controller connection between an initiator
// path and a target subsystem. Its mutex is a leaf: it is taken while
// holding either Target's lock, never the other way round.
type link struct {
	mu     sync.Mutex
	closed bool
	view   remoteView
	// version counts the changes of view and closed, from 1, so that the
	// initiator's poller skips the controllers whose links did not change:
	// a target with thousands of them would otherwise redo them all on
	// every call.
	version uint64
	// rc is the real connection of a link made by Config.Dial (nil on the
	// Fabric); gone is closed with the link, to end its watcher.
	rc   RemoteController
	gone chan struct{}
}

// remoteView is what the initiator knows of the remote controller: its
// identify data, and its namespaces with their ANA state as seen through
// this connection's listener. The target keeps it current.
type remoteView struct {
	cntlid       int
	subnqn       string
	model        string
	serial       string
	anaReporting bool
	namespaces   []remoteNamespace // by nsid
}

type remoteNamespace struct {
	nsid      uint32
	nguid     string
	uuid      string
	blockSize uint32
	numBlocks uint64
	anaState  string // "" without ANA reporting
	// dev is the namespace's data path on the target: the initiator's
	// I/O goes there while the link is up. io is the data path of a
	// namespace reached through Config.Dial (dev is then nil).
	dev *Dev
	io  NamespaceIO
}

// close cuts the connection; both sides then see it closed.
func (l *link) close() {
	l.mu.Lock()
	was := l.closed
	l.closed = true
	l.version++
	l.mu.Unlock()
	if !was && l.rc != nil {
		close(l.gone)
		go l.rc.Close() // never wait for the network under a lock
	}
}

func (l *link) isClosed() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.closed
}

// snapshot returns the current view, whether the link is still up, and
// the version of both.
func (l *link) snapshot() (remoteView, bool, uint64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.view, !l.closed, l.version
}

func (l *link) setView(v remoteView) {
	l.mu.Lock()
	l.view = v
	l.version++
	l.mu.Unlock()
}
