package allocator

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/virtual-disk-array/vda"
)

// PD is a candidate physical disk, with the facts of its disk node the
// allocator needs.
type PD struct {
	ID       vda.PDID
	DN       vda.DNID
	Location string // the dn's failure domain ("" is a location like any other)
	Online   bool   // false if the pd or its dn is admin-offline or the dn is failed
	Free     uint64 // bytes still placeable: capacity minus allocated
}

// PlaceVDs picks count pds for count vds of size bytes each.
//
// A pd is eligible when it is Online and has Free >= size. The picks are on
// distinct dns, so one dn's failure costs the array at most one vd; of each
// dn only its best pd competes (most Free, then lowest ID). Each successive
// pick prefers the location used the fewest times among the picks so far,
// then the most Free (so vds balance free space), then the lowest PDID and
// DNID. The result does not depend on the order of pds.
//
// The returned slice is new, owned by the caller, and in pick order (first
// pick first). PlaceVDs does not debit Free; see the package doc.
//
// It returns an error wrapping [vda.ErrInvalidArgument] if count <= 0, size
// is 0, or a pd id is listed twice, and one wrapping [vda.ErrNoCapacity] if
// fewer than count dns have an eligible pd.
func PlaceVDs(pds []PD, count int, size uint64) ([]PD, error) {
	if count <= 0 {
		return nil, vda.Invalidf("vd count is %d, must be at least 1", count)
	}
	if size == 0 {
		return nil, vda.Invalidf("vd size is 0")
	}
	seen := make(map[vda.PDID]bool, len(pds))
	best := make(map[vda.DNID]PD) // the best eligible pd of each dn
	var offline, small int
	for _, pd := range pds {
		if seen[pd.ID] {
			return nil, vda.Invalidf("pd %q is listed twice", pd.ID)
		}
		seen[pd.ID] = true
		switch {
		case !pd.Online:
			offline++
		case pd.Free < size:
			small++
		default:
			if cur, ok := best[pd.DN]; !ok || comparePD(pd, cur) < 0 {
				best[pd.DN] = pd
			}
		}
	}
	if len(best) < count {
		return nil, fmt.Errorf("%w: need %s of %s on distinct dns, found %s (%s)",
			vda.ErrNoCapacity, plural(count, "vd", "vds"), vda.FormatSize(size),
			plural(len(best), "eligible dn", "eligible dns"),
			pdExclusions(len(pds), offline, small, size))
	}

	cands := slices.SortedFunc(maps.Values(best), comparePD)
	used := make(map[string]int) // picks so far per location
	picks := make([]PD, 0, count)
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

// comparePD orders pds by preference, ignoring location: most Free first,
// then PDID and DNID ascending. Location last makes the order total, so
// that even inconsistent input cannot make the result order-dependent.
func comparePD(a, b PD) int {
	return cmp.Or(
		cmp.Compare(b.Free, a.Free),
		cmp.Compare(a.ID, b.ID),
		cmp.Compare(a.DN, b.DN),
		cmp.Compare(a.Location, b.Location),
	)
}

// pdExclusions explains, for an ErrNoCapacity message, what became of the
// n candidate pds.
func pdExclusions(n, offline, small int, size uint64) string {
	if n == 0 {
		return "no pds"
	}
	var why []string
	if offline > 0 {
		why = append(why, fmt.Sprintf("%d offline", offline))
	}
	if small > 0 {
		why = append(why, fmt.Sprintf("%d with less than %s free", small, vda.FormatSize(size)))
	}
	if len(why) == 0 {
		return plural(n, "pd", "pds") + ", all eligible"
	}
	return plural(n, "pd", "pds") + ": " + strings.Join(why, ", ")
}
