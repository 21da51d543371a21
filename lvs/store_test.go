package lvs_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/virtual-disk-array/vda/lvs"
)

func TestFormatOpenRoundTrip(t *testing.T) {
	for _, k := range devKinds {
		for _, bs := range blockSizes {
			t.Run(fmt.Sprintf("%s/%d", k.name, bs), func(t *testing.T) {
				dev := k.make(t, 32*mib, bs)
				u, err := lvs.ParseUUID("0b8d9b8e-7c1f-4f0e-9a37-0c1d2e3f4a5b")
				require.NoError(t, err)
				s, err := lvs.Format(dev, lvs.Options{Name: "lvs0", UUID: u, ClusterSize: 64 * kib})
				require.NoError(t, err)
				assert.Equal(t, "lvs0", s.Name())
				assert.Equal(t, u, s.UUID())
				assert.Equal(t, bs, s.BlockSize())
				assert.Equal(t, uint64(64*kib), s.ClusterSize())
				total := s.TotalClusters()
				assert.Greater(t, total, uint64(400))
				assert.Equal(t, total, s.FreeClusters())

				thin, err := s.Create("thin", 1*mib, true)
				require.NoError(t, err)
				thick, err := s.Create("thick", 2*mib+1, false)
				require.NoError(t, err)
				assert.Equal(t, uint64(2*mib+64*kib), thick.Size(), "size rounds up to clusters")
				assert.Equal(t, uint64(33), thick.AllocatedClusters())
				wt, wk := pattern(3*bs, 100*kib, 1), pattern(5*bs, 2*mib-2*int64(bs), 2)
				_, err = thin.WriteAt(wt, 100*kib)
				require.NoError(t, err)
				_, err = thick.WriteAt(wk, 2*mib-2*int64(bs))
				require.NoError(t, err)
				require.NoError(t, lvs.CheckInvariants(s))
				before := stateOf(t, s)
				require.NoError(t, s.Close())

				dev = k.reopen(t, dev)
				s, err = lvs.Open(dev)
				require.NoError(t, err)
				require.NoError(t, lvs.CheckInvariants(s))
				assert.Equal(t, "lvs0", s.Name())
				assert.Equal(t, u, s.UUID())
				assert.Equal(t, bs, s.BlockSize())
				assert.Equal(t, total, s.TotalClusters())
				assert.Equal(t, before, stateOf(t, s))
				thin, err = s.Lvol("thin")
				require.NoError(t, err)
				got := make([]byte, len(wt))
				_, err = thin.ReadAt(got, 100*kib)
				require.NoError(t, err)
				mustEqualBytes(t, wt, got, "thin after reopen")
				assert.Equal(t, uint64(1), thin.AllocatedClusters())
				require.NoError(t, s.Close())
			})
		}
	}
}

func TestOpenNotFormatted(t *testing.T) {
	for _, bs := range blockSizes {
		_, err := lvs.Open(memDev(t, 8*mib, bs))
		assert.ErrorIs(t, err, lvs.ErrNotFormatted)
	}
	_, err := lvs.Open(memDev(t, 2048, 512))
	assert.ErrorIs(t, err, lvs.ErrNotFormatted)
}

func TestFormatOptions(t *testing.T) {
	cases := []struct {
		name string
		size int64
		bs   int
		o    lvs.Options
		want error
	}{
		{"ok", 16 * mib, 512, lvs.Options{Name: "a", ClusterSize: 64 * kib}, nil},
		{"default cluster", 64 * mib, 512, lvs.Options{Name: "a"}, nil},
		{"4k cluster on 4k blocks", 16 * mib, 4096, lvs.Options{Name: "a", ClusterSize: 4096}, nil},
		{"no name", 16 * mib, 512, lvs.Options{ClusterSize: 64 * kib}, lvs.ErrInvalid},
		{"long name", 16 * mib, 512, lvs.Options{Name: strings.Repeat("x", 64), ClusterSize: 64 * kib}, lvs.ErrInvalid},
		{"63-byte name", 16 * mib, 512, lvs.Options{Name: strings.Repeat("x", 63), ClusterSize: 64 * kib}, nil},
		{"NUL in name", 16 * mib, 512, lvs.Options{Name: "a\x00b", ClusterSize: 64 * kib}, lvs.ErrInvalid},
		{"cluster not a power of two", 16 * mib, 512, lvs.Options{Name: "a", ClusterSize: 96 * kib}, lvs.ErrInvalid},
		{"cluster too small", 16 * mib, 512, lvs.Options{Name: "a", ClusterSize: 2048}, lvs.ErrInvalid},
		{"device too small", 1 * mib, 512, lvs.Options{Name: "a", ClusterSize: 1 * mib}, lvs.ErrNoSpace},
		{"negative max lvols", 16 * mib, 512, lvs.Options{Name: "a", ClusterSize: 64 * kib, MaxLvols: -1}, lvs.ErrInvalid},
		{"too many lvols", 16 * mib, 512, lvs.Options{Name: "a", ClusterSize: 64 * kib, MaxLvols: lvs.MaxLvols + 1}, lvs.ErrInvalid},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s, err := lvs.Format(memDev(t, c.size, c.bs), c.o)
			if c.want != nil {
				assert.ErrorIs(t, err, c.want)
				return
			}
			require.NoError(t, err)
			assert.Positive(t, s.TotalClusters())
			assert.False(t, s.UUID().IsZero(), "a random uuid when none is given")
		})
	}
}

func TestReformat(t *testing.T) {
	dev := memDev(t, 16*mib, 512)
	s, err := lvs.Format(dev, lvs.Options{Name: "old", ClusterSize: 64 * kib})
	require.NoError(t, err)
	for i := range 5 {
		_, err := s.Create(fmt.Sprint("l", i), 256*kib, i%2 == 0)
		require.NoError(t, err)
	}
	// The same geometry again: the old checkpoints and journal sit where
	// the new ones go, and must not come back.
	s, err = lvs.Format(dev, lvs.Options{Name: "new", ClusterSize: 64 * kib})
	require.NoError(t, err)
	s, err = lvs.Open(dev)
	require.NoError(t, err)
	assert.Equal(t, "new", s.Name())
	assert.Empty(t, s.Lvols())
	assert.Equal(t, s.TotalClusters(), s.FreeClusters())
}

func TestLvolOps(t *testing.T) {
	s, err := lvs.Format(memDev(t, 8*mib, 512), lvs.Options{Name: "lvs", ClusterSize: 64 * kib, MaxLvols: 4})
	require.NoError(t, err)
	total := s.TotalClusters()
	cs := s.ClusterSize()

	a, err := s.Create("a", 3*cs, false)
	require.NoError(t, err)
	b, err := s.Create("b", 100*cs*total, true) // over-provisioned: fine for thin
	require.NoError(t, err)
	assert.Equal(t, total-3, s.FreeClusters())

	steps := []struct {
		name string
		do   func() error
		want error
	}{
		{"create taken name", func() error { _, err := s.Create("a", cs, true); return err }, lvs.ErrExist},
		{"create empty name", func() error { _, err := s.Create("", cs, true); return err }, lvs.ErrInvalid},
		{"create too big thick", func() error { _, err := s.Create("big", total*cs, false); return err }, lvs.ErrNoSpace},
		{"create too big at all", func() error { _, err := s.Create("huge", ^uint64(0), true); return err }, lvs.ErrInvalid},
		{"lookup missing", func() error { _, err := s.Lvol("zz"); return err }, lvs.ErrNotFound},
		{"lookup missing uuid", func() error { _, err := s.LvolByUUID(lvs.NewUUID()); return err }, lvs.ErrNotFound},
		{"delete missing", func() error { return s.Delete("zz") }, lvs.ErrNotFound},
		{"resize missing", func() error { return s.Resize("zz", cs) }, lvs.ErrNotFound},
		{"rename missing", func() error { return s.Rename("zz", "yy") }, lvs.ErrNotFound},
		{"rename onto taken", func() error { return s.Rename("a", "b") }, lvs.ErrExist},
		{"rename to bad name", func() error { return s.Rename("a", strings.Repeat("n", 64)) }, lvs.ErrInvalid},
		{"grow thick beyond space", func() error { return s.Resize("a", (total+1)*cs) }, lvs.ErrNoSpace},
		{"fill the table", func() error {
			for _, n := range []string{"c", "d"} {
				if _, err := s.Create(n, 0, true); err != nil {
					return err
				}
			}
			_, err := s.Create("e", cs, true)
			return err
		}, lvs.ErrNoSpace},
	}
	for _, st := range steps {
		assert.ErrorIs(t, st.do(), st.want, st.name)
	}
	assert.Equal(t, total-3, s.FreeClusters(), "failed changes change nothing")

	require.NoError(t, s.Rename("a", "a2"))
	_, err = s.Lvol("a")
	assert.ErrorIs(t, err, lvs.ErrNotFound)
	got, err := s.Lvol("a2")
	require.NoError(t, err)
	assert.Same(t, a, got)
	assert.Equal(t, "a2", a.Name())
	byU, err := s.LvolByUUID(b.UUID())
	require.NoError(t, err)
	assert.Same(t, b, byU)

	require.NoError(t, s.Resize("a2", 5*cs))
	assert.Equal(t, uint64(5), a.AllocatedClusters())
	assert.Equal(t, total-5, s.FreeClusters())
	require.NoError(t, s.Resize("a2", 2*cs-1))
	assert.Equal(t, uint64(2), a.AllocatedClusters())
	assert.Equal(t, 2*cs, a.Size())
	assert.Equal(t, total-2, s.FreeClusters())

	require.NoError(t, s.Delete("c"))
	_, err = s.Create("e", cs, false)
	require.NoError(t, err, "a deleted lvol's slot is reused")
	var names []string
	for _, l := range s.Lvols() {
		names = append(names, l.Name())
	}
	assert.Equal(t, []string{"a2", "b", "d", "e"}, names, "creation order")
	require.NoError(t, lvs.CheckInvariants(s))

	require.NoError(t, s.Delete("a2"))
	_, err = a.ReadAt(make([]byte, 512), 0)
	assert.ErrorIs(t, err, lvs.ErrNotFound, "I/O through a deleted lvol's handle")
	assert.Equal(t, total-1, s.FreeClusters())

	require.NoError(t, s.Close())
	_, err = s.Create("x", cs, true)
	assert.ErrorIs(t, err, lvs.ErrClosed)
	_, err = b.WriteAt(make([]byte, 512), 0)
	assert.ErrorIs(t, err, lvs.ErrClosed)
	assert.ErrorIs(t, s.Flush(), lvs.ErrClosed)
}

func TestFreeClustersAccounting(t *testing.T) {
	s, err := lvs.Format(memDev(t, 16*mib, 512), lvs.Options{Name: "lvs", ClusterSize: 64 * kib})
	require.NoError(t, err)
	cs := s.ClusterSize()
	check := func() {
		t.Helper()
		var used uint64
		for _, l := range s.Lvols() {
			used += l.AllocatedClusters()
		}
		require.Equal(t, s.TotalClusters(), s.FreeClusters()+used)
		require.NoError(t, lvs.CheckInvariants(s))
	}
	for i := range 20 {
		thin := i%3 == 0
		l, err := s.Create(fmt.Sprint("l", i), uint64(i%5+1)*cs, thin)
		require.NoError(t, err)
		if thin {
			_, err = l.WriteAt(pattern(512, 0, byte(i)), int64(cs)*int64(i%5))
			require.NoError(t, err)
		}
		check()
		if i%4 == 3 {
			require.NoError(t, s.Delete(fmt.Sprint("l", i-2)))
			check()
		}
	}
	for _, l := range s.Lvols() {
		require.NoError(t, s.Delete(l.Name()))
	}
	check()
	assert.Equal(t, s.TotalClusters(), s.FreeClusters())
}

func TestUUID(t *testing.T) {
	u := lvs.NewUUID()
	p, err := lvs.ParseUUID(strings.ToUpper(u.String()))
	require.NoError(t, err)
	assert.Equal(t, u, p)
	assert.Equal(t, byte(0x40), u[6]&0xf0, "version 4")
	for _, bad := range []string{"", "0b8d9b8e7c1f4f0e9a370c1d2e3f4a5b", "0b8d9b8e-7c1f-4f0e-9a37-0c1d2e3f4a5g", "0b8d9b8e-7c1f-4f0e-9a37_0c1d2e3f4a5b"} {
		_, err := lvs.ParseUUID(bad)
		assert.True(t, errors.Is(err, lvs.ErrInvalid), bad)
	}
}
