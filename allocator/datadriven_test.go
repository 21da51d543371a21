package allocator_test

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/cockroachdb/datadriven"
	"github.com/stretchr/testify/require"

	"github.com/virtual-disk-array/vda"
	"github.com/virtual-disk-array/vda/allocator"
)

// TestDataDriven runs the scenarios in testdata/. Commands:
//
//	pds                                  set the pd inventory, one per line:
//	  <pd> dn=<dn> [loc=<loc>] free=<size> [offline]
//	place-vds count=<n> size=<size> [commit]
//	                                     print the picks ("<pd> <dn> <loc>")
//	                                     or the error; commit debits the
//	                                     picks' free space, as the caller would
//	show-pds                             print the inventory
//	cns                                  set the cn inventory, one per line:
//	  <cn> [loc=<loc>] [load=<n>] [offline]
//	place-cntlrs count=<n> [commit]      print the picks, primary first, or
//	                                     the error; commit bumps their load
//	show-cns                             print the inventory
//
// Sizes take a binary unit (512MiB, 1.5GiB) or none for bytes; an omitted
// loc is the empty location, printed as "". Every placement is also run on
// the inventory reversed and shuffled, and must come out the same.
func TestDataDriven(t *testing.T) {
	datadriven.Walk(t, "testdata", func(t *testing.T, path string) {
		var pds []allocator.PD
		var cns []allocator.CN
		r := rand.New(rand.NewPCG(5, 6))
		datadriven.RunTest(t, path, func(t *testing.T, d *datadriven.TestData) string {
			switch d.Cmd {
			case "pds":
				pds = parsePDs(t, d.Input)
				return ""
			case "show-pds":
				var b strings.Builder
				for _, p := range pds {
					fmt.Fprintf(&b, "%s %s %s free=%s%s\n", p.ID, p.DN, showLoc(p.Location), showBytes(p.Free), showOffline(p.Online))
				}
				return b.String()
			case "place-vds":
				var count int
				var sizeArg string
				d.ScanArgs(t, "count", &count)
				d.ScanArgs(t, "size", &sizeArg)
				size := parseBytes(t, sizeArg)
				got, err := allocator.PlaceVDs(pds, count, size)
				for _, in := range reorderings(r, pds) {
					again, againErr := allocator.PlaceVDs(in, count, size)
					require.Equal(t, got, again, "input order changed the result")
					require.Equal(t, fmt.Sprint(err), fmt.Sprint(againErr), "input order changed the error")
				}
				if err != nil {
					return "error: " + err.Error() + "\n"
				}
				var b strings.Builder
				for _, p := range got {
					fmt.Fprintf(&b, "%s %s %s\n", p.ID, p.DN, showLoc(p.Location))
				}
				if d.HasArg("commit") {
					for _, p := range got {
						i := slices.IndexFunc(pds, func(q allocator.PD) bool { return q.ID == p.ID })
						pds[i].Free -= size
					}
				}
				return b.String()
			case "cns":
				cns = parseCNs(t, d.Input)
				return ""
			case "show-cns":
				var b strings.Builder
				for _, c := range cns {
					fmt.Fprintf(&b, "%s %s load=%d%s\n", c.ID, showLoc(c.Location), c.Load, showOffline(c.Online))
				}
				return b.String()
			case "place-cntlrs":
				var count int
				d.ScanArgs(t, "count", &count)
				got, err := allocator.PlaceCntlrs(cns, count)
				for _, in := range reorderings(r, cns) {
					again, againErr := allocator.PlaceCntlrs(in, count)
					require.Equal(t, got, again, "input order changed the result")
					require.Equal(t, fmt.Sprint(err), fmt.Sprint(againErr), "input order changed the error")
				}
				if err != nil {
					return "error: " + err.Error() + "\n"
				}
				var b strings.Builder
				for i, c := range got {
					role := "secondary"
					if i == 0 {
						role = "primary"
					}
					fmt.Fprintf(&b, "%s %s %s\n", c.ID, showLoc(c.Location), role)
				}
				if d.HasArg("commit") {
					for _, c := range got {
						i := slices.IndexFunc(cns, func(x allocator.CN) bool { return x.ID == c.ID })
						cns[i].Load++
					}
				}
				return b.String()
			default:
				d.Fatalf(t, "unknown command %q", d.Cmd)
				return ""
			}
		})
	})
}

// reorderings returns s reversed and a few shuffles of it.
func reorderings[T any](r *rand.Rand, s []T) [][]T {
	rev := slices.Clone(s)
	slices.Reverse(rev)
	return [][]T{rev, shuffled(r, s), shuffled(r, s), shuffled(r, s)}
}

func parsePDs(t *testing.T, input string) []allocator.PD {
	t.Helper()
	var pds []allocator.PD
	for _, line := range strings.Split(input, "\n") {
		id, args, err := datadriven.ParseLine(line)
		require.NoError(t, err)
		if id == "" {
			continue
		}
		p := allocator.PD{ID: vda.PDID(id), Online: true}
		for _, a := range args {
			switch a.Key {
			case "dn":
				p.DN = vda.DNID(a.SingleVal(t))
			case "loc":
				p.Location = a.SingleVal(t)
			case "free":
				p.Free = parseBytes(t, a.SingleVal(t))
			case "offline":
				p.Online = false
			default:
				t.Fatalf("pd %s: unknown key %q", id, a.Key)
			}
		}
		pds = append(pds, p)
	}
	return pds
}

func parseCNs(t *testing.T, input string) []allocator.CN {
	t.Helper()
	var cns []allocator.CN
	for _, line := range strings.Split(input, "\n") {
		id, args, err := datadriven.ParseLine(line)
		require.NoError(t, err)
		if id == "" {
			continue
		}
		c := allocator.CN{ID: vda.CNID(id), Online: true}
		for _, a := range args {
			switch a.Key {
			case "loc":
				c.Location = a.SingleVal(t)
			case "load":
				c.Load, err = strconv.Atoi(a.SingleVal(t))
				require.NoError(t, err)
			case "offline":
				c.Online = false
			default:
				t.Fatalf("cn %s: unknown key %q", id, a.Key)
			}
		}
		cns = append(cns, c)
	}
	return cns
}

var units = []struct {
	suffix string
	mult   uint64
}{{"TiB", 1 << 40}, {"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}}

// parseBytes reads "1.5GiB", "512MiB" or "4096".
func parseBytes(t *testing.T, s string) uint64 {
	t.Helper()
	for _, u := range units {
		if num, ok := strings.CutSuffix(s, u.suffix); ok {
			f, err := strconv.ParseFloat(num, 64)
			require.NoError(t, err, "size %q", s)
			return uint64(f * float64(u.mult))
		}
	}
	n, err := strconv.ParseUint(s, 10, 64)
	require.NoError(t, err, "size %q", s)
	return n
}

// showBytes prints n in the largest unit that divides it, as parseBytes reads.
func showBytes(n uint64) string {
	for _, u := range units {
		if n >= u.mult && n%u.mult == 0 {
			return fmt.Sprintf("%d%s", n/u.mult, u.suffix)
		}
	}
	return strconv.FormatUint(n, 10)
}

func showLoc(loc string) string {
	if loc == "" {
		return `""`
	}
	return loc
}

func showOffline(online bool) string {
	if online {
		return ""
	}
	return " offline"
}
