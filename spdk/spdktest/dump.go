package spdktest

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/virtual-disk-array/vda/spdk"
)

// Dump renders every object of an SPDK application that VDA drives (bdevs,
// lvstores, lvols, NVMe-oF controllers, raids, transports, subsystems with
// their namespaces, listeners and hosts), one line each, sorted. Lvols
// appear by their "lvs/lvol" alias rather than their generated uuid, so
// that tests can compare whole states exactly.
func Dump(ctx context.Context, c *spdk.Client) ([]string, error) {
	var out []string
	add := func(format string, args ...any) { out = append(out, fmt.Sprintf(format, args...)) }

	bdevs, err := c.BdevGetBdevs(ctx, spdk.BdevGetBdevsRequest{})
	if err != nil {
		return nil, err
	}
	name := map[string]string{} // canonical name -> readable name
	for _, b := range bdevs {
		name[b.Name] = b.Name
		if b.ProductName == "Logical Volume" && len(b.Aliases) > 0 {
			name[b.Name] = b.Aliases[0]
		}
	}
	for _, b := range bdevs {
		claim := ""
		if b.Claimed {
			claim = " claimed=" + b.ClaimType
		}
		add("bdev %s %q %d*%d%s", name[b.Name], b.ProductName, b.NumBlocks, b.BlockSize, claim)
	}
	lvss, err := c.BdevLvolGetLvstores(ctx, spdk.LvstoreSelector{})
	if err != nil {
		return nil, err
	}
	for _, l := range lvss {
		add("lvstore %s on %s cluster=%d clusters=%d", l.Name, name[l.BaseBdev], l.ClusterSize, l.TotalDataClusters)
	}
	lvols, err := c.BdevLvolGetLvols(ctx, spdk.BdevLvolGetLvolsRequest{})
	if err != nil {
		return nil, err
	}
	for _, l := range lvols {
		add("lvol %s thin=%v", l.Alias, l.IsThinProvisioned)
	}
	ctrlrs, err := c.BdevNvmeGetControllers(ctx, "")
	if err != nil {
		return nil, err
	}
	for _, ct := range ctrlrs {
		for _, p := range ct.Ctrlrs {
			add("nvme %s -> %s:%s %s as %s %s", ct.Name, p.Trid.Traddr, p.Trid.Trsvcid, p.Trid.Subnqn, p.Host.NQN, p.State)
		}
	}
	raids, err := c.BdevRaidGetBdevs(ctx, spdk.RaidAll)
	if err != nil {
		return nil, err
	}
	for _, r := range raids {
		var ms []string
		for _, m := range r.BaseBdevsList {
			if m.Name == nil {
				ms = append(ms, "<nil>")
			} else {
				ms = append(ms, *m.Name)
			}
		}
		add("raid %s %s strip=%d %s [%s]", r.Name, r.RaidLevel, r.StripSizeKB, r.State, strings.Join(ms, " "))
	}
	trs, err := c.NvmfGetTransports(ctx, "")
	if err != nil {
		return nil, err
	}
	for _, tr := range trs {
		add("transport %s", tr.Trtype)
	}
	subs, err := c.NvmfGetSubsystems(ctx, "")
	if err != nil {
		return nil, err
	}
	for _, s := range subs {
		if s.Subtype == "Discovery" {
			continue
		}
		add("subsystem %s serial=%s model=%q any=%v", s.NQN, s.SerialNumber, s.ModelNumber, s.AllowAnyHost)
		for _, ns := range s.Namespaces {
			add("  ns %s %d %s uuid=%s nguid=%s", s.NQN, ns.NSID, name[ns.BdevName], ns.UUID, ns.NGUID)
		}
		ls, err := c.NvmfSubsystemGetListeners(ctx, s.NQN)
		if err != nil {
			return nil, err
		}
		for _, l := range ls {
			ana := ""
			if len(l.AnaStates) > 0 {
				ana = " ana=" + l.AnaStates[0].AnaState
			}
			add("  listener %s %s %s:%s%s", s.NQN, l.Address.Adrfam, l.Address.Traddr, l.Address.Trsvcid, ana)
		}
		for _, h := range s.Hosts {
			add("  host %s %s", s.NQN, h.NQN)
		}
	}
	slices.Sort(out)
	return out, nil
}
