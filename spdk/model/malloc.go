package model

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"sync"

	"github.com/virtual-disk-array/vda/lvs"
)

// The base bdev modules: malloc (RAM), null (discards writes) and aio (a
// file or block device). They make the bdevs everything else is built on.

// baseDisk is the module of a malloc or null bdev.
type baseDisk struct {
	null bool
	// mem holds a malloc bdev's data, made on first use (io.go).
	memOnce sync.Once
	mem     *memStore
}

func (d *baseDisk) moduleName() string {
	if d.null {
		return "null"
	}
	return "malloc"
}

func (d *baseDisk) productName() string {
	if d.null {
		return "Null disk"
	}
	return "Malloc disk"
}

func (d *baseDisk) ioTypes() ioTypes {
	if d.null {
		return ioTypes{Read: true, Write: true, Reset: true, WriteZeroes: true, Abort: true}
	}
	return ioTypes{Read: true, Write: true, Unmap: true, Flush: true, Reset: true, WriteZeroes: true,
		Zcopy: true, Compare: true, Abort: true, Copy: true}
}

func (d *baseDisk) hasNuma() bool              { return !d.null }
func (d *baseDisk) memoryDomains() []string    { return nil }
func (d *baseDisk) driverSpecific(*Target) any { return struct{}{} }

func (d *baseDisk) baseDomains() []string {
	if d.null {
		return nil
	}
	return []string{"DMA", "ACCEL"}
}

// aioDisk is the module of an aio bdev.
type aioDisk struct {
	filename          string
	blockSizeOverride bool
	readonly          bool
	fallocate         bool
	// The file, opened on the first I/O (io.go) and closed when the bdev
	// goes.
	fileMu sync.Mutex
	file   *lvs.FileDevice
}

func (d *aioDisk) moduleName() string  { return "aio" }
func (d *aioDisk) productName() string { return "AIO disk" }
func (d *aioDisk) ioTypes() ioTypes {
	return ioTypes{Read: true, Write: true, Flush: true, Reset: true, WriteZeroes: true}
}
func (d *aioDisk) hasNuma() bool           { return false }
func (d *aioDisk) memoryDomains() []string { return nil }
func (d *aioDisk) baseDomains() []string   { return nil }

func (d *aioDisk) driverSpecific(*Target) any {
	type aio struct {
		Filename          string `json:"filename"`
		BlockSizeOverride bool   `json:"block_size_override"`
		Readonly          bool   `json:"readonly"`
		Fallocate         bool   `json:"fallocate"`
		Nowait            bool   `json:"nowait"`
	}
	return struct {
		Aio aio `json:"aio"`
	}{aio{d.filename, d.blockSizeOverride, d.readonly, d.fallocate, false}}
}

// validBlockSize is the malloc and null check: a non-zero multiple of 512.
func validBlockSize(bs uint32) bool { return bs != 0 && bs%512 == 0 }

// bdevUUID returns the uuid asked for (canonicalised) or a new one.
func bdevUUID(r *request, asked string) (string, error) {
	if asked == "" {
		return newUUID(), nil
	}
	u, ok := canonicalUUID(asked)
	if !ok {
		return "", r.decodeErr()
	}
	return u, nil
}

// bdevMallocCreate: bdev_malloc_create {name?, num_blocks, block_size,
// uuid?, ...}. Unnamed disks are Malloc<N>, N counting unnamed disks.
func bdevMallocCreate(_ context.Context, t *Target, r *request) (any, error) {
	var p struct {
		Name              string `json:"name"`
		NumBlocks         uint64 `json:"num_blocks"`
		BlockSize         uint32 `json:"block_size"`
		PhysicalBlockSize uint32 `json:"physical_block_size"`
		UUID              string `json:"uuid"`
		OptimalIOBoundary uint32 `json:"optimal_io_boundary"`
		MdSize            uint32 `json:"md_size"`
		MdInterleave      bool   `json:"md_interleave"`
		DifType           int    `json:"dif_type"`
		DifIsHeadOfMd     bool   `json:"dif_is_head_of_md"`
		DifPiFormat       int    `json:"dif_pi_format"`
		NumaID            int    `json:"numa_id"`
	}
	if err := r.decode(&p, "num_blocks", "block_size"); err != nil {
		return nil, err
	}
	if !validBlockSize(p.BlockSize) || p.NumBlocks == 0 {
		return nil, r.errno(eINVAL)
	}
	u, err := bdevUUID(r, p.UUID)
	if err != nil {
		return nil, err
	}
	name := p.Name
	if name == "" {
		name = fmt.Sprintf("Malloc%d", t.mallocCount)
		t.mallocCount++
	}
	b := &bdev{name: name, aliases: []string{u}, uuid: u, blockSize: p.BlockSize, numBlocks: p.NumBlocks,
		module: &baseDisk{}}
	if err := t.register(b); err != nil {
		return nil, r.errno(eEXIST)
	}
	return name, nil
}

// deleteBaseBdev deletes a bdev by name or alias if it belongs to module;
// a bdev of another module looks like no bdev at all (-19).
func deleteBaseBdev(t *Target, r *request, module string) (any, error) {
	var p struct {
		Name string `json:"name"`
	}
	if err := r.decode(&p, "name"); err != nil {
		return nil, err
	}
	b := t.lookup(p.Name)
	if b == nil || b.module.moduleName() != module {
		return nil, r.errno(eNODEV)
	}
	t.unregister(b)
	return true, nil
}

// bdevMallocDelete: bdev_malloc_delete {name}.
func bdevMallocDelete(_ context.Context, t *Target, r *request) (any, error) {
	return deleteBaseBdev(t, r, "malloc")
}

// bdevNullCreate: bdev_null_create {name, num_blocks, block_size, ...};
// unlike malloc, name is required.
func bdevNullCreate(_ context.Context, t *Target, r *request) (any, error) {
	var p struct {
		Name              string `json:"name"`
		NumBlocks         uint64 `json:"num_blocks"`
		BlockSize         uint32 `json:"block_size"`
		PhysicalBlockSize uint32 `json:"physical_block_size"`
		UUID              string `json:"uuid"`
		MdSize            uint32 `json:"md_size"`
		DifType           int    `json:"dif_type"`
		DifIsHeadOfMd     bool   `json:"dif_is_head_of_md"`
		DifPiFormat       int    `json:"dif_pi_format"`
		NumaID            int    `json:"numa_id"`
	}
	if err := r.decode(&p, "name", "num_blocks", "block_size"); err != nil {
		return nil, err
	}
	if !validBlockSize(p.BlockSize) || p.NumBlocks == 0 {
		return nil, r.errno(eINVAL)
	}
	u, err := bdevUUID(r, p.UUID)
	if err != nil {
		return nil, err
	}
	b := &bdev{name: p.Name, aliases: []string{u}, uuid: u, blockSize: p.BlockSize, numBlocks: p.NumBlocks,
		module: &baseDisk{null: true}}
	if err := t.register(b); err != nil {
		return nil, r.errno(eEXIST)
	}
	return p.Name, nil
}

// bdevNullDelete: bdev_null_delete {name}.
func bdevNullDelete(_ context.Context, t *Target, r *request) (any, error) {
	return deleteBaseBdev(t, r, "null")
}

// bdevAioCreate: bdev_aio_create {name, filename, block_size?, readonly?,
// fallocate?, uuid?}. Nothing stops two aio bdevs sharing a file.
func bdevAioCreate(_ context.Context, t *Target, r *request) (any, error) {
	var p struct {
		Name      string `json:"name"`
		Filename  string `json:"filename"`
		BlockSize uint32 `json:"block_size"`
		Readonly  bool   `json:"readonly"`
		Fallocate bool   `json:"fallocate"`
		UUID      string `json:"uuid"`
	}
	if err := r.decode(&p, "name", "filename"); err != nil {
		return nil, err
	}
	size, device, err := t.fileSize(p.Filename)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil, r.errno(eNOENT)
	case err != nil:
		return nil, r.errno(eIO)
	}
	bs := p.BlockSize
	if bs == 0 {
		// SPDK asks the device for its logical block size; a regular file
		// has none ("Block size could not be auto-detected").
		if !device {
			return nil, r.errno(eINVAL)
		}
		bs = 512
	}
	if bs < 512 || bs&(bs-1) != 0 || uint64(size) < uint64(bs) {
		return nil, r.errno(eINVAL)
	}
	u, err := bdevUUID(r, p.UUID)
	if err != nil {
		return nil, err
	}
	b := &bdev{name: p.Name, aliases: []string{u}, uuid: u, blockSize: bs, numBlocks: uint64(size) / uint64(bs),
		module: &aioDisk{filename: p.Filename, blockSizeOverride: p.BlockSize != 0, readonly: p.Readonly,
			fallocate: p.Fallocate}}
	if err := t.register(b); err != nil {
		return nil, r.errno(eEXIST)
	}
	return p.Name, nil
}

// bdevAioDelete: bdev_aio_delete {name}.
func bdevAioDelete(_ context.Context, t *Target, r *request) (any, error) {
	return deleteBaseBdev(t, r, "aio")
}
