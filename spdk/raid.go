package spdk

import "context"

// RAID levels accepted by bdev_raid_create (SPDK also accepts "0", "1" and
// "5f"; raid5f is not built into a default nvmf_tgt).
const (
	RaidLevel0      = "raid0"
	RaidLevel1      = "raid1"
	RaidLevelConcat = "concat"
)

// RAID states reported in RaidBdev.State, which are also the categories of
// bdev_raid_get_bdevs (with RaidAll).
const (
	RaidOnline      = "online"
	RaidConfiguring = "configuring"
	RaidOffline     = "offline"
	RaidAll         = "all"
)

// BdevRaidCreateRequest creates a raid bdev.
type BdevRaidCreateRequest struct {
	Name      string `json:"name"`
	RaidLevel string `json:"raid_level"`
	// StripSizeKB is required (a power of two) for raid0 and concat, and
	// must be 0 (omitted) for raid1.
	StripSizeKB uint32 `json:"strip_size_kb,omitempty"`
	// BaseBdevs names the members (names or aliases). Members that do not
	// exist yet are accepted: the raid stays "configuring" until they
	// appear.
	BaseBdevs  []string `json:"base_bdevs"`
	UUID       string   `json:"uuid,omitempty"`
	Superblock bool     `json:"superblock,omitempty"`
}

// BdevRaidCreate creates a raid bdev (the result is just true). Errors
// carry SPDK's "Failed to create RAID bdev X: ..." text: a used name is
// ErrExist, a claimed member ErrNotPermitted (nothing is left behind), a
// bad strip size, level or member list ErrInvalid.
func (c *Client) BdevRaidCreate(ctx context.Context, req BdevRaidCreateRequest) error {
	return c.Call(ctx, "bdev_raid_create", req, nil)
}

// BdevRaidDelete deletes a raid in any state and releases its members;
// an unknown raid is ErrNoDevice ("raid bdev X not found").
func (c *Client) BdevRaidDelete(ctx context.Context, name string) error {
	return c.Call(ctx, "bdev_raid_delete", nameParams{Name: name}, nil)
}

// RaidBdev is one raid as bdev_raid_get_bdevs reports it (and, without
// Name, as the "raid" part of its bdev's driver_specific).
type RaidBdev struct {
	Name string `json:"name,omitempty"`
	// UUID is all zeroes while the raid is configuring.
	UUID                    string     `json:"uuid"`
	StripSizeKB             uint32     `json:"strip_size_kb"`
	State                   string     `json:"state"`
	RaidLevel               string     `json:"raid_level"`
	Superblock              bool       `json:"superblock"`
	NumBaseBdevs            int        `json:"num_base_bdevs"`
	NumBaseBdevsDiscovered  int        `json:"num_base_bdevs_discovered"`
	NumBaseBdevsOperational int        `json:"num_base_bdevs_operational"`
	BaseBdevsList           []RaidBase `json:"base_bdevs_list"`
}

// RaidBase is one member slot of a raid.
type RaidBase struct {
	// Name is nil for a slot whose bdev was removed.
	Name         *string `json:"name"`
	UUID         string  `json:"uuid"`
	IsConfigured bool    `json:"is_configured"`
	DataOffset   uint64  `json:"data_offset"`
	DataSize     uint64  `json:"data_size"`
}

// BdevRaidGetBdevs lists the raids in a category (RaidAll, RaidOnline,
// RaidConfiguring, RaidOffline; required). An offline raid is listed here
// but is no longer a bdev.
func (c *Client) BdevRaidGetBdevs(ctx context.Context, category string) ([]RaidBdev, error) {
	var raids []RaidBdev
	err := c.Call(ctx, "bdev_raid_get_bdevs", struct {
		Category string `json:"category"`
	}{category}, &raids)
	return raids, err
}
