package allocator_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/virtual-disk-array/vda"
	"github.com/virtual-disk-array/vda/allocator"
)

// pd is an online candidate; wrap it in offline to take it offline.
func pd(id, dn, loc string, free uint64) allocator.PD {
	return allocator.PD{ID: vda.PDID(id), DN: vda.DNID(dn), Location: loc, Online: true, Free: free}
}

func offline(p allocator.PD) allocator.PD {
	p.Online = false
	return p
}

func pdIDs(pds []allocator.PD) []string {
	ids := make([]string, len(pds))
	for i, p := range pds {
		ids[i] = string(p.ID)
	}
	return ids
}

func TestPlaceVDs(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		pds   []allocator.PD
		count int
		size  uint64
		want  []string // pd ids in pick order
	}{
		{
			name:  "one vd goes to the most free pd",
			pds:   []allocator.PD{pd("pd1", "dn1", "a", 5*vda.GiB), pd("pd2", "dn2", "a", 9*vda.GiB)},
			count: 1, size: vda.GiB,
			want: []string{"pd2"},
		},
		{
			name: "distinct dns even when one dn has the most free pds",
			pds: []allocator.PD{
				pd("pd1", "dn1", "a", 100*vda.GiB),
				pd("pd2", "dn1", "a", 90*vda.GiB),
				pd("pd3", "dn2", "a", 10*vda.GiB),
			},
			count: 2, size: vda.GiB,
			want: []string{"pd1", "pd3"},
		},
		{
			name: "only the best pd of each dn competes",
			pds: []allocator.PD{
				pd("pd1", "dn1", "a", 10*vda.GiB),
				pd("pd2", "dn1", "b", 50*vda.GiB), // dn1's best; its location counts
				pd("pd3", "dn2", "b", 40*vda.GiB),
				pd("pd4", "dn3", "a", 5*vda.GiB),
			},
			count: 2, size: vda.GiB,
			want: []string{"pd2", "pd4"},
		},
		{
			name: "three locations, three vds: one per location",
			pds: []allocator.PD{
				pd("pd1", "dn1", "a", 100*vda.GiB),
				pd("pd2", "dn2", "a", 90*vda.GiB),
				pd("pd3", "dn3", "b", 50*vda.GiB),
				pd("pd4", "dn4", "c", 10*vda.GiB),
			},
			count: 3, size: vda.GiB,
			want: []string{"pd1", "pd3", "pd4"},
		},
		{
			name: "two locations, four vds: two each, alternating",
			pds: []allocator.PD{
				pd("pd1", "dn1", "a", 100*vda.GiB),
				pd("pd2", "dn2", "a", 90*vda.GiB),
				pd("pd3", "dn3", "a", 80*vda.GiB),
				pd("pd4", "dn4", "b", 10*vda.GiB),
				pd("pd5", "dn5", "b", 5*vda.GiB),
			},
			count: 4, size: vda.GiB,
			want: []string{"pd1", "pd4", "pd2", "pd5"},
		},
		{
			name: "a location runs out, the rest fill up",
			pds: []allocator.PD{
				pd("pd1", "dn1", "a", 100*vda.GiB),
				pd("pd2", "dn2", "a", 90*vda.GiB),
				pd("pd3", "dn3", "a", 80*vda.GiB),
				pd("pd4", "dn4", "b", 10*vda.GiB),
			},
			count: 4, size: vda.GiB,
			want: []string{"pd1", "pd4", "pd2", "pd3"},
		},
		{
			name: "the empty location is a location like any other",
			pds: []allocator.PD{
				pd("pd1", "dn1", "a", 100*vda.GiB),
				pd("pd2", "dn2", "a", 90*vda.GiB),
				pd("pd3", "dn3", "", 1*vda.GiB),
			},
			count: 2, size: vda.GiB,
			want: []string{"pd1", "pd3"},
		},
		{
			name: "balance by free space within a location",
			pds: []allocator.PD{
				pd("pd1", "dn1", "a", 30*vda.GiB),
				pd("pd2", "dn2", "a", 50*vda.GiB),
				pd("pd3", "dn3", "a", 40*vda.GiB),
			},
			count: 2, size: vda.GiB,
			want: []string{"pd2", "pd3"},
		},
		{
			name: "equal free space ties by pd id",
			pds: []allocator.PD{
				pd("pd3", "dn1", "a", 8*vda.GiB),
				pd("pd1", "dn3", "a", 8*vda.GiB),
				pd("pd2", "dn2", "a", 8*vda.GiB),
			},
			count: 2, size: vda.GiB,
			want: []string{"pd1", "pd2"},
		},
		{
			name: "within a dn equal free space ties by pd id",
			pds: []allocator.PD{
				pd("pd9", "dn1", "a", 8*vda.GiB),
				pd("pd5", "dn1", "a", 8*vda.GiB),
			},
			count: 1, size: vda.GiB,
			want: []string{"pd5"},
		},
		{
			name: "offline and too small pds are excluded",
			pds: []allocator.PD{
				offline(pd("pd1", "dn1", "a", 100*vda.GiB)),
				pd("pd2", "dn2", "b", vda.GiB-1),
				pd("pd3", "dn3", "c", vda.GiB), // exactly fits
				pd("pd4", "dn4", "c", 2*vda.GiB),
			},
			count: 2, size: vda.GiB,
			want: []string{"pd4", "pd3"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := allocator.PlaceVDs(tt.pds, tt.count, tt.size)
			require.NoError(t, err)
			assert.Equal(t, tt.want, pdIDs(got))
		})
	}
}

func TestPlaceVDsNoCapacity(t *testing.T) {
	t.Parallel()
	// The inventory of the message in the package's brief: 10 pds on 6 dns,
	// 3 offline, 4 too small, 3 eligible but on only 2 dns.
	mixed := []allocator.PD{
		offline(pd("pd1", "dn1", "a", 100*vda.GiB)),
		offline(pd("pd2", "dn1", "a", 100*vda.GiB)),
		offline(pd("pd3", "dn2", "b", 0)), // offline wins over too small
		pd("pd4", "dn3", "a", 512*vda.MiB),
		pd("pd5", "dn3", "a", 0),
		pd("pd6", "dn4", "c", vda.GiB-1),
		pd("pd7", "dn5", "c", 1023*vda.MiB),
		pd("pd8", "dn6", "a", 10*vda.GiB),
		pd("pd9", "dn6", "a", 20*vda.GiB),
		pd("pd10", "dn4", "c", 2*vda.GiB),
	}
	tests := []struct {
		name  string
		pds   []allocator.PD
		count int
		size  uint64
		want  string
	}{
		{
			name: "offline, too small and shared dns", pds: mixed, count: 3, size: vda.GiB,
			want: "no capacity: need 3 vds of 1.0 GiB on distinct dns, found 2 eligible dns (10 pds: 3 offline, 4 with less than 1.0 GiB free)",
		},
		{
			name: "no pds at all", pds: nil, count: 1, size: 4 * vda.MiB,
			want: "no capacity: need 1 vd of 4.0 MiB on distinct dns, found 0 eligible dns (no pds)",
		},
		{
			name:  "every pd eligible but on one dn",
			pds:   []allocator.PD{pd("pd1", "dn1", "a", vda.GiB), pd("pd2", "dn1", "a", vda.GiB)},
			count: 2, size: vda.GiB,
			want: "no capacity: need 2 vds of 1.0 GiB on distinct dns, found 1 eligible dn (2 pds, all eligible)",
		},
		{
			name:  "one pd, offline",
			pds:   []allocator.PD{offline(pd("pd1", "dn1", "a", vda.GiB))},
			count: 1, size: 1536 * vda.MiB,
			want: "no capacity: need 1 vd of 1.5 GiB on distinct dns, found 0 eligible dns (1 pd: 1 offline)",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := allocator.PlaceVDs(tt.pds, tt.count, tt.size)
			require.ErrorIs(t, err, vda.ErrNoCapacity)
			assert.NotErrorIs(t, err, vda.ErrInvalidArgument)
			assert.EqualError(t, err, tt.want)
			assert.Nil(t, got)
		})
	}
}

func TestPlaceVDsInvalidArgument(t *testing.T) {
	t.Parallel()
	some := []allocator.PD{pd("pd1", "dn1", "a", vda.GiB)}
	tests := []struct {
		name  string
		pds   []allocator.PD
		count int
		size  uint64
		want  string
	}{
		{name: "zero count", pds: some, count: 0, size: vda.GiB, want: "vd count is 0"},
		{name: "negative count", pds: some, count: -1, size: vda.GiB, want: "vd count is -1"},
		{name: "zero size", pds: some, count: 1, size: 0, want: "vd size is 0"},
		{name: "zero count wins over no pds", pds: nil, count: 0, size: vda.GiB, want: "vd count is 0"},
		{
			name:  "a pd listed twice",
			pds:   []allocator.PD{pd("pd1", "dn1", "a", vda.GiB), pd("pd1", "dn2", "a", vda.GiB)},
			count: 1, size: vda.GiB, want: `pd "pd1" is listed twice`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := allocator.PlaceVDs(tt.pds, tt.count, tt.size)
			require.ErrorIs(t, err, vda.ErrInvalidArgument)
			assert.NotErrorIs(t, err, vda.ErrNoCapacity)
			assert.Contains(t, err.Error(), tt.want)
			assert.Nil(t, got)
		})
	}
}

func TestPlaceVDsLeavesInputAlone(t *testing.T) {
	t.Parallel()
	in := []allocator.PD{
		pd("pd2", "dn2", "a", 5*vda.GiB),
		pd("pd1", "dn1", "b", 9*vda.GiB),
		pd("pd3", "dn3", "a", 7*vda.GiB),
	}
	before := append([]allocator.PD(nil), in...)
	got, err := allocator.PlaceVDs(in, 3, vda.GiB)
	require.NoError(t, err)
	assert.Equal(t, before, in, "input reordered or changed")
	got[0].Free = 0
	assert.Equal(t, before, in, "result aliases the input")
}
