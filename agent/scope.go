package agent

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"strings"

	"github.com/virtual-disk-array/vda"
	"github.com/virtual-disk-array/vda/spdk"
	"golang.org/x/sync/errgroup"
)

// A scope names the SPDK objects a scoped observation asks SPDK about
// again: those of the resources whose desired state changed since the last
// reconcile, and those the last reconcile's steps changed without
// observing them afterwards. Every other object is taken from what the
// agent remembers of its last observation, so that a syncup's cost grows
// with what changed, not with what the node holds.
type scope struct {
	// bdevs by name or alias ("lvs/lvol" for an lvol).
	bdevs map[string]bool
	// raids are looked up in bdev_get_bdevs (online) and in the
	// configuring and offline categories of bdev_raid_get_bdevs, which a
	// healthy node keeps empty.
	raids      map[string]bool
	ctrlrs     map[string]bool
	subsystems map[string]bool
}

func newScope() *scope {
	return &scope{bdevs: map[string]bool{}, raids: map[string]bool{}, ctrlrs: map[string]bool{}, subsystems: map[string]bool{}}
}

// size counts the objects a scoped observation asks for one by one.
func (s *scope) size() int { return len(s.bdevs) + len(s.ctrlrs) + len(s.subsystems) }

// worth says whether asking for the objects of s one by one beats
// listing a node that holds a: a listing costs six calls whatever it
// holds, but SPDK encodes and the agent decodes every object in it, so
// when half of what the node holds is in scope, list everything.
func (s *scope) worth(a *Actual) bool {
	return s.size()*2 <= len(a.Bdevs)+len(a.Ctrlrs)+len(a.Subsystems)
}

func (s *scope) merge(o *scope) {
	if o == nil {
		return
	}
	maps.Copy(s.bdevs, o.bdevs)
	maps.Copy(s.raids, o.raids)
	maps.Copy(s.ctrlrs, o.ctrlrs)
	maps.Copy(s.subsystems, o.subsystems)
}

// addCntlr adds the objects a cn builds for a controller.
func (s *scope) addCntlr(ct Cntlr) {
	s.subsystems[vda.ArrayNQN(ct.DA)] = true
	switch {
	case ct.Primary != nil:
		raid := vda.RaidName(ct.DA)
		s.bdevs[raid], s.raids[raid] = true, true
		for _, vd := range ct.Primary.VDs {
			s.ctrlr(vda.VDCtrlrName(vd.ID))
		}
	case ct.Secondary != nil:
		s.ctrlr(vda.PrimaryCtrlrName(ct.Secondary.Primary))
	}
}

// ctrlr adds an NVMe-oF controller and the bdev of its namespace.
func (s *scope) ctrlr(name string) {
	s.ctrlrs[name], s.bdevs[name+"n1"] = true, true
}

// hasCntlr says whether any object of ct is in s.
func (s *scope) hasCntlr(ct Cntlr) bool {
	if s.subsystems[vda.ArrayNQN(ct.DA)] || s.raids[vda.RaidName(ct.DA)] {
		return true
	}
	if ct.Primary != nil {
		for _, vd := range ct.Primary.VDs {
			if s.ctrlrs[vda.VDCtrlrName(vd.ID)] {
				return true
			}
		}
	}
	return ct.Secondary != nil && s.ctrlrs[vda.PrimaryCtrlrName(ct.Secondary.Primary)]
}

// hasVD says whether any object of vd (on pd) is in s.
func (s *scope) hasVD(pd vda.PDID, vd vda.VDID) bool {
	return s.bdevs[vda.LvstoreName(pd)+"/"+vda.LvolName(vd)] || s.subsystems[vda.VDNQN(vd)]
}

// addVD adds the objects a dn builds for a vd of pd.
func (s *scope) addVD(pd vda.PDID, vd vda.VDID) {
	s.bdevs[vda.LvstoreName(pd)+"/"+vda.LvolName(vd)] = true
	s.subsystems[vda.VDNQN(vd)] = true
}

// addOp adds what op changed. It says false for an op whose effects reach
// beyond the objects it names (a pd's bdev or lvstore takes everything on
// it along; examine finds objects of its own), after which only a full
// observation can be trusted.
func (s *scope) addOp(op spdk.Op) bool {
	m, subj := op.Method, op.Subject()
	switch {
	case m == "nvmf_create_transport":
		return true // transports are listed at every observation
	case strings.HasPrefix(m, "nvmf_subsystem_") || m == "nvmf_create_subsystem" || m == "nvmf_delete_subsystem":
		s.subsystems[subj] = true
	case m == "bdev_raid_create" || m == "bdev_raid_delete":
		s.bdevs[subj], s.raids[subj] = true, true
	case m == "bdev_lvol_create" || m == "bdev_lvol_resize" || m == "bdev_lvol_delete":
		s.bdevs[subj] = true
	case (m == "bdev_nvme_attach_controller" || m == "bdev_nvme_detach_controller") &&
		(strings.HasPrefix(subj, vdcPrefix) || strings.HasPrefix(subj, priPrefix)):
		s.ctrlr(subj)
	default:
		return false
	}
	return subj != ""
}

// cnScope is the scope of the change from prev to next, or nil when the
// node itself changed.
func cnScope(prev, next CN) *scope {
	if prev.ID != next.ID || prev.Listener != next.Listener {
		return nil
	}
	old := make(map[vda.CntlrID]Cntlr, len(prev.Cntlrs))
	for _, ct := range prev.Cntlrs {
		old[ct.ID] = ct
	}
	s := newScope()
	for _, ct := range next.Cntlrs {
		was, ok := old[ct.ID]
		delete(old, ct.ID)
		if ok && reflect.DeepEqual(was, ct) {
			continue
		}
		s.addCntlr(ct)
		if ok {
			s.addCntlr(was)
		}
	}
	for _, ct := range old {
		s.addCntlr(ct)
	}
	return s
}

// dnScope is cnScope for a dn. Only vds scope: any change of a pd (added,
// removed, resized) lists everything, since a pd's bdev and lvstore carry
// every vd on it.
func dnScope(prev, next DN) *scope {
	if prev.ID != next.ID || prev.Listener != next.Listener || len(prev.PDs) != len(next.PDs) {
		return nil
	}
	type place struct {
		pd vda.PDID
		vd VD
	}
	old := map[vda.VDID]place{}
	for i, pd := range prev.PDs {
		if !samePD(pd, next.PDs[i]) {
			return nil
		}
		for _, vd := range pd.VDs {
			old[vd.ID] = place{pd.ID, vd}
		}
	}
	s := newScope()
	for _, pd := range next.PDs {
		for _, vd := range pd.VDs {
			was, ok := old[vd.ID]
			delete(old, vd.ID)
			if ok && was == (place{pd.ID, vd}) {
				continue
			}
			s.addVD(pd.ID, vd.ID)
			if ok {
				s.addVD(was.pd, vd.ID)
			}
		}
	}
	for id, p := range old {
		s.addVD(p.pd, id)
	}
	return s
}

// samePD compares two pds but for their vds.
func samePD(a, b PD) bool {
	a.VDs, b.VDs = nil, nil
	return reflect.DeepEqual(a, b)
}

// errRestarted says that SPDK lost objects the agent remembers: its
// application restarted.
var errRestarted = errors.New("spdk restarted: the transport is gone")

// observeScope observes the objects of s afresh and patches them into a,
// the agent's last observation, which it takes over: copying it would cost
// what the node holds. Transports are listed every time: they are few, and
// a transport missing from a node that had one is how a restarted SPDK
// behind the same socket shows. On error a is left half patched, and must
// be dropped.
func (o *observer) observeScope(ctx context.Context, a *Actual, s *scope) (*Actual, error) {
	var (
		trs          []spdk.Transport
		lvss         []spdk.Lvstore
		cfg, offline []spdk.RaidBdev
		bdevs        = make([][]spdk.Bdev, 0, len(s.bdevs))
		ctrlrs       = make([][]spdk.NvmeController, 0, len(s.ctrlrs))
		subs         = make([][]spdk.Subsystem, 0, len(s.subsystems))
	)
	bdevNames, ctrlrNames, nqns := sortedKeys(s.bdevs), sortedKeys(s.ctrlrs), sortedKeys(s.subsystems)
	bdevs, ctrlrs, subs = bdevs[:len(bdevNames)], ctrlrs[:len(ctrlrNames)], subs[:len(nqns)]
	g, gctx := errgroup.WithContext(ctx)
	// absent turns the error a lookup of a missing object gets into "none".
	absent := func(what string, err error, missing ...error) error {
		for _, m := range missing {
			if errors.Is(err, m) {
				return nil
			}
		}
		if err != nil {
			return fmt.Errorf("get %s: %w", what, err)
		}
		return nil
	}
	g.Go(func() (err error) {
		trs, err = o.c.NvmfGetTransports(gctx, "")
		return absent("transports", err)
	})
	if !o.cn {
		g.Go(func() (err error) {
			lvss, err = o.c.BdevLvolGetLvstores(gctx, spdk.LvstoreSelector{})
			return absent("lvstores", err)
		})
	}
	if len(s.raids) > 0 {
		g.Go(func() (err error) {
			cfg, err = o.c.BdevRaidGetBdevs(gctx, spdk.RaidConfiguring)
			return absent("configuring raids", err)
		})
		g.Go(func() (err error) {
			offline, err = o.c.BdevRaidGetBdevs(gctx, spdk.RaidOffline)
			return absent("offline raids", err)
		})
	}
	for i, name := range bdevNames {
		g.Go(func() (err error) {
			bdevs[i], err = o.c.BdevGetBdevs(gctx, spdk.BdevGetBdevsRequest{Name: name})
			return absent("bdev "+name, err, spdk.ErrNoDevice)
		})
	}
	for i, name := range ctrlrNames {
		g.Go(func() (err error) {
			// SPDK answers EINVAL "Controller ... does not exist".
			ctrlrs[i], err = o.c.BdevNvmeGetControllers(gctx, name)
			return absent("nvme controller "+name, err, spdk.ErrInvalid, spdk.ErrNoDevice)
		})
	}
	for i, nqn := range nqns {
		g.Go(func() (err error) {
			subs[i], err = o.c.NvmfGetSubsystems(gctx, nqn)
			return absent("subsystem "+nqn, err, spdk.ErrNoDevice)
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}

	had := a.Transports
	a.Transports = map[string]bool{}
	for _, t := range trs {
		a.Transports[strings.ToUpper(t.Trtype)] = true
	}
	for tr := range had {
		if !a.Transports[tr] {
			return nil, errRestarted
		}
	}
	if !o.cn {
		a.Lvstores = map[string]spdk.Lvstore{}
		for _, l := range lvss {
			a.Lvstores[l.Name] = l
		}
	}
	for name := range s.raids {
		delete(a.Raids, name)
	}
	for _, r := range append(cfg, offline...) {
		if s.raids[r.Name] {
			a.Raids[r.Name] = r
		}
	}
	for i, name := range bdevNames {
		a.forgetBdev(name)
		for _, b := range bdevs[i] {
			a.addBdev(b)
			if b.DriverSpecific.Raid != nil && s.raids[b.Name] {
				r := *b.DriverSpecific.Raid
				r.Name = b.Name
				a.Raids[b.Name] = r
			}
		}
	}
	for i, name := range ctrlrNames {
		delete(a.Ctrlrs, name)
		for _, c := range ctrlrs[i] {
			a.Ctrlrs[c.Name] = c
		}
	}
	for i, nqn := range nqns {
		delete(a.Subsystems, nqn)
		for k := range a.ANA {
			if strings.HasPrefix(k, nqn+" ") {
				delete(a.ANA, k)
			}
		}
		if len(subs[i]) == 0 {
			o.forgetANA(nqn)
		}
		for _, sub := range subs[i] {
			a.Subsystems[sub.NQN] = sub
			if err := o.anaOf(ctx, a, sub); err != nil {
				return nil, err
			}
		}
	}
	return a, nil
}

// addBdev indexes b under its name and aliases, and as an lvol when it is
// one, as the full listing does from bdev_lvol_get_lvols.
func (a *Actual) addBdev(b spdk.Bdev) {
	a.Bdevs[b.Name] = b
	a.Names[b.Name] = b.Name
	for _, al := range b.Aliases {
		a.Names[al] = b.Name
		if l := b.DriverSpecific.Lvol; l != nil {
			lvs, name, ok := strings.Cut(al, "/")
			if !ok {
				continue
			}
			a.Lvols[al] = spdk.Lvol{
				Alias: al, UUID: b.Name, Name: name,
				IsThinProvisioned: l.ThinProvision, IsSnapshot: l.Snapshot, IsClone: l.Clone, IsEsnapClone: l.EsnapClone,
				NumAllocatedClusters: l.NumAllocatedClusters,
				Lvs:                  spdk.LvsRef{Name: lvs, UUID: l.LvolStoreUUID},
			}
		}
	}
}

// forgetBdev drops the bdev that name resolves to, with its names.
func (a *Actual) forgetBdev(name string) {
	canon, ok := a.Names[name]
	if !ok {
		return
	}
	b := a.Bdevs[canon]
	delete(a.Bdevs, canon)
	delete(a.Names, canon)
	for _, al := range b.Aliases {
		delete(a.Names, al)
		delete(a.Lvols, al)
	}
	delete(a.Names, name)
}
