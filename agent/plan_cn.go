package agent

import (
	"fmt"
	"slices"
	"strings"

	"github.com/virtual-disk-array/vda"
	"github.com/virtual-disk-array/vda/spdk"
)

// NvmeOptions are the reconnect options a cn attaches vds and primaries
// with (bdev_nvme_attach_controller). Zero fields leave SPDK's defaults.
type NvmeOptions struct {
	CtrlrLossTimeoutSec  int
	ReconnectDelaySec    int
	FastIOFailTimeoutSec int
}

func (o NvmeOptions) apply(req *spdk.BdevNvmeAttachControllerRequest) {
	set := func(v int) *int {
		if v == 0 {
			return nil
		}
		return &v
	}
	req.CtrlrLossTimeoutSec = set(o.CtrlrLossTimeoutSec)
	req.ReconnectDelaySec = set(o.ReconnectDelaySec)
	req.FastIOFailTimeoutSec = set(o.FastIOFailTimeoutSec)
}

// PlanCN plans one reconcile pass of a controller node. It removes the
// VDA-owned objects no controller wants any more (array subsystems, raids,
// NVMe controllers, in that order, each first unhooked from what uses it),
// then builds each controller bottom-up. A primary attaches every vd with
// its own host NQN (the one the vds' fences allow), stripes them with
// RAID0 and exports the raid; a secondary attaches the primary's export and
// re-exports it. Both export under the array's NQN, serial, model and
// namespace UUID/NGUID, with ANA reporting: the primary's listener
// optimized, a secondary's non-optimized.
//
// An object in the way of the desired one (a raid over other members, an
// attachment to another address) is torn down with everything above it and
// rebuilt. PlanCN is pure.
func PlanCN(c CN, a *Actual, opts NvmeOptions) Plan { return planCN(c, a, opts, nil) }

// planCN is PlanCN limited to a scope (nil: the whole node).
func planCN(c CN, a *Actual, opts NvmeOptions, sc *scope) Plan {
	p := newPlanner(a.clone())
	p.sc = sc
	p.transport()

	wantSub, wantRaid, wantCtrlr := map[string]bool{}, map[string]bool{}, map[string]bool{}
	for _, ct := range c.Cntlrs {
		wantSub[vda.ArrayNQN(ct.DA)] = true
		if ct.Primary != nil {
			wantRaid[vda.RaidName(ct.DA)] = true
			for _, vd := range ct.Primary.VDs {
				wantCtrlr[vda.VDCtrlrName(vd.ID)] = true
			}
		} else if ct.Secondary != nil {
			wantCtrlr[vda.PrimaryCtrlrName(ct.Secondary.Primary)] = true
		}
	}
	for _, nqn := range scopedKeys(a.Subsystems, sc, scopeSubsystems) {
		if strings.HasPrefix(nqn, arrayNQNPrefix) && !wantSub[nqn] {
			p.deleteSubsystem(cleanupRef, nqn)
		}
	}
	for _, name := range scopedKeys(a.Raids, sc, scopeRaids) {
		if strings.HasPrefix(name, raidPrefix) && !wantRaid[name] {
			p.deleteRaid(cleanupRef, name)
		}
	}
	// An unwanted controller whose bdev a wanted array subsystem exports
	// (a secondary promoted to primary, or re-pointed to a new primary)
	// is detached only after the controllers are built: the namespace is
	// then swapped to its new bdev (the same NSID, UUID and NGUID) at
	// once, and the host's I/O still waiting in the old controller for
	// its lost primary fails only afterwards, with Namespace Not Ready,
	// which the host retries on the same path and finds the namespace
	// there again. Detached first, that I/O would fail while the
	// namespace is gone, and its retry would get Invalid Namespace with
	// Do Not Retry: an I/O error in the host's application.
	// The detach is a step of that controller, so that it is skipped if
	// the swap failed (the namespace would still use the bdev).
	subCntlr := map[string]Ref{}
	for _, ct := range c.Cntlrs {
		subCntlr[vda.ArrayNQN(ct.DA)] = Ref{RefCntlr, string(ct.ID)}
	}
	type detachLater struct {
		name string
		r    Ref
	}
	var later []detachLater
	for _, name := range scopedKeys(a.Ctrlrs, sc, scopeCtrlrs) {
		if (strings.HasPrefix(name, vdcPrefix) || strings.HasPrefix(name, priPrefix)) && !wantCtrlr[name] {
			if nqn := exportedBy(p.a, name+"n1", wantSub); nqn != "" {
				later = append(later, detachLater{name, subCntlr[nqn]})
				continue
			}
			p.detach(cleanupRef, name)
		}
	}

	for _, ct := range c.Cntlrs {
		if sc != nil && !sc.hasCntlr(ct) {
			continue
		}
		r := Ref{RefCntlr, string(ct.ID)}
		switch {
		case ct.Primary != nil:
			p.primary(r, ct, c.Listener, opts)
		case ct.Secondary != nil:
			p.secondary(r, ct, c.Listener, opts)
		}
	}
	for _, d := range later {
		p.detach(d.r, d.name)
	}
	return p.plan
}

// exportedBy returns the subsystem among subs a namespace of which
// exports bdev, or "".
func exportedBy(a *Actual, bdev string, subs map[string]bool) string {
	for _, nqn := range sortedKeys(a.Subsystems) {
		if !subs[nqn] {
			continue
		}
		for _, ns := range a.Subsystems[nqn].Namespaces {
			if ns.BdevName == bdev || a.Names[bdev] != "" && a.Names[ns.BdevName] == a.Names[bdev] {
				return nqn
			}
		}
	}
	return ""
}

// unexport removes the namespaces that export bdev, so that deleting the
// bdev does not take them away behind the plan's back.
func (p *planner) unexport(r Ref, bdev string) {
	for _, nqn := range sortedKeys(p.a.Subsystems) {
		s := p.a.Subsystems[nqn]
		kept := s.Namespaces[:0:0]
		for _, ns := range s.Namespaces {
			if ns.BdevName == bdev {
				p.step(r, spdk.OpNvmfSubsystemRemoveNs(nqn, ns.NSID))
				continue
			}
			kept = append(kept, ns)
		}
		s.Namespaces = kept
		p.a.Subsystems[nqn] = s
	}
}

func (p *planner) deleteSubsystem(r Ref, nqn string) {
	p.step(r, spdk.OpNvmfDeleteSubsystem(nqn))
	delete(p.a.Subsystems, nqn)
}

// deleteRaid removes a raid and what exports it.
func (p *planner) deleteRaid(r Ref, name string) {
	p.unexport(r, name)
	p.step(r, spdk.OpBdevRaidDelete(name))
	delete(p.a.Raids, name)
	p.forgetBdev(name)
}

// detach removes an NVMe controller, its bdevs and what uses them.
func (p *planner) detach(r Ref, name string) {
	bdev := name + "n1"
	for _, rn := range sortedKeys(p.a.Raids) {
		if slices.ContainsFunc(p.a.Raids[rn].BaseBdevsList, func(b spdk.RaidBase) bool { return b.Name != nil && *b.Name == bdev }) {
			p.deleteRaid(r, rn)
		}
	}
	p.unexport(r, bdev)
	p.step(r, spdk.OpBdevNvmeDetachController(spdk.BdevNvmeDetachControllerRequest{Name: name}))
	delete(p.a.Ctrlrs, name)
	p.forgetBdev(bdev)
}

func (p *planner) forgetBdev(name string) {
	if canon, ok := p.a.Names[name]; ok {
		delete(p.a.Bdevs, canon)
	}
	delete(p.a.Names, name)
}

// attach makes the NVMe controller name reach subnqn at l as hostnqn,
// detaching an attachment to anything else first. It reports whether the
// controller was (re)attached in this plan.
func (p *planner) attach(r Ref, name string, l Listener, subnqn, hostnqn string, opts NvmeOptions) bool {
	if c, ok := p.a.Ctrlrs[name]; ok {
		if ctrlrMatches(c, l, subnqn, hostnqn) {
			for _, path := range c.Ctrlrs {
				if path.State != spdk.NvmeCtrlrEnabled {
					p.problem(r, fmt.Sprintf("NVMe controller %s to %s is %s", name, l, path.State))
				}
			}
			return false
		}
		p.detach(r, name)
	}
	req := spdk.BdevNvmeAttachControllerRequest{
		Name: name, Trtype: l.Trtype, Adrfam: l.Adrfam, Traddr: l.Traddr, Trsvcid: l.Trsvcid,
		Subnqn: subnqn, Hostnqn: hostnqn, Multipath: spdk.MultipathDisable,
	}
	opts.apply(&req)
	p.stepNeeds(r, nodeRef, spdk.OpBdevNvmeAttachController(req))
	return true
}

// ctrlrMatches says whether an NVMe controller has exactly one path, to
// the desired subsystem at the desired address, as the desired host.
func ctrlrMatches(c spdk.NvmeController, l Listener, subnqn, hostnqn string) bool {
	if len(c.Ctrlrs) != 1 {
		return false
	}
	t, h := c.Ctrlrs[0].Trid, c.Ctrlrs[0].Host
	return strings.EqualFold(t.Trtype, l.Trtype) && strings.EqualFold(t.Adrfam, l.Adrfam) &&
		t.Traddr == l.Traddr && t.Trsvcid == l.Trsvcid && t.Subnqn == subnqn && h.NQN == hostnqn
}

func (p *planner) primary(r Ref, ct Cntlr, l Listener, opts NvmeOptions) {
	hostnqn := vda.CntlrHostNQN(ct.ID)
	members := make([]string, len(ct.Primary.VDs))
	rebuilt := false
	for i, vd := range ct.Primary.VDs {
		name := vda.VDCtrlrName(vd.ID)
		members[i] = name + "n1"
		if p.attach(r, name, vd.Listener, vda.VDNQN(vd.ID), hostnqn, opts) {
			rebuilt = true
		}
	}

	raid := vda.RaidName(ct.DA)
	if rd, ok := p.a.Raids[raid]; ok {
		switch why := raidMismatch(rd, members, ct.StripSizeKB); {
		case why != "":
			p.deleteRaid(r, raid)
		case rebuilt && rd.State != spdk.RaidConfiguring:
			// A member was detached under it: it is offline now.
			p.deleteRaid(r, raid)
		case rd.State == spdk.RaidOffline:
			p.deleteRaid(r, raid)
		case rd.State == spdk.RaidConfiguring:
			// Waiting for members that are not there: they are being
			// attached, or their attachment failed (reported above).
			p.problem(r, fmt.Sprintf("raid %s is configuring: %d of %d members present", raid, rd.NumBaseBdevsDiscovered, rd.NumBaseBdevs))
		}
	}
	if _, ok := p.a.Raids[raid]; !ok {
		p.step(r, spdk.OpBdevRaidCreate(spdk.BdevRaidCreateRequest{
			Name: raid, RaidLevel: spdk.RaidLevel0, StripSizeKB: ct.StripSizeKB, BaseBdevs: members,
		}))
	}
	nsBdev := ""
	if _, ok := p.a.bdev(raid); ok {
		nsBdev = raid
	}

	hosts := slices.Clone(ct.HostNQNs)
	for _, s := range ct.Primary.Secondaries {
		hosts = append(hosts, vda.CntlrHostNQN(s))
	}
	p.subsystem(r, arraySubsystem(ct, nsBdev, raid, l, spdk.AnaOptimized, hosts))
}

// raidMismatch says why an existing raid is not the one desired.
func raidMismatch(rd spdk.RaidBdev, members []string, strip uint32) string {
	if rd.RaidLevel != spdk.RaidLevel0 || rd.StripSizeKB != strip {
		return fmt.Sprintf("raid is %s with %d KiB strips", rd.RaidLevel, rd.StripSizeKB)
	}
	if len(rd.BaseBdevsList) != len(members) {
		return "member count differs"
	}
	for i, b := range rd.BaseBdevsList {
		if b.Name == nil || *b.Name != members[i] {
			return "members differ"
		}
	}
	return ""
}

func (p *planner) secondary(r Ref, ct Cntlr, l Listener, opts NvmeOptions) {
	name := vda.PrimaryCtrlrName(ct.Secondary.Primary)
	p.attach(r, name, ct.Secondary.Listener, vda.ArrayNQN(ct.DA), vda.CntlrHostNQN(ct.ID), opts)
	nsBdev := ""
	if _, ok := p.a.bdev(name + "n1"); ok {
		nsBdev = name + "n1"
	}
	p.subsystem(r, arraySubsystem(ct, nsBdev, name+"n1", l, spdk.AnaNonOptimized, ct.HostNQNs))
}

func arraySubsystem(ct Cntlr, nsBdev, nsAlias string, l Listener, ana string, hosts []string) subsystemSpec {
	return subsystemSpec{
		nqn: vda.ArrayNQN(ct.DA), serial: vda.ArraySerial(ct.DA), model: vda.ArrayModel,
		nsBdev: nsBdev, nsAlias: nsAlias, uuid: vda.ArrayNamespaceUUID(ct.DA),
		listener: l, ana: ana, hosts: hosts,
	}
}
