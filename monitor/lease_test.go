package monitor_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/virtual-disk-array/vda/monitor"
	"github.com/virtual-disk-array/vda/store"
	"github.com/virtual-disk-array/vda/store/storetest"
)

// TestSeveralMonitors runs two and three monitors sharing the nodes
// through leases on PostgreSQL and MySQL. At every moment sampled no node
// is covered twice; once they settle every node is covered; a monitor
// killed loses its share to the others within a lease period; a cn killed
// then is failed over exactly once.
func TestSeveralMonitors(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		if db.Dialect() == store.SQLite {
			t.Skip("one monitor per SQLite store")
		}
		for _, count := range []int{2, 3} {
			t.Run(fmt.Sprintf("monitors=%d", count), func(t *testing.T) {
				dsn := storetest.NewDSN(t, backendFor(t, db.Dialect()))
				l := newLab(t, openDSN(t, dsn), 3, 3)
				da := l.createArray()
				all := l.nodeIDs()

				const ttl = time.Second
				ms := make([]*monitor.Monitor, count)
				stops := make([]func(), count)
				// m1 has a store handle of its own, to crash it: with its
				// store closed it cannot hand its leases over.
				m1db := openDSN(t, dsn)
				for i := range count {
					ms[i], stops[i] = l.startMonitor(fmt.Sprintf("m%d", i+1), func(c *monitor.Config) {
						c.Leases = &monitor.LeaseConfig{TTL: ttl, Skew: 100 * time.Millisecond}
						if i == 0 {
							c.DB = m1db
						}
					})
				}
				live := slices.Clone(ms)
				var mu sync.Mutex
				overlap := watchOverlap(t, func() []*monitor.Monitor { mu.Lock(); defer mu.Unlock(); return slices.Clone(live) })

				// The first to start takes every shard; the others get their
				// share as it gives up its surplus.
				eventually(t, 10*time.Second, func() error {
					for i, m := range ms {
						if n := m.Shards(); n < store.LeaseShards/count {
							return notYet("m%d holds %d shards", i+1, n)
						}
					}
					return coverage(live, all)
				})

				// m1 crashes: its shards pass to the others once its leases
				// expire.
				require.NotEmpty(t, ms[0].Covered(), "m1 must cover nodes for its crash to matter")
				died := time.Now()
				require.NoError(t, m1db.Close())
				stops[0]()
				mu.Lock()
				live = live[1:]
				mu.Unlock()
				eventually(t, 10*time.Second, func() error { return coverage(live[:len(live):len(live)], all) })
				took := time.Since(died)
				assert.Less(t, took, 3*ttl, "share taken over within a lease period or so")
				assert.Greater(t, took, ttl/2, "a crashed monitor's leases run until they expire")

				if count == 3 {
					// m2 stops cleanly: it hands its shards over at once.
					stops[1]()
					mu.Lock()
					live = live[1:]
					mu.Unlock()
					stopped := time.Now()
					eventually(t, 10*time.Second, func() error { return coverage(live[:len(live):len(live)], all) })
					assert.Less(t, time.Since(stopped), ttl, "a clean stop hands over before the leases expire")
				}

				// A cn holding a primary dies: one failover, not one per
				// monitor.
				old := primaryOf(da)
				l.kill(old.GetCnName())
				eventually(t, 10*time.Second, func() error {
					if p := primaryOf(l.da("da1")); p.GetId() == old.GetId() {
						return notYet("not failed over")
					}
					return nil
				})
				time.Sleep(500 * time.Millisecond) // room for a second failover, if any
				n := 0
				for _, e := range l.events(old.GetCnName()) {
					if e.To == "failover" {
						n++
					}
				}
				assert.Equal(t, 1, n, "failover events")
				require.NoError(t, overlap(), "a node was covered by two monitors at once")
			})
		}
	})
}

// coverage says whether the monitors cover every node, each once.
func coverage(ms []*monitor.Monitor, all []string) error {
	seen := map[string]int{}
	for _, m := range ms {
		for _, id := range m.Covered() {
			seen[id]++
		}
	}
	for _, id := range all {
		if seen[id] != 1 {
			return notYet("node %s covered by %d monitors", id, seen[id])
		}
	}
	return nil
}

// watchOverlap samples the live monitors' coverage until the test ends;
// the returned func reports the first node seen covered twice.
func watchOverlap(t *testing.T, live func() []*monitor.Monitor) func() error {
	ctx, cancel := context.WithCancel(context.Background())
	var mu sync.Mutex
	var found error
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			seen := map[string]bool{}
			for _, m := range live() {
				for _, id := range m.Covered() {
					if seen[id] {
						mu.Lock()
						if found == nil {
							found = fmt.Errorf("node %s covered twice", id)
						}
						mu.Unlock()
					}
					seen[id] = true
				}
			}
			time.Sleep(5 * time.Millisecond)
		}
	}()
	t.Cleanup(func() { cancel(); <-done })
	return func() error {
		mu.Lock()
		defer mu.Unlock()
		return found
	}
}

// nodeIDs lists the ids of every node of the lab.
func (l *lab) nodeIDs() []string {
	var out []string
	require.NoError(l.t, l.db.View(context.Background(), func(ctx context.Context, tx *store.Tx) error {
		nodes, err := tx.MonitorNodes(ctx, 0, 0)
		for _, n := range nodes {
			out = append(out, n.ID)
		}
		return err
	}))
	return out
}

// openDSN opens a store handle on dsn until the test ends.
func openDSN(t *testing.T, dsn string) *store.DB {
	db, err := store.Open(t.Context(), store.Config{DSN: dsn, Logger: quiet()})
	require.NoError(t, err)
	t.Cleanup(func() { _ = db.Close() })
	return db
}
