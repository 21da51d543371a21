package lvs_test

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/virtual-disk-array/vda/lvs"
)

var errCrashed = errors.New("crashed")

// crashMode is what survives of the writes not yet flushed when the
// device crashes.
type crashMode int

const (
	dropAll   crashMode = iota // none of them, nor the crashing write
	keepAll                    // all of them and the crashing write
	tearBlock                  // all of them and the first half (in blocks) of the crashing write
	tearByte                   // all of them and the crashing write cut in mid-block
	reorder                    // none of them, but the crashing write: the cache wrote it back first
	random                     // a random subset of them and some blocks of the crashing write
)

func (m crashMode) String() string {
	return [...]string{"drop", "keep", "tear-block", "tear-byte", "reorder", "random"}[m]
}

// crashDev is a device with a volatile write cache: writes land in cur
// (what reads see) and reach durable only at Flush. Armed, it crashes at
// the crashAt'th write: durable then gets what the mode says survives, and
// every later call fails, as a dead machine's would.
type crashDev struct {
	mu      sync.Mutex
	bs      int
	durable []byte
	cur     []byte
	pending []pendingWrite
	writes  int
	crashAt int
	mode    crashMode
	rng     *rand.Rand
	crashed bool
}

type pendingWrite struct {
	off  int64
	data []byte
}

func newCrashDev(img []byte, bs int) *crashDev {
	return &crashDev{bs: bs, durable: append([]byte(nil), img...), cur: append([]byte(nil), img...), crashAt: -1}
}

// arm counts writes from now and crashes at write number at (0-based);
// -1 only counts.
func (d *crashDev) arm(at int, mode crashMode, seed uint64) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.writes, d.crashAt, d.mode, d.rng = 0, at, mode, rand.New(rand.NewPCG(seed, uint64(at)))
}

func (d *crashDev) ReadAt(p []byte, off int64) (int, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.crashed {
		return 0, errCrashed
	}
	if off%int64(d.bs) != 0 || len(p)%d.bs != 0 || off+int64(len(p)) > int64(len(d.cur)) {
		return 0, fmt.Errorf("misaligned read %d+%d", off, len(p))
	}
	return copy(p, d.cur[off:]), nil
}

func (d *crashDev) WriteAt(p []byte, off int64) (int, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.crashed {
		return 0, errCrashed
	}
	if off%int64(d.bs) != 0 || len(p)%d.bs != 0 || off+int64(len(p)) > int64(len(d.cur)) {
		return 0, fmt.Errorf("misaligned write %d+%d", off, len(p))
	}
	if d.writes == d.crashAt {
		d.crash(pendingWrite{off, p})
		return 0, errCrashed
	}
	d.writes++
	copy(d.cur[off:], p)
	d.pending = append(d.pending, pendingWrite{off, append([]byte(nil), p...)})
	return len(p), nil
}

func (d *crashDev) crash(w pendingWrite) {
	d.crashed = true
	keep := func(pw pendingWrite) { copy(d.durable[pw.off:], pw.data) }
	switch d.mode {
	case dropAll:
	case keepAll:
		for _, pw := range d.pending {
			keep(pw)
		}
		keep(w)
	case tearBlock, tearByte:
		for _, pw := range d.pending {
			keep(pw)
		}
		n := len(w.data) / d.bs / 2 * d.bs
		if d.mode == tearByte {
			n = len(w.data)/2 + 7
		}
		keep(pendingWrite{w.off, w.data[:n]})
	case reorder:
		keep(w)
	case random:
		// Any subset may have reached the media, in any order; later
		// writes to the same place win only if they made it.
		for _, pw := range d.pending {
			if d.rng.IntN(2) == 0 {
				keep(pw)
			}
		}
		keep(pendingWrite{w.off, w.data[:d.rng.IntN(len(w.data)/d.bs+1)*d.bs]})
	}
	d.pending = nil
}

func (d *crashDev) Flush() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.crashed {
		return errCrashed
	}
	for _, pw := range d.pending {
		copy(d.durable[pw.off:], pw.data)
	}
	d.pending = nil
	return nil
}

func (d *crashDev) Size() int64    { return int64(len(d.cur)) }
func (d *crashDev) BlockSize() int { return d.bs }

// image is what a restart finds on the device.
func (d *crashDev) image() []byte {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]byte(nil), d.durable...)
}

// crashModes lists random several times: each run draws another subset.
var crashModes = []crashMode{dropAll, keepAll, tearBlock, tearByte, reorder, random, random, random}

// openImage opens a copy of img and returns its state; Open itself writes
// (a fresh checkpoint), so the image is never opened in place.
func openImage(t *testing.T, img []byte, bs int) (*lvs.Store, storeState) {
	t.Helper()
	dev, err := lvs.NewMemDeviceFrom(img, bs)
	require.NoError(t, err)
	s, err := lvs.Open(dev)
	require.NoError(t, err)
	require.NoError(t, lvs.CheckInvariants(s))
	return s, stateOf(t, s)
}

// crashOp is one step of the crash test; lvols are looked up by name so
// the step runs against any store.
type crashOp struct {
	name string
	do   func(s *lvs.Store) error
	// mix: the op also writes to allocated clusters, which is not
	// atomic (no block-device write over several blocks is), so each
	// block may be from before or after.
	mix bool
}

func write(name string, off int64, n int, seed byte) func(s *lvs.Store) error {
	return func(s *lvs.Store) error {
		l, err := s.Lvol(name)
		if err != nil {
			return err
		}
		_, err = l.WriteAt(pattern(n, off, seed), off)
		return err
	}
}

func unmap(name string, off, n int64) func(s *lvs.Store) error {
	return func(s *lvs.Store) error {
		l, err := s.Lvol(name)
		if err != nil {
			return err
		}
		return l.Unmap(off, n)
	}
}

func create(name string, size uint64, thin bool) func(s *lvs.Store) error {
	return func(s *lvs.Store) error { _, err := s.Create(name, size, thin); return err }
}

// TestCrash runs a sequence of metadata changes and thin first writes and,
// for each, crashes the device at every one of its writes in every mode.
// The reopened store must be consistent (Open's checks and
// CheckInvariants: no cluster mapped twice) and equal to the state before
// the change or the state after it, data included: never a mix.
func TestCrash(t *testing.T) {
	for _, bs := range blockSizes {
		t.Run(fmt.Sprint(bs), func(t *testing.T) {
			t.Parallel()
			testCrash(t, bs)
		})
	}
}

func testCrash(t *testing.T, bs int) {
	const cs = 32 * kib
	ops := []crashOp{
		{"create thin t1", create("t1", 6*cs, true), false},
		{"create thick k1", create("k1", 3*cs, false), false},
		{"first write t1 c0", write("t1", int64(cs/2), 2*bs, 1), false},
		{"first write t1 c1-c3", write("t1", int64(cs+bs), 2*cs, 2), false},
		{"mixed write t1 c3-c4", write("t1", int64(3*cs+bs), cs, 3), true},
		{"grow thick k1", func(s *lvs.Store) error { return s.Resize("k1", 5*cs) }, false},
		{"rename k1", func(s *lvs.Store) error { return s.Rename("k1", "k2") }, false},
		{"unmap t1 c1-c2", unmap("t1", int64(cs), 2*cs), false},
		{"unmap t1 partial", unmap("t1", int64(cs/2), int64(bs)), true},
		{"shrink t1", func(s *lvs.Store) error { return s.Resize("t1", 2*cs) }, false},
		{"create thin t2", create("t2", 12*cs, true), false},
		{"first write t2 c5", write("t2", int64(5*cs), cs, 4), false},
		{"delete k2", func(s *lvs.Store) error { return s.Delete("k2") }, false},
		{"create thick k3", create("k3", 20*cs, false), false},
		{"first write t2 c9", write("t2", int64(9*cs), bs, 5), false},
		{"first write t2 c10", write("t2", int64(10*cs+bs), bs, 6), false},
		{"first write t2 c11", write("t2", int64(11*cs+bs), bs, 7), false},
		{"shrink thick k3", func(s *lvs.Store) error { return s.Resize("k3", 7*cs) }, false},
		{"delete t1", func(s *lvs.Store) error { return s.Delete("t1") }, false},
		{"create thin t3", create("t3", 10*cs, true), false},
		{"first write t3 c0-c9", write("t3", 0, 10*cs, 8), false},
		{"delete t2", func(s *lvs.Store) error { return s.Delete("t2") }, false},
	}
	dev := memDev(t, 1*mib, bs)
	// A tiny journal, so that the sequence goes through several
	// checkpoints and crashes hit them too.
	_, err := lvs.Format(dev, lvs.Options{Name: "crash", ClusterSize: cs, MaxLvols: 8, JournalSize: 4096})
	require.NoError(t, err)
	img := append([]byte(nil), dev.Bytes()...)
	crashes := 0
	for i, op := range ops {
		sb, before := openImage(t, img, bs)
		var beforeData, afterData map[string][]byte
		if op.mix {
			beforeData = contents(t, sb)
		}

		// The clean run gives the state after and the number of writes.
		clean := newCrashDev(img, bs)
		s, err := lvs.Open(clean)
		require.NoError(t, err)
		clean.arm(-1, dropAll, 0)
		require.NoError(t, op.do(s), "op %d %s", i, op.name)
		writes := clean.writes
		require.NoError(t, s.Close())
		next := clean.image()
		sa, after := openImage(t, next, bs)
		if op.mix {
			afterData = contents(t, sa)
		}
		require.NotEqual(t, before, after, "op %d %s changes something", i, op.name)

		for at := range writes {
			for m, mode := range crashModes {
				dev := newCrashDev(img, bs)
				s, err := lvs.Open(dev)
				require.NoError(t, err)
				dev.arm(at, mode, uint64(i*len(crashModes)+m))
				require.Error(t, op.do(s), "op %d %s with a crash at write %d", i, op.name, at)
				crashes++

				s2, got := openImage(t, dev.image(), bs)
				where := fmt.Sprintf("op %d %s, crash at write %d of %d, %v", i, op.name, at, writes, mode)
				switch {
				case op.mix && got.withoutData().Equal(after.withoutData()):
					require.Equal(t, after.uuids(), got.uuids(), where)
					if mode == tearByte {
						break // a data block torn in mid-block is neither; devices write a block atomically
					}
					for name, g := range contents(t, s2) {
						for b := 0; b < len(g); b += bs {
							blk := g[b : b+bs]
							if !bytes.Equal(blk, beforeData[name][b:b+bs]) && !bytes.Equal(blk, afterData[name][b:b+bs]) {
								t.Fatalf("%s: lvol %s block at %d is from neither before nor after", where, name, b)
							}
						}
					}
				case got.withoutUUIDs().Equal(before.withoutUUIDs()):
					require.Equal(t, before.uuids(), got.uuids(), where)
				case got.withoutUUIDs().Equal(after.withoutUUIDs()):
					// A create in the crashed run made its own uuid; the
					// others must be the ones from before.
					for u := range before.uuids() {
						require.Equal(t, after.uuids()[u], got.uuids()[u], where)
					}
				default:
					t.Fatalf("%s: state is neither before nor after:\nbefore %+v\nafter  %+v\ngot    %+v", where, before, after, got)
				}
				// The recovered store works and recovers again.
				_, err = s2.Create("after-crash", cs, true)
				require.NoError(t, err, where)
				require.NoError(t, s2.Delete("after-crash"), where)
			}
		}
		img = next
	}
	t.Logf("%d ops, %d crashes", len(ops), crashes)
}

// TestCrashDuringOpen crashes Open's own checkpoint write, with journal
// entries waiting to be replayed: a second Open finds the same state.
func TestCrashDuringOpen(t *testing.T) {
	const bs, cs = 512, 64 * kib
	dev := memDev(t, 4*mib, bs)
	s, err := lvs.Format(dev, lvs.Options{Name: "crash", ClusterSize: cs, MaxLvols: 8, JournalSize: 64 * kib})
	require.NoError(t, err)
	for _, op := range []func(*lvs.Store) error{create("a", 4*cs, true), write("a", cs, bs, 1), create("b", 2*cs, false)} {
		require.NoError(t, op(s))
	}
	img := append([]byte(nil), dev.Bytes()...)
	_, want := openImage(t, img, bs)
	for at := range 4 {
		for _, mode := range crashModes {
			d := newCrashDev(img, bs)
			d.arm(at, mode, 1)
			_, err := lvs.Open(d)
			if err == nil {
				continue // Open wrote fewer than at+1 times
			}
			require.ErrorIs(t, err, errCrashed)
			_, got := openImage(t, d.image(), bs)
			require.Equal(t, want, got, "crash at write %d, %v", at, mode)
		}
	}
}

// TestCrashDuringFormat: a crash while formatting leaves the old store
// intact, a device that is not formatted, or the new empty store; never a
// corrupt one.
func TestCrashDuringFormat(t *testing.T) {
	const bs, cs = 512, 64 * kib
	dev := memDev(t, 4*mib, bs)
	s, err := lvs.Format(dev, lvs.Options{Name: "old", ClusterSize: cs, MaxLvols: 8})
	require.NoError(t, err)
	require.NoError(t, create("a", 4*cs, false)(s))
	img := append([]byte(nil), dev.Bytes()...)
	for at := range 4 {
		for _, mode := range crashModes {
			d := newCrashDev(img, bs)
			d.arm(at, mode, 2)
			_, err := lvs.Format(d, lvs.Options{Name: "new", ClusterSize: cs, MaxLvols: 8})
			if err == nil {
				continue
			}
			m, err := lvs.NewMemDeviceFrom(d.image(), bs)
			require.NoError(t, err)
			s, err := lvs.Open(m)
			if errors.Is(err, lvs.ErrNotFormatted) {
				continue
			}
			require.NoError(t, err, "crash at write %d, %v", at, mode)
			switch s.Name() {
			case "old":
				require.Len(t, s.Lvols(), 1)
			case "new":
				require.Empty(t, s.Lvols())
			default:
				t.Fatalf("name %q", s.Name())
			}
		}
	}
}

// TestCrashConcurrentAllocations crashes while many thin first writes are
// committed in shared journal entries: every cluster that survives
// mapped must hold its write, every other one must read zeroes.
func TestCrashConcurrentAllocations(t *testing.T) {
	const bs, cs = 512, 64 * kib
	dev := memDev(t, 8*mib, bs)
	s, err := lvs.Format(dev, lvs.Options{Name: "crash", ClusterSize: cs, MaxLvols: 8, JournalSize: 8192})
	require.NoError(t, err)
	_, err = s.Create("t", 64*cs, true)
	require.NoError(t, err)
	img := append([]byte(nil), dev.Bytes()...)
	for _, at := range []int{3, 10, 25, 60, 120} {
		for _, mode := range crashModes {
			d := newCrashDev(img, bs)
			s, err := lvs.Open(d)
			require.NoError(t, err)
			d.arm(at, mode, 3)
			l, err := s.Lvol("t")
			require.NoError(t, err)
			var wg sync.WaitGroup
			for g := range 8 {
				wg.Go(func() {
					for c := g; c < 64; c += 8 {
						off := int64(c)*cs + int64(c%7)*bs
						_, _ = l.WriteAt(pattern(bs, off, 1), off)
					}
				})
			}
			wg.Wait()
			s2, _ := openImage(t, d.image(), bs)
			l2, err := s2.Lvol("t")
			require.NoError(t, err)
			all := readAll(t, l2)
			var mapped uint64
			for c := range int64(64) {
				cl := all[c*cs : (c+1)*cs]
				off := c*cs + c%7*bs
				if isZero(cl) {
					continue
				}
				mapped++
				mustEqualBytes(t, pattern(bs, off, 1), all[off:off+bs], fmt.Sprintf("cluster %d (crash at %d, %v)", c, at, mode))
				clear(cl[c%7*bs:][:bs])
				require.True(t, isZero(cl), "cluster %d holds only its write", c)
			}
			require.Equal(t, mapped, l2.AllocatedClusters(), "crash at %d, %v", at, mode)
		}
	}
}

func contents(t *testing.T, s *lvs.Store) map[string][]byte {
	m := map[string][]byte{}
	for _, l := range s.Lvols() {
		m[l.Name()] = readAll(t, l)
	}
	return m
}
