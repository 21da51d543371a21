package lvs

import "fmt"

// Geometry reports how many data clusters Format would give a device of
// size bytes and block size blockSize with options o, without touching a
// device: a caller that must offer at least some number of clusters (the
// SPDK model, whose blobstore accounting is not this format's) picks its
// options with it. Errors are those of Format: ErrNoSpace if not one
// cluster fits after the metadata, ErrInvalid for bad parameters.
func Geometry(size int64, blockSize int, o Options) (clusters uint64, err error) {
	if !validBlockSize(blockSize) {
		return 0, fmt.Errorf("%w: block size %d (want 512 or 4096)", ErrInvalid, blockSize)
	}
	if size < 0 || o.MaxLvols < 0 || o.JournalSize < 0 {
		return 0, fmt.Errorf("%w: negative size, MaxLvols or JournalSize", ErrInvalid)
	}
	cs := o.ClusterSize
	if cs == 0 {
		cs = DefaultClusterSize
	}
	lay, err := computeLayout(uint64(size), uint64(blockSize), cs, uint64(o.MaxLvols), uint64(o.JournalSize))
	if err != nil {
		return 0, err
	}
	return lay.clusters, nil
}

// Info is what a device's superblock says, read by Probe.
type Info struct {
	Name        string
	UUID        UUID
	ClusterSize uint64
	// Clusters is the number of data clusters.
	Clusters uint64
}

// Probe reads and checks dev's superblock without writing anything (Open
// writes a fresh checkpoint): ErrNotFormatted if dev holds no lvstore,
// ErrCorrupt if its superblock is damaged. A caller that must not open
// the same lvstore twice (an lvstore of that name or UUID is already open
// from another device) looks first with Probe.
func Probe(dev Device) (Info, error) {
	bs := dev.BlockSize()
	if !validBlockSize(bs) {
		return Info{}, fmt.Errorf("%w: block size %d (want 512 or 4096)", ErrInvalid, bs)
	}
	if dev.Size() < sbRegion {
		return Info{}, ErrNotFormatted
	}
	blk := AlignedBuffer(sbRegion)
	if _, err := dev.ReadAt(blk, 0); err != nil {
		return Info{}, fmt.Errorf("lvs: read superblock: %w", err)
	}
	sb, err := decodeSuperblock(blk, dev)
	if err != nil {
		return Info{}, err
	}
	return Info{Name: sb.name, UUID: sb.uuid, ClusterSize: sb.lay.clusterSize, Clusters: sb.lay.clusters}, nil
}

// Destroy closes the store and erases its superblock, so that the device
// no longer holds an lvstore (Open and Probe answer ErrNotFormatted), as
// SPDK's bdev_lvol_delete_lvstore does. The lvols' data is not cleared.
func (s *Store) Destroy() error {
	if err := s.Close(); err != nil {
		return err
	}
	if _, err := s.dev.WriteAt(AlignedBuffer(sbRegion), 0); err != nil {
		return fmt.Errorf("lvs: destroy: %w", err)
	}
	if err := s.dev.Flush(); err != nil {
		return fmt.Errorf("lvs: destroy: %w", err)
	}
	return nil
}
