package spdk

import "context"

// BdevGetIostatRequest filters bdev_get_iostat.
type BdevGetIostatRequest struct {
	// Names selects bdevs (any unknown one fails with ErrNoDevice); nil
	// reports every bdev. SPDK v26.05 rejects the older singular "name".
	Names []string `json:"names,omitempty"`
}

// Iostat is the answer of bdev_get_iostat.
type Iostat struct {
	// TickRate is ticks per second; latencies are in ticks.
	TickRate uint64      `json:"tick_rate"`
	Ticks    uint64      `json:"ticks"`
	Bdevs    []BdevStats `json:"bdevs"`
}

// BdevStats are one bdev's I/O counters since it was created (or reset).
type BdevStats struct {
	Name              string `json:"name"`
	BytesRead         uint64 `json:"bytes_read"`
	NumReadOps        uint64 `json:"num_read_ops"`
	BytesWritten      uint64 `json:"bytes_written"`
	NumWriteOps       uint64 `json:"num_write_ops"`
	BytesUnmapped     uint64 `json:"bytes_unmapped"`
	NumUnmapOps       uint64 `json:"num_unmap_ops"`
	ReadLatencyTicks  uint64 `json:"read_latency_ticks"`
	WriteLatencyTicks uint64 `json:"write_latency_ticks"`
	UnmapLatencyTicks uint64 `json:"unmap_latency_ticks"`
}

// BdevGetIostat reads I/O counters.
func (c *Client) BdevGetIostat(ctx context.Context, req BdevGetIostatRequest) (Iostat, error) {
	var st Iostat
	var params any
	if len(req.Names) > 0 {
		params = req
	}
	err := c.Call(ctx, "bdev_get_iostat", params, &st)
	return st, err
}
