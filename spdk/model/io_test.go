package model_test

import (
	"bytes"
	"context"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/virtual-disk-array/vda/spdk"
	"github.com/virtual-disk-array/vda/spdk/model"
	"github.com/virtual-disk-array/vda/spdk/spdktest"
)

func do(t *testing.T, c *spdk.Client, ops ...spdk.Op) {
	t.Helper()
	for _, op := range ops {
		require.NoError(t, c.Do(context.Background(), op), op.String())
	}
}

func pattern(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, 1))
	p := make([]byte, n)
	for i := range p {
		p[i] = byte(r.Uint32())
	}
	return p
}

// TestMallocData: bytes written read back, unwritten ones read zero,
// unmap and write-zeroes clear, misaligned and out-of-range I/O is
// refused, the counters of bdev_get_iostat follow, and a deleted bdev's
// handle fails.
func TestMallocData(t *testing.T) {
	srv := spdktest.Start(t, model.Config{})
	c := srv.Client()
	ctx := context.Background()
	for _, bs := range []uint32{512, 4096} {
		do(t, c, spdk.OpBdevMallocCreate(spdk.BdevMallocCreateRequest{Name: "m", NumBlocks: 3 << 20 / uint64(bs), BlockSize: bs}))
		d, err := srv.Target.Open("m")
		require.NoError(t, err)
		assert.Equal(t, bs, d.BlockSize())
		assert.Equal(t, uint64(3<<20), d.Size())

		// Across the 1 MiB allocation unit.
		p := pattern(1, 64<<10)
		off := uint64(1<<20 - 32<<10)
		require.NoError(t, d.WriteAt(ctx, p, off))
		got := make([]byte, len(p))
		require.NoError(t, d.ReadAt(ctx, got, off))
		assert.True(t, bytes.Equal(p, got))
		require.NoError(t, d.ReadAt(ctx, got, 2<<20))
		assert.Equal(t, make([]byte, len(got)), got, "never written")

		require.NoError(t, d.Unmap(ctx, off, uint64(bs)))
		require.NoError(t, d.ReadAt(ctx, got, off))
		assert.Equal(t, make([]byte, bs), got[:bs])
		assert.True(t, bytes.Equal(p[bs:], got[bs:]))
		require.NoError(t, d.WriteZeroes(ctx, off, uint64(len(p))))
		require.NoError(t, d.ReadAt(ctx, got, off))
		assert.Equal(t, make([]byte, len(got)), got)

		for _, bad := range []struct{ n, off uint64 }{{1, 0}, {uint64(bs), 1}, {uint64(bs), 3 << 20}, {2 * uint64(bs), 3<<20 - uint64(bs)}} {
			assert.ErrorIs(t, d.ReadAt(ctx, make([]byte, bad.n), bad.off), model.ErrRange, "%d at %d", bad.n, bad.off)
		}

		io, err := c.BdevGetIostat(ctx, spdk.BdevGetIostatRequest{Names: []string{"m"}})
		require.NoError(t, err)
		require.Len(t, io.Bdevs, 1)
		st := io.Bdevs[0]
		assert.Equal(t, uint64(4), st.NumReadOps, "refused reads do not count")
		assert.Equal(t, uint64(4*len(p)), st.BytesRead)
		assert.Equal(t, uint64(2), st.NumWriteOps, "a write and a write-zeroes")
		assert.Equal(t, uint64(1), st.NumUnmapOps)
		assert.Equal(t, uint64(bs), st.BytesUnmapped)

		do(t, c, spdk.OpBdevMallocDelete("m"))
		assert.ErrorIs(t, d.ReadAt(ctx, got[:bs], 0), model.ErrNoBdev)
	}
}

// TestRaid0Data: a raid0 stripes its data over its members, strip k on
// member k mod n at strip k div n, and reads back what was written.
func TestRaid0Data(t *testing.T) {
	srv := spdktest.Start(t, model.Config{})
	c := srv.Client()
	ctx := context.Background()
	do(t, c,
		spdk.OpBdevMallocCreate(spdk.BdevMallocCreateRequest{Name: "a", NumBlocks: 2048, BlockSize: 512}),
		spdk.OpBdevMallocCreate(spdk.BdevMallocCreateRequest{Name: "b", NumBlocks: 2048, BlockSize: 512}),
		spdk.OpBdevRaidCreate(spdk.BdevRaidCreateRequest{Name: "r", RaidLevel: spdk.RaidLevel0, StripSizeKB: 64, BaseBdevs: []string{"a", "b"}}),
	)
	r, err := srv.Target.Open("r")
	require.NoError(t, err)
	assert.Equal(t, uint64(2<<20), r.Size())
	p := pattern(2, 1<<20)
	require.NoError(t, r.WriteAt(ctx, p[:768<<10], 4096)) // across strips, unaligned to them
	require.NoError(t, r.WriteAt(ctx, p[768<<10:], 4096+768<<10))
	got := make([]byte, len(p))
	require.NoError(t, r.ReadAt(ctx, got, 4096))
	assert.True(t, bytes.Equal(p, got))

	a, err := srv.Target.Open("a")
	require.NoError(t, err)
	b, err := srv.Target.Open("b")
	require.NoError(t, err)
	const strip = 64 << 10
	whole := make([]byte, 2<<20)
	copy(whole[4096:], p)
	for k := range 32 {
		member, moff := a, uint64(k/2)*strip
		if k%2 == 1 {
			member = b
		}
		got := make([]byte, strip)
		require.NoError(t, member.ReadAt(ctx, got, moff))
		assert.True(t, bytes.Equal(whole[k*strip:(k+1)*strip], got), "strip %d", k)
	}

	// A member deleted takes the raid offline: the handle fails.
	do(t, c, spdk.OpBdevMallocDelete("b"))
	assert.ErrorIs(t, r.ReadAt(ctx, got[:512], 0), model.ErrNoBdev)
}

// TestNvmeData: a namespace attached over the fabric reads and writes the
// remote bdev; removing the host from the subsystem cuts the I/O (the
// fence), and so does the remote bdev's deletion.
func TestNvmeData(t *testing.T) {
	srvs := spdktest.StartFabric(t, model.Config{}, model.Config{HostNQN: "nqn.2014-08.org.example:cn"})
	dn, cn := srvs[0].Client(), srvs[1].Client()
	ctx := context.Background()
	const nqn, host = "nqn.2016-06.io.vda:vd-1", "nqn.2016-06.io.vda:cntlr-1"
	lis := spdk.ListenAddress{Trtype: "TCP", Adrfam: "IPv4", Traddr: "127.0.0.1", Trsvcid: "4420"}
	do(t, dn,
		spdk.OpNvmfCreateTransport(spdk.NvmfCreateTransportRequest{Trtype: "TCP"}),
		spdk.OpBdevMallocCreate(spdk.BdevMallocCreateRequest{Name: "m", NumBlocks: 4096, BlockSize: 512}),
		spdk.OpNvmfCreateSubsystem(spdk.NvmfCreateSubsystemRequest{NQN: nqn}),
		spdk.OpNvmfSubsystemAddNs(spdk.NvmfSubsystemAddNsRequest{NQN: nqn, Namespace: spdk.NamespaceParams{BdevName: "m"}}),
		spdk.OpNvmfSubsystemAddListener(spdk.NvmfSubsystemAddListenerRequest{NQN: nqn, ListenAddress: lis}),
		spdk.OpNvmfSubsystemAddHost(nqn, host),
	)
	do(t, cn, spdk.OpBdevNvmeAttachController(spdk.BdevNvmeAttachControllerRequest{
		Name: "c", Trtype: "TCP", Adrfam: "IPv4", Traddr: "127.0.0.1", Trsvcid: "4420", Subnqn: nqn, Hostnqn: host,
	}))
	// The controller "c" names its namespace bdev "cn1".
	ns, err := srvs[1].Target.Open("cn1")
	require.NoError(t, err)
	p := pattern(3, 64<<10)
	require.NoError(t, ns.WriteAt(ctx, p, 512))
	m, err := srvs[0].Target.Open("m")
	require.NoError(t, err)
	got := make([]byte, len(p))
	require.NoError(t, m.ReadAt(ctx, got, 512))
	assert.True(t, bytes.Equal(p, got), "the write reached the dn's bdev")
	require.NoError(t, ns.ReadAt(ctx, got, 512))
	assert.True(t, bytes.Equal(p, got))

	do(t, dn, spdk.OpNvmfSubsystemRemoveHost(nqn, host))
	assert.ErrorIs(t, ns.WriteAt(ctx, p, 512), model.ErrPathDown, "the fenced host cannot write")
}

// TestAioData: an aio bdev reads and writes its file; the data is in the
// file, and a new aio bdev on it after the first was deleted reads it back.
func TestAioData(t *testing.T) {
	path := filepath.Join(t.TempDir(), "disk.img")
	require.NoError(t, os.WriteFile(path, nil, 0o600))
	require.NoError(t, os.Truncate(path, 4<<20))
	srv := spdktest.Start(t, model.Config{})
	c := srv.Client()
	ctx := context.Background()
	for _, bs := range []uint32{512, 4096} {
		do(t, c, spdk.OpBdevAioCreate(spdk.BdevAioCreateRequest{Name: "a", Filename: path, BlockSize: bs}))
		d, err := srv.Target.Open("a")
		require.NoError(t, err)
		p := pattern(uint64(bs), 256<<10)
		require.NoError(t, d.WriteAt(ctx, p, 1<<20))
		require.NoError(t, d.Flush(ctx))
		raw, err := os.ReadFile(path)
		require.NoError(t, err)
		assert.True(t, bytes.Equal(p, raw[1<<20:1<<20+len(p)]), "the bytes are in the file")
		require.NoError(t, d.WriteZeroes(ctx, 1<<20, uint64(bs)))
		do(t, c, spdk.OpBdevAioDelete("a"))
		assert.ErrorIs(t, d.ReadAt(ctx, make([]byte, bs), 0), model.ErrNoBdev)

		do(t, c, spdk.OpBdevAioCreate(spdk.BdevAioCreateRequest{Name: "a", Filename: path, BlockSize: bs}))
		d, err = srv.Target.Open("a")
		require.NoError(t, err)
		got := make([]byte, len(p))
		require.NoError(t, d.ReadAt(ctx, got, 1<<20))
		assert.Equal(t, make([]byte, bs), got[:bs], "written zeroes")
		assert.True(t, bytes.Equal(p[bs:], got[bs:]))
		do(t, c, spdk.OpBdevAioDelete("a"))
	}
}
