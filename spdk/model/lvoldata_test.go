package model_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/virtual-disk-array/vda/lvs"
	"github.com/virtual-disk-array/vda/spdk"
	"github.com/virtual-disk-array/vda/spdk/model"
	"github.com/virtual-disk-array/vda/spdk/spdktest"
)

// lvolBase creates the base bdev "base" of size bytes: malloc, or aio over
// a new file in dir (returned).
func lvolBase(t *testing.T, c *spdk.Client, kind string, bs uint32, size uint64) string {
	t.Helper()
	switch kind {
	case "malloc":
		do(t, c, spdk.OpBdevMallocCreate(spdk.BdevMallocCreateRequest{Name: "base", NumBlocks: size / uint64(bs), BlockSize: bs}))
		return ""
	default:
		path := filepath.Join(t.TempDir(), "aio")
		require.NoError(t, os.WriteFile(path, nil, 0o600))
		require.NoError(t, os.Truncate(path, int64(size)))
		do(t, c, spdk.OpBdevAioCreate(spdk.BdevAioCreateRequest{Name: "base", Filename: path, BlockSize: bs}))
		return path
	}
}

func getLvstore(t *testing.T, c *spdk.Client, name string) spdk.Lvstore {
	t.Helper()
	ls, err := c.BdevLvolGetLvstores(context.Background(), spdk.LvstoreSelector{LvsName: name})
	require.NoError(t, err)
	require.Len(t, ls, 1)
	return ls[0]
}

func getLvols(t *testing.T, c *spdk.Client) map[string]spdk.Lvol {
	t.Helper()
	ls, err := c.BdevLvolGetLvols(context.Background(), spdk.BdevLvolGetLvolsRequest{})
	require.NoError(t, err)
	out := map[string]spdk.Lvol{}
	for _, l := range ls {
		out[l.Alias] = l
	}
	return out
}

// TestLvolData: on malloc and aio bases of both block sizes, thick and
// thin lvols move real data through their lvstore; a thin lvol's
// num_allocated_clusters (and the lvstore's free_clusters) follow what
// was written; resize keeps the data; a deleted lvol's handle fails.
func TestLvolData(t *testing.T) {
	for _, tc := range []struct {
		kind string
		bs   uint32
	}{{"malloc", 512}, {"malloc", 4096}, {"aio", 512}, {"aio", 4096}} {
		t.Run(fmt.Sprintf("%s/%d", tc.kind, tc.bs), func(t *testing.T) {
			srv := spdktest.Start(t, model.Config{})
			c := srv.Client()
			ctx := context.Background()
			lvolBase(t, c, tc.kind, tc.bs, 64<<20)
			lvsUUID, err := c.BdevLvolCreateLvstore(ctx, spdk.BdevLvolCreateLvstoreRequest{BdevName: "base", LvsName: "lvs0", ClusterSize: 1 << 20})
			require.NoError(t, err)
			st := getLvstore(t, c, "lvs0")
			assert.Equal(t, lvsUUID, st.UUID)
			assert.Equal(t, uint64(63), st.TotalDataClusters, "SPDK's accounting")
			thick, err := c.BdevLvolCreate(ctx, spdk.BdevLvolCreateRequest{LvsName: "lvs0", LvolName: "thick", SizeInMiB: 8})
			require.NoError(t, err)
			thin, err := c.BdevLvolCreate(ctx, spdk.BdevLvolCreateRequest{LvsName: "lvs0", LvolName: "thin", SizeInMiB: 16, ThinProvision: true})
			require.NoError(t, err)
			assert.Equal(t, uint64(63-8), getLvstore(t, c, "lvs0").FreeClusters)

			// Across a cluster boundary, in both.
			p := pattern(uint64(tc.bs), 256<<10)
			off := uint64(3<<20 - 128<<10)
			got := make([]byte, len(p))
			for _, name := range []string{"lvs0/thick", thin} {
				d, err := srv.Target.Open(name)
				require.NoError(t, err)
				require.NoError(t, d.WriteAt(ctx, p, off))
				require.NoError(t, d.Flush(ctx))
				require.NoError(t, d.ReadAt(ctx, got, off))
				assert.True(t, bytes.Equal(p, got), name)
				assert.ErrorIs(t, d.ReadAt(ctx, got[:tc.bs], off+1), model.ErrRange)
			}
			lv := getLvols(t, c)
			assert.Equal(t, uint64(8), lv["lvs0/thick"].NumAllocatedClusters)
			assert.Equal(t, uint64(2), lv["lvs0/thin"].NumAllocatedClusters, "written clusters only")
			assert.Equal(t, uint64(63-8-2), getLvstore(t, c, "lvs0").FreeClusters)

			// Thin: unwritten reads zero; unmapping a whole cluster releases it.
			d, err := srv.Target.Open(thin)
			require.NoError(t, err)
			require.NoError(t, d.ReadAt(ctx, got, 8<<20))
			assert.Equal(t, make([]byte, len(got)), got)
			require.NoError(t, d.Unmap(ctx, 2<<20, 1<<20))
			assert.Equal(t, uint64(1), getLvols(t, c)["lvs0/thin"].NumAllocatedClusters)
			require.NoError(t, d.ReadAt(ctx, got, off))
			assert.Equal(t, make([]byte, 128<<10), got[:128<<10], "unmapped")
			assert.True(t, bytes.Equal(p[128<<10:], got[128<<10:]))

			// Resize: grow keeps the data and the new size is usable.
			require.NoError(t, c.BdevLvolResize(ctx, spdk.BdevLvolResizeRequest{Name: thick, SizeInMiB: 12}))
			d, err = srv.Target.Open(thick)
			require.NoError(t, err)
			assert.Equal(t, uint64(12<<20), d.Size())
			require.NoError(t, d.ReadAt(ctx, got, off))
			assert.True(t, bytes.Equal(p, got))
			require.NoError(t, d.WriteAt(ctx, p, 12<<20-uint64(len(p))))
			assert.Equal(t, uint64(63-12-1), getLvstore(t, c, "lvs0").FreeClusters)
			require.NoError(t, c.BdevLvolResize(ctx, spdk.BdevLvolResizeRequest{Name: thin, SizeInMiB: 1}))
			assert.Equal(t, uint64(0), getLvols(t, c)["lvs0/thin"].NumAllocatedClusters)

			// Too big fails as SPDK does, before the data is touched.
			err = c.BdevLvolResize(ctx, spdk.BdevLvolResizeRequest{Name: thick, SizeInMiB: 64})
			assert.ErrorIs(t, err, spdk.ErrNoSpace)
			_, err = c.BdevLvolCreate(ctx, spdk.BdevLvolCreateRequest{LvsName: "lvs0", LvolName: "big", SizeInMiB: 52})
			assert.ErrorIs(t, err, spdk.ErrNoSpace)
			_, err = c.BdevLvolCreate(ctx, spdk.BdevLvolCreateRequest{LvsName: "lvs0", LvolName: "big", SizeInMiB: 50})
			require.NoError(t, err, "everything the lvstore reports free fits")

			require.NoError(t, c.BdevLvolDelete(ctx, thick))
			assert.ErrorIs(t, d.ReadAt(ctx, got, 0), model.ErrNoBdev)
			require.NoError(t, c.BdevLvolDeleteLvstore(ctx, spdk.LvstoreSelector{LvsName: "lvs0"}))
			bd, err := c.BdevGetBdevs(ctx, spdk.BdevGetBdevsRequest{Name: "base"})
			require.NoError(t, err)
			assert.False(t, bd[0].Claimed)
		})
	}
}

// TestLvolSmallBase: on a base where lvs's default metadata would leave
// fewer clusters than SPDK's accounting admits, the lvstore is formatted
// smaller and still holds them all.
func TestLvolSmallBase(t *testing.T) {
	srv := spdktest.Start(t, model.Config{})
	c := srv.Client()
	ctx := context.Background()
	lvolBase(t, c, "aio", 4096, 4<<20)
	_, err := c.BdevLvolCreateLvstore(ctx, spdk.BdevLvolCreateLvstoreRequest{BdevName: "base", LvsName: "lvs0", ClusterSize: 1 << 20})
	require.NoError(t, err)
	assert.Equal(t, uint64(3), getLvstore(t, c, "lvs0").TotalDataClusters)
	u, err := c.BdevLvolCreate(ctx, spdk.BdevLvolCreateRequest{LvsName: "lvs0", LvolName: "v", SizeInMiB: 3})
	require.NoError(t, err)
	d, err := srv.Target.Open(u)
	require.NoError(t, err)
	p := pattern(3, 3<<20)
	require.NoError(t, d.WriteAt(ctx, p, 0))
	got := make([]byte, len(p))
	require.NoError(t, d.ReadAt(ctx, got, 0))
	assert.True(t, bytes.Equal(p, got))
}

// TestLvolSnapshotNoData: snapshots and clones of an lvol with data are
// objects without data (lvs has no shared clusters); the lvol keeps its
// own.
func TestLvolSnapshotNoData(t *testing.T) {
	srv := spdktest.Start(t, model.Config{})
	c := srv.Client()
	ctx := context.Background()
	lvolBase(t, c, "malloc", 512, 32<<20)
	_, err := c.BdevLvolCreateLvstore(ctx, spdk.BdevLvolCreateLvstoreRequest{BdevName: "base", LvsName: "lvs0", ClusterSize: 1 << 20})
	require.NoError(t, err)
	u, err := c.BdevLvolCreate(ctx, spdk.BdevLvolCreateRequest{LvsName: "lvs0", LvolName: "v", SizeInMiB: 4})
	require.NoError(t, err)
	d, err := srv.Target.Open(u)
	require.NoError(t, err)
	p := pattern(4, 4096)
	require.NoError(t, d.WriteAt(ctx, p, 0))
	_, err = c.BdevLvolSnapshot(ctx, "lvs0/v", "snap")
	require.NoError(t, err)
	_, err = c.BdevLvolClone(ctx, "lvs0/snap", "clone")
	require.NoError(t, err)
	for _, n := range []string{"lvs0/snap", "lvs0/clone"} {
		_, err := srv.Target.Open(n)
		assert.ErrorIs(t, err, model.ErrUnsupported, n)
	}
	got := make([]byte, len(p))
	require.NoError(t, d.ReadAt(ctx, got, 0))
	assert.True(t, bytes.Equal(p, got))
}

// TestLvolExamine: a new target (a restarted SPDK) that creates an aio
// bdev over a file holding an lvstore finds the lvstore and its lvols
// again, with their uuids, sizes, thin flags, allocations and data, and
// claims the base; an lvstore deleted with bdev_lvol_delete_lvstore is
// not found again.
func TestLvolExamine(t *testing.T) {
	for _, bs := range []uint32{512, 4096} {
		t.Run(fmt.Sprint(bs), func(t *testing.T) {
			ctx := context.Background()
			srv := spdktest.Start(t, model.Config{})
			c := srv.Client()
			path := lvolBase(t, c, "aio", bs, 64<<20)
			_, err := c.BdevLvolCreateLvstore(ctx, spdk.BdevLvolCreateLvstoreRequest{BdevName: "base", LvsName: "lvs0", ClusterSize: 2 << 20})
			require.NoError(t, err)
			var uuids []string
			for _, l := range []spdk.BdevLvolCreateRequest{
				{LvolName: "a", SizeInMiB: 6},
				{LvolName: "b", SizeInMiB: 20, ThinProvision: true},
				{LvolName: "gone", SizeInMiB: 2},
				{LvolName: "c", SizeInMiB: 0},
			} {
				l.LvsName = "lvs0"
				u, err := c.BdevLvolCreate(ctx, l)
				require.NoError(t, err)
				uuids = append(uuids, u)
			}
			require.NoError(t, c.BdevLvolDelete(ctx, "lvs0/gone"))
			require.NoError(t, c.BdevLvolResize(ctx, spdk.BdevLvolResizeRequest{Name: "lvs0/a", SizeInMiB: 8}))
			pa, pb := pattern(10, 64<<10), pattern(11, 64<<10)
			for _, w := range []struct {
				name string
				p    []byte
				off  uint64
			}{{"lvs0/a", pa, 7 << 20}, {"lvs0/b", pb, 5 << 20}} {
				d, err := srv.Target.Open(w.name)
				require.NoError(t, err)
				require.NoError(t, d.WriteAt(ctx, w.p, w.off))
				require.NoError(t, d.Flush(ctx))
			}
			wantLvs := getLvstore(t, c, "lvs0")
			wantLvols := getLvols(t, c)
			require.Len(t, wantLvols, 3)

			// The restart: a fresh target, the same file.
			srv2 := spdktest.Start(t, model.Config{})
			c2 := srv2.Client()
			do(t, c2, spdk.OpBdevAioCreate(spdk.BdevAioCreateRequest{Name: "base2", Filename: path, BlockSize: bs}))
			gotLvs := getLvstore(t, c2, "lvs0")
			wantLvs.BaseBdev = "base2"
			assert.Equal(t, wantLvs, gotLvs)
			assert.Equal(t, wantLvols, getLvols(t, c2))
			ls, err := c2.BdevLvolGetLvols(ctx, spdk.BdevLvolGetLvolsRequest{})
			require.NoError(t, err)
			require.Len(t, ls, 3)
			assert.Equal(t, []string{uuids[0], uuids[1], uuids[3]}, []string{ls[0].UUID, ls[1].UUID, ls[2].UUID}, "creation order")
			bd, err := c2.BdevGetBdevs(ctx, spdk.BdevGetBdevsRequest{Name: "base2"})
			require.NoError(t, err)
			assert.True(t, bd[0].Claimed)
			assert.Equal(t, "read_many_write_one", bd[0].ClaimType)
			bd, err = c2.BdevGetBdevs(ctx, spdk.BdevGetBdevsRequest{Name: "lvs0/a"})
			require.NoError(t, err)
			assert.Equal(t, uint64(8<<20)/uint64(bs), bd[0].NumBlocks)

			for _, w := range []struct {
				name string
				p    []byte
				off  uint64
			}{{"lvs0/a", pa, 7 << 20}, {"lvs0/b", pb, 5 << 20}} {
				d, err := srv2.Target.Open(w.name)
				require.NoError(t, err)
				got := make([]byte, len(w.p))
				require.NoError(t, d.ReadAt(ctx, got, w.off))
				assert.True(t, bytes.Equal(w.p, got), w.name)
			}
			// The loaded lvstore works on: a new lvol, a delete.
			_, err = c2.BdevLvolCreate(ctx, spdk.BdevLvolCreateRequest{LvsName: "lvs0", LvolName: "d", SizeInMiB: 2})
			require.NoError(t, err)
			require.NoError(t, c2.BdevLvolDelete(ctx, "lvs0/c"))

			// Deleted: the next target finds nothing.
			require.NoError(t, c2.BdevLvolDeleteLvstore(ctx, spdk.LvstoreSelector{LvsName: "lvs0"}))
			srv3 := spdktest.Start(t, model.Config{})
			c3 := srv3.Client()
			do(t, c3, spdk.OpBdevAioCreate(spdk.BdevAioCreateRequest{Name: "base3", Filename: path, BlockSize: bs}))
			ls3, err := c3.BdevLvolGetLvstores(ctx, spdk.LvstoreSelector{})
			require.NoError(t, err)
			assert.Empty(t, ls3)
		})
	}
}

// TestLvolExamineLeavesAlone: examine neither loads nor writes a file that
// holds no lvstore, a damaged one, or one already loaded from another
// bdev; the bdev stays unclaimed.
func TestLvolExamineLeavesAlone(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	formatted := func(name string) string {
		path := filepath.Join(dir, name)
		dev, err := lvs.CreateFileDevice(path, 16<<20, 512)
		require.NoError(t, err)
		s, err := lvs.Format(dev, lvs.Options{Name: "lvsX", ClusterSize: 1 << 20})
		require.NoError(t, err)
		_, err = s.Create("v", 2<<20, false)
		require.NoError(t, err)
		require.NoError(t, s.Close())
		require.NoError(t, dev.Close())
		return path
	}
	corrupt := func(path string, off int64) {
		f, err := os.OpenFile(path, os.O_RDWR, 0)
		require.NoError(t, err)
		b := make([]byte, 1)
		_, err = f.ReadAt(b, off)
		require.NoError(t, err)
		b[0] ^= 0xff
		_, err = f.WriteAt(b, off)
		require.NoError(t, err)
		require.NoError(t, f.Close())
	}
	for _, tc := range []struct {
		name string
		file func() string
	}{
		{"random", func() string {
			path := filepath.Join(dir, "random")
			require.NoError(t, os.WriteFile(path, pattern(7, 8<<20), 0o600))
			return path
		}},
		{"zeroes", func() string {
			path := filepath.Join(dir, "zeroes")
			require.NoError(t, os.WriteFile(path, make([]byte, 8<<20), 0o600))
			return path
		}},
		{"bad superblock", func() string {
			path := formatted("badsb")
			corrupt(path, 130) // in the name: the checksum fails
			return path
		}},
		{"bad checkpoints", func() string {
			path := formatted("badcp")
			corrupt(path, 4096+70)       // slot 0's payload
			corrupt(path, 4096+36<<10+5) // slot 1's header
			return path
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var logs bytes.Buffer
			srv := spdktest.Start(t, model.Config{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
			c := srv.Client()
			path := tc.file()
			before, err := os.ReadFile(path)
			require.NoError(t, err)
			do(t, c, spdk.OpBdevAioCreate(spdk.BdevAioCreateRequest{Name: "a", Filename: path, BlockSize: 512}))
			ls, err := c.BdevLvolGetLvstores(ctx, spdk.LvstoreSelector{})
			require.NoError(t, err)
			assert.Empty(t, ls)
			bd, err := c.BdevGetBdevs(ctx, spdk.BdevGetBdevsRequest{Name: "a"})
			require.NoError(t, err)
			assert.False(t, bd[0].Claimed)
			do(t, c, spdk.OpBdevAioDelete("a"))
			after, err := os.ReadFile(path)
			require.NoError(t, err)
			assert.True(t, bytes.Equal(before, after), "not written")
			if strings.HasPrefix(tc.name, "bad") {
				assert.Contains(t, logs.String(), "examine", "the target's own logger hears of it")
			}
		})
	}

	t.Run("already loaded", func(t *testing.T) {
		srv := spdktest.Start(t, model.Config{})
		c := srv.Client()
		path := formatted("twice")
		do(t, c, spdk.OpBdevAioCreate(spdk.BdevAioCreateRequest{Name: "a", Filename: path, BlockSize: 512}))
		require.Len(t, getLvols(t, c), 1)
		cp := filepath.Join(dir, "copy")
		img, err := os.ReadFile(path)
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(cp, img, 0o600))
		do(t, c, spdk.OpBdevAioCreate(spdk.BdevAioCreateRequest{Name: "b", Filename: cp, BlockSize: 512}))
		ls, err := c.BdevLvolGetLvstores(ctx, spdk.LvstoreSelector{})
		require.NoError(t, err)
		require.Len(t, ls, 1)
		assert.Equal(t, "a", ls[0].BaseBdev)
		bd, err := c.BdevGetBdevs(ctx, spdk.BdevGetBdevsRequest{Name: "b"})
		require.NoError(t, err)
		assert.False(t, bd[0].Claimed)
		after, err := os.ReadFile(cp)
		require.NoError(t, err)
		assert.True(t, bytes.Equal(img, after), "not written")
	})
}
