package store

import (
	"time"

	"github.com/virtual-disk-array/vda"
)

// Listener is an NVMe-oF transport address, spelled as SPDK spells it.
type Listener struct {
	TrType  string
	AdrFam  string
	TrAddr  string
	TrSvcID string
}

// NodeSpec is the desired state of a disk node or controller node, as a user
// set it. Generation increments with every change to the node and with every
// change to what the node holds (pds, vds, controllers, exporters).
type NodeSpec struct {
	Name        string
	AgentAddr   string
	Listener    Listener
	Location    string
	Offline     bool
	HashCode    uint32
	Description string
	Generation  uint64
	CreatedAt   time.Time
}

// DN is a disk node.
type DN struct {
	ID vda.DNID
	NodeSpec
}

// CN is a controller node.
type CN struct {
	ID vda.CNID
	NodeSpec
}

// Health is an observed health, as reported by agents and the monitor.
type Health string

const (
	HealthUnknown Health = "unknown"
	HealthOK      Health = "ok"
	HealthError   Health = "error"
	HealthFailed  Health = "failed"
)

// NodeStatus is what a node's agent (or the monitor, for FAILED) last
// reported. It lives apart from the NodeSpec: writing it never changes the
// node's desired state or generation.
type NodeStatus struct {
	Health Health
	Error  string
	// Generation is the node generation the report describes.
	Generation uint64
	// AppliedGeneration is the highest generation the agent reported applied.
	AppliedGeneration uint64
	ReportedAt        time.Time
}

// PDKind is the SPDK bdev module behind a pd.
type PDKind string

const (
	PDMalloc PDKind = "malloc"
	PDAio    PDKind = "aio"
	PDNvme   PDKind = "nvme"
)

// PD is a physical disk on a dn.
type PD struct {
	ID   vda.PDID
	DNID vda.DNID
	Name string
	Kind PDKind
	// Size is the malloc size in bytes (0 for other kinds).
	Size uint64
	// Path is the aio file or block device.
	Path string
	// PCIeAddr is the nvme controller address.
	PCIeAddr    string
	Offline     bool
	Description string
	// CapacityEstimate is what the pd can give to vds until its agent
	// reports the real capacity (known in advance for malloc pds; 0 for the
	// others, whose size only the dn knows).
	CapacityEstimate uint64
	// Allocated is the sum of the sizes of the vds placed on the pd.
	Allocated  uint64
	Generation uint64
	CreatedAt  time.Time
}

// PDStatus is a pd's reported status.
type PDStatus struct {
	Health     Health
	Error      string
	ReportedAt time.Time
	// Capacity and Free are the lvstore's reported bytes; 0 until reported.
	Capacity uint64
	Free     uint64
}

// ObjStatus is the reported status of a vd or controller.
type ObjStatus struct {
	Health     Health
	Error      string
	ReportedAt time.Time
}

// RaidLevel names how an array spreads data over its vds.
type RaidLevel string

// Raid0 stripes without redundancy.
const Raid0 RaidLevel = "raid0"

// DA is a disk array.
type DA struct {
	ID          vda.DAID
	Name        string
	Size        uint64
	RaidLevel   RaidLevel
	VDCount     uint32
	StripSizeKB uint32
	CntlrCount  uint32
	Description string
	Generation  uint64
	CreatedAt   time.Time
}

// VD is one virtual disk of an array: an lvol on a pd.
type VD struct {
	ID    vda.VDID
	DAID  vda.DAID
	Index uint32
	DNID  vda.DNID
	PDID  vda.PDID
	Size  uint64
}

// Cntlr is one controller of an array, on a cn.
type Cntlr struct {
	ID      vda.CntlrID
	DAID    vda.DAID
	Index   uint32
	CNID    vda.CNID
	Primary bool
}

// Exp is an exporter: one host NQN allowed to reach one array.
type Exp struct {
	ID          vda.ExpID
	DAID        vda.DAID
	Name        string
	HostNQN     string
	Description string
	Generation  uint64
	CreatedAt   time.Time
}

// Page selects one page of a list ordered by name: names after After, at
// most Limit of them (0 means no limit).
type Page struct {
	After string
	Limit int
}

// Counts is a cluster-wide tally.
type Counts struct {
	DNs, PDs, CNs, DAs, Exps, VDs, Cntlrs int
}
