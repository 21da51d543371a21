package lvs_test

import (
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/virtual-disk-array/vda/lvs"
)

// go test ./lvs -run '^$' -bench . -benchmem

func BenchmarkThickRandom4K(b *testing.B) {
	dev := memDev(b, 256*mib, 4096)
	s, err := lvs.Format(dev, lvs.Options{Name: "bench"})
	require.NoError(b, err)
	l, err := s.Create("v", 192*mib, false)
	require.NoError(b, err)
	offs := make([]int64, 1<<16)
	r := rand.New(rand.NewPCG(1, 2))
	for i := range offs {
		offs[i] = r.Int64N(int64(l.Size())/4096) * 4096
	}
	buf := lvs.AlignedBuffer(4096)
	for _, op := range []string{"write", "read"} {
		do := l.WriteAt
		if op == "read" {
			do = l.ReadAt
		}
		b.Run(op, func(b *testing.B) {
			b.SetBytes(4096)
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				if _, err := do(buf, offs[i&(len(offs)-1)]); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(op+"-parallel", func(b *testing.B) {
			b.SetBytes(4096)
			b.ReportAllocs()
			var seed atomic.Uint64
			b.RunParallel(func(pb *testing.PB) {
				buf := lvs.AlignedBuffer(4096)
				i := int(seed.Add(7919))
				for pb.Next() {
					if _, err := do(buf, offs[i&(len(offs)-1)]); err != nil {
						b.Fatal(err)
					}
					i++
				}
			})
		})
	}
}

// BenchmarkThinFirstWrite measures a 4 KiB write that allocates a
// cluster: the zero fill around it, the flush, the journal entry and its
// flush. The lvol is recreated (untimed) when the store fills up.
func BenchmarkThinFirstWrite(b *testing.B) {
	for _, cs := range []uint64{64 * kib, 1 * mib, 4 * mib} {
		b.Run(fmt.Sprintf("mem/cluster=%dKiB", cs/kib), func(b *testing.B) {
			benchThinFirstWrite(b, memDev(b, 512*mib, 4096), cs, 1)
		})
	}
	for _, par := range []int{1, 16} {
		b.Run(fmt.Sprintf("file/cluster=64KiB/writers=%d", par), func(b *testing.B) {
			d, err := lvs.CreateFileDevice(filepath.Join(b.TempDir(), "dev"), 256*mib, 4096)
			require.NoError(b, err)
			b.Cleanup(func() { _ = d.Close() })
			benchThinFirstWrite(b, d, 64*kib, par)
		})
	}
}

func benchThinFirstWrite(b *testing.B, dev lvs.Device, cs uint64, writers int) {
	s, err := lvs.Format(dev, lvs.Options{Name: "bench", ClusterSize: cs})
	require.NoError(b, err)
	n := s.TotalClusters()
	l, err := s.Create("t", n*cs, true)
	require.NoError(b, err)
	var next atomic.Uint64
	var mu sync.RWMutex // held exclusively only to recreate the lvol
	recreate := func() {
		b.StopTimer()
		require.NoError(b, s.Delete("t"))
		l, err = s.Create("t", n*cs, true)
		require.NoError(b, err)
		next.Store(0)
		b.StartTimer()
	}
	b.SetBytes(4096)
	b.ReportAllocs()
	if writers == 1 {
		buf := lvs.AlignedBuffer(4096)
		for b.Loop() {
			c := next.Add(1) - 1
			if c == n {
				recreate()
				c = next.Add(1) - 1
			}
			if _, err := l.WriteAt(buf, int64(c*cs)); err != nil {
				b.Fatal(err)
			}
		}
		return
	}
	b.SetParallelism(writers)
	b.RunParallel(func(pb *testing.PB) {
		buf := lvs.AlignedBuffer(4096)
		for pb.Next() {
			mu.RLock()
			c := next.Add(1) - 1
			if c >= n {
				mu.RUnlock()
				mu.Lock()
				if next.Load() >= n {
					recreate()
				}
				mu.Unlock()
				mu.RLock()
				c = next.Add(1) - 1
			}
			if _, err := l.WriteAt(buf, int64(c*cs)); err != nil {
				mu.RUnlock()
				b.Fatal(err)
			}
			mu.RUnlock()
		}
	})
}

// sparseDev is a device of any size that keeps only the 4 KiB pages
// written to (the metadata, and what lvols write), to measure the metadata
// of a large store in memory. Discard drops pages, so the zero fill of a
// thin allocation costs nothing.
type sparseDev struct {
	mu    sync.Mutex
	size  int64
	pages map[int64][]byte
}

const sparsePage = 4 * kib

func (d *sparseDev) ReadAt(p []byte, off int64) (int, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for done := 0; done < len(p); {
		o := off + int64(done)
		pg, in := o/sparsePage, int(o%sparsePage)
		k := min(len(p)-done, sparsePage-in)
		if page := d.pages[pg]; page != nil {
			copy(p[done:done+k], page[in:])
		} else {
			clear(p[done : done+k])
		}
		done += k
	}
	return len(p), nil
}

func (d *sparseDev) WriteAt(p []byte, off int64) (int, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for done := 0; done < len(p); {
		o := off + int64(done)
		pg, in := o/sparsePage, int(o%sparsePage)
		k := min(len(p)-done, sparsePage-in)
		page := d.pages[pg]
		if page == nil {
			page = make([]byte, sparsePage)
			d.pages[pg] = page
		}
		copy(page[in:], p[done:done+k])
		done += k
	}
	return len(p), nil
}

func (d *sparseDev) Discard(off, n int64) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	for o := off; o < off+n; o += sparsePage {
		delete(d.pages, o/sparsePage) // off and n are multiples of the block size, which is the page size
	}
	return nil
}

func (d *sparseDev) Flush() error   { return nil }
func (d *sparseDev) Size() int64    { return d.size }
func (d *sparseDev) BlockSize() int { return 4096 }

// BenchmarkOpen10TiB builds the brief's scale: a 10 TiB device with 4 MiB
// clusters holding 10,000 lvols (5,000 thick of 1 GiB, 5,000 thin of 1 GiB
// with three clusters written each), then times Open (read both
// checkpoints and the journal, rebuild, write a fresh checkpoint).
func BenchmarkOpen10TiB(b *testing.B) {
	if testing.Short() {
		b.Skip("builds 10,000 lvols")
	}
	dev := &sparseDev{size: 10 << 40, pages: map[int64][]byte{}}
	start := time.Now()
	s, err := lvs.Format(dev, lvs.Options{Name: "big", JournalSize: 64 * mib})
	require.NoError(b, err)
	buf := lvs.AlignedBuffer(4096)
	for i := range 10000 {
		thin := i%2 == 1
		l, err := s.Create(fmt.Sprint("lvol", i), 1<<30, thin)
		require.NoError(b, err)
		if thin {
			for _, c := range []int64{0, 100, 200} {
				_, err := l.WriteAt(buf, c*4*mib)
				require.NoError(b, err)
			}
		}
	}
	lay := lvs.LayoutOf(s)
	b.Logf("format + 10,000 creates + 15,000 thin allocations: %v; %d clusters, %d free; metadata: slots 2 x %.1f MiB, journal %.1f MiB, data from %.1f MiB",
		time.Since(start).Round(time.Millisecond), s.TotalClusters(), s.FreeClusters(),
		float64(lay.SlotSize)/mib, float64(lay.JournalSize)/mib, float64(lay.DataOff)/mib)
	require.NoError(b, s.Close())
	s = nil
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	s, err = lvs.Open(dev)
	require.NoError(b, err)
	runtime.GC()
	runtime.ReadMemStats(&after)
	b.Logf("heap of an open store: %.1f MiB", float64(after.HeapInuse-before.HeapInuse)/mib)
	require.Len(b, s.Lvols(), 10000)
	require.NoError(b, s.Close())
	b.ReportAllocs()
	for b.Loop() {
		s, err := lvs.Open(dev)
		require.NoError(b, err)
		require.NoError(b, s.Close())
	}
}
