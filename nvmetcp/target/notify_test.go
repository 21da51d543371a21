package target_test

import (
	"encoding/binary"
	"net"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/virtual-disk-array/vda/nvmetcp"
	"github.com/virtual-disk-array/vda/nvmetcp/target"
)

// liveCatalog is a Catalog and DiscoveryCatalog that tests change while
// the server runs: listeners (for the discovery log) per subsystem.
type liveCatalog struct {
	mu        sync.Mutex
	subs      map[string]*target.Subsystem
	listeners map[string][]target.DiscoveryEntry
	order     []string
}

func newLiveCatalog() *liveCatalog {
	return &liveCatalog{subs: map[string]*target.Subsystem{}, listeners: map[string][]target.DiscoveryEntry{}}
}

func (c *liveCatalog) set(s *target.Subsystem, listeners ...string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.subs[s.NQN]; !ok {
		c.order = append(c.order, s.NQN)
	}
	c.subs[s.NQN] = s
	var ls []target.DiscoveryEntry
	for i, l := range listeners {
		host, port, _ := net.SplitHostPort(l)
		ls = append(ls, target.DiscoveryEntry{NQN: s.NQN, Traddr: host, Trsvcid: port, PortID: uint16(i)})
	}
	c.listeners[s.NQN] = ls
}

func (c *liveCatalog) Subsystem(nqn string) (*target.Subsystem, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	s, ok := c.subs[nqn]
	return s, ok
}

func (c *liveCatalog) Discovery(host string) []target.DiscoveryEntry {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []target.DiscoveryEntry
	for _, n := range c.order {
		s := c.subs[n]
		if s.AllowAnyHost || slices.Contains(s.Hosts, host) {
			out = append(out, c.listeners[n]...)
		}
	}
	return out
}

// submit sends a command without waiting for its completion.
func (c *client) submit(sqe nvmetcp.SQE) uint16 {
	c.t.Helper()
	c.cid++
	sqe.SetCID(c.cid)
	sqe.SetSGL(nvmetcp.SGLTransport, 0, 0)
	if err := c.w.WritePDU(&nvmetcp.PDU{Type: nvmetcp.TypeCapsuleCmd, SQE: sqe}); err != nil {
		c.t.Fatal(err)
	}
	return c.cid
}

// next reads the next completion (an AER's).
func (c *client) next() nvmetcp.CQE {
	c.t.Helper()
	c.nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	defer c.nc.SetReadDeadline(time.Now().Add(20 * time.Second))
	p, err := c.r.Read()
	if err != nil {
		c.t.Fatalf("waiting for a completion: %v", err)
	}
	if p.Type != nvmetcp.TypeCapsuleResp {
		c.t.Fatalf("got %v, want a CapsuleResp", p.Type)
	}
	return p.CQE
}

func adminSQE(op uint8, cdw10, cdw11 uint32) nvmetcp.SQE {
	var s nvmetcp.SQE
	s.SetOpcode(op)
	s.SetCDW(10, cdw10)
	s.SetCDW(11, cdw11)
	return s
}

// logPage reads n bytes of log page lid from off.
func (c *client) logPage(lid uint8, off uint64, n int, rae bool) (nvmetcp.CQE, []byte) {
	c.t.Helper()
	numd := uint32(n/4 - 1)
	cdw10 := uint32(lid) | (numd&0xFFFF)<<16
	if rae {
		cdw10 |= 1 << 15
	}
	s := adminSQE(0x02, cdw10, numd>>16)
	s.SetNSID(0xFFFFFFFF)
	s.SetCDW(12, uint32(off))
	s.SetCDW(13, uint32(off>>32))
	return c.exec(s, nil, false, n)
}

func (c *client) setFeature(fid uint8, v uint32) {
	c.t.Helper()
	cqe, _ := c.exec(adminSQE(0x09, uint32(fid), v), nil, false, 0)
	ok(c.t, "set features", cqe)
}

// keepAlive runs a Keep Alive: its completion must come before any AER's.
func (c *client) keepAlive() {
	c.t.Helper()
	cqe, _ := c.exec(adminSQE(0x18, 0, 0), nil, false, 0)
	ok(c.t, "keep alive", cqe)
}

// connectAs brings up an admin queue of host on sub.
func connectAs(t *testing.T, addr, sub, host string) (*client, uint16) {
	t.Helper()
	a := dial(t, addr, 0)
	cqe := a.connect(0, 0xFFFF, sub, host, 0)
	ok(t, "admin connect "+sub, cqe)
	ok(t, "enable", a.property(true, 0x14, false, 0x00460001))
	return a, uint16(cqe.DW0())
}

type discEntry struct {
	trtype, adrfam, subtype, treq uint8
	portid, cntlid, asqsz, eflags uint16
	trsvcid, subnqn, traddr       string
}

func decodeEntries(t *testing.T, b []byte) (gen uint64, entries []discEntry) {
	t.Helper()
	le := binary.LittleEndian
	require.GreaterOrEqual(t, len(b), 1024)
	gen = le.Uint64(b)
	n := int(le.Uint64(b[8:]))
	require.Equal(t, 1024+n*1024, len(b), "numrec %d", n)
	str := func(f []byte, pad byte) string {
		for len(f) > 0 && (f[len(f)-1] == pad || f[len(f)-1] == 0) {
			f = f[:len(f)-1]
		}
		return string(f)
	}
	for i := range n {
		e := b[1024+i*1024:][:1024]
		assert.Equal(t, byte(' '), e[32+31], "TRSVCID space padded")
		assert.Equal(t, byte(0), e[256+255], "SUBNQN NUL padded")
		assert.Equal(t, byte(' '), e[512+255], "TRADDR space padded")
		entries = append(entries, discEntry{e[0], e[1], e[2], e[3], le.Uint16(e[4:]), le.Uint16(e[6:]),
			le.Uint16(e[8:]), le.Uint16(e[10:]), str(e[32:64], ' '), str(e[256:512], 0), str(e[512:768], ' ')})
	}
	return gen, entries
}

// TestDiscovery: a discovery controller's identity, its log page (what
// the host may reach, through every listener, in pieces), its generation
// counter and the Discovery Log Page Change notice.
func TestDiscovery(t *testing.T) {
	const (
		subA  = "nqn.2016-06.io.vda:a" // host-a only, two listeners
		subB  = "nqn.2016-06.io.vda:b" // any host
		subC  = "nqn.2016-06.io.vda:c" // host-b only
		hostB = "nqn.2014-08.org.nvmexpress:uuid:host-b"
	)
	cat := newLiveCatalog()
	cat.set(&target.Subsystem{NQN: nvmetcp.DiscoveryNQN, AllowAnyHost: true}, "127.0.0.1:4420")
	cat.set(&target.Subsystem{NQN: subA, Hosts: []string{hostNQN}}, "127.0.0.1:4420", "[::1]:4421")
	cat.set(&target.Subsystem{NQN: subB, AllowAnyHost: true}, "10.0.0.1:4420")
	cat.set(&target.Subsystem{NQN: subC, Hosts: []string{hostB}}, "127.0.0.1:4420")
	// The discovery subsystem's own entry is flagged as such.
	cat.mu.Lock()
	cat.listeners[nvmetcp.DiscoveryNQN][0].Discovery = true
	cat.mu.Unlock()
	srv, err := target.NewServer(cat, target.Config{Firmware: "T1"})
	require.NoError(t, err)
	e := serveServer(t, srv)

	a, cntlid := connectAs(t, e.addr, nvmetcp.DiscoveryNQN, hostNQN)
	cqe, id := a.exec(adminSQE(0x06, nvmetcp.CNSController, 0), nil, false, 4096)
	ok(t, "identify", cqe)
	le := binary.LittleEndian
	assert.Equal(t, uint8(nvmetcp.ControllerTypeDiscovery), id[111], "CNTRLTYPE")
	assert.Equal(t, cntlid, le.Uint16(id[78:]), "CNTLID")
	assert.Equal(t, uint32(0x80000000), le.Uint32(id[92:]), "OAES")
	assert.Equal(t, uint32(0), le.Uint32(id[516:]), "NN")
	assert.Equal(t, nvmetcp.DiscoveryNQN, string(id[768:768+len(nvmetcp.DiscoveryNQN)]))
	assert.Equal(t, make([]byte, 60), id[4:64], "SN and MN all NUL, as SPDK")
	cqe, _ = a.exec(adminSQE(0x06, nvmetcp.CNSActiveNamespaces, 0), nil, false, 4096)
	wantStatus(t, "active namespaces", cqe, 0, 0x02)
	cqe, _ = a.logPage(nvmetcp.LogANA, 0, 4096, false)
	wantStatus(t, "ANA log", cqe, 1, 0x09)

	cqe, hdr := a.logPage(nvmetcp.LogDiscovery, 0, 1024, true)
	ok(t, "discovery header", cqe)
	gen0 := le.Uint64(hdr)
	require.Equal(t, uint64(4), le.Uint64(hdr[8:]), "NUMREC")
	cqe, whole := a.logPage(nvmetcp.LogDiscovery, 0, 5*1024, false)
	ok(t, "discovery log", cqe)
	gen, entries := decodeEntries(t, whole)
	assert.Equal(t, gen0, gen)
	tcp := func(adrfam, subtype uint8, portid, eflags uint16, addr, port, nqn string) discEntry {
		return discEntry{3, adrfam, subtype, 0x02, portid, 0xFFFF, 128, eflags, port, nqn, addr}
	}
	assert.Equal(t, []discEntry{
		tcp(1, 3, 0, 3, "127.0.0.1", "4420", nvmetcp.DiscoveryNQN),
		tcp(1, 2, 0, 0, "127.0.0.1", "4420", subA),
		tcp(2, 2, 1, 0, "::1", "4421", subA),
		tcp(1, 2, 0, 0, "10.0.0.1", "4420", subB),
	}, entries)

	// Pieces: LPOL/LPOU and NUMDL as a host reads them.
	for _, tc := range []struct {
		name string
		off  uint64
		n    int
		sc   uint8
	}{
		{"middle", 1024 + 512, 1024, 0},
		{"last entry", 4 * 1024, 1024, 0},
		{"past the end", 5*1024 + 4, 8, 0x02},
		{"LPOU", 1 << 32, 8, 0x02},
		{"unaligned", 2, 8, 0x02},
		{"tail, short page", 5*1024 - 8, 64, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cqe, b := a.logPage(nvmetcp.LogDiscovery, tc.off, tc.n, true)
			if tc.sc != 0 {
				wantStatus(t, tc.name, cqe, 0, tc.sc)
				return
			}
			ok(t, tc.name, cqe)
			want := make([]byte, tc.n)
			copy(want, whole[min(int(tc.off), len(whole)):])
			assert.Equal(t, want, b)
		})
	}

	// Another host sees what it may reach.
	b, _ := connectAs(t, e.addr, nvmetcp.DiscoveryNQN, hostB)
	_, other := b.logPage(nvmetcp.LogDiscovery, 0, 4*1024, false)
	_, entries = decodeEntries(t, other)
	var nqns []string
	for _, x := range entries {
		nqns = append(nqns, x.subnqn)
	}
	assert.Equal(t, []string{nvmetcp.DiscoveryNQN, subB, subC}, nqns)

	// A change: the notice (when enabled), a new generation, the new list.
	a.setFeature(0x0B, 0x80000000)
	a.submit(adminSQE(0x0C, 0, 0))
	srv.Notify(subB) // nothing changed for host-a: no notice
	time.Sleep(50 * time.Millisecond)
	a.keepAlive()
	cat.set(&target.Subsystem{NQN: subC, Hosts: []string{hostB, hostNQN}}, "127.0.0.1:4420")
	srv.Notify(subC)
	aen := a.next()
	ok(t, "AER", aen)
	assert.Equal(t, uint32(0x0070F002), aen.DW0(), "notice, discovery log changed, log 70h")
	cqe, whole = a.logPage(nvmetcp.LogDiscovery, 0, 6*1024, false)
	ok(t, "discovery log", cqe)
	gen, entries = decodeEntries(t, whole)
	assert.Greater(t, gen, gen0)
	assert.Len(t, entries, 5)
	assert.Equal(t, subC, entries[4].subnqn)
	cqe, hdr = a.logPage(nvmetcp.LogDiscovery, 0, 1024, false)
	ok(t, "header again", cqe)
	assert.Equal(t, gen, le.Uint64(hdr), "no change, same generation")

	// Discovery controllers have no I/O queues.
	q := dial(t, e.addr, 0)
	wantStatus(t, "io connect", q.connect(1, cntlid, nvmetcp.DiscoveryNQN, hostNQN, 0), 1, 0x82)
}

// TestDiscoveryUnsupported: without a DiscoveryCatalog the discovery NQN
// is unknown.
func TestDiscoveryUnsupported(t *testing.T) {
	e := start(t, target.Config{})
	a := dial(t, e.addr, 0)
	wantStatus(t, "connect", a.connect(0, 0xFFFF, nvmetcp.DiscoveryNQN, hostNQN, 0), 1, 0x82)
}

// TestAsyncEvents: namespaces added and removed and ANA states changed
// after Connect reach the host through Notify: the new view serves I/O,
// the AER completes with the right notice, the log pages tell what
// changed; events wait for an AER, stay masked until their log page is
// read, and are not sent when not enabled.
func TestAsyncEvents(t *testing.T) {
	dev1, dev2 := newMem(4096, 1<<20), newMem(4096, 1<<20)
	ns1 := target.NS{NSID: 1, NGUID: [16]byte{1}, Dev: modelNS{dev1}}
	ns2 := target.NS{NSID: 2, NGUID: [16]byte{2}, Dev: modelNS{dev2}}
	cat := newLiveCatalog()
	cat.set(&target.Subsystem{NQN: subNQN, AllowAnyHost: true, ANAReporting: true, MaxNamespaces: 32, Namespaces: []target.NS{ns1}})
	srv, err := target.NewServer(cat, target.Config{})
	require.NoError(t, err)
	e := serveServer(t, srv)
	a, cntlid := connectAs(t, e.addr, subNQN, hostNQN)
	q := dial(t, e.addr, 0)
	ok(t, "io connect", q.connect(1, cntlid, subNQN, hostNQN, 0))
	le := binary.LittleEndian

	cqe, id := a.exec(adminSQE(0x06, nvmetcp.CNSController, 0), nil, false, 4096)
	ok(t, "identify", cqe)
	assert.Equal(t, uint32(0x900), le.Uint32(id[92:]), "OAES: namespace attribute and ANA change notices")
	assert.Equal(t, uint32(32), le.Uint32(id[516:]), "NN is max_namespaces")
	assert.Equal(t, uint32(32), le.Uint32(id[348:]), "NANAGRPID")

	change := func(nss ...target.NS) {
		cat.set(&target.Subsystem{NQN: subNQN, AllowAnyHost: true, ANAReporting: true, MaxNamespaces: 32, Namespaces: nss})
		srv.Notify(subNQN)
	}
	changedList := func() []uint32 {
		t.Helper()
		cqe, b := a.logPage(nvmetcp.LogChangedNamespaces, 0, 4096, false)
		ok(t, "changed namespace list", cqe)
		var l []uint32
		for i := 0; i < len(b); i += 4 {
			if v := le.Uint32(b[i:]); v != 0 {
				l = append(l, v)
			}
		}
		return l
	}
	anaStates := func() map[uint32]nvmetcp.ANAState {
		t.Helper()
		cqe, b := a.logPage(nvmetcp.LogANA, 0, 4096, false)
		ok(t, "ANA log", cqe)
		out := map[uint32]nvmetcp.ANAState{}
		off := 16
		for range int(le.Uint16(b[8:])) {
			out[le.Uint32(b[off:])] = nvmetcp.ANAState(b[off+16] & 0xF)
			off += 32 + 4*int(le.Uint32(b[off+4:]))
		}
		return out
	}

	// Not enabled: nothing is reported, but the view changes.
	a.submit(adminSQE(0x0C, 0, 0))
	change(ns1, ns2)
	time.Sleep(50 * time.Millisecond)
	a.keepAlive()
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		cqe, b := a.exec(adminSQE(0x06, nvmetcp.CNSActiveNamespaces, 0), nil, false, 4096)
		ok(t, "active namespaces", cqe)
		if le.Uint32(b[4:]) == 2 {
			break
		}
		require.True(t, time.Now().Before(deadline), "namespace 2 never became active")
	}
	cqe, _ = q.exec(withNSID(rw(0x01, 0, 1), 2), pattern(4096, 9), true, 0)
	ok(t, "write to the added namespace", cqe)
	dev2.mu.Lock()
	assert.Equal(t, pattern(4096, 9), dev2.data[:4096])
	dev2.mu.Unlock()
	assert.Equal(t, []uint32{2}, changedList(), "kept while not reported")

	// Enabled (as Linux sets it): namespace removed.
	a.setFeature(0x0B, 0x900)
	change(ns1)
	aen := a.next()
	ok(t, "AER", aen)
	assert.Equal(t, uint32(0x00040002), aen.DW0(), "notice, namespace attribute changed, log 04h")
	cqe, _ = q.exec(withNSID(rw(0x02, 0, 1), 2), nil, false, 4096)
	wantStatus(t, "read from the removed namespace", cqe, 0, 0x0B)
	cqe, _ = a.exec(withNSID(adminSQE(0x06, nvmetcp.CNSNamespace, 0), 2), nil, false, 4096)
	wantStatus(t, "identify removed namespace", cqe, 0, 0x0B)

	// Masked until log 04h is read: a second change raises nothing.
	a.submit(adminSQE(0x0C, 0, 0))
	change(ns1, ns2)
	time.Sleep(50 * time.Millisecond)
	a.keepAlive()
	assert.Equal(t, []uint32{2}, changedList())
	assert.Empty(t, changedList(), "cleared by the read")

	// ANA change on the held AER.
	ns1n := ns1
	ns1n.ANAState = nvmetcp.ANANonOptimized
	change(ns1n, ns2)
	aen = a.next()
	assert.Equal(t, uint32(0x000C0302), aen.DW0(), "notice, ANA change, log 0Ch")
	assert.Equal(t, map[uint32]nvmetcp.ANAState{1: nvmetcp.ANANonOptimized, 2: nvmetcp.ANAOptimized}, anaStates())

	// No AER outstanding: the event waits for the next one.
	change(ns1, ns2)
	time.Sleep(50 * time.Millisecond)
	a.submit(adminSQE(0x0C, 0, 0))
	aen = a.next()
	assert.Equal(t, uint32(0x000C0302), aen.DW0())
	assert.Equal(t, nvmetcp.ANAOptimized, anaStates()[1])

	// A namespace resized in place (the same Dev): its size changed.
	a.submit(adminSQE(0x0C, 0, 0))
	dev1.mu.Lock()
	dev1.data = append(dev1.data, make([]byte, 1<<20)...)
	dev1.mu.Unlock()
	srv.Notify(subNQN)
	aen = a.next()
	assert.Equal(t, uint32(0x00040002), aen.DW0())
	assert.Equal(t, []uint32{1}, changedList())

	// AERL+1 AERs at most.
	for range 4 {
		a.submit(adminSQE(0x0C, 0, 0))
	}
	a.keepAlive()
	cqe, _ = a.exec(adminSQE(0x0C, 0, 0), nil, false, 0)
	wantStatus(t, "fifth AER", cqe, 1, 0x05)
}

func withNSID(s nvmetcp.SQE, nsid uint32) nvmetcp.SQE {
	s.SetNSID(nsid)
	return s
}

// TestControllerReset: CC.EN 1 to 0 closes the I/O queues and drops the
// AERs; EN=1 on the same admin queue brings the controller back (I/O
// queues connect again, Number of Queues may be set again); a shutdown
// notification closes the I/O queues and completes at once.
func TestControllerReset(t *testing.T) {
	e := start(t, target.Config{})
	a, cntlid := bringUp(t, e, 0, 0)
	a.setFeature(0x07, 0x00010001)
	q := dial(t, e.addr, 0)
	ok(t, "io connect", q.connect(1, cntlid, subNQN, hostNQN, 0))
	a.submit(adminSQE(0x0C, 0, 0))

	ok(t, "reset", a.property(true, 0x14, false, 0x00460000))
	wantEOF(t, "I/O queue after reset", q)
	cqe := a.property(false, 0x1C, false, 0)
	assert.Equal(t, uint32(0), cqe.DW0(), "CSTS after reset")
	cqe, _ = a.exec(adminSQE(0x06, nvmetcp.CNSController, 0), nil, false, 4096)
	wantStatus(t, "identify while disabled", cqe, 0, 0x0C)
	q2 := dial(t, e.addr, 0)
	wantStatus(t, "io connect while disabled", q2.connect(1, cntlid, subNQN, hostNQN, 0), 0, 0x0C)

	ok(t, "enable again", a.property(true, 0x14, false, 0x00460001))
	cqe = a.property(false, 0x1C, false, 0)
	assert.Equal(t, uint32(1), cqe.DW0(), "CSTS RDY")
	a.keepAlive() // the dropped AER never completes
	a.setFeature(0x07, 0x00010001)
	q3 := dial(t, e.addr, 0)
	ok(t, "io connect after reset", q3.connect(1, cntlid, subNQN, hostNQN, 0))
	cqe, _ = q3.exec(rw(0x02, 0, 1), nil, false, 4096)
	ok(t, "read after reset", cqe)

	ok(t, "shutdown", a.property(true, 0x14, false, 0x00464001))
	cqe = a.property(false, 0x1C, false, 0)
	assert.Equal(t, uint32(0x9), cqe.DW0(), "CSTS RDY + SHST complete")
	wantEOF(t, "I/O queue after shutdown", q3)
	cqe, _ = a.exec(adminSQE(0x06, nvmetcp.CNSController, 0), nil, false, 4096)
	wantStatus(t, "identify after shutdown", cqe, 0, 0x0C)
	ok(t, "reset after shutdown", a.property(true, 0x14, false, 0x00460000))
	ok(t, "enable after shutdown", a.property(true, 0x14, false, 0x00460001))
	cqe = a.property(false, 0x1C, false, 0)
	assert.Equal(t, uint32(1), cqe.DW0())
}
