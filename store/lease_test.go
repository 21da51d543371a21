package store_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/virtual-disk-array/vda/store"
	"github.com/virtual-disk-array/vda/store/storetest"
)

func TestShardRanges(t *testing.T) {
	lo, _ := store.ShardRange(0)
	_, hi := store.ShardRange(store.LeaseShards - 1)
	assert.Zero(t, lo)
	assert.Equal(t, uint64(store.HashSpace), hi, "the shards cover every hash code")
	for i := 1; i < store.LeaseShards; i++ {
		_, prevHi := store.ShardRange(i - 1)
		lo, _ := store.ShardRange(i)
		assert.Equal(t, prevHi, lo, "shard %d follows shard %d", i, i-1)
	}
}

func TestLeases(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		t.Parallel()
		t0 := time.UnixMilli(1_700_000_000_000).UTC()
		claim := func(shard int, holder string, now time.Time) bool {
			var ok bool
			mustUpdate(t, db, func(ctx context.Context, tx *store.Tx) (err error) {
				ok, err = tx.ClaimLease(ctx, shard, holder, now, now.Add(10*time.Second))
				return err
			})
			return ok
		}
		leases := view(t, db, func(ctx context.Context, tx *store.Tx) ([]store.Lease, error) { return tx.Leases(ctx) })
		require.Len(t, leases, store.LeaseShards)
		assert.Equal(t, store.Lease{Shard: 5}, leases[5], "free at first")

		assert.True(t, claim(5, "a", t0), "a free shard")
		assert.False(t, claim(5, "b", t0.Add(9*time.Second)), "held by a until t0+10s")
		assert.True(t, claim(5, "a", t0.Add(9*time.Second)), "a renews")
		assert.False(t, claim(5, "b", t0.Add(18*time.Second)), "renewed until t0+19s")
		assert.True(t, claim(5, "b", t0.Add(19*time.Second)), "expired: b takes it")
		got := view(t, db, func(ctx context.Context, tx *store.Tx) ([]store.Lease, error) { return tx.Leases(ctx) })[5]
		assert.Equal(t, store.Lease{Shard: 5, Holder: "b", ExpiresAt: t0.Add(29 * time.Second)}, got)

		mustUpdate(t, db, func(ctx context.Context, tx *store.Tx) error { return tx.ReleaseLease(ctx, 5, "a") })
		assert.False(t, claim(5, "a", t0.Add(20*time.Second)), "a cannot release b's lease")
		mustUpdate(t, db, func(ctx context.Context, tx *store.Tx) error { return tx.ReleaseLease(ctx, 5, "b") })
		assert.True(t, claim(5, "a", t0.Add(20*time.Second)), "released: free at once")

		for _, m := range []struct {
			name  string
			until time.Time
		}{{"m2", t0.Add(time.Minute)}, {"m1", t0.Add(time.Minute)}, {"gone", t0.Add(-time.Second)}, {"long-gone", t0.Add(-2 * time.Hour)}} {
			mustUpdate(t, db, func(ctx context.Context, tx *store.Tx) error { return tx.RenewMember(ctx, m.name, m.until) })
		}
		mustUpdate(t, db, func(ctx context.Context, tx *store.Tx) error { return tx.RenewMember(ctx, "m2", t0.Add(2*time.Minute)) })
		live := func(now time.Time) (names []string) {
			// LiveMembers writes (it forgets the long dead): an Update.
			mustUpdate(t, db, func(ctx context.Context, tx *store.Tx) (err error) {
				names, err = tx.LiveMembers(ctx, now)
				return err
			})
			return names
		}
		assert.Equal(t, []string{"m1", "m2"}, live(t0))
		assert.Equal(t, []string{"m2"}, live(t0.Add(90*time.Second)), "m2 renewed past m1")
	})
}
