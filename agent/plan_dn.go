package agent

import (
	"fmt"
	"strings"

	"github.com/virtual-disk-array/vda"
	"github.com/virtual-disk-array/vda/spdk"
)

// mallocBlockSize and aioBlockSize are the block sizes of the pd bdevs VDA
// creates. SPDK cannot detect a regular file's block size, so aio needs
// one; 512 suits every file system and device.
const (
	mallocBlockSize = 512
	aioBlockSize    = 512
)

// PlanDN plans one reconcile pass of a disk node: first it removes the
// VDA-owned objects the desired state no longer holds (subsystems, lvols,
// lvstores, pd bdevs, in that order), then it builds each pd and its vds
// (bdev, lvstore, lvol, subsystem, namespace, listener, host). A pd whose
// bdev it creates gets no further step in this pass: SPDK examines a new
// bdev for an lvstore, and the next pass, seeing what examine found, never
// creates an lvstore over an existing one.
//
// PlanDN is pure: it reads d and a and returns what to do.
func PlanDN(d DN, a *Actual) Plan { return planDN(d, a, nil) }

// planDN is PlanDN limited to a scope (nil: the whole node). A scope names
// vds only (see dnScope): the pds' leftovers are then not looked for.
func planDN(d DN, a *Actual, sc *scope) Plan {
	p := newPlanner(a)
	p.sc = sc
	p.transport()

	// What is wanted, by SPDK name.
	wantPD := map[string]bool{}  // pd bdev and controller names
	wantLvs := map[string]bool{} // lvstore names
	wantLvol := map[string]bool{}
	wantSub := map[string]bool{}
	for _, pd := range d.PDs {
		wantPD[vda.PDBdevName(pd.ID)] = true
		lvs := vda.LvstoreName(pd.ID)
		wantLvs[lvs] = true
		for _, vd := range pd.VDs {
			wantLvol[lvs+"/"+vda.LvolName(vd.ID)] = true
			wantSub[vda.VDNQN(vd.ID)] = true
		}
	}

	// Leftovers, top of the stack first.
	for _, nqn := range scopedKeys(a.Subsystems, sc, scopeSubsystems) {
		if strings.HasPrefix(nqn, vdNQNPrefix) && !wantSub[nqn] {
			p.step(cleanupRef, spdk.OpNvmfDeleteSubsystem(nqn))
		}
	}
	for _, alias := range scopedKeys(a.Lvols, sc, scopeBdevs) {
		l := a.Lvols[alias]
		if strings.HasPrefix(l.Lvs.Name, lvsPrefix) && strings.HasPrefix(l.Name, lvolPrefix) && !wantLvol[alias] {
			p.step(cleanupRef, spdk.OpBdevLvolDelete(alias))
		}
	}
	if sc == nil {
		p.pdLeftovers(a, wantPD, wantLvs)
	}
	for _, pd := range d.PDs {
		p.pd(pd, d.Listener)
	}
	return p.plan
}

// pdLeftovers plans the removal of the lvstores, bdevs and NVMe
// controllers of pds no longer desired. An lvstore goes only once it is
// observed holding no lvol at all: the VDA lvols of a removed pd are
// deleted first (stale vds, as the delete guard counted them) and the
// lvstore, with its bdev, in the next pass. One holding lvols VDA does
// not own is never deleted, nor its bdev, and is reported.
func (p *planner) pdLeftovers(a *Actual, wantPD, wantLvs map[string]bool) {
	keptLvs := map[string]bool{} // bdevs under an lvstore that stays
	for _, name := range sortedKeys(a.Lvstores) {
		lvs := a.Lvstores[name]
		if !strings.HasPrefix(name, lvsPrefix) || wantLvs[name] {
			keptLvs[a.Names[lvs.BaseBdev]] = true
			continue
		}
		if held, foreign := p.lvolsIn(name); len(held) > 0 {
			if len(foreign) > 0 {
				p.problem(cleanupRef, fmt.Sprintf("lvstore %s of a removed pd holds lvols VDA does not own (%s): left alone",
					name, strings.Join(foreign, ", ")))
			}
			// Its VDA lvols are being deleted above; the lvstore goes
			// once it is seen empty.
			keptLvs[a.Names[lvs.BaseBdev]] = true
			continue
		}
		p.step(cleanupRef, spdk.OpBdevLvolDeleteLvstore(spdk.LvstoreSelector{LvsName: name}))
	}
	for _, name := range sortedKeys(a.Bdevs) {
		b := a.Bdevs[name]
		if !strings.HasPrefix(name, pdPrefix) || wantPD[name] || keptLvs[name] {
			continue
		}
		switch b.ProductName {
		case productMalloc:
			p.step(cleanupRef, spdk.OpBdevMallocDelete(name))
		case productAio:
			p.step(cleanupRef, spdk.OpBdevAioDelete(name))
		}
	}
	for _, name := range sortedKeys(a.Ctrlrs) {
		if strings.HasPrefix(name, pdPrefix) && !wantPD[name] && !keptLvs[name+"n1"] {
			p.step(cleanupRef, spdk.OpBdevNvmeDetachController(spdk.BdevNvmeDetachControllerRequest{Name: name}))
		}
	}
}

// Product names SPDK gives its bdev modules' bdevs.
const (
	productMalloc = "Malloc disk"
	productAio    = "AIO disk"
	productNvme   = "NVMe disk"
	productLvol   = "Logical Volume"
	productRaid   = "Raid Volume"
)

// lvolsIn lists the lvols an lvstore holds, and those of them VDA does
// not own.
func (p *planner) lvolsIn(lvs string) (held, foreign []string) {
	for _, alias := range sortedKeys(p.a.Lvols) {
		l := p.a.Lvols[alias]
		if l.Lvs.Name != lvs {
			continue
		}
		held = append(held, alias)
		if !strings.HasPrefix(l.Name, lvolPrefix) {
			foreign = append(foreign, alias)
		}
	}
	return held, foreign
}

// pdBdev is the bdev of a pd: the bdev itself for malloc and aio, the
// first namespace of the NVMe controller for nvme.
func pdBdev(pd PD) string {
	if pd.Kind == PDNvme {
		return vda.PDBdevName(pd.ID) + "n1"
	}
	return vda.PDBdevName(pd.ID)
}

func (p *planner) pd(pd PD, l Listener) {
	r := Ref{RefPD, string(pd.ID)}
	name := vda.PDBdevName(pd.ID)
	b, ok := p.a.bdev(pdBdev(pd))
	if !ok {
		switch pd.Kind {
		case PDMalloc:
			p.step(r, spdk.OpBdevMallocCreate(spdk.BdevMallocCreateRequest{
				Name: name, NumBlocks: pd.Size / mallocBlockSize, BlockSize: mallocBlockSize,
			}))
		case PDAio:
			p.step(r, spdk.OpBdevAioCreate(spdk.BdevAioCreateRequest{Name: name, Filename: pd.Path, BlockSize: aioBlockSize}))
		case PDNvme:
			p.step(r, spdk.OpBdevNvmeAttachController(spdk.BdevNvmeAttachControllerRequest{
				Name: name, Trtype: "PCIe", Traddr: pd.PCIeAddr,
			}))
		}
		p.step(r, spdk.OpBdevWaitForExamine())
		return
	}
	if msg := backendMismatch(pd, b); msg != "" {
		p.problem(r, msg)
		return
	}

	lvsName := vda.LvstoreName(pd.ID)
	var lvs *spdk.Lvstore
	for _, n := range sortedKeys(p.a.Lvstores) {
		if s := p.a.Lvstores[n]; p.a.Names[s.BaseBdev] == b.Name {
			lvs = &s
			break
		}
	}
	switch {
	case lvs == nil && b.Claimed:
		p.problem(r, fmt.Sprintf("bdev %s is claimed (%s) by something other than an lvstore: left alone", b.Name, b.ClaimType))
		return
	case lvs == nil:
		if _, taken := p.a.Lvstores[lvsName]; taken {
			p.problem(r, fmt.Sprintf("lvstore %s exists on bdev %s, not on this pd's bdev %s", lvsName, p.a.Lvstores[lvsName].BaseBdev, b.Name))
			return
		}
		p.step(r, spdk.OpBdevLvolCreateLvstore(spdk.BdevLvolCreateLvstoreRequest{
			BdevName: b.Name, LvsName: lvsName, ClusterSize: vda.ClusterSize,
		}))
	case lvs.Name != lvsName:
		// Examine found someone else's lvstore, or one VDA made for another
		// pd: data that is not this pd's to overwrite.
		p.problem(r, fmt.Sprintf("bdev %s holds lvstore %s, not %s: left alone", b.Name, lvs.Name, lvsName))
		return
	}
	for _, vd := range pd.VDs {
		if p.sc == nil || p.sc.hasVD(pd.ID, vd.ID) {
			p.vd(vd, r, lvsName, l)
		}
	}
}

// backendMismatch says why an existing pd bdev is not the one desired.
func backendMismatch(pd PD, b spdk.Bdev) string {
	switch pd.Kind {
	case PDMalloc:
		if b.ProductName != productMalloc {
			return fmt.Sprintf("bdev %s is a %s, not a malloc bdev", b.Name, b.ProductName)
		}
		if b.Size() != pd.Size {
			return fmt.Sprintf("malloc bdev %s has %d bytes, not %d", b.Name, b.Size(), pd.Size)
		}
	case PDAio:
		if b.ProductName != productAio {
			return fmt.Sprintf("bdev %s is a %s, not an aio bdev", b.Name, b.ProductName)
		}
		if a := b.DriverSpecific.Aio; a != nil && a.Filename != pd.Path {
			return fmt.Sprintf("aio bdev %s is over %s, not %s", b.Name, a.Filename, pd.Path)
		}
	case PDNvme:
		if b.ProductName != productNvme {
			return fmt.Sprintf("bdev %s is a %s, not an NVMe namespace", b.Name, b.ProductName)
		}
	}
	return ""
}

func (p *planner) vd(vd VD, pdRef Ref, lvsName string, l Listener) {
	r := Ref{RefVD, string(vd.ID)}
	alias := lvsName + "/" + vda.LvolName(vd.ID)
	nsBdev := ""
	if lv, ok := p.a.Lvols[alias]; !ok {
		p.stepNeeds(r, pdRef, spdk.OpBdevLvolCreate(spdk.BdevLvolCreateRequest{
			LvolName: vda.LvolName(vd.ID), SizeInMiB: vd.Size / vda.MiB, LvsName: lvsName,
		}))
	} else {
		nsBdev = lv.UUID
		size := p.a.Bdevs[lv.UUID].Size()
		switch {
		case lv.IsThinProvisioned:
			p.problem(r, fmt.Sprintf("lvol %s is thin provisioned; a vd is thick", alias))
		case size < vd.Size:
			p.stepNeeds(r, pdRef, spdk.OpBdevLvolResize(spdk.BdevLvolResizeRequest{Name: alias, SizeInMiB: vd.Size / vda.MiB}))
		case size > vd.Size:
			// Shrinking would cut off data; a vd never shrinks.
			p.problem(r, fmt.Sprintf("lvol %s has %d bytes, more than the vd's %d: not shrunk", alias, size, vd.Size))
		}
	}
	start := len(p.plan.Steps)
	p.subsystem(r, subsystemSpec{
		nqn: vda.VDNQN(vd.ID), serial: vda.VDSerial(vd.ID), model: vda.VDModel,
		nsBdev: nsBdev, nsAlias: alias, uuid: vda.VDNamespaceUUID(vd.ID),
		listener: l, hosts: []string{vda.CntlrHostNQN(vd.Primary)},
	})
	for i := start; i < len(p.plan.Steps); i++ {
		if p.plan.Steps[i].Needs == (Ref{}) {
			p.plan.Steps[i].Needs = pdRef
		}
	}
}
