// Package lvs is the on-disk format of VDA's logical-volume store: a block
// device carved into fixed-size clusters that logical volumes (lvols) map
// through a per-lvol cluster map, as SPDK's lvstore does, but with a format
// of VDA's own.
//
// [Format] writes a superblock and empty metadata; [Open] finds them again
// and rebuilds the allocation state. A [Store] creates, resizes, renames and
// deletes lvols; an [Lvol] reads and writes at lvol offsets, allocating the
// clusters of a thin lvol on first write.
//
// Metadata changes are crash-safe: every change is one checksummed journal
// entry (or a new checkpoint in the older of two checkpoint slots), made
// durable before the call returns, so a crash at any moment leaves either
// the state before the change or the state after it. A thin allocation
// writes and flushes the cluster's data before its journal entry, so a
// cluster never becomes visible with another lvol's old contents. The layout
// and the protocol are described in docs/lvs.md.
//
// The package knows nothing of JSON-RPC; the SPDK object model maps its
// errors ([ErrExist], [ErrNotFound], [ErrNoSpace], ...) to SPDK's.
package lvs
