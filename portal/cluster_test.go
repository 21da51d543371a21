package portal_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"

	"github.com/virtual-disk-array/vda"
	vdav1 "github.com/virtual-disk-array/vda/proto/vda/v1"
	"github.com/virtual-disk-array/vda/store"
	"github.com/virtual-disk-array/vda/store/storetest"
)

// report records an agent's or the monitor's report through the store, as
// the monitor does; the portal only reads it.
func report(t *testing.T, db *store.DB, fn func(ctx context.Context, tx *store.Tx) error) {
	t.Helper()
	require.NoError(t, db.Update(t.Context(), fn))
}

func TestClusterSummary(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		c := start(t, db)

		t.Run("empty", func(t *testing.T) {
			assert.True(t, proto.Equal(&vdav1.ClusterSummary{}, summary(t, c)), "%v", summary(t, c))
		})

		mkDn(t, c, "d1", "a")
		mkDn(t, c, "d2", "b")
		mkPd(t, c, "d1", "p1", 1<<30)
		must(t, c.CreatePd, &vdav1.CreatePdRequest{DnName: "d1", Name: "p2", Backend: malloc(512 << 20), Offline: true})
		mkPd(t, c, "d2", "p1", 1<<30)
		must(t, c.CreatePd, &vdav1.CreatePdRequest{DnName: "d2", Name: "disk", Backend: aio("/dev/sdb")})
		mkCn(t, c, "c1", "")
		mkCn(t, c, "c2", "")
		mkDa(t, c, "a1", 100<<20, 2, 2)
		mkExp(t, c, "a1", "e1", hostNQN(1))
		mkExp(t, c, "a1", "e2", hostNQN(2))

		// check compares the summary with what the pds say.
		check := func(t *testing.T, offline map[string]bool) *vdav1.ClusterSummary {
			t.Helper()
			s := summary(t, c)
			assert.Equal(t, uint32(2), s.GetDnCount())
			assert.Equal(t, uint32(4), s.GetPdCount())
			assert.Equal(t, uint32(2), s.GetCnCount())
			assert.Equal(t, uint32(1), s.GetDaCount())
			assert.Equal(t, uint32(2), s.GetExpCount())
			assert.Equal(t, uint32(2), s.GetVdCount())
			assert.Equal(t, uint32(2), s.GetCntlrCount())
			var capacity, allocated, free, onlineFree uint64
			for key, pd := range pdsByDn(t, c, "d1", "d2") {
				capacity += pd.GetCapacity()
				allocated += pd.GetAllocated()
				free += pd.GetCapacity() - pd.GetAllocated()
				if !offline[key] {
					onlineFree += pd.GetCapacity() - pd.GetAllocated()
				}
			}
			assert.Equal(t, capacity, s.GetCapacity(), "capacity")
			assert.Equal(t, allocated, s.GetAllocated(), "allocated")
			assert.Equal(t, 2*vdSize(100<<20, 2), s.GetAllocated())
			assert.Equal(t, free, s.GetFree(), "free")
			assert.Equal(t, s.GetCapacity()-s.GetAllocated(), s.GetFree())
			assert.Equal(t, onlineFree, s.GetOnlineFree(), "online_free")
			return s
		}

		t.Run("capacity as estimated", func(t *testing.T) {
			s := check(t, map[string]bool{"d1/p2": true})
			want := 2*vda.EstimatedLvstoreCapacity(1<<30) + vda.EstimatedLvstoreCapacity(512<<20)
			assert.Equal(t, want, s.GetCapacity(), "an unreported aio pd has no capacity yet")
			assert.Empty(t, s.GetNodesInError())
		})

		t.Run("capacity as reported", func(t *testing.T) {
			report(t, db, func(ctx context.Context, tx *store.Tx) error {
				dn, err := tx.DN(ctx, "d2")
				if err != nil {
					return err
				}
				pd, err := tx.PD(ctx, dn.ID, "disk")
				if err != nil {
					return err
				}
				return tx.PutPDStatus(ctx, pd.ID, store.PDStatus{Health: store.HealthOK, Capacity: 10 << 30, Free: 10 << 30, ReportedAt: time.Now()})
			})
			pd := getPd(t, c, "d2", "disk")
			assert.Equal(t, uint64(10<<30), pd.GetCapacity())
			assert.Equal(t, uint64(10<<30), pd.GetStatus().GetCapacity())
			assert.Equal(t, vdav1.Health_HEALTH_OK, pd.GetStatus().GetHealth())
			s := check(t, map[string]bool{"d1/p2": true})
			assert.Equal(t, 2*vda.EstimatedLvstoreCapacity(1<<30)+vda.EstimatedLvstoreCapacity(512<<20)+10<<30, s.GetCapacity())
		})

		t.Run("nodes in error", func(t *testing.T) {
			report(t, db, func(ctx context.Context, tx *store.Tx) error {
				d2, err := tx.DN(ctx, "d2")
				if err != nil {
					return err
				}
				if err := tx.PutDNStatus(ctx, d2.ID, store.NodeStatus{Health: store.HealthError, Error: "disk gone", Generation: d2.Generation, ReportedAt: time.UnixMilli(1000)}); err != nil {
					return err
				}
				c2, err := tx.CN(ctx, "c2")
				if err != nil {
					return err
				}
				return tx.PutCNStatus(ctx, c2.ID, store.NodeStatus{Health: store.HealthFailed, Generation: c2.Generation, ReportedAt: time.UnixMilli(2000)})
			})
			// An erring dn is still online; a failed one is not.
			s := check(t, map[string]bool{"d1/p2": true})
			got := s.GetNodesInError()
			require.Len(t, got, 2)
			assert.Equal(t, []string{"cn", "dn"}, []string{got[0].GetKind(), got[1].GetKind()}, "cns first")
			assert.Equal(t, "c2", got[0].GetName())
			assert.Equal(t, vdav1.Health_HEALTH_FAILED, got[0].GetStatus().GetHealth())
			assert.Equal(t, int64(2000), got[0].GetStatus().GetReportedAtMs())
			assert.Equal(t, "d2", got[1].GetName())
			assert.Equal(t, vdav1.Health_HEALTH_ERROR, got[1].GetStatus().GetHealth())
			assert.Equal(t, "disk gone", got[1].GetStatus().GetError())
			assert.Equal(t, "disk gone", getDn(t, c, "d2").GetStatus().GetError())

			report(t, db, func(ctx context.Context, tx *store.Tx) error {
				d1, err := tx.DN(ctx, "d1")
				if err != nil {
					return err
				}
				return tx.PutDNStatus(ctx, d1.ID, store.NodeStatus{Health: store.HealthFailed, Generation: d1.Generation, ReportedAt: time.Now()})
			})
			s = check(t, map[string]bool{"d1/p1": true, "d1/p2": true})
			assert.Equal(t, []string{"c2", "d1", "d2"}, names(s.GetNodesInError()))
		})

		t.Run("an offline dn leaves online_free", func(t *testing.T) {
			must(t, c.ModifyDn, &vdav1.ModifyDnRequest{Name: "d2", Offline: ptr(true)})
			s := check(t, map[string]bool{"d1/p1": true, "d1/p2": true, "d2/p1": true, "d2/disk": true})
			assert.Zero(t, s.GetOnlineFree())
			assert.NotZero(t, s.GetFree())
		})
	})
}
