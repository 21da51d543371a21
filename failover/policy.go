package failover

import (
	"cmp"
	"errors"
	"fmt"
	"slices"

	"github.com/virtual-disk-array/vda"
	"github.com/virtual-disk-array/vda/allocator"
)

// Cntlr is one controller of an array, as the policy sees it.
type Cntlr struct {
	ID      vda.CntlrID
	CN      vda.CNID
	Index   uint32
	Primary bool
}

// CN is a controller node as the policy sees it.
type CN struct {
	ID       vda.CNID
	Location string
	// Usable: neither failed nor taken offline by an operator.
	Usable bool
	// Load is the controllers it holds, for placing re-homed ones.
	Load int
}

// Plan is an array's new shape after its primary's cn failed.
type Plan struct {
	// Primary is the controller that is primary from now on.
	Primary vda.CntlrID
	// Moves re-homes controllers of unusable cns onto usable ones (the
	// array gets back the healthy controllers it asked for). A controller
	// left on an unusable cn stays the array's: when its cn comes back it
	// is reconciled into a secondary.
	Moves map[vda.CntlrID]vda.CNID
	// Reason says what was decided, for the event log.
	Reason string
}

// ErrNoPrimary means no usable cn can hold the array's primary: the array
// stays without one until a cn comes back or is added.
var ErrNoPrimary = errors.New("failover: no usable cn for the primary")

// Decide picks an array's new primary once its primary's cn is unusable:
// the usable secondary with the lowest index, else the failed primary
// re-homed onto a usable cn that holds no controller of the array (chosen
// by the allocator, as for a new array). Then every other controller on an
// unusable cn is re-homed the same way while such cns remain. cns must
// list every cn the array's controllers live on and every candidate; it is
// not changed (the caller adds the moves to the loads).
//
// Decide is pure. It returns an error wrapping ErrNoPrimary when no cn can
// take the primary, and one wrapping vda.ErrInvalidArgument when the array
// has no primary or names a cn not in cns.
func Decide(cntlrs []Cntlr, cns []CN) (Plan, error) {
	byID := make(map[vda.CNID]CN, len(cns))
	for _, cn := range cns {
		if _, dup := byID[cn.ID]; dup {
			return Plan{}, vda.Invalidf("cn %s is listed twice", cn.ID)
		}
		byID[cn.ID] = cn
	}
	var primary *Cntlr
	held := map[vda.CNID]bool{} // cns holding a controller of the array
	for i := range cntlrs {
		c := &cntlrs[i]
		if _, ok := byID[c.CN]; !ok {
			return Plan{}, vda.Invalidf("controller %s is on cn %s, which is not listed", c.ID, c.CN)
		}
		held[c.CN] = true
		if c.Primary {
			if primary != nil {
				return Plan{}, vda.Invalidf("the array has two primaries, %s and %s", primary.ID, c.ID)
			}
			primary = c
		}
	}
	if primary == nil {
		return Plan{}, vda.Invalidf("the array has no primary controller")
	}
	if byID[primary.CN].Usable {
		return Plan{Primary: primary.ID, Reason: fmt.Sprintf("primary %s on cn %s is usable: nothing to do", primary.ID, primary.CN)}, nil
	}

	plan := Plan{Moves: map[vda.CntlrID]vda.CNID{}}
	// place picks a usable cn that holds no controller of the array.
	place := func() (vda.CNID, bool) {
		var cands []allocator.CN
		for _, cn := range cns {
			load := cn.Load
			for _, to := range plan.Moves {
				if to == cn.ID {
					load++
				}
			}
			cands = append(cands, allocator.CN{ID: cn.ID, Location: cn.Location, Online: cn.Usable && !held[cn.ID], Load: load})
		}
		picks, err := allocator.PlaceCntlrs(cands, 1)
		if err != nil {
			return "", false
		}
		held[picks[0].ID] = true
		return picks[0].ID, true
	}

	secondaries := slices.Clone(cntlrs)
	slices.SortFunc(secondaries, func(a, b Cntlr) int { return cmp.Compare(a.Index, b.Index) })
	for _, c := range secondaries {
		if !c.Primary && byID[c.CN].Usable {
			plan.Primary = c.ID
			plan.Reason = fmt.Sprintf("cn %s of primary %s is unusable: secondary %s on cn %s promoted", primary.CN, primary.ID, c.ID, c.CN)
			break
		}
	}
	if plan.Primary == "" {
		to, ok := place()
		if !ok {
			return Plan{}, fmt.Errorf("%w: cn %s of primary %s is unusable, no secondary is usable, and every usable cn is taken", ErrNoPrimary, primary.CN, primary.ID)
		}
		plan.Primary = primary.ID
		plan.Moves[primary.ID] = to
		plan.Reason = fmt.Sprintf("cn %s of primary %s is unusable and no secondary is: primary moved to cn %s", primary.CN, primary.ID, to)
	}
	for _, c := range secondaries {
		if _, moved := plan.Moves[c.ID]; moved || byID[c.CN].Usable {
			continue
		}
		to, ok := place()
		if !ok {
			break
		}
		plan.Moves[c.ID] = to
		plan.Reason += fmt.Sprintf("; %s moved from cn %s to cn %s", c.ID, c.CN, to)
	}
	return plan, nil
}
