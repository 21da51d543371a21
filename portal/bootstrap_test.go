package portal_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/virtual-disk-array/vda"
	"github.com/virtual-disk-array/vda/auth"
	"github.com/virtual-disk-array/vda/portal"
	"github.com/virtual-disk-array/vda/store"
	"github.com/virtual-disk-array/vda/store/storetest"
)

// storedToken reads a token by id, and whether it exists.
func storedToken(t *testing.T, db *store.DB, id string) (store.Token, bool) {
	t.Helper()
	var tok store.Token
	err := db.View(t.Context(), func(ctx context.Context, tx *store.Tx) error {
		var err error
		tok, err = tx.TokenByID(ctx, id)
		return err
	})
	if errors.Is(err, vda.ErrNotFound) {
		return tok, false
	}
	require.NoError(t, err)
	return tok, true
}

func readToken(t *testing.T, path string) (bearer, id, secret string) {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	bearer = strings.TrimSpace(string(b))
	id, secret, err = auth.Parse(bearer)
	require.NoError(t, err)
	return bearer, id, secret
}

func TestEnsureAdminToken(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		t.Parallel()
		dir := t.TempDir()
		path := filepath.Join(dir, "secrets", "admin.token")

		t.Run("no file: makes one, 0600 in a 0700 directory, and stores it", func(t *testing.T) {
			created, err := portal.EnsureAdminToken(t.Context(), db, path)
			require.NoError(t, err)
			assert.True(t, created)
			fi, err := os.Stat(path)
			require.NoError(t, err)
			assert.Equal(t, os.FileMode(0o600), fi.Mode().Perm())
			di, err := os.Stat(filepath.Dir(path))
			require.NoError(t, err)
			assert.Equal(t, os.FileMode(0o700), di.Mode().Perm())
			entries, err := os.ReadDir(filepath.Dir(path))
			require.NoError(t, err)
			assert.Len(t, entries, 1, "no temporary file is left")

			_, id, secret := readToken(t, path)
			tok, ok := storedToken(t, db, id)
			require.True(t, ok)
			assert.Equal(t, "admin", tok.Name)
			assert.Equal(t, "admin", tok.Role)
			assert.True(t, auth.Matches(secret, tok.Hash))
		})
		t.Run("the file's token is stored: nothing", func(t *testing.T) {
			before, _, _ := readToken(t, path)
			created, err := portal.EnsureAdminToken(t.Context(), db, path)
			require.NoError(t, err)
			assert.False(t, created)
			after, _, _ := readToken(t, path)
			assert.Equal(t, before, after)
		})
		t.Run("a token the store does not hold: stored, under another name", func(t *testing.T) {
			bearer, id, _ := auth.NewToken()
			other := filepath.Join(dir, "other.token")
			require.NoError(t, os.WriteFile(other, []byte(bearer+"\n"), 0o600))
			created, err := portal.EnsureAdminToken(t.Context(), db, other)
			require.NoError(t, err)
			assert.False(t, created, "the file was not written")
			tok, ok := storedToken(t, db, id)
			require.True(t, ok)
			assert.Equal(t, "admin-"+id, tok.Name, `"admin" is taken`)
			assert.Equal(t, "admin", tok.Role)
			// And it is now known: a second start changes nothing.
			created, err = portal.EnsureAdminToken(t.Context(), db, other)
			require.NoError(t, err)
			assert.False(t, created)
		})
		t.Run("same id, another secret", func(t *testing.T) {
			_, id, _ := readToken(t, path)
			forged, _, _ := auth.NewToken()
			_, secret, err := auth.Parse(forged)
			require.NoError(t, err)
			bad := filepath.Join(dir, "forged.token")
			require.NoError(t, os.WriteFile(bad, []byte("vda_"+id+"_"+secret), 0o600))
			_, err = portal.EnsureAdminToken(t.Context(), db, bad)
			require.ErrorContains(t, err, "another secret")
			assert.NotContains(t, err.Error(), secret)
		})
		t.Run("others may read it", func(t *testing.T) {
			bearer, id, _ := auth.NewToken()
			open := filepath.Join(dir, "open.token")
			require.NoError(t, os.WriteFile(open, []byte(bearer), 0o600))
			for _, mode := range []os.FileMode{0o644, 0o640, 0o604, 0o660} {
				require.NoError(t, os.Chmod(open, mode))
				_, err := portal.EnsureAdminToken(t.Context(), db, open)
				require.Error(t, err, "mode %04o", mode)
				assert.ErrorContains(t, err, "others may read the secret")
				assert.NotContains(t, err.Error(), bearer)
			}
			_, ok := storedToken(t, db, id)
			assert.False(t, ok, "a token from an open file is not stored")
		})
		t.Run("malformed", func(t *testing.T) {
			for name, content := range map[string]string{
				"empty":   "",
				"garbage": "hunter2",
				"two":     "vda_aaaaaaaaaaaa_x\nvda_bbbbbbbbbbbb_y",
				"huge":    strings.Repeat("a", 10000),
			} {
				p := filepath.Join(dir, name+".token")
				require.NoError(t, os.WriteFile(p, []byte(content), 0o600))
				_, err := portal.EnsureAdminToken(t.Context(), db, p)
				require.ErrorIs(t, err, auth.ErrMalformed, name)
				if content != "" {
					assert.NotContains(t, err.Error(), content, name)
				}
			}
		})
		t.Run("a directory", func(t *testing.T) {
			_, err := portal.EnsureAdminToken(t.Context(), db, dir)
			assert.ErrorContains(t, err, "not a regular file")
		})
		t.Run("a symbolic link to a good file", func(t *testing.T) {
			bearer, id, _ := auth.NewToken()
			target := filepath.Join(dir, "target.token")
			require.NoError(t, os.WriteFile(target, []byte(bearer), 0o600))
			link := filepath.Join(dir, "link.token")
			require.NoError(t, os.Symlink(target, link))
			_, err := portal.EnsureAdminToken(t.Context(), db, link)
			assert.ErrorContains(t, err, "symbolic link")
			_, ok := storedToken(t, db, id)
			assert.False(t, ok)
		})
		t.Run("a file of another user", func(t *testing.T) {
			if os.Geteuid() != 0 {
				t.Skip("needs root to give a file away")
			}
			bearer, id, _ := auth.NewToken()
			theirs := filepath.Join(dir, "theirs.token")
			require.NoError(t, os.WriteFile(theirs, []byte(bearer), 0o600))
			require.NoError(t, os.Chown(theirs, 65534, 65534))
			_, err := portal.EnsureAdminToken(t.Context(), db, theirs)
			assert.ErrorContains(t, err, "not owned by this process's user")
			_, ok := storedToken(t, db, id)
			assert.False(t, ok)
		})
		t.Run("a directory others may write to", func(t *testing.T) {
			open := filepath.Join(t.TempDir(), "shared")
			require.NoError(t, os.Mkdir(open, 0o777))
			require.NoError(t, os.Chmod(open, 0o777)) // whatever the umask
			bearer, id, _ := auth.NewToken()
			planted := filepath.Join(open, "admin.token")
			require.NoError(t, os.WriteFile(planted, []byte(bearer), 0o600))
			_, err := portal.EnsureAdminToken(t.Context(), db, planted)
			assert.ErrorContains(t, err, "others may put a token of theirs there")
			_, ok := storedToken(t, db, id)
			assert.False(t, ok, "a token planted in a shared directory is not stored")
			_, err = portal.EnsureAdminToken(t.Context(), db, filepath.Join(open, "new.token"))
			assert.ErrorContains(t, err, "others may put a token of theirs there", "nor is one made there")
			// A sticky shared directory (as /tmp) is fine: nobody else can
			// replace our file there.
			require.NoError(t, os.Chmod(open, 0o777|os.ModeSticky))
			created, err := portal.EnsureAdminToken(t.Context(), db, filepath.Join(open, "new.token"))
			require.NoError(t, err)
			assert.True(t, created)
		})
	})
}
