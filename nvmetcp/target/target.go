// Package target is a first NVMe/TCP target (controller side) built on the
// nvmetcp codec. It serves the namespaces of the subsystems a Catalog
// returns: Fabrics Connect and properties, the admin commands a Linux 6.1
// or SPDK host needs to bring a controller up, and Read, Write, Flush,
// Write Zeroes and Dataset Management on I/O queues.
//
// Each TCP connection is one queue. Its reader goroutine reads and checks
// the PDUs and runs Fabrics and admin commands in order; I/O commands run
// several at once (up to the queue's size) on worker goroutines and
// complete in any order, or inline on the reader while the namespace
// proves fast; a writer goroutine sends all the completions ready with one
// writev (see queue.go). Controllers (one per
// admin Connect) live in the Server and are shared by their queues'
// connections under a mutex; a keep-alive timer per controller closes all
// its connections when the host stops sending Keep Alive.
//
// A Catalog that is also a DiscoveryCatalog gets a discovery controller
// (the Discovery log page of what the connecting host may reach) on the
// discovery NQN; Server.Notify makes connected controllers see a changed
// subsystem and sends the Asynchronous Event Notices for it.
package target

import (
	"context"
	"errors"
	"net"
	"sync"

	"github.com/virtual-disk-array/vda/nvmetcp"
)

// Namespace is the data path of one namespace. Offsets and lengths are in
// bytes and multiples of BlockSize. spdk/model's *Dev has this method set.
type Namespace interface {
	BlockSize() uint32
	Size() uint64
	ReadAt(ctx context.Context, p []byte, off uint64) error
	WriteAt(ctx context.Context, p []byte, off uint64) error
	Flush(ctx context.Context) error
	WriteZeroes(ctx context.Context, off, n uint64) error
	Unmap(ctx context.Context, off, n uint64) error
}

// NS is one namespace of a subsystem.
type NS struct {
	NSID  uint32
	NGUID [16]byte
	UUID  [16]byte
	Dev   Namespace
	// ANAGroup is the namespace's ANA group ID (ANAGRPID); 0 means its
	// NSID (one group per namespace). Used only with ANA reporting.
	ANAGroup uint32
	// ANAState is the state of the namespace's ANA group on the listener
	// the host connected through, reported in the ANA log page (with ANA
	// reporting). 0 means optimized.
	ANAState nvmetcp.ANAState
}

// group is the namespace's ANA group ID.
func (n *NS) group() uint32 {
	if n.ANAGroup == 0 {
		return n.NSID
	}
	return n.ANAGroup
}

// Subsystem is an NVM subsystem as the target exposes it. It must not be
// changed after the Catalog returned it (return a new one instead).
type Subsystem struct {
	NQN, Serial, Model string
	AllowAnyHost       bool
	Hosts              []string // host NQNs allowed when AllowAnyHost is false
	Namespaces         []NS     // in increasing NSID order
	// MaxNamespaces is the largest NSID the subsystem may ever have
	// (SPDK's max_namespaces): Identify Controller reports it as NN,
	// MNAN and the ANA group count, which a host sizes its ANA log buffer
	// by, so namespaces added later (Server.Notify) fit. 0 means the
	// largest NSID of Namespaces.
	MaxNamespaces uint32
	// ANAReporting is SPDK's ana_reporting: the controllers report
	// Asymmetric Namespace Access (CMIC bit 3, ANACAP, ANA group IDs, the
	// ANA log page and ANA change notices), which a host needs to treat
	// the subsystem's listeners as ANA paths. Without it, as in SPDK,
	// CMIC is multi-port and multi-controller only, namespaces have
	// ANAGRPID 0, the ANA log page is an invalid log page and ANA states
	// are neither reported nor noticed.
	ANAReporting bool
	// MinCNTLID and MaxCNTLID bound the CNTLIDs of its controllers
	// (SPDK's min_cntlid and max_cntlid); 0 means 1 and 0xFFEF.
	MinCNTLID, MaxCNTLID uint16
	// Instance tells this subsystem apart from an earlier one of the same
	// NQN (deleted, then created again): the CNTLIDs of a new instance
	// start again from MinCNTLID, as SPDK's do. It must stay the same in
	// every Subsystem the Catalog returns for the same instance.
	Instance uint64
}

// Catalog resolves a subsystem NQN at Connect time, and again for each
// connected controller of the subsystem after Server.Notify.
type Catalog interface {
	Subsystem(nqn string) (*Subsystem, bool)
}

// DiscoveryCatalog is a Catalog that also lists what a host may reach: a
// host connecting to the discovery NQN (nvmetcp.DiscoveryNQN) gets a
// discovery controller only when the Catalog has this method. Discovery
// returns, in the order of the Discovery log page, one entry per
// (subsystem, listener) that the host may connect to, on any address,
// as SPDK lists them; it is called at Connect, at each read of the log
// page and after Server.Notify, never with the Server's lock held.
type DiscoveryCatalog interface {
	Catalog
	Discovery(hostnqn string) []DiscoveryEntry
}

// DiscoveryEntry is one Discovery log page entry: a listener of a
// subsystem. The target fills in the rest as SPDK does: TRTYPE TCP, TREQ
// secure channel not required, CNTLID 0xFFFF (dynamic), ASQSZ 128, and
// EFLAGS duplicate returned information + explicit persistent connection
// for the discovery subsystem's own entries.
type DiscoveryEntry struct {
	NQN string
	// Discovery marks a listener of the discovery subsystem itself (SUBTYPE
	// 3, current discovery subsystem); false is an NVM subsystem.
	Discovery       bool
	Traddr, Trsvcid string
	IPv6            bool   // ADRFAM IPv6, else IPv4
	PortID          uint16 // PORTID
}

// Errors a Namespace may return (wrapped or not) to choose the NVMe status
// of the command; any other error completes it with Internal Error.
var (
	// ErrLBARange maps to LBA Out of Range.
	ErrLBARange = errors.New("target: LBA out of range")
	// ErrNotReady maps to Namespace Not Ready (a path down, a bdev gone):
	// the host may retry, on this path or another.
	ErrNotReady = errors.New("target: namespace not ready")
)

// StatusError lets a Namespace choose the exact status of a failed command.
type StatusError struct {
	SCT, SC uint8
	DNR     bool
}

func (e *StatusError) Error() string { return "target: NVMe status error" }

// Config tunes the target. The zero value gives SPDK's defaults.
type Config struct {
	// MaxH2CData is announced in ICResp: the most data in one H2CData PDU
	// and in one R2T. 0 means 128 KiB.
	MaxH2CData uint32
	// C2HDataMax is the most data the target puts in one C2HData PDU. 0
	// means 128 KiB.
	C2HDataMax uint32
	// InCapsuleData is the in-capsule data size of I/O queues (IOCCSZ). 0
	// means 4096.
	InCapsuleData uint32
	// MaxIO is the largest transfer of one command (MDTS), a power of two
	// times 4 KiB. 0 means 128 KiB.
	MaxIO uint32
	// C2HSuccess turns on the SUCCESS flag optimisation: a read's last
	// C2HData carries SUCCESS and no CapsuleResp follows.
	C2HSuccess bool
	// MaxIOQueues is the number of I/O queues granted at most. 0 means 127.
	MaxIOQueues uint16
	// Firmware is the FR string of Identify Controller; "" means "VDA".
	Firmware string
	// ControllerIDs allocates CNTLIDs; nil gives the server its own.
	ControllerIDs *ControllerIDs
	// AsyncIO executes every I/O command on a worker goroutine. By
	// default a queue executes its commands on its reader goroutine while
	// they prove fast (a namespace in memory), and on workers, several at
	// once, as soon as one is slow.
	AsyncIO bool
}

func (c Config) withDefaults() Config {
	if c.MaxH2CData == 0 {
		c.MaxH2CData = 128 << 10
	}
	if c.C2HDataMax == 0 {
		c.C2HDataMax = 128 << 10
	}
	if c.InCapsuleData == 0 {
		c.InCapsuleData = 4096
	}
	if c.MaxIO == 0 {
		c.MaxIO = 128 << 10
	}
	if c.MaxIOQueues == 0 {
		c.MaxIOQueues = 127
	}
	if c.Firmware == "" {
		c.Firmware = "VDA"
	}
	return c
}

// Validate reports a configuration the target cannot run.
func (c Config) Validate() error {
	c = c.withDefaults()
	switch {
	case c.MaxH2CData < 4096 || c.MaxH2CData%4 != 0:
		return errors.New("target: MaxH2CData must be a multiple of 4 of at least 4096")
	case c.MaxIO < 4096 || c.MaxIO&(c.MaxIO-1) != 0:
		return errors.New("target: MaxIO must be a power of two of at least 4096")
	case c.InCapsuleData%16 != 0 || c.InCapsuleData > 1<<20:
		return errors.New("target: InCapsuleData must be a multiple of 16 up to 1 MiB")
	}
	return nil
}

// Serve accepts connections on ln until ctx is done or Accept fails, and
// serves each on its own goroutine. When ctx is done it closes ln and every
// connection, waits for their goroutines and returns nil. It is
// NewServer(cat, cfg) then Server.Serve.
func Serve(ctx context.Context, ln net.Listener, cat Catalog, cfg Config) error {
	s, err := NewServer(cat, cfg)
	if err != nil {
		return err
	}
	return s.Serve(ctx, ln)
}

// Server is a target whose controllers can be cut from outside while it
// serves (Disconnect), as SPDK cuts a removed host's. A Server serves one
// listener, once.
type Server struct{ s *server }

// NewServer returns a Server of the subsystems of cat.
func NewServer(cat Catalog, cfg Config) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	s := &server{cat: cat, cfg: cfg.withDefaults(), ctrls: map[ctrlKey]*controller{}, conns: map[*conn]struct{}{},
		ids: cfg.ControllerIDs, notified: map[string]struct{}{}}
	if s.ids == nil {
		s.ids = &ControllerIDs{}
	}
	return &Server{s: s}, nil
}

// Disconnect drops every controller for which match(subsystem NQN, host
// NQN) is true: all its connections (admin and I/O queues) close at once,
// as when its keep-alive timer fires. It returns the number of
// controllers dropped. A Connect that resolved its subsystem in the
// Catalog before the call resolves it again, so that a host removed from
// the Catalog before Disconnect cannot slip a new controller in. It may
// be called from any goroutine, before, during or after Serve; it does
// not call the Catalog.
func (srv *Server) Disconnect(match func(subnqn, hostnqn string) bool) int {
	s := srv.s
	s.mu.Lock()
	defer s.mu.Unlock()
	s.epoch++
	n := 0
	for _, ct := range s.ctrls {
		if match(ct.nqn, ct.hostNQN) {
			s.dropLocked(ct)
			n++
		}
	}
	return n
}

// Serve accepts connections on ln until ctx is done or Accept fails, and
// serves each on its own goroutine. When ctx is done it closes ln and every
// connection, waits for their goroutines and returns nil.
func (srv *Server) Serve(ctx context.Context, ln net.Listener) error {
	s := srv.s
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		<-ctx.Done()
		ln.Close()
	}()
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		nc, err := ln.Accept()
		if err != nil {
			cancel()
			s.closeAll()
			if ctx.Err() != nil && errors.Is(ctx.Err(), context.Canceled) {
				return nil
			}
			return err
		}
		c := s.newConn(ctx, nc)
		if c == nil {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.serve()
		}()
	}
}

type server struct {
	cat Catalog
	cfg Config

	mu     sync.Mutex
	ctrls  map[ctrlKey]*controller
	ids    *ControllerIDs
	conns  map[*conn]struct{}
	closed bool
	// epoch counts Disconnect calls: a Connect whose Catalog lookup
	// overlapped one looks its subsystem up again.
	epoch uint64
	// discGen is the Discovery log page's generation counter; discSeq
	// orders the Catalog's Discovery calls.
	discGen, discSeq uint64

	// notified holds the subsystem NQNs Notify queued; notifying is whether
	// the goroutine that processes them runs. Guarded by nmu.
	nmu       sync.Mutex
	notified  map[string]struct{}
	notifying bool

	// bufs pools data buffers by size class (powers of two).
	bufs [32]sync.Pool
}

func (s *server) newConn(ctx context.Context, nc net.Conn) *conn {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		nc.Close()
		return nil
	}
	c := &conn{s: s, nc: nc}
	c.ctx, c.cancel = context.WithCancel(ctx)
	s.conns[c] = struct{}{}
	return c
}

func (s *server) closeAll() {
	s.mu.Lock()
	s.closed = true
	for c := range s.conns {
		c.close()
	}
	for _, ct := range s.ctrls {
		s.dropLocked(ct) // frees its CNTLID, which other servers may share
	}
	s.mu.Unlock()
}

func (s *server) dropConn(c *conn) {
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
}
