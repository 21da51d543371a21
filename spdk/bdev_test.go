package spdk

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// wireCaller records what a typed method asks its Caller to send, and
// answers with a canned result.
type wireCaller struct {
	method string
	params []byte // nil: no params member
	result string
}

func (w *wireCaller) Call(_ context.Context, method string, params, result any) error {
	w.method, w.params = method, nil
	if params != nil {
		b, err := json.Marshal(params)
		if err != nil {
			return err
		}
		w.params = b
	}
	if result != nil && w.result != "" {
		return json.Unmarshal([]byte(w.result), result)
	}
	return nil
}

// wireCase checks one typed method: the method name and params it sends
// (exactly what the caller set, and no params member where SPDK wants
// none), and how it decodes SPDK's answer.
type wireCase struct {
	name   string
	call   func(ctx context.Context, c *Client) (any, error)
	method string
	params string // "" means the request must carry no params
	result string // SPDK's answer
	want   any
}

func runWire(t *testing.T, cases []wireCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			w := &wireCaller{result: tc.result}
			got, err := tc.call(context.Background(), New(w))
			require.NoError(t, err)
			assert.Equal(t, tc.method, w.method)
			if tc.params == "" {
				assert.Nil(t, w.params, "params sent: %s", w.params)
			} else {
				assert.JSONEq(t, tc.params, string(w.params))
			}
			assert.Equal(t, tc.want, got)
		})
	}
}

func u64(v uint64) *uint64 { return &v }

// A malloc bdev as SPDK v26.05 reports it (reference case get_bdevs_malloc).
const mallocBdevJSON = `[{"name": "Mal1", "aliases": ["80e912ed-d9a6-4861-b6d7-f8b219fdd312"], "product_name": "Malloc disk",
 "block_size": 4096, "num_blocks": 16384, "preferred_write_alignment": 0, "preferred_write_granularity": 0,
 "optimal_write_size": 0, "preferred_unmap_alignment": 0, "preferred_unmap_granularity": 0,
 "uuid": "80e912ed-d9a6-4861-b6d7-f8b219fdd312", "numa_id": -1,
 "assigned_rate_limits": {"rw_ios_per_sec": 10000, "rw_mbytes_per_sec": 100, "r_mbytes_per_sec": 0, "w_mbytes_per_sec": 0},
 "claimed": true, "claim_type": "exclusive_write", "zoned": false, "supported_io_types": {"read": true, "write": true},
 "driver_specific": {}}]`

func TestBdevWire(t *testing.T) {
	runWire(t, []wireCase{
		{
			name:   "spdk_get_version sends no params",
			call:   func(ctx context.Context, c *Client) (any, error) { return c.SpdkGetVersion(ctx) },
			method: "spdk_get_version",
			result: `{"version": "SPDK v26.05", "fields": {"major": 26, "minor": 5, "patch": 0, "suffix": ""}}`,
			want:   Version{Version: "SPDK v26.05", Fields: VersionFields{Major: 26, Minor: 5}},
		},
		{
			name:   "framework_wait_init",
			call:   func(ctx context.Context, c *Client) (any, error) { return nil, c.FrameworkWaitInit(ctx) },
			method: "framework_wait_init", result: `true`,
		},
		{
			name: "rpc_get_methods without options",
			call: func(ctx context.Context, c *Client) (any, error) {
				return c.RPCGetMethods(ctx, RPCGetMethodsRequest{})
			},
			method: "rpc_get_methods", result: `["spdk_get_version"]`, want: []string{"spdk_get_version"},
		},
		{
			name: "rpc_get_methods current",
			call: func(ctx context.Context, c *Client) (any, error) {
				return c.RPCGetMethods(ctx, RPCGetMethodsRequest{Current: true})
			},
			method: "rpc_get_methods", params: `{"current": true}`, result: `[]`, want: []string{},
		},
		{
			name: "bdev_get_bdevs all",
			call: func(ctx context.Context, c *Client) (any, error) {
				return c.BdevGetBdevs(ctx, BdevGetBdevsRequest{})
			},
			method: "bdev_get_bdevs", result: `[]`, want: []Bdev{},
		},
		{
			name:   "bdev_get_bdevs by name decodes a bdev",
			call:   func(ctx context.Context, c *Client) (any, error) { return c.BdevGetBdev(ctx, "Mal1") },
			method: "bdev_get_bdevs", params: `{"name": "Mal1"}`, result: mallocBdevJSON,
			want: Bdev{Name: "Mal1", Aliases: []string{"80e912ed-d9a6-4861-b6d7-f8b219fdd312"},
				ProductName: ProductMalloc, BlockSize: 4096, NumBlocks: 16384,
				UUID:               "80e912ed-d9a6-4861-b6d7-f8b219fdd312",
				AssignedRateLimits: RateLimits{RWIOsPerSec: 10000, RWMBytesPerSec: 100},
				Claimed:            true, ClaimType: ClaimExclusiveWrite,
				SupportedIOTypes: map[string]bool{"read": true, "write": true}},
		},
		{
			name: "bdev_get_bdevs with timeout",
			call: func(ctx context.Context, c *Client) (any, error) {
				return c.BdevGetBdevs(ctx, BdevGetBdevsRequest{Name: "x", Timeout: 500})
			},
			method: "bdev_get_bdevs", params: `{"name": "x", "timeout": 500}`, result: `[]`, want: []Bdev{},
		},
		{
			name:   "bdev_examine",
			call:   func(ctx context.Context, c *Client) (any, error) { return nil, c.BdevExamine(ctx, "Mal1") },
			method: "bdev_examine", params: `{"name": "Mal1"}`,
		},
		{
			name:   "bdev_wait_for_examine",
			call:   func(ctx context.Context, c *Client) (any, error) { return nil, c.BdevWaitForExamine(ctx) },
			method: "bdev_wait_for_examine",
		},
		{
			name: "bdev_set_qos_limit sends only the limits set, zero included",
			call: func(ctx context.Context, c *Client) (any, error) {
				return nil, c.BdevSetQosLimit(ctx, BdevSetQosLimitRequest{Name: "b", RWIOsPerSec: u64(0),
					RMBytesPerSec: u64(50)})
			},
			method: "bdev_set_qos_limit", params: `{"name": "b", "rw_ios_per_sec": 0, "r_mbytes_per_sec": 50}`,
		},
		{
			name: "bdev_malloc_create unnamed",
			call: func(ctx context.Context, c *Client) (any, error) {
				return c.BdevMallocCreate(ctx, BdevMallocCreateRequest{NumBlocks: 8192, BlockSize: 512})
			},
			method: "bdev_malloc_create", params: `{"num_blocks": 8192, "block_size": 512}`,
			result: `"Malloc0"`, want: "Malloc0",
		},
		{
			name: "bdev_malloc_create named with uuid",
			call: func(ctx context.Context, c *Client) (any, error) {
				return c.BdevMallocCreate(ctx, BdevMallocCreateRequest{Name: "M", NumBlocks: 1, BlockSize: 4096,
					UUID: "11111111-2222-3333-4444-555555555555"})
			},
			method: "bdev_malloc_create",
			params: `{"name": "M", "num_blocks": 1, "block_size": 4096, "uuid": "11111111-2222-3333-4444-555555555555"}`,
			result: `"M"`, want: "M",
		},
		{
			name:   "bdev_malloc_delete",
			call:   func(ctx context.Context, c *Client) (any, error) { return nil, c.BdevMallocDelete(ctx, "M") },
			method: "bdev_malloc_delete", params: `{"name": "M"}`, result: `true`,
		},
		{
			name: "bdev_null_create",
			call: func(ctx context.Context, c *Client) (any, error) {
				return c.BdevNullCreate(ctx, BdevNullCreateRequest{Name: "N", NumBlocks: 8, BlockSize: 4096})
			},
			method: "bdev_null_create", params: `{"name": "N", "num_blocks": 8, "block_size": 4096}`,
			result: `"N"`, want: "N",
		},
		{
			name:   "bdev_null_delete",
			call:   func(ctx context.Context, c *Client) (any, error) { return nil, c.BdevNullDelete(ctx, "N") },
			method: "bdev_null_delete", params: `{"name": "N"}`,
		},
		{
			name: "bdev_aio_create",
			call: func(ctx context.Context, c *Client) (any, error) {
				return c.BdevAioCreate(ctx, BdevAioCreateRequest{Name: "A", Filename: "/f", BlockSize: 512,
					Readonly: true})
			},
			method: "bdev_aio_create",
			params: `{"name": "A", "filename": "/f", "block_size": 512, "readonly": true}`,
			result: `"A"`, want: "A",
		},
		{
			name:   "bdev_aio_delete",
			call:   func(ctx context.Context, c *Client) (any, error) { return nil, c.BdevAioDelete(ctx, "A") },
			method: "bdev_aio_delete", params: `{"name": "A"}`,
		},
	})
}

func TestBdevGetBdevNotOne(t *testing.T) {
	_, err := New(&wireCaller{result: `[]`}).BdevGetBdev(context.Background(), "x")
	assert.ErrorIs(t, err, ErrNoDevice)
}

func TestBdevDriverSpecificDecoding(t *testing.T) {
	// An lvol, a raid and an NVMe namespace as SPDK v26.05 reports them
	// (reference cases get_bdevs_lvol_by_alias, get_bdevs_raid0,
	// get_bdevs_nvme_ns), trimmed.
	var bdevs []Bdev
	require.NoError(t, json.Unmarshal([]byte(`[
	 {"name": "9e34", "aliases": ["lvs0/lvol0"], "product_name": "Logical Volume", "block_size": 512, "num_blocks": 32768,
	  "uuid": "9e34", "claimed": false, "memory_domains": [{"dma_device_type": "DMA"}],
	  "driver_specific": {"lvol": {"lvol_store_uuid": "f6f0", "base_bdev": "LvsBase0", "thin_provision": false,
	   "num_allocated_clusters": 16, "snapshot": false, "clone": false, "esnap_clone": false}}},
	 {"name": "raid0", "aliases": ["a9cb"], "product_name": "Raid Volume", "block_size": 512, "num_blocks": 131072,
	  "uuid": "a9cb", "claimed": false,
	  "driver_specific": {"raid": {"uuid": "a9cb", "strip_size_kb": 64, "state": "online", "raid_level": "raid0",
	   "superblock": false, "num_base_bdevs": 2, "num_base_bdevs_discovered": 2, "num_base_bdevs_operational": 2,
	   "base_bdevs_list": [{"name": null, "uuid": "00000000-0000-0000-0000-000000000000", "is_configured": false,
	    "data_offset": 0, "data_size": 65536}]}}},
	 {"name": "ref1n1", "aliases": ["6d36"], "product_name": "NVMe disk", "block_size": 4096, "num_blocks": 32768,
	  "uuid": "6d36", "claimed": false,
	  "driver_specific": {"nvme": [{"trid": {"trtype": "TCP", "adrfam": "IPv4", "traddr": "127.0.0.1",
	   "trsvcid": "4520", "subnqn": "nqn.2016-06.io.spdk:ref1"}, "ctrlr_data": {"cntlid": 1, "vendor_id": "0x8086",
	   "model_number": "Ref Model", "serial_number": "S", "firmware_revision": "26.05",
	   "subnqn": "nqn.2016-06.io.spdk:ref1", "oacs": {"security": 0}, "multi_ctrlr": true, "ana_reporting": true},
	   "vs": {"nvme_version": "2.0"}, "ns_data": {"id": 1, "ana_state": "optimized", "can_share": true}}],
	   "mp_policy": "active_passive"}}]`), &bdevs))
	require.Len(t, bdevs, 3)
	assert.Equal(t, &LvolDriverSpecific{LvolStoreUUID: "f6f0", BaseBdev: "LvsBase0", NumAllocatedClusters: 16},
		bdevs[0].DriverSpecific.Lvol)
	raid := bdevs[1].DriverSpecific.Raid
	require.NotNil(t, raid)
	assert.Equal(t, RaidOnline, raid.State)
	assert.Nil(t, raid.BaseBdevsList[0].Name)
	assert.Equal(t, uint64(65536), raid.BaseBdevsList[0].DataSize)
	nvme := bdevs[2].DriverSpecific.Nvme
	require.Len(t, nvme, 1)
	assert.Equal(t, "4520", nvme[0].Trid.Trsvcid)
	assert.Equal(t, AnaOptimized, nvme[0].NsData.AnaState)
	assert.True(t, nvme[0].CtrlrData.AnaReporting)
	assert.Equal(t, "active_passive", bdevs[2].DriverSpecific.MPPolicy)
	assert.Equal(t, uint64(4096*32768), bdevs[2].Size())
}
