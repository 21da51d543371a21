package model

import (
	"context"
	"sync"
	"time"
)

// QoS on the data path: bdev_set_qos_limit's limits, enforced on every
// I/O of the bdev. Each limit is a budget that refills continuously; an
// I/O that finds it spent waits until the budget covers it (or its ctx
// ends), so a limited bdev serves its rate on average with bursts of at
// most qosBurst worth of budget.

// qosBurst is how far ahead of its rate a bdev may run after idling.
const qosBurst = 10 * time.Millisecond

// bucket is one rate: units per second, and when the next unit is due.
type bucket struct {
	rate float64
	next time.Time
}

// reserve takes n units at now and says how long to wait for them.
func (b *bucket) reserve(now time.Time, n float64) time.Duration {
	if b.rate <= 0 {
		return 0
	}
	if floor := now.Add(-qosBurst); b.next.Before(floor) {
		b.next = floor
	}
	b.next = b.next.Add(time.Duration(n / b.rate * float64(time.Second)))
	return max(b.next.Sub(now), 0)
}

// qosLimiter enforces one bdev's rateLimits.
type qosLimiter struct {
	mu            sync.Mutex
	ios, rw, r, w bucket
}

func newQosLimiter(l rateLimits) *qosLimiter {
	if l == (rateLimits{}) {
		return nil
	}
	mb := func(v uint64) float64 { return float64(v) * 1024 * 1024 }
	return &qosLimiter{
		ios: bucket{rate: float64(l.RWIOsPerSec)}, rw: bucket{rate: mb(l.RWMBytesPerSec)},
		r: bucket{rate: mb(l.RMBytesPerSec)}, w: bucket{rate: mb(l.WMBytesPerSec)},
	}
}

// wait holds an I/O of n bytes (a write if write) until the limits allow
// it.
func (q *qosLimiter) wait(ctx context.Context, n uint64, write bool) error {
	if q == nil {
		return nil
	}
	now := time.Now()
	q.mu.Lock()
	d := q.ios.reserve(now, 1)
	d = max(d, q.rw.reserve(now, float64(n)))
	if write {
		d = max(d, q.w.reserve(now, float64(n)))
	} else {
		d = max(d, q.r.reserve(now, float64(n)))
	}
	q.mu.Unlock()
	if d == 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
