package model

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

// TestBucket: a rate's budget refills continuously, allows a burst of
// qosBurst after idling, and makes the I/O beyond it wait its share.
func TestBucket(t *testing.T) {
	t0 := time.Unix(1_700_000_000, 0)
	b := bucket{rate: 1000} // 1 unit per ms
	for i := range 10 {
		assert.Zero(t, b.reserve(t0, 1), "within the burst: unit %d", i)
	}
	assert.Equal(t, time.Millisecond, b.reserve(t0, 1), "the 11th unit is 1 ms ahead")
	assert.Equal(t, 11*time.Millisecond, b.reserve(t0, 10))
	// Idle for a second: the budget refills to the burst, not beyond.
	t1 := t0.Add(time.Second)
	for range 10 {
		assert.Zero(t, b.reserve(t1, 1))
	}
	assert.Positive(t, b.reserve(t1, 1))
	assert.Zero(t, (&bucket{}).reserve(t0, 1e9), "no rate: no limit")
}

// TestQosLimiter: the limits apply by kind: a write waits on the write
// and read-write budgets, a read on the read and read-write ones, every
// I/O on the IOPS budget; a wait ends with its ctx.
func TestQosLimiter(t *testing.T) {
	assert.Nil(t, newQosLimiter(rateLimits{}), "no limits: no limiter")
	q := newQosLimiter(rateLimits{WMBytesPerSec: 1})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	assert.NoError(t, q.wait(ctx, 64<<20, false), "reads are not limited by the write budget")
	assert.NoError(t, q.wait(ctx, 1<<10, true), "within the burst")
	assert.ErrorIs(t, q.wait(ctx, 1<<20, true), context.Canceled, "a MiB at 1 MiB/s waits")
	var nilq *qosLimiter
	assert.NoError(t, nilq.wait(ctx, 1<<30, true))
}
