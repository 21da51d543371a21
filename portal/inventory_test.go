package portal

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/virtual-disk-array/vda"
	"github.com/virtual-disk-array/vda/allocator"
	"github.com/virtual-disk-array/vda/store"
	"github.com/virtual-disk-array/vda/store/storetest"
)

// TestPlacementSubsetIsExact checks the claim of store.PDCandidates: placing
// on the subset the database returns gives the same result as placing on
// every pd, for random inventories, sizes and counts.
func TestPlacementSubsetIsExact(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		rng := rand.New(rand.NewPCG(1, 2))
		pruned := 0
		for round := range 4 {
			// A fresh random inventory on top of the previous rounds'.
			require.NoError(t, db.Update(ctx, func(ctx context.Context, tx *store.Tx) error {
				for d := range 12 {
					dn := store.DN{NodeSpec: store.NodeSpec{
						Name: fmt.Sprintf("dn%d-%d", round, d), Location: fmt.Sprintf("loc%d", rng.IntN(4)),
						Offline: rng.IntN(8) == 0,
					}}
					if err := tx.InsertDN(ctx, &dn); err != nil {
						return err
					}
					for p := range 1 + rng.IntN(3) {
						size := uint64(1+rng.IntN(64)) * vda.GiB
						pd := store.PD{
							DNID: dn.ID, Name: fmt.Sprintf("pd%d", p), Kind: store.PDMalloc, Size: size,
							CapacityEstimate: vda.EstimatedLvstoreCapacity(size), Offline: rng.IntN(10) == 0,
						}
						if err := tx.InsertPD(ctx, &pd); err != nil {
							return err
						}
						if n := rng.IntN(3); n > 0 {
							if err := tx.Allocate(ctx, &pd, int64(uint64(n)*pd.CapacityEstimate/4)); err != nil {
								return err
							}
						}
						if rng.IntN(4) == 0 {
							if err := tx.PutPDStatus(ctx, pd.ID, store.PDStatus{Health: store.HealthOK, Capacity: size / 2}); err != nil {
								return err
							}
						}
					}
				}
				return nil
			}))
			require.NoError(t, db.View(ctx, func(ctx context.Context, tx *store.Tx) error {
				all, err := readInventory(ctx, tx, 0, 0)
				require.NoError(t, err)
				for range 40 {
					count := 1 + rng.IntN(8)
					size := vda.RoundUp(uint64(1+rng.IntN(40))*vda.GiB, vda.ClusterSize)
					want, wantErr := allocator.PlaceVDs(all.pdCandidates(), count, size)
					sub, err := readInventory(ctx, tx, count, size)
					require.NoError(t, err)
					got, gotErr := allocator.PlaceVDs(sub.pdCandidates(), count, size)
					assert.Equal(t, wantErr == nil, gotErr == nil, "count %d size %d: %v / %v", count, size, wantErr, gotErr)
					assert.Equal(t, want, got, "count %d size %d", count, size)
					assert.LessOrEqual(t, len(sub.pds), len(all.pds))
					if len(sub.pds) < len(all.pds) {
						pruned++
					}
				}
				return nil
			}))
		}
		assert.Greater(t, pruned, 100, "the subset must be smaller than the inventory in most cases")
	})
}
