package portal

import (
	"time"

	"github.com/virtual-disk-array/vda"
	vdav1 "github.com/virtual-disk-array/vda/proto/vda/v1"
	"github.com/virtual-disk-array/vda/store"
)

// Conversions from store values to API messages.

func msOf(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

func healthOf(h store.Health) vdav1.Health {
	switch h {
	case store.HealthOK:
		return vdav1.Health_HEALTH_OK
	case store.HealthError:
		return vdav1.Health_HEALTH_ERROR
	case store.HealthFailed:
		return vdav1.Health_HEALTH_FAILED
	}
	return vdav1.Health_HEALTH_UNKNOWN
}

func listenerOf(l store.Listener) *vdav1.NvmfListener {
	return &vdav1.NvmfListener{Trtype: l.TrType, Adrfam: l.AdrFam, Traddr: l.TrAddr, Trsvcid: l.TrSvcID}
}

func nodeStatusOf(s store.NodeStatus) *vdav1.NodeStatus {
	return &vdav1.NodeStatus{
		Health:            healthOf(s.Health),
		Error:             s.Error,
		ReportedAtMs:      msOf(s.ReportedAt),
		AppliedGeneration: s.AppliedGeneration,
	}
}

func objStatusOf(s store.ObjStatus) *vdav1.Status {
	return &vdav1.Status{Health: healthOf(s.Health), Error: s.Error, ReportedAtMs: msOf(s.ReportedAt)}
}

func dnOf(dn store.DN, st store.NodeStatus, pds int) *vdav1.Dn {
	return &vdav1.Dn{
		Id:           string(dn.ID),
		Name:         dn.Name,
		AgentAddress: dn.AgentAddr,
		Listener:     listenerOf(dn.Listener),
		Location:     dn.Location,
		Offline:      dn.Offline,
		HashCode:     dn.HashCode,
		Description:  dn.Description,
		Generation:   dn.Generation,
		Status:       nodeStatusOf(st),
		CreatedAtMs:  msOf(dn.CreatedAt),
		PdCount:      uint32(pds),
	}
}

func cnOf(cn store.CN, st store.NodeStatus, cntlrs int) *vdav1.Cn {
	return &vdav1.Cn{
		Id:           string(cn.ID),
		Name:         cn.Name,
		AgentAddress: cn.AgentAddr,
		Listener:     listenerOf(cn.Listener),
		Location:     cn.Location,
		Offline:      cn.Offline,
		HashCode:     cn.HashCode,
		Description:  cn.Description,
		Generation:   cn.Generation,
		Status:       nodeStatusOf(st),
		CreatedAtMs:  msOf(cn.CreatedAt),
		CntlrCount:   uint32(cntlrs),
	}
}

func nodeEventOf(e store.NodeEvent) *vdav1.NodeEvent {
	return &vdav1.NodeEvent{AtMs: msOf(e.At), From: e.From, To: e.To, Reason: e.Reason, Monitor: e.Monitor}
}

// pdCapacity is what the allocator may place on a pd: the capacity its
// agent reported, or before any report the estimate made at creation. The
// store's placement query computes the same (store.PDCandidates).
func pdCapacity(pd store.PD, st store.PDStatus) uint64 {
	if st.Capacity > 0 {
		return st.Capacity
	}
	return pd.CapacityEstimate
}

func pdOf(dnName string, pd store.PD, st store.PDStatus, vds int) *vdav1.Pd {
	out := &vdav1.Pd{
		Id:          string(pd.ID),
		DnName:      dnName,
		Name:        pd.Name,
		Offline:     pd.Offline,
		Description: pd.Description,
		Generation:  pd.Generation,
		Capacity:    pdCapacity(pd, st),
		Allocated:   pd.Allocated,
		Status: &vdav1.PdStatus{
			Health: healthOf(st.Health), Error: st.Error, ReportedAtMs: msOf(st.ReportedAt),
			Capacity: st.Capacity, Free: st.Free,
		},
		CreatedAtMs: msOf(pd.CreatedAt),
		VdCount:     uint32(vds),
	}
	switch pd.Kind {
	case store.PDMalloc:
		out.Backend = &vdav1.Pd_Malloc{Malloc: &vdav1.PdMalloc{Size: pd.Size}}
	case store.PDAio:
		out.Backend = &vdav1.Pd_Aio{Aio: &vdav1.PdAio{Path: pd.Path}}
	case store.PDNvme:
		out.Backend = &vdav1.Pd_Nvme{Nvme: &vdav1.PdNvme{PcieAddr: pd.PCIeAddr}}
	}
	return out
}

func daOf(da store.DA) *vdav1.Da {
	return &vdav1.Da{
		Id:          string(da.ID),
		Name:        da.Name,
		Size:        da.Size,
		Raid:        &vdav1.Da_Raid0{Raid0: &vdav1.Raid0{VdCount: da.VDCount, StripSizeKb: da.StripSizeKB}},
		CntlrCount:  da.CntlrCount,
		Description: da.Description,
		Generation:  da.Generation,
		CreatedAtMs: msOf(da.CreatedAt),
		Nqn:         vda.ArrayNQN(da.ID),
	}
}

func roleOf(primary bool) vdav1.CntlrRole {
	if primary {
		return vdav1.CntlrRole_CNTLR_ROLE_PRIMARY
	}
	return vdav1.CntlrRole_CNTLR_ROLE_SECONDARY
}

func expOf(daName string, da store.DA, exp store.Exp) *vdav1.Exp {
	return &vdav1.Exp{
		Id:          string(exp.ID),
		DaName:      daName,
		Name:        exp.Name,
		HostNqn:     exp.HostNQN,
		Description: exp.Description,
		Generation:  exp.Generation,
		CreatedAtMs: msOf(exp.CreatedAt),
		TargetNqn:   vda.ArrayNQN(da.ID),
	}
}
