package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/uptrace/bun"
	"github.com/virtual-disk-array/vda"
)

// HashSpace bounds node hash codes: they are in [0, HashSpace). The portal
// refuses larger ones and derives a node's default from its name.
const HashSpace = 1 << 16

// LeaseShards is how many shards the node hash space is cut into for
// monitors to hold: shard i covers hash codes [i·HashSpace/LeaseShards,
// (i+1)·HashSpace/LeaseShards). Enough for dozens of monitors to share the
// work evenly; few enough that a monitor renews them all in one round.
const LeaseShards = 64

// ShardRange is the hash codes shard i covers: [lo, hi).
func ShardRange(i int) (lo, hi uint64) {
	const span = HashSpace / LeaseShards
	return uint64(i) * span, uint64(i+1) * span
}

// Lease is one shard's lease: who holds it, until when.
type Lease struct {
	Shard     int
	Holder    string
	ExpiresAt time.Time
}

type leaseRow struct {
	bun.BaseModel `bun:"table:monitor_lease,alias:ml"`

	Shard     int    `bun:"shard,pk"`
	Holder    string `bun:"holder"`
	ExpiresAt int64  `bun:"expires_at"`
}

// Leases lists every shard's lease, by shard.
func (tx *Tx) Leases(ctx context.Context) ([]Lease, error) {
	var rows []leaseRow
	if err := tx.tx.NewSelect().Model(&rows).OrderExpr("shard").Scan(ctx); err != nil {
		return nil, fmt.Errorf("list leases: %w", err)
	}
	out := make([]Lease, len(rows))
	for i, r := range rows {
		out[i] = Lease{Shard: r.Shard, Holder: r.Holder, ExpiresAt: fromMillis(r.ExpiresAt)}
	}
	return out, nil
}

// ClaimLease makes holder the holder of shard until expires, if it holds
// it already or the lease expired by now. It says whether it did: of
// monitors racing for a shard, one wins.
func (tx *Tx) ClaimLease(ctx context.Context, shard int, holder string, now, expires time.Time) (bool, error) {
	res, err := tx.tx.NewUpdate().Table("monitor_lease").
		Set("holder = ?", holder).
		Set("expires_at = ?", millis(expires)).
		Where("shard = ?", shard).
		WhereGroup(" AND ", func(q *bun.UpdateQuery) *bun.UpdateQuery {
			return q.Where("holder = ?", holder).WhereOr("expires_at <= ?", millis(now))
		}).
		Exec(ctx)
	if err != nil {
		return false, classify(fmt.Errorf("claim lease %d: %w", shard, err))
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("claim lease %d: %w", shard, err)
	}
	return n > 0, nil
}

// ReleaseLease gives shard up, if holder holds it, so that another
// monitor may claim it at once.
func (tx *Tx) ReleaseLease(ctx context.Context, shard int, holder string) error {
	_, err := tx.tx.NewUpdate().Table("monitor_lease").
		Set("holder = ''").Set("expires_at = 0").
		Where("shard = ?", shard).Where("holder = ?", holder).
		Exec(ctx)
	if err != nil {
		return classify(fmt.Errorf("release lease %d: %w", shard, err))
	}
	return nil
}

// RenewMember records that monitor name is alive until expires, so that
// the others count it when they share the shards out.
func (tx *Tx) RenewMember(ctx context.Context, name string, expires time.Time) error {
	res, err := tx.tx.NewUpdate().Table("monitor_member").
		Set("expires_at = ?", millis(expires)).Where("name = ?", name).Exec(ctx)
	if err != nil {
		return classify(fmt.Errorf("renew monitor %s: %w", name, err))
	}
	if n, _ := res.RowsAffected(); n > 0 {
		return nil
	}
	// A racing insert of the same name fails as a conflict, and Update
	// runs this again: the update then finds the row.
	if _, err := tx.tx.NewRaw("INSERT INTO monitor_member (name, expires_at) VALUES (?, ?)", name, millis(expires)).Exec(ctx); err != nil {
		err = classify(fmt.Errorf("register monitor %s: %w", name, err))
		if errors.Is(err, vda.ErrAlreadyExists) {
			return fmt.Errorf("%w: %w", ErrConflict, err)
		}
		return err
	}
	return nil
}

// LiveMembers lists, sorted, the monitors alive at now, and forgets
// those long dead (an hour past their expiry): call it in an Update.
func (tx *Tx) LiveMembers(ctx context.Context, now time.Time) ([]string, error) {
	if _, err := tx.tx.NewDelete().Table("monitor_member").
		Where("expires_at < ?", millis(now.Add(-time.Hour))).Exec(ctx); err != nil {
		return nil, classify(fmt.Errorf("forget dead monitors: %w", err))
	}
	var names []string
	if err := tx.tx.NewSelect().Table("monitor_member").Column("name").
		Where("expires_at > ?", millis(now)).OrderExpr("name").Scan(ctx, &names); err != nil {
		return nil, fmt.Errorf("list monitors: %w", err)
	}
	return names, nil
}

// migrateLeases adds the monitors' membership and shard leases (version 3).
func migrateLeases(ctx context.Context, db bun.IDB, d Dialect) error {
	if err := execAll(ctx, db, d, []string{
		`CREATE TABLE IF NOT EXISTS monitor_member (
	name VARCHAR(255) NOT NULL PRIMARY KEY,
	expires_at BIGINT NOT NULL
){tail}`,
		`CREATE TABLE IF NOT EXISTS monitor_lease (
	shard INTEGER NOT NULL PRIMARY KEY,
	holder VARCHAR(255) NOT NULL,
	expires_at BIGINT NOT NULL
){tail}`,
	}); err != nil {
		return err
	}
	// The migration may run again after a crash on MySQL, whose DDL does
	// not roll back: insert only the missing shards.
	var have []int
	if err := db.NewSelect().Table("monitor_lease").Column("shard").Scan(ctx, &have); err != nil {
		return fmt.Errorf("list lease shards: %w", err)
	}
	exists := map[int]bool{}
	for _, s := range have {
		exists[s] = true
	}
	for i := range LeaseShards {
		if exists[i] {
			continue
		}
		if _, err := db.NewRaw("INSERT INTO monitor_lease (shard, holder, expires_at) VALUES (?, '', 0)", i).Exec(ctx); err != nil {
			return fmt.Errorf("add lease shard %d: %w", i, err)
		}
	}
	return nil
}
