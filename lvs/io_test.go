package lvs_test

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/virtual-disk-array/vda/lvs"
)

// TestIOPatterns writes patterns at offsets around cluster boundaries,
// keeps a shadow copy, and compares the whole lvol with it before and
// after a reopen.
func TestIOPatterns(t *testing.T) {
	for _, k := range devKinds {
		for _, bs := range blockSizes {
			for _, thin := range []bool{true, false} {
				t.Run(fmt.Sprintf("%s/%d/thin=%v", k.name, bs, thin), func(t *testing.T) {
					dev := k.make(t, 16*mib, bs)
					s, err := lvs.Format(dev, lvs.Options{Name: "lvs", ClusterSize: 64 * kib})
					require.NoError(t, err)
					cs := int64(s.ClusterSize())
					b := int64(bs)
					const nclusters = 12
					l, err := s.Create("v", uint64(nclusters*cs), thin)
					require.NoError(t, err)
					shadow := make([]byte, nclusters*cs)
					if !thin {
						// A thick lvol is not cleared at create; start from what it holds.
						shadow = readAll(t, l)
					}
					writes := []struct{ off, n int64 }{
						{0, b},                        // first block
						{cs - b, b},                   // last block of cluster 0
						{cs - b, 2 * b},               // across the 0/1 boundary
						{2*cs - 3*b, cs + 6*b},        // ends inside cluster 3
						{4 * cs, cs},                  // exactly cluster 4
						{5*cs + b, 3*cs - 2*b},        // clusters 5..7, unaligned ends
						{9*cs - b, 2*cs + 2*b},        // 8..11 partly
						{nclusters*cs - b, b},         // last block
						{3 * b, 5 * b},                // rewrite inside cluster 0
						{5*cs + b, b},                 // rewrite inside an allocated run
						{6*cs - 7*b, 14 * b},          // rewrite across allocated clusters
						{10 * cs, cs},                 // cluster 10, whole
						{10*cs + cs/2, cs/2 + 2*b},    // into cluster 11
						{int64(float64(cs) * 7.5), b}, // middle of cluster 7
					}
					for i, w := range writes {
						p := pattern(int(w.n), w.off, byte(i))
						if i%2 == 1 {
							// Unaligned memory: the O_DIRECT device bounces it.
							q := make([]byte, len(p)+1)
							p = q[1:]
							copy(p, pattern(int(w.n), w.off, byte(i)))
						}
						n, err := l.WriteAt(p, w.off)
						require.NoError(t, err, "write %d", i)
						require.Equal(t, len(p), n)
						copy(shadow[w.off:], p)
						got := make([]byte, w.n+1)[1:]
						_, err = l.ReadAt(got, w.off)
						require.NoError(t, err)
						mustEqualBytes(t, p, got, fmt.Sprintf("read back write %d", i))
					}
					mustEqualBytes(t, shadow, readAll(t, l), "whole lvol")
					if thin {
						// The writes touch every cluster.
						assert.Equal(t, uint64(nclusters), l.AllocatedClusters())
					}
					require.NoError(t, lvs.CheckInvariants(s))
					require.NoError(t, s.Close())

					s, err = lvs.Open(k.reopen(t, dev))
					require.NoError(t, err)
					l, err = s.Lvol("v")
					require.NoError(t, err)
					mustEqualBytes(t, shadow, readAll(t, l), "whole lvol after reopen")
					require.NoError(t, lvs.CheckInvariants(s))
				})
			}
		}
	}
}

func TestThinReadsZero(t *testing.T) {
	for _, bs := range blockSizes {
		s, err := lvs.Format(memDev(t, 8*mib, bs), lvs.Options{Name: "lvs", ClusterSize: 64 * kib})
		require.NoError(t, err)
		cs := int64(s.ClusterSize())
		// Leave old data all over the device first.
		filler, err := s.Create("filler", s.TotalClusters()*s.ClusterSize(), false)
		require.NoError(t, err)
		_, err = filler.WriteAt(pattern(int(filler.Size()), 0, 9), 0)
		require.NoError(t, err)
		require.NoError(t, s.Delete("filler"))

		l, err := s.Create("t", uint64(6*cs), true)
		require.NoError(t, err)
		assert.True(t, isZero(readAll(t, l)), "a new thin lvol reads zeroes")
		assert.Zero(t, l.AllocatedClusters())
		p := pattern(bs, 0, 1)
		_, err = l.WriteAt(p, 2*cs+cs/2)
		require.NoError(t, err)
		assert.Equal(t, uint64(1), l.AllocatedClusters())
		all := readAll(t, l)
		mustEqualBytes(t, p, all[2*cs+cs/2:2*cs+cs/2+int64(bs)], "the written block")
		clear(all[2*cs+cs/2 : 2*cs+cs/2+int64(bs)])
		assert.True(t, isZero(all), "the rest of the cluster and the other clusters read zeroes, not the old data")
	}
}

func TestThinNoSpace(t *testing.T) {
	s, err := lvs.Format(memDev(t, 4*mib, 512), lvs.Options{Name: "lvs", ClusterSize: 64 * kib})
	require.NoError(t, err)
	cs := int64(s.ClusterSize())
	n := int64(s.TotalClusters())
	l, err := s.Create("t", uint64(2*n*cs), true)
	require.NoError(t, err)
	for i := range n {
		_, err := l.WriteAt(pattern(512, i*cs, byte(i)), i*cs)
		require.NoError(t, err)
	}
	assert.Zero(t, s.FreeClusters())
	_, err = l.WriteAt(pattern(512, 0, 0), n*cs)
	assert.ErrorIs(t, err, lvs.ErrNoSpace)
	_, err = s.Create("k", uint64(cs), false)
	assert.ErrorIs(t, err, lvs.ErrNoSpace)
	_, err = l.WriteAt(pattern(512, 0, 7), 3*cs+512)
	require.NoError(t, err, "allocated clusters stay writable when the store is full")
	for i := range n {
		got := make([]byte, 512)
		_, err := l.ReadAt(got, i*cs)
		require.NoError(t, err)
		mustEqualBytes(t, pattern(512, i*cs, byte(i)), got, "data written before the store filled up")
	}
	assert.Equal(t, uint64(n), l.AllocatedClusters())
	require.NoError(t, lvs.CheckInvariants(s))
}

// TestDeleteNoLeak: a deleted lvol's clusters come back, and its data does
// not show through a new thin lvol. A new thick lvol is not cleared (as in
// SPDK, whose default does not clear either): it reads whatever its
// clusters held.
func TestDeleteNoLeak(t *testing.T) {
	s, err := lvs.Format(memDev(t, 4*mib, 4096), lvs.Options{Name: "lvs", ClusterSize: 64 * kib})
	require.NoError(t, err)
	total := s.TotalClusters()
	old, err := s.Create("old", total*s.ClusterSize(), false)
	require.NoError(t, err)
	secret := pattern(int(old.Size()), 0, 0xEE)
	_, err = old.WriteAt(secret, 0)
	require.NoError(t, err)
	assert.Zero(t, s.FreeClusters())
	require.NoError(t, s.Delete("old"))
	assert.Equal(t, total, s.FreeClusters())

	thin, err := s.Create("thin", total*s.ClusterSize(), true)
	require.NoError(t, err)
	assert.True(t, isZero(readAll(t, thin)))
	for i := range int64(total) {
		_, err := thin.WriteAt(pattern(4096, 0, 1), i*int64(s.ClusterSize())+8192)
		require.NoError(t, err)
	}
	all := readAll(t, thin)
	for i := range int64(total) {
		clear(all[i*int64(s.ClusterSize())+8192:][:4096])
	}
	assert.True(t, isZero(all), "a thin lvol never shows a deleted lvol's data")
	require.NoError(t, s.Delete("thin"))

	thick, err := s.Create("thick", total*s.ClusterSize(), false)
	require.NoError(t, err)
	assert.False(t, isZero(readAll(t, thick)), "documented: a thick lvol is not cleared at create")
}

func TestUnmapAndWriteZeroes(t *testing.T) {
	for _, thin := range []bool{true, false} {
		t.Run(fmt.Sprint("thin=", thin), func(t *testing.T) {
			dev := memDev(t, 8*mib, 512)
			s, err := lvs.Format(dev, lvs.Options{Name: "lvs", ClusterSize: 64 * kib})
			require.NoError(t, err)
			cs := int64(s.ClusterSize())
			l, err := s.Create("v", uint64(8*cs), thin)
			require.NoError(t, err)
			data := pattern(int(8*cs), 0, 3)
			_, err = l.WriteAt(data, 0)
			require.NoError(t, err)
			free := s.FreeClusters()

			// Half of cluster 1, clusters 2-4 whole, a block of cluster 5.
			require.NoError(t, l.Unmap(cs+cs/2, cs/2+3*cs+512))
			clear(data[cs+cs/2 : 5*cs+512])
			mustEqualBytes(t, data, readAll(t, l), "after unmap")
			if thin {
				assert.Equal(t, uint64(5), l.AllocatedClusters(), "whole clusters released")
				assert.Equal(t, free+3, s.FreeClusters())
			} else {
				assert.Equal(t, uint64(8), l.AllocatedClusters())
				assert.Equal(t, free, s.FreeClusters())
			}
			// Short unmaps and WriteZeroes keep the allocation.
			require.NoError(t, l.Unmap(7*cs, 512))
			require.NoError(t, l.WriteZeroes(6*cs, cs))
			clear(data[6*cs : 7*cs+512])
			mustEqualBytes(t, data, readAll(t, l), "after write zeroes")
			alloc := l.AllocatedClusters()
			require.NoError(t, l.WriteZeroes(0, 8*cs), "write zeroes over holes too")
			assert.Equal(t, alloc, l.AllocatedClusters())
			assert.True(t, isZero(readAll(t, l)))
			assert.ErrorIs(t, l.Unmap(1, 512), lvs.ErrInvalid)
			assert.ErrorIs(t, l.Unmap(0, 9*cs), lvs.ErrInvalid)
			require.NoError(t, lvs.CheckInvariants(s))

			before := stateOf(t, s)
			s, err = lvs.Open(dev)
			require.NoError(t, err)
			assert.Equal(t, before, stateOf(t, s))
		})
	}
}

func TestSeek(t *testing.T) {
	s, err := lvs.Format(memDev(t, 8*mib, 512), lvs.Options{Name: "lvs", ClusterSize: 64 * kib})
	require.NoError(t, err)
	cs := int64(s.ClusterSize())
	thin, err := s.Create("thin", uint64(5*cs), true)
	require.NoError(t, err)
	for _, c := range []int64{1, 3} {
		_, err := thin.WriteAt(make([]byte, 512), c*cs+512)
		require.NoError(t, err)
	}
	thick, err := s.Create("thick", uint64(2*cs), false)
	require.NoError(t, err)
	cases := []struct {
		l    *lvs.Lvol
		data bool
		off  int64
		want int64
	}{
		{thin, true, 0, cs},
		{thin, true, cs + 7, cs + 7},
		{thin, false, cs, 2 * cs},
		{thin, true, 2 * cs, 3 * cs},
		{thin, false, 3 * cs, 4 * cs},
		{thin, true, 4 * cs, -1},
		{thin, false, 0, 0},
		{thin, true, 5 * cs, -1},
		{thick, true, 100, 100},
		{thick, false, 0, -1},
	}
	for _, c := range cases {
		seek := c.l.SeekHole
		if c.data {
			seek = c.l.SeekData
		}
		got, err := seek(c.off)
		require.NoError(t, err)
		assert.Equal(t, c.want, got, "%s data=%v off=%d", c.l.Name(), c.data, c.off)
	}
	_, err = thin.SeekData(-1)
	assert.ErrorIs(t, err, lvs.ErrInvalid)
}

func TestIOErrors(t *testing.T) {
	s, err := lvs.Format(memDev(t, 8*mib, 4096), lvs.Options{Name: "lvs", ClusterSize: 64 * kib})
	require.NoError(t, err)
	l, err := s.Create("v", 128*kib, true)
	require.NoError(t, err)
	cases := []struct {
		name string
		n    int
		off  int64
	}{
		{"misaligned offset", 4096, 512},
		{"misaligned length", 512, 0},
		{"negative offset", 4096, -4096},
		{"beyond the end", 4096, 128 * kib},
		{"across the end", 8192, 128*kib - 4096},
	}
	for _, c := range cases {
		_, err := l.WriteAt(make([]byte, c.n), c.off)
		assert.ErrorIs(t, err, lvs.ErrInvalid, "write: %s", c.name)
		_, err = l.ReadAt(make([]byte, c.n), c.off)
		assert.ErrorIs(t, err, lvs.ErrInvalid, "read: %s", c.name)
	}
	assert.Zero(t, l.AllocatedClusters(), "refused writes allocate nothing")
	_, err = l.WriteAt(nil, 128*kib)
	assert.NoError(t, err, "an empty write at the end")
}

func TestResizeData(t *testing.T) {
	for _, thin := range []bool{true, false} {
		s, err := lvs.Format(memDev(t, 8*mib, 512), lvs.Options{Name: "lvs", ClusterSize: 64 * kib})
		require.NoError(t, err)
		cs := int64(s.ClusterSize())
		l, err := s.Create("v", uint64(4*cs), thin)
		require.NoError(t, err)
		data := pattern(int(4*cs), 0, 5)
		_, err = l.WriteAt(data, 0)
		require.NoError(t, err)
		require.NoError(t, s.Resize("v", uint64(2*cs)))
		assert.Equal(t, uint64(2), l.AllocatedClusters())
		_, err = l.ReadAt(make([]byte, 512), 2*cs)
		assert.ErrorIs(t, err, lvs.ErrInvalid, "beyond the shrunk end")
		require.NoError(t, s.Resize("v", uint64(6*cs)))
		got := readAll(t, l)
		mustEqualBytes(t, data[:2*cs], got[:2*cs], "data kept across shrink and grow")
		if thin {
			assert.True(t, isZero(got[2*cs:]), "a thin lvol's regrown part reads zeroes")
			assert.Equal(t, uint64(2), l.AllocatedClusters())
		} else {
			assert.Equal(t, uint64(6), l.AllocatedClusters())
		}
		require.NoError(t, lvs.CheckInvariants(s))
	}
}

// TestConcurrentIO runs writers that share clusters of a thin lvol (so
// first writes race for the same cluster), I/O to a thick lvol, and
// creates and deletes, all at once; then every byte must be where it was
// written, before and after a reopen.
func TestConcurrentIO(t *testing.T) {
	dev := memDev(t, 32*mib, 512)
	s, err := lvs.Format(dev, lvs.Options{Name: "lvs", ClusterSize: 64 * kib})
	require.NoError(t, err)
	cs := int64(s.ClusterSize())
	const nclusters, writers = 64, 8
	thin, err := s.Create("thin", uint64(nclusters*cs), true)
	require.NoError(t, err)
	thick, err := s.Create("thick", uint64(16*cs), false)
	require.NoError(t, err)
	// pre is read while the others are written: concurrent reads of the
	// same blocks would race in the MemDevice, as they would on a disk.
	pre, err := s.Create("pre", uint64(8*cs), true)
	require.NoError(t, err)
	for c := int64(0); c < 8; c += 2 {
		_, err := pre.WriteAt(pattern(int(cs), c*cs, 3), c*cs)
		require.NoError(t, err)
	}
	preData := readAll(t, pre)
	const blk = 4096
	blocks := nclusters * cs / blk
	var wg sync.WaitGroup
	errs := make(chan error, writers+2)
	for g := range writers {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(uint64(g), 1))
			// Writer g owns blocks b with b%writers == g, in random order.
			for _, i := range r.Perm(int(blocks / writers)) {
				off := (int64(i)*writers + int64(g)) * blk
				if _, err := thin.WriteAt(pattern(blk, off, 0), off); err != nil {
					errs <- err
					return
				}
				// The thick lvol is smaller; off%(16*cs) is still a block writer g owns.
				if _, err := thick.WriteAt(pattern(blk, off, byte(g)), off%(16*cs)); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Go(func() {
		for i := range 30 {
			name := fmt.Sprint("tmp", i)
			if _, err := s.Create(name, uint64(2*cs), i%2 == 0); err != nil {
				errs <- err
				return
			}
			if i > 0 {
				if err := s.Delete(fmt.Sprint("tmp", i-1)); err != nil {
					errs <- err
					return
				}
			}
		}
	})
	wg.Go(func() {
		buf := make([]byte, 8192)
		for i := range 500 {
			off := int64(i) * blk % (8*cs - 8192)
			if _, err := pre.ReadAt(buf, off); err != nil {
				errs <- err
				return
			}
			if !bytes.Equal(buf, preData[off:off+8192]) {
				errs <- fmt.Errorf("read of pre at %d differs", off)
				return
			}
		}
	})
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	want := pattern(int(nclusters*cs), 0, 0)
	// pattern depends on the offset only through off+i, so one big
	// pattern equals the blocks written one by one.
	for b := int64(0); b < blocks; b++ {
		copy(want[b*blk:], pattern(blk, b*blk, 0))
	}
	mustEqualBytes(t, want, readAll(t, thin), "thin lvol after concurrent first writes")
	assert.Equal(t, uint64(nclusters), thin.AllocatedClusters())
	require.NoError(t, lvs.CheckInvariants(s))
	before := stateOf(t, s)
	s, err = lvs.Open(dev)
	require.NoError(t, err)
	require.NoError(t, lvs.CheckInvariants(s))
	assert.Equal(t, before, stateOf(t, s))
}
