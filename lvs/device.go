package lvs

import (
	"fmt"
	"unsafe"
)

// Device is the block device an lvstore lives on. All I/O the package
// issues is aligned to BlockSize in offset and length; buffers it allocates
// itself are also aligned in memory (see [AlignedBuffer]), but buffers that
// callers pass to [Lvol.ReadAt] and [Lvol.WriteAt] are handed through as they
// are, so a device with memory-alignment needs (O_DIRECT) must cope with
// unaligned ones.
//
// ReadAt and WriteAt may be called concurrently on disjoint ranges. A write
// that has returned need not be durable until a later Flush returns; a
// crash may lose or tear any write not followed by a completed Flush.
type Device interface {
	ReadAt(p []byte, off int64) (int, error)
	WriteAt(p []byte, off int64) (int, error)
	// Flush makes every write that returned before the call durable.
	Flush() error
	// Size is the device's size in bytes.
	Size() int64
	// BlockSize is 512 or 4096.
	BlockSize() int
}

// Discarder is implemented by devices that can deallocate a range so that
// it reads back as zeroes (a hole punch, an unmap with deterministic
// zeroes). Discard must return an error wrapping errors.ErrUnsupported when
// it cannot guarantee the zeroes; the store then writes zeroes instead.
type Discarder interface {
	Discard(off, n int64) error
}

// memAlign is the memory alignment of buffers the package allocates: the
// largest block size, so they suit O_DIRECT on any supported device.
const memAlign = 4096

// AlignedBuffer returns a zeroed buffer of n bytes whose address is a
// multiple of 4096, as O_DIRECT needs.
func AlignedBuffer(n int) []byte {
	if n == 0 {
		return []byte{}
	}
	b := make([]byte, n+memAlign)
	off := int(-uintptr(unsafe.Pointer(&b[0])) & (memAlign - 1))
	return b[off : off+n : off+n]
}

func isAligned(p []byte) bool {
	return len(p) == 0 || uintptr(unsafe.Pointer(&p[0]))&(memAlign-1) == 0
}

func validBlockSize(bs int) bool { return bs == 512 || bs == 4096 }

// checkIO refuses misaligned or out-of-range device I/O; the devices in
// this package enforce the alignment promise so that tests catch any
// violation.
func checkIO(n int, off, size int64, bs int) error {
	if off < 0 || off%int64(bs) != 0 || n%bs != 0 {
		return fmt.Errorf("%w: device I/O of %d bytes at %d not aligned to %d", ErrInvalid, n, off, bs)
	}
	if off > size || int64(n) > size-off {
		return fmt.Errorf("%w: device I/O of %d bytes at %d beyond size %d", ErrInvalid, n, off, size)
	}
	return nil
}

// MemDevice is a Device in memory, for malloc bdevs and tests. Flush is a
// no-op: memory is as durable as it gets. Concurrent overlapping writes race
// as they would on a disk (the caller's business).
type MemDevice struct {
	buf []byte
	bs  int
}

// NewMemDevice returns a zeroed in-memory device of size bytes (rounded
// down to the block size).
func NewMemDevice(size int64, blockSize int) (*MemDevice, error) {
	if !validBlockSize(blockSize) {
		return nil, fmt.Errorf("%w: block size %d (want 512 or 4096)", ErrInvalid, blockSize)
	}
	if size < 0 {
		return nil, fmt.Errorf("%w: size %d", ErrInvalid, size)
	}
	size -= size % int64(blockSize)
	return &MemDevice{buf: make([]byte, size), bs: blockSize}, nil
}

// NewMemDeviceFrom returns a device over a copy of img (whose length must
// be a multiple of the block size), e.g. an image saved with Bytes.
func NewMemDeviceFrom(img []byte, blockSize int) (*MemDevice, error) {
	if !validBlockSize(blockSize) || len(img)%blockSize != 0 {
		return nil, fmt.Errorf("%w: image of %d bytes with block size %d", ErrInvalid, len(img), blockSize)
	}
	return &MemDevice{buf: append([]byte(nil), img...), bs: blockSize}, nil
}

// Bytes returns the device's contents; the slice aliases the device.
func (d *MemDevice) Bytes() []byte { return d.buf }

// ReadAt implements Device.
func (d *MemDevice) ReadAt(p []byte, off int64) (int, error) {
	if err := checkIO(len(p), off, int64(len(d.buf)), d.bs); err != nil {
		return 0, err
	}
	return copy(p, d.buf[off:]), nil
}

// WriteAt implements Device.
func (d *MemDevice) WriteAt(p []byte, off int64) (int, error) {
	if err := checkIO(len(p), off, int64(len(d.buf)), d.bs); err != nil {
		return 0, err
	}
	return copy(d.buf[off:], p), nil
}

// Discard implements Discarder by zeroing the range.
func (d *MemDevice) Discard(off, n int64) error {
	if n < 0 || n > int64(^uint(0)>>1) {
		return fmt.Errorf("%w: discard of %d bytes", ErrInvalid, n)
	}
	if err := checkIO(int(n), off, int64(len(d.buf)), d.bs); err != nil {
		return err
	}
	clear(d.buf[off : off+n])
	return nil
}

// Flush implements Device.
func (d *MemDevice) Flush() error { return nil }

// Size implements Device.
func (d *MemDevice) Size() int64 { return int64(len(d.buf)) }

// BlockSize implements Device.
func (d *MemDevice) BlockSize() int { return d.bs }
