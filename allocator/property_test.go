package allocator_test

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/virtual-disk-array/vda"
	"github.com/virtual-disk-array/vda/allocator"
)

// propertyIterations random inventories are checked per property; the
// seeds are fixed, so a failure reproduces.
const propertyIterations = 2000

// Few locations (one of them "") and few distinct free sizes, so that
// location clashes and ties are common.
var propertyLocations = []string{"", "a", "b", "c", "d"}

func randomPDs(r *rand.Rand) []allocator.PD {
	locs := propertyLocations[:1+r.IntN(len(propertyLocations))]
	var pds []allocator.PD
	for dn := range r.IntN(13) {
		loc := locs[r.IntN(len(locs))]
		dnOnline := r.IntN(8) != 0
		for range 1 + r.IntN(3) {
			pds = append(pds, allocator.PD{
				ID:       vda.PDID(fmt.Sprintf("pd%d", len(pds))),
				DN:       vda.DNID(fmt.Sprintf("dn%d", dn)),
				Location: loc,
				Online:   dnOnline && r.IntN(8) != 0,
				Free:     uint64(r.IntN(6)) * vda.GiB / 2,
			})
		}
	}
	r.Shuffle(len(pds), func(i, j int) { pds[i], pds[j] = pds[j], pds[i] })
	return pds
}

func randomCNs(r *rand.Rand) []allocator.CN {
	locs := propertyLocations[:1+r.IntN(len(propertyLocations))]
	cns := make([]allocator.CN, r.IntN(10))
	for i := range cns {
		cns[i] = allocator.CN{
			ID:       vda.CNID(fmt.Sprintf("cn%d", i)),
			Location: locs[r.IntN(len(locs))],
			Online:   r.IntN(5) != 0,
			Load:     r.IntN(4),
		}
	}
	r.Shuffle(len(cns), func(i, j int) { cns[i], cns[j] = cns[j], cns[i] })
	return cns
}

func shuffled[T any](r *rand.Rand, s []T) []T {
	c := slices.Clone(s)
	r.Shuffle(len(c), func(i, j int) { c[i], c[j] = c[j], c[i] })
	return c
}

// checkSpread asserts the location properties of a successful placement:
// it covers min(count, locations with a candidate) locations, and no
// location has two picks more than another unless the other ran out of
// candidates.
func checkSpread(t *testing.T, pickLocs []string, candsPerLoc map[string]int, count int, msg string) {
	t.Helper()
	used := map[string]int{}
	for _, l := range pickLocs {
		used[l]++
	}
	require.Len(t, used, min(count, len(candsPerLoc)), "distinct locations; %s", msg)
	for x := range candsPerLoc {
		for y := range used {
			if used[y] >= used[x]+2 {
				require.Equal(t, candsPerLoc[x], used[x],
					"location %q has %d picks, %q only %d yet had candidates left; %s", y, used[y], x, used[x], msg)
			}
		}
	}
}

func TestPlaceVDsProperties(t *testing.T) {
	t.Parallel()
	r := rand.New(rand.NewPCG(1, 2))
	sizes := []uint64{1, vda.MiB, vda.GiB / 2, vda.GiB, 3 * vda.GiB / 2, 2 * vda.GiB}
	var placed, failed int
	for i := range propertyIterations {
		pds := randomPDs(r)
		count := 1 + r.IntN(8)
		size := sizes[r.IntN(len(sizes))]
		msg := fmt.Sprintf("iteration %d: PlaceVDs(count=%d, size=%d, %+v)", i, count, size, pds)
		before := slices.Clone(pds)

		got, err := allocator.PlaceVDs(pds, count, size)
		require.Equal(t, before, pds, "input changed; %s", msg)

		// The eligible dns, each with its best pd, and their locations.
		best := map[vda.DNID]allocator.PD{}
		for _, p := range pds {
			if !p.Online || p.Free < size {
				continue
			}
			if b, ok := best[p.DN]; !ok || p.Free > b.Free || p.Free == b.Free && p.ID < b.ID {
				best[p.DN] = p
			}
		}
		dnsPerLoc := map[string]int{}
		for _, p := range best {
			dnsPerLoc[p.Location]++
		}

		if err != nil {
			failed++
			require.ErrorIs(t, err, vda.ErrNoCapacity, msg)
			require.Less(t, len(best), count, "refused a feasible placement; %s", msg)
			continue
		}
		placed++
		require.Len(t, got, count, msg)
		dns := map[vda.DNID]bool{}
		var locs []string
		for _, p := range got {
			require.False(t, dns[p.DN], "two vds on dn %s; %s", p.DN, msg)
			dns[p.DN] = true
			require.True(t, p.Online, "offline pd %s; %s", p.ID, msg)
			require.GreaterOrEqual(t, p.Free, size, "pd %s too small; %s", p.ID, msg)
			require.Equal(t, best[p.DN], p, "pd %s is not its dn's best; %s", p.ID, msg)
			locs = append(locs, p.Location)
		}
		checkSpread(t, locs, dnsPerLoc, count, msg)

		// The first pick faces no used location: it is the best of all.
		for _, b := range best {
			first := got[0]
			require.False(t, b.Free > first.Free || b.Free == first.Free && b.ID < first.ID,
				"first pick %s, but %s is better; %s", first.ID, b.ID, msg)
		}

		for range 3 {
			again, err := allocator.PlaceVDs(shuffled(r, pds), count, size)
			require.NoError(t, err, msg)
			require.Equal(t, got, again, "input order changed the result; %s", msg)
		}
	}
	// Guard the generator: both outcomes must be well exercised.
	require.Greater(t, placed, propertyIterations/5, "placed")
	require.Greater(t, failed, propertyIterations/5, "failed")
}

func TestPlaceCntlrsProperties(t *testing.T) {
	t.Parallel()
	r := rand.New(rand.NewPCG(3, 4))
	var placed, failed int
	for i := range propertyIterations {
		cns := randomCNs(r)
		count := 1 + r.IntN(5)
		msg := fmt.Sprintf("iteration %d: PlaceCntlrs(count=%d, %+v)", i, count, cns)
		before := slices.Clone(cns)

		got, err := allocator.PlaceCntlrs(cns, count)
		require.Equal(t, before, cns, "input changed; %s", msg)

		var online []allocator.CN
		cnsPerLoc := map[string]int{}
		for _, c := range cns {
			if c.Online {
				online = append(online, c)
				cnsPerLoc[c.Location]++
			}
		}

		if err != nil {
			failed++
			require.True(t, errors.Is(err, vda.ErrNoCapacity), "%v; %s", err, msg)
			require.Less(t, len(online), count, "refused a feasible placement; %s", msg)
			continue
		}
		placed++
		require.Len(t, got, count, msg)
		ids := map[vda.CNID]bool{}
		var locs []string
		for _, c := range got {
			require.False(t, ids[c.ID], "cn %s picked twice; %s", c.ID, msg)
			ids[c.ID] = true
			require.True(t, c.Online, "offline cn %s; %s", c.ID, msg)
			require.Contains(t, cns, c, msg)
			locs = append(locs, c.Location)
		}
		checkSpread(t, locs, cnsPerLoc, count, msg)

		// The primary is the least loaded online cn, lowest id among equals.
		for _, c := range online {
			p := got[0]
			require.False(t, c.Load < p.Load || c.Load == p.Load && c.ID < p.ID,
				"primary %s, but %s is less loaded; %s", p.ID, c.ID, msg)
		}

		for range 3 {
			again, err := allocator.PlaceCntlrs(shuffled(r, cns), count)
			require.NoError(t, err, msg)
			require.Equal(t, got, again, "input order changed the result; %s", msg)
		}
	}
	require.Greater(t, placed, propertyIterations/5, "placed")
	require.Greater(t, failed, propertyIterations/10, "failed")
}
