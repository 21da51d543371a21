package lvs_test

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/virtual-disk-array/vda/lvs"
)

func TestDevices(t *testing.T) {
	for _, k := range devKinds {
		for _, bs := range blockSizes {
			t.Run(fmt.Sprintf("%s/%d", k.name, bs), func(t *testing.T) {
				d := k.make(t, 1*mib+100, bs)
				assert.Equal(t, int64(1*mib), d.Size(), "size rounds down to the block size")
				assert.Equal(t, bs, d.BlockSize())
				p := pattern(3*bs, 0, 1)
				_, err := d.WriteAt(p, int64(bs))
				require.NoError(t, err)
				require.NoError(t, d.Flush())
				got := make([]byte, 3*bs+1)[1:] // unaligned memory
				_, err = d.ReadAt(got, int64(bs))
				require.NoError(t, err)
				assert.Equal(t, p, got)
				for _, bad := range []struct{ n, off int64 }{{int64(bs), 1}, {1, 0}, {int64(bs), 1 * mib}, {2 * int64(bs), 1*mib - int64(bs)}, {int64(bs), -int64(bs)}} {
					_, err := d.WriteAt(make([]byte, bad.n), bad.off)
					assert.ErrorIs(t, err, lvs.ErrInvalid, "write %d at %d", bad.n, bad.off)
					_, err = d.ReadAt(make([]byte, bad.n), bad.off)
					assert.ErrorIs(t, err, lvs.ErrInvalid, "read %d at %d", bad.n, bad.off)
				}
				require.NoError(t, d.(lvs.Discarder).Discard(2*int64(bs), int64(bs)))
				_, err = d.ReadAt(got, int64(bs))
				require.NoError(t, err)
				clear(p[bs : 2*bs])
				assert.Equal(t, p, got, "a discarded block reads zeroes")
			})
		}
	}
	_, err := lvs.NewMemDevice(1*mib, 1024)
	assert.ErrorIs(t, err, lvs.ErrInvalid)
	_, err = lvs.NewMemDeviceFrom(make([]byte, 1000), 512)
	assert.ErrorIs(t, err, lvs.ErrInvalid)

	dir := t.TempDir()
	_, err = lvs.OpenFileDevice(filepath.Join(dir, "missing"), 0)
	assert.ErrorIs(t, err, os.ErrNotExist)
	path := filepath.Join(dir, "f")
	require.NoError(t, os.WriteFile(path, make([]byte, 8192), 0o600))
	_, err = lvs.CreateFileDevice(path, 8192, 512)
	assert.ErrorIs(t, err, os.ErrExist, "CreateFileDevice never truncates an existing file")
	f, err := lvs.OpenFileDevice(path, 0)
	require.NoError(t, err)
	assert.Equal(t, 512, f.BlockSize(), "a regular file defaults to 512-byte blocks")
	assert.Equal(t, int64(8192), f.Size())
	require.NoError(t, f.Close())
}

func TestAlignedBuffer(t *testing.T) {
	for _, n := range []int{0, 1, 4096, 100000} {
		b := lvs.AlignedBuffer(n)
		assert.Len(t, b, n)
		if n > 0 {
			assert.Zero(t, uintptrOf(b)%4096)
		}
	}
}
