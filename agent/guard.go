package agent

import (
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"
)

// Defaults of DeleteGuard.
const (
	// DefaultDeleteShare is the share of an agent's VDA-owned resources one
	// syncup may delete: half. Every ordinary change deletes far less of a
	// node that holds much (one array's vds, one controller), while an empty
	// or truncated desired state (forged, or read from a broken store)
	// deletes all of it.
	DefaultDeleteShare = 0.5
	// DefaultDeleteFloor is how many resources one syncup may always
	// delete, whatever their share: 4. A small node must be able to drop
	// its last array (a dn holding one pd and the array's vds on it, up to
	// 3 of them, or two pds with a vd each; a cn holding a few
	// controllers), and an array's deletion on a small node takes
	// one to three of its resources. A forged empty state still cannot
	// take more than 4 resources from any node.
	DefaultDeleteFloor = 4
)

// DeleteGuard keeps an agent from deleting much of what it holds in one
// syncup: a desired state that would delete more than Floor resources and
// more than Share of the VDA-owned resources the agent observes is refused
// as a whole (nothing is created either: the state is suspect), unless
// the syncup is forced (an admin's explicit call). Resources are counted,
// not SPDK objects: a dn's pds and vds, a cn's controllers (by array).
type DeleteGuard struct {
	// Share is the largest share of the VDA-owned resources one syncup may
	// delete, in (0, 1]; 0 means DefaultDeleteShare.
	Share float64
	// Floor is how many resources one syncup may delete whatever their
	// share; 0 means DefaultDeleteFloor. It cannot be set below 1 (an agent
	// must always be able to delete one resource); Off turns the guard off.
	Floor int
	// Off turns the guard off: every desired state is applied.
	Off bool
}

func (g DeleteGuard) withDefaults() DeleteGuard {
	if g.Share == 0 {
		g.Share = DefaultDeleteShare
	}
	if g.Floor == 0 {
		g.Floor = DefaultDeleteFloor
	}
	return g
}

func (g DeleteGuard) validate() []error {
	var errs []error
	if math.IsNaN(g.Share) || g.Share < 0 || g.Share > 1 {
		errs = append(errs, fmt.Errorf("agent: DeleteGuard.Share %v is not in (0, 1]", g.Share))
	}
	if g.Floor < 0 {
		errs = append(errs, fmt.Errorf("agent: DeleteGuard.Floor %d is negative", g.Floor))
	}
	return errs
}

// allows says whether one syncup may delete deletes of owned resources.
func (g DeleteGuard) allows(deletes, owned int) bool {
	return g.Off || deletes <= g.Floor || float64(deletes) <= g.Share*float64(owned)
}

// ErrMassDelete is what a *GuardError matches: a desired state refused
// because it would delete too much at once.
var ErrMassDelete = errors.New("mass delete refused")

// GuardError is a desired state that DeleteGuard refused. It matches
// ErrMassDelete.
type GuardError struct {
	// Node is "dn" or "cn".
	Node       string
	Generation uint64
	// Deletes of Owned VDA-owned resources; Share the guard's.
	Deletes, Owned int
	Share          float64
	// Dropped names the resources the state would delete ("vd vd1"),
	// sorted, at most maxDropped of them.
	Dropped []string
}

// maxDropped bounds the resources a GuardError names.
const maxDropped = 8

func (e *GuardError) Error() string {
	return fmt.Sprintf("refusing to delete %d of %d VDA-owned resources at once (more than %g%%); "+
		"if this is intended, an admin can push it with `vdactl %s syncup <name> --force`",
		e.Deletes, e.Owned, e.Share*100, e.Node)
}

func (e *GuardError) Unwrap() error { return ErrMassDelete }

// deletes counts resources by kind and id: owned holds every VDA-owned
// resource observed, dropped those the desired state no longer holds.
type deletes struct {
	owned, dropped map[string]bool
}

func newDeletes() *deletes { return &deletes{owned: map[string]bool{}, dropped: map[string]bool{}} }

func (d *deletes) observe(kind RefKind, id string, wanted bool) {
	k := string(kind) + " " + id
	d.owned[k] = true
	if !wanted {
		d.dropped[k] = true
	}
}

// check applies g; force bypasses it. It returns the refusal, or nil.
func (d *deletes) check(g DeleteGuard, node string, gen uint64, force bool) *GuardError {
	if force || g.allows(len(d.dropped), len(d.owned)) {
		return nil
	}
	names := slices.Sorted(maps.Keys(d.dropped))
	return &GuardError{
		Node: node, Generation: gen, Deletes: len(d.dropped), Owned: len(d.owned), Share: g.Share,
		Dropped: names[:min(len(names), maxDropped)],
	}
}

// dnDeletes counts what d would delete of the pds and vds a holds: a pd is
// its bdev (or NVMe controller) and lvstore, a vd its lvol and subsystem.
func dnDeletes(d DN, a *Actual) *deletes {
	wantPD, wantVD := map[string]bool{}, map[string]bool{}
	for _, pd := range d.PDs {
		wantPD[string(pd.ID)] = true
		for _, vd := range pd.VDs {
			wantVD[string(vd.ID)] = true
		}
	}
	out := newDeletes()
	pd := func(id string) { out.observe(RefPD, id, wantPD[id]) }
	vd := func(id string) { out.observe(RefVD, id, wantVD[id]) }
	for name := range a.Lvstores {
		if id, ok := strings.CutPrefix(name, lvsPrefix); ok {
			pd(id)
		}
	}
	for name, b := range a.Bdevs {
		if id, ok := strings.CutPrefix(name, pdPrefix); ok && b.ProductName != productNvme {
			pd(id)
		}
	}
	for name := range a.Ctrlrs {
		if id, ok := strings.CutPrefix(name, pdPrefix); ok {
			pd(id)
		}
	}
	for _, l := range a.Lvols {
		if id, ok := strings.CutPrefix(l.Name, lvolPrefix); ok && strings.HasPrefix(l.Lvs.Name, lvsPrefix) {
			vd(id)
		}
	}
	for nqn := range a.Subsystems {
		if id, ok := strings.CutPrefix(nqn, vdNQNPrefix); ok {
			vd(id)
		}
	}
	return out
}

// cnDeletes counts what c would delete of the controllers a holds, by
// array: an array subsystem or raid of an array no controller of c is for.
func cnDeletes(c CN, a *Actual) *deletes {
	want := map[string]bool{}
	for _, ct := range c.Cntlrs {
		want[string(ct.DA)] = true
	}
	out := newDeletes()
	da := func(id string) { out.observe(RefCntlr, "of da "+id, want[id]) }
	for nqn := range a.Subsystems {
		if id, ok := strings.CutPrefix(nqn, arrayNQNPrefix); ok {
			da(id)
		}
	}
	for name := range a.Raids {
		if id, ok := strings.CutPrefix(name, raidPrefix); ok {
			da(id)
		}
	}
	return out
}
