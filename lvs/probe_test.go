package lvs_test

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/virtual-disk-array/vda/lvs"
)

// TestGeometry: Geometry predicts the clusters Format gives, and its
// errors.
func TestGeometry(t *testing.T) {
	for _, tc := range []struct {
		name string
		size int64
		bs   int
		o    lvs.Options
		err  error
	}{
		{name: "default", size: 64 * mib, bs: 512, o: lvs.Options{Name: "a"}},
		{name: "small journal", size: 8 * mib, bs: 4096, o: lvs.Options{Name: "a", ClusterSize: mib, JournalSize: 4096}},
		{name: "few lvols", size: 8 * mib, bs: 512, o: lvs.Options{Name: "a", ClusterSize: 64 * kib, MaxLvols: 4}},
		{name: "no room", size: 2 * mib, bs: 512, o: lvs.Options{Name: "a", ClusterSize: mib}, err: lvs.ErrNoSpace},
		{name: "bad cluster", size: 8 * mib, bs: 512, o: lvs.Options{Name: "a", ClusterSize: 3000}, err: lvs.ErrInvalid},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n, err := lvs.Geometry(tc.size, tc.bs, tc.o)
			if tc.err != nil {
				assert.ErrorIs(t, err, tc.err)
				return
			}
			require.NoError(t, err)
			s, err := lvs.Format(memDev(t, tc.size, tc.bs), tc.o)
			require.NoError(t, err)
			assert.Equal(t, s.TotalClusters(), n)
		})
	}
}

// TestProbeDestroy: Probe reads the superblock and writes nothing; after
// Destroy the device is no longer formatted.
func TestProbeDestroy(t *testing.T) {
	d := memDev(t, 16*mib, 512)
	_, err := lvs.Probe(d)
	assert.ErrorIs(t, err, lvs.ErrNotFormatted)
	u := lvs.NewUUID()
	s, err := lvs.Format(d, lvs.Options{Name: "p", UUID: u, ClusterSize: mib})
	require.NoError(t, err)
	img := bytes.Clone(d.Bytes())
	info, err := lvs.Probe(d)
	require.NoError(t, err)
	assert.Equal(t, lvs.Info{Name: "p", UUID: u, ClusterSize: mib, Clusters: s.TotalClusters()}, info)
	assert.Equal(t, img, d.Bytes(), "probe does not write")

	d.Bytes()[100] ^= 1
	_, err = lvs.Probe(d)
	assert.ErrorIs(t, err, lvs.ErrCorrupt)
	d.Bytes()[100] ^= 1

	require.NoError(t, s.Destroy())
	_, err = lvs.Probe(d)
	assert.ErrorIs(t, err, lvs.ErrNotFormatted)
	_, err = lvs.Open(d)
	assert.ErrorIs(t, err, lvs.ErrNotFormatted)
	_, err = s.Create("v", mib, true)
	assert.ErrorIs(t, err, lvs.ErrClosed)
}
