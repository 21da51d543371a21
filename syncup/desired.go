package syncup

import (
	vdav1 "github.com/virtual-disk-array/vda/proto/vda/v1"
	"github.com/virtual-disk-array/vda/store"
)

// DNDesired puts a dn's state, as the store holds it, on the wire.
func DNDesired(st store.DNState) *vdav1.DnDesired {
	m := &vdav1.DnDesired{DnId: string(st.DN.ID), Generation: st.DN.Generation, Listener: listener(st.DN.Listener)}
	byPD := map[string]*vdav1.PdDesired{}
	for _, pd := range st.PDs {
		x := &vdav1.PdDesired{Id: string(pd.ID)}
		switch pd.Kind {
		case store.PDMalloc:
			x.Backend = &vdav1.PdDesired_Malloc{Malloc: &vdav1.PdMalloc{Size: pd.Size}}
		case store.PDAio:
			x.Backend = &vdav1.PdDesired_Aio{Aio: &vdav1.PdAio{Path: pd.Path}}
		case store.PDNvme:
			x.Backend = &vdav1.PdDesired_Nvme{Nvme: &vdav1.PdNvme{PcieAddr: pd.PCIeAddr}}
		}
		byPD[x.Id] = x
		m.Pds = append(m.Pds, x)
	}
	for _, vd := range st.VDs {
		pd := byPD[string(vd.PDID)]
		pd.Vds = append(pd.Vds, &vdav1.VdDesired{Id: string(vd.ID), Size: vd.Size, PrimaryCntlrId: string(vd.PrimaryCntlrID)})
	}
	return m
}

// CNDesired puts a cn's state, as the store holds it, on the wire.
func CNDesired(st store.CNState) *vdav1.CnDesired {
	m := &vdav1.CnDesired{CnId: string(st.CN.ID), Generation: st.CN.Generation, Listener: listener(st.CN.Listener)}
	for _, c := range st.Cntlrs {
		x := &vdav1.CntlrDesired{Id: string(c.ID), DaId: string(c.DAID), StripSizeKb: c.DA.StripSizeKB, HostNqns: c.HostNQNs}
		if c.Primary.ID == c.ID {
			p := &vdav1.PrimaryDesired{}
			for _, vd := range c.VDs {
				p.Vds = append(p.Vds, &vdav1.VdPath{Id: string(vd.ID), Listener: listener(vd.Listener)})
			}
			for _, s := range c.Secondaries {
				p.SecondaryCntlrIds = append(p.SecondaryCntlrIds, string(s.ID))
			}
			x.Role = &vdav1.CntlrDesired_Primary{Primary: p}
		} else {
			x.Role = &vdav1.CntlrDesired_Secondary{Secondary: &vdav1.SecondaryDesired{
				PrimaryCntlrId: string(c.Primary.ID), PrimaryListener: listener(c.Primary.Listener),
			}}
		}
		m.Cntlrs = append(m.Cntlrs, x)
	}
	return m
}

func listener(l store.Listener) *vdav1.NvmfListener {
	return &vdav1.NvmfListener{Trtype: l.TrType, Adrfam: l.AdrFam, Traddr: l.TrAddr, Trsvcid: l.TrSvcID}
}
