package store_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/virtual-disk-array/vda"
	"github.com/virtual-disk-array/vda/store"
	"github.com/virtual-disk-array/vda/store/storetest"
)

func countsBy(t *testing.T, db *store.DB, child string) map[string]int {
	t.Helper()
	return view(t, db, func(ctx context.Context, tx *store.Tx) (map[string]int, error) { return tx.CountsBy(ctx, child) })
}

func TestCounts(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		t.Parallel()

		t.Run("empty", func(t *testing.T) {
			assert.Equal(t, store.Counts{}, counts(t, db))
			for _, child := range []string{"pd", "vd", "cntlr", "exp"} {
				assert.Empty(t, countsBy(t, db, child), child)
			}
			assert.Empty(t, view(t, db, func(ctx context.Context, tx *store.Tx) ([]store.DN, error) { return tx.DNs(ctx, store.Page{}) }))
			assert.Empty(t, view(t, db, func(ctx context.Context, tx *store.Tx) ([]store.DA, error) { return tx.DAs(ctx, store.Page{}) }))
			assert.Empty(t, view(t, db, func(ctx context.Context, tx *store.Tx) ([]store.PD, error) { return tx.AllPDs(ctx) }))
		})

		t.Run("populated", func(t *testing.T) {
			f := newFixture(t, db)
			extra := insertPD(t, db, f.dn1.ID, "pd3")
			insertCN(t, db, "cn3")
			a := insertDA(t, db, f, "a")
			insertDA(t, db, f, "b")
			insertBareDA(t, db, "c")
			insertExp(t, db, a.da.ID, "e1", host1)
			insertExp(t, db, a.da.ID, "e2", host2)

			assert.Equal(t, store.Counts{DNs: 2, PDs: 3, CNs: 3, DAs: 3, Exps: 2, VDs: 4, Cntlrs: 4}, counts(t, db))
			assert.Equal(t, map[string]int{string(f.dn1.ID): 2, string(f.dn2.ID): 1}, countsBy(t, db, "pd"))
			assert.Equal(t, map[string]int{string(f.pd1.ID): 2, string(f.pd2.ID): 2}, countsBy(t, db, "vd"),
				"a pd without vds is absent")
			assert.NotContains(t, countsBy(t, db, "vd"), string(extra.ID))
			assert.Equal(t, map[string]int{string(f.cn1.ID): 2, string(f.cn2.ID): 2}, countsBy(t, db, "cntlr"))
			assert.Equal(t, map[string]int{string(a.da.ID): 2}, countsBy(t, db, "exp"))
		})

		t.Run("unknown child", func(t *testing.T) {
			_, err := viewErr(t, db, func(ctx context.Context, tx *store.Tx) (map[string]int, error) {
				return tx.CountsBy(ctx, "node")
			})
			require.Error(t, err)
			assert.ErrorIs(t, err, vda.ErrInvalidArgument)
		})
	})
}
