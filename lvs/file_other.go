//go:build !linux

package lvs

import (
	"errors"
	"os"
)

// Outside Linux the device runs buffered: O_DIRECT is Linux's.
func openDirect(path string, flag int) (*os.File, bool, error) {
	f, err := os.OpenFile(path, flag, 0)
	return f, false, err
}

func datasync(f *os.File) error { return f.Sync() }

func punchHole(*os.File, int64, int64) error { return errors.ErrUnsupported }

func logicalBlockSize(*os.File) int { return 512 }
