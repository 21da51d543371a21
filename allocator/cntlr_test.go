package allocator_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/virtual-disk-array/vda"
	"github.com/virtual-disk-array/vda/allocator"
)

// cn is an online candidate; see offlineCN.
func cn(id, loc string, load int) allocator.CN {
	return allocator.CN{ID: vda.CNID(id), Location: loc, Online: true, Load: load}
}

func offlineCN(c allocator.CN) allocator.CN {
	c.Online = false
	return c
}

func cnIDs(cns []allocator.CN) []string {
	ids := make([]string, len(cns))
	for i, c := range cns {
		ids[i] = string(c.ID)
	}
	return ids
}

func TestPlaceCntlrs(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		cns   []allocator.CN
		count int
		want  []string // cn ids, primary first
	}{
		{
			name:  "the primary goes to the least loaded cn",
			cns:   []allocator.CN{cn("cn1", "a", 3), cn("cn2", "a", 1), cn("cn3", "a", 2)},
			count: 1,
			want:  []string{"cn2"},
		},
		{
			name:  "one location: by load",
			cns:   []allocator.CN{cn("cn1", "a", 3), cn("cn2", "a", 1), cn("cn3", "a", 2)},
			count: 3,
			want:  []string{"cn2", "cn3", "cn1"},
		},
		{
			name:  "spread beats load for the secondaries",
			cns:   []allocator.CN{cn("cn1", "a", 0), cn("cn2", "a", 0), cn("cn3", "b", 5)},
			count: 2,
			want:  []string{"cn1", "cn3"},
		},
		{
			name:  "the primary is least loaded even in a crowded location",
			cns:   []allocator.CN{cn("cn1", "a", 0), cn("cn2", "a", 1), cn("cn3", "b", 4), cn("cn4", "c", 2)},
			count: 3,
			want:  []string{"cn1", "cn4", "cn3"},
		},
		{
			name: "two locations, four cntlrs: two each",
			cns: []allocator.CN{
				cn("cn1", "a", 0), cn("cn2", "a", 1), cn("cn3", "a", 2),
				cn("cn4", "b", 7), cn("cn5", "b", 8),
			},
			count: 4,
			want:  []string{"cn1", "cn4", "cn2", "cn5"},
		},
		{
			name:  "equal load ties by id",
			cns:   []allocator.CN{cn("cn3", "a", 1), cn("cn1", "a", 1), cn("cn2", "a", 1)},
			count: 2,
			want:  []string{"cn1", "cn2"},
		},
		{
			name:  "offline cns are excluded",
			cns:   []allocator.CN{offlineCN(cn("cn1", "a", 0)), cn("cn2", "b", 9), cn("cn3", "b", 3)},
			count: 2,
			want:  []string{"cn3", "cn2"},
		},
		{
			name:  "the empty location is a location like any other",
			cns:   []allocator.CN{cn("cn1", "a", 0), cn("cn2", "a", 0), cn("cn3", "", 9)},
			count: 2,
			want:  []string{"cn1", "cn3"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := allocator.PlaceCntlrs(tt.cns, tt.count)
			require.NoError(t, err)
			assert.Equal(t, tt.want, cnIDs(got))
		})
	}
}

func TestPlaceCntlrsErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		cns     []allocator.CN
		count   int
		wantErr error
		want    string
	}{
		{
			name:    "offline cns leave too few",
			cns:     []allocator.CN{offlineCN(cn("cn1", "a", 0)), cn("cn2", "a", 0), offlineCN(cn("cn3", "b", 0))},
			count:   2,
			wantErr: vda.ErrNoCapacity,
			want:    "no capacity: need 2 controllers on distinct cns, found 1 online cn (3 cns: 2 offline)",
		},
		{
			name:    "no cns at all",
			count:   1,
			wantErr: vda.ErrNoCapacity,
			want:    "no capacity: need 1 controller on distinct cns, found 0 online cns",
		},
		{
			name:    "all online but too few",
			cns:     []allocator.CN{cn("cn1", "a", 0), cn("cn2", "b", 0)},
			count:   3,
			wantErr: vda.ErrNoCapacity,
			want:    "no capacity: need 3 controllers on distinct cns, found 2 online cns",
		},
		{
			name:    "zero count",
			cns:     []allocator.CN{cn("cn1", "a", 0)},
			count:   0,
			wantErr: vda.ErrInvalidArgument,
			want:    "invalid argument: controller count is 0, must be at least 1",
		},
		{
			name:    "negative count",
			count:   -2,
			wantErr: vda.ErrInvalidArgument,
			want:    "invalid argument: controller count is -2, must be at least 1",
		},
		{
			name:    "a cn listed twice",
			cns:     []allocator.CN{cn("cn1", "a", 0), cn("cn1", "b", 3)},
			count:   1,
			wantErr: vda.ErrInvalidArgument,
			want:    `invalid argument: cn "cn1" is listed twice`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := allocator.PlaceCntlrs(tt.cns, tt.count)
			require.ErrorIs(t, err, tt.wantErr)
			assert.EqualError(t, err, tt.want)
			assert.Nil(t, got)
		})
	}
}
