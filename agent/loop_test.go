package agent_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/virtual-disk-array/vda"
	"github.com/virtual-disk-array/vda/agent"
	"github.com/virtual-disk-array/vda/spdk"
	"github.com/virtual-disk-array/vda/spdk/spdktest"
)

// gate is a Caller that holds every call until opened, so that a test can
// keep a reconcile in flight.
type gate struct {
	next    spdk.Caller
	mu      sync.Mutex
	closed  bool
	open    chan struct{}
	entered chan struct{}
}

func newGate(next spdk.Caller) *gate {
	return &gate{next: next, open: make(chan struct{}), entered: make(chan struct{}, 1000)}
}

func (g *gate) close() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.closed, g.open = true, make(chan struct{})
}

func (g *gate) release() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		g.closed = false
		close(g.open)
	}
}

func (g *gate) Call(ctx context.Context, method string, params, result any) error {
	g.mu.Lock()
	closed, open := g.closed, g.open
	g.mu.Unlock()
	if closed {
		g.entered <- struct{}{}
		select {
		case <-open:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return g.next.Call(ctx, method, params, result)
}

func dnWith(gen uint64, vds ...agent.VD) agent.DN {
	return agent.DN{ID: "dn1", Generation: gen, Listener: lis("4420"),
		PDs: []agent.PD{{ID: "pd1", Kind: agent.PDMalloc, Size: 64 * mib, VDs: vds}}}
}

func TestSyncupGenerations(t *testing.T) {
	srv := spdktest.Start(t, spdkCfg())
	g := newGate(srv.Conn())
	a := runDN(t, g)
	ctx := ctxT(t)

	vd1 := agent.VD{ID: "vd1", Size: 8 * mib, Primary: "c1"}
	vd2 := agent.VD{ID: "vd2", Size: 8 * mib, Primary: "c1"}
	rep, err := a.Syncup(ctx, dnWith(5, vd1))
	require.NoError(t, err)
	requireOK(t, rep)
	assert.EqualValues(t, 5, a.AppliedGeneration())

	t.Run("older than applied is refused", func(t *testing.T) {
		_, err := a.Syncup(ctx, dnWith(4))
		require.ErrorIs(t, err, vda.ErrStaleGeneration)
		assert.EqualError(t, err, "generation 4 is older than 5: stale generation")
		got, err := srv.Client().NvmfGetSubsystems(ctx, "nqn.2016-06.io.vda:vd-vd1")
		require.NoError(t, err, "the stale state deleted nothing")
		assert.Len(t, got, 1)
	})

	t.Run("the same generation runs again", func(t *testing.T) {
		// How a caller repairs a node: nothing changed, nothing to do.
		rep, err := a.Syncup(ctx, dnWith(5, vd1))
		require.NoError(t, err)
		requireOK(t, rep)
	})

	t.Run("requests during a reconcile coalesce into the newest", func(t *testing.T) {
		g.close()
		type answer struct {
			rep agent.Report
			err error
		}
		first := make(chan answer, 1)
		go func() {
			rep, err := a.Syncup(ctx, dnWith(6))
			first <- answer{rep, err}
		}()
		<-g.entered // generation 6 is reconciling, held at its first SPDK call

		// 7 and 8 queue while 6 runs; 8 replaces 7, so 7 is never applied
		// on its own and its caller gets 8's answer.
		answers := make([]chan answer, 2)
		for i, d := range []agent.DN{dnWith(7, vd2), dnWith(8, vd1, vd2)} {
			answers[i] = make(chan answer, 1)
			go func() {
				rep, err := a.Syncup(ctx, d)
				answers[i] <- answer{rep, err}
			}()
			time.Sleep(20 * time.Millisecond) // let 7 queue before 8
		}
		require.Eventually(t, func() bool {
			// Once 8 is queued, another 7 is stale. (Before, it would join
			// the queue; the short deadline keeps the probe from waiting.)
			probe, cancel := context.WithTimeout(ctx, 10*time.Millisecond)
			defer cancel()
			_, err := a.Syncup(probe, dnWith(7))
			return errors.Is(err, vda.ErrStaleGeneration)
		}, 5*time.Second, 20*time.Millisecond)
		_, err := a.Syncup(ctx, dnWith(6))
		require.ErrorIs(t, err, vda.ErrStaleGeneration, "6 is running and 8 queued: 6 is stale")

		g.release()
		r6 := <-first
		require.NoError(t, r6.err)
		assert.EqualValues(t, 6, r6.rep.Generation)
		for _, ch := range answers {
			r := <-ch
			require.NoError(t, r.err)
			assert.EqualValues(t, 8, r.rep.Generation, "both waiters answered by the newest reconcile")
			requireOK(t, r.rep)
			assert.Len(t, r.rep.VDs, 2)
		}
		assert.EqualValues(t, 8, a.AppliedGeneration())
		subs, err := srv.Client().NvmfGetSubsystems(ctx, "")
		require.NoError(t, err)
		assert.Len(t, subs, 3, "discovery + vd1 + vd2: the newest state")
	})
}

func TestSyncupAfterStop(t *testing.T) {
	srv := spdktest.Start(t, spdkCfg())
	a, err := agent.NewDN(agent.Config{SPDK: srv.Conn(), Logger: quiet()})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	cancel()
	require.NoError(t, <-done)
	_, err = a.Syncup(ctxT(t), dnWith(1))
	require.ErrorIs(t, err, vda.ErrUnavailable)
}

func TestSyncupCallerGivesUp(t *testing.T) {
	srv := spdktest.Start(t, spdkCfg())
	g := newGate(srv.Conn())
	a := runDN(t, g)
	g.close()
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err := a.Syncup(ctx, dnWith(1, agent.VD{ID: "vd1", Size: 8 * mib, Primary: "c1"}))
	require.ErrorIs(t, err, context.DeadlineExceeded)
	// The reconcile goes on without the caller and finishes the state.
	g.release()
	require.Eventually(t, func() bool { return a.AppliedGeneration() == 1 }, 5*time.Second, 10*time.Millisecond)
	_, err = srv.Client().NvmfGetSubsystems(ctxT(t), "nqn.2016-06.io.vda:vd-vd1")
	require.NoError(t, err)
}
