package spdk

import (
	"context"
	"testing"
)

func TestRaidWire(t *testing.T) {
	r1 := "R1"
	runWire(t, []wireCase{
		{
			name: "bdev_raid_create raid0",
			call: func(ctx context.Context, c *Client) (any, error) {
				return nil, c.BdevRaidCreate(ctx, BdevRaidCreateRequest{Name: "r", RaidLevel: RaidLevel0,
					StripSizeKB: 64, BaseBdevs: []string{"R0", "R1"}})
			},
			method: "bdev_raid_create",
			params: `{"name": "r", "raid_level": "raid0", "strip_size_kb": 64, "base_bdevs": ["R0", "R1"]}`,
			result: `true`,
		},
		{
			name: "bdev_raid_create raid1 sends no strip size",
			call: func(ctx context.Context, c *Client) (any, error) {
				return nil, c.BdevRaidCreate(ctx, BdevRaidCreateRequest{Name: "m", RaidLevel: RaidLevel1,
					BaseBdevs: []string{"R5", "R6"}})
			},
			method: "bdev_raid_create", params: `{"name": "m", "raid_level": "raid1", "base_bdevs": ["R5", "R6"]}`,
		},
		{
			name:   "bdev_raid_delete",
			call:   func(ctx context.Context, c *Client) (any, error) { return nil, c.BdevRaidDelete(ctx, "r") },
			method: "bdev_raid_delete", params: `{"name": "r"}`,
		},
		{
			name:   "bdev_raid_get_bdevs",
			call:   func(ctx context.Context, c *Client) (any, error) { return c.BdevRaidGetBdevs(ctx, RaidAll) },
			method: "bdev_raid_get_bdevs", params: `{"category": "all"}`,
			result: `[{"name": "raid0", "uuid": "a9cb", "strip_size_kb": 64, "state": "offline", "raid_level": "raid0",
			 "superblock": false, "num_base_bdevs": 2, "num_base_bdevs_discovered": 1, "num_base_bdevs_operational": 1,
			 "base_bdevs_list": [{"name": null, "uuid": "00000000-0000-0000-0000-000000000000", "is_configured": false,
			  "data_offset": 0, "data_size": 65536}, {"name": "R1", "uuid": "508e", "is_configured": true,
			  "data_offset": 0, "data_size": 65536}]}]`,
			want: []RaidBdev{{Name: "raid0", UUID: "a9cb", StripSizeKB: 64, State: RaidOffline, RaidLevel: RaidLevel0,
				NumBaseBdevs: 2, NumBaseBdevsDiscovered: 1, NumBaseBdevsOperational: 1,
				BaseBdevsList: []RaidBase{
					{UUID: "00000000-0000-0000-0000-000000000000", DataSize: 65536},
					{Name: &r1, UUID: "508e", IsConfigured: true, DataSize: 65536},
				}}},
		},
	})
}
