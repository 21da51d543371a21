package monitor_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/virtual-disk-array/vda"
	vdav1 "github.com/virtual-disk-array/vda/proto/vda/v1"
	"github.com/virtual-disk-array/vda/spdk"
	"github.com/virtual-disk-array/vda/store"
	"github.com/virtual-disk-array/vda/store/storetest"
)

const host1 = "nqn.2014-08.org.example:host1"

// createArray creates da1: 2 vds, 2 controllers, one exporter, converged.
func (l *lab) createArray() *vdav1.Da {
	ctx := context.Background()
	_, err := l.svc.CreateDa(ctx, connect.NewRequest(&vdav1.CreateDaRequest{
		Name: "da1", Size: 64 << 20, Raid: &vdav1.CreateDaRequest_Raid0{Raid0: &vdav1.Raid0{VdCount: 2}}, CntlrCount: 2,
	}))
	require.NoError(l.t, err)
	_, err = l.svc.CreateExp(ctx, connect.NewRequest(&vdav1.CreateExpRequest{DaName: "da1", Name: "exp1", HostNqn: host1}))
	require.NoError(l.t, err)
	da := l.da("da1")
	require.Equal(l.t, vdav1.Health_HEALTH_OK, da.GetHealth(), "%v", da)
	return da
}

// fencedTo checks that every vd of da allows exactly the controller's
// host NQN on its dn.
func (l *lab) fencedTo(da *vdav1.Da, cntlr string) error {
	for _, vd := range da.GetVds() {
		s, err := l.subsystem(vd.GetDnName(), vda.VDNQN(vda.VDID(vd.GetId())))
		if err != nil {
			return err
		}
		if want := []string{vda.CntlrHostNQN(vda.CntlrID(cntlr))}; !slices.Equal(hostsOf(s), want) {
			return notYet("vd %d allows %v, want %v", vd.GetIndex(), hostsOf(s), want)
		}
	}
	return nil
}

// TestFailover kills the cn of an array's primary: after the miss
// threshold the secondary is primary, every vd's fence names it, it
// exports the raid; the dead cn's controller stays the array's, and when
// the cn comes back it converges into a secondary of the new primary. The
// failed cn's event log tells the story.
func TestFailover(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		l := newLab(t, db, 2, 2)
		da := l.createArray()
		old := primaryOf(da)
		require.NotNil(t, old)
		require.NoError(t, l.fencedTo(da, old.GetId()))
		var survivor *vdav1.Cntlr
		for _, c := range da.GetCntlrs() {
			if c.GetId() != old.GetId() {
				survivor = c
			}
		}
		l.monitor("m1")
		time.Sleep(200 * time.Millisecond) // a few healthy rounds first

		killed := time.Now()
		l.kill(old.GetCnName())
		var now *vdav1.Da
		eventually(t, 10*time.Second, func() error {
			now = l.da("da1")
			p := primaryOf(now)
			if p == nil || p.GetId() != survivor.GetId() {
				return notYet("primary is %v", p)
			}
			if err := l.converged(survivor.GetCnName()); err != nil {
				return err
			}
			if p.GetStatus().GetHealth() != vdav1.Health_HEALTH_OK {
				return notYet("new primary: %v", p.GetStatus())
			}
			return l.fencedTo(now, survivor.GetId())
		})
		t.Logf("failed over in %s", time.Since(killed).Round(time.Millisecond))
		assert.Len(t, now.GetCntlrs(), 2, "the dead cn's controller stays the array's")

		// The new primary exports the raid, optimized, to the exporter.
		s, err := l.subsystem(survivor.GetCnName(), vda.ArrayNQN(vda.DAID(da.GetId())))
		require.NoError(t, err)
		assert.Equal(t, vda.RaidName(vda.DAID(da.GetId())), nsBdev(s))
		assert.Contains(t, hostsOf(s), host1)

		events := l.events(old.GetCnName())
		require.NotEmpty(t, events)
		var tos []string
		for _, e := range events {
			tos = append(tos, e.To)
			assert.Equal(t, "m1", e.Monitor)
		}
		assert.Contains(t, tos, "suspect")
		assert.Contains(t, tos, "failed")
		assert.Contains(t, tos, "failover")

		// The dead cn comes back, empty, at its address: it becomes a
		// secondary of the new primary.
		l.revive(old.GetCnName())
		eventually(t, 10*time.Second, func() error {
			s, err := l.subsystem(old.GetCnName(), vda.ArrayNQN(vda.DAID(da.GetId())))
			if err != nil {
				return err
			}
			if want := vda.PrimaryCtrlrName(vda.CntlrID(survivor.GetId())) + "n1"; nsBdev(s) != want {
				return notYet("old primary's cn exports %q, want %q", nsBdev(s), want)
			}
			for _, c := range l.da("da1").GetCntlrs() {
				if c.GetStatus().GetHealth() != vdav1.Health_HEALTH_OK {
					return notYet("cntlr %d: %v", c.GetIndex(), c.GetStatus())
				}
			}
			return nil
		})
		assert.Equal(t, vdav1.CntlrRole_CNTLR_ROLE_SECONDARY, roleOf(l.da("da1"), old.GetId()))
		eventually(t, 5*time.Second, func() error {
			for _, e := range l.events(old.GetCnName()) {
				if e.From == "failed" && e.To == "alive" {
					return nil
				}
			}
			return notYet("no failed → alive event")
		})
	})
}

// TestPartitionedPrimaryIsFenced: the old primary's agent is unreachable
// but its SPDK runs on, connected to the vds. Once the failover reaches
// the dns, they refuse it: its connections are cut and it cannot connect
// again, while the new primary can.
func TestPartitionedPrimaryIsFenced(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		l := newLab(t, db, 2, 2)
		da := l.createArray()
		old := primaryOf(da)
		l.monitor("m1")
		l.nodes[old.GetCnName()].stop() // agent gone, SPDK serving

		eventually(t, 10*time.Second, func() error {
			now := l.da("da1")
			if p := primaryOf(now); p.GetId() == old.GetId() {
				return notYet("primary still %s", p.GetId())
			}
			return l.fencedTo(now, primaryOf(now).GetId())
		})
		// The old primary's SPDK has lost its paths to the vds, and a new
		// attach with its host NQN is refused.
		oldSPDK := l.nodes[old.GetCnName()].fake.Client()
		ctx := context.Background()
		vd := da.GetVds()[0]
		eventually(t, 5*time.Second, func() error {
			ctrlrs, err := oldSPDK.BdevNvmeGetControllers(ctx, vda.VDCtrlrName(vda.VDID(vd.GetId())))
			if err != nil {
				return nil // detached: gone
			}
			for _, c := range ctrlrs {
				for _, p := range c.Ctrlrs {
					if p.State == "enabled" {
						return notYet("old primary still connected to vd 0")
					}
				}
			}
			return nil
		})
		dnPort := ""
		for _, n := range []string{"dn1", "dn2"} {
			if n == vd.GetDnName() {
				dn, err := l.svc.GetDn(ctx, connect.NewRequest(&vdav1.GetDnRequest{Name: n}))
				require.NoError(t, err)
				dnPort = dn.Msg.GetDn().GetListener().GetTrsvcid()
			}
		}
		_, err := oldSPDK.BdevNvmeAttachController(ctx, spdk.BdevNvmeAttachControllerRequest{
			Name: "probe", Trtype: "TCP", Adrfam: "IPv4", Traddr: "127.0.0.1", Trsvcid: dnPort,
			Subnqn: vda.VDNQN(vda.VDID(vd.GetId())), Hostnqn: vda.CntlrHostNQN(vda.CntlrID(old.GetId())),
		})
		require.Error(t, err, "the deposed primary must not reach its vds")
	})
}

func roleOf(da *vdav1.Da, id string) vdav1.CntlrRole {
	for _, c := range da.GetCntlrs() {
		if c.GetId() == id {
			return c.GetRole()
		}
	}
	return vdav1.CntlrRole_CNTLR_ROLE_UNSPECIFIED
}

// converged says whether node name reported its current generation
// applied without error.
func (l *lab) converged(name string) error {
	var nodes []store.MonitorNode
	require.NoError(l.t, l.db.View(context.Background(), func(ctx context.Context, tx *store.Tx) (err error) {
		nodes, err = tx.MonitorNodes(ctx, 0, 0)
		return err
	}))
	for _, n := range nodes {
		if n.Name != name {
			continue
		}
		if n.Status.Health != store.HealthOK || n.Status.AppliedGeneration != n.Generation {
			return notYet("%s: %s at %d of %d: %s", name, n.Status.Health, n.Status.AppliedGeneration, n.Generation, n.Status.Error)
		}
		return nil
	}
	return notYet("no node %s", name)
}

// events reads a node's event log from the store, oldest first.
func (l *lab) events(name string) []store.NodeEvent {
	var out []store.NodeEvent
	require.NoError(l.t, l.db.View(context.Background(), func(ctx context.Context, tx *store.Tx) error {
		cn, err := tx.CN(ctx, name)
		if err != nil {
			return err
		}
		out, err = tx.NodeEvents(ctx, string(cn.ID), 10000)
		return err
	}))
	slices.Reverse(out)
	return out
}

// TestManualChangePrimary: ModifyDa with primary_cntlr_id takes the
// failover's path with every node alive: the fences move, the new primary
// exports the raid, the old one becomes its secondary.
func TestManualChangePrimary(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		l := newLab(t, db, 2, 2)
		da := l.createArray()
		old := primaryOf(da)
		var next *vdav1.Cntlr
		for _, c := range da.GetCntlrs() {
			if c.GetId() != old.GetId() {
				next = c
			}
		}
		l.monitor("m1")
		id := next.GetId()
		_, err := l.svc.ModifyDa(context.Background(), connect.NewRequest(&vdav1.ModifyDaRequest{Name: "da1", PrimaryCntlrId: &id}))
		require.NoError(t, err)
		nqn := vda.ArrayNQN(vda.DAID(da.GetId()))
		eventually(t, 10*time.Second, func() error {
			if err := l.fencedTo(l.da("da1"), id); err != nil {
				return err
			}
			s, err := l.subsystem(next.GetCnName(), nqn)
			if err != nil {
				return err
			}
			if nsBdev(s) != vda.RaidName(vda.DAID(da.GetId())) {
				return notYet("new primary exports %q", nsBdev(s))
			}
			s, err = l.subsystem(old.GetCnName(), nqn)
			if err != nil {
				return err
			}
			if want := vda.PrimaryCtrlrName(vda.CntlrID(id)) + "n1"; nsBdev(s) != want {
				return notYet("old primary exports %q, want %q", nsBdev(s), want)
			}
			return nil
		})
		assert.Equal(t, vdav1.CntlrRole_CNTLR_ROLE_SECONDARY, roleOf(l.da("da1"), old.GetId()))
	})
}

// TestFailoverRepointsEverySecondary: an array of three controllers loses
// its primary's cn: one secondary becomes primary and the other re-points
// to it; no spare cn exists, so the dead one's controller stays.
func TestFailoverRepointsEverySecondary(t *testing.T) {
	l := newLab(t, storetest.Open(t, backendFor(t, store.SQLite)), 2, 3)
	ctx := context.Background()
	_, err := l.svc.CreateDa(ctx, connect.NewRequest(&vdav1.CreateDaRequest{
		Name: "da1", Size: 64 << 20, Raid: &vdav1.CreateDaRequest_Raid0{Raid0: &vdav1.Raid0{VdCount: 2}}, CntlrCount: 3,
	}))
	require.NoError(t, err)
	da := l.da("da1")
	require.Equal(t, vdav1.Health_HEALTH_OK, da.GetHealth(), "%v", da)
	old := primaryOf(da)
	l.monitor("m1")
	l.kill(old.GetCnName())

	nqn := vda.ArrayNQN(vda.DAID(da.GetId()))
	eventually(t, 10*time.Second, func() error {
		now := l.da("da1")
		p := primaryOf(now)
		if p.GetId() == old.GetId() {
			return notYet("not failed over")
		}
		if err := l.fencedTo(now, p.GetId()); err != nil {
			return err
		}
		for _, c := range now.GetCntlrs() {
			if c.GetId() == old.GetId() || c.GetId() == p.GetId() {
				continue
			}
			s, err := l.subsystem(c.GetCnName(), nqn)
			if err != nil {
				return err
			}
			if want := vda.PrimaryCtrlrName(vda.CntlrID(p.GetId())) + "n1"; nsBdev(s) != want {
				return notYet("secondary %s exports %q, want %q", c.GetId(), nsBdev(s), want)
			}
			if err := l.converged(c.GetCnName()); err != nil {
				return err
			}
		}
		s, err := l.subsystem(p.GetCnName(), nqn)
		if err != nil {
			return err
		}
		if !slices.Contains(hostsOf(s), vda.CntlrHostNQN(vda.CntlrID(old.GetId()))) {
			return notYet("the new primary does not allow the old one as its secondary: %v", hostsOf(s))
		}
		return nil
	})
	assert.Len(t, l.da("da1").GetCntlrs(), 3)
}

// TestFailoverRehomes: with a spare cn, the dead cn's controller moves
// there and serves as a secondary of the promoted one: the array is back
// to two healthy controllers.
func TestFailoverRehomes(t *testing.T) {
	l := newLab(t, storetest.Open(t, backendFor(t, store.SQLite)), 2, 3)
	da := l.createArray()
	old := primaryOf(da)
	used := map[string]bool{}
	for _, c := range da.GetCntlrs() {
		used[c.GetCnName()] = true
	}
	spare := ""
	for _, n := range []string{"cn1", "cn2", "cn3"} {
		if !used[n] {
			spare = n
		}
	}
	l.monitor("m1")
	l.kill(old.GetCnName())
	nqn := vda.ArrayNQN(vda.DAID(da.GetId()))
	eventually(t, 10*time.Second, func() error {
		now := l.da("da1")
		p := primaryOf(now)
		if p.GetId() == old.GetId() {
			return notYet("not failed over")
		}
		for _, c := range now.GetCntlrs() {
			if c.GetId() == old.GetId() && c.GetCnName() != spare {
				return notYet("old primary on %s, not re-homed to %s", c.GetCnName(), spare)
			}
		}
		s, err := l.subsystem(spare, nqn)
		if err != nil {
			return err
		}
		if want := vda.PrimaryCtrlrName(vda.CntlrID(p.GetId())) + "n1"; nsBdev(s) != want {
			return notYet("re-homed secondary exports %q, want %q", nsBdev(s), want)
		}
		return l.converged(spare)
	})
	assert.Equal(t, vdav1.CntlrRole_CNTLR_ROLE_SECONDARY, roleOf(l.da("da1"), old.GetId()))
}
