package store_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/virtual-disk-array/vda"
	"github.com/virtual-disk-array/vda/store"
	"github.com/virtual-disk-array/vda/store/storetest"
)

const (
	host1 = "nqn.2014-08.org.nvmexpress:uuid:5b7ad2a4-0f3e-4b58-9a52-0c4b2e9c1f01"
	host2 = "nqn.2016-06.io.example:host-2"
)

func insertBareDA(t *testing.T, db *store.DB, name string) store.DA {
	t.Helper()
	da := newDA(name)
	mustUpdate(t, db, func(ctx context.Context, tx *store.Tx) error { return tx.InsertDA(ctx, &da, nil, nil) })
	return da
}

func insertExp(t *testing.T, db *store.DB, da vda.DAID, name, host string) store.Exp {
	t.Helper()
	exp := store.Exp{DAID: da, Name: name, HostNQN: host, Description: "exporter " + name}
	mustUpdate(t, db, func(ctx context.Context, tx *store.Tx) error { return tx.InsertExp(ctx, &exp) })
	return exp
}

func getExp(t *testing.T, db *store.DB, da vda.DAID, name string) store.Exp {
	t.Helper()
	return view(t, db, func(ctx context.Context, tx *store.Tx) (store.Exp, error) { return tx.Exp(ctx, da, name) })
}

func TestExpInsertAndUniqueness(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		t.Parallel()
		da1, da2 := insertBareDA(t, db, "da1"), insertBareDA(t, db, "da2")
		first := insertExp(t, db, da1.ID, "exp", host1)

		tests := []struct {
			name       string
			da         vda.DAID
			exp, host  string
			wantExists bool
		}{
			{"taken name", da1.ID, "exp", host2, true},
			{"taken host", da1.ID, "exp2", host1, true},
			{"taken name and host", da1.ID, "exp", host1, true},
			{"same host on another array", da2.ID, "exp", host1, false},
			{"another host", da1.ID, "exp3", host2, false},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				exp := store.Exp{DAID: tt.da, Name: tt.exp, HostNQN: tt.host}
				err := db.Update(t.Context(), func(ctx context.Context, tx *store.Tx) error { return tx.InsertExp(ctx, &exp) })
				if tt.wantExists {
					require.Error(t, err)
					assert.ErrorIs(t, err, vda.ErrAlreadyExists)
					return
				}
				require.NoError(t, err)
				assert.Equal(t, exp, getExp(t, db, tt.da, tt.exp))
			})
		}
		assert.Equal(t, first, getExp(t, db, da1.ID, "exp"), "the first exporter is untouched")
		n := func(da vda.DAID) int {
			return view(t, db, func(ctx context.Context, tx *store.Tx) (int, error) { return tx.CountExps(ctx, da) })
		}
		assert.Equal(t, 2, n(da1.ID))
		assert.Equal(t, 1, n(da2.ID))
		assert.Equal(t, 0, n(vda.DAID(missingID(1))))
		assert.Equal(t, map[string]int{string(da1.ID): 2, string(da2.ID): 1},
			view(t, db, func(ctx context.Context, tx *store.Tx) (map[string]int, error) { return tx.CountsBy(ctx, "exp") }))

		// An exporter on a missing array is refused.
		orphan := store.Exp{DAID: vda.DAID(missingID(2)), Name: "orphan", HostNQN: host1}
		err := db.Update(t.Context(), func(ctx context.Context, tx *store.Tx) error { return tx.InsertExp(ctx, &orphan) })
		assert.ErrorIs(t, err, vda.ErrFailedPrecondition)
		assert.Equal(t, 3, counts(t, db).Exps)

		t.Run("insert and get", func(t *testing.T) {
			da := insertBareDA(t, db, "da0")
			before := time.Now()
			exp := store.Exp{DAID: da.ID, Name: "exp", HostNQN: host1, Description: "hôte ✓", Generation: 9}
			mustUpdate(t, db, func(ctx context.Context, tx *store.Tx) error { return tx.InsertExp(ctx, &exp) })
			assert.Regexp(t, "^[0-9a-f]{16}$", string(exp.ID))
			assert.Equal(t, uint64(1), exp.Generation)
			requireRecent(t, before, exp.CreatedAt)
			assert.Equal(t, exp, getExp(t, db, da.ID, "exp"))

			_, err := viewErr(t, db, func(ctx context.Context, tx *store.Tx) (store.Exp, error) { return tx.Exp(ctx, da.ID, "other") })
			assert.ErrorIs(t, err, vda.ErrNotFound)
			_, err = viewErr(t, db, func(ctx context.Context, tx *store.Tx) (store.Exp, error) {
				return tx.Exp(ctx, vda.DAID(missingID(1)), "exp")
			})
			assert.ErrorIs(t, err, vda.ErrNotFound)
			assert.Equal(t, da, getDA(t, db, da.ID), "an exporter leaves the array's generation")
		})
	})
}

func TestExpList(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		t.Parallel()
		da, other := insertBareDA(t, db, "da"), insertBareDA(t, db, "other")
		mustUpdate(t, db, func(ctx context.Context, tx *store.Tx) error {
			for i, name := range byteOrderNames {
				exp := store.Exp{DAID: da.ID, Name: name, HostNQN: host2 + "-" + string(rune('a'+i))}
				if err := tx.InsertExp(ctx, &exp); err != nil {
					return err
				}
			}
			exp := store.Exp{DAID: other.ID, Name: "a", HostNQN: host1}
			return tx.InsertExp(ctx, &exp)
		})
		want := slices.Sorted(slices.Values(byteOrderNames))
		list := func(p store.Page) []string {
			exps := view(t, db, func(ctx context.Context, tx *store.Tx) ([]store.Exp, error) { return tx.Exps(ctx, da.ID, p) })
			for _, e := range exps {
				assert.Equal(t, da.ID, e.DAID)
			}
			return names(exps, func(e store.Exp) string { return e.Name })
		}
		assert.Equal(t, want, list(store.Page{}))
		for _, limit := range []int{1, 2, 7} {
			assert.Equal(t, want, slices.Concat(pageAll(t, limit, list)...), "limit %d", limit)
		}
		assert.Equal(t, []string{"a-2", "a.1"}, list(store.Page{After: "a-10", Limit: 2}))
	})
}

func TestExpUpdateAndDelete(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		t.Parallel()
		da := insertBareDA(t, db, "da")
		exp := insertExp(t, db, da.ID, "exp", host1)
		keep := insertExp(t, db, da.ID, "keep", host2)

		changed := exp
		changed.Description = "changé"
		changed.HostNQN = host2 // immutable: not written
		mustUpdate(t, db, func(ctx context.Context, tx *store.Tx) error { return tx.UpdateExp(ctx, &changed) })
		assert.Equal(t, uint64(2), changed.Generation)
		want := changed
		want.HostNQN = host1
		assert.Equal(t, want, getExp(t, db, da.ID, "exp"))

		stale := exp
		stale.Description = "stale"
		err := once(t, db, func(ctx context.Context, tx *store.Tx) error { return tx.UpdateExp(ctx, &stale) })
		assert.ErrorIs(t, err, store.ErrConflict)
		assert.Equal(t, want, getExp(t, db, da.ID, "exp"))

		err = once(t, db, func(ctx context.Context, tx *store.Tx) error { return tx.DeleteExp(ctx, exp) })
		assert.ErrorIs(t, err, store.ErrConflict, "delete of generation 1")
		assert.Equal(t, want, getExp(t, db, da.ID, "exp"))

		mustUpdate(t, db, func(ctx context.Context, tx *store.Tx) error { return tx.DeleteExp(ctx, want) })
		_, err = viewErr(t, db, func(ctx context.Context, tx *store.Tx) (store.Exp, error) { return tx.Exp(ctx, da.ID, "exp") })
		assert.ErrorIs(t, err, vda.ErrNotFound)
		assert.Equal(t, keep, getExp(t, db, da.ID, "keep"))

		err = once(t, db, func(ctx context.Context, tx *store.Tx) error { return tx.DeleteExp(ctx, want) })
		assert.ErrorIs(t, err, vda.ErrNotFound, "deleting twice")
		err = once(t, db, func(ctx context.Context, tx *store.Tx) error { return tx.UpdateExp(ctx, &want) })
		assert.ErrorIs(t, err, vda.ErrNotFound, "updating a deleted exporter")
	})
}

func TestDeleteDAWithExp(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		t.Parallel()
		f := newFixture(t, db)
		p := insertDA(t, db, f, "da")
		exp := insertExp(t, db, p.da.ID, "exp", host1)
		at := time.UnixMilli(1_700_000_000_000).UTC()
		vds, cntlrs := p.sorted()
		mustUpdate(t, db, func(ctx context.Context, tx *store.Tx) error {
			return tx.PutVDStatus(ctx, vds[0].ID, store.ObjStatus{Health: store.HealthOK, ReportedAt: at})
		})
		before := counts(t, db)
		statuses := vdStatuses(t, db, p.da.ID)

		err := db.Update(t.Context(), func(ctx context.Context, tx *store.Tx) error { return tx.DeleteDA(ctx, p.da) })
		require.Error(t, err)
		assert.ErrorIs(t, err, vda.ErrFailedPrecondition)

		assert.Equal(t, before, counts(t, db), "nothing is deleted")
		assert.Equal(t, p.da, getDA(t, db, p.da.ID), "the array keeps its generation")
		assert.Equal(t, vds, vdsOf(t, db, p.da.ID))
		assert.Equal(t, cntlrs, cntlrsOf(t, db, p.da.ID))
		assert.Equal(t, statuses, vdStatuses(t, db, p.da.ID))
		assert.Len(t, cntlrStatuses(t, db, p.da.ID), 2)
		assert.Equal(t, exp, getExp(t, db, p.da.ID, "exp"))

		// Without its exporter the array goes.
		mustUpdate(t, db, func(ctx context.Context, tx *store.Tx) error {
			if err := tx.DeleteExp(ctx, exp); err != nil {
				return err
			}
			return tx.DeleteDA(ctx, p.da)
		})
		assert.Equal(t, store.Counts{DNs: 2, PDs: 2, CNs: 2}, counts(t, db))
	})
}
