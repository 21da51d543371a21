package agent

import (
	"context"
	"fmt"
	"sync"

	"github.com/virtual-disk-array/vda"
)

// loop is the concurrency shell around a reconciler: one goroutine (Run)
// owns reconciling; Syncup hands it a desired state through a latest-wins
// slot and waits for the answer. Requests that arrive while a reconcile
// runs are coalesced: the newest desired state replaces an older waiting
// one, and every waiter is answered by the reconcile that covered its
// generation or a newer one. A generation older than one applied, running
// or waiting is refused with vda.ErrStaleGeneration, so a slow, stale
// caller cannot undo newer work.
type loop[D any, R any] struct {
	gen func(D) uint64
	// reconcile applies a desired state; an error with its report means
	// it was refused as a whole and changed nothing: its generation is
	// not applied.
	reconcile func(context.Context, D) (R, error)
	// merge, if set, coalesces a desired state into a waiting one of the
	// same generation; nil means the newer replaces the older.
	merge func(prev, next D) D

	mu      sync.Mutex
	applied uint64 // highest generation reconciled
	running uint64 // generation being reconciled, 0 when idle
	pending *job[D, R]
	stopped bool
	wake    chan struct{}
}

type job[D any, R any] struct {
	d    D
	gen  uint64
	done chan struct{}
	rep  R
	err  error
}

func newLoop[D any, R any](gen func(D) uint64, reconcile func(context.Context, D) (R, error)) *loop[D, R] {
	return &loop[D, R]{gen: gen, reconcile: reconcile, wake: make(chan struct{}, 1)}
}

// submit queues d and waits for the reconcile that covers it, or for ctx.
// The reconcile goes on if ctx ends first: another caller may be waiting
// for it, and a half-applied state is no better than a whole one.
func (l *loop[D, R]) submit(ctx context.Context, d D) (R, error) {
	var zero R
	g := l.gen(d)
	l.mu.Lock()
	if l.stopped {
		l.mu.Unlock()
		return zero, fmt.Errorf("agent is shutting down: %w", vda.ErrUnavailable)
	}
	newest := max(l.applied, l.running)
	if l.pending != nil {
		newest = max(newest, l.pending.gen)
	}
	// The same generation as the last applied (or running) one runs again:
	// that is how a caller repairs a node whose SPDK lost objects.
	if g < newest || (l.pending != nil && g < l.pending.gen) {
		l.mu.Unlock()
		return zero, fmt.Errorf("generation %d is older than %d: %w", g, newest, vda.ErrStaleGeneration)
	}
	j := l.pending
	if j == nil {
		j = &job[D, R]{done: make(chan struct{})}
		l.pending = j
	} else if l.merge != nil && j.gen == g {
		d = l.merge(j.d, d)
	}
	// Waiters of an older pending generation get the newer reconcile's
	// answer; the older desired state is never applied.
	j.d, j.gen = d, g
	l.mu.Unlock()
	select {
	case l.wake <- struct{}{}:
	default:
	}
	select {
	case <-j.done:
		return j.rep, j.err
	case <-ctx.Done():
		return zero, ctx.Err()
	}
}

// run reconciles until ctx ends, then fails whatever still waits.
func (l *loop[D, R]) run(ctx context.Context) error {
	defer func() {
		l.mu.Lock()
		l.stopped = true
		if j := l.pending; j != nil {
			l.pending = nil
			j.err = fmt.Errorf("agent is shutting down: %w", vda.ErrUnavailable)
			close(j.done)
		}
		l.mu.Unlock()
	}()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-l.wake:
		}
		l.mu.Lock()
		j := l.pending
		l.pending = nil
		if j != nil {
			l.running = j.gen
		}
		l.mu.Unlock()
		if j == nil {
			continue
		}
		j.rep, j.err = l.reconcile(ctx, j.d)
		l.mu.Lock()
		if j.err == nil {
			l.applied = max(l.applied, j.gen)
		}
		l.running = 0
		l.mu.Unlock()
		close(j.done)
	}
}

// appliedGeneration is the highest generation reconciled by this process.
func (l *loop[D, R]) appliedGeneration() uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.applied
}
