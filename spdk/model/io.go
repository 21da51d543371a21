package model

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/virtual-disk-array/vda/lvs"
)

// The data path. The model began as SPDK's object graph without data; the
// embedded data plane grows it here: each bdev module moves real bytes
// (malloc in memory, raid0 over its members, an NVMe namespace through the
// fabric to the remote bdev), counts them for bdev_get_iostat, and stops
// when the bdev goes. The control plane's lock (Target.mu) is not taken
// per I/O but by the NVMe path, which must pick a live connection.

// Errors of the data path. An NVMe/TCP target maps them to NVMe status
// codes; callers branch on them with errors.Is.
var (
	// ErrNoBdev: the bdev does not exist or was deleted.
	ErrNoBdev = errors.New("model: no such bdev")
	// ErrRange: the I/O is not inside the bdev or not block-aligned.
	ErrRange = errors.New("model: I/O out of range or misaligned")
	// ErrPathDown: a bdev below (an NVMe path, a raid member) is gone;
	// the I/O failed and may be retried elsewhere.
	ErrPathDown = errors.New("model: I/O path down")
	// ErrUnsupported: the bdev's module does not move data yet.
	ErrUnsupported = errors.New("model: the module has no data path")
)

// dataPath is what a module does with I/O on its bdev. Offsets and
// lengths are in bytes, already checked against the bdev and aligned to
// its block size.
type dataPath interface {
	read(ctx context.Context, p []byte, off uint64) error
	write(ctx context.Context, p []byte, off uint64) error
	flush(ctx context.Context) error
	unmap(ctx context.Context, off, n uint64) error
	writeZeroes(ctx context.Context, off, n uint64) error
}

// ioStats are a bdev's counters for bdev_get_iostat.
type ioStats struct {
	bytesRead, readOps      atomic.Uint64
	bytesWritten, writeOps  atomic.Uint64
	bytesUnmapped, unmapOps atomic.Uint64
	readTicks, writeTicks   atomic.Uint64
	unmapTicks              atomic.Uint64
	maxReadTicks, minRead   atomic.Uint64
	maxWriteTicks, minWrite atomic.Uint64
	maxUnmapTicks, minUnmap atomic.Uint64
	readErrors, writeErrors atomic.Uint64
}

// observe folds one I/O of d into total, max and min (min 0: none yet).
func observe(total, maxT, minT *atomic.Uint64, d time.Duration) {
	ticks := uint64(d.Seconds() * tickRate)
	total.Add(ticks)
	for {
		m := maxT.Load()
		if ticks <= m || maxT.CompareAndSwap(m, ticks) {
			break
		}
	}
	for {
		m := minT.Load()
		if (m != 0 && ticks >= m) || minT.CompareAndSwap(m, max(ticks, 1)) {
			break
		}
	}
}

// Dev is the data path of one bdev, for an NVMe/TCP target's namespace or
// a test: it stays bound to the bdev it was opened on, and fails with
// ErrNoBdev once that bdev is deleted, even if another takes its name.
type Dev struct {
	b  *bdev
	dp dataPath
}

// Open returns the data path of the bdev called name (a name, uuid or
// alias).
func (t *Target) Open(name string) (*Dev, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	b := t.lookup(name)
	if b == nil {
		return nil, fmt.Errorf("open bdev %s: %w", name, ErrNoBdev)
	}
	if a, ok := b.module.(*aioDisk); ok {
		if _, err := a.data(b); err != nil {
			return nil, fmt.Errorf("open bdev %s: %w", name, err)
		}
	}
	dp := b.dataPath()
	if dp == nil {
		return nil, fmt.Errorf("open bdev %s (%s): %w", name, b.module.moduleName(), ErrUnsupported)
	}
	return &Dev{b: b, dp: dp}, nil
}

// BlockSize is the bdev's block size in bytes.
func (d *Dev) BlockSize() uint32 { return d.b.blockSize }

// Size is the bdev's size in bytes.
func (d *Dev) Size() uint64 { return uint64(d.b.blockSize) * d.b.numBlocks }

// check validates an I/O of n bytes at off.
func (d *Dev) check(off, n uint64) error {
	if d.b.dead.Load() {
		return fmt.Errorf("bdev %s: %w", d.b.name, ErrNoBdev)
	}
	bs := uint64(d.b.blockSize)
	if off%bs != 0 || n%bs != 0 || off > d.Size() || n > d.Size()-off {
		return fmt.Errorf("bdev %s: %d bytes at %d of %d (block %d): %w", d.b.name, n, off, d.Size(), bs, ErrRange)
	}
	return nil
}

// ReadAt reads len(p) bytes at off.
func (d *Dev) ReadAt(ctx context.Context, p []byte, off uint64) error {
	if err := d.check(off, uint64(len(p))); err != nil {
		return err
	}
	if err := d.b.limiter.Load().wait(ctx, uint64(len(p)), false); err != nil {
		return err
	}
	start := time.Now()
	err := d.dp.read(ctx, p, off)
	s := &d.b.stats
	if err != nil {
		s.readErrors.Add(1)
		return err
	}
	s.bytesRead.Add(uint64(len(p)))
	s.readOps.Add(1)
	observe(&s.readTicks, &s.maxReadTicks, &s.minRead, time.Since(start))
	return nil
}

// WriteAt writes p at off.
func (d *Dev) WriteAt(ctx context.Context, p []byte, off uint64) error {
	if err := d.check(off, uint64(len(p))); err != nil {
		return err
	}
	if err := d.b.limiter.Load().wait(ctx, uint64(len(p)), true); err != nil {
		return err
	}
	start := time.Now()
	err := d.dp.write(ctx, p, off)
	s := &d.b.stats
	if err != nil {
		s.writeErrors.Add(1)
		return err
	}
	s.bytesWritten.Add(uint64(len(p)))
	s.writeOps.Add(1)
	observe(&s.writeTicks, &s.maxWriteTicks, &s.minWrite, time.Since(start))
	return nil
}

// Flush makes the writes done so far durable.
func (d *Dev) Flush(ctx context.Context) error {
	if err := d.check(0, 0); err != nil {
		return err
	}
	return d.dp.flush(ctx)
}

// Unmap deallocates n bytes at off: they read back as zeroes.
func (d *Dev) Unmap(ctx context.Context, off, n uint64) error {
	if err := d.check(off, n); err != nil {
		return err
	}
	start := time.Now()
	if err := d.dp.unmap(ctx, off, n); err != nil {
		return err
	}
	s := &d.b.stats
	s.bytesUnmapped.Add(n)
	s.unmapOps.Add(1)
	observe(&s.unmapTicks, &s.maxUnmapTicks, &s.minUnmap, time.Since(start))
	return nil
}

// WriteZeroes writes n zero bytes at off.
func (d *Dev) WriteZeroes(ctx context.Context, off, n uint64) error {
	if err := d.check(off, n); err != nil {
		return err
	}
	start := time.Now()
	if err := d.dp.writeZeroes(ctx, off, n); err != nil {
		return err
	}
	s := &d.b.stats
	s.bytesWritten.Add(n)
	s.writeOps.Add(1)
	observe(&s.writeTicks, &s.maxWriteTicks, &s.minWrite, time.Since(start))
	return nil
}

// dataPath returns the module's data path for b, nil if it has none;
// the lock of b's target is held.
func (b *bdev) dataPath() dataPath {
	switch m := b.module.(type) {
	case *baseDisk:
		if m.null {
			return nullData{}
		}
		return m.memory(uint64(b.blockSize) * b.numBlocks)
	case *raid:
		return m.data()
	case *aioDisk:
		if dp, err := m.data(b); err == nil {
			return dp
		}
	case *nvmeNs:
		return &nsData{t: b.t, ns: m}
	case *lvol:
		return m.dataPath()
	}
	return nil
}

// memChunk is the unit a malloc bdev's memory is allocated in, on first
// write: a large malloc bdev that is little written costs little.
const memChunk = 1 << 20

// memStore is a malloc bdev's memory.
type memStore struct {
	size   uint64
	mu     sync.RWMutex
	chunks [][]byte // nil: all zeroes
}

func (d *baseDisk) memory(size uint64) *memStore {
	d.memOnce.Do(func() {
		d.mem = &memStore{size: size, chunks: make([][]byte, (size+memChunk-1)/memChunk)}
	})
	return d.mem
}

// span calls f for each chunk piece of [off, off+n).
func span(off, n uint64, f func(chunk int, at uint64, from, to uint64)) {
	for done := uint64(0); done < n; {
		c := (off + done) / memChunk
		at := (off + done) % memChunk
		k := min(memChunk-at, n-done)
		f(int(c), at, done, done+k)
		done += k
	}
}

func (m *memStore) read(_ context.Context, p []byte, off uint64) error {
	m.mu.RLock()
	defer m.mu.RUnlock()
	span(off, uint64(len(p)), func(c int, at, from, to uint64) {
		if ch := m.chunks[c]; ch != nil {
			copy(p[from:to], ch[at:])
		} else {
			clear(p[from:to])
		}
	})
	return nil
}

func (m *memStore) write(_ context.Context, p []byte, off uint64) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	span(off, uint64(len(p)), func(c int, at, from, to uint64) {
		if m.chunks[c] == nil {
			m.chunks[c] = make([]byte, min(memChunk, m.size-uint64(c)*memChunk))
		}
		copy(m.chunks[c][at:], p[from:to])
	})
	return nil
}

func (m *memStore) flush(context.Context) error { return nil }

func (m *memStore) unmap(_ context.Context, off, n uint64) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	span(off, n, func(c int, at, from, to uint64) {
		ch := m.chunks[c]
		switch {
		case ch == nil:
		case at == 0 && to-from == uint64(len(ch)):
			m.chunks[c] = nil // a whole chunk: give the memory back
		default:
			clear(ch[at : at+to-from])
		}
	})
	return nil
}

func (m *memStore) writeZeroes(ctx context.Context, off, n uint64) error { return m.unmap(ctx, off, n) }

// nullData is a null bdev's: writes vanish, reads are zeroes.
type nullData struct{}

func (nullData) read(_ context.Context, p []byte, _ uint64) error { clear(p); return nil }
func (nullData) write(context.Context, []byte, uint64) error      { return nil }
func (nullData) flush(context.Context) error                      { return nil }
func (nullData) unmap(context.Context, uint64, uint64) error      { return nil }
func (nullData) writeZeroes(context.Context, uint64, uint64) error {
	return nil
}

// raidData stripes I/O over an online raid0's members: strip k of the
// raid is strip k/n of member k%n.
type raidData struct {
	members []*Dev
	strip   uint64 // bytes
}

// data builds the raid's data path from its members; nil unless the raid
// is an online raid0.
func (r *raid) data() dataPath {
	if r.state != raidOnline || r.level != "raid0" {
		return nil
	}
	rd := &raidData{strip: uint64(r.stripKB) * 1024}
	for _, s := range r.slots {
		if s.b == nil {
			return nil
		}
		dp := s.b.dataPath()
		if dp == nil {
			return nil
		}
		rd.members = append(rd.members, &Dev{b: s.b, dp: dp})
	}
	return rd
}

// split calls f for each member piece of [off, off+n). The pieces of an
// I/O that spans several strips run at once, as SPDK's raid0 submits them:
// over NVMe/TCP members one after another would cost a round trip each.
// The first error (by piece order) is returned once all pieces ended.
func (rd *raidData) split(off, n uint64, f func(m *Dev, moff, from, to uint64) error) error {
	type piece struct {
		m              *Dev
		moff, from, to uint64
	}
	var pieces []piece
	var one [1]piece
	nm := uint64(len(rd.members))
	for done := uint64(0); done < n; {
		pos := off + done
		strip, in := pos/rd.strip, pos%rd.strip
		k := min(rd.strip-in, n-done)
		pc := piece{rd.members[strip%nm], (strip/nm)*rd.strip + in, done, done + k}
		if pieces == nil && done+k == n {
			one[0] = pc
			pieces = one[:] // the common case: no allocation
		} else {
			pieces = append(pieces, pc)
		}
		done += k
	}
	run := func(pc piece) error {
		err := f(pc.m, pc.moff, pc.from, pc.to)
		if errors.Is(err, ErrNoBdev) {
			return fmt.Errorf("raid member %s: %w", pc.m.b.name, ErrPathDown)
		}
		return err
	}
	if len(pieces) == 1 {
		return run(pieces[0])
	}
	errs := make([]error, len(pieces))
	var wg sync.WaitGroup
	for i, pc := range pieces[1:] {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i+1] = run(pc)
		}()
	}
	errs[0] = run(pieces[0])
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

func (rd *raidData) read(ctx context.Context, p []byte, off uint64) error {
	return rd.split(off, uint64(len(p)), func(m *Dev, moff, from, to uint64) error { return m.ReadAt(ctx, p[from:to], moff) })
}

func (rd *raidData) write(ctx context.Context, p []byte, off uint64) error {
	return rd.split(off, uint64(len(p)), func(m *Dev, moff, from, to uint64) error { return m.WriteAt(ctx, p[from:to], moff) })
}

// flush flushes every member at once.
func (rd *raidData) flush(ctx context.Context) error {
	errs := make([]error, len(rd.members))
	var wg sync.WaitGroup
	for i, m := range rd.members {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = m.Flush(ctx)
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

func (rd *raidData) unmap(ctx context.Context, off, n uint64) error {
	return rd.split(off, n, func(m *Dev, moff, from, to uint64) error { return m.Unmap(ctx, moff, to-from) })
}

func (rd *raidData) writeZeroes(ctx context.Context, off, n uint64) error {
	return rd.split(off, n, func(m *Dev, moff, from, to uint64) error { return m.WriteZeroes(ctx, moff, to-from) })
}

// nsData sends I/O of an NVMe namespace bdev through a live path of its
// controller to the remote namespace, as the NVMe-oF initiator does: an
// optimized path first, then a non-optimized one, never an inaccessible
// one. A path that fails (its connection lost, a host removed from the
// subsystem: the fence, seen from the data; the namespace gone) is left
// for the next one. With no live path, the I/O fails with ErrPathDown,
// except through Config.Dial while a lost path may still come back: it
// then waits for the reconnect up to fast_io_fail_timeout_sec (with 0, up
// to ctrlr_loss_timeout_sec; with -1, for ever) from the loss.
type nsData struct {
	t  *Target
	ns *nvmeNs
}

// ioTarget is one remote namespace as a path reaches it.
type ioTarget struct {
	l   *link
	dev *Dev
	io  NamespaceIO
}

// pick chooses a live path not in tried. With none, wait says until when
// the I/O may wait for a reconnect (zero: it may not).
func (d *nsData) pick(tried []*link) (ioTarget, time.Time, error) {
	t := d.t
	t.mu.Lock()
	defer t.mu.Unlock()
	best, rank := ioTarget{}, 2
	var wait time.Time
	forever := false
	now := t.now()
	for _, p := range d.ns.ctrlr.paths {
		l := p.link
		if l != nil && !slices.Contains(tried, l) {
			view, up, _ := l.snapshot()
			if up {
				for _, rn := range view.namespaces {
					if rn.nsid != d.ns.nsid || (rn.dev == nil && rn.io == nil) {
						continue
					}
					if r := anaRank(rn.anaState); r >= 0 && r < rank {
						best, rank = ioTarget{l: l, dev: rn.dev, io: rn.io}, r
					}
				}
				continue
			}
		}
		// A lost path (or one lost meanwhile): how long may I/O wait
		// for it?
		if t.dial == nil || p.opts.ctrlrLossTimeoutSec == 0 {
			continue
		}
		lost := p.lostAt
		if p.link != nil || lost.IsZero() {
			lost = now
		}
		switch fail, loss := p.opts.fastIOFailTimeoutSec, p.opts.ctrlrLossTimeoutSec; {
		case fail > 0:
			wait = later(wait, lost.Add(time.Duration(fail)*time.Second))
		case loss > 0:
			wait = later(wait, lost.Add(time.Duration(loss)*time.Second))
		default:
			forever = true
		}
	}
	if rank < 2 {
		return best, time.Time{}, nil
	}
	if forever {
		wait = now.Add(24 * 365 * time.Hour)
	}
	return best, wait, fmt.Errorf("controller %s: no live path to namespace %d: %w", d.ns.ctrlr.name, d.ns.nsid, ErrPathDown)
}

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// reconnectPoll is how often I/O waiting for a reconnect looks again.
const reconnectPoll = 20 * time.Millisecond

func (d *nsData) do(ctx context.Context, f func(r ioTarget) error) error {
	var tried []*link
	for {
		r, wait, err := d.pick(tried)
		if err != nil {
			if wait.IsZero() || !d.t.now().Before(wait) {
				return err
			}
			tried = nil
			select {
			case <-time.After(reconnectPoll):
			case <-ctx.Done():
				return fmt.Errorf("%w (%w)", err, ctx.Err())
			}
			continue
		}
		err = f(r)
		switch {
		case err == nil:
			return nil
		case errors.Is(err, ErrNoBdev) && r.dev != nil:
			err = fmt.Errorf("remote %w", ErrPathDown)
		case !errors.Is(err, ErrPathDown):
			return err
		}
		// The path failed: the next one, if any.
		tried = append(tried, r.l)
	}
}

func (d *nsData) read(ctx context.Context, p []byte, off uint64) error {
	return d.do(ctx, func(r ioTarget) error {
		if r.dev != nil {
			return r.dev.ReadAt(ctx, p, off)
		}
		return r.io.ReadAt(ctx, p, off)
	})
}

func (d *nsData) write(ctx context.Context, p []byte, off uint64) error {
	return d.do(ctx, func(r ioTarget) error {
		if r.dev != nil {
			return r.dev.WriteAt(ctx, p, off)
		}
		return r.io.WriteAt(ctx, p, off)
	})
}

func (d *nsData) flush(ctx context.Context) error {
	return d.do(ctx, func(r ioTarget) error {
		if r.dev != nil {
			return r.dev.Flush(ctx)
		}
		return r.io.Flush(ctx)
	})
}

func (d *nsData) unmap(ctx context.Context, off, n uint64) error {
	return d.do(ctx, func(r ioTarget) error {
		if r.dev != nil {
			return r.dev.Unmap(ctx, off, n)
		}
		return r.io.Unmap(ctx, off, n)
	})
}

func (d *nsData) writeZeroes(ctx context.Context, off, n uint64) error {
	return d.do(ctx, func(r ioTarget) error {
		if r.dev != nil {
			return r.dev.WriteZeroes(ctx, off, n)
		}
		return r.io.WriteZeroes(ctx, off, n)
	})
}

// aioData is an aio bdev's file, through the lvs package's FileDevice:
// O_DIRECT where the file system supports it, else buffered with
// fdatasync on flush.
type aioData struct {
	f *lvs.FileDevice
}

// data opens the bdev's file on first use; nil if it cannot be opened or
// its block size is one FileDevice does not do (512 and 4096 only).
func (d *aioDisk) data(b *bdev) (dataPath, error) {
	d.fileMu.Lock()
	defer d.fileMu.Unlock()
	if d.file == nil {
		f, err := lvs.OpenFileDevice(d.filename, int(b.blockSize))
		if err != nil {
			return nil, err
		}
		d.file = f
	}
	return aioData{d.file}, nil
}

// close closes the file once the bdev is gone; I/O still in flight fails.
func (d *aioDisk) close() {
	d.fileMu.Lock()
	defer d.fileMu.Unlock()
	if d.file != nil {
		_ = d.file.Close()
		d.file = nil
	}
}

// fileErr turns an error of a deleted bdev's closed file into ErrNoBdev.
func fileErr(err error) error {
	if errors.Is(err, os.ErrClosed) {
		return fmt.Errorf("%w: %w", ErrNoBdev, err)
	}
	return err
}

func (a aioData) read(_ context.Context, p []byte, off uint64) error {
	_, err := a.f.ReadAt(p, int64(off))
	return fileErr(err)
}

func (a aioData) write(_ context.Context, p []byte, off uint64) error {
	_, err := a.f.WriteAt(p, int64(off))
	return fileErr(err)
}

func (a aioData) flush(context.Context) error { return fileErr(a.f.Flush()) }

func (a aioData) unmap(ctx context.Context, off, n uint64) error { return a.writeZeroes(ctx, off, n) }

// writeZeroes punches a hole where the file system can, else writes zeroes.
func (a aioData) writeZeroes(_ context.Context, off, n uint64) error {
	err := a.f.Discard(int64(off), int64(n))
	if err == nil || !errors.Is(err, errors.ErrUnsupported) {
		return fileErr(err)
	}
	zero := lvs.AlignedBuffer(int(min(n, 1<<20)))
	for done := uint64(0); done < n; {
		k := min(uint64(len(zero)), n-done)
		if _, err := a.f.WriteAt(zero[:k], int64(off+done)); err != nil {
			return fileErr(err)
		}
		done += k
	}
	return nil
}
