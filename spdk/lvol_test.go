package spdk

import (
	"context"
	"testing"
)

func TestLvolWire(t *testing.T) {
	runWire(t, []wireCase{
		{
			name: "bdev_lvol_create_lvstore",
			call: func(ctx context.Context, c *Client) (any, error) {
				return c.BdevLvolCreateLvstore(ctx, BdevLvolCreateLvstoreRequest{BdevName: "B", LvsName: "lvs0",
					ClusterSize: 1 << 20, ClearMethod: ClearNone})
			},
			method: "bdev_lvol_create_lvstore",
			params: `{"bdev_name": "B", "lvs_name": "lvs0", "cluster_sz": 1048576, "clear_method": "none"}`,
			result: `"f6f0"`, want: "f6f0",
		},
		{
			name: "bdev_lvol_create_lvstore defaults",
			call: func(ctx context.Context, c *Client) (any, error) {
				return c.BdevLvolCreateLvstore(ctx, BdevLvolCreateLvstoreRequest{BdevName: "B", LvsName: "l"})
			},
			method: "bdev_lvol_create_lvstore", params: `{"bdev_name": "B", "lvs_name": "l"}`,
			result: `"u"`, want: "u",
		},
		{
			name: "bdev_lvol_delete_lvstore by name",
			call: func(ctx context.Context, c *Client) (any, error) {
				return nil, c.BdevLvolDeleteLvstore(ctx, LvstoreSelector{LvsName: "lvs0"})
			},
			method: "bdev_lvol_delete_lvstore", params: `{"lvs_name": "lvs0"}`,
		},
		{
			name: "bdev_lvol_get_lvstores all sends no params",
			call: func(ctx context.Context, c *Client) (any, error) {
				return c.BdevLvolGetLvstores(ctx, LvstoreSelector{})
			},
			method: "bdev_lvol_get_lvstores",
			result: `[{"uuid": "f6f0", "name": "lvs0", "base_bdev": "LvsBase0", "total_data_clusters": 127,
			 "free_clusters": 116, "block_size": 512, "cluster_size": 1048576, "max_growable_size": 34317795328}]`,
			want: []Lvstore{{UUID: "f6f0", Name: "lvs0", BaseBdev: "LvsBase0", TotalDataClusters: 127,
				FreeClusters: 116, BlockSize: 512, ClusterSize: 1048576, MaxGrowableSize: 34317795328}},
		},
		{
			name: "bdev_lvol_get_lvstores by uuid",
			call: func(ctx context.Context, c *Client) (any, error) {
				return c.BdevLvolGetLvstores(ctx, LvstoreSelector{UUID: "f6f0"})
			},
			method: "bdev_lvol_get_lvstores", params: `{"uuid": "f6f0"}`, result: `[]`, want: []Lvstore{},
		},
		{
			name: "bdev_lvol_create thin",
			call: func(ctx context.Context, c *Client) (any, error) {
				return c.BdevLvolCreate(ctx, BdevLvolCreateRequest{LvolName: "v", SizeInMiB: 64,
					ThinProvision: true, LvsName: "lvs0"})
			},
			method: "bdev_lvol_create",
			params: `{"lvol_name": "v", "size_in_mib": 64, "thin_provision": true, "lvs_name": "lvs0"}`,
			result: `"3016"`, want: "3016",
		},
		{
			name: "bdev_lvol_create size 0 is sent",
			call: func(ctx context.Context, c *Client) (any, error) {
				return c.BdevLvolCreate(ctx, BdevLvolCreateRequest{LvolName: "z", UUID: "f6f0"})
			},
			method: "bdev_lvol_create", params: `{"lvol_name": "z", "size_in_mib": 0, "uuid": "f6f0"}`,
			result: `"9fee"`, want: "9fee",
		},
		{
			name:   "bdev_lvol_delete",
			call:   func(ctx context.Context, c *Client) (any, error) { return nil, c.BdevLvolDelete(ctx, "lvs0/v") },
			method: "bdev_lvol_delete", params: `{"name": "lvs0/v"}`,
		},
		{
			name: "bdev_lvol_resize",
			call: func(ctx context.Context, c *Client) (any, error) {
				return nil, c.BdevLvolResize(ctx, BdevLvolResizeRequest{Name: "lvs0/v", SizeInMiB: 32})
			},
			method: "bdev_lvol_resize", params: `{"name": "lvs0/v", "size_in_mib": 32}`,
		},
		{
			name: "bdev_lvol_get_lvols by lvs_uuid",
			call: func(ctx context.Context, c *Client) (any, error) {
				return c.BdevLvolGetLvols(ctx, BdevLvolGetLvolsRequest{LvsUUID: "f6f0"})
			},
			method: "bdev_lvol_get_lvols", params: `{"lvs_uuid": "f6f0"}`,
			result: `[{"alias": "lvs0/lvol0", "uuid": "9e34", "name": "lvol0", "is_thin_provisioned": false,
			 "is_snapshot": false, "is_clone": false, "is_esnap_clone": false, "is_degraded": false,
			 "num_allocated_clusters": 16, "lvs": {"name": "lvs0", "uuid": "f6f0"}}]`,
			want: []Lvol{{Alias: "lvs0/lvol0", UUID: "9e34", Name: "lvol0", NumAllocatedClusters: 16,
				Lvs: LvsRef{Name: "lvs0", UUID: "f6f0"}}},
		},
		{
			name: "bdev_lvol_get_lvols all",
			call: func(ctx context.Context, c *Client) (any, error) {
				return c.BdevLvolGetLvols(ctx, BdevLvolGetLvolsRequest{})
			},
			method: "bdev_lvol_get_lvols", result: `[]`, want: []Lvol{},
		},
		{
			name: "bdev_lvol_snapshot",
			call: func(ctx context.Context, c *Client) (any, error) {
				return c.BdevLvolSnapshot(ctx, "lvs9/base", "snap1")
			},
			method: "bdev_lvol_snapshot", params: `{"lvol_name": "lvs9/base", "snapshot_name": "snap1"}`,
			result: `"96dc"`, want: "96dc",
		},
		{
			name: "bdev_lvol_clone",
			call: func(ctx context.Context, c *Client) (any, error) {
				return c.BdevLvolClone(ctx, "lvs9/snap1", "clone1")
			},
			method: "bdev_lvol_clone", params: `{"snapshot_name": "lvs9/snap1", "clone_name": "clone1"}`,
			result: `"c4d6"`, want: "c4d6",
		},
	})
}
