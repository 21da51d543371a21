package lvs

import "errors"

// Sentinel errors. Errors returned by the package wrap one of them (test
// with errors.Is) together with the detail and, for device errors, the
// device's own error.
var (
	// ErrNotFormatted: the device has no lvstore superblock.
	ErrNotFormatted = errors.New("lvs: device is not formatted")
	// ErrCorrupt: a superblock or metadata structure is present but fails
	// its checksum or its consistency checks.
	ErrCorrupt = errors.New("lvs: corrupt metadata")
	// ErrExist: an lvol of that name already exists.
	ErrExist = errors.New("lvs: lvol exists")
	// ErrNotFound: no lvol of that name (or the lvol has been deleted).
	ErrNotFound = errors.New("lvs: lvol not found")
	// ErrNoSpace: not enough free clusters, or the lvol table is full.
	ErrNoSpace = errors.New("lvs: no space")
	// ErrInvalid: an argument is out of range or misaligned.
	ErrInvalid = errors.New("lvs: invalid argument")
	// ErrClosed: the store has been closed.
	ErrClosed = errors.New("lvs: store closed")
	// ErrFailed: a metadata write failed, so the on-disk state is no longer
	// known; the store refuses further metadata changes until reopened.
	ErrFailed = errors.New("lvs: store failed")
)
