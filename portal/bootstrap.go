package portal

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/virtual-disk-array/vda/auth"
	"github.com/virtual-disk-array/vda/store"
)

// errSymlink is what openNoFollow returns for a symbolic link.
var errSymlink = errors.New("symbolic link")

// maxTokenFile bounds what EnsureAdminToken reads of a token file.
const maxTokenFile = 4096

// EnsureAdminToken makes sure the API token in the file at path is an
// admin token of db, so that a fresh cluster has a first admin:
//
//   - No file: it makes a token, writes it to path (mode 0600, through a
//     temporary file renamed into place; a missing parent directory is
//     created with mode 0700), then stores its hash as an admin token
//     named "admin" ("admin-<id>" if that name is taken). created is true.
//   - A file whose token the store holds with the same hash: nothing.
//   - A file with a well-formed token the store does not hold: the token
//     is stored as an admin named as above, so one file can serve several
//     portals, or bring back an admin after every admin token was lost.
//
// The file must be a regular file (not a symbolic link) that this process's
// user owns and nobody else may access, in a directory others may not
// write to (unless it is sticky, as /tmp): anyone who could put a token of
// their own there would become an admin. Anything else, a malformed file,
// or a token whose id the store holds with another secret is an error. The token is
// never in an error or a log. Deleting the token with DeleteToken does not
// revoke it while the file exists: the next start stores it again; delete
// or replace the file too.
func EnsureAdminToken(ctx context.Context, db *store.DB, path string) (created bool, err error) {
	if err := safeDir(filepath.Dir(path)); err != nil {
		return false, err
	}
	bearer, err := readTokenFile(path)
	if errors.Is(err, os.ErrNotExist) {
		bearer, id, hash := auth.NewToken()
		if err := writeTokenFile(path, bearer); err != nil {
			return false, err
		}
		// Stored after the file is written: if this fails, the next start
		// finds the file and stores it then.
		if err := storeAdmin(ctx, db, id, hash); err != nil {
			return true, err
		}
		return true, nil
	}
	if err != nil {
		return false, err
	}
	id, secret, err := auth.Parse(bearer)
	if err != nil {
		return false, fmt.Errorf("admin token file %s: %w", path, err)
	}
	var tok store.Token
	err = db.View(ctx, func(ctx context.Context, tx *store.Tx) error {
		tok, err = tx.TokenByID(ctx, id)
		return err
	})
	switch {
	case err == nil && auth.Matches(secret, tok.Hash):
		return false, nil
	case err == nil:
		return false, fmt.Errorf("admin token file %s: the store holds token id %s (%s) with another secret", path, id, tok.Name)
	case !isNotFound(err):
		return false, err
	}
	return false, storeAdmin(ctx, db, id, auth.Hash(secret))
}

// storeAdmin stores an admin token named "admin", or "admin-<id>" if that
// is taken.
func storeAdmin(ctx context.Context, db *store.DB, id string, hash []byte) error {
	return db.Update(ctx, func(ctx context.Context, tx *store.Tx) error {
		tok := store.Token{ID: id, Name: "admin", Role: auth.Admin.String(), Hash: hash,
			Description: "bootstrap admin token (--admin-token-file)"}
		if _, err := tx.Token(ctx, tok.Name); err == nil {
			tok.Name = "admin-" + id
		} else if !isNotFound(err) {
			return err
		}
		if err := tx.CreateToken(ctx, &tok); err != nil {
			return fmt.Errorf("store the admin token: %w", err)
		}
		return nil
	})
}

// readTokenFile reads the token in path, checking the file it opened
// (not a name that could be swapped after a check): a regular file, not a
// symbolic link, owned by this process's user, mode without group or
// other bits. A missing file wraps os.ErrNotExist.
func readTokenFile(path string) (string, error) {
	f, err := openNoFollow(path)
	if errors.Is(err, errSymlink) {
		return "", fmt.Errorf("admin token file %s is a symbolic link: give the file itself", path)
	}
	if err != nil {
		return "", fmt.Errorf("admin token file: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return "", fmt.Errorf("admin token file: %w", err)
	}
	switch {
	case !fi.Mode().IsRegular():
		return "", fmt.Errorf("admin token file %s is not a regular file", path)
	case !ownedByUs(fi):
		return "", fmt.Errorf("admin token file %s is not owned by this process's user: anyone who can write a token there becomes an admin", path)
	case fi.Mode().Perm()&0o077 != 0:
		return "", fmt.Errorf("admin token file %s has mode %04o: others may read the secret; chmod 600 it (or remove it to get a new token)",
			path, fi.Mode().Perm())
	}
	b, err := io.ReadAll(io.LimitReader(f, maxTokenFile+1))
	if err != nil {
		return "", fmt.Errorf("admin token file %s: %w", path, err)
	}
	if len(b) > maxTokenFile {
		return "", fmt.Errorf("admin token file %s: %w", path, auth.ErrMalformed)
	}
	return strings.TrimSpace(string(b)), nil
}

// safeDir refuses a token file's directory that others may write to,
// unless it is sticky (others then cannot replace our file, and a file of
// theirs fails the owner check). A missing directory is fine: it is
// created with mode 0700.
func safeDir(dir string) error {
	fi, err := os.Stat(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("admin token file's directory: %w", err)
	}
	if fi.Mode().Perm()&0o022 != 0 && fi.Mode()&os.ModeSticky == 0 {
		return fmt.Errorf("admin token file's directory %s has mode %04o: others may put a token of theirs there; use a directory only this user may write to",
			dir, fi.Mode().Perm())
	}
	return nil
}

// writeTokenFile writes bearer to path with mode 0600, atomically: a
// reader sees no file or the whole token.
func writeTokenFile(path, bearer string) (err error) {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("admin token file: %w", err)
	}
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("admin token file: %w", err)
	}
	defer func() {
		if err != nil {
			_ = f.Close()
			_ = os.Remove(f.Name())
		}
	}()
	// CreateTemp makes the file 0600; say so in case the umask is odd.
	if err := f.Chmod(0o600); err != nil {
		return fmt.Errorf("admin token file: %w", err)
	}
	if _, err := f.WriteString(bearer + "\n"); err != nil {
		return fmt.Errorf("admin token file: %w", err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("admin token file: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("admin token file: %w", err)
	}
	if err := os.Rename(f.Name(), path); err != nil {
		return fmt.Errorf("admin token file: %w", err)
	}
	// Make the rename durable; a failure here loses nothing but the
	// guarantee.
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		_ = d.Close()
	}
	return nil
}
