package monitor

import (
	"context"
	"slices"
	"time"

	"github.com/virtual-disk-array/vda/store"
)

// LeaseConfig makes monitors share the nodes through leases in the store:
// the hash space of node hash codes is cut into store.LeaseShards shards;
// each monitor holds its fair share (the shards divided by the live
// monitors, rounded up) under leases it renews every round and that
// expire after TTL. A monitor that dies loses its shards within TTL; one
// that joins gets shards as the others give up their surplus.
type LeaseConfig struct {
	// TTL is how long a lease lasts unless renewed; 0 means 10 s. Renewal
	// happens every round, so TTL must exceed the monitor's Period by a
	// margin for slow store round trips.
	TTL time.Duration
	// Skew is how far the monitors' clocks may disagree: a monitor stops
	// covering a shard Skew before its lease ends, so that the next holder
	// never overlaps it. 0 means 1 s.
	Skew time.Duration
}

// Range is a range of node hash codes, [Lo, Hi); Hi 0 means no bound.
type Range struct{ Lo, Hi uint64 }

// shares holds a monitor's leases.
type shares struct {
	m   *Monitor
	cfg LeaseConfig
	// held maps a shard to when its lease ends; under m.mu, since Covered
	// reads it.
	held map[int]time.Time
}

func newShares(m *Monitor, cfg LeaseConfig) *shares {
	if cfg.TTL == 0 {
		cfg.TTL = 10 * time.Second
	}
	if cfg.Skew == 0 {
		cfg.Skew = time.Second
	}
	return &shares{m: m, cfg: cfg, held: map[int]time.Time{}}
}

// renew renews this monitor's membership and leases, claims free shards
// up to its fair share and gives up the surplus, then returns the ranges
// it covers now. A store error keeps the leases held so far, each until
// it ends.
func (s *shares) renew(ctx context.Context) []Range {
	m := s.m
	now := m.cfg.Now()
	until := now.Add(s.cfg.TTL)
	var held map[int]time.Time
	start := time.Now()
	err := m.cfg.DB.Update(ctx, func(ctx context.Context, tx *store.Tx) error {
		held = map[int]time.Time{}
		if err := tx.RenewMember(ctx, m.cfg.Name, until); err != nil {
			return err
		}
		members, err := tx.LiveMembers(ctx, now)
		if err != nil {
			return err
		}
		fair := fairShare(members, m.cfg.Name)
		leases, err := tx.Leases(ctx)
		if err != nil {
			return err
		}
		var mine, free []int
		for _, l := range leases {
			switch {
			case l.Holder == m.cfg.Name && l.ExpiresAt.After(now):
				mine = append(mine, l.Shard)
			case !l.ExpiresAt.After(now):
				free = append(free, l.Shard)
			}
		}
		for i, shard := range mine {
			if i >= fair {
				// Surplus: give it up for a monitor that joined.
				if err := tx.ReleaseLease(ctx, shard, m.cfg.Name); err != nil {
					return err
				}
				continue
			}
			if err := s.claim(ctx, tx, held, shard, now, until); err != nil {
				return err
			}
		}
		for _, shard := range free {
			if len(held) >= fair {
				break
			}
			if err := s.claim(ctx, tx, held, shard, now, until); err != nil {
				return err
			}
		}
		return nil
	})
	since(m.met.storeTime.WithLabelValues("leases"), start)
	if err != nil {
		if ctx.Err() == nil {
			m.cfg.Logger.Warn("cannot renew monitor leases; covering what is still held", "error", err)
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if err == nil {
		s.held = held
	}
	m.met.shards.Set(float64(len(s.held)))
	return s.ranges(now)
}

// fairShare is how many shards monitor name should hold among the live
// members (sorted): an even split, the first ones by name taking one more
// while shards remain, so that the shares add up to exactly LeaseShards.
func fairShare(members []string, name string) int {
	rank, ok := slices.BinarySearch(members, name)
	if !ok {
		// Not listed yet (its membership was just written by a clock
		// behind the others'): count it anyway.
		members = slices.Insert(slices.Clone(members), rank, name)
	}
	n := len(members)
	share := store.LeaseShards / n
	if rank < store.LeaseShards%n {
		share++
	}
	return share
}

func (s *shares) claim(ctx context.Context, tx *store.Tx, held map[int]time.Time, shard int, now, until time.Time) error {
	ok, err := tx.ClaimLease(ctx, shard, s.m.cfg.Name, now, until)
	if ok {
		held[shard] = until
	}
	return err
}

// ranges merges the shards whose lease still runs (by Skew) into ranges;
// m.mu is held.
func (s *shares) ranges(now time.Time) []Range {
	var shards []int
	for shard, until := range s.held {
		if until.Add(-s.cfg.Skew).After(now) {
			shards = append(shards, shard)
		}
	}
	slices.Sort(shards)
	var out []Range
	for _, shard := range shards {
		lo, hi := store.ShardRange(shard)
		if n := len(out); n > 0 && out[n-1].Hi == lo {
			out[n-1].Hi = hi
			continue
		}
		out = append(out, Range{lo, hi})
	}
	return out
}

// covers says whether a node's hash code is in a range; m.mu is held.
func (s *shares) covers(hash uint32, now time.Time) bool {
	for _, r := range s.ranges(now) {
		if uint64(hash) >= r.Lo && (r.Hi == 0 || uint64(hash) < r.Hi) {
			return true
		}
	}
	return false
}

// release gives up every lease held, for a monitor that stops cleanly:
// the others take its shards at their next round instead of a TTL later.
// It is bounded by TTL; a monitor that cannot reach the store leaves its
// leases to expire.
func (s *shares) release() {
	m := s.m
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.TTL)
	defer cancel()
	m.mu.Lock()
	held := make([]int, 0, len(s.held))
	for shard := range s.held {
		held = append(held, shard)
	}
	s.held = map[int]time.Time{}
	m.mu.Unlock()
	err := m.cfg.DB.Update(ctx, func(ctx context.Context, tx *store.Tx) error {
		for _, shard := range held {
			if err := tx.ReleaseLease(ctx, shard, m.cfg.Name); err != nil {
				return err
			}
		}
		return tx.RenewMember(ctx, m.cfg.Name, m.cfg.Now())
	})
	if err != nil {
		m.cfg.Logger.Warn("cannot give up monitor leases; they expire on their own", "error", err)
	}
}
