package model

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/virtual-disk-array/vda/lvs"
)

// Lvol data: an lvstore on a base bdev with a data path is an lvs store
// (package lvs, docs/lvs.md) on that bdev, and each lvol's data path goes
// through its lvs.Lvol. The model keeps SPDK's own accounting (layout,
// totalDataClusters, freeClusters) for what the RPCs report; the lvs store
// is formatted so that it holds at least as many clusters as that
// accounting admits. Snapshots and clones stay objects without data (lvs
// has no shared clusters).
//
// The lvs calls do device I/O while the target's lock is held (as the rest
// of a request does), so an lvstore gets data only on a base whose data
// path never takes that lock: malloc, null, aio, raid0 over such bdevs and
// lvols with data. An NVMe namespace bdev (its data path picks a path under
// the lock) keeps an lvstore without data, as before.

// mallocJournal is the lvs journal on a malloc base: small, because the
// metadata lives in the malloc bdev's memory (lvs raises it to one
// checkpoint slot anyway).
const mallocJournal = 64 << 10

// lvsDev adapts a bdev's data path to lvs.Device (and lvs.Discarder: every
// base lvsCapable admits reads zeroes after an unmap). I/O counts on the
// base bdev, as a blobstore's does in SPDK; raw I/O (examine's probe) does
// not, nor waits for QoS.
type lvsDev struct {
	d   *Dev
	raw bool
}

func (v lvsDev) ReadAt(p []byte, off int64) (int, error) {
	var err error
	if v.raw {
		if err = v.d.check(uint64(off), uint64(len(p))); err == nil {
			err = v.d.dp.read(context.Background(), p, uint64(off))
		}
	} else {
		err = v.d.ReadAt(context.Background(), p, uint64(off))
	}
	if err != nil {
		return 0, err
	}
	return len(p), nil
}

func (v lvsDev) WriteAt(p []byte, off int64) (int, error) {
	if err := v.d.WriteAt(context.Background(), p, uint64(off)); err != nil {
		return 0, err
	}
	return len(p), nil
}

func (v lvsDev) Flush() error   { return v.d.Flush(context.Background()) }
func (v lvsDev) Size() int64    { return int64(v.d.Size()) }
func (v lvsDev) BlockSize() int { return int(v.d.BlockSize()) }
func (v lvsDev) Discard(off, n int64) error {
	return v.d.Unmap(context.Background(), uint64(off), uint64(n))
}

// lvsCapable says whether an lvstore on b gets data: b has a data path
// that does not take the target's lock, and a block size lvs supports.
func lvsCapable(b *bdev) bool {
	if b.gone || (b.blockSize != 512 && b.blockSize != 4096) {
		return false
	}
	switch m := b.module.(type) {
	case *baseDisk:
		return true
	case *aioDisk:
		// A read-only aio bdev cannot take the writes of format or load.
		return !m.readonly
	case *raid:
		if m.data() == nil {
			return false
		}
		for _, s := range m.slots {
			if s.b == nil || !lvsCapable(s.b) {
				return false
			}
		}
		return true
	case *lvol:
		return m.vol != nil
	}
	return false
}

// lvsDevice returns b's data path as an lvs device; nil if an lvstore on
// b has no data (see lvsCapable) or b's data path cannot be opened.
func lvsDevice(b *bdev, raw bool) *lvsDev {
	if !lvsCapable(b) {
		return nil
	}
	dp := b.dataPath()
	if dp == nil {
		return nil
	}
	return &lvsDev{d: &Dev{b: b, dp: dp}, raw: raw}
}

// formatLvs formats an lvs store named name on base with cluster size cs
// and uuid u, holding at least want data clusters: on a malloc base with a
// small journal; if the default geometry is too small, with the smallest
// journal and then smaller lvol tables. It returns nil and no error when
// lvs cannot represent the lvstore (an unsupported cluster size or
// cluster count): the lvstore then has no data. Errors wrap lvs.ErrNoSpace
// when no geometry holds want clusters.
func formatLvs(base *bdev, name string, u lvs.UUID, cs, want uint64) (*lvs.Store, error) {
	dev := lvsDevice(base, false)
	if dev == nil {
		return nil, nil
	}
	first := lvs.Options{Name: name, UUID: u, ClusterSize: cs}
	if _, ok := base.module.(*baseDisk); ok {
		first.JournalSize = mallocJournal
	}
	cands := []lvs.Options{first}
	for _, maxLvols := range []int{0, 64, 16, 1} {
		cands = append(cands, lvs.Options{Name: name, UUID: u, ClusterSize: cs, JournalSize: 4096, MaxLvols: maxLvols})
	}
	var lastErr error
	for _, o := range cands {
		n, err := lvs.Geometry(dev.Size(), dev.BlockSize(), o)
		switch {
		case errors.Is(err, lvs.ErrInvalid):
			return nil, nil
		case err != nil:
			lastErr = err
			continue
		case n < want:
			lastErr = fmt.Errorf("%w: %d data clusters, the lvstore reports %d", lvs.ErrNoSpace, n, want)
			continue
		}
		return lvs.Format(dev, o)
	}
	return nil, lastErr
}

// lvsErrno is the errno SPDK reports for an lvs failure.
func lvsErrno(err error) int {
	switch {
	case errors.Is(err, lvs.ErrNoSpace):
		return eNOSPC
	case errors.Is(err, lvs.ErrExist):
		return eEXIST
	case errors.Is(err, lvs.ErrInvalid):
		return eINVAL
	case errors.Is(err, lvs.ErrNotFound):
		return eNODEV
	}
	return eIO
}

// lvolData is an lvol's data path, through its lvs.Lvol.
type lvolData struct{ v *lvs.Lvol }

// dataPath is the lvol's data path; nil for an lvol without data (in an
// lvstore without data, a snapshot or a clone).
func (l *lvol) dataPath() dataPath {
	if l.vol == nil {
		return nil
	}
	return lvolData{l.vol}
}

// lvolErr maps lvs errors to the data path's: an lvol deleted or a store
// closed is ErrNoBdev, a bad range ErrRange; errors of the base device
// (already the model's) pass through, wrapped.
func lvolErr(err error) error {
	switch {
	case err == nil, errors.Is(err, ErrNoBdev), errors.Is(err, ErrPathDown), errors.Is(err, ErrRange):
		return err
	case errors.Is(err, lvs.ErrNotFound), errors.Is(err, lvs.ErrClosed):
		return fmt.Errorf("%w: %w", ErrNoBdev, err)
	case errors.Is(err, lvs.ErrInvalid):
		return fmt.Errorf("%w: %w", ErrRange, err)
	}
	return err
}

func (d lvolData) read(_ context.Context, p []byte, off uint64) error {
	_, err := d.v.ReadAt(p, int64(off))
	return lvolErr(err)
}

func (d lvolData) write(_ context.Context, p []byte, off uint64) error {
	_, err := d.v.WriteAt(p, int64(off))
	return lvolErr(err)
}

func (d lvolData) flush(context.Context) error { return lvolErr(d.v.Flush()) }

func (d lvolData) unmap(_ context.Context, off, n uint64) error {
	return lvolErr(d.v.Unmap(int64(off), int64(n)))
}

func (d lvolData) writeZeroes(_ context.Context, off, n uint64) error {
	return lvolErr(d.v.WriteZeroes(int64(off), int64(n)))
}

// allocatedClusters is num_allocated_clusters: for a thin lvol with data,
// what it has really written (lvs allocates on first write); otherwise the
// model's count (thick lvols own all their clusters; snapshots and clones
// move counts as SPDK's blobstore does).
func (l *lvol) allocatedClusters() uint64 {
	if l.vol != nil && l.thin && l.parent == nil && !l.snapshot {
		return l.vol.AllocatedClusters()
	}
	return l.allocated
}

// closeData closes the lvstore's lvs store (the base went away); destroy
// also erases its superblock (bdev_lvol_delete_lvstore), so that examine
// no longer finds it.
func (s *lvstore) closeData(log *slog.Logger, destroy bool) {
	if s.store == nil {
		return
	}
	var err error
	if destroy {
		err = s.store.Destroy()
	} else {
		err = s.store.Close()
	}
	if err != nil && destroy {
		log.Warn("spdk model: lvstore data not erased", "lvstore", s.name, "base", s.base.name, "err", err)
	}
	s.store = nil
}

// examineLvs is the lvol module's examine: a bdev that holds an lvs
// superblock gets its lvstore and lvols back, with their names, uuids,
// sizes, thin flags and data, and is claimed as by a created lvstore.
// Examine only reads until it finds a valid superblock; a damaged lvstore,
// or one whose name or uuid is already taken, is logged and left alone.
// A new malloc or null bdev is all zeroes and not examined.
func (t *Target) examineLvs(b *bdev) {
	if b.claim != nil {
		return
	}
	if _, ok := b.module.(*baseDisk); ok {
		return
	}
	probe := lvsDevice(b, true)
	if probe == nil {
		return
	}
	log := t.log.With("bdev", b.name)
	info, err := lvs.Probe(probe)
	switch {
	case errors.Is(err, lvs.ErrNotFormatted):
		return
	case err != nil:
		log.Warn("spdk model: examine: lvstore superblock ignored", "err", err)
		return
	}
	for _, s := range t.lvstores {
		if s.uuid == info.UUID.String() || s.name == info.Name {
			log.Warn("spdk model: examine: lvstore already loaded", "lvstore", info.Name, "uuid", info.UUID.String())
			return
		}
	}
	store, err := lvs.Open(lvsDevice(b, false))
	if err != nil {
		log.Warn("spdk model: examine: lvstore not loaded", "lvstore", info.Name, "err", err)
		return
	}
	cs := store.ClusterSize()
	totalData, maxGrowable := layout(b.sizeBytes(), cs)
	s := &lvstore{uuid: store.UUID().String(), name: store.Name(), base: b, clusterSize: cs,
		totalDataClusters: totalData, maxGrowableSize: maxGrowable, store: store}
	t.claimBdev(b, claimReadManyWriteOne, s)
	t.lvstores = append(t.lvstores, s)
	for _, v := range store.Lvols() {
		allocated := v.Clusters()
		if v.Thin() {
			allocated = v.AllocatedClusters()
		}
		if _, err := t.newLvol(s, v.Name(), v.UUID().String(), v.Clusters(), allocated, v.Thin(), v); err != nil {
			log.Warn("spdk model: examine: lvol not registered", "lvol", s.name+"/"+v.Name(), "uuid", v.UUID().String(), "err", err)
		}
	}
}
