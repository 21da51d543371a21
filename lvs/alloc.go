package lvs

import (
	"cmp"
	"math/bits"
	"slices"
	"sync/atomic"
)

// extent is a run of physical clusters [phys, phys+n).
type extent struct{ phys, n uint32 }

// bitmap marks the physical clusters in use: owned by an lvol, or reserved
// by an allocation whose journal entry is not written yet.
type bitmap []uint64

func newBitmap(n uint64) bitmap { return make(bitmap, (n+63)/64) }

func (b bitmap) test(i uint64) bool { return b[i/64]&(1<<(i%64)) != 0 }
func (b bitmap) set(i uint64)       { b[i/64] |= 1 << (i % 64) }
func (b bitmap) clear(i uint64)     { b[i/64] &^= 1 << (i % 64) }

// take marks n free clusters of the first total as used and returns them as
// ascending extents, with the hint for the next search. It searches from
// hint onwards and then wraps, so that successive allocations walk the
// device instead of crowding its start; callers check that n clusters are
// free first.
func (b bitmap) take(n, total, hint uint64) (ext []extent, next uint64) {
	if hint >= total {
		hint = 0
	}
	next = hint
	scan := func(from, to uint64) {
		for i := from; i < to && n > 0; {
			// Bits below i count as used so the scan never goes back.
			w := b[i/64] | (uint64(1)<<(i%64) - 1)
			if w == ^uint64(0) {
				i = (i/64 + 1) * 64
				continue
			}
			j := i/64*64 + uint64(bits.TrailingZeros64(^w))
			if j >= to {
				return
			}
			b.set(j)
			n--
			if k := len(ext) - 1; k >= 0 && uint64(ext[k].phys)+uint64(ext[k].n) == j {
				ext[k].n++
			} else {
				ext = append(ext, extent{phys: uint32(j), n: 1})
			}
			i, next = j+1, j+1
		}
	}
	scan(hint, total)
	scan(0, hint)
	slices.SortFunc(ext, func(a, b extent) int { return cmp.Compare(a.phys, b.phys) })
	return ext, next
}

// chunkShift sizes the second level of a cluster map: up to 4096 entries
// (16 KiB) per chunk, allocated on first use and no longer than the lvol
// needs, so a sparse thin lvol costs memory in proportion to what it has
// allocated and a small lvol in proportion to its size.
const (
	chunkShift = 12
	chunkLen   = 1 << chunkShift
)

type chunk struct{ e []atomic.Uint32 }

// cmap maps an lvol's logical clusters to physical cluster+1 (0: not
// allocated). Entries are atomic because I/O reads them without a lock
// while the committer publishes new allocations; the chunk slice itself
// and n change only on resize, under the lvol's exclusive lock.
type cmap struct {
	chunks []atomic.Pointer[chunk]
	n      uint64
}

func newCmap(clusters uint64) cmap {
	return cmap{chunks: make([]atomic.Pointer[chunk], (clusters+chunkLen-1)/chunkLen), n: clusters}
}

func (m *cmap) get(i uint64) uint32 {
	c := m.chunks[i>>chunkShift].Load()
	if c == nil {
		return 0
	}
	return c.e[i&(chunkLen-1)].Load()
}

// set is called by one goroutine at a time (the committer, or Open).
func (m *cmap) set(i uint64, v uint32) {
	k := i >> chunkShift
	p := &m.chunks[k]
	c := p.Load()
	if c == nil {
		if v == 0 {
			return
		}
		c = &chunk{e: make([]atomic.Uint32, min(chunkLen, m.n-k<<chunkShift))}
		p.Store(c)
	}
	c.e[i&(chunkLen-1)].Store(v)
}

// resize changes the number of logical clusters; entries beyond a shrunk
// size must already be zero.
func (m *cmap) resize(clusters uint64) {
	n := int((clusters + chunkLen - 1) / chunkLen)
	if n <= len(m.chunks) {
		for i := n; i < len(m.chunks); i++ {
			m.chunks[i].Store(nil)
		}
		m.chunks = m.chunks[:n:n]
	} else {
		c := make([]atomic.Pointer[chunk], n)
		for i := range m.chunks {
			c[i].Store(m.chunks[i].Load())
		}
		m.chunks = c
	}
	m.n = clusters
	// A chunk cut short for the old size must cover the new one.
	for k := range m.chunks {
		c := m.chunks[k].Load()
		if want := min(chunkLen, clusters-uint64(k)<<chunkShift); c != nil && uint64(len(c.e)) < want {
			g := &chunk{e: make([]atomic.Uint32, want)}
			for i := range c.e {
				g.e[i].Store(c.e[i].Load())
			}
			m.chunks[k].Store(g)
		}
	}
}

// each calls fn for every allocated cluster in [from, to), skipping
// unallocated chunks wholesale.
func (m *cmap) each(from, to uint64, fn func(logical uint64, v uint32)) {
	for i := from; i < to; {
		c := m.chunks[i>>chunkShift].Load()
		end := min(to, (i>>chunkShift+1)<<chunkShift)
		if c == nil {
			i = end
			continue
		}
		for ; i < end; i++ {
			if v := c.e[i&(chunkLen-1)].Load(); v != 0 {
				fn(i, v)
			}
		}
	}
}

// next returns the first logical cluster in [from, to) whose allocation
// state is want, or to.
func (m *cmap) next(from, to uint64, want bool) uint64 {
	for i := from; i < to; {
		c := m.chunks[i>>chunkShift].Load()
		end := min(to, (i>>chunkShift+1)<<chunkShift)
		if c == nil {
			if !want {
				return i
			}
			i = end
			continue
		}
		for ; i < end; i++ {
			if (c.e[i&(chunkLen-1)].Load() != 0) == want {
				return i
			}
		}
	}
	return to
}
