package lvs

import (
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"
)

// bounceSize is the size of the bounce buffers that carry unaligned caller
// buffers through O_DIRECT.
const bounceSize = 1 << 20

// FileDevice is a Device on a file or a block device (an aio bdev). It
// opens with O_DIRECT where the file system accepts it, so that data does
// not go through the page cache twice, and otherwise falls back to buffered
// I/O; either way Flush is fdatasync, which also flushes the drive's cache.
type FileDevice struct {
	f         *os.File
	size      int64
	bs        int
	direct    bool
	noDiscard atomic.Bool
	bounce    sync.Pool // of *[]byte, bounceSize bytes, aligned
}

// OpenFileDevice opens an existing file or block device read-write.
// blockSize 0 takes the logical block size of a block device and 512 for a
// regular file. The size is the file's size rounded down to the block size.
func OpenFileDevice(path string, blockSize int) (*FileDevice, error) {
	return openFileDevice(path, os.O_RDWR, blockSize)
}

// CreateFileDevice creates a new file of size bytes (it must not exist) and
// opens it as OpenFileDevice does.
func CreateFileDevice(path string, size int64, blockSize int) (*FileDevice, error) {
	if size < 0 {
		return nil, fmt.Errorf("%w: size %d", ErrInvalid, size)
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lvs: create %s: %w", path, err)
	}
	if err := f.Truncate(size); err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("lvs: size %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return nil, fmt.Errorf("lvs: create %s: %w", path, err)
	}
	return openFileDevice(path, os.O_RDWR, blockSize)
}

func openFileDevice(path string, flag, blockSize int) (*FileDevice, error) {
	if blockSize != 0 && !validBlockSize(blockSize) {
		return nil, fmt.Errorf("%w: block size %d (want 512 or 4096)", ErrInvalid, blockSize)
	}
	f, direct, err := openDirect(path, flag)
	if err != nil {
		return nil, fmt.Errorf("lvs: open %s: %w", path, err)
	}
	d, err := newFileDevice(f, direct, blockSize)
	if err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("lvs: open %s: %w", path, err)
	}
	if direct && !d.probeDirect() {
		// The file system took O_DIRECT at open but refuses it for I/O
		// of this block size (a 4096-byte-sector disk under 512-byte
		// I/O, for one): buffered I/O still works.
		_ = f.Close()
		f, err = os.OpenFile(path, flag, 0)
		if err != nil {
			return nil, fmt.Errorf("lvs: open %s: %w", path, err)
		}
		if d, err = newFileDevice(f, false, blockSize); err != nil {
			_ = f.Close()
			return nil, fmt.Errorf("lvs: open %s: %w", path, err)
		}
	}
	return d, nil
}

func newFileDevice(f *os.File, direct bool, blockSize int) (*FileDevice, error) {
	size, err := f.Seek(0, io.SeekEnd)
	if err != nil {
		return nil, err
	}
	if blockSize == 0 {
		blockSize = logicalBlockSize(f)
	}
	d := &FileDevice{f: f, size: size - size%int64(blockSize), bs: blockSize, direct: direct}
	d.bounce.New = func() any { b := AlignedBuffer(bounceSize); return &b }
	return d, nil
}

// probeDirect reads the first block through O_DIRECT, the cheapest way to
// learn whether the file system really accepts it.
func (d *FileDevice) probeDirect() bool {
	if d.size < int64(d.bs) {
		return true
	}
	b := AlignedBuffer(d.bs)
	_, err := d.f.ReadAt(b, 0)
	return err == nil
}

// Direct reports whether the device bypasses the page cache (O_DIRECT).
func (d *FileDevice) Direct() bool { return d.direct }

// Close closes the file.
func (d *FileDevice) Close() error {
	if err := d.f.Close(); err != nil {
		return fmt.Errorf("lvs: close %s: %w", d.f.Name(), err)
	}
	return nil
}

// ReadAt implements Device.
func (d *FileDevice) ReadAt(p []byte, off int64) (int, error) {
	if err := checkIO(len(p), off, d.size, d.bs); err != nil {
		return 0, err
	}
	if !d.direct || isAligned(p) {
		n, err := d.f.ReadAt(p, off)
		if err != nil {
			return n, fmt.Errorf("lvs: read %s at %d: %w", d.f.Name(), off, err)
		}
		return n, nil
	}
	bp := d.bounce.Get().(*[]byte)
	defer d.bounce.Put(bp)
	done := 0
	for done < len(p) {
		b := (*bp)[:min(len(p)-done, bounceSize)]
		if _, err := d.f.ReadAt(b, off+int64(done)); err != nil {
			return done, fmt.Errorf("lvs: read %s at %d: %w", d.f.Name(), off+int64(done), err)
		}
		done += copy(p[done:], b)
	}
	return done, nil
}

// WriteAt implements Device.
func (d *FileDevice) WriteAt(p []byte, off int64) (int, error) {
	if err := checkIO(len(p), off, d.size, d.bs); err != nil {
		return 0, err
	}
	if !d.direct || isAligned(p) {
		n, err := d.f.WriteAt(p, off)
		if err != nil {
			return n, fmt.Errorf("lvs: write %s at %d: %w", d.f.Name(), off, err)
		}
		return n, nil
	}
	bp := d.bounce.Get().(*[]byte)
	defer d.bounce.Put(bp)
	done := 0
	for done < len(p) {
		b := (*bp)[:min(len(p)-done, bounceSize)]
		copy(b, p[done:])
		if _, err := d.f.WriteAt(b, off+int64(done)); err != nil {
			return done, fmt.Errorf("lvs: write %s at %d: %w", d.f.Name(), off+int64(done), err)
		}
		done += len(b)
	}
	return done, nil
}

// Flush implements Device with fdatasync.
func (d *FileDevice) Flush() error {
	if err := datasync(d.f); err != nil {
		return fmt.Errorf("lvs: flush %s: %w", d.f.Name(), err)
	}
	return nil
}

// Discard implements Discarder by punching a hole (a zeroing discard on a
// block device), where the file system or device supports it.
func (d *FileDevice) Discard(off, n int64) error {
	if n < 0 || n > int64(^uint(0)>>1) {
		return fmt.Errorf("%w: discard of %d bytes", ErrInvalid, n)
	}
	if err := checkIO(int(n), off, d.size, d.bs); err != nil {
		return err
	}
	if d.noDiscard.Load() {
		return fmt.Errorf("lvs: discard %s: %w", d.f.Name(), errors.ErrUnsupported)
	}
	if err := punchHole(d.f, off, n); err != nil {
		if errors.Is(err, errors.ErrUnsupported) {
			d.noDiscard.Store(true)
		}
		return fmt.Errorf("lvs: discard %s at %d: %w", d.f.Name(), off, err)
	}
	return nil
}

// Size implements Device.
func (d *FileDevice) Size() int64 { return d.size }

// BlockSize implements Device.
func (d *FileDevice) BlockSize() int { return d.bs }
