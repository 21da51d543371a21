package dataplane_test

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/virtual-disk-array/vda/dataplane"
	"github.com/virtual-disk-array/vda/dataplane/dataplanetest"
	"github.com/virtual-disk-array/vda/spdk"
	"github.com/virtual-disk-array/vda/spdk/model"
)

// startModel runs a data plane with model configuration mc until the test
// ends.
func startModel(t *testing.T, mc model.Config) (*dataplane.DataPlane, *spdk.Client) {
	t.Helper()
	s := dataplanetest.Start(t, dataplane.Config{Model: mc})
	return s.DataPlane, s.Client
}

const (
	hostB    = "nqn.2014-08.org.nvmexpress:uuid:0b0b0b0b-0000-4000-8000-00000000000b"
	attachMB = 8
)

// exportMalloc makes, on a, malloc bdev bdev (uuid u), subsystem nqn with
// it as namespace 1, listeners on ports, and host as its only host.
func exportMalloc(t *testing.T, c *spdk.Client, bdev, u, nqn, host string, ana bool, ports ...string) {
	t.Helper()
	ctx := context.Background()
	_, err := c.BdevMallocCreate(ctx, spdk.BdevMallocCreateRequest{Name: bdev, NumBlocks: attachMB << 11, BlockSize: 512,
		UUID: u})
	require.NoError(t, err)
	require.NoError(t, c.NvmfCreateSubsystem(ctx, spdk.NvmfCreateSubsystemRequest{NQN: nqn, AnaReporting: ana}))
	_, err = c.NvmfSubsystemAddNs(ctx, spdk.NvmfSubsystemAddNsRequest{NQN: nqn,
		Namespace: spdk.NamespaceParams{BdevName: bdev}})
	require.NoError(t, err)
	for _, p := range ports {
		require.NoError(t, c.NvmfSubsystemAddListener(ctx, spdk.NvmfSubsystemAddListenerRequest{NQN: nqn,
			ListenAddress: tcp(p)}))
	}
	require.NoError(t, c.NvmfSubsystemAddHost(ctx, nqn, host))
}

func intp(v int) *int { return &v }

// writeRead writes a pattern at off on b's bdev and reads it back from
// a's bdev.
func writeRead(t *testing.T, b, a *dataplane.DataPlane, bBdev, aBdev string, off uint64, fill byte) {
	t.Helper()
	ctx := context.Background()
	nb, err := b.Target.Open(bBdev)
	require.NoError(t, err)
	p := bytes.Repeat([]byte{fill}, 64<<10)
	require.NoError(t, nb.WriteAt(ctx, p, off))
	require.NoError(t, nb.Flush(ctx))
	ma, err := a.Target.Open(aBdev)
	require.NoError(t, err)
	got := make([]byte, len(p))
	require.NoError(t, ma.ReadAt(ctx, got, off))
	require.Equal(t, p, got, "the write through B's NVMe bdev is in A's malloc bdev")
	require.NoError(t, nb.ReadAt(ctx, got, off))
	require.Equal(t, p, got, "and reads back through B")
}

// TestAttachTCP: data plane B attaches over real NVMe/TCP sockets to
// subsystems of data plane A: the bdev has the namespace's size and uuid,
// data goes through; a host A does not allow cannot attach; A's
// remove_host cuts B off; a listener that goes away and comes back within
// ctrlr_loss_timeout_sec is reconnected, one away longer loses the
// controller and its bdev; with fast_io_fail_timeout_sec I/O fails after
// it while the controller waits for its target; two listeners are one bdev
// with two paths in their ANA states (changes after the connect seen), and
// I/O goes on over the second when the first goes.
func TestAttachTCP(t *testing.T) {
	a, ca := startModel(t, model.Config{})
	b, cb := startModel(t, model.Config{HostNQN: hostB})
	ctx := context.Background()
	require.NoError(t, ca.NvmfCreateTransport(ctx, spdk.NvmfCreateTransportRequest{Trtype: "TCP"}))

	const (
		nqn = "nqn.2016-06.io.vda:attach"
		u1  = "11111111-2222-4333-8444-555555555555"
	)
	p1 := freePort(t)
	exportMalloc(t, ca, "m1", u1, nqn, hostB, false, p1)

	t.Run("disallowed host", func(t *testing.T) {
		_, err := cb.BdevNvmeAttachController(ctx, spdk.BdevNvmeAttachControllerRequest{Name: "bad", Trtype: "tcp",
			Adrfam: "ipv4", Traddr: "127.0.0.1", Trsvcid: p1, Subnqn: nqn, Hostnqn: "nqn.2014-08.org.example:other"})
		var se *spdk.Error
		require.ErrorAs(t, err, &se)
		assert.Equal(t, -5, se.Code)
		assert.Equal(t, "Input/output error", se.Message)
		_, err = cb.BdevNvmeAttachController(ctx, spdk.BdevNvmeAttachControllerRequest{Name: "bad", Trtype: "tcp",
			Traddr: "127.0.0.1", Trsvcid: freePort(t), Subnqn: nqn})
		require.ErrorAs(t, err, &se, "nothing listens there")
		assert.Equal(t, -5, se.Code)
	})

	names, err := cb.BdevNvmeAttachController(ctx, spdk.BdevNvmeAttachControllerRequest{Name: "nv", Trtype: "tcp",
		Adrfam: "ipv4", Traddr: "127.0.0.1", Trsvcid: p1, Subnqn: nqn, Hdgst: true, Ddgst: true,
		CtrlrLossTimeoutSec: intp(3), ReconnectDelaySec: intp(1)})
	require.NoError(t, err)
	require.Equal(t, []string{"nvn1"}, names)
	bd, err := cb.BdevGetBdev(ctx, "nvn1")
	require.NoError(t, err)
	assert.Equal(t, uint32(512), bd.BlockSize)
	assert.Equal(t, uint64(attachMB<<11), bd.NumBlocks)
	assert.Equal(t, u1, bd.UUID)
	require.Len(t, bd.DriverSpecific.Nvme, 1)
	assert.Equal(t, nqn, bd.DriverSpecific.Nvme[0].CtrlrData.Subnqn)
	writeRead(t, b, a, "nvn1", "m1", 1<<20, 0x11)

	ctrlrState := func(name string) []string {
		cs, err := cb.BdevNvmeGetControllers(ctx, "")
		require.NoError(t, err)
		var states []string
		for _, c := range cs {
			if c.Name == name {
				for _, p := range c.Ctrlrs {
					states = append(states, p.State)
				}
			}
		}
		return states
	}
	assert.Equal(t, []string{"enabled"}, ctrlrState("nv"))

	t.Run("listener back within ctrlr_loss_timeout_sec", func(t *testing.T) {
		require.NoError(t, ca.NvmfSubsystemRemoveListener(ctx, nqn, tcp(p1)))
		require.Eventually(t, func() bool {
			s := ctrlrState("nv")
			return len(s) == 1 && s[0] == "reconnect_is_delayed"
		}, 5*time.Second, 10*time.Millisecond)
		// I/O issued now waits for the reconnect (fast_io_fail 0: up to
		// the controller loss).
		nb, err := b.Target.Open("nvn1")
		require.NoError(t, err)
		done := make(chan error, 1)
		go func() { done <- nb.WriteAt(ctx, bytes.Repeat([]byte{0x22}, 4096), 0) }()
		time.Sleep(300 * time.Millisecond)
		require.NoError(t, ca.NvmfSubsystemAddListener(ctx, spdk.NvmfSubsystemAddListenerRequest{NQN: nqn,
			ListenAddress: tcp(p1)}))
		select {
		case err := <-done:
			require.NoError(t, err, "the I/O waited for the reconnect")
		case <-time.After(5 * time.Second):
			t.Fatal("the I/O did not complete after the reconnect")
		}
		assert.Equal(t, []string{"enabled"}, ctrlrState("nv"))
		writeRead(t, b, a, "nvn1", "m1", 2<<20, 0x33)
	})

	t.Run("listener away past ctrlr_loss_timeout_sec", func(t *testing.T) {
		require.NoError(t, ca.NvmfSubsystemRemoveListener(ctx, nqn, tcp(p1)))
		start := time.Now()
		require.Eventually(t, func() bool { return len(ctrlrState("nv")) == 0 }, 8*time.Second, 50*time.Millisecond)
		assert.GreaterOrEqual(t, time.Since(start), 2*time.Second, "deleted after ctrlr_loss_timeout_sec (3 s)")
		_, err := cb.BdevGetBdev(ctx, "nvn1")
		assert.Error(t, err, "the bdev went with its controller")
		require.NoError(t, ca.NvmfSubsystemAddListener(ctx, spdk.NvmfSubsystemAddListenerRequest{NQN: nqn,
			ListenAddress: tcp(p1)}))
	})

	t.Run("fast_io_fail_timeout_sec", func(t *testing.T) {
		_, err := cb.BdevNvmeAttachController(ctx, spdk.BdevNvmeAttachControllerRequest{Name: "ff", Trtype: "tcp",
			Traddr: "127.0.0.1", Trsvcid: p1, Subnqn: nqn, CtrlrLossTimeoutSec: intp(10), ReconnectDelaySec: intp(1),
			FastIOFailTimeoutSec: intp(1)})
		require.NoError(t, err)
		nb, err := b.Target.Open("ffn1")
		require.NoError(t, err)
		require.NoError(t, ca.NvmfSubsystemRemoveListener(ctx, nqn, tcp(p1)))
		start := time.Now()
		err = nb.WriteAt(ctx, make([]byte, 4096), 0)
		assert.ErrorIs(t, err, model.ErrPathDown, "I/O fails after fast_io_fail_timeout_sec")
		assert.GreaterOrEqual(t, time.Since(start), 500*time.Millisecond)
		assert.Less(t, time.Since(start), 5*time.Second)
		assert.Equal(t, []string{"reconnect_is_delayed"}, ctrlrState("ff"), "the controller stays")
		require.NoError(t, ca.NvmfSubsystemAddListener(ctx, spdk.NvmfSubsystemAddListenerRequest{NQN: nqn,
			ListenAddress: tcp(p1)}))
		require.Eventually(t, func() bool {
			s := ctrlrState("ff")
			return len(s) == 1 && s[0] == "enabled"
		}, 5*time.Second, 20*time.Millisecond)
		writeRead(t, b, a, "ffn1", "m1", 4<<20, 0x88)
		require.NoError(t, cb.BdevNvmeDetachController(ctx, spdk.BdevNvmeDetachControllerRequest{Name: "ff"}))
	})

	t.Run("fence", func(t *testing.T) {
		_, err := cb.BdevNvmeAttachController(ctx, spdk.BdevNvmeAttachControllerRequest{Name: "fz", Trtype: "tcp",
			Traddr: "127.0.0.1", Trsvcid: p1, Subnqn: nqn})
		require.NoError(t, err)
		writeRead(t, b, a, "fzn1", "m1", 3<<20, 0x44)
		nb, err := b.Target.Open("fzn1")
		require.NoError(t, err)
		require.NoError(t, ca.NvmfSubsystemRemoveHost(ctx, nqn, hostB))
		// The path is down, or already deleted with its bdev (the loss was
		// seen and ctrlr_loss_timeout_sec is 0).
		err = nb.WriteAt(ctx, make([]byte, 4096), 0)
		assert.True(t, errors.Is(err, model.ErrPathDown) || errors.Is(err, model.ErrNoBdev),
			"the fenced host cannot write: %v", err)
		require.Eventually(t, func() bool { return len(ctrlrState("fz")) == 0 }, 5*time.Second, 10*time.Millisecond,
			"ctrlr_loss_timeout_sec 0: the controller goes at once")
		require.NoError(t, ca.NvmfSubsystemAddHost(ctx, nqn, hostB))
	})

	t.Run("multipath", func(t *testing.T) {
		const (
			mnqn = "nqn.2016-06.io.vda:attach-mp"
			u2   = "22222222-2222-4333-8444-555555555555"
		)
		p2, p3 := freePort(t), freePort(t)
		exportMalloc(t, ca, "m2", u2, mnqn, hostB, true, p2, p3)
		require.NoError(t, ca.NvmfSubsystemListenerSetAnaState(ctx, spdk.NvmfSubsystemListenerSetAnaStateRequest{
			NQN: mnqn, ListenAddress: tcp(p2), AnaState: "non_optimized"}))
		for _, p := range []string{p2, p3} {
			names, err := cb.BdevNvmeAttachController(ctx, spdk.BdevNvmeAttachControllerRequest{Name: "mp",
				Trtype: "tcp", Traddr: "127.0.0.1", Trsvcid: p, Subnqn: mnqn, Multipath: "multipath"})
			require.NoError(t, err)
			require.Equal(t, []string{"mpn1"}, names)
		}
		assert.Equal(t, []string{"enabled", "enabled"}, ctrlrState("mp"))
		bd, err := cb.BdevGetBdev(ctx, "mpn1")
		require.NoError(t, err)
		require.Len(t, bd.DriverSpecific.Nvme, 2)
		states := map[string]string{}
		cntlids := map[int]bool{}
		for _, p := range bd.DriverSpecific.Nvme {
			states[p.Trid.Trsvcid] = p.NsData.AnaState
			cntlids[p.CtrlrData.Cntlid] = true
			assert.True(t, p.CtrlrData.AnaReporting)
		}
		assert.Equal(t, map[string]string{p2: "non_optimized", p3: "optimized"}, states)
		assert.Len(t, cntlids, 2, "two controllers")
		writeRead(t, b, a, "mpn1", "m2", 0, 0x55)

		// An ANA change after the connect reaches B (by the target's
		// notice, or the initiator's re-read): an inaccessible path
		// takes no I/O, the non-optimized one does.
		anaOf := func(port string) string {
			bd, err := cb.BdevGetBdev(ctx, "mpn1")
			require.NoError(t, err)
			for _, p := range bd.DriverSpecific.Nvme {
				if p.Trid.Trsvcid == port {
					return p.NsData.AnaState
				}
			}
			return ""
		}
		for _, st := range []string{"inaccessible", "optimized"} {
			require.NoError(t, ca.NvmfSubsystemListenerSetAnaState(ctx, spdk.NvmfSubsystemListenerSetAnaStateRequest{
				NQN: mnqn, ListenAddress: tcp(p3), AnaState: st}))
			require.Eventually(t, func() bool { return anaOf(p3) == st }, 5*time.Second, 20*time.Millisecond,
				"B sees p3 %s", st)
			writeRead(t, b, a, "mpn1", "m2", 2<<20, 0x77)
		}

		// Cut the optimized path: the I/O goes on over the non-optimized
		// one.
		require.NoError(t, ca.NvmfSubsystemRemoveListener(ctx, mnqn, tcp(p3)))
		writeRead(t, b, a, "mpn1", "m2", 1<<20, 0x66)
		require.Eventually(t, func() bool {
			s := ctrlrState("mp")
			return len(s) == 1 && s[0] == "enabled"
		}, 5*time.Second, 10*time.Millisecond, "the cut path goes (ctrlr_loss_timeout_sec 0)")
	})
}
