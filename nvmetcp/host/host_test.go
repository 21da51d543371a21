package host_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/virtual-disk-array/vda/nvmetcp/host"
	"github.com/virtual-disk-array/vda/nvmetcp/target"
)

// memDev is a []byte-backed namespace.
type memDev struct {
	mu   sync.Mutex
	bs   uint32
	data []byte
	fail bool // every read fails with LBA Out of Range
}

func newMem(bs uint32, size int) *memDev { return &memDev{bs: bs, data: make([]byte, size)} }

func (d *memDev) BlockSize() uint32 { return d.bs }
func (d *memDev) Size() uint64      { return uint64(len(d.data)) }
func (d *memDev) check(off, n uint64) error {
	if off%uint64(d.bs) != 0 || n%uint64(d.bs) != 0 || off+n > uint64(len(d.data)) {
		return target.ErrLBARange
	}
	return nil
}
func (d *memDev) ReadAt(_ context.Context, p []byte, off uint64) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.check(off, uint64(len(p))); err != nil {
		return err
	}
	if d.fail {
		return target.ErrLBARange
	}
	copy(p, d.data[off:])
	return nil
}
func (d *memDev) WriteAt(_ context.Context, p []byte, off uint64) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.check(off, uint64(len(p))); err != nil {
		return err
	}
	copy(d.data[off:], p)
	return nil
}
func (d *memDev) Flush(context.Context) error { return nil }
func (d *memDev) WriteZeroes(_ context.Context, off, n uint64) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.check(off, n); err != nil {
		return err
	}
	clear(d.data[off : off+n])
	return nil
}
func (d *memDev) Unmap(ctx context.Context, off, n uint64) error { return d.WriteZeroes(ctx, off, n) }

type catalog map[string]*target.Subsystem

func (c catalog) Subsystem(nqn string) (*target.Subsystem, bool) { s, ok := c[nqn]; return s, ok }

const (
	subNQN  = "nqn.2016-06.io.vda:host-test"
	hostNQN = "nqn.2014-08.org.nvmexpress:uuid:host-a"
	devSize = 16 << 20
)

type env struct {
	addr   string
	dev    *memDev
	cancel context.CancelFunc
	done   chan error
}

func start(tb testing.TB, cfg target.Config, bs uint32) *env {
	tb.Helper()
	dev := newMem(bs, devSize)
	cat := catalog{subNQN: {
		NQN: subNQN, Serial: "VDA0001", Model: "VDA Controller", Hosts: []string{hostNQN},
		Namespaces: []target.NS{{NSID: 1, Dev: dev}},
	}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	e := &env{addr: ln.Addr().String(), dev: dev, cancel: cancel, done: make(chan error, 1)}
	go func() { e.done <- target.Serve(ctx, ln, cat, cfg) }()
	tb.Cleanup(e.stop)
	return e
}

func (e *env) stop() {
	if e.cancel != nil {
		e.cancel()
		<-e.done
		e.cancel = nil
	}
}

func dial(tb testing.TB, e *env, cfg host.Config) *host.Controller {
	tb.Helper()
	if cfg.SubNQN == "" {
		cfg.SubNQN = subNQN
	}
	if cfg.HostNQN == "" {
		cfg.HostNQN = hostNQN
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := host.Dial(ctx, e.addr, cfg)
	if err != nil {
		tb.Fatalf("Dial: %v", err)
	}
	tb.Cleanup(func() { c.Close() })
	return c
}

func TestIdentity(t *testing.T) {
	e := start(t, target.Config{}, 4096)
	c := dial(t, e, host.Config{IOQueues: 2})
	id := c.Identify()
	if id.Model != "VDA Controller" || id.Serial != "VDA0001" || id.SubNQN != subNQN {
		t.Fatalf("identity %+v", id)
	}
	if c.BlockSize() != 4096 || c.Size() != devSize {
		t.Fatalf("block size %d size %d", c.BlockSize(), c.Size())
	}
	if c.IOQueues() != 2 || c.MaxTransfer() != 128<<10 {
		t.Fatalf("queues %d max transfer %d", c.IOQueues(), c.MaxTransfer())
	}
	if err := c.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func TestReadWrite(t *testing.T) {
	for _, tc := range []struct {
		name string
		bs   uint32
		hd   bool
		dd   bool
		tcfg target.Config
	}{
		{"plain-4k", 4096, false, false, target.Config{}},
		{"plain-512", 512, false, false, target.Config{C2HSuccess: true}},
		{"digests", 512, true, true, target.Config{}},
		{"small-pdus", 512, true, false, target.Config{MaxH2CData: 8192, C2HDataMax: 8192, C2HSuccess: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := start(t, tc.tcfg, tc.bs)
			c := dial(t, e, host.Config{IOQueues: 4, QueueDepth: 16, HeaderDigest: tc.hd, DataDigest: tc.dd})
			ctx := context.Background()
			const workers = 8
			region := uint64(devSize / workers)
			var wg sync.WaitGroup
			errs := make(chan error, workers)
			for w := range workers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					rng := rand.New(rand.NewPCG(uint64(w), 7))
					base := uint64(w) * region
					for i := range 40 {
						size := int(tc.bs) << rng.IntN(11) // bs .. 1024 blocks
						size = min(size, 512<<10)
						if i%10 == 0 {
							size = 512 << 10
						}
						off := base + uint64(rng.IntN(int(region-uint64(size))/int(tc.bs)))*uint64(tc.bs)
						buf := make([]byte, size)
						for j := range buf {
							buf[j] = byte(rng.Uint32())
						}
						if err := c.WriteAt(ctx, buf, off); err != nil {
							errs <- fmt.Errorf("write %d@%d: %w", size, off, err)
							return
						}
						got := make([]byte, size)
						if err := c.ReadAt(ctx, got, off); err != nil {
							errs <- fmt.Errorf("read %d@%d: %w", size, off, err)
							return
						}
						if !bytes.Equal(got, buf) {
							errs <- fmt.Errorf("data mismatch %d@%d", size, off)
							return
						}
					}
				}()
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Error(err)
			}
			// The device holds what was written: check one region directly.
			buf := make([]byte, 64<<10)
			if err := c.ReadAt(ctx, buf, 0); err != nil {
				t.Fatal(err)
			}
			e.dev.mu.Lock()
			same := bytes.Equal(buf, e.dev.data[:len(buf)])
			e.dev.mu.Unlock()
			if !same {
				t.Fatal("read differs from the device")
			}
			if err := c.WriteZeroes(ctx, 0, uint64(len(buf))); err != nil {
				t.Fatal(err)
			}
			if err := c.ReadAt(ctx, buf, 0); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(buf, make([]byte, len(buf))) {
				t.Fatal("WriteZeroes left data")
			}
		})
	}
}

func TestStatusError(t *testing.T) {
	e := start(t, target.Config{}, 4096)
	c := dial(t, e, host.Config{})
	// Past the end: the host refuses it itself.
	if err := c.ReadAt(context.Background(), make([]byte, 4096), devSize); err == nil {
		t.Fatal("read past the end succeeded")
	}
	e.dev.mu.Lock()
	e.dev.fail = true
	e.dev.mu.Unlock()
	err := c.ReadAt(context.Background(), make([]byte, 4096), 0)
	var se *host.StatusError
	if !errors.As(err, &se) || se.SCT != 0 || se.SC != 0x80 || !se.DNR {
		t.Fatalf("read: %v, want LBA Out of Range", err)
	}
	e.dev.mu.Lock()
	e.dev.fail = false
	e.dev.mu.Unlock()
	if err := c.ReadAt(context.Background(), make([]byte, 4096), 0); err != nil {
		t.Fatalf("read after a failed one: %v", err)
	}
}

func TestDisallowedHost(t *testing.T) {
	e := start(t, target.Config{}, 4096)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := host.Dial(ctx, e.addr, host.Config{SubNQN: subNQN, HostNQN: "nqn.2014-08.org.nvmexpress:uuid:intruder"})
	var se *host.StatusError
	if !errors.As(err, &se) || se.SCT != 1 || se.SC != 0x84 {
		t.Fatalf("Dial: %v, want status SCT 1 SC 0x84", err)
	}
}

func TestDisconnect(t *testing.T) {
	e := start(t, target.Config{}, 4096)
	c := dial(t, e, host.Config{IOQueues: 4, QueueDepth: 16})
	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	started := make(chan struct{}, 16)
	for w := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, 64<<10)
			off := uint64(w) * (1 << 20)
			for i := 0; ; i++ {
				var err error
				if i%2 == 0 {
					err = c.WriteAt(ctx, buf, off)
				} else {
					err = c.ReadAt(ctx, buf, off)
				}
				if i == 2 {
					started <- struct{}{}
				}
				if err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	for range 16 {
		<-started
	}
	e.stop()
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("I/O still running after the target closed")
	}
	close(errs)
	for err := range errs {
		if !errors.Is(err, host.ErrDisconnected) {
			t.Errorf("error %v, want ErrDisconnected", err)
		}
	}
	if err := c.Flush(ctx); !errors.Is(err, host.ErrDisconnected) {
		t.Errorf("Flush after disconnect: %v", err)
	}
}

func TestKeepAlive(t *testing.T) {
	e := start(t, target.Config{}, 4096)
	c := dial(t, e, host.Config{KeepAlive: 1200 * time.Millisecond})
	// The target drops the controller after KATO+KATO/2+1 s without Keep
	// Alive; I/O still works well past that.
	time.Sleep(3500 * time.Millisecond)
	if err := c.ReadAt(context.Background(), make([]byte, 4096), 0); err != nil {
		t.Fatal(err)
	}
}

func benchIO(b *testing.B, size int, random, write bool) {
	e := start(b, target.Config{C2HSuccess: true}, 4096)
	c := dial(b, e, host.Config{IOQueues: 1, QueueDepth: 32})
	ctx := context.Background()
	const qd = 32
	blocks := devSize / size
	b.SetBytes(int64(size))
	b.ResetTimer()
	t0 := time.Now()
	var wg sync.WaitGroup
	var next, fail sync.Mutex
	n := 0
	for w := range qd {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(w), 1))
			buf := make([]byte, size)
			for {
				next.Lock()
				i := n
				n++
				next.Unlock()
				if i >= b.N {
					return
				}
				off := uint64(i%blocks) * uint64(size)
				if random {
					off = uint64(rng.IntN(blocks)) * uint64(size)
				}
				var err error
				if write {
					err = c.WriteAt(ctx, buf, off)
				} else {
					err = c.ReadAt(ctx, buf, off)
				}
				if err != nil {
					fail.Lock()
					b.Error(err)
					fail.Unlock()
					return
				}
			}
		}()
	}
	wg.Wait()
	b.ReportMetric(float64(b.N)/time.Since(t0).Seconds(), "IOPS")
}

func BenchmarkRandRead4K(b *testing.B)   { benchIO(b, 4096, true, false) }
func BenchmarkRandWrite4K(b *testing.B)  { benchIO(b, 4096, true, true) }
func BenchmarkSeqRead128K(b *testing.B)  { benchIO(b, 128<<10, false, false) }
func BenchmarkSeqWrite128K(b *testing.B) { benchIO(b, 128<<10, false, true) }

// TestQueueDepthOne: QueueDepth 1 connects (the queue asks for SQSIZE 1,
// two entries, as SQSIZE 0 is invalid) and keeps one command outstanding
// however many goroutines use it; the admin queue keeps its own depth, so
// the outstanding AER does not starve Keep Alive or a refresh.
func TestQueueDepthOne(t *testing.T) {
	e := start(t, target.Config{}, 4096)
	c := dial(t, e, host.Config{IOQueues: 1, QueueDepth: 1, KeepAlive: 1200 * time.Millisecond})
	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for w := range 8 {
		wg.Go(func() {
			buf := make([]byte, 8192)
			got := make([]byte, len(buf))
			for i := range 50 {
				for j := range buf {
					buf[j] = byte(w*31 + i*7 + j)
				}
				off := uint64(w)*(1<<20) + uint64(i%16)*8192
				if err := c.WriteAt(ctx, buf, off); err != nil {
					errs <- err
					return
				}
				if err := c.ReadAt(ctx, got, off); err != nil {
					errs <- err
					return
				}
				if !bytes.Equal(got, buf) {
					errs <- fmt.Errorf("worker %d: data mismatch at %d", w, off)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if err := c.Refresh(ctx); err != nil {
		t.Fatalf("Refresh with an AER outstanding: %v", err)
	}
}

// TestBatchedSubmissions: many goroutines on one queue, more than its
// depth, each writing blocks stamped with their LBA and a seed and reading
// them back, so that submissions go out in batches and completions arrive
// in batches, with and without digests and with R2T writes mixed in; every
// block read must carry its own stamp.
func TestBatchedSubmissions(t *testing.T) {
	for _, tc := range []struct {
		name   string
		dg     bool
		depth  int
		ioSize int
	}{
		{"qd32-4k", false, 32, 4096},
		{"qd32-4k-digests", true, 32, 4096},
		{"qd8-mixed-r2t", false, 8, 0},
		{"qd128-4k", false, 128, 4096},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := start(t, target.Config{C2HSuccess: true}, 4096)
			c := dial(t, e, host.Config{IOQueues: 1, QueueDepth: tc.depth, HeaderDigest: tc.dg, DataDigest: tc.dg})
			ctx := context.Background()
			const workers, rounds = 96, 30
			const bs = 4096
			stamp := func(b []byte, lba, seed uint64) {
				for k := 0; k < len(b); k += bs {
					binary.LittleEndian.PutUint64(b[k:], lba+uint64(k/bs))
					binary.LittleEndian.PutUint64(b[k+8:], seed)
					for j := 16; j < bs; j += 8 {
						binary.LittleEndian.PutUint64(b[k+j:], (lba+uint64(k/bs))*seed+uint64(j))
					}
				}
			}
			var wg sync.WaitGroup
			errs := make(chan error, workers)
			region := uint64(devSize / workers / bs) // blocks per worker
			for w := range workers {
				wg.Go(func() {
					rng := rand.New(rand.NewPCG(uint64(w), 11))
					for i := range rounds {
						size := tc.ioSize
						if size == 0 { // 4 KiB in capsule to 64 KiB by R2T
							size = bs << rng.IntN(5)
						}
						nb := uint64(size / bs)
						lba := uint64(w)*region + rng.Uint64N(region-nb+1)
						seed := uint64(w)<<32 | uint64(i) + 1
						buf := make([]byte, size)
						stamp(buf, lba, seed)
						if err := c.WriteAt(ctx, buf, lba*bs); err != nil {
							errs <- fmt.Errorf("write %d@%d: %w", size, lba, err)
							return
						}
						got := make([]byte, size)
						if err := c.ReadAt(ctx, got, lba*bs); err != nil {
							errs <- fmt.Errorf("read %d@%d: %w", size, lba, err)
							return
						}
						if !bytes.Equal(got, buf) {
							errs <- fmt.Errorf("worker %d round %d: %d bytes at LBA %d read back as LBA %d seed %#x", w, i, size, lba,
								binary.LittleEndian.Uint64(got), binary.LittleEndian.Uint64(got[8:]))
							return
						}
					}
				})
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Error(err)
			}
		})
	}
}
