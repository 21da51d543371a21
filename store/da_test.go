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

func getDA(t *testing.T, db *store.DB, id vda.DAID) store.DA {
	t.Helper()
	return view(t, db, func(ctx context.Context, tx *store.Tx) (store.DA, error) { return tx.DAByID(ctx, id) })
}

func vdsOf(t *testing.T, db *store.DB, id vda.DAID) []store.VD {
	t.Helper()
	return view(t, db, func(ctx context.Context, tx *store.Tx) ([]store.VD, error) { return tx.VDs(ctx, id) })
}

func cntlrsOf(t *testing.T, db *store.DB, id vda.DAID) []store.Cntlr {
	t.Helper()
	return view(t, db, func(ctx context.Context, tx *store.Tx) ([]store.Cntlr, error) { return tx.Cntlrs(ctx, id) })
}

func vdStatuses(t *testing.T, db *store.DB, id vda.DAID) map[vda.VDID]store.ObjStatus {
	t.Helper()
	return view(t, db, func(ctx context.Context, tx *store.Tx) (map[vda.VDID]store.ObjStatus, error) {
		return tx.VDStatuses(ctx, id)
	})
}

func cntlrStatuses(t *testing.T, db *store.DB, id vda.DAID) map[vda.CntlrID]store.ObjStatus {
	t.Helper()
	return view(t, db, func(ctx context.Context, tx *store.Tx) (map[vda.CntlrID]store.ObjStatus, error) {
		return tx.CntlrStatuses(ctx, id)
	})
}

// sortedByIndex returns the children of p in index order.
func (p placedDA) sorted() ([]store.VD, []store.Cntlr) {
	vds := slices.SortedFunc(slices.Values(p.vds), func(a, b store.VD) int { return int(a.Index) - int(b.Index) })
	cntlrs := slices.SortedFunc(slices.Values(p.cntlrs), func(a, b store.Cntlr) int { return int(a.Index) - int(b.Index) })
	return vds, cntlrs
}

func TestDAInsertAndGet(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		t.Parallel()
		f := newFixture(t, db)
		before := time.Now()
		p := insertDA(t, db, f, "da")

		assert.Regexp(t, "^[0-9a-f]{16}$", string(p.da.ID))
		assert.Equal(t, uint64(1), p.da.Generation)
		requireRecent(t, before, p.da.CreatedAt)
		seen := map[string]bool{string(p.da.ID): true}
		for _, vd := range p.vds {
			assert.Equal(t, p.da.ID, vd.DAID)
			assert.Regexp(t, "^[0-9a-f]{16}$", string(vd.ID))
			seen[string(vd.ID)] = true
		}
		for _, c := range p.cntlrs {
			assert.Equal(t, p.da.ID, c.DAID)
			assert.Regexp(t, "^[0-9a-f]{16}$", string(c.ID))
			seen[string(c.ID)] = true
		}
		assert.Len(t, seen, 5, "ids are distinct")

		assert.Equal(t, p.da, getDA(t, db, p.da.ID), "by id")
		assert.Equal(t, p.da, view(t, db, func(ctx context.Context, tx *store.Tx) (store.DA, error) { return tx.DA(ctx, "da") }), "by name")

		vds, cntlrs := p.sorted()
		require.Equal(t, uint32(0), vds[0].Index)
		assert.Equal(t, vds, vdsOf(t, db, p.da.ID), "vds in index order")
		assert.Equal(t, cntlrs, cntlrsOf(t, db, p.da.ID), "controllers in index order")
		assert.True(t, cntlrs[0].Primary)
		assert.False(t, cntlrs[1].Primary)

		_, err := viewErr(t, db, func(ctx context.Context, tx *store.Tx) (store.DA, error) { return tx.DA(ctx, "nope") })
		assert.ErrorIs(t, err, vda.ErrNotFound)
		_, err = viewErr(t, db, func(ctx context.Context, tx *store.Tx) (store.DA, error) {
			return tx.DAByID(ctx, vda.DAID(missingID(1)))
		})
		assert.ErrorIs(t, err, vda.ErrNotFound)
		assert.Empty(t, vdsOf(t, db, vda.DAID(missingID(1))))
		assert.Empty(t, cntlrsOf(t, db, vda.DAID(missingID(1))))

		// An array without children is allowed.
		bare := newDA("bare")
		mustUpdate(t, db, func(ctx context.Context, tx *store.Tx) error { return tx.InsertDA(ctx, &bare, nil, nil) })
		assert.Equal(t, bare, getDA(t, db, bare.ID))
		assert.Empty(t, vdsOf(t, db, bare.ID))

		t.Run("errors", func(t *testing.T) {
			want := counts(t, db)

			tests := []struct {
				name   string
				da     store.DA
				vds    []store.VD
				cntlrs []store.Cntlr
				err    error
			}{
				{"taken name", newDA("da"), nil, nil, vda.ErrAlreadyExists},
				{"taken name with children", newDA("da"),
					[]store.VD{{Index: 0, DNID: f.dn1.ID, PDID: f.pd1.ID, Size: vda.GiB}},
					[]store.Cntlr{{Index: 0, CNID: f.cn1.ID, Primary: true}}, vda.ErrAlreadyExists},
				{"missing pd", newDA("no-pd"),
					[]store.VD{{Index: 0, DNID: f.dn1.ID, PDID: vda.PDID(missingID(1)), Size: vda.GiB}}, nil, vda.ErrFailedPrecondition},
				{"missing cn", newDA("no-cn"),
					[]store.VD{{Index: 0, DNID: f.dn1.ID, PDID: f.pd1.ID, Size: vda.GiB}},
					[]store.Cntlr{{Index: 0, CNID: vda.CNID(missingID(2)), Primary: true}}, vda.ErrFailedPrecondition},
			}
			for _, tt := range tests {
				t.Run(tt.name, func(t *testing.T) {
					err := db.Update(t.Context(), func(ctx context.Context, tx *store.Tx) error {
						return tx.InsertDA(ctx, &tt.da, tt.vds, tt.cntlrs)
					})
					require.Error(t, err)
					assert.ErrorIs(t, err, tt.err)
					assert.Equal(t, want, counts(t, db), "a failed insert leaves nothing")
					_, err = viewErr(t, db, func(ctx context.Context, tx *store.Tx) (store.DA, error) { return tx.DA(ctx, "no-pd") })
					assert.ErrorIs(t, err, vda.ErrNotFound)
				})
			}
			assert.Equal(t, p.da, getDA(t, db, p.da.ID))
		})
	})
}

func TestDAChildrenAndStatuses(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		t.Parallel()
		f := newFixture(t, db)
		a := insertDA(t, db, f, "a")
		b := insertDA(t, db, f, "b")
		av, ac := a.sorted()
		bv, bc := b.sorted()
		// Sorted by array id, then index.
		first := func(x, y []store.VD, i int) []store.VD {
			if a.da.ID < b.da.ID {
				return []store.VD{x[i], y[i]}
			}
			return []store.VD{y[i], x[i]}
		}
		firstC := func(x, y []store.Cntlr, i int) []store.Cntlr {
			if a.da.ID < b.da.ID {
				return []store.Cntlr{x[i], y[i]}
			}
			return []store.Cntlr{y[i], x[i]}
		}
		tests := []struct {
			name string
			got  func(ctx context.Context, tx *store.Tx) ([]store.VD, error)
			want []store.VD
		}{
			{"on dn1", func(ctx context.Context, tx *store.Tx) ([]store.VD, error) { return tx.VDsOnDN(ctx, f.dn1.ID) }, first(av, bv, 0)},
			{"on dn2", func(ctx context.Context, tx *store.Tx) ([]store.VD, error) { return tx.VDsOnDN(ctx, f.dn2.ID) }, first(av, bv, 1)},
			{"on pd1", func(ctx context.Context, tx *store.Tx) ([]store.VD, error) { return tx.VDsOnPD(ctx, f.pd1.ID) }, first(av, bv, 0)},
			{"on pd2", func(ctx context.Context, tx *store.Tx) ([]store.VD, error) { return tx.VDsOnPD(ctx, f.pd2.ID) }, first(av, bv, 1)},
			{"on nothing", func(ctx context.Context, tx *store.Tx) ([]store.VD, error) {
				return tx.VDsOnPD(ctx, vda.PDID(missingID(1)))
			}, []store.VD{}},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				assert.Equal(t, tt.want, view(t, db, tt.got))
			})
		}
		cntlrs := func(cn vda.CNID) []store.Cntlr {
			return view(t, db, func(ctx context.Context, tx *store.Tx) ([]store.Cntlr, error) { return tx.CntlrsOnCN(ctx, cn) })
		}
		assert.Equal(t, firstC(ac, bc, 0), cntlrs(f.cn1.ID))
		assert.Equal(t, firstC(ac, bc, 1), cntlrs(f.cn2.ID))
		assert.Empty(t, cntlrs(vda.CNID(missingID(2))))

		assert.Equal(t, map[string]int{string(f.pd1.ID): 2, string(f.pd2.ID): 2},
			view(t, db, func(ctx context.Context, tx *store.Tx) (map[string]int, error) { return tx.CountsBy(ctx, "vd") }))
		assert.Equal(t, map[string]int{string(f.cn1.ID): 2, string(f.cn2.ID): 2},
			view(t, db, func(ctx context.Context, tx *store.Tx) (map[string]int, error) { return tx.CountsBy(ctx, "cntlr") }))

		t.Run("statuses", func(t *testing.T) {
			p, other := a, b
			vds, cntlrs := p.sorted()

			unknown := store.ObjStatus{Health: store.HealthUnknown}
			assert.Equal(t, map[vda.VDID]store.ObjStatus{vds[0].ID: unknown, vds[1].ID: unknown}, vdStatuses(t, db, p.da.ID))
			assert.Equal(t, map[vda.CntlrID]store.ObjStatus{cntlrs[0].ID: unknown, cntlrs[1].ID: unknown}, cntlrStatuses(t, db, p.da.ID))

			at := time.UnixMilli(1_700_000_000_123).UTC()
			vdErr := store.ObjStatus{Health: store.HealthError, Error: "lvol missing — ✗", ReportedAt: at}
			cOK := store.ObjStatus{Health: store.HealthOK, ReportedAt: at.Add(time.Second)}
			for range 2 { // writing the same status twice is fine
				mustUpdate(t, db, func(ctx context.Context, tx *store.Tx) error {
					if err := tx.PutVDStatus(ctx, vds[1].ID, vdErr); err != nil {
						return err
					}
					return tx.PutCntlrStatus(ctx, cntlrs[0].ID, cOK)
				})
			}
			assert.Equal(t, map[vda.VDID]store.ObjStatus{vds[0].ID: unknown, vds[1].ID: vdErr}, vdStatuses(t, db, p.da.ID))
			assert.Equal(t, map[vda.CntlrID]store.ObjStatus{cntlrs[0].ID: cOK, cntlrs[1].ID: unknown}, cntlrStatuses(t, db, p.da.ID))
			ov, oc := other.sorted()
			assert.Equal(t, map[vda.VDID]store.ObjStatus{ov[0].ID: unknown, ov[1].ID: unknown}, vdStatuses(t, db, other.da.ID),
				"another array's statuses are apart")
			assert.Equal(t, map[vda.CntlrID]store.ObjStatus{oc[0].ID: unknown, oc[1].ID: unknown}, cntlrStatuses(t, db, other.da.ID))
			assert.Equal(t, p.da, getDA(t, db, p.da.ID), "statuses leave the array's generation")

			err := db.Update(t.Context(), func(ctx context.Context, tx *store.Tx) error {
				return tx.PutVDStatus(ctx, vda.VDID(missingID(1)), vdErr)
			})
			assert.ErrorIs(t, err, vda.ErrNotFound)
			err = db.Update(t.Context(), func(ctx context.Context, tx *store.Tx) error {
				return tx.PutCntlrStatus(ctx, vda.CntlrID(missingID(2)), cOK)
			})
			assert.ErrorIs(t, err, vda.ErrNotFound)
			// A controller's id is not a vd's.
			err = db.Update(t.Context(), func(ctx context.Context, tx *store.Tx) error {
				return tx.PutVDStatus(ctx, vda.VDID(cntlrs[1].ID), vdErr)
			})
			assert.ErrorIs(t, err, vda.ErrNotFound)
			assert.Empty(t, vdStatuses(t, db, vda.DAID(missingID(3))))
		})
	})
}

func TestDADeleteAndUpdate(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		t.Parallel()
		// A store of our own, to count status rows with SQL.
		dsn := storetest.NewDSN(t, backendOf(t, db))
		db = openStore(t, dsn, store.Config{})
		raw := rawDB(t, dsn)

		f := newFixture(t, db)
		p := insertDA(t, db, f, "da")
		keep := insertDA(t, db, f, "keep")
		moved := p.da
		mustUpdate(t, db, func(ctx context.Context, tx *store.Tx) error { return tx.UpdateDA(ctx, &moved) })
		before := counts(t, db)
		require.Equal(t, store.Counts{DNs: 2, PDs: 2, CNs: 2, DAs: 2, VDs: 4, Cntlrs: 4}, before)

		err := once(t, db, func(ctx context.Context, tx *store.Tx) error { return tx.DeleteDA(ctx, p.da) })
		assert.ErrorIs(t, err, store.ErrConflict)
		assert.Equal(t, before, counts(t, db), "a stale delete removes nothing")
		assert.Equal(t, moved, getDA(t, db, p.da.ID))
		assert.Equal(t, 4, countRows(t, raw, "vd_status"))
		assert.Equal(t, 4, countRows(t, raw, "cntlr_status"))

		mustUpdate(t, db, func(ctx context.Context, tx *store.Tx) error { return tx.DeleteDA(ctx, moved) })
		assert.Equal(t, store.Counts{DNs: 2, PDs: 2, CNs: 2, DAs: 1, VDs: 2, Cntlrs: 2}, counts(t, db))
		_, err = viewErr(t, db, func(ctx context.Context, tx *store.Tx) (store.DA, error) { return tx.DAByID(ctx, p.da.ID) })
		assert.ErrorIs(t, err, vda.ErrNotFound)
		assert.Empty(t, vdsOf(t, db, p.da.ID))
		assert.Empty(t, cntlrsOf(t, db, p.da.ID))
		assert.Empty(t, vdStatuses(t, db, p.da.ID))
		assert.Empty(t, cntlrStatuses(t, db, p.da.ID))
		assert.Equal(t, 2, countRows(t, raw, "vd_status"), "the vds' statuses are gone")
		assert.Equal(t, 2, countRows(t, raw, "cntlr_status"), "the controllers' statuses are gone")

		kv, kc := keep.sorted()
		assert.Equal(t, kv, vdsOf(t, db, keep.da.ID), "the other array is untouched")
		assert.Equal(t, kc, cntlrsOf(t, db, keep.da.ID))
		assert.Len(t, vdStatuses(t, db, keep.da.ID), 2)

		err = once(t, db, func(ctx context.Context, tx *store.Tx) error { return tx.DeleteDA(ctx, moved) })
		assert.ErrorIs(t, err, vda.ErrNotFound, "deleting twice")

		// A pd that holds a vd cannot go.
		err = db.Update(t.Context(), func(ctx context.Context, tx *store.Tx) error { return tx.DeletePD(ctx, f.pd1) })
		assert.ErrorIs(t, err, vda.ErrFailedPrecondition)
		assert.Equal(t, f.pd1, getPD(t, db, f.pd1.ID))

		mustUpdate(t, db, func(ctx context.Context, tx *store.Tx) error { return tx.DeleteDA(ctx, keep.da) })
		assert.Equal(t, store.Counts{DNs: 2, PDs: 2, CNs: 2}, counts(t, db))
		assert.Zero(t, countRows(t, raw, "vd_status"))
		assert.Zero(t, countRows(t, raw, "cntlr_status"))

		t.Run("update", func(t *testing.T) {
			da := newDA("upd")
			mustUpdate(t, db, func(ctx context.Context, tx *store.Tx) error { return tx.InsertDA(ctx, &da, nil, nil) })

			changed := da
			changed.Description = "nouvelle description ✓"
			changed.Size = 1 // immutable: not written
			mustUpdate(t, db, func(ctx context.Context, tx *store.Tx) error { return tx.UpdateDA(ctx, &changed) })
			assert.Equal(t, uint64(2), changed.Generation)
			want := changed
			want.Size = da.Size
			assert.Equal(t, want, getDA(t, db, da.ID))

			stale := da
			stale.Description = "stale"
			err := once(t, db, func(ctx context.Context, tx *store.Tx) error { return tx.UpdateDA(ctx, &stale) })
			assert.ErrorIs(t, err, store.ErrConflict)
			assert.Equal(t, want, getDA(t, db, da.ID))

			missing := want
			missing.ID = vda.DAID(missingID(1))
			err = once(t, db, func(ctx context.Context, tx *store.Tx) error { return tx.UpdateDA(ctx, &missing) })
			assert.ErrorIs(t, err, vda.ErrNotFound)
		})
	})
}

func TestDAList(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		t.Parallel()
		ids := map[string]vda.DAID{}
		mustUpdate(t, db, func(ctx context.Context, tx *store.Tx) error {
			for _, name := range byteOrderNames {
				da := newDA(name)
				if err := tx.InsertDA(ctx, &da, nil, nil); err != nil {
					return err
				}
				ids[name] = da.ID
			}
			return nil
		})
		want := slices.Sorted(slices.Values(byteOrderNames))
		list := func(p store.Page) []string {
			das := view(t, db, func(ctx context.Context, tx *store.Tx) ([]store.DA, error) { return tx.DAs(ctx, p) })
			for _, da := range das {
				assert.Equal(t, ids[da.Name], da.ID)
			}
			return names(das, func(da store.DA) string { return da.Name })
		}
		assert.Equal(t, want, list(store.Page{}))
		for _, limit := range []int{1, 4, len(want)} {
			assert.Equal(t, want, slices.Concat(pageAll(t, limit, list)...), "limit %d", limit)
		}
		assert.Equal(t, []string{"a1", "a_1", "b"}, list(store.Page{After: "a.1", Limit: 3}))
	})
}
