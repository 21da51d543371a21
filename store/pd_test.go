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

func getPD(t *testing.T, db *store.DB, id vda.PDID) store.PD {
	t.Helper()
	return view(t, db, func(ctx context.Context, tx *store.Tx) (store.PD, error) { return tx.PDByID(ctx, id) })
}

func TestPDInsertAndGet(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		t.Parallel()
		dn := insertDN(t, db, "dn")
		before := time.Now()
		pd := store.PD{
			DNID: dn.ID, Name: "nvme0", Kind: store.PDNvme, PCIeAddr: "0000:3b:00.0", Offline: true,
			CapacityEstimate: 60 * vda.GiB, Description: "NVMe — ディスク",
			Allocated: 999, Generation: 42, // both reset by the store
		}
		mustUpdate(t, db, func(ctx context.Context, tx *store.Tx) error { return tx.InsertPD(ctx, &pd) })
		assert.Regexp(t, "^[0-9a-f]{16}$", string(pd.ID))
		assert.Equal(t, uint64(1), pd.Generation)
		assert.Zero(t, pd.Allocated)
		requireRecent(t, before, pd.CreatedAt)

		assert.Equal(t, pd, getPD(t, db, pd.ID), "by id")
		byName := view(t, db, func(ctx context.Context, tx *store.Tx) (store.PD, error) { return tx.PD(ctx, dn.ID, "nvme0") })
		assert.Equal(t, pd, byName, "by name")
		st := view(t, db, func(ctx context.Context, tx *store.Tx) (store.PDStatus, error) { return tx.PDStatus(ctx, pd.ID) })
		assert.Equal(t, store.PDStatus{Health: store.HealthUnknown}, st)

		notFound := []struct {
			name string
			fn   func(ctx context.Context, tx *store.Tx) (store.PD, error)
		}{
			{"by id", func(ctx context.Context, tx *store.Tx) (store.PD, error) {
				return tx.PDByID(ctx, vda.PDID(missingID(1)))
			}},
			{"by name", func(ctx context.Context, tx *store.Tx) (store.PD, error) { return tx.PD(ctx, dn.ID, "nvme1") }},
			{"on another dn", func(ctx context.Context, tx *store.Tx) (store.PD, error) {
				return tx.PD(ctx, vda.DNID(missingID(2)), "nvme0")
			}},
		}
		for _, tt := range notFound {
			t.Run(tt.name, func(t *testing.T) {
				_, err := viewErr(t, db, tt.fn)
				assert.ErrorIs(t, err, vda.ErrNotFound)
			})
		}
		_, err := viewErr(t, db, func(ctx context.Context, tx *store.Tx) (store.PDStatus, error) {
			return tx.PDStatus(ctx, vda.PDID(missingID(3)))
		})
		assert.ErrorIs(t, err, vda.ErrNotFound)

		t.Run("errors", func(t *testing.T) {
			dn1, dn2 := insertDN(t, db, "dn1"), insertDN(t, db, "dn2")
			first := insertPD(t, db, dn1.ID, "pd")
			before := counts(t, db)

			tests := []struct {
				name string
				pd   store.PD
				want error
			}{
				{"missing dn", newPD(vda.DNID(missingID(1)), "orphan"), vda.ErrFailedPrecondition},
				{"taken name on the dn", newPD(dn1.ID, "pd"), vda.ErrAlreadyExists},
			}
			for _, tt := range tests {
				t.Run(tt.name, func(t *testing.T) {
					pd := tt.pd
					err := db.Update(t.Context(), func(ctx context.Context, tx *store.Tx) error { return tx.InsertPD(ctx, &pd) })
					require.Error(t, err)
					assert.ErrorIs(t, err, tt.want)
				})
			}
			assert.Equal(t, before, counts(t, db), "failed inserts leave nothing")
			_, err := viewErr(t, db, func(ctx context.Context, tx *store.Tx) (store.PDStatus, error) { return tx.PDStatus(ctx, first.ID) })
			assert.NoError(t, err)

			other := insertPD(t, db, dn2.ID, "pd")
			assert.NotEqual(t, first.ID, other.ID, "the same name on another dn is a different pd")
			assert.Equal(t, other, view(t, db, func(ctx context.Context, tx *store.Tx) (store.PD, error) { return tx.PD(ctx, dn2.ID, "pd") }))
			assert.Equal(t, first, view(t, db, func(ctx context.Context, tx *store.Tx) (store.PD, error) { return tx.PD(ctx, dn1.ID, "pd") }))
		})

		t.Run("by backend", func(t *testing.T) {
			dn1, dn2 := insertDN(t, db, "backend1"), insertDN(t, db, "backend2")
			pds := []store.PD{
				{DNID: dn1.ID, Name: "aio0", Kind: store.PDAio, Path: "/dev/sdb"},
				{DNID: dn1.ID, Name: "aio1", Kind: store.PDAio, Path: "/var/lib/vda/disk.img"},
				{DNID: dn1.ID, Name: "nvme0", Kind: store.PDNvme, PCIeAddr: "0000:3b:00.0"},
				{DNID: dn1.ID, Name: "mem0", Kind: store.PDMalloc, Size: vda.GiB},
				{DNID: dn2.ID, Name: "aio0", Kind: store.PDAio, Path: "/dev/sdc"},
			}
			mustUpdate(t, db, func(ctx context.Context, tx *store.Tx) error {
				for i := range pds {
					if err := tx.InsertPD(ctx, &pds[i]); err != nil {
						return err
					}
				}
				return nil
			})
			tests := []struct {
				name       string
				dn         vda.DNID
				kind       store.PDKind
				path, pcie string
				want       int // index in pds, -1 for ErrNotFound
			}{
				{"aio by path", dn1.ID, store.PDAio, "/dev/sdb", "", 0},
				{"aio file", dn1.ID, store.PDAio, "/var/lib/vda/disk.img", "", 1},
				{"nvme by address", dn1.ID, store.PDNvme, "", "0000:3b:00.0", 2},
				{"nvme ignores path", dn1.ID, store.PDNvme, "/dev/sdb", "0000:3b:00.0", 2},
				{"other dn", dn2.ID, store.PDAio, "/dev/sdc", "", 4},
				{"path on another dn", dn2.ID, store.PDAio, "/dev/sdb", "", -1},
				{"unknown path", dn1.ID, store.PDAio, "/dev/sdz", "", -1},
				{"unknown address", dn1.ID, store.PDNvme, "", "0000:af:00.0", -1},
				{"aio path of an nvme", dn1.ID, store.PDAio, "", "0000:3b:00.0", -1},
				{"malloc never shares", dn1.ID, store.PDMalloc, "", "", -1},
			}
			for _, tt := range tests {
				t.Run(tt.name, func(t *testing.T) {
					got, err := viewErr(t, db, func(ctx context.Context, tx *store.Tx) (store.PD, error) {
						return tx.PDByBackend(ctx, tt.dn, tt.kind, tt.path, tt.pcie)
					})
					if tt.want < 0 {
						assert.ErrorIs(t, err, vda.ErrNotFound)
						return
					}
					require.NoError(t, err)
					assert.Equal(t, pds[tt.want], got)
				})
			}
		})
	})
}

func TestPDAllocate(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		t.Parallel()
		dn := insertDN(t, db, "dn")
		pd := insertPD(t, db, dn.ID, "pd")

		steps := []struct {
			name      string
			delta     int64
			allocated uint64
		}{
			{"add", 100 * vda.GiB, 100 * vda.GiB},
			{"add more", 4 * vda.MiB, 100*vda.GiB + 4*vda.MiB},
			{"release", -100 * vda.GiB, 4 * vda.MiB},
			{"nothing", 0, 4 * vda.MiB},
			{"release all", -4 * vda.MiB, 0},
		}
		for i, s := range steps {
			t.Run(s.name, func(t *testing.T) {
				mustUpdate(t, db, func(ctx context.Context, tx *store.Tx) error { return tx.Allocate(ctx, &pd, s.delta) })
				assert.Equal(t, s.allocated, pd.Allocated)
				assert.Equal(t, uint64(i+2), pd.Generation, "each allocation moves the generation")
				assert.Equal(t, pd, getPD(t, db, pd.ID))
			})
		}

		mustUpdate(t, db, func(ctx context.Context, tx *store.Tx) error { return tx.Allocate(ctx, &pd, 10) })
		want := pd

		t.Run("release below zero", func(t *testing.T) {
			p := pd
			err := once(t, db, func(ctx context.Context, tx *store.Tx) error { return tx.Allocate(ctx, &p, -11) })
			require.Error(t, err)
			assert.ErrorIs(t, err, vda.ErrFailedPrecondition)
			assert.Equal(t, want, p, "the caller's copy is unchanged")
			assert.Equal(t, want, getPD(t, db, pd.ID))
		})

		t.Run("stale generation", func(t *testing.T) {
			p := pd
			p.Generation--
			err := once(t, db, func(ctx context.Context, tx *store.Tx) error { return tx.Allocate(ctx, &p, 1) })
			assert.ErrorIs(t, err, store.ErrConflict)
			assert.Equal(t, want, getPD(t, db, pd.ID))
		})

		t.Run("missing pd", func(t *testing.T) {
			p := pd
			p.ID = vda.PDID(missingID(1))
			err := once(t, db, func(ctx context.Context, tx *store.Tx) error { return tx.Allocate(ctx, &p, 1) })
			assert.ErrorIs(t, err, vda.ErrNotFound)
		})
	})
}

func TestPDUpdateAndDelete(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		t.Parallel()
		dn := insertDN(t, db, "dn")
		pd := insertPD(t, db, dn.ID, "pd")
		mustUpdate(t, db, func(ctx context.Context, tx *store.Tx) error { return tx.Allocate(ctx, &pd, 5) })

		changed := pd
		changed.Offline = true
		changed.Description = "retiré 🛑"
		changed.Size = 1 // immutable: not written
		mustUpdate(t, db, func(ctx context.Context, tx *store.Tx) error { return tx.UpdatePD(ctx, &changed) })
		assert.Equal(t, pd.Generation+1, changed.Generation)
		want := changed
		want.Size = pd.Size
		assert.Equal(t, want, getPD(t, db, pd.ID))

		stale := changed
		stale.Generation = pd.Generation
		stale.Offline = false
		err := once(t, db, func(ctx context.Context, tx *store.Tx) error { return tx.UpdatePD(ctx, &stale) })
		assert.ErrorIs(t, err, store.ErrConflict)
		assert.ErrorIs(t, err, vda.ErrStaleGeneration)
		assert.Equal(t, want, getPD(t, db, pd.ID), "a stale update changes nothing")

		missing := changed
		missing.ID = vda.PDID(missingID(1))
		err = once(t, db, func(ctx context.Context, tx *store.Tx) error { return tx.UpdatePD(ctx, &missing) })
		assert.ErrorIs(t, err, vda.ErrNotFound)

		t.Run("delete", func(t *testing.T) {
			dn := insertDN(t, db, "dn-delete")
			pd := insertPD(t, db, dn.ID, "pd")
			keep := insertPD(t, db, dn.ID, "keep")
			moved := pd
			mustUpdate(t, db, func(ctx context.Context, tx *store.Tx) error { return tx.Allocate(ctx, &moved, 0) })

			err := once(t, db, func(ctx context.Context, tx *store.Tx) error { return tx.DeletePD(ctx, pd) })
			assert.ErrorIs(t, err, store.ErrConflict)
			assert.Equal(t, moved, getPD(t, db, pd.ID), "a stale delete leaves the pd")
			_, err = viewErr(t, db, func(ctx context.Context, tx *store.Tx) (store.PDStatus, error) { return tx.PDStatus(ctx, pd.ID) })
			assert.NoError(t, err, "and its status")

			mustUpdate(t, db, func(ctx context.Context, tx *store.Tx) error { return tx.DeletePD(ctx, moved) })
			_, err = viewErr(t, db, func(ctx context.Context, tx *store.Tx) (store.PD, error) { return tx.PDByID(ctx, pd.ID) })
			assert.ErrorIs(t, err, vda.ErrNotFound)
			_, err = viewErr(t, db, func(ctx context.Context, tx *store.Tx) (store.PDStatus, error) { return tx.PDStatus(ctx, pd.ID) })
			assert.ErrorIs(t, err, vda.ErrNotFound, "the status goes with the pd")
			assert.Equal(t, keep, getPD(t, db, keep.ID))

			err = once(t, db, func(ctx context.Context, tx *store.Tx) error { return tx.DeletePD(ctx, moved) })
			assert.ErrorIs(t, err, vda.ErrNotFound, "deleting twice")
		})
	})
}

func TestPDList(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		t.Parallel()
		dn1, dn2, empty := insertDN(t, db, "dn1"), insertDN(t, db, "dn2"), insertDN(t, db, "empty")
		ids := map[vda.PDID]bool{}
		for _, name := range byteOrderNames {
			ids[insertPD(t, db, dn1.ID, name).ID] = true
		}
		ids[insertPD(t, db, dn2.ID, "a").ID] = true // not on dn1

		want := slices.Sorted(slices.Values(byteOrderNames))
		list := func(p store.Page) []string {
			pds := view(t, db, func(ctx context.Context, tx *store.Tx) ([]store.PD, error) { return tx.PDs(ctx, dn1.ID, p) })
			for _, pd := range pds {
				assert.Equal(t, dn1.ID, pd.DNID)
			}
			return names(pds, func(pd store.PD) string { return pd.Name })
		}
		assert.Equal(t, want, list(store.Page{}))
		for _, limit := range []int{1, 3, len(want)} {
			assert.Equal(t, want, slices.Concat(pageAll(t, limit, list)...), "limit %d", limit)
		}
		assert.Equal(t, []string{"a", "a-1"}, list(store.Page{After: "Z9", Limit: 2}))
		assert.Empty(t, view(t, db, func(ctx context.Context, tx *store.Tx) ([]store.PD, error) {
			return tx.PDs(ctx, empty.ID, store.Page{})
		}))

		all := view(t, db, func(ctx context.Context, tx *store.Tx) ([]store.PD, error) { return tx.AllPDs(ctx) })
		require.Len(t, all, len(ids))
		allIDs := names(all, func(pd store.PD) string { return string(pd.ID) })
		assert.True(t, slices.IsSorted(allIDs), "AllPDs is ordered by id")
		for _, pd := range all {
			assert.True(t, ids[pd.ID], "pd %s", pd.ID)
		}

		n := func(dn vda.DNID) int {
			return view(t, db, func(ctx context.Context, tx *store.Tx) (int, error) { return tx.CountPDs(ctx, dn) })
		}
		assert.Equal(t, len(byteOrderNames), n(dn1.ID))
		assert.Equal(t, 1, n(dn2.ID))
		assert.Equal(t, 0, n(empty.ID))
		assert.Equal(t, 0, n(vda.DNID(missingID(1))))

		by := view(t, db, func(ctx context.Context, tx *store.Tx) (map[string]int, error) { return tx.CountsBy(ctx, "pd") })
		assert.Equal(t, map[string]int{string(dn1.ID): len(byteOrderNames), string(dn2.ID): 1}, by)
	})
}
