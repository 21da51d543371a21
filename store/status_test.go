package store_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/virtual-disk-array/vda"
	"github.com/virtual-disk-array/vda/store"
	"github.com/virtual-disk-array/vda/store/storetest"
)

// putNodeStatus runs one status write in its own Update and returns its
// error and how often Update ran it.
func putNodeStatus(t *testing.T, db *store.DB, api nodeAPI, id string, st store.NodeStatus) (int, error) {
	t.Helper()
	calls := 0
	err := db.Update(t.Context(), func(ctx context.Context, tx *store.Tx) error {
		calls++
		return api.put(ctx, tx, id, st)
	})
	return calls, err
}

func TestNodeStatusGenerations(t *testing.T) {
	t.Parallel()
	eachNodeKind(t, func(t *testing.T, db *store.DB, api nodeAPI) {
		n := api.mustInsert(t, db, nodeSpec("n"))
		status := func() store.NodeStatus {
			return view(t, db, func(ctx context.Context, tx *store.Tx) (store.NodeStatus, error) { return api.status(ctx, tx, n.id) })
		}
		at := time.UnixMilli(1_700_000_000_000).UTC()

		// A report about the current generation applies and changes no
		// desired state.
		st1 := store.NodeStatus{Health: store.HealthOK, Generation: 1, AppliedGeneration: 1, ReportedAt: at}
		for range 2 { // the same report twice is fine
			calls, err := putNodeStatus(t, db, api, n.id, st1)
			require.NoError(t, err)
			assert.Equal(t, 1, calls)
		}
		assert.Equal(t, st1, status())
		assert.Equal(t, n, api.mustGet(t, db, n.id), "a status write leaves the node alone")

		// The node moves on; a late report about generation 1 is refused.
		mustUpdate(t, db, func(ctx context.Context, tx *store.Tx) error {
			_, err := api.touch(ctx, tx, n.id, 1)
			return err
		})
		late := store.NodeStatus{Health: store.HealthError, Error: "late", Generation: 1, AppliedGeneration: 1, ReportedAt: at.Add(time.Second)}
		calls, err := putNodeStatus(t, db, api, n.id, late)
		require.Error(t, err)
		assert.ErrorIs(t, err, vda.ErrStaleGeneration)
		assert.NotErrorIs(t, err, store.ErrConflict, "a stale report is not a transaction conflict")
		assert.Equal(t, 1, calls, "and Update does not retry it")
		assert.Equal(t, st1, status(), "a refused report changes nothing")

		// A report about the new generation applies.
		st2 := store.NodeStatus{Health: store.HealthError, Error: "bdev failed — ✗", Generation: 2, AppliedGeneration: 1, ReportedAt: at.Add(2 * time.Second)}
		_, err = putNodeStatus(t, db, api, n.id, st2)
		require.NoError(t, err)
		assert.Equal(t, st2, status())
		assert.Equal(t, uint64(2), api.mustGet(t, db, n.id).Generation)

		tests := []struct {
			name string
			gen  uint64
		}{
			{"older than the stored report", 1},
			{"ahead of the node", 3},
			{"zero", 0},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				st := store.NodeStatus{Health: store.HealthFailed, Generation: tt.gen, AppliedGeneration: tt.gen, ReportedAt: at.Add(time.Hour)}
				_, err := putNodeStatus(t, db, api, n.id, st)
				assert.ErrorIs(t, err, vda.ErrStaleGeneration)
				assert.Equal(t, st2, status())
			})
		}

		_, err = putNodeStatus(t, db, api, missingID(1), st1)
		assert.ErrorIs(t, err, vda.ErrNotFound, "a missing node")
		_, err = viewErr(t, db, func(ctx context.Context, tx *store.Tx) (store.NodeStatus, error) {
			return api.status(ctx, tx, missingID(1))
		})
		assert.ErrorIs(t, err, vda.ErrNotFound)

		// A change and a report in one transaction: the report must name
		// the generation the change left.
		t.Run("after an update in the same transaction", func(t *testing.T) {
			cur := api.mustGet(t, db, n.id)
			err := once(t, db, func(ctx context.Context, tx *store.Tx) error {
				c := cur
				c.Location = "moved"
				if err := api.update(ctx, tx, &c); err != nil {
					return err
				}
				return api.put(ctx, tx, n.id, store.NodeStatus{Health: store.HealthOK, Generation: cur.Generation})
			})
			assert.ErrorIs(t, err, vda.ErrStaleGeneration)
			assert.Equal(t, cur, api.mustGet(t, db, n.id), "the whole transaction rolled back")
			assert.Equal(t, st2, status())
		})
	})
}

func TestStatusMaps(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		t.Parallel()
		nodeStatuses := func() map[string]store.NodeStatus {
			return view(t, db, func(ctx context.Context, tx *store.Tx) (map[string]store.NodeStatus, error) {
				return tx.NodeStatuses(ctx)
			})
		}
		pdStatuses := func() map[vda.PDID]store.PDStatus {
			return view(t, db, func(ctx context.Context, tx *store.Tx) (map[vda.PDID]store.PDStatus, error) {
				return tx.PDStatuses(ctx)
			})
		}
		assert.Empty(t, nodeStatuses())
		assert.Empty(t, pdStatuses())

		dn, cn := insertDN(t, db, "dn"), insertCN(t, db, "cn")
		gone := insertDN(t, db, "gone")
		pd := insertPD(t, db, dn.ID, "pd")
		other := insertPD(t, db, dn.ID, "other")
		mustUpdate(t, db, func(ctx context.Context, tx *store.Tx) error { return tx.DeleteDN(ctx, gone) })

		at := time.UnixMilli(1_700_000_000_456).UTC()
		st := store.PDStatus{Health: store.HealthOK, ReportedAt: at, Capacity: 60 * vda.GiB, Free: 1 << 40}
		for range 2 { // the same report twice is fine
			mustUpdate(t, db, func(ctx context.Context, tx *store.Tx) error { return tx.PutPDStatus(ctx, pd.ID, st) })
		}
		got := view(t, db, func(ctx context.Context, tx *store.Tx) (store.PDStatus, error) { return tx.PDStatus(ctx, pd.ID) })
		assert.Equal(t, st, got)
		assert.Equal(t, pd, getPD(t, db, pd.ID), "a status write leaves the pd's generation")
		err := db.Update(t.Context(), func(ctx context.Context, tx *store.Tx) error {
			return tx.PutPDStatus(ctx, vda.PDID(missingID(1)), st)
		})
		assert.ErrorIs(t, err, vda.ErrNotFound)

		failed := store.NodeStatus{Health: store.HealthFailed, Error: "no heartbeat", Generation: 1, ReportedAt: at}
		mustUpdate(t, db, func(ctx context.Context, tx *store.Tx) error { return tx.PutCNStatus(ctx, cn.ID, failed) })

		assert.Equal(t, map[string]store.NodeStatus{
			string(dn.ID): {Health: store.HealthUnknown},
			string(cn.ID): failed,
		}, nodeStatuses())
		assert.Equal(t, map[vda.PDID]store.PDStatus{pd.ID: st, other.ID: {Health: store.HealthUnknown}}, pdStatuses())
	})
}
