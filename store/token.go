package store

import (
	"context"
	"encoding/hex"
	"fmt"
	"time"

	"github.com/uptrace/bun"
	"github.com/virtual-disk-array/vda"
)

// Token is a portal API token. The store keeps only the hash of its
// secret; the secret itself is shown once, to whoever created the token.
type Token struct {
	// ID is the token's public id, part of the bearer string; the key.
	ID string
	// Name is unique among tokens.
	Name string
	// Role is the role's name as package auth spells it ("read-only",
	// "operator", "admin"); the store does not interpret it.
	Role string
	// Hash is the SHA-256 of the secret.
	Hash        []byte
	Description string
	CreatedAt   time.Time
}

type tokenRow struct {
	bun.BaseModel `bun:"table:api_tokens,alias:tok"`

	ID          string `bun:"id,pk"`
	Name        string `bun:"name"`
	Role        string `bun:"role"`
	Hash        string `bun:"hash"`
	Description string `bun:"description"`
	CreatedAt   int64  `bun:"created_at"`
}

func (r *tokenRow) token() Token {
	h, _ := hex.DecodeString(r.Hash)
	return Token{ID: r.ID, Name: r.Name, Role: r.Role, Hash: h, Description: r.Description, CreatedAt: fromMillis(r.CreatedAt)}
}

// CreateToken stores tok and sets tok.CreatedAt. A taken name or id is
// ErrAlreadyExists.
func (tx *Tx) CreateToken(ctx context.Context, tok *Token) error {
	tok.CreatedAt = tx.now().UTC().Truncate(time.Millisecond)
	r := tokenRow{
		ID: tok.ID, Name: tok.Name, Role: tok.Role, Hash: hex.EncodeToString(tok.Hash),
		Description: tok.Description, CreatedAt: millis(tok.CreatedAt),
	}
	if _, err := tx.tx.NewInsert().Model(&r).Exec(ctx); err != nil {
		return wrapUnique(fmt.Errorf("insert token %s: %w", tok.Name, err), "token %s (id %s)", tok.Name, tok.ID)
	}
	return nil
}

// DeleteToken deletes the token named name, or returns ErrNotFound.
func (tx *Tx) DeleteToken(ctx context.Context, name string) error {
	res, err := tx.tx.NewDelete().Table("api_tokens").Where("name = ?", name).Exec(ctx)
	if err != nil {
		return classify(fmt.Errorf("delete token %s: %w", name, err))
	}
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("delete token %s: %w", name, err)
	}
	if n == 0 {
		return fmt.Errorf("token %s: %w", name, vda.ErrNotFound)
	}
	return nil
}

// Token returns the token named name, or ErrNotFound.
func (tx *Tx) Token(ctx context.Context, name string) (Token, error) {
	var r tokenRow
	err := tx.tx.NewSelect().Model(&r).Where("name = ?", name).Scan(ctx)
	return r.token(), notFound(err, "token %s", name)
}

// TokenByID returns the token with the public id, or ErrNotFound.
func (tx *Tx) TokenByID(ctx context.Context, id string) (Token, error) {
	var r tokenRow
	err := tx.tx.NewSelect().Model(&r).Where("id = ?", id).Scan(ctx)
	return r.token(), notFound(err, "token with id %s", id)
}

// ListTokens lists tokens ordered by name.
func (tx *Tx) ListTokens(ctx context.Context, p Page) ([]Token, error) {
	var rows []tokenRow
	if err := paged(tx.tx.NewSelect().Model(&rows), "name", p).Scan(ctx); err != nil {
		return nil, fmt.Errorf("list tokens: %w", err)
	}
	out := make([]Token, len(rows))
	for i := range rows {
		out[i] = rows[i].token()
	}
	return out, nil
}

// CountTokensForUpdate counts the tokens of role and locks them until the
// transaction ends, so that a decision on their number holds until the
// commit: two concurrent deletes of the last two admin tokens then run one
// after the other, and the second counts one. The count comes from the
// locking read itself: on MySQL a plain count would read the transaction's
// older snapshot. (SQLite's write transactions are serialised already.)
func (tx *Tx) CountTokensForUpdate(ctx context.Context, role string) (int, error) {
	if tx.dialect == SQLite {
		return tx.CountTokens(ctx, role)
	}
	var ids []string
	if err := tx.tx.NewRaw("SELECT id FROM api_tokens WHERE role = ? FOR UPDATE", role).Scan(ctx, &ids); err != nil {
		return 0, classify(fmt.Errorf("lock %s tokens: %w", role, err))
	}
	return len(ids), nil
}

// CountTokens counts the tokens of a role.
func (tx *Tx) CountTokens(ctx context.Context, role string) (int, error) {
	n, err := tx.tx.NewSelect().Table("api_tokens").Where("role = ?", role).Count(ctx)
	if err != nil {
		return 0, fmt.Errorf("count tokens: %w", err)
	}
	return int(n), nil
}

// migrateTokens adds the portal's API tokens (version 4): the public id
// is the key, the name is unique, and the secret is kept only as the hex
// of its SHA-256.
func migrateTokens(ctx context.Context, db bun.IDB, d Dialect) error {
	return execAll(ctx, db, d, []string{`CREATE TABLE IF NOT EXISTS api_tokens (
	id VARCHAR(32) NOT NULL PRIMARY KEY,
	name {name} NOT NULL,
	role VARCHAR(16) NOT NULL,
	hash VARCHAR(64) NOT NULL,
	description VARCHAR(1024) NOT NULL,
	created_at BIGINT NOT NULL,
	CONSTRAINT api_tokens_name UNIQUE (name)
){tail}`})
}
