package store_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/virtual-disk-array/vda"
	"github.com/virtual-disk-array/vda/store"
	"github.com/virtual-disk-array/vda/store/storetest"
)

var errBoom = errors.New("boom")

func TestUpdateAllOrNothing(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		t.Parallel()
		keep := insertDN(t, db, "keep")
		tests := []struct {
			name string
			last func(ctx context.Context, tx *store.Tx) error // runs after the writes
			want error
		}{
			{"fn fails", func(context.Context, *store.Tx) error { return fmt.Errorf("later: %w", errBoom) }, errBoom},
			{"a statement fails", func(ctx context.Context, tx *store.Tx) error {
				dup := store.DN{NodeSpec: nodeSpec("keep")}
				return tx.InsertDN(ctx, &dup)
			}, vda.ErrAlreadyExists},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				calls := 0
				err := db.Update(t.Context(), func(ctx context.Context, tx *store.Tx) error {
					calls++
					dn := store.DN{NodeSpec: nodeSpec("dn")}
					if err := tx.InsertDN(ctx, &dn); err != nil {
						return err
					}
					pd := newPD(dn.ID, "pd")
					if err := tx.InsertPD(ctx, &pd); err != nil {
						return err
					}
					k := keep
					k.Location = "changed"
					if err := tx.UpdateDN(ctx, &k); err != nil {
						return err
					}
					// The writes are visible inside the transaction.
					if got, err := tx.DN(ctx, "dn"); err != nil || got.ID != dn.ID {
						return fmt.Errorf("read own write: %v %w", got, err)
					}
					if err := tx.PutPDStatus(ctx, pd.ID, store.PDStatus{Health: store.HealthOK}); err != nil {
						return err
					}
					return tt.last(ctx, tx)
				})
				require.Error(t, err)
				assert.ErrorIs(t, err, tt.want)
				assert.Equal(t, 1, calls)
				assert.Equal(t, store.Counts{DNs: 1}, counts(t, db), "nothing written")
				_, err = viewErr(t, db, func(ctx context.Context, tx *store.Tx) (store.DN, error) { return tx.DN(ctx, "dn") })
				assert.ErrorIs(t, err, vda.ErrNotFound)
				got := view(t, db, func(ctx context.Context, tx *store.Tx) (store.DN, error) { return tx.DNByID(ctx, keep.ID) })
				assert.Equal(t, keep, got, "the update rolled back")
			})
		}
	})
}

// TestUpdateRetriesStaleReads checks that a transaction whose reads went
// stale because a row vanished - a guarded write finds its row deleted, an
// insert finds its parent deleted - runs again, so that its fresh read can
// answer. The deletes happen inside the first run (no database lets a
// concurrent writer in mid-transaction deterministically), and its rollback
// brings the rows back for the second.
func TestUpdateRetriesStaleReads(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		t.Parallel()
		dn := insertDN(t, db, "dn")
		tests := []struct {
			name  string
			first func(ctx context.Context, tx *store.Tx) error
		}{
			{"a guarded write finds its row deleted", func(ctx context.Context, tx *store.Tx) error {
				got, err := tx.DN(ctx, "dn")
				require.NoError(t, err)
				require.NoError(t, tx.DeleteDN(ctx, got))
				_, err = tx.TouchDN(ctx, got.ID, got.Generation+1)
				assert.ErrorIs(t, err, store.ErrConflict)
				assert.ErrorIs(t, err, vda.ErrNotFound)
				return err
			}},
			{"an insert finds its parent deleted", func(ctx context.Context, tx *store.Tx) error {
				got, err := tx.DN(ctx, "dn")
				require.NoError(t, err)
				require.NoError(t, tx.DeleteDN(ctx, got))
				pd := newPD(got.ID, "pd")
				err = tx.InsertPD(ctx, &pd)
				assert.ErrorIs(t, err, vda.ErrFailedPrecondition)
				return err
			}},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				calls := 0
				err := db.Update(t.Context(), func(ctx context.Context, tx *store.Tx) error {
					calls++
					if calls == 1 {
						return tt.first(ctx, tx)
					}
					got, err := tx.DN(ctx, "dn")
					if err != nil {
						return err
					}
					_, err = tx.TouchDN(ctx, got.ID, got.Generation)
					return err
				})
				require.NoError(t, err)
				assert.Equal(t, 2, calls)
			})
		}
		got := view(t, db, func(ctx context.Context, tx *store.Tx) (store.DN, error) { return tx.DNByID(ctx, dn.ID) })
		assert.Equal(t, dn.Generation+2, got.Generation, "each second run touched the dn once")
	})
}

func TestUpdateRetries(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		t.Parallel()
		tests := []struct {
			name      string
			attempts  int   // Config.MaxAttempts
			failUntil int   // fn fails on calls 1..failUntil
			err       error // what it fails with
			wantCalls int
			wantErr   error // nil: Update succeeds
		}{
			{"conflict then success", 0, 1, store.ErrConflict, 2, nil},
			{"wrapped conflict then success", 0, 2, fmt.Errorf("pd moved: %w", store.ErrConflict), 3, nil},
			{"gives up after MaxAttempts", 3, 100, store.ErrConflict, 3, store.ErrConflict},
			{"stale generation is not retried", 0, 100, fmt.Errorf("caller's precondition: %w", vda.ErrStaleGeneration), 1, vda.ErrStaleGeneration},
			{"other errors are not retried", 0, 100, errBoom, 1, errBoom},
			{"not found is not retried", 0, 100, fmt.Errorf("x: %w", vda.ErrNotFound), 1, vda.ErrNotFound},
		}
		for i, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				h := db
				if tt.attempts != 0 {
					h = freshStore(t, db, store.Config{MaxAttempts: tt.attempts})
				}
				name := fmt.Sprintf("dn%d", i)
				calls := 0
				err := h.Update(t.Context(), func(ctx context.Context, tx *store.Tx) error {
					calls++
					// A write on every run: a failed run must leave nothing,
					// or the next run's insert would find the name taken.
					dn := store.DN{NodeSpec: nodeSpec(name)}
					if err := tx.InsertDN(ctx, &dn); err != nil {
						return err
					}
					if calls <= tt.failUntil {
						return tt.err
					}
					return nil
				})
				assert.Equal(t, tt.wantCalls, calls, "fn calls")
				_, getErr := viewErr(t, h, func(ctx context.Context, tx *store.Tx) (store.DN, error) { return tx.DN(ctx, name) })
				if tt.wantErr == nil {
					require.NoError(t, err)
					assert.NoError(t, getErr, "the last run committed")
					return
				}
				require.Error(t, err)
				assert.ErrorIs(t, err, tt.wantErr)
				assert.ErrorIs(t, getErr, vda.ErrNotFound, "no run committed")
			})
		}

		t.Run("stops when the context is done", func(t *testing.T) {
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			calls := 0
			err := db.Update(ctx, func(context.Context, *store.Tx) error {
				calls++
				cancel()
				return store.ErrConflict
			})
			assert.ErrorIs(t, err, context.Canceled)
			assert.Equal(t, 1, calls, "no retry after the context is done")
		})

		t.Run("view returns fn error", func(t *testing.T) {
			dn := insertDN(t, db, "dn")
			err := db.View(t.Context(), func(ctx context.Context, tx *store.Tx) error {
				got, err := tx.DN(ctx, "dn")
				if err != nil {
					return err
				}
				if got != dn {
					return fmt.Errorf("got %+v, want %+v", got, dn)
				}
				return errBoom
			})
			assert.ErrorIs(t, err, errBoom, "View returns fn's error")
		})
	})
}
