package store_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/virtual-disk-array/vda"
	"github.com/virtual-disk-array/vda/store"
	"github.com/virtual-disk-array/vda/store/storetest"
)

// newToken returns a token with every field set; its id is derived from
// the name, its hash from a made-up secret.
func newToken(name, role string) store.Token {
	h := sha256.Sum256([]byte("secret of " + name))
	return store.Token{
		ID: fmt.Sprintf("%012s", name), Name: name, Role: role, Hash: h[:],
		Description: "token " + name + " — 🚀",
	}
}

func createToken(t *testing.T, db *store.DB, name, role string) store.Token {
	t.Helper()
	tok := newToken(name, role)
	mustUpdate(t, db, func(ctx context.Context, tx *store.Tx) error { return tx.CreateToken(ctx, &tok) })
	return tok
}

func TestTokens(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		t.Parallel()
		before := time.Now()
		admin := createToken(t, db, "admin", "admin")
		requireRecent(t, before, admin.CreatedAt)

		t.Run("read back by id and by name", func(t *testing.T) {
			got := view(t, db, func(ctx context.Context, tx *store.Tx) (store.Token, error) { return tx.TokenByID(ctx, admin.ID) })
			assert.Equal(t, admin, got)
			got = view(t, db, func(ctx context.Context, tx *store.Tx) (store.Token, error) { return tx.Token(ctx, "admin") })
			assert.Equal(t, admin, got)
		})
		t.Run("missing", func(t *testing.T) {
			_, err := viewErr(t, db, func(ctx context.Context, tx *store.Tx) (store.Token, error) { return tx.TokenByID(ctx, "nope") })
			assert.ErrorIs(t, err, vda.ErrNotFound)
			_, err = viewErr(t, db, func(ctx context.Context, tx *store.Tx) (store.Token, error) { return tx.Token(ctx, "nope") })
			assert.ErrorIs(t, err, vda.ErrNotFound)
			err = db.Update(t.Context(), func(ctx context.Context, tx *store.Tx) error { return tx.DeleteToken(ctx, "nope") })
			assert.ErrorIs(t, err, vda.ErrNotFound)
		})
		t.Run("taken name or id", func(t *testing.T) {
			sameName := newToken("other", "read-only")
			sameName.Name = "admin"
			sameID := newToken("other", "read-only")
			sameID.ID = admin.ID
			for _, tok := range []store.Token{sameName, sameID} {
				err := db.Update(t.Context(), func(ctx context.Context, tx *store.Tx) error { return tx.CreateToken(ctx, &tok) })
				assert.ErrorIs(t, err, vda.ErrAlreadyExists)
			}
		})
		t.Run("list by pages, count by role", func(t *testing.T) {
			db := freshStore(t, db, store.Config{})
			var want []string
			for i := range 7 {
				role := "operator"
				if i%3 == 0 {
					role = "admin"
				}
				want = append(want, createToken(t, db, fmt.Sprintf("t%d", i), role).Name)
			}
			pages := pageAll(t, 3, func(p store.Page) []string {
				toks := view(t, db, func(ctx context.Context, tx *store.Tx) ([]store.Token, error) { return tx.ListTokens(ctx, p) })
				return names(toks, func(tok store.Token) string { return tok.Name })
			})
			assert.Equal(t, [][]string{want[:3], want[3:6], want[6:]}, pages)
			all := view(t, db, func(ctx context.Context, tx *store.Tx) ([]store.Token, error) {
				return tx.ListTokens(ctx, store.Page{})
			})
			require.Len(t, all, 7)
			assert.Equal(t, newToken("t1", "operator").Hash, all[1].Hash)
			n := func(role string) int {
				return view(t, db, func(ctx context.Context, tx *store.Tx) (int, error) { return tx.CountTokens(ctx, role) })
			}
			assert.Equal(t, 3, n("admin"))
			assert.Equal(t, 4, n("operator"))
			assert.Equal(t, 0, n("read-only"))
		})
		t.Run("delete", func(t *testing.T) {
			tok := createToken(t, db, "gone", "operator")
			mustUpdate(t, db, func(ctx context.Context, tx *store.Tx) error { return tx.DeleteToken(ctx, "gone") })
			_, err := viewErr(t, db, func(ctx context.Context, tx *store.Tx) (store.Token, error) { return tx.TokenByID(ctx, tok.ID) })
			assert.ErrorIs(t, err, vda.ErrNotFound)
		})
	})
}

// TestTokenRowsHoldHashes reads api_tokens raw: the hash is there as hex,
// and nothing else the caller gave is secret.
func TestTokenRowsHoldHashes(t *testing.T) {
	t.Parallel()
	for _, b := range storetest.Backends() {
		t.Run(string(b.Dialect), func(t *testing.T) {
			t.Parallel()
			dsn := storetest.NewDSN(t, b)
			db := openStore(t, dsn, store.Config{})
			tok := createToken(t, db, "ops", "operator")
			var id, name, role, hash string
			require.NoError(t, rawDB(t, dsn).QueryRowContext(t.Context(),
				"SELECT id, name, role, hash FROM api_tokens").Scan(&id, &name, &role, &hash))
			assert.Equal(t, []string{tok.ID, "ops", "operator", hex.EncodeToString(tok.Hash)}, []string{id, name, role, hash})
			assert.Equal(t, 4, store.SchemaVersion(), "migration 4 adds api_tokens")
		})
	}
}
