package lvs

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"math/bits"
)

// On-disk constants; docs/lvs.md has the tables.
const (
	sbMagic       = "VDA_LVS\x00"
	formatVersion = 1
	// sbRegion is reserved for the superblock; sbUsed bytes of it are
	// written and checksummed, so the superblock fits one 512-byte sector.
	sbRegion = 4096
	sbUsed   = 512
	sbCRCOff = sbUsed - 4

	// mdAlign aligns the metadata regions so that they suit both block
	// sizes.
	mdAlign = 4096

	cpMagic      = 0x4353564c // "LVSC"
	cpHeaderLen  = 64
	cpCRCOff     = 60
	lvolEntryLen = 128
	ownerLen     = 8

	jMagic      = 0x4a53564c // "LVSJ"
	jHeaderLen  = 40
	jCRCOff     = 36
	maxNameLen  = 63
	logicalBits = 40

	// maxClusters: a cluster map entry is the physical cluster plus one
	// in a uint32.
	maxClusters = 1<<32 - 2

	defaultMinLvols   = 256
	defaultMaxLvols   = 65536
	defaultMinJournal = 1 << 20
)

// Limits of the format.
const (
	// DefaultClusterSize is SPDK's default cluster size, used when
	// Options.ClusterSize is 0.
	DefaultClusterSize = 4 << 20
	// MinClusterSize and MaxClusterSize bound Options.ClusterSize, which
	// must also be a power of two and at least the block size.
	MinClusterSize = 4096
	MaxClusterSize = 1 << 30
	// MaxLvolClusters bounds an lvol's size in clusters (a logical
	// cluster index fits the owner entry's 40 bits with room to spare).
	MaxLvolClusters = 1 << 32
	// MaxLvols bounds Options.MaxLvols: the owner entry keeps slot+1 in
	// its top 24 bits.
	MaxLvols = 1 << 20
)

// castagnoli is CRC32C's table; it is computed once and only read.
var castagnoli = crc32.MakeTable(crc32.Castagnoli)

func crc(parts ...[]byte) uint32 {
	var c uint32
	for _, p := range parts {
		c = crc32.Update(c, castagnoli, p)
	}
	return c
}

func roundUp(a, b uint64) uint64 { return (a + b - 1) / b * b }

// layout is the geometry of a formatted device; everything but the
// parameters (blockSize, clusterSize, deviceSize, maxLvols, journalSize)
// is derived by computeLayout, and Open recomputes it to check the
// superblock.
type layout struct {
	blockSize   uint64
	clusterSize uint64
	deviceSize  uint64
	maxLvols    uint64
	slotOff     [2]uint64
	slotSize    uint64
	journalOff  uint64
	journalSize uint64
	dataOff     uint64
	clusters    uint64
}

// computeLayout places, after the superblock, two checkpoint slots each
// large enough for a full lvol table and an owner entry per cluster, then
// the journal, then the clusters from the first cluster-aligned offset.
// journalSize 0 picks the default; any journal is at least a slot, which
// guarantees that every single change fits an empty journal (the largest,
// a thick create on a fragmented device, needs 8 bytes per two clusters).
func computeLayout(devSize, bs, cs, maxLvols, journalSize uint64) (layout, error) {
	l := layout{blockSize: bs, clusterSize: cs, deviceSize: devSize}
	if bs != 512 && bs != 4096 {
		return l, fmt.Errorf("%w: block size %d", ErrInvalid, bs)
	}
	if cs < MinClusterSize || cs > MaxClusterSize || bits.OnesCount64(cs) != 1 || cs < bs {
		return l, fmt.Errorf("%w: cluster size %d (a power of two from %d to %d)", ErrInvalid, cs, MinClusterSize, MaxClusterSize)
	}
	n0 := devSize / cs
	if maxLvols == 0 {
		maxLvols = min(max(n0, defaultMinLvols), defaultMaxLvols)
	}
	if maxLvols > MaxLvols {
		return l, fmt.Errorf("%w: max lvols %d (at most %d)", ErrInvalid, maxLvols, MaxLvols)
	}
	l.maxLvols = maxLvols
	l.slotSize = roundUp(cpHeaderLen+maxLvols*lvolEntryLen+n0*ownerLen, mdAlign)
	if journalSize == 0 {
		journalSize = defaultMinJournal
	}
	if journalSize > devSize {
		return l, fmt.Errorf("%w: journal of %d bytes on a device of %d", ErrNoSpace, journalSize, devSize)
	}
	l.journalSize = roundUp(max(journalSize, l.slotSize), mdAlign)
	l.slotOff = [2]uint64{sbRegion, sbRegion + l.slotSize}
	l.journalOff = sbRegion + 2*l.slotSize
	l.dataOff = roundUp(l.journalOff+l.journalSize, cs)
	if l.dataOff >= devSize || (devSize-l.dataOff)/cs == 0 {
		return l, fmt.Errorf("%w: device of %d bytes holds no cluster of %d after %d bytes of metadata", ErrNoSpace, devSize, cs, l.dataOff)
	}
	l.clusters = (devSize - l.dataOff) / cs
	if l.clusters > maxClusters {
		return l, fmt.Errorf("%w: %d clusters (at most %d; use larger clusters)", ErrInvalid, l.clusters, uint64(maxClusters))
	}
	return l, nil
}

// superblock is what block 0 holds.
type superblock struct {
	lay         layout
	uuid        UUID
	name        string
	formatNonce uint64
}

func (sb *superblock) encode() []byte {
	b := make([]byte, sbUsed)
	le := binary.LittleEndian
	copy(b[0:8], sbMagic)
	le.PutUint32(b[8:], formatVersion)
	le.PutUint32(b[12:], uint32(sb.lay.blockSize))
	le.PutUint64(b[16:], sb.lay.clusterSize)
	le.PutUint64(b[24:], sb.lay.deviceSize)
	le.PutUint64(b[32:], sb.lay.clusters)
	le.PutUint64(b[40:], sb.lay.dataOff)
	le.PutUint64(b[48:], sb.lay.slotOff[0])
	le.PutUint64(b[56:], sb.lay.slotOff[1])
	le.PutUint64(b[64:], sb.lay.slotSize)
	le.PutUint64(b[72:], sb.lay.journalOff)
	le.PutUint64(b[80:], sb.lay.journalSize)
	le.PutUint32(b[88:], uint32(sb.lay.maxLvols))
	b[92] = byte(len(sb.name))
	copy(b[96:112], sb.uuid[:])
	le.PutUint64(b[112:], sb.formatNonce)
	copy(b[120:120+maxNameLen], sb.name)
	le.PutUint32(b[sbCRCOff:], crc(b[:sbCRCOff]))
	return b
}

// decodeSuperblock checks everything it can without the rest of the
// device: the magic (else ErrNotFormatted), the checksum, the version and
// that the geometry is exactly what computeLayout makes of the parameters.
func decodeSuperblock(b []byte, dev Device) (*superblock, error) {
	if len(b) < sbUsed || string(b[0:8]) != sbMagic {
		return nil, ErrNotFormatted
	}
	le := binary.LittleEndian
	if got, want := crc(b[:sbCRCOff]), le.Uint32(b[sbCRCOff:]); got != want {
		return nil, fmt.Errorf("%w: superblock checksum %08x, want %08x", ErrCorrupt, got, want)
	}
	if v := le.Uint32(b[8:]); v != formatVersion {
		return nil, fmt.Errorf("%w: superblock version %d (this build reads %d)", ErrCorrupt, v, formatVersion)
	}
	sb := &superblock{formatNonce: le.Uint64(b[112:])}
	bs, cs, size := uint64(le.Uint32(b[12:])), le.Uint64(b[16:]), le.Uint64(b[24:])
	if bs != uint64(dev.BlockSize()) {
		return nil, fmt.Errorf("%w: formatted with block size %d, device has %d", ErrCorrupt, bs, dev.BlockSize())
	}
	if size > uint64(dev.Size()) {
		return nil, fmt.Errorf("%w: formatted for %d bytes, device has %d", ErrCorrupt, size, dev.Size())
	}
	lay, err := computeLayout(size, bs, cs, uint64(le.Uint32(b[88:])), le.Uint64(b[80:]))
	if err != nil {
		return nil, fmt.Errorf("%w: superblock geometry: %w", ErrCorrupt, err)
	}
	if lay.clusters != le.Uint64(b[32:]) || lay.dataOff != le.Uint64(b[40:]) ||
		lay.slotOff[0] != le.Uint64(b[48:]) || lay.slotOff[1] != le.Uint64(b[56:]) ||
		lay.slotSize != le.Uint64(b[64:]) || lay.journalOff != le.Uint64(b[72:]) ||
		lay.journalSize != le.Uint64(b[80:]) {
		return nil, fmt.Errorf("%w: superblock geometry is inconsistent", ErrCorrupt)
	}
	sb.lay = lay
	copy(sb.uuid[:], b[96:112])
	nl := int(b[92])
	if nl == 0 || nl > maxNameLen || bytes.ContainsRune(b[120:120+nl], 0) {
		return nil, fmt.Errorf("%w: superblock name length %d", ErrCorrupt, nl)
	}
	sb.name = string(b[120 : 120+nl])
	return sb, nil
}
