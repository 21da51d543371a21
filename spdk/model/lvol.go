package model

import (
	"context"
	"slices"

	"github.com/virtual-disk-array/vda/lvs"
)

// The lvol module: an lvstore (a blobstore) on a base bdev, carved into
// lvols, which are bdevs themselves, plus snapshots and clones.

// lvstore is one logical-volume store. It claims its base bdev
// read_many_write_one and owns its lvols.
type lvstore struct {
	uuid              string
	name              string
	base              *bdev
	clusterSize       uint64
	totalDataClusters uint64
	maxGrowableSize   uint64
	clearMethod       string
	lvols             []*lvol // in creation order
	// store holds the data (lvoldata.go); nil: an lvstore without data.
	store *lvs.Store
}

// lvol is one logical volume; its bdev is registered under its uuid with
// the alias "lvs/name".
type lvol struct {
	lvs       *lvstore
	name      string
	uuid      string
	bdev      *bdev
	thin      bool
	clusters  uint64 // size in clusters
	allocated uint64 // clusters this lvol owns
	snapshot  bool
	parent    *lvol   // the snapshot a clone comes from
	clones    []*lvol // the clones of a snapshot
	// vol is the lvol's data in its lvstore's store; nil for an lvol
	// without data (no store, a snapshot, a clone).
	vol *lvs.Lvol
}

const (
	mib                = 1 << 20
	defaultClusterSize = 4 * mib
	bsPageSize         = 4096
	// bsMaskHeader is sizeof(struct spdk_bs_md_mask) without its bits.
	bsMaskHeader = 5
)

// freeClusters are the clusters not owned by any lvol.
func (s *lvstore) freeClusters() uint64 {
	used := uint64(0)
	for _, l := range s.lvols {
		used += l.allocatedClusters()
	}
	if used > s.totalDataClusters {
		return 0
	}
	return s.totalDataClusters - used
}

// layout computes the blobstore's geometry for a base of size bytes: one
// metadata page per cluster plus the super block and three bit masks
// (pages, clusters, blob ids) are carved off the front; the cluster mask's
// page count also bounds how far the store can grow.
func layout(size, clusterSize uint64) (totalData, maxGrowable uint64) {
	total := size / clusterSize
	maskPages := func(bits uint64) uint64 { return ceilDiv(bsMaskHeader+ceilDiv(bits, 8), bsPageSize) }
	mdPages := total
	pages := 1 + maskPages(mdPages) + maskPages(total) + maskPages(mdPages) + mdPages
	mdClusters := ceilDiv(pages*bsPageSize, clusterSize)
	if mdClusters < total {
		totalData = total - mdClusters
	}
	maxGrowable = (maskPages(total)*bsPageSize - bsMaskHeader) * 8 * clusterSize
	return totalData, maxGrowable
}

func ceilDiv(a, b uint64) uint64 { return (a + b - 1) / b }

// hotRemove: the base bdev went away, and the lvstore with all its lvols
// goes with it.
func (s *lvstore) hotRemove(t *Target, _ *bdev) {
	t.destroyLvstore(s, false)
}

// destroyLvstore removes s and its lvols; erase (bdev_lvol_delete_lvstore)
// also erases its data's superblock, while a hot-removed base is left as
// it is.
func (t *Target) destroyLvstore(s *lvstore, erase bool) {
	for _, l := range slices.Clone(s.lvols) {
		t.unregister(l.bdev)
	}
	s.lvols = nil
	s.closeData(t.log, erase)
	s.base.release(s)
	t.lvstores = slices.DeleteFunc(t.lvstores, func(x *lvstore) bool { return x == s })
}

func (l *lvol) alias() string { return l.lvs.name + "/" + l.name }

// lvol as a bdev module.

func (l *lvol) moduleName() string  { return "lvol" }
func (l *lvol) productName() string { return "Logical Volume" }
func (l *lvol) hasNuma() bool       { return true }
func (l *lvol) ioTypes() ioTypes {
	if l.snapshot {
		return ioTypes{Read: true, Reset: true, SeekHole: true, SeekData: true}
	}
	return ioTypes{Read: true, Write: true, Unmap: true, Reset: true, WriteZeroes: true, SeekHole: true, SeekData: true}
}
func (l *lvol) memoryDomains() []string { return l.lvs.base.module.baseDomains() }
func (l *lvol) baseDomains() []string   { return l.lvs.base.module.baseDomains() }

type lvolDriverJSON struct {
	LvolStoreUUID        string   `json:"lvol_store_uuid"`
	BaseBdev             string   `json:"base_bdev"`
	ThinProvision        bool     `json:"thin_provision"`
	NumAllocatedClusters uint64   `json:"num_allocated_clusters"`
	Snapshot             bool     `json:"snapshot"`
	Clone                bool     `json:"clone"`
	Clones               []string `json:"clones,omitempty"`
	BaseSnapshot         string   `json:"base_snapshot,omitempty"`
	EsnapClone           bool     `json:"esnap_clone"`
}

func (l *lvol) driverSpecific(*Target) any {
	j := lvolDriverJSON{
		LvolStoreUUID:        l.lvs.uuid,
		BaseBdev:             l.lvs.base.name,
		ThinProvision:        l.thin,
		NumAllocatedClusters: l.allocatedClusters(),
		Snapshot:             l.snapshot,
		Clone:                l.parent != nil,
	}
	for _, c := range l.clones {
		j.Clones = append(j.Clones, c.name)
	}
	if l.parent != nil {
		j.BaseSnapshot = l.parent.name
	}
	return struct {
		Lvol lvolDriverJSON `json:"lvol"`
	}{j}
}

// hasClones: a snapshot keeps its clones; the lvol bdev claims nothing.

// lvsByUUIDXorName selects an lvstore as vbdev_get_lvol_store_by_uuid_xor_name
// does: exactly one selector (-22), and it must exist (-19).
func (t *Target) lvsByUUIDXorName(r *request, uuid, name string) (*lvstore, error) {
	if (uuid == "") == (name == "") {
		return nil, r.errno(eINVAL)
	}
	for _, s := range t.lvstores {
		if (uuid != "" && s.uuid == uuid) || (name != "" && s.name == name) {
			return s, nil
		}
	}
	return nil, r.errno(eNODEV)
}

func validClearMethod(m string) bool {
	return m == "" || m == "none" || m == "unmap" || m == "write_zeroes"
}

// bdevLvolCreateLvstore: bdev_lvol_create_lvstore {bdev_name, lvs_name,
// cluster_sz?, clear_method?, num_md_pages_ratio?, md_page_size?}.
func bdevLvolCreateLvstore(_ context.Context, t *Target, r *request) (any, error) {
	var p struct {
		BdevName        string `json:"bdev_name"`
		LvsName         string `json:"lvs_name"`
		ClusterSz       uint32 `json:"cluster_sz"`
		ClearMethod     string `json:"clear_method"`
		NumMdPagesRatio uint32 `json:"num_md_pages_ratio"`
		MdPageSize      uint32 `json:"md_page_size"`
	}
	if err := r.decode(&p, "bdev_name", "lvs_name"); err != nil {
		return nil, err
	}
	if !validClearMethod(p.ClearMethod) {
		return nil, r.err(eINVAL, "Invalid clear_method parameter")
	}
	base := t.lookup(p.BdevName)
	if base == nil {
		return nil, r.errno(eNODEV)
	}
	if base.claim != nil {
		return nil, r.errno(ePERM)
	}
	if p.LvsName == "" || len(p.LvsName) > 63 {
		return nil, r.errno(eINVAL)
	}
	for _, s := range t.lvstores {
		if s.name == p.LvsName {
			return nil, r.errno(eEXIST)
		}
	}
	cs := uint64(p.ClusterSz)
	if cs == 0 {
		cs = defaultClusterSize
	}
	if cs < bsPageSize || cs&(cs-1) != 0 || cs%uint64(base.blockSize) != 0 {
		return nil, r.errno(eINVAL)
	}
	totalData, maxGrowable := layout(base.sizeBytes(), cs)
	if totalData == 0 {
		return nil, r.errno(eNOSPC)
	}
	u := lvs.NewUUID()
	store, err := formatLvs(base, p.LvsName, u, cs, totalData)
	if err != nil {
		return nil, r.errno(lvsErrno(err))
	}
	s := &lvstore{uuid: u.String(), name: p.LvsName, base: base, clusterSize: cs,
		totalDataClusters: totalData, maxGrowableSize: maxGrowable, clearMethod: p.ClearMethod, store: store}
	t.claimBdev(base, claimReadManyWriteOne, s)
	t.lvstores = append(t.lvstores, s)
	return s.uuid, nil
}

type lvstoreSelector struct {
	UUID    string `json:"uuid"`
	LvsName string `json:"lvs_name"`
}

// bdevLvolDeleteLvstore: bdev_lvol_delete_lvstore {uuid? | lvs_name?}
// deletes the lvstore with everything in it, in use or not.
func bdevLvolDeleteLvstore(_ context.Context, t *Target, r *request) (any, error) {
	var p lvstoreSelector
	if err := r.decode(&p); err != nil {
		return nil, err
	}
	s, err := t.lvsByUUIDXorName(r, p.UUID, p.LvsName)
	if err != nil {
		return nil, err
	}
	t.destroyLvstore(s, true)
	return true, nil
}

type lvstoreJSON struct {
	UUID              string `json:"uuid"`
	Name              string `json:"name"`
	BaseBdev          string `json:"base_bdev"`
	TotalDataClusters uint64 `json:"total_data_clusters"`
	FreeClusters      uint64 `json:"free_clusters"`
	BlockSize         uint32 `json:"block_size"`
	ClusterSize       uint64 `json:"cluster_size"`
	MaxGrowableSize   uint64 `json:"max_growable_size"`
}

// bdevLvolGetLvstores: bdev_lvol_get_lvstores {uuid? | lvs_name?}.
func bdevLvolGetLvstores(_ context.Context, t *Target, r *request) (any, error) {
	var p lvstoreSelector
	if err := r.decode(&p); err != nil {
		return nil, err
	}
	sel := t.lvstores
	if p.UUID != "" || p.LvsName != "" {
		s, err := t.lvsByUUIDXorName(r, p.UUID, p.LvsName)
		if err != nil {
			return nil, err
		}
		sel = []*lvstore{s}
	}
	out := make([]lvstoreJSON, 0, len(sel))
	for _, s := range sel {
		out = append(out, lvstoreJSON{UUID: s.uuid, Name: s.name, BaseBdev: s.base.name,
			TotalDataClusters: s.totalDataClusters, FreeClusters: s.freeClusters(),
			BlockSize: s.base.blockSize, ClusterSize: s.clusterSize, MaxGrowableSize: s.maxGrowableSize})
	}
	return out, nil
}

// lvolNameTaken reports whether an lvol (snapshots and clones included) in
// s already has name.
func (s *lvstore) lvolNameTaken(name string) bool {
	return slices.ContainsFunc(s.lvols, func(l *lvol) bool { return l.name == name })
}

// newLvol creates and registers an lvol bdev in s, with uuid ("": a new
// one) and its data vol (nil: none).
func (t *Target) newLvol(s *lvstore, name, uuid string, clusters, allocated uint64, thin bool, vol *lvs.Lvol) (*lvol, error) {
	if uuid == "" {
		uuid = newUUID()
	}
	l := &lvol{lvs: s, name: name, uuid: uuid, thin: thin, clusters: clusters, allocated: allocated, vol: vol}
	l.bdev = &bdev{name: l.uuid, aliases: []string{l.alias()}, uuid: l.uuid, blockSize: s.base.blockSize,
		numBlocks: clusters * s.clusterSize / uint64(s.base.blockSize), module: l}
	if err := t.register(l.bdev); err != nil {
		return nil, err
	}
	s.lvols = append(s.lvols, l)
	return l, nil
}

// bdevLvolCreate: bdev_lvol_create {lvol_name, size_in_mib, thin_provision?,
// clear_method?, uuid? | lvs_name?}.
func bdevLvolCreate(_ context.Context, t *Target, r *request) (any, error) {
	var p struct {
		LvolName      string `json:"lvol_name"`
		SizeInMiB     uint64 `json:"size_in_mib"`
		ThinProvision bool   `json:"thin_provision"`
		ClearMethod   string `json:"clear_method"`
		UUID          string `json:"uuid"`
		LvsName       string `json:"lvs_name"`
	}
	if err := r.decode(&p, "lvol_name", "size_in_mib"); err != nil {
		return nil, err
	}
	if !validClearMethod(p.ClearMethod) {
		return nil, r.err(eINVAL, "Invalid clear_method parameter")
	}
	s, err := t.lvsByUUIDXorName(r, p.UUID, p.LvsName)
	if err != nil {
		return nil, err
	}
	if p.LvolName == "" || len(p.LvolName) > 63 {
		return nil, r.errno(eINVAL)
	}
	if s.lvolNameTaken(p.LvolName) {
		return nil, r.errno(eEXIST)
	}
	clusters := ceilDiv(p.SizeInMiB*mib, s.clusterSize)
	allocated := uint64(0)
	if !p.ThinProvision {
		if clusters > s.freeClusters() {
			// Reported from the completion callback, with the
			// invalid-params code and strerror's text.
			return nil, r.err(-32602, strerror(eNOSPC))
		}
		allocated = clusters
	}
	var (
		vol  *lvs.Lvol
		uuid string
	)
	if s.store != nil {
		// The data's lvol first: its uuid is the bdev's. Its errors come
		// from the completion callback, as the no-space one above.
		if vol, err = s.store.Create(p.LvolName, clusters*s.clusterSize, p.ThinProvision); err != nil {
			return nil, r.err(-32602, strerror(lvsErrno(err)))
		}
		uuid = vol.UUID().String()
	}
	l, err := t.newLvol(s, p.LvolName, uuid, clusters, allocated, p.ThinProvision, vol)
	if err != nil {
		if vol != nil {
			_ = s.store.Delete(p.LvolName)
		}
		return nil, r.errno(eEXIST)
	}
	return l.uuid, nil
}

// lvolOf returns the lvol behind a bdev name or alias (a bare lvol name is
// not a bdev name, so it does not resolve).
func (t *Target) lvolOf(name string) *lvol {
	b := t.lookup(name)
	if b == nil {
		return nil
	}
	l, _ := b.module.(*lvol)
	return l
}

// bdevLvolDelete: bdev_lvol_delete {name}. An lvol in use (exported, raid
// member) is deleted anyway; only a snapshot with more than one clone is
// refused.
func bdevLvolDelete(_ context.Context, t *Target, r *request) (any, error) {
	var p struct {
		Name string `json:"name"`
	}
	if err := r.decode(&p, "name"); err != nil {
		return nil, err
	}
	l := t.lvolOf(p.Name)
	if l == nil {
		return nil, r.errno(eNODEV)
	}
	if len(l.clones) > 1 {
		return nil, r.err(-32603, strerror(ePERM))
	}
	if l.vol != nil {
		if err := l.lvs.store.Delete(l.name); err != nil {
			return nil, r.err(-32603, strerror(lvsErrno(err)))
		}
	}
	t.deleteLvol(l)
	return true, nil
}

// deleteLvol removes an lvol. A snapshot with one clone hands its clusters
// and its own parent to that clone, as the blobstore does.
func (t *Target) deleteLvol(l *lvol) {
	s := l.lvs
	if len(l.clones) == 1 {
		c := l.clones[0]
		c.allocated += l.allocated
		c.parent = l.parent
		if l.parent != nil {
			l.parent.clones = append(l.parent.clones, c)
		}
		l.clones = nil
		l.allocated = 0
	}
	if l.parent != nil {
		l.parent.clones = slices.DeleteFunc(l.parent.clones, func(x *lvol) bool { return x == l })
	}
	t.unregister(l.bdev)
	s.lvols = slices.DeleteFunc(s.lvols, func(x *lvol) bool { return x == l })
}

// bdevLvolResize: bdev_lvol_resize {name, size_in_mib}.
func bdevLvolResize(_ context.Context, t *Target, r *request) (any, error) {
	var p struct {
		Name      string `json:"name"`
		SizeInMiB uint64 `json:"size_in_mib"`
	}
	if err := r.decode(&p, "name", "size_in_mib"); err != nil {
		return nil, err
	}
	l := t.lvolOf(p.Name)
	if l == nil {
		return nil, r.errno(eNODEV)
	}
	if l.snapshot {
		return nil, r.err(-32602, strerror(ePERM))
	}
	s := l.lvs
	clusters := ceilDiv(p.SizeInMiB*mib, s.clusterSize)
	if !l.thin && clusters > l.allocated && clusters-l.allocated > s.freeClusters() {
		return nil, r.err(-32602, strerror(eNOSPC))
	}
	if l.vol != nil {
		if err := s.store.Resize(l.name, clusters*s.clusterSize); err != nil {
			return nil, r.err(-32602, strerror(lvsErrno(err)))
		}
	}
	if !l.thin {
		l.allocated = clusters
	} else if l.allocated > clusters {
		l.allocated = clusters
	}
	l.clusters = clusters
	if n := clusters * s.clusterSize / uint64(l.bdev.blockSize); n != l.bdev.numBlocks {
		l.bdev.numBlocks = n
		t.resized(l.bdev)
	}
	return true, nil
}

type lvolJSON struct {
	Alias                string `json:"alias"`
	UUID                 string `json:"uuid"`
	Name                 string `json:"name"`
	IsThinProvisioned    bool   `json:"is_thin_provisioned"`
	IsSnapshot           bool   `json:"is_snapshot"`
	IsClone              bool   `json:"is_clone"`
	IsEsnapClone         bool   `json:"is_esnap_clone"`
	IsDegraded           bool   `json:"is_degraded"`
	NumAllocatedClusters uint64 `json:"num_allocated_clusters"`
	Lvs                  struct {
		Name string `json:"name"`
		UUID string `json:"uuid"`
	} `json:"lvs"`
}

// bdevLvolGetLvols: bdev_lvol_get_lvols {lvs_uuid? | lvs_name?}.
func bdevLvolGetLvols(_ context.Context, t *Target, r *request) (any, error) {
	var p struct {
		LvsUUID string `json:"lvs_uuid"`
		LvsName string `json:"lvs_name"`
	}
	if err := r.decode(&p); err != nil {
		return nil, err
	}
	sel := t.lvstores
	if p.LvsUUID != "" || p.LvsName != "" {
		s, err := t.lvsByUUIDXorName(r, p.LvsUUID, p.LvsName)
		if err != nil {
			return nil, err
		}
		sel = []*lvstore{s}
	}
	out := []lvolJSON{}
	for _, s := range sel {
		for _, l := range s.lvols {
			j := lvolJSON{Alias: l.alias(), UUID: l.uuid, Name: l.name, IsThinProvisioned: l.thin,
				IsSnapshot: l.snapshot, IsClone: l.parent != nil, NumAllocatedClusters: l.allocatedClusters()}
			j.Lvs.Name, j.Lvs.UUID = s.name, s.uuid
			out = append(out, j)
		}
	}
	return out, nil
}

// bdevLvolSnapshot: bdev_lvol_snapshot {lvol_name, snapshot_name}. The
// snapshot takes the lvol's clusters; the lvol becomes its clone.
func bdevLvolSnapshot(_ context.Context, t *Target, r *request) (any, error) {
	var p struct {
		LvolName     string `json:"lvol_name"`
		SnapshotName string `json:"snapshot_name"`
	}
	if err := r.decode(&p, "lvol_name", "snapshot_name"); err != nil {
		return nil, err
	}
	l := t.lvolOf(p.LvolName)
	if l == nil {
		return nil, r.errno(eNODEV)
	}
	s := l.lvs
	if p.SnapshotName == "" || len(p.SnapshotName) > 63 {
		return nil, r.errno(eINVAL)
	}
	if s.lvolNameTaken(p.SnapshotName) {
		return nil, r.errno(eEXIST)
	}
	// Snapshots and clones have no data: lvs has no shared clusters. The
	// lvol keeps its own data (what it reads is what it read before).
	snap, err := t.newLvol(s, p.SnapshotName, "", l.clusters, l.allocatedClusters(), l.thin, nil)
	if err != nil {
		return nil, r.errno(eEXIST)
	}
	snap.snapshot = true
	snap.parent = l.parent
	if l.parent != nil {
		l.parent.clones = slices.DeleteFunc(l.parent.clones, func(x *lvol) bool { return x == l })
		l.parent.clones = append(l.parent.clones, snap)
	}
	snap.clones = []*lvol{l}
	l.parent = snap
	l.allocated = 0
	l.thin = true
	return snap.uuid, nil
}

// bdevLvolClone: bdev_lvol_clone {snapshot_name, clone_name}.
func bdevLvolClone(_ context.Context, t *Target, r *request) (any, error) {
	var p struct {
		SnapshotName string `json:"snapshot_name"`
		CloneName    string `json:"clone_name"`
	}
	if err := r.decode(&p, "snapshot_name", "clone_name"); err != nil {
		return nil, err
	}
	snap := t.lvolOf(p.SnapshotName)
	if snap == nil {
		return nil, r.errno(eNODEV)
	}
	if !snap.snapshot {
		return nil, r.errno(eINVAL)
	}
	s := snap.lvs
	if p.CloneName == "" || len(p.CloneName) > 63 {
		return nil, r.errno(eINVAL)
	}
	if s.lvolNameTaken(p.CloneName) {
		return nil, r.errno(eEXIST)
	}
	c, err := t.newLvol(s, p.CloneName, "", snap.clusters, 0, true, nil)
	if err != nil {
		return nil, r.errno(eEXIST)
	}
	c.parent = snap
	snap.clones = append(snap.clones, c)
	return c.uuid, nil
}
