package spdk

import (
	"context"
	"fmt"
)

// This file holds the bdev-layer methods: the generic bdev queries and
// settings, and the malloc, null and aio modules that make base bdevs.

// Claim types reported in Bdev.ClaimType.
const (
	// ClaimExclusiveWrite is taken by a raid on its members and by an
	// NVMe-oF namespace on its bdev.
	ClaimExclusiveWrite = "exclusive_write"
	// ClaimReadManyWriteOne is taken by an lvstore on its base bdev.
	ClaimReadManyWriteOne = "read_many_write_one"
)

// Product names reported in Bdev.ProductName, one per bdev module.
const (
	ProductMalloc = "Malloc disk"
	ProductNull   = "Null disk"
	ProductAio    = "AIO disk"
	ProductLvol   = "Logical Volume"
	ProductRaid   = "Raid Volume"
	ProductNvme   = "NVMe disk"
)

// Bdev is one block device as bdev_get_bdevs reports it. Only the fields a
// control plane needs are decoded; others are ignored.
type Bdev struct {
	// Name is the canonical name; for an lvol it is the lvol's uuid.
	Name string `json:"name"`
	// Aliases holds the other names: the uuid for most bdevs, "lvs/lvol"
	// (and not the uuid) for an lvol.
	Aliases     []string `json:"aliases"`
	ProductName string   `json:"product_name"`
	BlockSize   uint32   `json:"block_size"`
	NumBlocks   uint64   `json:"num_blocks"`
	UUID        string   `json:"uuid"`
	// AssignedRateLimits are the QoS limits set by bdev_set_qos_limit; 0
	// means unlimited.
	AssignedRateLimits RateLimits `json:"assigned_rate_limits"`
	// Claimed says that a module holds the bdev (lvstore, raid, NVMe-oF
	// namespace); ClaimType is then one of the Claim* constants.
	Claimed          bool               `json:"claimed"`
	ClaimType        string             `json:"claim_type,omitempty"`
	Zoned            bool               `json:"zoned"`
	SupportedIOTypes map[string]bool    `json:"supported_io_types,omitempty"`
	DriverSpecific   BdevDriverSpecific `json:"driver_specific"`
}

// Size is the bdev's capacity in bytes.
func (b Bdev) Size() uint64 { return uint64(b.BlockSize) * b.NumBlocks }

// RateLimits are a bdev's QoS limits (0: unlimited).
type RateLimits struct {
	RWIOsPerSec    uint64 `json:"rw_ios_per_sec"`
	RWMBytesPerSec uint64 `json:"rw_mbytes_per_sec"`
	RMBytesPerSec  uint64 `json:"r_mbytes_per_sec"`
	WMBytesPerSec  uint64 `json:"w_mbytes_per_sec"`
}

// BdevDriverSpecific holds the module-specific part of a Bdev; at most one
// of its module fields is set.
type BdevDriverSpecific struct {
	Aio  *AioDriverSpecific  `json:"aio,omitempty"`
	Lvol *LvolDriverSpecific `json:"lvol,omitempty"`
	Raid *RaidBdev           `json:"raid,omitempty"`
	// NVMe has one entry per path of an NVMe namespace bdev.
	Nvme     []NvmeNamespacePath `json:"nvme,omitempty"`
	MPPolicy string              `json:"mp_policy,omitempty"`
}

// AioDriverSpecific describes an aio bdev's backing file.
type AioDriverSpecific struct {
	Filename          string `json:"filename"`
	BlockSizeOverride bool   `json:"block_size_override"`
	Readonly          bool   `json:"readonly"`
	Fallocate         bool   `json:"fallocate"`
	Nowait            bool   `json:"nowait"`
}

// BdevGetBdevsRequest filters bdev_get_bdevs.
type BdevGetBdevsRequest struct {
	// Name selects one bdev by name or any alias; "" lists all.
	Name string `json:"name,omitempty"`
	// Timeout, in milliseconds, waits for the named bdev to appear before
	// failing with ErrTimedOut.
	Timeout uint64 `json:"timeout,omitempty"`
}

// BdevGetBdevs lists bdevs. A Name that matches nothing fails with
// ErrNoDevice (not an empty list).
func (c *Client) BdevGetBdevs(ctx context.Context, req BdevGetBdevsRequest) ([]Bdev, error) {
	var bdevs []Bdev
	var params any
	if req != (BdevGetBdevsRequest{}) {
		params = req
	}
	err := c.Call(ctx, "bdev_get_bdevs", params, &bdevs)
	return bdevs, err
}

// BdevGetBdev returns the one bdev called name (or aliased so); an unknown
// name fails with ErrNoDevice.
func (c *Client) BdevGetBdev(ctx context.Context, name string) (Bdev, error) {
	bdevs, err := c.BdevGetBdevs(ctx, BdevGetBdevsRequest{Name: name})
	if err != nil {
		return Bdev{}, err
	}
	if len(bdevs) != 1 {
		return Bdev{}, fmt.Errorf("bdev_get_bdevs %s: %d bdevs: %w", name, len(bdevs), ErrNoDevice)
	}
	return bdevs[0], nil
}

// BdevExamine asks the bdev modules to examine a bdev. With auto-examine
// on (SPDK's default) it always fails with ErrInvalid.
func (c *Client) BdevExamine(ctx context.Context, name string) error {
	return c.Call(ctx, "bdev_examine", nameParams{Name: name}, nil)
}

// BdevWaitForExamine returns once every bdev has been examined.
func (c *Client) BdevWaitForExamine(ctx context.Context) error {
	return c.Call(ctx, "bdev_wait_for_examine", nil, nil)
}

// BdevSetQosLimitRequest sets QoS limits on a bdev. A nil limit is left as
// it is; 0 removes that limit. IOPS are rounded up to a multiple of 1000.
type BdevSetQosLimitRequest struct {
	Name           string  `json:"name"`
	RWIOsPerSec    *uint64 `json:"rw_ios_per_sec,omitempty"`
	RWMBytesPerSec *uint64 `json:"rw_mbytes_per_sec,omitempty"`
	RMBytesPerSec  *uint64 `json:"r_mbytes_per_sec,omitempty"`
	WMBytesPerSec  *uint64 `json:"w_mbytes_per_sec,omitempty"`
}

// BdevSetQosLimit sets QoS limits. With no limit given it fails with
// ErrInvalid. On a bdev with no open I/O channel (neither exported nor
// used), SPDK accepts the first limit and then refuses every change with
// ErrInvalidParams "Failed to configure rate limit: Resource temporarily
// unavailable"; set limits once the bdev is exported.
func (c *Client) BdevSetQosLimit(ctx context.Context, req BdevSetQosLimitRequest) error {
	return c.Call(ctx, "bdev_set_qos_limit", req, nil)
}

// nameParams is the {"name": ...} params object many methods take.
type nameParams struct {
	Name string `json:"name"`
}

// BdevMallocCreateRequest creates a RAM bdev.
type BdevMallocCreateRequest struct {
	// Name of the bdev; "" lets SPDK pick Malloc0, Malloc1, ...
	Name      string `json:"name,omitempty"`
	NumBlocks uint64 `json:"num_blocks"`
	// BlockSize must be a multiple of 512.
	BlockSize uint32 `json:"block_size"`
	// UUID of the bdev; "" generates one.
	UUID string `json:"uuid,omitempty"`
}

// BdevMallocCreate creates a malloc bdev and returns its name. A name or
// uuid already used by any bdev (names and aliases share one namespace)
// fails with ErrExist; a bad size with ErrInvalid.
func (c *Client) BdevMallocCreate(ctx context.Context, req BdevMallocCreateRequest) (string, error) {
	var name string
	err := c.Call(ctx, "bdev_malloc_create", req, &name)
	return name, err
}

// BdevMallocDelete deletes a malloc bdev by name or alias. A bdev that does
// not exist or belongs to another module fails with ErrNoDevice. SPDK does
// not refuse claimed bdevs: whatever sits on top is torn down with it.
func (c *Client) BdevMallocDelete(ctx context.Context, name string) error {
	return c.Call(ctx, "bdev_malloc_delete", nameParams{Name: name}, nil)
}

// BdevNullCreateRequest creates a bdev that discards writes and reads
// zeroes.
type BdevNullCreateRequest struct {
	Name      string `json:"name"`
	NumBlocks uint64 `json:"num_blocks"`
	BlockSize uint32 `json:"block_size"`
	UUID      string `json:"uuid,omitempty"`
}

// BdevNullCreate creates a null bdev and returns its name.
func (c *Client) BdevNullCreate(ctx context.Context, req BdevNullCreateRequest) (string, error) {
	var name string
	err := c.Call(ctx, "bdev_null_create", req, &name)
	return name, err
}

// BdevNullDelete deletes a null bdev; ErrNoDevice if there is none.
func (c *Client) BdevNullDelete(ctx context.Context, name string) error {
	return c.Call(ctx, "bdev_null_delete", nameParams{Name: name}, nil)
}

// BdevAioCreateRequest creates a bdev over a file or block device.
type BdevAioCreateRequest struct {
	Name     string `json:"name"`
	Filename string `json:"filename"`
	// BlockSize is required for regular files: SPDK cannot detect it and
	// fails with ErrInvalid without it.
	BlockSize uint32 `json:"block_size,omitempty"`
	Readonly  bool   `json:"readonly,omitempty"`
	Fallocate bool   `json:"fallocate,omitempty"`
	UUID      string `json:"uuid,omitempty"`
}

// BdevAioCreate creates an aio bdev and returns its name. A missing file
// fails with ErrNoEntry, a used name with ErrExist. Nothing stops two aio
// bdevs from sharing one file.
func (c *Client) BdevAioCreate(ctx context.Context, req BdevAioCreateRequest) (string, error) {
	var name string
	err := c.Call(ctx, "bdev_aio_create", req, &name)
	return name, err
}

// BdevAioDelete deletes an aio bdev; ErrNoDevice if name is not an aio bdev.
func (c *Client) BdevAioDelete(ctx context.Context, name string) error {
	return c.Call(ctx, "bdev_aio_delete", nameParams{Name: name}, nil)
}
