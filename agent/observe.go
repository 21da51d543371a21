package agent

import (
	"context"
	"fmt"
	"maps"
	"strings"

	"github.com/virtual-disk-array/vda"
	"github.com/virtual-disk-array/vda/spdk"
	"golang.org/x/sync/errgroup"
)

// Actual is what one SPDK application holds, as its list methods report
// it, indexed for planning. Both kinds observe bdevs, NVMe controllers,
// transports and subsystems; a dn also lvstores and lvols, a cn raids.
type Actual struct {
	// Bdevs by canonical name; names and aliases of all bdevs resolve
	// through Names.
	Bdevs map[string]spdk.Bdev
	Names map[string]string
	// Lvstores by name, and lvols by "lvs/lvol" alias.
	Lvstores map[string]spdk.Lvstore
	Lvols    map[string]spdk.Lvol
	// Ctrlrs are the NVMe-oF initiator controllers by name.
	Ctrlrs map[string]spdk.NvmeController
	// Raids by name, whatever their state.
	Raids map[string]spdk.RaidBdev
	// Transports by upper-case type.
	Transports map[string]bool
	// Subsystems by NQN.
	Subsystems map[string]spdk.Subsystem
	// ANA is the ANA state of each listener of each VDA array subsystem,
	// keyed by anaKey. nvmf_get_subsystems does not report it.
	ANA map[string]string
}

func anaKey(nqn string, a spdk.ListenAddress) string {
	return nqn + " " + strings.ToUpper(a.Trtype) + " " + strings.ToUpper(a.Adrfam) + " " + a.Traddr + " " + a.Trsvcid
}

// clone copies the indexes a planner edits as it plans deletes, so that
// planning leaves its input alone.
func (a *Actual) clone() *Actual {
	c := *a
	c.Bdevs, c.Names = maps.Clone(a.Bdevs), maps.Clone(a.Names)
	c.Ctrlrs, c.Raids = maps.Clone(a.Ctrlrs), maps.Clone(a.Raids)
	c.Subsystems = maps.Clone(a.Subsystems)
	return &c
}

// bdev resolves a name or alias.
func (a *Actual) bdev(name string) (spdk.Bdev, bool) {
	b, ok := a.Bdevs[a.Names[name]]
	return b, ok
}

// observer lists one SPDK application's objects.
type observer struct {
	c  *spdk.Client
	cn bool
	// ana remembers the ANA states this agent set or read, so that a
	// syncup asks SPDK only for subsystems it has not seen: the cost of a
	// reconcile then grows with what changed, not with what the node holds.
	ana map[string]string
}

// observe lists everything, with the independent list calls in flight at
// once.
func (o *observer) observe(ctx context.Context) (*Actual, error) {
	a := &Actual{
		Bdevs: map[string]spdk.Bdev{}, Names: map[string]string{}, Lvstores: map[string]spdk.Lvstore{},
		Lvols: map[string]spdk.Lvol{}, Ctrlrs: map[string]spdk.NvmeController{}, Raids: map[string]spdk.RaidBdev{},
		Transports: map[string]bool{}, Subsystems: map[string]spdk.Subsystem{}, ANA: map[string]string{},
	}
	var (
		bdevs  []spdk.Bdev
		lvss   []spdk.Lvstore
		lvols  []spdk.Lvol
		ctrlrs []spdk.NvmeController
		raids  []spdk.RaidBdev
		trs    []spdk.Transport
		subs   []spdk.Subsystem
	)
	g, gctx := errgroup.WithContext(ctx)
	call := func(what string, f func() error) {
		g.Go(func() error {
			if err := f(); err != nil {
				return fmt.Errorf("list %s: %w", what, err)
			}
			return nil
		})
	}
	call("bdevs", func() (err error) { bdevs, err = o.c.BdevGetBdevs(gctx, spdk.BdevGetBdevsRequest{}); return })
	call("transports", func() (err error) { trs, err = o.c.NvmfGetTransports(gctx, ""); return })
	call("subsystems", func() (err error) { subs, err = o.c.NvmfGetSubsystems(gctx, ""); return })
	// A dn attaches its nvme pds as NVMe controllers too.
	call("nvme controllers", func() (err error) { ctrlrs, err = o.c.BdevNvmeGetControllers(gctx, ""); return })
	if o.cn {
		call("raids", func() (err error) { raids, err = o.c.BdevRaidGetBdevs(gctx, spdk.RaidAll); return })
	} else {
		call("lvstores", func() (err error) { lvss, err = o.c.BdevLvolGetLvstores(gctx, spdk.LvstoreSelector{}); return })
		call("lvols", func() (err error) {
			lvols, err = o.c.BdevLvolGetLvols(gctx, spdk.BdevLvolGetLvolsRequest{})
			return
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	for _, b := range bdevs {
		a.Bdevs[b.Name] = b
		a.Names[b.Name] = b.Name
		for _, al := range b.Aliases {
			a.Names[al] = b.Name
		}
	}
	for _, l := range lvss {
		a.Lvstores[l.Name] = l
	}
	for _, l := range lvols {
		a.Lvols[l.Alias] = l
	}
	for _, c := range ctrlrs {
		a.Ctrlrs[c.Name] = c
	}
	for _, r := range raids {
		a.Raids[r.Name] = r
	}
	for _, t := range trs {
		a.Transports[strings.ToUpper(t.Trtype)] = true
	}
	for _, s := range subs {
		a.Subsystems[s.NQN] = s
		if err := o.anaOf(ctx, a, s); err != nil {
			return nil, err
		}
	}
	for k := range o.ana {
		if _, live := a.ANA[k]; !live {
			delete(o.ana, k)
		}
	}
	return a, nil
}

// anaOf fills in the ANA states of the listeners of s, an array subsystem
// on a cn, from what the agent remembers, asking SPDK only for a
// subsystem it has not seen.
func (o *observer) anaOf(ctx context.Context, a *Actual, s spdk.Subsystem) error {
	if !o.cn || !strings.HasPrefix(s.NQN, arrayNQNPrefix) {
		return nil
	}
	for _, l := range s.ListenAddresses {
		k := anaKey(s.NQN, l)
		st, ok := o.ana[k]
		if !ok {
			if err := o.readANA(ctx, s.NQN); err != nil {
				return err
			}
			st = o.ana[k]
		}
		a.ANA[k] = st
	}
	return nil
}

// forgetANA drops what the agent remembers of nqn's listeners.
func (o *observer) forgetANA(nqn string) {
	for k := range o.ana {
		if strings.HasPrefix(k, nqn+" ") {
			delete(o.ana, k)
		}
	}
}

// readANA asks SPDK for the ANA states of one subsystem's listeners.
func (o *observer) readANA(ctx context.Context, nqn string) error {
	ls, err := o.c.NvmfSubsystemGetListeners(ctx, nqn)
	if err != nil {
		return fmt.Errorf("list listeners of %s: %w", nqn, err)
	}
	for _, l := range ls {
		st := ""
		if len(l.AnaStates) > 0 {
			st = l.AnaStates[0].AnaState
		}
		o.ana[anaKey(nqn, l.Address)] = st
	}
	return nil
}

// learn records the effect of a successful op on the ANA cache, and forgets
// a subsystem whose op failed (its state is then unknown).
func (o *observer) learn(op spdk.Op, err error) {
	switch p := op.Params.(type) {
	case spdk.NvmfSubsystemAddListenerRequest:
		o.setANA(p.NQN, p.ListenAddress, p.AnaState, err)
	case spdk.NvmfSubsystemListenerSetAnaStateRequest:
		o.setANA(p.NQN, p.ListenAddress, p.AnaState, err)
	}
}

func (o *observer) setANA(nqn string, a spdk.ListenAddress, st string, err error) {
	if err != nil {
		o.forgetANA(nqn)
		return
	}
	o.ana[anaKey(nqn, a)] = st
}

// Prefixes that tell VDA's objects from foreign ones.
var (
	arrayNQNPrefix = vda.ArrayNQN("")
	vdNQNPrefix    = vda.VDNQN("")
	pdPrefix       = vda.PDBdevName("")
	lvsPrefix      = vda.LvstoreName("")
	lvolPrefix     = vda.LvolName("")
	vdcPrefix      = vda.VDCtrlrName("")
	priPrefix      = vda.PrimaryCtrlrName("")
	raidPrefix     = vda.RaidName("")
)
