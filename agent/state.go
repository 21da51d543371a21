package agent

import (
	"errors"
	"fmt"
	"net/netip"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/virtual-disk-array/vda"
	vdav1 "github.com/virtual-disk-array/vda/proto/vda/v1"
	"github.com/virtual-disk-array/vda/spdk"
)

// Listener is an NVMe-oF TCP address as SPDK spells it in listen addresses
// and transport ids: Trtype "TCP", Adrfam "IPv4" or "IPv6".
type Listener struct {
	Trtype, Adrfam, Traddr, Trsvcid string
}

func (l Listener) listenAddress() spdk.ListenAddress {
	return spdk.ListenAddress{Trtype: l.Trtype, Adrfam: l.Adrfam, Traddr: l.Traddr, Trsvcid: l.Trsvcid}
}

func (l Listener) String() string { return l.Traddr + ":" + l.Trsvcid }

// sameAddress compares listen addresses the way SPDK does: transport and
// family case-insensitively.
func sameAddress(a spdk.ListenAddress, l Listener) bool {
	return strings.EqualFold(a.Trtype, l.Trtype) && strings.EqualFold(a.Adrfam, l.Adrfam) &&
		a.Traddr == l.Traddr && a.Trsvcid == l.Trsvcid
}

// DN is the desired state of a disk node.
type DN struct {
	ID         vda.DNID
	Generation uint64
	Listener   Listener
	PDs        []PD
}

// PDKind is the bdev module behind a pd.
type PDKind string

const (
	PDMalloc PDKind = "malloc"
	PDAio    PDKind = "aio"
	PDNvme   PDKind = "nvme"
)

// PD is a pd with the vds carved from it.
type PD struct {
	ID   vda.PDID
	Kind PDKind
	// Size of a malloc pd in bytes.
	Size uint64
	// Path of an aio pd's file or block device.
	Path string
	// PCIeAddr of an nvme pd.
	PCIeAddr string
	VDs      []VD
}

// VD is a vd: a thick lvol exported to its array's primary only.
type VD struct {
	ID   vda.VDID
	Size uint64
	// Primary is the array's current primary controller; its host NQN is
	// the only one the vd's subsystem allows.
	Primary vda.CntlrID
}

// CN is the desired state of a controller node.
type CN struct {
	ID         vda.CNID
	Generation uint64
	Listener   Listener
	Cntlrs     []Cntlr
}

// Cntlr is one controller on the cn. Exactly one of Primary and Secondary
// is set.
type Cntlr struct {
	ID          vda.CntlrID
	DA          vda.DAID
	StripSizeKB uint32
	Primary     *Primary
	Secondary   *Secondary
	// HostNQNs of the array's exporters.
	HostNQNs []string
}

// Primary is what a primary controller builds.
type Primary struct {
	// VDs in array order.
	VDs []VDPath
	// Secondaries' ids: their host NQNs may connect to the export.
	Secondaries []vda.CntlrID
}

// VDPath is where the primary reaches a vd.
type VDPath struct {
	ID       vda.VDID
	Listener Listener
}

// Secondary is what a secondary controller builds.
type Secondary struct {
	Primary  vda.CntlrID
	Listener Listener
}

// DNFromProto validates a dn's desired state from the wire and converts it.
// Every problem is reported at once, wrapping vda.ErrInvalidArgument.
func DNFromProto(m *vdav1.DnDesired) (DN, error) {
	var v validator
	if m == nil {
		return DN{}, vda.Invalidf("desired state is missing")
	}
	d := DN{ID: vda.DNID(m.GetDnId()), Generation: m.GetGeneration()}
	v.id("dn_id", m.GetDnId())
	v.generation(m.GetGeneration())
	d.Listener = v.listener("listener", m.GetListener())
	pds, vds := map[string]bool{}, map[string]bool{}
	for i, p := range m.GetPds() {
		f := fmt.Sprintf("pds[%d]", i)
		v.id(f+".id", p.GetId())
		v.unique(pds, f+".id", p.GetId())
		pd := PD{ID: vda.PDID(p.GetId())}
		switch b := p.GetBackend().(type) {
		case *vdav1.PdDesired_Malloc:
			pd.Kind, pd.Size = PDMalloc, b.Malloc.GetSize()
			switch {
			case pd.Size == 0 || pd.Size%vda.MiB != 0:
				v.addf("%s.malloc.size %d is not a positive multiple of 1 MiB", f, pd.Size)
			case pd.Size > vda.MaxArraySize:
				v.addf("%s.malloc.size %d is above %d", f, pd.Size, uint64(vda.MaxArraySize))
			}
		case *vdav1.PdDesired_Aio:
			pd.Kind, pd.Path = PDAio, b.Aio.GetPath()
			switch {
			case len(pd.Path) > maxPathLen:
				v.addf("%s.aio.path is longer than %d bytes", f, maxPathLen)
			case !strings.HasPrefix(pd.Path, "/"):
				v.addf("%s.aio.path %q is not absolute", f, pd.Path)
			case path.Clean(pd.Path) != pd.Path:
				v.addf("%s.aio.path %q is not clean (%q)", f, pd.Path, path.Clean(pd.Path))
			case strings.ContainsAny(pd.Path, "\x00\n"):
				v.addf("%s.aio.path %q has a NUL or newline", f, pd.Path)
			}
		case *vdav1.PdDesired_Nvme:
			pd.Kind, pd.PCIeAddr = PDNvme, b.Nvme.GetPcieAddr()
			if !pcieRE.MatchString(pd.PCIeAddr) {
				v.addf("%s.nvme.pcie_addr %q is not a PCIe address (dddd:bb:dd.f)", f, pd.PCIeAddr)
			}
		default:
			v.addf("%s has no backend", f)
		}
		for j, x := range p.GetVds() {
			g := fmt.Sprintf("%s.vds[%d]", f, j)
			v.id(g+".id", x.GetId())
			v.unique(vds, g+".id", x.GetId())
			v.id(g+".primary_cntlr_id", x.GetPrimaryCntlrId())
			switch {
			case x.GetSize() == 0 || x.GetSize()%vda.ClusterSize != 0:
				v.addf("%s.size %d is not a positive multiple of %s", g, x.GetSize(), vda.FormatSize(vda.ClusterSize))
			case x.GetSize() > vda.MaxArraySize:
				v.addf("%s.size %d is above %d", g, x.GetSize(), uint64(vda.MaxArraySize))
			}
			pd.VDs = append(pd.VDs, VD{ID: vda.VDID(x.GetId()), Size: x.GetSize(), Primary: vda.CntlrID(x.GetPrimaryCntlrId())})
		}
		d.PDs = append(d.PDs, pd)
	}
	return d, v.err()
}

// CNFromProto validates a cn's desired state from the wire and converts it.
func CNFromProto(m *vdav1.CnDesired) (CN, error) {
	var v validator
	if m == nil {
		return CN{}, vda.Invalidf("desired state is missing")
	}
	c := CN{ID: vda.CNID(m.GetCnId()), Generation: m.GetGeneration()}
	v.id("cn_id", m.GetCnId())
	v.generation(m.GetGeneration())
	c.Listener = v.listener("listener", m.GetListener())
	ids, das := map[string]bool{}, map[string]bool{}
	for i, x := range m.GetCntlrs() {
		f := fmt.Sprintf("cntlrs[%d]", i)
		v.id(f+".id", x.GetId())
		v.unique(ids, f+".id", x.GetId())
		v.id(f+".da_id", x.GetDaId())
		// One cn holds at most one controller of an array: they would share
		// the array's subsystem NQN.
		v.unique(das, f+".da_id", x.GetDaId())
		ct := Cntlr{ID: vda.CntlrID(x.GetId()), DA: vda.DAID(x.GetDaId()), StripSizeKB: x.GetStripSizeKb()}
		hosts := map[string]bool{}
		for j, h := range x.GetHostNqns() {
			g := fmt.Sprintf("%s.host_nqns[%d]", f, j)
			if err := vda.ValidateNQN(g, h); err != nil {
				v.add(err)
			}
			v.unique(hosts, g, h)
			ct.HostNQNs = append(ct.HostNQNs, h)
		}
		switch r := x.GetRole().(type) {
		case *vdav1.CntlrDesired_Primary:
			p := &Primary{}
			if n := len(r.Primary.GetVds()); n == 0 || n > vda.MaxVDCount {
				v.addf("%s.primary.vds: %d vds, want 1..%d", f, n, vda.MaxVDCount)
			}
			s := ct.StripSizeKB
			if s < 4 || s > 1024 || s&(s-1) != 0 {
				v.addf("%s.strip_size_kb %d is not a power of two in 4..1024", f, s)
			}
			vds := map[string]bool{}
			for j, x := range r.Primary.GetVds() {
				g := fmt.Sprintf("%s.primary.vds[%d]", f, j)
				v.id(g+".id", x.GetId())
				v.unique(vds, g+".id", x.GetId())
				p.VDs = append(p.VDs, VDPath{ID: vda.VDID(x.GetId()), Listener: v.listener(g+".listener", x.GetListener())})
			}
			secs := map[string]bool{x.GetId(): true}
			for j, s := range r.Primary.GetSecondaryCntlrIds() {
				g := fmt.Sprintf("%s.primary.secondary_cntlr_ids[%d]", f, j)
				v.id(g, s)
				v.unique(secs, g, s)
				p.Secondaries = append(p.Secondaries, vda.CntlrID(s))
			}
			ct.Primary = p
		case *vdav1.CntlrDesired_Secondary:
			g := f + ".secondary"
			v.id(g+".primary_cntlr_id", r.Secondary.GetPrimaryCntlrId())
			if r.Secondary.GetPrimaryCntlrId() == x.GetId() {
				v.addf("%s.primary_cntlr_id is the controller itself", g)
			}
			ct.Secondary = &Secondary{
				Primary:  vda.CntlrID(r.Secondary.GetPrimaryCntlrId()),
				Listener: v.listener(g+".primary_listener", r.Secondary.GetPrimaryListener()),
			}
		default:
			v.addf("%s has no role", f)
		}
		c.Cntlrs = append(c.Cntlrs, ct)
	}
	return c, v.err()
}

// maxPathLen bounds an aio pd's path, as the portal does.
const maxPathLen = 4096

// pcieRE is a PCIe address as the portal stores it: domain:bus:device.function.
var pcieRE = regexp.MustCompile(`^[0-9a-fA-F]{4}:[0-9a-fA-F]{2}:[0-9a-fA-F]{2}\.[0-7]$`)

// validator collects every problem of a desired state.
type validator struct{ errs []error }

func (v *validator) add(err error) { v.errs = append(v.errs, err) }

func (v *validator) addf(format string, args ...any) { v.add(fmt.Errorf(format, args...)) }

func (v *validator) err() error {
	if len(v.errs) == 0 {
		return nil
	}
	return fmt.Errorf("%w: %w", vda.ErrInvalidArgument, errors.Join(v.errs...))
}

// id checks an id: it becomes part of SPDK object names and NQNs, so it is
// held to the name rules.
func (v *validator) id(field, id string) {
	if id == "" {
		v.addf("%s is empty", field)
		return
	}
	if err := vda.ValidateName(field, id); err != nil {
		v.add(err)
	}
}

func (v *validator) unique(seen map[string]bool, field, s string) {
	if seen[s] {
		v.addf("%s %q appears twice", field, s)
	}
	seen[s] = true
}

func (v *validator) generation(g uint64) {
	if g == 0 {
		v.addf("generation is 0")
	}
}

// listener converts a wire listener to SPDK's spelling.
func (v *validator) listener(field string, l *vdav1.NvmfListener) Listener {
	if l == nil {
		v.addf("%s is missing", field)
		return Listener{}
	}
	out := Listener{Trtype: spdk.TrtypeTCP, Traddr: l.GetTraddr(), Trsvcid: l.GetTrsvcid()}
	if !strings.EqualFold(l.GetTrtype(), "tcp") {
		v.addf("%s.trtype %q is not tcp", field, l.GetTrtype())
	}
	addr, err := netip.ParseAddr(l.GetTraddr())
	switch {
	case err != nil:
		v.addf("%s.traddr %q is not an IP address", field, l.GetTraddr())
	case addr.Zone() != "":
		v.addf("%s.traddr %q has a zone", field, l.GetTraddr())
	case addr.IsUnspecified():
		v.addf("%s.traddr %q is the unspecified address", field, l.GetTraddr())
	}
	switch strings.ToLower(l.GetAdrfam()) {
	case "ipv4":
		out.Adrfam = spdk.AdrfamIPv4
		if err == nil && !addr.Is4() {
			v.addf("%s.traddr %q is not an IPv4 address", field, l.GetTraddr())
		}
	case "ipv6":
		out.Adrfam = spdk.AdrfamIPv6
		if err == nil && !addr.Is6() {
			v.addf("%s.traddr %q is not an IPv6 address", field, l.GetTraddr())
		}
	default:
		v.addf("%s.adrfam %q is not ipv4 or ipv6", field, l.GetAdrfam())
	}
	if p, err := strconv.ParseUint(l.GetTrsvcid(), 10, 16); err != nil || p == 0 {
		v.addf("%s.trsvcid %q is not a port", field, l.GetTrsvcid())
	}
	return out
}

// clone returns a deep copy of d, for the agent to remember while its
// caller goes on using d.
func (d DN) clone() DN {
	d.PDs = slices.Clone(d.PDs)
	for i := range d.PDs {
		d.PDs[i].VDs = slices.Clone(d.PDs[i].VDs)
	}
	return d
}

// clone returns a deep copy of c; see DN.clone.
func (c CN) clone() CN {
	c.Cntlrs = slices.Clone(c.Cntlrs)
	for i := range c.Cntlrs {
		ct := &c.Cntlrs[i]
		ct.HostNQNs = slices.Clone(ct.HostNQNs)
		if p := ct.Primary; p != nil {
			ct.Primary = &Primary{VDs: slices.Clone(p.VDs), Secondaries: slices.Clone(p.Secondaries)}
		}
		if s := ct.Secondary; s != nil {
			cp := *s
			ct.Secondary = &cp
		}
	}
	return c
}
