package lvs_test

import (
	"encoding/binary"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/virtual-disk-array/vda/lvs"
)

// corruptFixture is a store with a few changes in its journal, closed;
// img is its device image and lay where things are.
func corruptFixture(t *testing.T) (img []byte, lay lvs.Layout, st storeState) {
	t.Helper()
	dev := memDev(t, 8*mib, 512)
	s, err := lvs.Format(dev, lvs.Options{Name: "c", ClusterSize: 64 * kib, MaxLvols: 16, JournalSize: 256 * kib})
	require.NoError(t, err)
	s, err = lvs.Open(dev) // the checkpoint moves to slot 1; slot 0 keeps Format's
	require.NoError(t, err)
	require.NoError(t, create("a", 4*64*kib, true)(s))
	require.NoError(t, write("a", 64*kib, 512, 1)(s))
	require.NoError(t, create("b", 2*64*kib, false)(s))
	lay = lvs.LayoutOf(s)
	require.Equal(t, 1, lay.Active)
	st = stateOf(t, s)
	require.NoError(t, s.Close())
	return append([]byte(nil), dev.Bytes()...), lay, st
}

func openBytes(t *testing.T, img []byte, bs int) (*lvs.Store, error) {
	t.Helper()
	d, err := lvs.NewMemDeviceFrom(img, bs)
	require.NoError(t, err)
	return lvs.Open(d)
}

func TestCorruption(t *testing.T) {
	img0, lay, st := corruptFixture(t)
	entry := func(img []byte, i int) int64 {
		// Entries are block-aligned; walk their headers.
		off := lay.JournalOff
		for range i {
			plen := int64(binary.LittleEndian.Uint32(img[off+4:]))
			off += (40 + plen + 511) / 512 * 512
		}
		return off
	}
	cases := []struct {
		name    string
		corrupt func(img []byte) []byte
		bs      int
		want    error // nil: opens, with state
		state   *storeState
	}{
		{"intact", func(b []byte) []byte { return b }, 512, nil, &st},
		{"superblock magic", func(b []byte) []byte { b[0] ^= 1; return b }, 512, lvs.ErrNotFormatted, nil},
		{"superblock field", func(b []byte) []byte { b[20] ^= 1; return b }, 512, lvs.ErrCorrupt, nil},
		{"superblock checksum", func(b []byte) []byte { b[508] ^= 1; return b }, 512, lvs.ErrCorrupt, nil},
		{"other block size", func(b []byte) []byte { return b }, 4096, lvs.ErrCorrupt, nil},
		{"device shrank", func(b []byte) []byte { return b[:len(b)-64*kib] }, 512, lvs.ErrCorrupt, nil},
		{"both checkpoints", func(b []byte) []byte {
			b[lay.SlotOff[0]+100] ^= 1
			b[lay.SlotOff[1]+100] ^= 1
			return b
		}, 512, lvs.ErrCorrupt, nil},
		{"newer checkpoint, its journal in use", func(b []byte) []byte { b[lay.SlotOff[1]+70] ^= 1; return b }, 512, lvs.ErrCorrupt, nil},
		{"older checkpoint", func(b []byte) []byte { b[lay.SlotOff[0]+70] ^= 1; return b }, 512, nil, &st},
		{"journal entry in the middle", func(b []byte) []byte { b[entry(b, 1)+50] ^= 1; return b }, 512, lvs.ErrCorrupt, nil},
		{"first journal entry", func(b []byte) []byte { b[entry(b, 0)+45] ^= 1; return b }, 512, lvs.ErrCorrupt, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			img := c.corrupt(append([]byte(nil), img0...))
			s, err := openBytes(t, img, c.bs)
			if c.want != nil {
				require.ErrorIs(t, err, c.want)
				t.Logf("error: %v", err)
				return
			}
			require.NoError(t, err)
			require.NoError(t, lvs.CheckInvariants(s))
			assert.Equal(t, *c.state, stateOf(t, s))
		})
	}

	// A damaged last entry is what a crash in its write leaves: the change
	// is gone, everything before it is there.
	img := append([]byte(nil), img0...)
	img[entry(img, 2)+45] ^= 1
	s, err := openBytes(t, img, 512)
	require.NoError(t, err)
	require.NoError(t, lvs.CheckInvariants(s))
	_, err = s.Lvol("b")
	assert.ErrorIs(t, err, lvs.ErrNotFound)
	a, err := s.Lvol("a")
	require.NoError(t, err)
	assert.Equal(t, uint64(1), a.AllocatedClusters())

	// A damaged newer checkpoint whose generation has no journal entries
	// yet: the older checkpoint and its journal hold the same state.
	dev, err := lvs.NewMemDeviceFrom(img0, 512)
	require.NoError(t, err)
	s, err = lvs.Open(dev) // writes a checkpoint to slot 0, journal now empty
	require.NoError(t, err)
	lay2 := lvs.LayoutOf(s)
	require.NoError(t, s.Close())
	img = append([]byte(nil), dev.Bytes()...)
	img[lay2.SlotOff[lay2.Active]+70] ^= 1
	s, err = openBytes(t, img, 512)
	require.NoError(t, err)
	assert.Equal(t, st, stateOf(t, s))
}
