package dataplane_test

import (
	"bytes"
	"context"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/virtual-disk-array/vda/dataplane"
	"github.com/virtual-disk-array/vda/dataplane/dataplanetest"
	"github.com/virtual-disk-array/vda/spdk"
)

// runOn runs a data plane on socket sock until stop is called.
func runOn(t *testing.T, sock string) (dp *dataplane.DataPlane, c *spdk.Client, stop func()) {
	t.Helper()
	s := dataplanetest.Start(t, dataplane.Config{Socket: sock})
	return s.DataPlane, s.Client, s.Stop
}

// TestRestartFindsLvols: a data plane restarted on the same socket finds,
// once the aio bdev is created again over the same file, the lvstore and
// its lvols with the same uuids, and the data written before the stop.
func TestRestartFindsLvols(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	sock := filepath.Join(dir, "spdk.sock")
	file := filepath.Join(dir, "pd0")
	require.NoError(t, os.WriteFile(file, nil, 0o600))
	require.NoError(t, os.Truncate(file, 128<<20))

	dp, c, stop := runOn(t, sock)
	_, err := c.BdevAioCreate(ctx, spdk.BdevAioCreateRequest{Name: "pd0", Filename: file, BlockSize: 4096})
	require.NoError(t, err)
	lvsUUID, err := c.BdevLvolCreateLvstore(ctx, spdk.BdevLvolCreateLvstoreRequest{BdevName: "pd0", LvsName: "lvs_pd0", ClusterSize: 4 << 20})
	require.NoError(t, err)
	thick, err := c.BdevLvolCreate(ctx, spdk.BdevLvolCreateRequest{LvsName: "lvs_pd0", LvolName: "vd0", SizeInMiB: 16})
	require.NoError(t, err)
	thin, err := c.BdevLvolCreate(ctx, spdk.BdevLvolCreateRequest{LvsName: "lvs_pd0", LvolName: "vd1", SizeInMiB: 64, ThinProvision: true})
	require.NoError(t, err)

	r := rand.New(rand.NewPCG(1, 2))
	p := make([]byte, 1<<20)
	for i := range p {
		p[i] = byte(r.Uint32())
	}
	for _, name := range []string{thick, thin} {
		d, err := dp.Target.Open(name)
		require.NoError(t, err)
		require.NoError(t, d.WriteAt(ctx, p, 10<<20))
		require.NoError(t, d.Flush(ctx))
	}
	before, err := c.BdevLvolGetLvols(ctx, spdk.BdevLvolGetLvolsRequest{})
	require.NoError(t, err)
	stop()

	dp2, c2, _ := runOn(t, sock)
	_, err = c2.BdevAioCreate(ctx, spdk.BdevAioCreateRequest{Name: "pd0", Filename: file, BlockSize: 4096})
	require.NoError(t, err)
	ls, err := c2.BdevLvolGetLvstores(ctx, spdk.LvstoreSelector{})
	require.NoError(t, err)
	require.Len(t, ls, 1)
	assert.Equal(t, lvsUUID, ls[0].UUID)
	assert.Equal(t, "lvs_pd0", ls[0].Name)
	assert.Equal(t, "pd0", ls[0].BaseBdev)
	after, err := c2.BdevLvolGetLvols(ctx, spdk.BdevLvolGetLvolsRequest{})
	require.NoError(t, err)
	assert.Equal(t, before, after)
	require.Len(t, after, 2)
	assert.Equal(t, uint64(1), after[1].NumAllocatedClusters, "the thin lvol's one written cluster")

	got := make([]byte, len(p))
	for _, name := range []string{thick, thin, "lvs_pd0/vd0", "lvs_pd0/vd1"} {
		d, err := dp2.Target.Open(name)
		require.NoError(t, err)
		require.NoError(t, d.ReadAt(ctx, got, 10<<20))
		assert.True(t, bytes.Equal(p, got), name)
	}
}
