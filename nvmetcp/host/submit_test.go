package host_test

import (
	"bytes"
	"context"
	"errors"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/virtual-disk-array/vda/nvmetcp/host"
	"github.com/virtual-disk-array/vda/nvmetcp/target"
)

// TestSubmitChained: SubmitWrite and SubmitRead, each next command
// submitted from the previous one's callback as a load generator does,
// with more chains than the queues have slots, over several queue
// configurations: every block reads back as written and nothing is left
// in flight.
func TestSubmitChained(t *testing.T) {
	for _, tc := range []struct {
		name          string
		queues, depth int
		chains        int
		bs            uint32
		tcfg          target.Config
	}{
		{"one queue, full", 1, 8, 8, 4096, target.Config{}},
		{"chains beyond the slots", 2, 4, 12, 512, target.Config{C2HSuccess: true}},
		{"many queues", 4, 16, 32, 4096, target.Config{MaxH2CData: 8192, C2HDataMax: 8192}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := start(t, tc.tcfg, tc.bs)
			c := dial(t, e, host.Config{IOQueues: tc.queues, QueueDepth: tc.depth})
			ctx := context.Background()
			const perChain = 30 // 32 chains x 30 x 16 KiB fit the 16 MiB device
			size := 4 * int(tc.bs)
			var wg sync.WaitGroup
			var failures atomic.Int32
			fail := func(format string, args ...any) {
				failures.Add(1)
				t.Errorf(format, args...)
			}
			for ch := range tc.chains {
				wg.Add(1)
				region := uint64(ch) * uint64(perChain*size)
				rng := rand.New(rand.NewPCG(uint64(ch), 3))
				var step func(i int)
				step = func(i int) {
					if i == perChain {
						wg.Done()
						return
					}
					off := region + uint64(i*size)
					buf := make([]byte, size)
					for j := range buf {
						buf[j] = byte(rng.Uint32())
					}
					err := c.SubmitWrite(buf, off, func(err error) {
						if err != nil {
							fail("write %d: %v", off, err)
							wg.Done()
							return
						}
						got := make([]byte, size)
						if err := c.SubmitRead(got, off, func(err error) {
							switch {
							case err != nil:
								fail("read %d: %v", off, err)
								wg.Done()
							case !bytes.Equal(got, buf):
								fail("data mismatch at %d", off)
								wg.Done()
							default:
								step(i + 1)
							}
						}); err != nil {
							fail("submit read: %v", err)
							wg.Done()
						}
					})
					if err != nil {
						fail("submit write: %v", err)
						wg.Done()
					}
				}
				go step(0)
			}
			done := make(chan struct{})
			go func() { wg.Wait(); close(done) }()
			select {
			case <-done:
			case <-time.After(30 * time.Second):
				t.Fatal("the chains never finished (a callback blocked?)")
			}
			require.Zero(t, failures.Load())
			// Blocking and submitted I/O share the queues afterwards.
			got := make([]byte, size)
			require.NoError(t, c.ReadAt(ctx, got, 0))
		})
	}
}

// TestSubmitErrors: a range beyond the namespace or a transfer larger
// than one command is refused at submit (no callback); a lost connection
// fails every command in flight or waiting for a slot with
// ErrDisconnected, through its callback, and later submits at once.
func TestSubmitErrors(t *testing.T) {
	e := start(t, target.Config{}, 4096)
	c := dial(t, e, host.Config{IOQueues: 2, QueueDepth: 8})
	called := func(error) { t.Error("a refused submit ran its callback") }
	assert.Error(t, c.SubmitRead(make([]byte, 4096), uint64(devSize), called))
	assert.Error(t, c.SubmitRead(make([]byte, c.MaxTransfer()+4096), 0, called))
	assert.Error(t, c.SubmitRead(make([]byte, 100), 0, called), "not a multiple of the block size")

	// Many commands in flight, then the target goes away.
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	var resubmit func()
	stop := atomic.Bool{}
	resubmit = func() {
		if stop.Load() {
			return
		}
		wg.Add(1)
		if err := c.SubmitRead(make([]byte, 64<<10), 0, func(err error) {
			defer wg.Done()
			if err != nil {
				errs <- err
				return
			}
			resubmit()
		}); err != nil {
			wg.Done()
			errs <- err
		}
	}
	for range 16 {
		resubmit()
	}
	time.Sleep(100 * time.Millisecond)
	e.stop()
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("callbacks still pending after the target closed")
	}
	stop.Store(true)
	close(errs)
	n := 0
	for err := range errs {
		n++
		assert.True(t, errors.Is(err, host.ErrDisconnected), "%v", err)
	}
	assert.Positive(t, n)
	assert.ErrorIs(t, c.SubmitRead(make([]byte, 4096), 0, called), host.ErrDisconnected)
}
