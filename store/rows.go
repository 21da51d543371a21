package store

import (
	"time"

	"github.com/uptrace/bun"
	"github.com/virtual-disk-array/vda"
)

// Row types map tables to Go; they never leave this package. Times are Unix
// milliseconds.

type nodeKind string

const (
	kindDN nodeKind = "dn"
	kindCN nodeKind = "cn"
)

type nodeRow struct {
	bun.BaseModel `bun:"table:node,alias:node"`

	ID          string   `bun:"id,pk"`
	Kind        nodeKind `bun:"kind"`
	Name        string   `bun:"name"`
	AgentAddr   string   `bun:"agent_addr"`
	TrType      string   `bun:"trtype"`
	AdrFam      string   `bun:"adrfam"`
	TrAddr      string   `bun:"traddr"`
	TrSvcID     string   `bun:"trsvcid"`
	Location    string   `bun:"location"`
	Offline     bool     `bun:"offline"`
	HashCode    uint32   `bun:"hash_code"`
	Description string   `bun:"description"`
	Generation  uint64   `bun:"generation"`
	CreatedAt   int64    `bun:"created_at"`
}

func (r *nodeRow) spec() NodeSpec {
	return NodeSpec{
		Name:        r.Name,
		AgentAddr:   r.AgentAddr,
		Listener:    Listener{TrType: r.TrType, AdrFam: r.AdrFam, TrAddr: r.TrAddr, TrSvcID: r.TrSvcID},
		Location:    r.Location,
		Offline:     r.Offline,
		HashCode:    r.HashCode,
		Description: r.Description,
		Generation:  r.Generation,
		CreatedAt:   fromMillis(r.CreatedAt),
	}
}

func newNodeRow(kind nodeKind, id string, s NodeSpec) *nodeRow {
	return &nodeRow{
		ID:          id,
		Kind:        kind,
		Name:        s.Name,
		AgentAddr:   s.AgentAddr,
		TrType:      s.Listener.TrType,
		AdrFam:      s.Listener.AdrFam,
		TrAddr:      s.Listener.TrAddr,
		TrSvcID:     s.Listener.TrSvcID,
		Location:    s.Location,
		Offline:     s.Offline,
		HashCode:    s.HashCode,
		Description: s.Description,
		Generation:  s.Generation,
		CreatedAt:   millis(s.CreatedAt),
	}
}

type nodeStatusRow struct {
	bun.BaseModel `bun:"table:node_status,alias:ns"`

	NodeID            string `bun:"node_id,pk"`
	Health            Health `bun:"health"`
	Error             string `bun:"error"`
	Generation        uint64 `bun:"generation"`
	AppliedGeneration uint64 `bun:"applied_generation"`
	ReportedAt        int64  `bun:"reported_at"`
}

func (r *nodeStatusRow) status() NodeStatus {
	return NodeStatus{
		Health:            r.Health,
		Error:             r.Error,
		Generation:        r.Generation,
		AppliedGeneration: r.AppliedGeneration,
		ReportedAt:        fromMillis(r.ReportedAt),
	}
}

type pdRow struct {
	bun.BaseModel `bun:"table:pd,alias:pd"`

	ID          string `bun:"id,pk"`
	DNID        string `bun:"dn_id"`
	Name        string `bun:"name"`
	Kind        PDKind `bun:"kind"`
	Size        uint64 `bun:"size"`
	Path        string `bun:"path"`
	PCIeAddr    string `bun:"pcie_addr"`
	Offline     bool   `bun:"offline"`
	Description string `bun:"description"`
	CapEstimate uint64 `bun:"capacity_estimate"`
	Allocated   uint64 `bun:"allocated"`
	Generation  uint64 `bun:"generation"`
	CreatedAt   int64  `bun:"created_at"`
}

func (r *pdRow) pd() PD {
	return PD{
		ID: vda.PDID(r.ID), DNID: vda.DNID(r.DNID), Name: r.Name, Kind: r.Kind, Size: r.Size,
		Path: r.Path, PCIeAddr: r.PCIeAddr, Offline: r.Offline, Description: r.Description,
		CapacityEstimate: r.CapEstimate, Allocated: r.Allocated, Generation: r.Generation, CreatedAt: fromMillis(r.CreatedAt),
	}
}

type pdStatusRow struct {
	bun.BaseModel `bun:"table:pd_status,alias:pds"`

	PDID       string `bun:"pd_id,pk"`
	Health     Health `bun:"health"`
	Error      string `bun:"error"`
	ReportedAt int64  `bun:"reported_at"`
	Capacity   uint64 `bun:"capacity"`
	Free       uint64 `bun:"free"`
}

func (r *pdStatusRow) status() PDStatus {
	return PDStatus{Health: r.Health, Error: r.Error, ReportedAt: fromMillis(r.ReportedAt), Capacity: r.Capacity, Free: r.Free}
}

type daRow struct {
	bun.BaseModel `bun:"table:da,alias:da"`

	ID          string    `bun:"id,pk"`
	Name        string    `bun:"name"`
	Size        uint64    `bun:"size"`
	RaidLevel   RaidLevel `bun:"raid_level"`
	VDCount     uint32    `bun:"vd_count"`
	StripSizeKB uint32    `bun:"strip_size_kb"`
	CntlrCount  uint32    `bun:"cntlr_count"`
	Description string    `bun:"description"`
	Generation  uint64    `bun:"generation"`
	CreatedAt   int64     `bun:"created_at"`
}

func (r *daRow) da() DA {
	return DA{
		ID: vda.DAID(r.ID), Name: r.Name, Size: r.Size, RaidLevel: r.RaidLevel, VDCount: r.VDCount,
		StripSizeKB: r.StripSizeKB, CntlrCount: r.CntlrCount, Description: r.Description,
		Generation: r.Generation, CreatedAt: fromMillis(r.CreatedAt),
	}
}

type vdRow struct {
	bun.BaseModel `bun:"table:vd,alias:vd"`

	ID    string `bun:"id,pk"`
	DAID  string `bun:"da_id"`
	Index uint32 `bun:"idx"`
	DNID  string `bun:"dn_id"`
	PDID  string `bun:"pd_id"`
	Size  uint64 `bun:"size"`
}

func (r *vdRow) vd() VD {
	return VD{ID: vda.VDID(r.ID), DAID: vda.DAID(r.DAID), Index: r.Index, DNID: vda.DNID(r.DNID), PDID: vda.PDID(r.PDID), Size: r.Size}
}

type cntlrRow struct {
	bun.BaseModel `bun:"table:cntlr,alias:cntlr"`

	ID      string `bun:"id,pk"`
	DAID    string `bun:"da_id"`
	Index   uint32 `bun:"idx"`
	CNID    string `bun:"cn_id"`
	Primary bool   `bun:"is_primary"`
}

func (r *cntlrRow) cntlr() Cntlr {
	return Cntlr{ID: vda.CntlrID(r.ID), DAID: vda.DAID(r.DAID), Index: r.Index, CNID: vda.CNID(r.CNID), Primary: r.Primary}
}

// objStatusRow is the shape of vd_status and cntlr_status; queries name the
// table and key column.
type objStatusRow struct {
	ID         string `bun:"id"`
	Health     Health `bun:"health"`
	Error      string `bun:"error"`
	ReportedAt int64  `bun:"reported_at"`
}

func (r *objStatusRow) status() ObjStatus {
	return ObjStatus{Health: r.Health, Error: r.Error, ReportedAt: fromMillis(r.ReportedAt)}
}

type expRow struct {
	bun.BaseModel `bun:"table:exp,alias:exp"`

	ID          string `bun:"id,pk"`
	DAID        string `bun:"da_id"`
	Name        string `bun:"name"`
	HostNQN     string `bun:"host_nqn"`
	Description string `bun:"description"`
	Generation  uint64 `bun:"generation"`
	CreatedAt   int64  `bun:"created_at"`
}

func (r *expRow) exp() Exp {
	return Exp{
		ID: vda.ExpID(r.ID), DAID: vda.DAID(r.DAID), Name: r.Name, HostNQN: r.HostNQN,
		Description: r.Description, Generation: r.Generation, CreatedAt: fromMillis(r.CreatedAt),
	}
}

func fromMillis(ms int64) time.Time {
	if ms == 0 {
		return time.Time{}
	}
	return time.UnixMilli(ms).UTC()
}

func millis(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}
