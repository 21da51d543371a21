package lvs_test

import (
	"bytes"
	"crypto/sha256"
	"path/filepath"
	"slices"
	"testing"
	"unsafe"

	"github.com/stretchr/testify/require"

	"github.com/virtual-disk-array/vda/lvs"
)

const (
	kib = 1 << 10
	mib = 1 << 20
)

// devKind makes a device of a kind and can reopen it, as a restart would.
type devKind struct {
	name   string
	make   func(t *testing.T, size int64, bs int) lvs.Device
	reopen func(t *testing.T, d lvs.Device) lvs.Device
}

var devKinds = []devKind{
	{
		name: "mem",
		make: func(t *testing.T, size int64, bs int) lvs.Device {
			d, err := lvs.NewMemDevice(size, bs)
			require.NoError(t, err)
			return d
		},
		reopen: func(t *testing.T, d lvs.Device) lvs.Device {
			m, err := lvs.NewMemDeviceFrom(d.(*lvs.MemDevice).Bytes(), d.BlockSize())
			require.NoError(t, err)
			return m
		},
	},
	{
		name: "file",
		make: func(t *testing.T, size int64, bs int) lvs.Device {
			path := filepath.Join(t.TempDir(), "dev")
			d, err := lvs.CreateFileDevice(path, size, bs)
			require.NoError(t, err)
			t.Cleanup(func() { _ = d.Close() })
			t.Logf("file device: O_DIRECT %v", d.Direct())
			return &namedFile{FileDevice: d, path: path}
		},
		reopen: func(t *testing.T, d lvs.Device) lvs.Device {
			nf := d.(*namedFile)
			require.NoError(t, nf.Close())
			f, err := lvs.OpenFileDevice(nf.path, nf.BlockSize())
			require.NoError(t, err)
			t.Cleanup(func() { _ = f.Close() })
			return &namedFile{FileDevice: f, path: nf.path}
		},
	},
}

type namedFile struct {
	*lvs.FileDevice
	path string
}

var blockSizes = []int{512, 4096}

func memDev(t testing.TB, size int64, bs int) *lvs.MemDevice {
	t.Helper()
	d, err := lvs.NewMemDevice(size, bs)
	require.NoError(t, err)
	return d
}

// pattern fills a buffer with bytes that depend on where they are meant
// to land and on a seed, so misplaced data shows.
func pattern(n int, off int64, seed byte) []byte {
	b := make([]byte, n)
	for i := range b {
		o := off + int64(i)
		b[i] = byte(o>>9) ^ byte(o>>17)*7 ^ byte(i) ^ seed*31 ^ 0x5a
	}
	return b
}

func readAll(t testing.TB, l *lvs.Lvol) []byte {
	t.Helper()
	b := make([]byte, l.Size())
	_, err := l.ReadAt(b, 0)
	require.NoError(t, err)
	return b
}

func isZero(b []byte) bool { return !slices.ContainsFunc(b, func(c byte) bool { return c != 0 }) }

// lvolState is what a test compares about an lvol across a reopen or a
// crash.
type lvolState struct {
	Name  string
	UUID  lvs.UUID
	Size  uint64
	Thin  bool
	Alloc uint64
	Data  [32]byte
}

type storeState struct {
	Free  uint64
	Lvols []lvolState
}

func stateOf(t testing.TB, s *lvs.Store) storeState {
	t.Helper()
	st := storeState{Free: s.FreeClusters()}
	var used uint64
	for _, l := range s.Lvols() {
		st.Lvols = append(st.Lvols, lvolState{Name: l.Name(), UUID: l.UUID(), Size: l.Size(), Thin: l.Thin(),
			Alloc: l.AllocatedClusters(), Data: sha256.Sum256(readAll(t, l))})
		used += l.AllocatedClusters()
	}
	require.Equal(t, s.TotalClusters(), st.Free+used, "free + allocated = total")
	return st
}

func (st storeState) withoutUUIDs() storeState {
	c := storeState{Free: st.Free, Lvols: slices.Clone(st.Lvols)}
	for i := range c.Lvols {
		c.Lvols[i].UUID = lvs.UUID{}
	}
	return c
}

func (st storeState) uuids() map[lvs.UUID]bool {
	m := map[lvs.UUID]bool{}
	for _, l := range st.Lvols {
		m[l.UUID] = true
	}
	return m
}

func mustEqualBytes(t testing.TB, want, got []byte, msg string) {
	t.Helper()
	if !bytes.Equal(want, got) {
		for i := range want {
			if want[i] != got[i] {
				t.Fatalf("%s: first difference at byte %d (want %#x, got %#x)", msg, i, want[i], got[i])
			}
		}
		t.Fatalf("%s: lengths %d and %d", msg, len(want), len(got))
	}
}

// Equal compares two states.
func (st storeState) Equal(o storeState) bool {
	if st.Free != o.Free || len(st.Lvols) != len(o.Lvols) {
		return false
	}
	for i := range st.Lvols {
		if st.Lvols[i] != o.Lvols[i] {
			return false
		}
	}
	return true
}

func (st storeState) withoutData() storeState {
	c := storeState{Free: st.Free, Lvols: slices.Clone(st.Lvols)}
	for i := range c.Lvols {
		c.Lvols[i].Data = [32]byte{}
	}
	return c
}

func uintptrOf(b []byte) uintptr { return uintptr(unsafe.Pointer(&b[0])) }
