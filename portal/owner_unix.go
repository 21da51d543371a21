//go:build unix

package portal

import (
	"errors"
	"os"
	"syscall"
)

// ownedByUs says whether this process's effective user owns the file.
func ownedByUs(fi os.FileInfo) bool {
	st, ok := fi.Sys().(*syscall.Stat_t)
	return ok && int(st.Uid) == os.Geteuid()
}

// openNoFollow opens path for reading unless it is a symbolic link
// (errSymlink), so that the file checked is the file read.
func openNoFollow(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NOFOLLOW, 0)
	if errors.Is(err, syscall.ELOOP) {
		return nil, errSymlink
	}
	return f, err
}
