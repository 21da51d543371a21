package store_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/virtual-disk-array/vda"
	"github.com/virtual-disk-array/vda/store"
	"github.com/virtual-disk-array/vda/store/storetest"
)

func TestMonitorNodesAndFailNode(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		t.Parallel()
		dn := store.DN{NodeSpec: nodeSpec("d")}
		dn.HashCode = 10
		cn := store.CN{NodeSpec: nodeSpec("c")}
		cn.HashCode = 20
		mustUpdate(t, db, func(ctx context.Context, tx *store.Tx) error {
			if err := tx.InsertDN(ctx, &dn); err != nil {
				return err
			}
			return tx.InsertCN(ctx, &cn)
		})
		nodes := func(lo, hi uint64) []store.MonitorNode {
			return view(t, db, func(ctx context.Context, tx *store.Tx) ([]store.MonitorNode, error) {
				return tx.MonitorNodes(ctx, lo, hi)
			})
		}
		all := nodes(0, 0)
		require.Len(t, all, 2)
		byName := map[string]store.MonitorNode{}
		for _, n := range all {
			byName[n.Name] = n
		}
		assert.False(t, byName["d"].CN)
		assert.True(t, byName["c"].CN)
		assert.Equal(t, string(cn.ID), byName["c"].ID)
		assert.Equal(t, cn.AgentAddr, byName["c"].AgentAddr)
		assert.Equal(t, cn.Generation, byName["c"].Generation)
		assert.Equal(t, store.HealthUnknown, byName["c"].Status.Health)
		assert.Len(t, nodes(0, 11), 1, "hash 10 in [0, 11)")
		assert.Len(t, nodes(11, 20), 0, "hash 20 not in [11, 20)")
		assert.Len(t, nodes(20, 0), 1)

		at := time.UnixMilli(1_700_000_000_000).UTC()
		fail := func(id string) (bool, error) {
			var changed bool
			err := db.Update(t.Context(), func(ctx context.Context, tx *store.Tx) (err error) {
				changed, err = tx.FailNode(ctx, id, "3 heartbeats missed", at)
				return err
			})
			return changed, err
		}
		changed, err := fail(string(cn.ID))
		require.NoError(t, err)
		assert.True(t, changed)
		changed, err = fail(string(cn.ID))
		require.NoError(t, err)
		assert.False(t, changed, "a second monitor finds it failed already")
		_, err = fail("0123456789abcdef")
		assert.ErrorIs(t, err, vda.ErrNotFound)

		st := view(t, db, func(ctx context.Context, tx *store.Tx) (store.NodeStatus, error) { return tx.CNStatus(ctx, cn.ID) })
		assert.Equal(t, store.HealthFailed, st.Health)
		assert.Equal(t, "3 heartbeats missed", st.Error)
		assert.Equal(t, at, st.ReportedAt)

		// A report of an older generation does not revive it; one of the
		// current generation does.
		mustUpdate(t, db, func(ctx context.Context, tx *store.Tx) error { return tx.BumpNode(ctx, string(cn.ID)) })
		err = once(t, db, func(ctx context.Context, tx *store.Tx) error {
			return tx.PutCNStatus(ctx, cn.ID, store.NodeStatus{Health: store.HealthOK, Generation: cn.Generation, AppliedGeneration: cn.Generation})
		})
		assert.ErrorIs(t, err, vda.ErrStaleGeneration)
		mustUpdate(t, db, func(ctx context.Context, tx *store.Tx) error {
			return tx.PutCNStatus(ctx, cn.ID, store.NodeStatus{Health: store.HealthOK, Generation: cn.Generation + 1, AppliedGeneration: cn.Generation + 1})
		})
		assert.Equal(t, store.HealthOK, nodes(20, 0)[0].Status.Health)
		assert.Equal(t, cn.Generation+1, nodes(20, 0)[0].Generation)
	})
}

func TestNodeEvents(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		t.Parallel()
		cn := insertCN(t, db, "c")
		t0 := time.UnixMilli(1_700_000_000_000).UTC()
		long := strings.Repeat("é", 1000) // 2,000 bytes
		for i, e := range []store.NodeEvent{
			{From: "unknown", To: "alive", Reason: "answers"},
			{From: "alive", To: "suspect", Reason: "heartbeat missed"},
			{From: "suspect", To: "failed", Reason: long},
		} {
			e.NodeID, e.At, e.Monitor = string(cn.ID), t0.Add(time.Duration(i)*time.Second), "m1"
			mustUpdate(t, db, func(ctx context.Context, tx *store.Tx) error { return tx.AddNodeEvent(ctx, e) })
		}
		events := func(limit int) []store.NodeEvent {
			return view(t, db, func(ctx context.Context, tx *store.Tx) ([]store.NodeEvent, error) {
				return tx.NodeEvents(ctx, string(cn.ID), limit)
			})
		}
		got := events(0)
		require.Len(t, got, 3)
		assert.Equal(t, "failed", got[0].To, "newest first")
		assert.Equal(t, t0.Add(2*time.Second), got[0].At)
		assert.Equal(t, "m1", got[0].Monitor)
		assert.LessOrEqual(t, len(got[0].Reason), 1024)
		assert.True(t, strings.HasPrefix(long, got[0].Reason), "cut, still valid UTF-8")
		assert.Equal(t, "answers", got[2].Reason)
		assert.Len(t, events(2), 2)

		mustUpdate(t, db, func(ctx context.Context, tx *store.Tx) error { return tx.DeleteCN(ctx, cn) })
		assert.Empty(t, events(0), "a node's log goes with it")
	})
}

func TestFailoverWrites(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		t.Parallel()
		d := insertDNAt(t, db, "d", "10.0.1.1")
		p := insertPD(t, db, d.ID, "p")
		c1, c2, c3 := insertCNAt(t, db, "c1", "10.0.2.1"), insertCNAt(t, db, "c2", "10.0.2.2"), insertCNAt(t, db, "c3", "10.0.2.3")
		a := insertArray(t, db, "a", []store.VD{{Index: 0, DNID: d.ID, PDID: p.ID, Size: vda.GiB}},
			[]store.Cntlr{{Index: 0, CNID: c1.ID, Primary: true}, {Index: 1, CNID: c2.ID}})
		var dns, cns []string
		mustUpdate(t, db, func(ctx context.Context, tx *store.Tx) (err error) {
			dns, cns, err = tx.Reshape(ctx, a.da.ID, a.cntlrs[1].ID, map[vda.CntlrID]vda.CNID{a.cntlrs[0].ID: c3.ID})
			if err != nil {
				return err
			}
			return tx.BumpNode(ctx, string(d.ID))
		})
		assert.Equal(t, []string{string(d.ID)}, dns)
		want := []string{string(c1.ID), string(c2.ID), string(c3.ID)}
		slices.Sort(want)
		assert.Equal(t, want, cns, "the cns before and after the move")
		_, err := viewErr(t, db, func(ctx context.Context, tx *store.Tx) (struct{}, error) {
			_, _, err := tx.Reshape(ctx, a.da.ID, "0123456789abcdef", nil)
			return struct{}{}, err
		})
		assert.ErrorIs(t, err, vda.ErrNotFound, "a controller of another array")
		got := cntlrsOf(t, db, a.da.ID)
		require.Len(t, got, 2)
		for _, c := range got {
			switch c.ID {
			case a.cntlrs[0].ID:
				assert.False(t, c.Primary)
				assert.Equal(t, c3.ID, c.CNID)
			case a.cntlrs[1].ID:
				assert.True(t, c.Primary)
				assert.Equal(t, c2.ID, c.CNID)
			}
		}
		assert.Equal(t, a.da.Generation+1, getDA(t, db, a.da.ID).Generation)
		st := dnState(t, db, d.ID)
		assert.Equal(t, d.Generation+1, st.DN.Generation)
		require.Len(t, st.VDs, 1)
		assert.Equal(t, a.cntlrs[1].ID, st.VDs[0].PrimaryCntlrID, "the fence follows the primary")

		for _, err := range []error{
			once(t, db, func(ctx context.Context, tx *store.Tx) error {
				return tx.SetPrimary(ctx, "0123456789abcdef", a.cntlrs[0].ID)
			}),
			once(t, db, func(ctx context.Context, tx *store.Tx) error { return tx.MoveCntlr(ctx, "0123456789abcdef", c1.ID) }),
			once(t, db, func(ctx context.Context, tx *store.Tx) error { return tx.BumpNode(ctx, "0123456789abcdef") }),
			once(t, db, func(ctx context.Context, tx *store.Tx) error { return tx.BumpDA(ctx, "0123456789abcdef") }),
		} {
			assert.ErrorIs(t, err, vda.ErrNotFound)
		}
	})
}
