package lvs

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
)

// allocGroup bounds the clusters one journal entry allocates for a single
// write, which keeps the largest thin-write entry far below the smallest
// journal.
const allocGroup = 64

// Lvol is a logical volume. I/O is at lvol offsets, aligned to the store's
// block size in offset and length, and safe for concurrent use; I/O to
// allocated clusters takes only the lvol's own read lock.
type Lvol struct {
	s     *Store
	slot  uint32
	uuid  UUID
	thin  bool
	order uint64
	name  string // guarded by s.mu

	nclusters atomic.Uint64
	nalloc    atomic.Uint64
	m         cmap

	// io is held shared by I/O and exclusively by the changes that free
	// or remap clusters (delete, resize, unmap of whole clusters), so no
	// I/O can reach a cluster after it has been given to another lvol.
	io      sync.RWMutex
	deleted bool // guarded by io

	// pending holds the clusters a thin write is allocating, so that
	// concurrent writes to the same cluster wait instead of allocating it
	// twice; each channel closes when its allocation is done or failed.
	pmu     sync.Mutex
	pending map[uint64]chan struct{}
}

// UUID is the lvol's UUID (its SPDK bdev name).
func (l *Lvol) UUID() UUID { return l.uuid }

// Name is the lvol's current name.
func (l *Lvol) Name() string {
	l.s.mu.RLock()
	defer l.s.mu.RUnlock()
	return l.name
}

// Size is the lvol's size in bytes, a whole number of clusters.
func (l *Lvol) Size() uint64 { return l.nclusters.Load() * l.s.lay.clusterSize }

// Clusters is the lvol's size in clusters.
func (l *Lvol) Clusters() uint64 { return l.nclusters.Load() }

// Thin reports whether the lvol is thin-provisioned.
func (l *Lvol) Thin() bool { return l.thin }

// AllocatedClusters is the number of clusters the lvol owns: all of them
// for a thick lvol, those written so far for a thin one.
func (l *Lvol) AllocatedClusters() uint64 { return l.nalloc.Load() }

// begin checks an I/O of n bytes at off; callers hold io.
func (l *Lvol) begin(off int64, n uint64) error {
	if l.deleted {
		return fmt.Errorf("%w: lvol %s was deleted", ErrNotFound, l.uuid)
	}
	if l.s.closed.Load() {
		return ErrClosed
	}
	bs := l.s.lay.blockSize
	if off < 0 || uint64(off)%bs != 0 || n%bs != 0 {
		return fmt.Errorf("%w: I/O of %d bytes at %d not aligned to %d", ErrInvalid, n, off, bs)
	}
	if size := l.Size(); uint64(off) > size || n > size-uint64(off) {
		return fmt.Errorf("%w: I/O of %d bytes at %d beyond lvol size %d", ErrInvalid, n, off, size)
	}
	return nil
}

// runs splits [off, off+n) into pieces that are either one unallocated
// cluster (v == 0) or a run of physically contiguous clusters, so that a
// thick lvol's large I/O is one device I/O.
func (l *Lvol) runs(off, n uint64, fn func(pos, dev, n uint64, v uint32) error) error {
	cs := l.s.lay.clusterSize
	for pos := uint64(0); pos < n; {
		o := off + pos
		ci, in := o/cs, o%cs
		k := min(cs-in, n-pos)
		v := l.m.get(ci)
		if v != 0 {
			for next := v + 1; pos+k < n && l.m.get(ci+1) == next; next++ {
				ci++
				k += min(cs, n-pos-k)
			}
		}
		var dev uint64
		if v != 0 {
			dev = l.s.lay.dataOff + uint64(v-1)*cs + in
		}
		if err := fn(pos, dev, k, v); err != nil {
			return err
		}
		pos += k
	}
	return nil
}

// ReadAt reads len(p) bytes at lvol offset off. Unallocated clusters of a
// thin lvol read as zeroes.
func (l *Lvol) ReadAt(p []byte, off int64) (int, error) {
	l.io.RLock()
	defer l.io.RUnlock()
	if err := l.begin(off, uint64(len(p))); err != nil {
		return 0, err
	}
	err := l.runs(uint64(off), uint64(len(p)), func(pos, dev, n uint64, v uint32) error {
		if v == 0 {
			clear(p[pos : pos+n])
			return nil
		}
		_, err := l.s.dev.ReadAt(p[pos:pos+n], int64(dev))
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("lvs: read lvol %s: %w", l.uuid, err)
	}
	return len(p), nil
}

// WriteAt writes p at lvol offset off. A write that reaches unallocated
// clusters of a thin lvol allocates them first: the cluster is written
// whole (the write's data, zeroes around it), flushed, and only then mapped
// by a journal entry, which is durable when WriteAt returns. Writes to
// allocated clusters are durable after Flush.
func (l *Lvol) WriteAt(p []byte, off int64) (int, error) {
	l.io.RLock()
	defer l.io.RUnlock()
	if err := l.begin(off, uint64(len(p))); err != nil {
		return 0, err
	}
	var err error
	if l.thin && !l.allocated(uint64(off), uint64(len(p))) {
		err = l.allocWrite(p, uint64(off))
	} else {
		err = l.write(p, uint64(off))
	}
	if err != nil {
		return 0, fmt.Errorf("lvs: write lvol %s: %w", l.uuid, err)
	}
	return len(p), nil
}

var errUnallocated = errors.New("lvs: internal error: write to an unallocated cluster")

func (l *Lvol) write(p []byte, off uint64) error {
	return l.runs(off, uint64(len(p)), func(pos, dev, n uint64, v uint32) error {
		if v == 0 {
			return errUnallocated
		}
		_, err := l.s.dev.WriteAt(p[pos:pos+n], int64(dev))
		return err
	})
}

func (l *Lvol) allocated(off, n uint64) bool {
	if n == 0 {
		return true
	}
	cs := l.s.lay.clusterSize
	for ci := off / cs; ci <= (off+n-1)/cs; ci++ {
		if l.m.get(ci) == 0 {
			return false
		}
	}
	return true
}

func (l *Lvol) allocWrite(p []byte, off uint64) error {
	cs := l.s.lay.clusterSize
	end := off + uint64(len(p))
	for g := off / cs; g*cs < end; g += allocGroup {
		lo, hi := max(off, g*cs), min(end, (g+allocGroup)*cs)
		if err := l.allocWriteGroup(p[lo-off:hi-off], lo); err != nil {
			return err
		}
	}
	return nil
}

// allocWriteGroup claims the unallocated clusters of the write in
// ascending order (waiting for a cluster another write is allocating), so
// that two writes never wait for each other in a cycle; allocates and
// fills the claimed ones; commits their mappings in one entry; and then
// writes the rest normally.
func (l *Lvol) allocWriteGroup(p []byte, off uint64) error {
	s := l.s
	cs := s.lay.clusterSize
	first, last := off/cs, (off+uint64(len(p))-1)/cs
	var mine []uint64
	done := make(chan struct{})
	defer func() {
		l.pmu.Lock()
		for _, ci := range mine {
			delete(l.pending, ci)
		}
		l.pmu.Unlock()
		close(done)
	}()
	for ci := first; ci <= last; ci++ {
		for l.m.get(ci) == 0 {
			l.pmu.Lock()
			if l.m.get(ci) != 0 {
				l.pmu.Unlock()
				break
			}
			if ch := l.pending[ci]; ch != nil {
				l.pmu.Unlock()
				<-ch
				continue
			}
			if l.pending == nil {
				l.pending = map[uint64]chan struct{}{}
			}
			l.pending[ci] = done
			l.pmu.Unlock()
			mine = append(mine, ci)
			break
		}
	}
	piece := func(ci uint64) (in uint64, b []byte) {
		lo, hi := max(off, ci*cs), min(off+uint64(len(p)), (ci+1)*cs)
		return lo - ci*cs, p[lo-off : hi-off]
	}
	if len(mine) > 0 {
		s.mu.Lock()
		ext, err := s.reserve(uint64(len(mine)))
		s.mu.Unlock()
		if err != nil {
			return err
		}
		recs := make([]rec, 0, len(mine))
		for _, e := range ext {
			for ph := e.phys; ph < e.phys+e.n; ph++ {
				ci := mine[len(recs)]
				recs = append(recs, rec{op: opAlloc, slot: l.slot, logical: ci, phys: ph})
				in, b := piece(ci)
				if err := s.fillCluster(ph, in, b); err != nil {
					s.mu.Lock()
					s.unreserve(ext)
					s.mu.Unlock()
					return err
				}
			}
		}
		if err := s.commit(true, recs...); err != nil {
			return err
		}
	}
	for ci, k := first, 0; ci <= last; ci++ {
		if k < len(mine) && mine[k] == ci {
			k++
			continue
		}
		in, b := piece(ci)
		if err := l.write(b, ci*cs+in); err != nil {
			return err
		}
	}
	return nil
}

// fillCluster writes a newly allocated cluster whole: b at in, zeroes
// around it, so that nothing a previous owner left there can show through.
func (s *Store) fillCluster(phys uint32, in uint64, b []byte) error {
	cs := s.lay.clusterSize
	base := s.lay.dataOff + uint64(phys)*cs
	if in > 0 {
		if err := s.zeroDev(base, in); err != nil {
			return err
		}
	}
	if _, err := s.dev.WriteAt(b, int64(base+in)); err != nil {
		return err
	}
	if end := in + uint64(len(b)); end < cs {
		return s.zeroDev(base+end, cs-end)
	}
	return nil
}

// zeroDev zeroes a device range, by discarding it where the device
// guarantees zeroes after a discard and by writing zeroes otherwise.
func (s *Store) zeroDev(off, n uint64) error {
	if d, ok := s.dev.(Discarder); ok {
		err := d.Discard(int64(off), int64(n))
		if err == nil || !errors.Is(err, errors.ErrUnsupported) {
			return err
		}
	}
	for n > 0 {
		k := min(n, uint64(len(s.zero)))
		if _, err := s.dev.WriteAt(s.zero[:k], int64(off)); err != nil {
			return err
		}
		off += k
		n -= k
	}
	return nil
}

// WriteZeroes makes [off, off+n) read as zeroes. Unallocated clusters of a
// thin lvol already do and stay unallocated; allocated ones are zeroed on
// the device and stay allocated.
func (l *Lvol) WriteZeroes(off, n int64) error {
	if n < 0 {
		return fmt.Errorf("%w: write zeroes of %d bytes", ErrInvalid, n)
	}
	l.io.RLock()
	defer l.io.RUnlock()
	if err := l.begin(off, uint64(n)); err != nil {
		return err
	}
	if err := l.zeroMapped(uint64(off), uint64(n)); err != nil {
		return fmt.Errorf("lvs: write zeroes lvol %s: %w", l.uuid, err)
	}
	return nil
}

// Unmap deallocates [off, off+n): the whole clusters of a thin lvol in the
// range are released (the release is durable when Unmap returns), and the
// rest of the range, and any range of a thick lvol, is zeroed as
// WriteZeroes does. Either way the range reads as zeroes afterwards.
func (l *Lvol) Unmap(off, n int64) error {
	if n < 0 {
		return fmt.Errorf("%w: unmap of %d bytes", ErrInvalid, n)
	}
	cs := l.s.lay.clusterSize
	if !l.thin || off < 0 || uint64(n) < cs {
		return l.WriteZeroes(off, n)
	}
	// Releasing clusters changes the map, so I/O in flight drains first
	// and none can reach a released cluster once another lvol has it.
	l.io.Lock()
	defer l.io.Unlock()
	o, e := uint64(off), uint64(off)+uint64(n)
	if err := l.begin(off, uint64(n)); err != nil {
		return err
	}
	c0, c1 := (o+cs-1)/cs, e/cs
	if c0 < c1 && l.m.next(c0, c1, true) < c1 {
		if err := l.s.commit(false, rec{op: opUnmap, slot: l.slot, logical: c0, count: c1 - c0}); err != nil {
			return err
		}
	}
	// n >= cs, so c0 <= c1: the head and tail are what is left around
	// the whole clusters.
	if err := l.zeroMapped(o, c0*cs-o); err != nil {
		return fmt.Errorf("lvs: unmap lvol %s: %w", l.uuid, err)
	}
	if err := l.zeroMapped(c1*cs, e-c1*cs); err != nil {
		return fmt.Errorf("lvs: unmap lvol %s: %w", l.uuid, err)
	}
	return nil
}

func (l *Lvol) zeroMapped(off, n uint64) error {
	return l.runs(off, n, func(_, dev, n uint64, v uint32) error {
		if v == 0 {
			return nil
		}
		return l.s.zeroDev(dev, n)
	})
}

// SeekData returns the first offset at or after off that is in an
// allocated cluster (off itself if it is), or -1 if there is none. A thick
// lvol is allocated throughout.
func (l *Lvol) SeekData(off int64) (int64, error) { return l.seek(off, true) }

// SeekHole returns the first offset at or after off that is in an
// unallocated cluster, or -1 if there is none.
func (l *Lvol) SeekHole(off int64) (int64, error) { return l.seek(off, false) }

func (l *Lvol) seek(off int64, data bool) (int64, error) {
	l.io.RLock()
	defer l.io.RUnlock()
	if err := l.begin(0, 0); err != nil {
		return 0, err
	}
	if off < 0 {
		return 0, fmt.Errorf("%w: seek to %d", ErrInvalid, off)
	}
	cs, n := l.s.lay.clusterSize, l.nclusters.Load()
	ci := uint64(off) / cs
	if ci >= n {
		return -1, nil
	}
	next := l.m.next(ci, n, data)
	if next == n {
		return -1, nil
	}
	return max(off, int64(next*cs)), nil
}

// Flush makes the lvol's data written so far durable.
func (l *Lvol) Flush() error { return l.s.Flush() }
