package failover_test

import (
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/virtual-disk-array/vda"
	"github.com/virtual-disk-array/vda/failover"
)

// up and down are usable and unusable cns.
func up(id string, load int) failover.CN {
	return failover.CN{ID: vda.CNID(id), Usable: true, Load: load}
}

func down(id string) failover.CN {
	return failover.CN{ID: vda.CNID(id)}
}

// primary and secondary are controllers of the array.
func primary(id, cn string, index uint32) failover.Cntlr {
	return failover.Cntlr{ID: vda.CntlrID(id), CN: vda.CNID(cn), Index: index, Primary: true}
}

func secondary(id, cn string, index uint32) failover.Cntlr {
	return failover.Cntlr{ID: vda.CntlrID(id), CN: vda.CNID(cn), Index: index}
}

type moves = map[vda.CntlrID]vda.CNID

func TestDecide(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		cntlrs  []failover.Cntlr
		cns     []failover.CN
		primary vda.CntlrID
		moves   moves    // nil and empty both mean no move
		reason  []string // substrings of Plan.Reason
	}{
		{
			name:    "usable primary: nothing to do",
			cntlrs:  []failover.Cntlr{primary("c0", "cn1", 0), secondary("c1", "cn2", 1)},
			cns:     []failover.CN{up("cn1", 1), up("cn2", 1), up("cn3", 0)},
			primary: "c0",
			reason:  []string{"primary c0 on cn cn1 is usable: nothing to do"},
		},
		{
			name:    "usable primary, unusable secondary: nothing to do",
			cntlrs:  []failover.Cntlr{primary("c0", "cn1", 0), secondary("c1", "cn2", 1)},
			cns:     []failover.CN{up("cn1", 1), down("cn2"), up("cn3", 0)},
			primary: "c0",
			reason:  []string{"nothing to do"},
		},
		{
			name: "lowest-index usable secondary is promoted, old primary moved to a spare",
			// Slice order, cn ids and indexes disagree on purpose.
			cntlrs: []failover.Cntlr{
				secondary("c2", "cn2", 2), primary("c0", "cn1", 0), secondary("c1", "cn3", 1),
			},
			cns:     []failover.CN{down("cn1"), up("cn2", 1), up("cn3", 1), up("cn4", 0)},
			primary: "c1",
			moves:   moves{"c0": "cn4"},
			reason: []string{
				"cn cn1 of primary c0 is unusable: secondary c1 on cn cn3 promoted",
				"c0 moved from cn cn1 to cn cn4",
			},
		},
		{
			name: "a secondary on an unusable cn is skipped for promotion",
			cntlrs: []failover.Cntlr{
				primary("c0", "cn1", 0), secondary("c1", "cn2", 1), secondary("c2", "cn3", 2),
			},
			cns:     []failover.CN{down("cn1"), down("cn2"), up("cn3", 1), up("cn4", 0), up("cn5", 0)},
			primary: "c2",
			moves:   moves{"c0": "cn4", "c1": "cn5"},
			reason: []string{
				"secondary c2 on cn cn3 promoted",
				"c0 moved from cn cn1 to cn cn4",
				"c1 moved from cn cn2 to cn cn5",
			},
		},
		{
			name:    "no spare cn: the old primary stays where it is",
			cntlrs:  []failover.Cntlr{primary("c0", "cn1", 0), secondary("c1", "cn2", 1)},
			cns:     []failover.CN{down("cn1"), up("cn2", 0), down("cn3")},
			primary: "c1",
			reason:  []string{"secondary c1 on cn cn2 promoted"},
		},
		{
			name:    "no usable secondary: the primary moves to a usable cn",
			cntlrs:  []failover.Cntlr{primary("c0", "cn1", 0), secondary("c1", "cn2", 1)},
			cns:     []failover.CN{down("cn1"), down("cn2"), up("cn3", 0)},
			primary: "c0",
			moves:   moves{"c0": "cn3"},
			reason:  []string{"cn cn1 of primary c0 is unusable and no secondary is: primary moved to cn cn3"},
		},
		{
			name:    "single controller: the primary moves",
			cntlrs:  []failover.Cntlr{primary("c0", "cn1", 0)},
			cns:     []failover.CN{down("cn1"), up("cn2", 3)},
			primary: "c0",
			moves:   moves{"c0": "cn2"},
			reason:  []string{"primary moved to cn cn2"},
		},
		{
			name:    "two moves in one Decide go to two distinct cns",
			cntlrs:  []failover.Cntlr{primary("c0", "cn1", 0), secondary("c1", "cn2", 1)},
			cns:     []failover.CN{down("cn1"), down("cn2"), up("cn8", 0), up("cn9", 10)},
			primary: "c0",
			moves:   moves{"c0": "cn8", "c1": "cn9"},
			reason:  []string{"primary moved to cn cn8", "c1 moved from cn cn2 to cn cn9"},
		},
		{
			name:    "the less loaded of two spare cns is chosen",
			cntlrs:  []failover.Cntlr{primary("c0", "cn1", 0), secondary("c1", "cn2", 1)},
			cns:     []failover.CN{down("cn1"), up("cn2", 0), up("cn3", 5), up("cn4", 2)},
			primary: "c1",
			moves:   moves{"c0": "cn4"},
			reason:  []string{"c0 moved from cn cn1 to cn cn4"},
		},
		{
			name:    "equal loads: the lowest id is chosen",
			cntlrs:  []failover.Cntlr{primary("c0", "cn1", 0)},
			cns:     []failover.CN{down("cn1"), up("cn5", 2), up("cn4", 2), up("cn6", 3)},
			primary: "c0",
			moves:   moves{"c0": "cn4"},
		},
		{
			name:    "a usable cn that holds a controller of the array is no target",
			cntlrs:  []failover.Cntlr{primary("c0", "cn1", 0), secondary("c1", "cn2", 1)},
			cns:     []failover.CN{down("cn1"), up("cn2", 0), up("cn3", 9)},
			primary: "c1",
			moves:   moves{"c0": "cn3"},
		},
		{
			name: "fewer spare cns than needed: moves in index order while cns remain",
			// The failed primary has index 1: index order, not the primary,
			// gets the only spare.
			cntlrs: []failover.Cntlr{
				secondary("c3", "cn4", 3), primary("c1", "cn2", 1), secondary("c2", "cn3", 2), secondary("c0", "cn1", 0),
			},
			cns:     []failover.CN{down("cn1"), down("cn2"), up("cn3", 0), down("cn4"), up("cn5", 4)},
			primary: "c2",
			moves:   moves{"c0": "cn5"},
			reason:  []string{"secondary c2 on cn cn3 promoted", "c0 moved from cn cn1 to cn cn5"},
		},
		{
			name: "promotion goes by index, not by controller id",
			cntlrs: []failover.Cntlr{
				primary("m", "cn1", 0), secondary("a", "cn2", 2), secondary("z", "cn3", 1),
			},
			cns:     []failover.CN{down("cn1"), up("cn2", 0), up("cn3", 0)},
			primary: "z",
			reason:  []string{"secondary z on cn cn3 promoted"},
		},
		{
			name: "moves go by index, not by controller id",
			cntlrs: []failover.Cntlr{
				primary("m", "cn1", 0), secondary("a", "cn2", 2), secondary("z", "cn3", 1), secondary("k", "cn4", 3),
			},
			cns:     []failover.CN{down("cn1"), down("cn2"), down("cn3"), up("cn4", 0), up("cn5", 0), up("cn6", 1)},
			primary: "k",
			moves:   moves{"m": "cn5", "z": "cn6"},
			reason:  []string{"m moved from cn cn1 to cn cn5; z moved from cn cn3 to cn cn6"},
		},
		{
			name: "two spare cns for three stranded controllers",
			cntlrs: []failover.Cntlr{
				secondary("c3", "cn4", 3), primary("c1", "cn2", 1), secondary("c2", "cn3", 2), secondary("c0", "cn1", 0),
			},
			cns:     []failover.CN{down("cn1"), down("cn2"), up("cn3", 0), down("cn4"), up("cn5", 4), up("cn6", 1)},
			primary: "c2",
			moves:   moves{"c0": "cn6", "c1": "cn5"},
		},
		{
			name: "no usable secondary, one spare: only the primary moves",
			cntlrs: []failover.Cntlr{
				primary("c0", "cn1", 0), secondary("c1", "cn2", 1), secondary("c2", "cn3", 2),
			},
			cns:     []failover.CN{down("cn1"), down("cn2"), down("cn3"), up("cn4", 7)},
			primary: "c0",
			moves:   moves{"c0": "cn4"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cntlrs, cns := slices.Clone(tt.cntlrs), slices.Clone(tt.cns)
			plan, err := failover.Decide(cntlrs, cns)
			require.NoError(t, err)
			assert.Equal(t, tt.cntlrs, cntlrs, "Decide changed its cntlrs")
			assert.Equal(t, tt.cns, cns, "Decide changed its cns")

			assert.Equal(t, tt.primary, plan.Primary)
			if len(tt.moves) == 0 {
				assert.Empty(t, plan.Moves)
			} else {
				assert.Equal(t, tt.moves, plan.Moves)
			}
			assert.NotEmpty(t, plan.Reason)
			for _, r := range tt.reason {
				assert.Contains(t, plan.Reason, r)
			}

			// The order of the inputs does not matter.
			slices.Reverse(cntlrs)
			slices.Reverse(cns)
			again, err := failover.Decide(cntlrs, cns)
			require.NoError(t, err)
			assert.Equal(t, plan, again, "inputs reversed")
		})
	}
}

func TestDecideErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		cntlrs []failover.Cntlr
		cns    []failover.CN
		is     error
		isNot  error
		reason []string
	}{
		{
			name:   "nothing usable",
			cntlrs: []failover.Cntlr{primary("c0", "cn1", 0), secondary("c1", "cn2", 1)},
			cns:    []failover.CN{down("cn1"), down("cn2"), down("cn3")},
			is:     failover.ErrNoPrimary,
			isNot:  vda.ErrInvalidArgument,
			reason: []string{"cn cn1 of primary c0 is unusable"},
		},
		{
			name:   "single controller, no other cn",
			cntlrs: []failover.Cntlr{primary("c0", "cn1", 0)},
			cns:    []failover.CN{down("cn1")},
			is:     failover.ErrNoPrimary,
			isNot:  vda.ErrInvalidArgument,
		},
		{
			name:   "array without primary",
			cntlrs: []failover.Cntlr{secondary("c0", "cn1", 0), secondary("c1", "cn2", 1)},
			cns:    []failover.CN{down("cn1"), up("cn2", 0), up("cn3", 0)},
			is:     vda.ErrInvalidArgument,
			isNot:  failover.ErrNoPrimary,
			reason: []string{"no primary"},
		},
		{
			name:   "no controller at all",
			cns:    []failover.CN{up("cn1", 0)},
			is:     vda.ErrInvalidArgument,
			isNot:  failover.ErrNoPrimary,
			reason: []string{"no primary"},
		},
		{
			name:   "controller on a cn not listed",
			cntlrs: []failover.Cntlr{primary("c0", "cn1", 0), secondary("c1", "cn9", 1)},
			cns:    []failover.CN{down("cn1"), up("cn2", 0)},
			is:     vda.ErrInvalidArgument,
			isNot:  failover.ErrNoPrimary,
			reason: []string{"controller c1 is on cn cn9, which is not listed"},
		},
		{
			name:   "two primaries",
			cntlrs: []failover.Cntlr{primary("c0", "cn1", 0), primary("c1", "cn2", 1)},
			cns:    []failover.CN{down("cn1"), up("cn2", 0)},
			is:     vda.ErrInvalidArgument,
			reason: []string{"two primaries, c0 and c1"},
		},
		{
			name:   "cn listed twice",
			cntlrs: []failover.Cntlr{primary("c0", "cn1", 0)},
			cns:    []failover.CN{down("cn1"), up("cn2", 0), up("cn2", 1)},
			is:     vda.ErrInvalidArgument,
			isNot:  failover.ErrNoPrimary,
			reason: []string{"cn cn2 is listed twice"},
		},
		{
			name:   "usable primary on a cn not listed",
			cntlrs: []failover.Cntlr{primary("c0", "cn7", 0)},
			cns:    []failover.CN{up("cn1", 0)},
			is:     vda.ErrInvalidArgument,
			reason: []string{"cn cn7"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cntlrs, cns := slices.Clone(tt.cntlrs), slices.Clone(tt.cns)
			plan, err := failover.Decide(cntlrs, cns)
			require.Error(t, err)
			assert.ErrorIs(t, err, tt.is)
			if tt.isNot != nil {
				assert.NotErrorIs(t, err, tt.isNot)
			}
			for _, r := range tt.reason {
				assert.Contains(t, err.Error(), r)
			}
			assert.Equal(t, failover.Plan{}, plan)
			assert.Equal(t, tt.cntlrs, cntlrs, "Decide changed its cntlrs")
			assert.Equal(t, tt.cns, cns, "Decide changed its cns")
		})
	}
}
