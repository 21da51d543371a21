package spdk

import "context"

// Clear methods for lvstores and lvols: what SPDK does to the blocks of a
// freed cluster.
const (
	ClearNone        = "none"
	ClearUnmap       = "unmap"
	ClearWriteZeroes = "write_zeroes"
)

// LvolDriverSpecific is the "lvol" part of an lvol bdev's driver_specific.
type LvolDriverSpecific struct {
	LvolStoreUUID        string `json:"lvol_store_uuid"`
	BaseBdev             string `json:"base_bdev"`
	ThinProvision        bool   `json:"thin_provision"`
	NumAllocatedClusters uint64 `json:"num_allocated_clusters"`
	Snapshot             bool   `json:"snapshot"`
	Clone                bool   `json:"clone"`
	// Clones names the lvols cloned from this snapshot.
	Clones []string `json:"clones,omitempty"`
	// BaseSnapshot names the snapshot a clone comes from.
	BaseSnapshot string `json:"base_snapshot,omitempty"`
	EsnapClone   bool   `json:"esnap_clone"`
}

// BdevLvolCreateLvstoreRequest creates an lvstore on a base bdev.
type BdevLvolCreateLvstoreRequest struct {
	BdevName string `json:"bdev_name"`
	LvsName  string `json:"lvs_name"`
	// ClusterSize in bytes, a power of two; 0 means SPDK's 4 MiB.
	ClusterSize uint32 `json:"cluster_sz,omitempty"`
	// ClearMethod is one of the Clear* constants; "" means SPDK's default.
	ClearMethod string `json:"clear_method,omitempty"`
}

// BdevLvolCreateLvstore creates an lvstore and returns its uuid. The base
// bdev gets claimed read_many_write_one. A claimed base fails with
// ErrNotPermitted, a used lvs name with ErrExist, an unknown bdev with
// ErrNoDevice, a bad cluster size or clear method with ErrInvalid.
func (c *Client) BdevLvolCreateLvstore(ctx context.Context, req BdevLvolCreateLvstoreRequest) (string, error) {
	var uuid string
	err := c.Call(ctx, "bdev_lvol_create_lvstore", req, &uuid)
	return uuid, err
}

// LvstoreSelector names one lvstore, by uuid or by name (exactly one).
type LvstoreSelector struct {
	UUID    string `json:"uuid,omitempty"`
	LvsName string `json:"lvs_name,omitempty"`
}

// BdevLvolDeleteLvstore deletes an lvstore with every lvol, snapshot and
// clone in it (even exported ones) and releases its base bdev. Unknown:
// ErrNoDevice; neither or both selectors: ErrInvalid.
func (c *Client) BdevLvolDeleteLvstore(ctx context.Context, sel LvstoreSelector) error {
	return c.Call(ctx, "bdev_lvol_delete_lvstore", sel, nil)
}

// Lvstore is one lvstore as bdev_lvol_get_lvstores reports it.
type Lvstore struct {
	UUID              string `json:"uuid"`
	Name              string `json:"name"`
	BaseBdev          string `json:"base_bdev"`
	TotalDataClusters uint64 `json:"total_data_clusters"`
	// FreeClusters drops for thick lvols at creation, for thin ones only
	// as they are written.
	FreeClusters    uint64 `json:"free_clusters"`
	BlockSize       uint32 `json:"block_size"`
	ClusterSize     uint64 `json:"cluster_size"`
	MaxGrowableSize uint64 `json:"max_growable_size"`
}

// FreeBytes is the space left for thick lvols.
func (l Lvstore) FreeBytes() uint64 { return l.FreeClusters * l.ClusterSize }

// BdevLvolGetLvstores lists lvstores; a zero selector lists all, otherwise
// the one selected (ErrNoDevice if unknown).
func (c *Client) BdevLvolGetLvstores(ctx context.Context, sel LvstoreSelector) ([]Lvstore, error) {
	var lvs []Lvstore
	var params any
	if sel != (LvstoreSelector{}) {
		params = sel
	}
	err := c.Call(ctx, "bdev_lvol_get_lvstores", params, &lvs)
	return lvs, err
}

// BdevLvolCreateRequest creates an lvol in the lvstore chosen by UUID (the
// lvstore's uuid) or LvsName, exactly one of them.
type BdevLvolCreateRequest struct {
	LvolName string `json:"lvol_name"`
	// SizeInMiB is rounded up to whole clusters; 0 is allowed.
	SizeInMiB     uint64 `json:"size_in_mib"`
	ThinProvision bool   `json:"thin_provision,omitempty"`
	ClearMethod   string `json:"clear_method,omitempty"`
	UUID          string `json:"uuid,omitempty"`
	LvsName       string `json:"lvs_name,omitempty"`
}

// BdevLvolCreate creates an lvol and returns its uuid, which is also its
// bdev name (its alias is "lvs/lvol"). A name used in the same lvstore
// fails with ErrExist; a thick lvol that does not fit fails with
// ErrNoSpace (SPDK reports it as -32602 "No space left on device").
func (c *Client) BdevLvolCreate(ctx context.Context, req BdevLvolCreateRequest) (string, error) {
	var uuid string
	err := c.Call(ctx, "bdev_lvol_create", req, &uuid)
	return uuid, err
}

// BdevLvolDelete deletes an lvol by its uuid or "lvs/lvol" alias (a bare
// lvol name is not resolvable: ErrNoDevice). An lvol that is exported or a
// raid member is deleted anyway; a snapshot with more than one clone is
// refused (-32603 "Operation not permitted").
func (c *Client) BdevLvolDelete(ctx context.Context, name string) error {
	return c.Call(ctx, "bdev_lvol_delete", nameParams{Name: name}, nil)
}

// BdevLvolResizeRequest resizes an lvol named by uuid or alias.
type BdevLvolResizeRequest struct {
	Name      string `json:"name"`
	SizeInMiB uint64 `json:"size_in_mib"`
}

// BdevLvolResize grows or shrinks an lvol. Too big: ErrNoSpace; unknown or
// not an lvol: ErrNoDevice.
func (c *Client) BdevLvolResize(ctx context.Context, req BdevLvolResizeRequest) error {
	return c.Call(ctx, "bdev_lvol_resize", req, nil)
}

// BdevLvolGetLvolsRequest filters bdev_lvol_get_lvols by lvstore (at most
// one selector; none lists every lvol).
type BdevLvolGetLvolsRequest struct {
	LvsUUID string `json:"lvs_uuid,omitempty"`
	LvsName string `json:"lvs_name,omitempty"`
}

// Lvol is one lvol as bdev_lvol_get_lvols reports it.
type Lvol struct {
	Alias                string `json:"alias"` // "lvs/lvol"
	UUID                 string `json:"uuid"`  // also the bdev name
	Name                 string `json:"name"`  // the lvol name inside its lvstore
	IsThinProvisioned    bool   `json:"is_thin_provisioned"`
	IsSnapshot           bool   `json:"is_snapshot"`
	IsClone              bool   `json:"is_clone"`
	IsEsnapClone         bool   `json:"is_esnap_clone"`
	IsDegraded           bool   `json:"is_degraded"`
	NumAllocatedClusters uint64 `json:"num_allocated_clusters"`
	Lvs                  LvsRef `json:"lvs"`
}

// LvsRef names the lvstore of an Lvol.
type LvsRef struct {
	Name string `json:"name"`
	UUID string `json:"uuid"`
}

// BdevLvolGetLvols lists lvols; an unknown lvstore fails with ErrNoDevice.
func (c *Client) BdevLvolGetLvols(ctx context.Context, req BdevLvolGetLvolsRequest) ([]Lvol, error) {
	var lvols []Lvol
	var params any
	if req != (BdevLvolGetLvolsRequest{}) {
		params = req
	}
	err := c.Call(ctx, "bdev_lvol_get_lvols", params, &lvols)
	return lvols, err
}

// BdevLvolSnapshot snapshots an lvol (by uuid or alias) and returns the
// snapshot's uuid; the lvol becomes a clone of the snapshot.
func (c *Client) BdevLvolSnapshot(ctx context.Context, lvolName, snapshotName string) (string, error) {
	var uuid string
	err := c.Call(ctx, "bdev_lvol_snapshot", struct {
		LvolName     string `json:"lvol_name"`
		SnapshotName string `json:"snapshot_name"`
	}{lvolName, snapshotName}, &uuid)
	return uuid, err
}

// BdevLvolClone clones a snapshot (by uuid or alias) and returns the
// clone's uuid.
func (c *Client) BdevLvolClone(ctx context.Context, snapshotName, cloneName string) (string, error) {
	var uuid string
	err := c.Call(ctx, "bdev_lvol_clone", struct {
		SnapshotName string `json:"snapshot_name"`
		CloneName    string `json:"clone_name"`
	}{snapshotName, cloneName}, &uuid)
	return uuid, err
}
