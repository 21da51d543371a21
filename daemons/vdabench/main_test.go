package main

import (
	"context"
	"encoding/json"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/virtual-disk-array/vda/nvmetcp/target"
)

// memNS is an in-memory namespace for the in-process target.
type memNS struct {
	mu   sync.Mutex
	data []byte
}

func (d *memNS) BlockSize() uint32 { return 4096 }
func (d *memNS) Size() uint64      { return uint64(len(d.data)) }
func (d *memNS) ReadAt(_ context.Context, p []byte, off uint64) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	copy(p, d.data[off:])
	return nil
}
func (d *memNS) WriteAt(_ context.Context, p []byte, off uint64) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	copy(d.data[off:], p)
	return nil
}
func (d *memNS) Flush(context.Context) error { return nil }
func (d *memNS) WriteZeroes(_ context.Context, off, n uint64) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	clear(d.data[off : off+n])
	return nil
}
func (d *memNS) Unmap(ctx context.Context, off, n uint64) error { return d.WriteZeroes(ctx, off, n) }

type catalog map[string]*target.Subsystem

func (c catalog) Subsystem(nqn string) (*target.Subsystem, bool) { s, ok := c[nqn]; return s, ok }

const testNQN = "nqn.2016-06.io.vda:bench-test"

// startTarget serves an 8 MiB in-memory namespace on loopback.
func startTarget(t *testing.T) string {
	cat := catalog{testNQN: {NQN: testNQN, Serial: "T1", Model: "test", AllowAnyHost: true,
		Namespaces: []target.NS{{NSID: 1, Dev: &memNS{data: make([]byte, 8<<20)}}}}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- target.Serve(ctx, ln, cat, target.Config{C2HSuccess: true}) }()
	t.Cleanup(func() { cancel(); <-done })
	return ln.Addr().String()
}

// TestNVMe runs the whole matrix for a few hundred milliseconds against an
// in-process target and checks every workload moved data.
// With --submit, the same through the initiator's asynchronous
// submission.
func TestNVMe(t *testing.T) {
	addr := startTarget(t)
	for _, submit := range []bool{false, true} {
		var out strings.Builder
		args := []string{"nvme", "--addr", addr, "--subnqn", testNQN,
			"--duration", "150ms", "--warmup", "30ms", "--size", "4MiB", "--queues", "2", "--json"}
		if submit {
			args = append(args, "--submit")
		}
		err := run(context.Background(), args, &out)
		require.NoError(t, err)
		var rs []result1
		require.NoError(t, json.Unmarshal([]byte(out.String()), &rs), out.String())
		require.Len(t, rs, 6)
		want := []string{"randread 4k QD1", "randread 4k QD32", "randwrite 4k QD1", "randwrite 4k QD32", "read 128k QD8", "write 128k QD8"}
		for i, r := range rs {
			assert.Equal(t, want[i], r.label())
			assert.Positive(t, r.IOPS, r.label())
			assert.Positive(t, r.IOs, r.label())
			assert.InDelta(t, r.IOPS*float64(r.BS)/(1<<20), r.MiBps, 1e-6)
			assert.LessOrEqual(t, r.P50us, r.P99us, r.label())
			assert.LessOrEqual(t, r.P99us, r.P999us, r.label())
			assert.LessOrEqual(t, r.P999us, r.MaxUs, r.label())
		}
	}
}

// TestNVMeTable: one workload, a table, this process's own CPU sampled as a
// "target" through --target-pid.
func TestNVMeTable(t *testing.T) {
	addr := startTarget(t)
	var out strings.Builder
	err := run(context.Background(), []string{"nvme", "--addr", addr, "--subnqn", testNQN, "--workload", "randwrite",
		"--bs", "8k", "--qd", "4", "--duration", "150ms", "--warmup", "0s", "--target-pid", "1", "--size", "0"}, &out)
	require.NoError(t, err)
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	require.Len(t, lines, 2, out.String())
	assert.Contains(t, lines[0], "p99.9 µs")
	assert.Contains(t, lines[0], "pid 1 CPU s/M I/O")
	assert.Contains(t, lines[1], "randwrite 8k QD4")
}

func TestNVMeErrors(t *testing.T) {
	addr := startTarget(t)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"nvme"}, "--addr or --spawn"},
		{[]string{"nvme", "--chain"}, "--chain needs --spawn"},
		{[]string{"nvme", "--addr", addr, "--subnqn", "nqn.2016-06.io.vda:nope", "--workload", "read", "--duration", "10ms"}, "Connect"},
		{[]string{"nvme", "--addr", addr, "--subnqn", testNQN, "--workload", "read", "--bs", "1000"}, "not a multiple of the block size"},
	} {
		err := run(context.Background(), tc.args, &strings.Builder{})
		assert.ErrorContains(t, err, tc.want, tc.args)
	}
}

// TestPortalDefault: the portal benchmark is still the command run with
// root flags only (its old invocation), on a tiny inventory.
func TestPortalDefault(t *testing.T) {
	var out strings.Builder
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err := run(ctx, []string{"--dns", "2", "--pds-per-dn", "2", "--cns", "2", "--das", "2", "--creates", "1", "--gets", "2", "--clients", "2"}, &out)
	require.NoError(t, err)
	assert.Contains(t, out.String(), "GetDa @3")
	assert.Contains(t, out.String(), "ListDa: 3 arrays")
}

func TestHistogram(t *testing.T) {
	var h histogram
	for v := uint64(1); v <= 100000; v++ {
		h.add(v * 1000) // 1 µs .. 100 ms, uniform
	}
	for _, q := range []float64{0.5, 0.99, 0.999} {
		want := q * 1e8
		assert.InEpsilon(t, want, h.quantile(q), 0.02, "q %v", q)
	}
	assert.Equal(t, uint64(1e8), h.max)
	for _, v := range []uint64{0, 1, 127, 128, 129, 255, 256, 1 << 20, 1<<40 + 12345} {
		i := bucket(v)
		mid := bucketMid(i)
		assert.InEpsilon(t, float64(max(v, 1)), max(mid, 1), 0.02, "v %d bucket %d", v, i)
	}
}

func TestParseSize(t *testing.T) {
	for in, want := range map[string]int64{"4096": 4096, "4k": 4096, "4KiB": 4096, "128K": 128 << 10, "1g": 1 << 30, "1GiB": 1 << 30, "0": 0, "2MB": 2 << 20} {
		got, err := parseSize(in)
		require.NoError(t, err, in)
		assert.Equal(t, want, got, in)
	}
	for _, in := range []string{"", "k", "-1", "4x"} {
		_, err := parseSize(in)
		assert.Error(t, err, in)
	}
	cpus, err := parseCPUList("0,2-3")
	require.NoError(t, err)
	assert.Equal(t, []int{0, 2, 3}, cpus)
}
