package allocator

import (
	"cmp"
	"fmt"
	"slices"

	"github.com/virtual-disk-array/vda"
)

// CN is a candidate controller node.
type CN struct {
	ID       vda.CNID
	Location string // the cn's failure domain ("" is a location like any other)
	Online   bool   // false if the cn is admin-offline or failed
	Load     int    // controllers already on this cn
}

// PlaceCntlrs picks count cns for an array's controllers; the first is the
// primary.
//
// Only Online cns are eligible, and the picks are distinct. Each successive
// pick prefers the location used the fewest times among the picks so far,
// then the lowest Load, then the lowest ID. The first pick faces no used
// location, so the primary goes to the least-loaded cn. The result does not
// depend on the order of cns.
//
// The returned slice is new, owned by the caller, and in pick order: index
// 0 is the primary. PlaceCntlrs does not bump Load; see the package doc.
//
// It returns an error wrapping [vda.ErrInvalidArgument] if count <= 0 or a
// cn id is listed twice, and one wrapping [vda.ErrNoCapacity] if fewer than
// count cns are online.
func PlaceCntlrs(cns []CN, count int) ([]CN, error) {
	if count <= 0 {
		return nil, vda.Invalidf("controller count is %d, must be at least 1", count)
	}
	seen := make(map[vda.CNID]bool, len(cns))
	var cands []CN
	for _, cn := range cns {
		if seen[cn.ID] {
			return nil, vda.Invalidf("cn %q is listed twice", cn.ID)
		}
		seen[cn.ID] = true
		if cn.Online {
			cands = append(cands, cn)
		}
	}
	if len(cands) < count {
		why := ""
		if off := len(cns) - len(cands); off > 0 {
			why = fmt.Sprintf(" (%s: %d offline)", plural(len(cns), "cn", "cns"), off)
		}
		return nil, fmt.Errorf("%w: need %s on distinct cns, found %s%s",
			vda.ErrNoCapacity, plural(count, "controller", "controllers"),
			plural(len(cands), "online cn", "online cns"), why)
	}

	slices.SortFunc(cands, compareCN)
	used := make(map[string]int) // picks so far per location
	picks := make([]CN, 0, count)
	for range count {
		// cands is sorted by preference, so the first candidate in a
		// least-used location wins.
		bi := 0
		for i, c := range cands {
			if used[c.Location] < used[cands[bi].Location] {
				bi = i
			}
		}
		picks = append(picks, cands[bi])
		used[cands[bi].Location]++
		cands = slices.Delete(cands, bi, bi+1)
	}
	return picks, nil
}

// compareCN orders cns by preference, ignoring location: lowest Load first,
// then ID ascending; Location last makes the order total.
func compareCN(a, b CN) int {
	return cmp.Or(
		cmp.Compare(a.Load, b.Load),
		cmp.Compare(a.ID, b.ID),
		cmp.Compare(a.Location, b.Location),
	)
}
