package store_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/virtual-disk-array/vda"
	"github.com/virtual-disk-array/vda/store"
	"github.com/virtual-disk-array/vda/store/storetest"
)

var errFull = errors.New("pd is full")

// runAll runs fn(i) for i in [0, n) at once and returns their errors.
func runAll(n int, fn func(i int) error) []error {
	errs := make([]error, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			<-start
			errs[i] = fn(i)
		})
	}
	close(start)
	wg.Wait()
	return errs
}

// TestOptimisticConcurrency races transactions on each backend.
func TestOptimisticConcurrency(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		t.Parallel()
		// Under contention a transaction may conflict many times: room
		// beyond the default 20 attempts.
		contended := freshStore(t, db, store.Config{MaxAttempts: 1000})

		// Many placements race for one pd's capacity: none over-commits it
		// and none is lost.
		t.Run("allocate", func(t *testing.T) {
			db := contended
			dn := insertDN(t, db, "dn")
			pd := insertPD(t, db, dn.ID, "pd")
			const (
				unit     = 4 * vda.GiB
				capacity = 10 * unit
				workers  = 24
			)
			var mu sync.Mutex
			runs := 0
			errs := runAll(workers, func(int) error {
				return db.Update(t.Context(), func(ctx context.Context, tx *store.Tx) error {
					mu.Lock()
					runs++
					mu.Unlock()
					p, err := tx.PDByID(ctx, pd.ID)
					if err != nil {
						return err
					}
					if p.Allocated+unit > capacity {
						return errFull
					}
					return tx.Allocate(ctx, &p, unit)
				})
			})
			ok, full := 0, 0
			for _, err := range errs {
				switch {
				case err == nil:
					ok++
				case errors.Is(err, errFull):
					full++
				default:
					assert.NoError(t, err)
				}
			}
			assert.Equal(t, 10, ok, "allocations that fit")
			assert.Equal(t, workers-10, full, "allocations refused")
			got := getPD(t, db, pd.ID)
			assert.Equal(t, uint64(capacity), got.Allocated, "no over-commit, no lost update")
			assert.Equal(t, uint64(1+10), got.Generation, "one generation per allocation")
			assert.GreaterOrEqual(t, runs, workers)
			t.Logf("%d transactions for %d workers", runs, workers)
		})

		// Read-modify-write of a node's generation loses no increment.
		t.Run("touch", func(t *testing.T) {
			db := contended
			cn := insertCN(t, db, "cn")
			const workers, touches = 8, 5
			errs := runAll(workers, func(int) error {
				for range touches {
					err := db.Update(t.Context(), func(ctx context.Context, tx *store.Tx) error {
						c, err := tx.CNByID(ctx, cn.ID)
						if err != nil {
							return err
						}
						_, err = tx.TouchCN(ctx, cn.ID, c.Generation)
						return err
					})
					if err != nil {
						return err
					}
				}
				return nil
			})
			for i, err := range errs {
				assert.NoError(t, err, "worker %d", i)
			}
			got := view(t, db, func(ctx context.Context, tx *store.Tx) (store.CN, error) { return tx.CNByID(ctx, cn.ID) })
			assert.Equal(t, uint64(1+workers*touches), got.Generation)
		})

		t.Run("insert one name", func(t *testing.T) {
			const workers = 8
			dns := make([]store.DN, workers)
			errs := runAll(workers, func(i int) error {
				return db.Update(t.Context(), func(ctx context.Context, tx *store.Tx) error {
					dns[i] = store.DN{NodeSpec: nodeSpec("contested")}
					dns[i].Location = fmt.Sprintf("worker %d", i)
					return tx.InsertDN(ctx, &dns[i])
				})
			})
			winner := -1
			for i, err := range errs {
				if err == nil {
					assert.Equal(t, -1, winner, "a second insert succeeded")
					winner = i
					continue
				}
				assert.ErrorIs(t, err, vda.ErrAlreadyExists, "worker %d", i)
			}
			require.NotEqual(t, -1, winner, "one insert succeeds")
			got := view(t, db, func(ctx context.Context, tx *store.Tx) (store.DN, error) { return tx.DN(ctx, "contested") })
			assert.Equal(t, dns[winner], got, "the winner's dn is stored")
			assert.Equal(t, 1, counts(t, db).DNs)
			assert.Len(t, view(t, db, func(ctx context.Context, tx *store.Tx) (map[string]store.NodeStatus, error) {
				return tx.NodeStatuses(ctx)
			}), 1, "one status row")
		})
	})
}
