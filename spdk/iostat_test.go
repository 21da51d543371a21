package spdk

import (
	"context"
	"testing"
)

func TestIostatWire(t *testing.T) {
	runWire(t, []wireCase{
		{
			name:   "bdev_get_iostat all sends no params",
			call:   func(ctx context.Context, c *Client) (any, error) { return c.BdevGetIostat(ctx, BdevGetIostatRequest{}) },
			method: "bdev_get_iostat",
			result: `{"tick_rate": 2600000000, "ticks": 6167011287254, "bdevs": [{"name": "Malloc0", "bytes_read": 37376,
			 "num_read_ops": 3, "bytes_written": 0, "num_write_ops": 0, "bytes_unmapped": 0, "num_unmap_ops": 0,
			 "bytes_copied": 0, "num_copy_ops": 0, "read_latency_ticks": 257956, "max_read_latency_ticks": 94062,
			 "io_error": {}}]}`,
			want: Iostat{TickRate: 2600000000, Ticks: 6167011287254, Bdevs: []BdevStats{{Name: "Malloc0",
				BytesRead: 37376, NumReadOps: 3, ReadLatencyTicks: 257956}}},
		},
		{
			name: "bdev_get_iostat names",
			call: func(ctx context.Context, c *Client) (any, error) {
				return c.BdevGetIostat(ctx, BdevGetIostatRequest{Names: []string{"Mal1"}})
			},
			method: "bdev_get_iostat", params: `{"names": ["Mal1"]}`, result: `{"bdevs": []}`,
			want: Iostat{Bdevs: []BdevStats{}},
		},
	})
}
