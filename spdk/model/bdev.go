package model

import (
	"context"
	"slices"
	"sync/atomic"
	"time"
)

// bdev is one registered block device. Its module (malloc, lvol, raid,
// NVMe namespace, ...) owns it and supplies what differs between kinds;
// claim points at the object built on top of it, if any.
type bdev struct {
	name string
	// aliases are the other names reported: the uuid, or for an lvol
	// "lvs/lvol" only. The uuid always resolves, reported or not.
	aliases   []string
	uuid      string
	blockSize uint32
	numBlocks uint64
	module    bdevModule
	claim     *claim
	qos       rateLimits
	// qosStuck models SPDK refusing every QoS change with EAGAIN after a
	// first enable on a bdev without I/O channels.
	qosStuck bool
	// gone is set once the bdev is unregistered, to stop cascades from
	// coming back to it; dead too, for the data path, which reads it
	// without the target's lock.
	gone bool
	dead atomic.Bool
	seq  uint64
	// t is the target the bdev is registered on.
	t     *Target
	stats ioStats
	// limiter enforces qos on the data path; nil: unlimited.
	limiter atomic.Pointer[qosLimiter]
}

// bdevModule is the part of a bdev that depends on the module owning it.
type bdevModule interface {
	moduleName() string
	productName() string
	ioTypes() ioTypes
	// hasNuma says whether numa_id is reported.
	hasNuma() bool
	// memoryDomains are the domains reported (nil: no memory_domains key).
	memoryDomains() []string
	// baseDomains are the domains a bdev built on this one inherits.
	baseDomains() []string
	// driverSpecific is the driver_specific object.
	driverSpecific(t *Target) any
}

// A holder is an object that claims bdevs (lvstore, raid, namespace). SPDK
// does not refuse to delete a claimed bdev: it hot-removes it from its
// holder, which then does what its module does (tear down, degrade, drop
// the namespace).
type holder interface {
	hotRemove(t *Target, b *bdev)
}

type claim struct {
	typ    string // "exclusive_write" or "read_many_write_one"
	holder holder
}

const (
	claimExclusiveWrite   = "exclusive_write"
	claimReadManyWriteOne = "read_many_write_one"
)

// lookup finds a bdev by name, uuid or alias.
func (t *Target) lookup(name string) *bdev {
	if name == "" {
		return nil
	}
	return t.names[name]
}

// register adds b, whose name, uuid and aliases must all be free (-17
// otherwise, as names and aliases share one namespace), then lets waiting
// raids examine it.
func (t *Target) register(b *bdev) error {
	keys := b.keys()
	for _, k := range keys {
		if t.names[k] != nil {
			return errExist
		}
	}
	for i, k := range keys {
		if slices.Contains(keys[:i], k) {
			return errExist
		}
	}
	t.seq++
	b.seq, b.t = t.seq, t
	t.bdevs = append(t.bdevs, b)
	for _, k := range keys {
		t.names[k] = b
	}
	close(t.changed)
	t.changed = make(chan struct{})
	t.examine(b)
	return nil
}

// errExist is what register fails with; callers turn it into their
// method's error object.
var errExist = errorString("File exists")

type errorString string

func (e errorString) Error() string { return string(e) }

// keys are every name b answers to.
func (b *bdev) keys() []string {
	keys := []string{b.name}
	if b.uuid != "" && b.uuid != b.name {
		keys = append(keys, b.uuid)
	}
	for _, a := range b.aliases {
		if a != b.uuid {
			keys = append(keys, a)
		}
	}
	return keys
}

// unregister removes b, first hot-removing it from its holder.
func (t *Target) unregister(b *bdev) {
	if b.gone {
		return
	}
	b.gone = true
	b.dead.Store(true)
	if c, ok := b.module.(interface{ close() }); ok {
		c.close()
	}
	if c := b.claim; c != nil {
		b.claim = nil
		c.holder.hotRemove(t, b)
	}
	for _, k := range b.keys() {
		if t.names[k] == b {
			delete(t.names, k)
		}
	}
	t.bdevs = slices.DeleteFunc(t.bdevs, func(x *bdev) bool { return x == b })
}

// claimBdev claims b for h; a bdev already claimed cannot be claimed again.
func (t *Target) claimBdev(b *bdev, typ string, h holder) bool {
	if b.claim != nil {
		return false
	}
	b.claim = &claim{typ: typ, holder: h}
	return true
}

// release drops h's claim on b.
func (b *bdev) release(h holder) {
	if b.claim != nil && b.claim.holder == h {
		b.claim = nil
	}
}

// hasIOChannel says whether something does I/O on b. Only an exported
// bdev is known to have channels; it matters for QoS.
func (b *bdev) hasIOChannel() bool {
	if b.claim == nil {
		return false
	}
	_, ok := b.claim.holder.(*namespace)
	return ok
}

func (b *bdev) sizeBytes() uint64 { return uint64(b.blockSize) * b.numBlocks }

// examine offers a new bdev to the modules that wait for bdevs by name,
// configuring raids, then to the lvol module, which loads an lvstore the
// bdev holds (lvoldata.go).
func (t *Target) examine(b *bdev) {
	for _, r := range slices.Clone(t.raids) {
		r.examine(t, b)
	}
	t.examineLvs(b)
}

type rateLimits struct {
	RWIOsPerSec    uint64 `json:"rw_ios_per_sec"`
	RWMBytesPerSec uint64 `json:"rw_mbytes_per_sec"`
	RMBytesPerSec  uint64 `json:"r_mbytes_per_sec"`
	WMBytesPerSec  uint64 `json:"w_mbytes_per_sec"`
}

// ioTypes is supported_io_types, in SPDK's key order.
type ioTypes struct {
	Read              bool `json:"read"`
	Write             bool `json:"write"`
	Unmap             bool `json:"unmap"`
	Flush             bool `json:"flush"`
	Reset             bool `json:"reset"`
	NvmeAdmin         bool `json:"nvme_admin"`
	NvmeIO            bool `json:"nvme_io"`
	NvmeIOMd          bool `json:"nvme_io_md"`
	WriteZeroes       bool `json:"write_zeroes"`
	Zcopy             bool `json:"zcopy"`
	GetZoneInfo       bool `json:"get_zone_info"`
	ZoneManagement    bool `json:"zone_management"`
	ZoneAppend        bool `json:"zone_append"`
	Compare           bool `json:"compare"`
	CompareAndWrite   bool `json:"compare_and_write"`
	Abort             bool `json:"abort"`
	SeekHole          bool `json:"seek_hole"`
	SeekData          bool `json:"seek_data"`
	Copy              bool `json:"copy"`
	NvmeIovMd         bool `json:"nvme_iov_md"`
	NvmeNssr          bool `json:"nvme_nssr"`
	WriteUncorrectabl bool `json:"write_uncorrectable"`
}

type memoryDomain struct {
	DmaDeviceType string `json:"dma_device_type"`
}

// bdevJSON is one bdev_get_bdevs entry, in SPDK's key order.
type bdevJSON struct {
	Name                      string         `json:"name"`
	Aliases                   []string       `json:"aliases"`
	ProductName               string         `json:"product_name"`
	BlockSize                 uint32         `json:"block_size"`
	NumBlocks                 uint64         `json:"num_blocks"`
	PreferredWriteAlignment   uint32         `json:"preferred_write_alignment"`
	PreferredWriteGranularity uint32         `json:"preferred_write_granularity"`
	OptimalWriteSize          uint32         `json:"optimal_write_size"`
	PreferredUnmapAlignment   uint32         `json:"preferred_unmap_alignment"`
	PreferredUnmapGranularity uint32         `json:"preferred_unmap_granularity"`
	UUID                      string         `json:"uuid"`
	NumaID                    *int           `json:"numa_id,omitempty"`
	AssignedRateLimits        rateLimits     `json:"assigned_rate_limits"`
	Claimed                   bool           `json:"claimed"`
	ClaimType                 string         `json:"claim_type,omitempty"`
	Zoned                     bool           `json:"zoned"`
	SupportedIOTypes          ioTypes        `json:"supported_io_types"`
	MemoryDomains             []memoryDomain `json:"memory_domains,omitempty"`
	DriverSpecific            any            `json:"driver_specific"`
}

// writeHints are the preferred_* and optimal_write_size fields, which only
// NVMe namespaces set.
type writeHints interface {
	writeHints(b *bdev) (align, gran, optimal, unmapAlign, unmapGran uint32)
}

func (t *Target) bdevJSON(b *bdev) bdevJSON {
	j := bdevJSON{
		Name:               b.name,
		Aliases:            b.aliases,
		ProductName:        b.module.productName(),
		BlockSize:          b.blockSize,
		NumBlocks:          b.numBlocks,
		UUID:               b.uuid,
		AssignedRateLimits: b.qos,
		Claimed:            b.claim != nil,
		SupportedIOTypes:   b.module.ioTypes(),
		DriverSpecific:     b.module.driverSpecific(t),
	}
	if j.Aliases == nil {
		j.Aliases = []string{}
	}
	if w, ok := b.module.(writeHints); ok {
		j.PreferredWriteAlignment, j.PreferredWriteGranularity, j.OptimalWriteSize,
			j.PreferredUnmapAlignment, j.PreferredUnmapGranularity = w.writeHints(b)
	}
	if b.module.hasNuma() {
		n := -1
		j.NumaID = &n
	}
	if b.claim != nil {
		j.ClaimType = b.claim.typ
	}
	for _, d := range b.module.memoryDomains() {
		j.MemoryDomains = append(j.MemoryDomains, memoryDomain{DmaDeviceType: d})
	}
	return j
}

// bdevGetBdevs: bdev_get_bdevs {name?, timeout?}. Asynchronous: with a
// timeout (ms) it waits for the bdev to appear, then fails with -110.
func bdevGetBdevs(ctx context.Context, t *Target, r *request) (any, error) {
	var p struct {
		Name    string `json:"name"`
		Timeout uint64 `json:"timeout"`
	}
	if err := r.decode(&p); err != nil {
		return nil, err
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.probeLinks()
	t.poll()
	if p.Name == "" {
		out := make([]bdevJSON, 0, len(t.bdevs))
		for _, b := range t.bdevs {
			out = append(out, t.bdevJSON(b))
		}
		return out, nil
	}
	var timer *time.Timer
	for {
		if b := t.lookup(p.Name); b != nil {
			return []bdevJSON{t.bdevJSON(b)}, nil
		}
		if p.Timeout == 0 {
			return nil, r.errno(eNODEV)
		}
		if timer == nil {
			timer = time.NewTimer(time.Duration(p.Timeout) * time.Millisecond)
			defer timer.Stop()
		}
		changed := t.changed
		t.mu.Unlock()
		select {
		case <-changed:
			t.mu.Lock()
			t.poll()
		case <-timer.C:
			t.mu.Lock()
			return nil, r.errno(eTIMEDOUT)
		case <-ctx.Done():
			t.mu.Lock()
			return nil, ctx.Err()
		}
	}
}

// bdevExamine: bdev_examine {name}. With auto-examine on (SPDK's default,
// and the only mode of v26.05's bdev_set_options) it always fails with
// -22, even for an existing bdev.
func bdevExamine(_ context.Context, _ *Target, r *request) (any, error) {
	var p struct {
		Name string `json:"name"`
	}
	if err := r.decode(&p, "name"); err != nil {
		return nil, err
	}
	return nil, r.errno(eINVAL)
}

// bdevWaitForExamine: bdev_wait_for_examine takes no params; examine is
// immediate in the model.
func bdevWaitForExamine(_ context.Context, _ *Target, r *request) (any, error) {
	if err := r.noParams(); err != nil {
		return nil, err
	}
	return true, nil
}

// bdevSetQosLimit: bdev_set_qos_limit {name, rw_ios_per_sec?,
// rw_mbytes_per_sec?, r_mbytes_per_sec?, w_mbytes_per_sec?}.
func bdevSetQosLimit(_ context.Context, t *Target, r *request) (any, error) {
	var p struct {
		Name           string  `json:"name"`
		RWIOsPerSec    *uint64 `json:"rw_ios_per_sec"`
		RWMBytesPerSec *uint64 `json:"rw_mbytes_per_sec"`
		RMBytesPerSec  *uint64 `json:"r_mbytes_per_sec"`
		WMBytesPerSec  *uint64 `json:"w_mbytes_per_sec"`
	}
	if err := r.decode(&p, "name"); err != nil {
		return nil, err
	}
	b := t.lookup(p.Name)
	if b == nil {
		return nil, r.errno(eNODEV)
	}
	if p.RWIOsPerSec == nil && p.RWMBytesPerSec == nil && p.RMBytesPerSec == nil && p.WMBytesPerSec == nil {
		return nil, r.err(eINVAL, "No rate limits specified")
	}
	if b.qosStuck {
		return nil, r.err(-32602, "Failed to configure rate limit: Resource temporarily unavailable")
	}
	next := b.qos
	if p.RWIOsPerSec != nil {
		// SPDK rounds IOPS up to its 1000-IOPS granule.
		next.RWIOsPerSec = (*p.RWIOsPerSec + 999) / 1000 * 1000
	}
	if p.RWMBytesPerSec != nil {
		next.RWMBytesPerSec = *p.RWMBytesPerSec
	}
	if p.RMBytesPerSec != nil {
		next.RMBytesPerSec = *p.RMBytesPerSec
	}
	if p.WMBytesPerSec != nil {
		next.WMBytesPerSec = *p.WMBytesPerSec
	}
	enabled := b.qos != rateLimits{}
	enabling := next != rateLimits{}
	if !b.hasIOChannel() && !enabled && enabling {
		// The enable completes, but the "modification in progress" flag is
		// never cleared on a bdev without channels.
		b.qosStuck = true
	}
	b.qos = next
	b.limiter.Store(newQosLimiter(next))
	return true, nil
}

// Iostat: SPDK's tick rate on the reference machine, used to turn the
// clock into ticks.
const tickRate = 2600000000

type iostatJSON struct {
	TickRate uint64          `json:"tick_rate"`
	Ticks    uint64          `json:"ticks"`
	Bdevs    []bdevStatsJSON `json:"bdevs"`
}

type iostatChannelsJSON struct {
	TickRate uint64 `json:"tick_rate"`
	Ticks    uint64 `json:"ticks"`
	Name     string `json:"name"`
	Channels []any  `json:"channels"`
}

type bdevStatsJSON struct {
	Name                 string   `json:"name"`
	BytesRead            uint64   `json:"bytes_read"`
	NumReadOps           uint64   `json:"num_read_ops"`
	BytesWritten         uint64   `json:"bytes_written"`
	NumWriteOps          uint64   `json:"num_write_ops"`
	BytesUnmapped        uint64   `json:"bytes_unmapped"`
	NumUnmapOps          uint64   `json:"num_unmap_ops"`
	BytesCopied          uint64   `json:"bytes_copied"`
	NumCopyOps           uint64   `json:"num_copy_ops"`
	ReadLatencyTicks     uint64   `json:"read_latency_ticks"`
	MaxReadLatencyTicks  uint64   `json:"max_read_latency_ticks"`
	MinReadLatencyTicks  uint64   `json:"min_read_latency_ticks"`
	WriteLatencyTicks    uint64   `json:"write_latency_ticks"`
	MaxWriteLatencyTicks uint64   `json:"max_write_latency_ticks"`
	MinWriteLatencyTicks uint64   `json:"min_write_latency_ticks"`
	UnmapLatencyTicks    uint64   `json:"unmap_latency_ticks"`
	MaxUnmapLatencyTicks uint64   `json:"max_unmap_latency_ticks"`
	MinUnmapLatencyTicks uint64   `json:"min_unmap_latency_ticks"`
	CopyLatencyTicks     uint64   `json:"copy_latency_ticks"`
	MaxCopyLatencyTicks  uint64   `json:"max_copy_latency_ticks"`
	MinCopyLatencyTicks  uint64   `json:"min_copy_latency_ticks"`
	IOError              struct{} `json:"io_error"`
}

// bdevGetIostat: bdev_get_iostat {names?, per_channel?, reset_mode?}: the
// counters of the I/O each bdev served (see io.go).
func bdevGetIostat(_ context.Context, t *Target, r *request) (any, error) {
	var p struct {
		Names      []string `json:"names"`
		PerChannel bool     `json:"per_channel"`
		ResetMode  string   `json:"reset_mode"`
	}
	if err := r.decode(&p); err != nil {
		return nil, err
	}
	ticks := uint64(t.now().Sub(t.start).Seconds() * tickRate)
	var sel []*bdev
	if p.Names == nil {
		sel = t.bdevs
	}
	for _, n := range p.Names {
		b := t.lookup(n)
		if b == nil {
			return nil, r.errno(eNODEV)
		}
		sel = append(sel, b)
	}
	if p.PerChannel {
		name := ""
		if len(sel) > 0 {
			name = sel[0].name
		}
		return iostatChannelsJSON{TickRate: tickRate, Ticks: ticks, Name: name, Channels: []any{}}, nil
	}
	out := iostatJSON{TickRate: tickRate, Ticks: ticks, Bdevs: []bdevStatsJSON{}}
	for _, b := range sel {
		s := &b.stats
		out.Bdevs = append(out.Bdevs, bdevStatsJSON{Name: b.name,
			BytesRead: s.bytesRead.Load(), NumReadOps: s.readOps.Load(),
			BytesWritten: s.bytesWritten.Load(), NumWriteOps: s.writeOps.Load(),
			BytesUnmapped: s.bytesUnmapped.Load(), NumUnmapOps: s.unmapOps.Load(),
			ReadLatencyTicks: s.readTicks.Load(), MaxReadLatencyTicks: s.maxReadTicks.Load(), MinReadLatencyTicks: s.minRead.Load(),
			WriteLatencyTicks: s.writeTicks.Load(), MaxWriteLatencyTicks: s.maxWriteTicks.Load(), MinWriteLatencyTicks: s.minWrite.Load(),
			UnmapLatencyTicks: s.unmapTicks.Load(), MaxUnmapLatencyTicks: s.maxUnmapTicks.Load(), MinUnmapLatencyTicks: s.minUnmap.Load(),
		})
	}
	return out, nil
}
