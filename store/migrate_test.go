package store_test

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/virtual-disk-array/vda/store"
	"github.com/virtual-disk-array/vda/store/storetest"
)

// requireSchema checks the migrations table of dsn: every version up to
// SchemaVersion recorded once, nothing beyond.
func requireSchema(t *testing.T, dsn string) {
	t.Helper()
	raw := rawDB(t, dsn)
	var n, maxVersion int
	require.NoError(t, raw.QueryRowContext(t.Context(),
		"SELECT COUNT(*), MAX(version) FROM vda_schema_migrations").Scan(&n, &maxVersion))
	assert.Equal(t, store.SchemaVersion(), maxVersion, "schema version")
	assert.Equal(t, store.SchemaVersion(), n, "one row per migration")
}

func TestMigrations(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		t.Parallel()
		b := backendOf(t, db)

		t.Run("open twice", func(t *testing.T) {
			dsn := storetest.NewDSN(t, b)

			first, err := store.Open(t.Context(), store.Config{DSN: dsn})
			require.NoError(t, err)
			dn := store.DN{NodeSpec: nodeSpec("survivor")}
			mustUpdate(t, first, func(ctx context.Context, tx *store.Tx) error { return tx.InsertDN(ctx, &dn) })
			require.NoError(t, first.Close())

			second, err := store.Open(t.Context(), store.Config{DSN: dsn})
			require.NoError(t, err, "second Open on a migrated database")
			t.Cleanup(func() { _ = second.Close() })
			got := view(t, second, func(ctx context.Context, tx *store.Tx) (store.DN, error) { return tx.DN(ctx, "survivor") })
			assert.Equal(t, dn, got, "data survives a second migration")
			requireSchema(t, dsn)
		})

		t.Run("open concurrently", func(t *testing.T) {
			dsn := storetest.NewDSN(t, b)
			const n = 8
			dbs := make([]*store.DB, n)
			errs := make([]error, n)
			var wg sync.WaitGroup
			for i := range n {
				wg.Go(func() { dbs[i], errs[i] = store.Open(t.Context(), store.Config{DSN: dsn}) })
			}
			wg.Wait()
			for i := range n {
				if dbs[i] != nil {
					t.Cleanup(func() { _ = dbs[i].Close() })
				}
			}
			for i, err := range errs {
				require.NoError(t, err, "Open %d", i)
			}
			requireSchema(t, dsn)
			// Every handle works on the one schema.
			for i, h := range dbs {
				dn := store.DN{NodeSpec: nodeSpec(fmt.Sprintf("dn%d", i))}
				mustUpdate(t, h, func(ctx context.Context, tx *store.Tx) error { return tx.InsertDN(ctx, &dn) })
			}
			assert.Equal(t, n, counts(t, dbs[0]).DNs)
		})

		t.Run("schema too new", func(t *testing.T) {
			dsn := storetest.NewDSN(t, b)
			first, err := store.Open(t.Context(), store.Config{DSN: dsn})
			require.NoError(t, err)
			require.NoError(t, first.Close())

			raw := rawDB(t, dsn)
			_, err = raw.ExecContext(t.Context(),
				fmt.Sprintf("INSERT INTO vda_schema_migrations (version, name, applied_at) VALUES (%d, 'from the future', 0)",
					store.SchemaVersion()+1))
			require.NoError(t, err)

			again, err := store.Open(t.Context(), store.Config{DSN: dsn})
			if again != nil {
				_ = again.Close()
			}
			require.Error(t, err)
			assert.ErrorIs(t, err, store.ErrSchemaTooNew)
			assert.Nil(t, again)
		})
	})
}
