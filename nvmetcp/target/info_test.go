package target_test

import (
	"encoding/binary"
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/virtual-disk-array/vda/nvmetcp"
	"github.com/virtual-disk-array/vda/nvmetcp/target"
)

// TestCNTLIDsPerSubsystem: CNTLIDs are handed out per subsystem, within
// its range, unique across the Servers sharing a ControllerIDs (two
// listeners), not reused at once, and start over in a new instance of the
// subsystem; Controllers lists a subsystem's controllers, oldest first,
// with their queues.
func TestCNTLIDsPerSubsystem(t *testing.T) {
	const subB = "nqn.2016-06.io.vda:b"
	ns := []target.NS{{NSID: 1, Dev: modelNS{newMem(4096, 1<<20)}}}
	cat := newLiveCatalog()
	cat.set(&target.Subsystem{NQN: subNQN, AllowAnyHost: true, MinCNTLID: 5, MaxCNTLID: 6, Namespaces: ns})
	cat.set(&target.Subsystem{NQN: subB, AllowAnyHost: true, Namespaces: ns})
	var ids target.ControllerIDs
	srv1, err := target.NewServer(cat, target.Config{ControllerIDs: &ids})
	require.NoError(t, err)
	srv2, err := target.NewServer(cat, target.Config{ControllerIDs: &ids})
	require.NoError(t, err)
	e1, e2 := serveServer(t, srv1), serveServer(t, srv2)

	a1, id1 := connectAs(t, e1.addr, subNQN, hostNQN)
	a2, id2 := connectAs(t, e2.addr, subNQN, hostNQN)
	assert.Equal(t, []uint16{5, 6}, []uint16{id1, id2}, "from min_cntlid, across listeners")
	full := dial(t, e1.addr, 0)
	wantStatus(t, "no CNTLID left", full.connect(0, 0xFFFF, subNQN, hostNQN, 0), 0, 0x06)
	b1, idB := connectAs(t, e2.addr, subB, hostNQN)
	assert.Equal(t, uint16(1), idB, "another subsystem has its own CNTLIDs")

	q := dial(t, e1.addr, 0)
	ok(t, "io connect", q.connect(1, id1, subNQN, hostNQN, 0))
	got := srv1.Controllers(subNQN)
	require.Len(t, got, 1)
	c := got[0]
	assert.Equal(t, uint16(5), c.CNTLID)
	assert.Equal(t, hostNQN, c.HostNQN)
	require.Len(t, c.Queues, 2)
	assert.Equal(t, uint16(0), c.Queues[0].QID)
	assert.Equal(t, a1.nc.LocalAddr().String(), c.Queues[0].Peer.String())
	assert.Equal(t, e1.addr, c.Queues[0].Local.String())
	assert.Equal(t, uint16(1), c.Queues[1].QID)
	assert.Equal(t, q.nc.LocalAddr().String(), c.Queues[1].Peer.String())
	got2 := srv2.Controllers(subNQN)
	require.Len(t, got2, 1)
	assert.Less(t, c.Seq, got2[0].Seq, "creation order across servers")
	assert.Empty(t, srv1.Controllers(subB))
	assert.Empty(t, srv2.Controllers(nvmetcp.DiscoveryNQN))

	// The first controller goes: its CNTLID is free again, and is the
	// next one after 6 (wrapping to min_cntlid).
	a1.nc.Close()
	q.nc.Close()
	waitFor(t, func() bool { return len(srv1.Controllers(subNQN)) == 0 })
	_, id3 := connectAs(t, e1.addr, subNQN, hostNQN)
	assert.Equal(t, uint16(5), id3)

	// subB: 1 goes, the next is 2 (not reused at once); in a new
	// instance of subB, 1 again.
	b1.nc.Close()
	waitFor(t, func() bool { return len(srv2.Controllers(subB)) == 0 })
	_, idB = connectAs(t, e2.addr, subB, hostNQN)
	assert.Equal(t, uint16(2), idB)
	srv2.Disconnect(func(sub, _ string) bool { return sub == subB })
	cat.set(&target.Subsystem{NQN: subB, AllowAnyHost: true, Namespaces: ns, Instance: 2})
	_, idB = connectAs(t, e2.addr, subB, hostNQN)
	assert.Equal(t, uint16(1), idB, "a new instance starts again from min_cntlid")
	ok(t, "the other path's controller", a2.property(false, 0x1C, false, 0))
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	require.Eventually(t, cond, 5e9, 1e6)
}

// TestNoANAReporting: a subsystem without ANA reporting, as SPDK's without
// ana_reporting: CMIC without ANA, no ANA change notices, ANAGRPID 0 and
// no ANA log page; with it, namespaces sharing an ANA group are one
// descriptor of the log page.
func TestNoANAReporting(t *testing.T) {
	dev := modelNS{newMem(4096, 1<<20)}
	cat := newLiveCatalog()
	cat.set(&target.Subsystem{NQN: subNQN, AllowAnyHost: true, MaxNamespaces: 4,
		Namespaces: []target.NS{{NSID: 1, Dev: dev}, {NSID: 2, Dev: dev}}})
	srv, err := target.NewServer(cat, target.Config{})
	require.NoError(t, err)
	e := serveServer(t, srv)
	le := binary.LittleEndian

	a, _ := connectAs(t, e.addr, subNQN, hostNQN)
	cqe, id := a.exec(adminSQE(0x06, nvmetcp.CNSController, 0), nil, false, 4096)
	ok(t, "identify", cqe)
	assert.Equal(t, byte(0x03), id[76], "CMIC: multi-port, multi-controller, no ANA")
	assert.Equal(t, uint32(0x100), le.Uint32(id[92:]), "OAES: namespace attribute notices only")
	assert.Equal(t, byte(0), id[343], "ANACAP")
	assert.Equal(t, uint32(0), le.Uint32(id[348:]), "NANAGRPID")
	cqe, ns := a.exec(withNSID(adminSQE(0x06, nvmetcp.CNSNamespace, 0), 1), nil, false, 4096)
	ok(t, "identify namespace", cqe)
	assert.Equal(t, uint32(0), le.Uint32(ns[92:]), "ANAGRPID")
	cqe, _ = a.logPage(nvmetcp.LogANA, 0, 4096, false)
	wantStatus(t, "ANA log page", cqe, 1, 0x09)

	cat.set(&target.Subsystem{NQN: subNQN, AllowAnyHost: true, MaxNamespaces: 4, ANAReporting: true,
		Namespaces: []target.NS{{NSID: 1, Dev: dev, ANAGroup: 3}, {NSID: 2, Dev: dev, ANAGroup: 3,
			ANAState: nvmetcp.ANANonOptimized}}})
	b, _ := connectAs(t, e.addr, subNQN, hostNQN)
	cqe, id = b.exec(adminSQE(0x06, nvmetcp.CNSController, 0), nil, false, 4096)
	ok(t, "identify", cqe)
	assert.Equal(t, byte(0x0B), id[76], "CMIC with ANA")
	cqe, ns = b.exec(withNSID(adminSQE(0x06, nvmetcp.CNSNamespace, 0), 2), nil, false, 4096)
	ok(t, "identify namespace", cqe)
	assert.Equal(t, uint32(3), le.Uint32(ns[92:]), "ANAGRPID")
	cqe, l := b.logPage(nvmetcp.LogANA, 0, 4096, false)
	ok(t, "ANA log page", cqe)
	require.Equal(t, uint16(1), le.Uint16(l[8:]), "one group")
	assert.Equal(t, uint32(3), le.Uint32(l[16:]), "group 3")
	assert.Equal(t, uint32(2), le.Uint32(l[20:]), "two namespaces")
	assert.Equal(t, []uint32{1, 2}, []uint32{le.Uint32(l[48:]), le.Uint32(l[52:])})
	assert.Equal(t, byte(nvmetcp.ANAOptimized), l[32]&0xF, "the state of the group's first namespace")
}

// TestANAStateRefusesIO: with ANA reporting, I/O to a namespace whose ANA
// group is inaccessible, persistently lost or in transition on the
// host's path gets SPDK's path status (SCT 3) without DNR, so that the
// host retries on another path; optimized and non-optimized groups serve
// it. Without ANA reporting every path serves, as in SPDK.
func TestANAStateRefusesIO(t *testing.T) {
	dev := modelNS{newMem(4096, 1<<20)}
	states := []nvmetcp.ANAState{nvmetcp.ANAOptimized, nvmetcp.ANANonOptimized, nvmetcp.ANAInaccessible, nvmetcp.ANAPersistentLoss, nvmetcp.ANAChange}
	for _, reporting := range []bool{true, false} {
		var ns []target.NS
		for i, s := range states {
			ns = append(ns, target.NS{NSID: uint32(i + 1), Dev: dev, ANAState: s})
		}
		cat := newLiveCatalog()
		cat.set(&target.Subsystem{NQN: subNQN, AllowAnyHost: true, MaxNamespaces: 8, ANAReporting: reporting, Namespaces: ns})
		srv, err := target.NewServer(cat, target.Config{})
		require.NoError(t, err)
		e := serveServer(t, srv)
		_, cntlid := connectAs(t, e.addr, subNQN, hostNQN)
		q := dial(t, e.addr, 0)
		ok(t, "io connect", q.connect(1, cntlid, subNQN, hostNQN, 0))
		for i, s := range states {
			read := withNSID(rw(0x02, 0, 1), uint32(i+1))
			cqe, _ := q.exec(read, nil, false, 4096)
			write := withNSID(rw(0x01, 0, 1), uint32(i+1))
			wcqe, _ := q.exec(write, make([]byte, 4096), true, 0)
			flush := withNSID(rw(0x00, 0, 1), uint32(i+1))
			fcqe, _ := q.exec(flush, nil, false, 0)
			want := map[nvmetcp.ANAState]uint8{nvmetcp.ANAPersistentLoss: 0x01, nvmetcp.ANAInaccessible: 0x02, nvmetcp.ANAChange: 0x03}[s]
			for what, c := range map[string]nvmetcp.CQE{"read": cqe, "write": wcqe, "flush": fcqe} {
				if !reporting || want == 0 {
					ok(t, fmt.Sprintf("%s on %#x (ana reporting %v)", what, s, reporting), c)
					continue
				}
				wantStatus(t, fmt.Sprintf("%s on %#x", what, s), c, 3, want)
				assert.False(t, c.DNR(), "a path error is retried elsewhere")
			}
		}
	}
}
