package lvs

import (
	"errors"
	"fmt"
	"os"
	"syscall"
	"unsafe"
)

// openDirect opens path with O_DIRECT, or without it where the file system
// refuses it at open (EINVAL, as tmpfs does on older kernels).
func openDirect(path string, flag int) (*os.File, bool, error) {
	f, err := os.OpenFile(path, flag|syscall.O_DIRECT, 0)
	if err == nil {
		return f, true, nil
	}
	if !errors.Is(err, syscall.EINVAL) {
		return nil, false, err
	}
	f, err = os.OpenFile(path, flag, 0)
	return f, false, err
}

func datasync(f *os.File) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	if err := rc.Control(func(fd uintptr) {
		for {
			serr = syscall.Fdatasync(int(fd))
			if serr != syscall.EINTR {
				return
			}
		}
	}); err != nil {
		return err
	}
	return serr
}

const (
	fallocKeepSize  = 0x01 // FALLOC_FL_KEEP_SIZE
	fallocPunchHole = 0x02 // FALLOC_FL_PUNCH_HOLE
	blkSSZGet       = 0x1268
)

func punchHole(f *os.File, off, n int64) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	if err := rc.Control(func(fd uintptr) {
		serr = syscall.Fallocate(int(fd), fallocKeepSize|fallocPunchHole, off, n)
	}); err != nil {
		return err
	}
	if serr == syscall.EOPNOTSUPP || serr == syscall.ENOSYS {
		return fmt.Errorf("%w: %w", errors.ErrUnsupported, serr)
	}
	return serr
}

// logicalBlockSize is the logical sector size of a block device, which
// O_DIRECT I/O must be aligned to, and 512 for anything else.
func logicalBlockSize(f *os.File) int {
	st, err := f.Stat()
	if err != nil || st.Mode()&os.ModeDevice == 0 || st.Mode()&os.ModeCharDevice != 0 {
		return 512
	}
	rc, err := f.SyscallConn()
	if err != nil {
		return 512
	}
	var v int32
	var errno syscall.Errno
	_ = rc.Control(func(fd uintptr) {
		_, _, errno = syscall.Syscall(syscall.SYS_IOCTL, fd, blkSSZGet, uintptr(unsafe.Pointer(&v)))
	})
	if errno != 0 || !validBlockSize(int(v)) {
		return 512
	}
	return int(v)
}
