package dataplane_test

import (
	"context"
	"encoding/binary"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/virtual-disk-array/vda/nvmetcp"
	"github.com/virtual-disk-array/vda/spdk"
)

// queue is a minimal NVMe/TCP host queue (one TCP connection): ICReq,
// Fabrics Connect and Property Set, Keep Alive. The part of
// nvmetcp/target's test client these tests need.
type queue struct {
	nc  net.Conn
	r   *nvmetcp.Reader
	w   *nvmetcp.Writer
	cid uint16
}

func dialQueue(t *testing.T, port string) *queue {
	t.Helper()
	nc, err := net.Dial("tcp", "127.0.0.1:"+port)
	require.NoError(t, err)
	t.Cleanup(func() { nc.Close() })
	require.NoError(t, nc.SetDeadline(time.Now().Add(10*time.Second)))
	r, err := nvmetcp.NewReader(nc, nvmetcp.ReaderConfig{Role: nvmetcp.RoleHost, MaxData: 1 << 20})
	require.NoError(t, err)
	q := &queue{nc: nc, r: r, w: nvmetcp.NewWriter(nc)}
	require.NoError(t, q.w.WritePDU(&nvmetcp.PDU{Type: nvmetcp.TypeICReq}))
	p, err := r.Read()
	require.NoError(t, err)
	require.Equal(t, nvmetcp.TypeICResp, p.Type)
	return q
}

// exec sends sqe (with in-capsule data) and returns its completion.
func (q *queue) exec(sqe nvmetcp.SQE, data []byte) (nvmetcp.CQE, error) {
	q.cid++
	sqe.SetCID(q.cid)
	if data != nil {
		sqe.SetSGL(nvmetcp.SGLInCapsule, 0, uint32(len(data)))
	} else {
		sqe.SetSGL(nvmetcp.SGLTransport, 0, 0)
	}
	if err := q.w.WritePDU(&nvmetcp.PDU{Type: nvmetcp.TypeCapsuleCmd, SQE: sqe, Data: data}); err != nil {
		return nvmetcp.CQE{}, err
	}
	p, err := q.r.Read()
	if err != nil {
		return nvmetcp.CQE{}, err
	}
	if p.Type != nvmetcp.TypeCapsuleResp || p.CQE.CID() != q.cid {
		return nvmetcp.CQE{}, errors.New("unexpected PDU")
	}
	return p.CQE, nil
}

// connect sends a Fabrics Connect for queue qid (0: admin, cntlid 0xFFFF).
func (q *queue) connect(qid, cntlid uint16, sub, host string) (nvmetcp.CQE, error) {
	var s nvmetcp.SQE
	s.SetOpcode(nvmetcp.OpcodeFabrics)
	s[4] = 0x01 // Connect
	s.SetCDW(10, uint32(qid)<<16)
	s.SetCDW(11, 31)
	if qid == 0 {
		s.SetCDW(12, 30000) // KATO 30 s: only a disconnect ends these queues
	}
	d := make([]byte, 1024)
	binary.LittleEndian.PutUint16(d[16:], cntlid)
	copy(d[256:], sub)
	copy(d[512:], host)
	return q.exec(s, d)
}

// bringUp connects an admin queue, enables the controller, sends a Keep
// Alive and connects one I/O queue.
func bringUp(t *testing.T, port, sub, host string) (admin, io *queue) {
	t.Helper()
	admin = dialQueue(t, port)
	cqe, err := admin.connect(0, 0xFFFF, sub, host)
	require.NoError(t, err)
	require.True(t, cqe.Success(), "admin connect: SCT %d SC %#x", cqe.SCT(), cqe.SC())
	cntlid := uint16(cqe.DW0())
	var ps nvmetcp.SQE
	ps.SetOpcode(nvmetcp.OpcodeFabrics)
	ps[4] = 0x00 // Property Set CC: EN
	ps.SetCDW(11, 0x14)
	ps.SetCDW(12, 0x00460001)
	cqe, err = admin.exec(ps, nil)
	require.NoError(t, err)
	require.True(t, cqe.Success(), "set CC")
	var ka nvmetcp.SQE
	ka.SetOpcode(0x18)
	cqe, err = admin.exec(ka, nil)
	require.NoError(t, err)
	require.True(t, cqe.Success(), "keep alive")
	io = dialQueue(t, port)
	cqe, err = io.connect(1, cntlid, sub, host)
	require.NoError(t, err)
	require.True(t, cqe.Success(), "I/O connect: SCT %d SC %#x", cqe.SCT(), cqe.SC())
	return admin, io
}

// closedWithin reports whether the target closes q within d: a read
// ends (EOF or reset) rather than timing out.
func closedWithin(q *queue, d time.Duration) bool {
	_ = q.nc.SetReadDeadline(time.Now().Add(d))
	var b [1]byte
	_, err := q.nc.Read(b[:])
	var ne net.Error
	return err != nil && !(errors.As(err, &ne) && ne.Timeout())
}

// TestFence: nvmf_subsystem_remove_host closes that host's live
// connections to that subsystem (admin and I/O queues) at once, as SPDK
// does, and a new Connect of it is refused; other hosts and subsystems
// on the socket stay connected. nvmf_subsystem_remove_listener closes
// the connections through that listener, nvmf_delete_subsystem all of
// the subsystem's.
func TestFence(t *testing.T) {
	_, c := start(t)
	ctx := context.Background()
	const (
		nqnA  = "nqn.2016-06.io.vda:fence-a"
		nqnB  = "nqn.2016-06.io.vda:fence-b"
		host1 = "nqn.2014-08.org.example:primary"
		host2 = "nqn.2014-08.org.example:secondary"
	)
	port := freePort(t)
	require.NoError(t, c.NvmfCreateTransport(ctx, spdk.NvmfCreateTransportRequest{Trtype: "TCP"}))
	for i, nqn := range []string{nqnA, nqnB} {
		bdev := "f" + string(rune('a'+i))
		_, err := c.BdevMallocCreate(ctx, spdk.BdevMallocCreateRequest{Name: bdev, NumBlocks: 2048, BlockSize: 512})
		require.NoError(t, err)
		require.NoError(t, c.NvmfCreateSubsystem(ctx, spdk.NvmfCreateSubsystemRequest{NQN: nqn}))
		_, err = c.NvmfSubsystemAddNs(ctx, spdk.NvmfSubsystemAddNsRequest{NQN: nqn,
			Namespace: spdk.NamespaceParams{BdevName: bdev}})
		require.NoError(t, err)
		require.NoError(t, c.NvmfSubsystemAddHost(ctx, nqn, host1))
		require.NoError(t, c.NvmfSubsystemAddHost(ctx, nqn, host2))
		require.NoError(t, c.NvmfSubsystemAddListener(ctx, spdk.NvmfSubsystemAddListenerRequest{NQN: nqn,
			ListenAddress: tcp(port)}))
	}

	a1, io1 := bringUp(t, port, nqnA, host1)
	a2, io2 := bringUp(t, port, nqnA, host2)
	b1, iob1 := bringUp(t, port, nqnB, host1)

	// remove_host: host1 loses nqnA, and only that.
	require.NoError(t, c.NvmfSubsystemRemoveHost(ctx, nqnA, host1))
	assert.True(t, closedWithin(a1, time.Second), "admin queue of the removed host")
	assert.True(t, closedWithin(io1, time.Second), "I/O queue of the removed host")
	for _, q := range []*queue{a2, io2, b1, iob1} {
		assert.False(t, closedWithin(q, 200*time.Millisecond), "another host or subsystem")
	}
	q := dialQueue(t, port)
	cqe, err := q.connect(0, 0xFFFF, nqnA, host1)
	require.NoError(t, err)
	assert.False(t, cqe.Success(), "the removed host cannot connect again")
	assert.Equal(t, uint8(1), cqe.SCT())
	assert.Equal(t, uint8(0x84), cqe.SC(), "Connect Invalid Host")
	bringUp(t, port, nqnA, host2) // the other host still can

	// delete_subsystem: every connection of nqnA; the socket stays (nqnB
	// listens on it) and nqnB's connections too.
	require.NoError(t, c.NvmfDeleteSubsystem(ctx, nqnA))
	assert.True(t, closedWithin(a2, time.Second), "admin queue of the deleted subsystem")
	assert.True(t, closedWithin(io2, time.Second), "I/O queue of the deleted subsystem")
	assert.False(t, closedWithin(b1, 200*time.Millisecond), "another subsystem")
	q = dialQueue(t, port)
	cqe, err = q.connect(0, 0xFFFF, nqnA, host2)
	require.NoError(t, err)
	assert.False(t, cqe.Success(), "the deleted subsystem cannot be reached")

	// remove_listener: nqnB's connections through it go (and the socket,
	// its last listener).
	require.NoError(t, c.NvmfSubsystemRemoveListener(ctx, nqnB, tcp(port)))
	assert.True(t, closedWithin(b1, time.Second), "admin queue through the removed listener")
	assert.True(t, closedWithin(iob1, time.Second), "I/O queue through the removed listener")
}

// TestFenceRemoveListenerKeepsPort: removing one subsystem's listener
// closes the connections made through it even when the socket stays
// open for another subsystem.
func TestFenceRemoveListenerKeepsPort(t *testing.T) {
	_, c := start(t)
	ctx := context.Background()
	const (
		nqnA = "nqn.2016-06.io.vda:fence-la"
		nqnB = "nqn.2016-06.io.vda:fence-lb"
		host = "nqn.2014-08.org.example:primary"
	)
	port := freePort(t)
	require.NoError(t, c.NvmfCreateTransport(ctx, spdk.NvmfCreateTransportRequest{Trtype: "TCP"}))
	for _, nqn := range []string{nqnA, nqnB} {
		require.NoError(t, c.NvmfCreateSubsystem(ctx, spdk.NvmfCreateSubsystemRequest{NQN: nqn, AllowAnyHost: true}))
		require.NoError(t, c.NvmfSubsystemAddListener(ctx, spdk.NvmfSubsystemAddListenerRequest{NQN: nqn,
			ListenAddress: tcp(port)}))
	}
	a, io := bringUp(t, port, nqnA, host)
	b, _ := bringUp(t, port, nqnB, host)

	// allow_any_host off leaves connected hosts connected, as SPDK does.
	require.NoError(t, c.NvmfSubsystemAllowAnyHost(ctx, nqnA, false))
	assert.False(t, closedWithin(a, 200*time.Millisecond), "allow_any_host off disconnects nobody")

	require.NoError(t, c.NvmfSubsystemRemoveListener(ctx, nqnA, tcp(port)))
	assert.True(t, closedWithin(a, time.Second), "admin queue through the removed listener")
	assert.True(t, closedWithin(io, time.Second), "I/O queue through the removed listener")
	assert.False(t, closedWithin(b, 200*time.Millisecond), "another subsystem on the same socket")
}
