package lvs

import (
	"bytes"
	"cmp"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
)

// Options configure Format.
type Options struct {
	// Name is the lvstore's name: 1 to 63 bytes, no NUL.
	Name string
	// UUID is the lvstore's UUID; the zero UUID picks a random one.
	UUID UUID
	// ClusterSize is the allocation unit: a power of two from 4 KiB to
	// 1 GiB and at least the block size; 0 means DefaultClusterSize.
	ClusterSize uint64
	// MaxLvols sizes the lvol table; 0 means one per cluster, but at
	// least 256 and at most 65536.
	MaxLvols int
	// JournalSize is the size of the journal region in bytes; 0 means
	// 1 MiB. It is raised to at least the size of a checkpoint. A larger
	// journal writes checkpoints less often.
	JournalSize int64
}

// Store is an open lvstore. Its methods are safe for concurrent use. If a
// metadata write fails the store fails: changes (and thin first writes)
// return ErrFailed until the device is opened again, while reads and writes
// to allocated clusters go on.
type Store struct {
	dev         Device
	lay         layout
	uuid        UUID
	name        string
	formatNonce uint64
	zero        []byte // read-only zeroes for zero-filling clusters

	// opMu serializes the changes that lvol I/O does not make (create,
	// delete, resize, rename, close), so each can check and then commit
	// without another slipping in between.
	opMu   sync.Mutex
	closed atomic.Bool

	// mu guards the lvol table and the allocation bitmap. Lvol I/O to
	// allocated clusters never takes it.
	mu        sync.RWMutex
	slots     []*Lvol
	byName    map[string]*Lvol
	byUUID    map[UUID]*Lvol
	used      bitmap
	nused     uint64
	hint      uint64
	nextOrder uint64

	// cmu guards the commit queue and the failure; the rest of the
	// journal state belongs to whichever goroutine leads the commits.
	cmu     sync.Mutex
	queue   []*commitReq
	leading bool
	failed  error

	owner  []uint64 // committed owner of each cluster: (slot+1)<<40 | logical; 0 free
	seq    uint64   // last sequence number written (checkpoint or entry)
	jnonce uint64   // the current checkpoint's journal nonce
	jpos   uint64   // next entry's offset in the journal
	active int      // slot of the current checkpoint
	jbuf   []byte
}

// commitReq is one change (a few records) waiting for the leader to make it
// durable and apply it.
type commitReq struct {
	recs    []rec
	enc     []byte
	barrier bool // data written by the caller must be durable first
	done    chan error
}

func randUint64() uint64 {
	var b [8]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (it crashes the program instead)
	return binary.LittleEndian.Uint64(b[:])
}

func checkName(what, name string) error {
	if name == "" || len(name) > maxNameLen || bytes.IndexByte([]byte(name), 0) >= 0 {
		return fmt.Errorf("%w: %s name %q (1 to %d bytes, no NUL)", ErrInvalid, what, name, maxNameLen)
	}
	return nil
}

func newStore(dev Device, sb *superblock) *Store {
	return &Store{
		dev:         dev,
		lay:         sb.lay,
		uuid:        sb.uuid,
		name:        sb.name,
		formatNonce: sb.formatNonce,
		zero:        AlignedBuffer(int(min(sb.lay.clusterSize, 1<<20))),
		slots:       make([]*Lvol, sb.lay.maxLvols),
		byName:      map[string]*Lvol{},
		byUUID:      map[UUID]*Lvol{},
		used:        newBitmap(sb.lay.clusters),
		owner:       make([]uint64, sb.lay.clusters),
	}
}

// Format writes an empty lvstore on dev, overwriting whatever was there,
// and returns it open.
func Format(dev Device, o Options) (*Store, error) {
	bs := dev.BlockSize()
	if !validBlockSize(bs) {
		return nil, fmt.Errorf("%w: block size %d (want 512 or 4096)", ErrInvalid, bs)
	}
	if err := checkName("lvstore", o.Name); err != nil {
		return nil, err
	}
	if o.MaxLvols < 0 || o.JournalSize < 0 {
		return nil, fmt.Errorf("%w: negative MaxLvols or JournalSize", ErrInvalid)
	}
	cs := o.ClusterSize
	if cs == 0 {
		cs = DefaultClusterSize
	}
	if dev.Size() < 0 {
		return nil, fmt.Errorf("%w: device size %d", ErrInvalid, dev.Size())
	}
	lay, err := computeLayout(uint64(dev.Size()), uint64(bs), cs, uint64(o.MaxLvols), uint64(o.JournalSize))
	if err != nil {
		return nil, err
	}
	sb := &superblock{lay: lay, uuid: o.UUID, name: o.Name, formatNonce: randUint64()}
	if sb.uuid.IsZero() {
		sb.uuid = NewUUID()
	}
	// The old superblock goes first, so that a crash during Format leaves
	// a device that is plainly not formatted, never an old superblock over
	// new metadata. Stale checkpoints and journal entries need no erasing:
	// they carry the old format's nonce.
	blk := AlignedBuffer(sbRegion)
	if _, err := dev.WriteAt(blk, 0); err != nil {
		return nil, fmt.Errorf("lvs: format: %w", err)
	}
	if err := dev.Flush(); err != nil {
		return nil, fmt.Errorf("lvs: format: %w", err)
	}
	s := newStore(dev, sb)
	s.active = 1 // so that the first checkpoint goes to slot 0
	if err := s.writeCheckpoint(); err != nil {
		return nil, fmt.Errorf("lvs: format: %w", err)
	}
	copy(blk, sb.encode())
	if _, err := dev.WriteAt(blk, 0); err != nil {
		return nil, fmt.Errorf("lvs: format: write superblock: %w", err)
	}
	if err := dev.Flush(); err != nil {
		return nil, fmt.Errorf("lvs: format: %w", err)
	}
	return s, nil
}

// Open examines dev and opens the lvstore on it: ErrNotFormatted if there
// is none, ErrCorrupt if its metadata is damaged. It replays the journal
// onto the newer valid checkpoint and then writes a fresh checkpoint, so
// that the journal starts empty and nothing half-written at the crash can
// be mistaken for an entry later.
func Open(dev Device) (*Store, error) {
	bs := dev.BlockSize()
	if !validBlockSize(bs) {
		return nil, fmt.Errorf("%w: block size %d (want 512 or 4096)", ErrInvalid, bs)
	}
	if dev.Size() < sbRegion {
		return nil, ErrNotFormatted
	}
	blk := AlignedBuffer(sbRegion)
	if _, err := dev.ReadAt(blk, 0); err != nil {
		return nil, fmt.Errorf("lvs: read superblock: %w", err)
	}
	sb, err := decodeSuperblock(blk, dev)
	if err != nil {
		return nil, err
	}
	s := newStore(dev, sb)
	// The newer checkpoint is read first; the older one only if the newer
	// does not check out (a crash while it was being written).
	var (
		hdrs    [2]cpHeader
		reasons [2]error
		body    []byte
		best    = -1
	)
	for i := range 2 {
		if hdrs[i], reasons[i], err = s.readSlotHeader(i); err != nil {
			return nil, err
		}
	}
	order := []int{0, 1}
	if hdrs[1].seq > hdrs[0].seq {
		order = []int{1, 0}
	}
	for _, i := range order {
		if reasons[i] != nil {
			continue
		}
		if body, reasons[i], err = s.readSlotBody(i, hdrs[i]); err != nil {
			return nil, err
		}
		if reasons[i] == nil {
			best = i
			break
		}
	}
	if best < 0 {
		return nil, fmt.Errorf("%w: no valid checkpoint (slot 0: %v; slot 1: %v)", ErrCorrupt, reasons[0], reasons[1])
	}
	if err := s.loadCheckpoint(hdrs[best], body); err != nil {
		return nil, fmt.Errorf("%w: checkpoint in slot %d: %w", ErrCorrupt, best, err)
	}
	s.seq, s.jnonce, s.active = hdrs[best].seq, hdrs[best].jnonce, best
	if err := s.replay(); err != nil {
		return nil, err
	}
	for _, l := range s.slots {
		if l != nil && !l.thin && l.nalloc.Load() != l.nclusters.Load() {
			return nil, fmt.Errorf("%w: thick lvol %q has %d of its %d clusters", ErrCorrupt, l.name, l.nalloc.Load(), l.nclusters.Load())
		}
	}
	if err := s.writeCheckpoint(); err != nil {
		return nil, fmt.Errorf("lvs: open: %w", err)
	}
	return s, nil
}

// cpHeader is a checkpoint's header.
type cpHeader struct {
	seq, jnonce, plen uint64
	nlvols            uint32
}

// readSlotHeader reads the header of checkpoint slot i. A slot that does
// not hold a checkpoint of this format is reported in invalid; err is for
// device errors only.
func (s *Store) readSlotHeader(i int) (h cpHeader, invalid, err error) {
	first := AlignedBuffer(int(s.lay.blockSize))
	if _, err := s.dev.ReadAt(first, int64(s.lay.slotOff[i])); err != nil {
		return h, nil, fmt.Errorf("lvs: read checkpoint slot %d: %w", i, err)
	}
	le := binary.LittleEndian
	if le.Uint32(first[0:]) != cpMagic {
		return h, errors.New("no checkpoint"), nil
	}
	if v := le.Uint32(first[4:]); v != formatVersion {
		return h, fmt.Errorf("checkpoint version %d", v), nil
	}
	if le.Uint64(first[16:]) != s.formatNonce {
		return h, errors.New("checkpoint of an earlier format"), nil
	}
	h = cpHeader{seq: le.Uint64(first[8:]), jnonce: le.Uint64(first[24:]), nlvols: le.Uint32(first[32:]), plen: le.Uint64(first[40:])}
	if h.plen > s.lay.slotSize-cpHeaderLen {
		return h, fmt.Errorf("checkpoint length %d exceeds its slot", h.plen), nil
	}
	return h, nil, nil
}

// readSlotBody reads the checkpoint whose header is h and checks its
// checksum; it returns the payload.
func (s *Store) readSlotBody(i int, h cpHeader) (payload []byte, invalid, err error) {
	b := AlignedBuffer(int(roundUp(cpHeaderLen+h.plen, s.lay.blockSize)))
	if _, err := s.dev.ReadAt(b, int64(s.lay.slotOff[i])); err != nil {
		return nil, nil, fmt.Errorf("lvs: read checkpoint slot %d: %w", i, err)
	}
	le := binary.LittleEndian
	if got, want := crc(b[:cpCRCOff], b[cpHeaderLen:cpHeaderLen+h.plen]), le.Uint32(b[cpCRCOff:]); got != want {
		return nil, fmt.Errorf("checkpoint checksum %08x, want %08x", got, want), nil
	}
	return b[cpHeaderLen : cpHeaderLen+h.plen], nil, nil
}

// encodeCheckpoint lays out the whole committed state: the lvol table and
// the owner of every cluster. Only the leader (or Format and Open, alone)
// calls it, and the leader is the only goroutine that changes that state.
func (s *Store) encodeCheckpoint(seq, jnonce uint64) []byte {
	nl := 0
	for _, l := range s.slots {
		if l != nil {
			nl++
		}
	}
	plen := uint64(nl)*lvolEntryLen + s.lay.clusters*ownerLen
	b := AlignedBuffer(int(roundUp(cpHeaderLen+plen, s.lay.blockSize)))
	le := binary.LittleEndian
	le.PutUint32(b[0:], cpMagic)
	le.PutUint32(b[4:], formatVersion)
	le.PutUint64(b[8:], seq)
	le.PutUint64(b[16:], s.formatNonce)
	le.PutUint64(b[24:], jnonce)
	le.PutUint32(b[32:], uint32(nl))
	le.PutUint64(b[40:], plen)
	p := b[cpHeaderLen:]
	for _, l := range s.slots {
		if l == nil {
			continue
		}
		e := p[:lvolEntryLen]
		le.PutUint32(e[0:], l.slot)
		if l.thin {
			le.PutUint32(e[4:], flagThin)
		}
		le.PutUint64(e[8:], l.nclusters.Load())
		le.PutUint64(e[16:], l.order)
		copy(e[24:40], l.uuid[:])
		e[40] = byte(len(l.name))
		copy(e[41:41+maxNameLen], l.name)
		p = p[lvolEntryLen:]
	}
	for _, o := range s.owner {
		le.PutUint64(p, o)
		p = p[ownerLen:]
	}
	le.PutUint32(b[cpCRCOff:], crc(b[:cpCRCOff], b[cpHeaderLen:cpHeaderLen+plen]))
	return b
}

// loadCheckpoint rebuilds the state from a checkpoint's payload, checking
// it as if it came from an adversary: every lvol and every owner entry is
// validated by the same apply that replays the journal.
func (s *Store) loadCheckpoint(h cpHeader, p []byte) error {
	if uint64(h.nlvols) > s.lay.maxLvols || h.plen != uint64(h.nlvols)*lvolEntryLen+s.lay.clusters*ownerLen {
		return fmt.Errorf("%d lvols in %d bytes", h.nlvols, h.plen)
	}
	le := binary.LittleEndian
	s.mu.Lock()
	defer s.mu.Unlock()
	for range h.nlvols {
		e := p[:lvolEntryLen]
		p = p[lvolEntryLen:]
		f := le.Uint32(e[4:])
		if f&^flagThin != 0 {
			return fmt.Errorf("unknown lvol flags %#x", f)
		}
		nl := int(e[40])
		if nl > maxNameLen {
			return fmt.Errorf("lvol name length %d", nl)
		}
		// A thick lvol is created empty here and gets its clusters from
		// the owner table below; Open checks that it got them all.
		r := rec{op: opCreate, slot: le.Uint32(e[0:]), thin: true, clusters: le.Uint64(e[8:]),
			order: le.Uint64(e[16:]), name: string(e[41 : 41+nl])}
		copy(r.uuid[:], e[24:40])
		if err := s.apply(&r, true); err != nil {
			return err
		}
		s.slots[r.slot].thin = f&flagThin != 0
	}
	for phys := range s.lay.clusters {
		o := le.Uint64(p)
		p = p[ownerLen:]
		if o == 0 {
			continue
		}
		slot, logical := o>>logicalBits-1, o&(1<<logicalBits-1)
		if slot >= s.lay.maxLvols || s.slots[slot] == nil {
			return fmt.Errorf("cluster %d owned by missing lvol slot %d", phys, slot)
		}
		l := s.slots[slot]
		if logical >= l.nclusters.Load() || l.m.get(logical) != 0 {
			return fmt.Errorf("cluster %d maps lvol %q cluster %d, out of range or mapped twice", phys, l.name, logical)
		}
		s.own(l, logical, uint32(phys))
	}
	return nil
}

// replay applies the journal entries that follow the checkpoint: the run
// of entries with the checkpoint's nonce and consecutive sequence numbers
// whose checksums hold. The first that does not is where the log ends: a
// torn or never-completed write, or an entry of an earlier generation.
//
// Entries are written one at a time, each flushed before the next, so
// nothing valid can follow the end of the log. A valid entry of this
// format numbered beyond it means an entry in the middle was damaged, or
// the newer checkpoint was (its generation's entries overwrote the older
// checkpoint's): either way acknowledged changes would be lost, and Open
// says so rather than going back in time.
func (s *Store) replay() error {
	j := AlignedBuffer(int(s.lay.journalSize))
	if _, err := s.dev.ReadAt(j, int64(s.lay.journalOff)); err != nil {
		return fmt.Errorf("lvs: read journal: %w", err)
	}
	bs := s.lay.blockSize
	pos := uint64(0)
	for {
		plen, ok := s.entryAt(j, pos)
		if !ok || binary.LittleEndian.Uint64(j[pos+8:]) != s.seq+1 || binary.LittleEndian.Uint64(j[pos+16:]) != s.jnonce {
			break
		}
		recs, err := decodeRecords(j[pos+jHeaderLen : pos+jHeaderLen+plen])
		if err != nil {
			return fmt.Errorf("%w: journal entry %d: %w", ErrCorrupt, s.seq+1, err)
		}
		s.mu.Lock()
		for i := range recs {
			if err = s.apply(&recs[i], true); err != nil {
				break
			}
		}
		s.mu.Unlock()
		if err != nil {
			return fmt.Errorf("%w: journal entry %d: %w", ErrCorrupt, s.seq+1, err)
		}
		s.seq++
		pos += roundUp(jHeaderLen+plen, bs)
	}
	s.jpos = pos
	for q := uint64(0); q < uint64(len(j)); q += bs {
		if _, ok := s.entryAt(j, q); ok {
			if seq := binary.LittleEndian.Uint64(j[q+8:]); seq > s.seq {
				return fmt.Errorf("%w: journal entry %d survives but the log ends at %d (a damaged entry or checkpoint)", ErrCorrupt, seq, s.seq)
			}
		}
	}
	return nil
}

// entryAt reports whether a whole, checksummed journal entry of this
// format starts at pos, and its payload length.
func (s *Store) entryAt(j []byte, pos uint64) (plen uint64, ok bool) {
	if pos+jHeaderLen > uint64(len(j)) {
		return 0, false
	}
	h := j[pos:]
	le := binary.LittleEndian
	plen = uint64(le.Uint32(h[4:]))
	if le.Uint32(h[0:]) != jMagic || le.Uint64(h[24:]) != s.formatNonce || plen > uint64(len(j))-pos-jHeaderLen {
		return 0, false
	}
	return plen, crc(h[:jCRCOff], h[jHeaderLen:jHeaderLen+plen]) == le.Uint32(h[jCRCOff:])
}

// writeCheckpoint writes the committed state to the slot not holding the
// current checkpoint and starts a new journal generation. Until its flush
// returns, the old checkpoint and its journal are intact, so a crash
// leaves one or the other.
func (s *Store) writeCheckpoint() error {
	seq, nonce := s.seq+1, randUint64()
	slot := 1 - s.active
	b := s.encodeCheckpoint(seq, nonce)
	if _, err := s.dev.WriteAt(b, int64(s.lay.slotOff[slot])); err != nil {
		return fmt.Errorf("lvs: write checkpoint: %w", err)
	}
	if err := s.dev.Flush(); err != nil {
		return fmt.Errorf("lvs: write checkpoint: %w", err)
	}
	s.seq, s.jnonce, s.jpos, s.active = seq, nonce, 0, slot
	return nil
}

// appendEntry writes one journal entry and flushes it.
func (s *Store) appendEntry(payload []byte) error {
	n := int(roundUp(jHeaderLen+uint64(len(payload)), s.lay.blockSize))
	if cap(s.jbuf) < n {
		s.jbuf = AlignedBuffer(max(n, 64<<10))
	}
	b := s.jbuf[:n]
	le := binary.LittleEndian
	le.PutUint32(b[0:], jMagic)
	le.PutUint32(b[4:], uint32(len(payload)))
	le.PutUint64(b[8:], s.seq+1)
	le.PutUint64(b[16:], s.jnonce)
	le.PutUint64(b[24:], s.formatNonce)
	le.PutUint32(b[32:], 0)
	copy(b[jHeaderLen:], payload)
	clear(b[jHeaderLen+len(payload):])
	le.PutUint32(b[jCRCOff:], crc(b[:jCRCOff], payload))
	if _, err := s.dev.WriteAt(b, int64(s.lay.journalOff+s.jpos)); err != nil {
		return fmt.Errorf("lvs: write journal: %w", err)
	}
	if err := s.dev.Flush(); err != nil {
		return fmt.Errorf("lvs: write journal: %w", err)
	}
	s.seq++
	s.jpos += uint64(n)
	return nil
}

// commit makes recs durable and applies them, batching concurrent callers
// into one journal entry (group commit): the first caller leads and writes
// batches until the queue is empty, the others wait for their result.
// Any failure to write leaves the on-disk state unknown, so it fails the
// store.
func (s *Store) commit(barrier bool, recs ...rec) error {
	var enc []byte
	for i := range recs {
		enc = recs[i].encode(enc)
	}
	r := &commitReq{recs: recs, enc: enc, barrier: barrier, done: make(chan error, 1)}
	s.cmu.Lock()
	if s.failed != nil {
		err := s.failed
		s.cmu.Unlock()
		return err
	}
	s.queue = append(s.queue, r)
	if s.leading {
		s.cmu.Unlock()
		return <-r.done
	}
	s.leading = true
	for len(s.queue) > 0 {
		batch := s.queue
		s.queue = nil
		s.cmu.Unlock()
		s.runBatch(batch)
		s.cmu.Lock()
	}
	s.leading = false
	s.cmu.Unlock()
	return <-r.done
}

func (s *Store) fail(err error) error {
	s.cmu.Lock()
	defer s.cmu.Unlock()
	if s.failed == nil {
		s.failed = fmt.Errorf("%w: %w", ErrFailed, err)
	}
	return s.failed
}

func (s *Store) failure() error {
	s.cmu.Lock()
	defer s.cmu.Unlock()
	return s.failed
}

// runBatch is the leader's work for one batch: a flush if a caller wrote
// data that the entry will point at (data must be durable before the
// mapping), then entries packed with as many requests as fit the journal,
// each written and flushed before its records are applied in memory. When
// the journal is full the current state goes to a checkpoint first.
func (s *Store) runBatch(batch []*commitReq) {
	failFrom := func(i int, err error) {
		err = s.fail(err)
		for _, r := range batch[i:] {
			r.done <- err
		}
	}
	if err := s.failure(); err != nil {
		failFrom(0, err)
		return
	}
	if slices.ContainsFunc(batch, func(r *commitReq) bool { return r.barrier }) {
		if err := s.dev.Flush(); err != nil {
			failFrom(0, fmt.Errorf("lvs: flush before journal entry: %w", err))
			return
		}
	}
	// Records are built from the state under the callers' locks; one
	// that does not validate is a bug, and writing it would make the
	// store unopenable.
	for i, r := range batch {
		for k := range r.recs {
			if err := s.apply(&r.recs[k], false); err != nil {
				failFrom(i, fmt.Errorf("lvs: internal error: invalid record: %w", err))
				return
			}
		}
	}
	var payload []byte
	for i := 0; i < len(batch); {
		room := s.lay.journalSize - s.jpos
		payload = payload[:0]
		j := i
		for ; j < len(batch); j++ {
			if roundUp(jHeaderLen+uint64(len(payload)+len(batch[j].enc)), s.lay.blockSize) > room {
				break
			}
			payload = append(payload, batch[j].enc...)
		}
		if j == i {
			if s.jpos == 0 {
				failFrom(i, fmt.Errorf("lvs: internal error: a change of %d bytes exceeds the journal", len(batch[i].enc)))
				return
			}
			if err := s.writeCheckpoint(); err != nil {
				failFrom(i, err)
				return
			}
			continue
		}
		if err := s.appendEntry(payload); err != nil {
			failFrom(i, err)
			return
		}
		var err error
		s.mu.Lock()
		for _, r := range batch[i:j] {
			for k := range r.recs {
				if err == nil {
					err = s.apply(&r.recs[k], true)
				}
			}
		}
		s.mu.Unlock()
		if err != nil {
			failFrom(i, fmt.Errorf("lvs: internal error: applying a record: %w", err))
			return
		}
		for _, r := range batch[i:j] {
			r.done <- nil
		}
		i = j
	}
}

// apply validates one record against the state and, if do, performs it.
// It is the only code that changes the committed state, both at run time
// (after the record is durable) and when Open replays. Callers hold mu.
func (s *Store) apply(r *rec, do bool) error {
	if r.op != opCreate {
		if uint64(r.slot) >= s.lay.maxLvols || s.slots[r.slot] == nil {
			return fmt.Errorf("record %d for missing lvol slot %d", r.op, r.slot)
		}
	}
	switch r.op {
	case opCreate:
		if uint64(r.slot) >= s.lay.maxLvols || s.slots[r.slot] != nil {
			return fmt.Errorf("create in used or missing slot %d", r.slot)
		}
		if err := checkName("lvol", r.name); err != nil {
			return err
		}
		if s.byName[r.name] != nil || s.byUUID[r.uuid] != nil {
			return fmt.Errorf("create of lvol %q: name or uuid taken", r.name)
		}
		if r.clusters > MaxLvolClusters {
			return fmt.Errorf("create of lvol %q with %d clusters", r.name, r.clusters)
		}
		if err := s.checkExtents(r.ext, r.thin, r.clusters); err != nil {
			return fmt.Errorf("create of lvol %q: %w", r.name, err)
		}
		if !do {
			return nil
		}
		l := &Lvol{s: s, slot: r.slot, uuid: r.uuid, thin: r.thin, order: r.order, name: r.name, m: newCmap(r.clusters)}
		l.nclusters.Store(r.clusters)
		s.slots[r.slot] = l
		s.byName[r.name] = l
		s.byUUID[r.uuid] = l
		s.nextOrder = max(s.nextOrder, r.order+1)
		s.mapExtents(l, 0, r.ext)
	case opDelete:
		if !do {
			return nil
		}
		l := s.slots[r.slot]
		s.freeRange(l, 0, l.nclusters.Load())
		s.slots[r.slot] = nil
		delete(s.byName, l.name)
		delete(s.byUUID, l.uuid)
	case opResize:
		l := s.slots[r.slot]
		old := l.nclusters.Load()
		if r.clusters > MaxLvolClusters {
			return fmt.Errorf("resize of lvol %q to %d clusters", l.name, r.clusters)
		}
		if r.clusters > old {
			if err := s.checkExtents(r.ext, l.thin, r.clusters-old); err != nil {
				return fmt.Errorf("resize of lvol %q: %w", l.name, err)
			}
		} else if len(r.ext) != 0 {
			return fmt.Errorf("resize of lvol %q: shrinking with new clusters", l.name)
		}
		if !do {
			return nil
		}
		if r.clusters < old {
			s.freeRange(l, r.clusters, old)
		}
		l.m.resize(r.clusters)
		l.nclusters.Store(r.clusters)
		if r.clusters > old {
			s.mapExtents(l, old, r.ext)
		}
	case opRename:
		l := s.slots[r.slot]
		if err := checkName("lvol", r.name); err != nil {
			return err
		}
		if o := s.byName[r.name]; o != nil && o != l {
			return fmt.Errorf("rename of lvol %q: %q taken", l.name, r.name)
		}
		if !do {
			return nil
		}
		delete(s.byName, l.name)
		l.name = r.name
		s.byName[r.name] = l
	case opAlloc:
		l := s.slots[r.slot]
		if !l.thin || r.logical >= l.nclusters.Load() || l.m.get(r.logical) != 0 {
			return fmt.Errorf("allocation of lvol %q cluster %d: not thin, out of range or allocated", l.name, r.logical)
		}
		if uint64(r.phys) >= s.lay.clusters || s.owner[r.phys] != 0 {
			return fmt.Errorf("allocation of cluster %d: out of range or owned", r.phys)
		}
		if do {
			s.own(l, r.logical, r.phys)
		}
	case opUnmap:
		l := s.slots[r.slot]
		n := l.nclusters.Load()
		if !l.thin || r.logical > n || r.count > n-r.logical {
			return fmt.Errorf("unmap of lvol %q clusters %d+%d", l.name, r.logical, r.count)
		}
		if do {
			s.freeRange(l, r.logical, r.logical+r.count)
		}
	default:
		return fmt.Errorf("unknown record type %d", r.op)
	}
	return nil
}

// checkExtents: a thin lvol gets no clusters; a thick one exactly want,
// ascending, in range, not owned.
func (s *Store) checkExtents(ext []extent, thin bool, want uint64) error {
	if thin {
		if len(ext) != 0 {
			return errors.New("clusters given to a thin lvol")
		}
		return nil
	}
	var sum, next uint64
	for _, e := range ext {
		start, end := uint64(e.phys), uint64(e.phys)+uint64(e.n)
		if e.n == 0 || start < next || end > s.lay.clusters {
			return fmt.Errorf("bad extent %d+%d", e.phys, e.n)
		}
		for p := start; p < end; p++ {
			if s.owner[p] != 0 {
				return fmt.Errorf("cluster %d already owned", p)
			}
		}
		sum += uint64(e.n)
		next = end
	}
	if sum != want {
		return fmt.Errorf("%d clusters given, %d needed", sum, want)
	}
	return nil
}

func (s *Store) mapExtents(l *Lvol, logical uint64, ext []extent) {
	for _, e := range ext {
		for p := e.phys; p < e.phys+e.n; p++ {
			s.own(l, logical, p)
			logical++
		}
	}
}

// own records that phys holds l's cluster logical. The bitmap bit is
// already set at run time (the allocation reserved it) and not at Open.
func (s *Store) own(l *Lvol, logical uint64, phys uint32) {
	s.owner[phys] = (uint64(l.slot)+1)<<logicalBits | logical
	l.m.set(logical, phys+1)
	l.nalloc.Add(1)
	if !s.used.test(uint64(phys)) {
		s.used.set(uint64(phys))
		s.nused++
	}
}

func (s *Store) freeRange(l *Lvol, from, to uint64) {
	l.m.each(from, to, func(logical uint64, v uint32) {
		p := uint64(v - 1)
		s.owner[p] = 0
		s.used.clear(p)
		s.nused--
		l.m.set(logical, 0)
		l.nalloc.Add(^uint64(0))
	})
}

// reserve takes n free clusters for an allocation that is about to be
// committed. Callers hold mu.
func (s *Store) reserve(n uint64) ([]extent, error) {
	if n > s.lay.clusters-s.nused {
		return nil, fmt.Errorf("%w: %d clusters wanted, %d free", ErrNoSpace, n, s.lay.clusters-s.nused)
	}
	ext, next := s.used.take(n, s.lay.clusters, s.hint)
	s.hint = next
	s.nused += n
	return ext, nil
}

// unreserve returns clusters whose allocation was never committed.
func (s *Store) unreserve(ext []extent) {
	for _, e := range ext {
		for p := uint64(e.phys); p < uint64(e.phys)+uint64(e.n); p++ {
			s.used.clear(p)
			s.nused--
		}
	}
}

func (s *Store) clustersFor(size uint64) (uint64, error) {
	cs := s.lay.clusterSize
	if size > MaxLvolClusters*cs {
		return 0, fmt.Errorf("%w: lvol size %d exceeds %d clusters", ErrInvalid, size, uint64(MaxLvolClusters))
	}
	return (size + cs - 1) / cs, nil
}

// usable is checked under opMu by every change.
func (s *Store) usable() error {
	if s.closed.Load() {
		return ErrClosed
	}
	return s.failure()
}

// Create creates an lvol of size bytes, rounded up to whole clusters. A
// thick lvol gets all its clusters now (ErrNoSpace if they are not free);
// their contents are not cleared, as SPDK does not clear them. A thin lvol
// gets each cluster on its first write and reads zeroes until then.
func (s *Store) Create(name string, size uint64, thin bool) (*Lvol, error) {
	if err := checkName("lvol", name); err != nil {
		return nil, err
	}
	clusters, err := s.clustersFor(size)
	if err != nil {
		return nil, err
	}
	s.opMu.Lock()
	defer s.opMu.Unlock()
	if err := s.usable(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	if s.byName[name] != nil {
		s.mu.Unlock()
		return nil, fmt.Errorf("%w: %q", ErrExist, name)
	}
	slot := slices.Index(s.slots, nil)
	if slot < 0 {
		s.mu.Unlock()
		return nil, fmt.Errorf("%w: lvol table full (%d lvols)", ErrNoSpace, len(s.slots))
	}
	var ext []extent
	if !thin && clusters > 0 {
		if ext, err = s.reserve(clusters); err != nil {
			s.mu.Unlock()
			return nil, err
		}
	}
	r := rec{op: opCreate, slot: uint32(slot), thin: thin, clusters: clusters, order: s.nextOrder, uuid: s.freshUUID(), name: name, ext: ext}
	s.mu.Unlock()
	if err := s.commit(false, r); err != nil {
		return nil, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.slots[slot], nil
}

func (s *Store) freshUUID() UUID {
	for {
		if u := NewUUID(); s.byUUID[u] == nil {
			return u
		}
	}
}

// lookup finds an lvol by name for a change; callers hold opMu, so it
// cannot go away before they are done.
func (s *Store) lookup(name string) (*Lvol, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if l := s.byName[name]; l != nil {
		return l, nil
	}
	return nil, fmt.Errorf("%w: %q", ErrNotFound, name)
}

// Delete deletes an lvol and frees its clusters. It waits for the lvol's
// I/O in flight; later I/O through the handle fails with ErrNotFound.
func (s *Store) Delete(name string) error {
	s.opMu.Lock()
	defer s.opMu.Unlock()
	if err := s.usable(); err != nil {
		return err
	}
	l, err := s.lookup(name)
	if err != nil {
		return err
	}
	l.io.Lock()
	defer l.io.Unlock()
	if err := s.commit(false, rec{op: opDelete, slot: l.slot}); err != nil {
		return err
	}
	l.deleted = true
	return nil
}

// Resize changes an lvol's size to size bytes, rounded up to whole
// clusters. Growing a thick lvol allocates the new clusters (ErrNoSpace if
// they are not free); shrinking frees the clusters beyond the new end, and
// growing again later reads zeroes there (thin) or whatever the newly
// allocated clusters hold (thick). It waits for the lvol's I/O in flight.
func (s *Store) Resize(name string, size uint64) error {
	clusters, err := s.clustersFor(size)
	if err != nil {
		return err
	}
	s.opMu.Lock()
	defer s.opMu.Unlock()
	if err := s.usable(); err != nil {
		return err
	}
	l, err := s.lookup(name)
	if err != nil {
		return err
	}
	l.io.Lock()
	defer l.io.Unlock()
	old := l.nclusters.Load()
	if clusters == old {
		return nil
	}
	var ext []extent
	if !l.thin && clusters > old {
		s.mu.Lock()
		ext, err = s.reserve(clusters - old)
		s.mu.Unlock()
		if err != nil {
			return err
		}
	}
	return s.commit(false, rec{op: opResize, slot: l.slot, clusters: clusters, ext: ext})
}

// Rename renames an lvol; its UUID and data stay.
func (s *Store) Rename(name, newName string) error {
	if err := checkName("lvol", newName); err != nil {
		return err
	}
	s.opMu.Lock()
	defer s.opMu.Unlock()
	if err := s.usable(); err != nil {
		return err
	}
	l, err := s.lookup(name)
	if err != nil {
		return err
	}
	if name == newName {
		return nil
	}
	if _, err := s.lookup(newName); err == nil {
		return fmt.Errorf("%w: %q", ErrExist, newName)
	}
	return s.commit(false, rec{op: opRename, slot: l.slot, name: newName})
}

// Lvol returns the lvol called name, or ErrNotFound.
func (s *Store) Lvol(name string) (*Lvol, error) { return s.lookup(name) }

// LvolByUUID returns the lvol with UUID u, or ErrNotFound.
func (s *Store) LvolByUUID(u UUID) (*Lvol, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if l := s.byUUID[u]; l != nil {
		return l, nil
	}
	return nil, fmt.Errorf("%w: uuid %s", ErrNotFound, u)
}

// Lvols returns the lvols in creation order, as SPDK lists them.
func (s *Store) Lvols() []*Lvol {
	s.mu.RLock()
	out := make([]*Lvol, 0, len(s.byName))
	for _, l := range s.slots {
		if l != nil {
			out = append(out, l)
		}
	}
	s.mu.RUnlock()
	slices.SortFunc(out, func(a, b *Lvol) int { return cmp.Compare(a.order, b.order) })
	return out
}

// FreeClusters is the number of clusters no lvol owns (clusters of a thin
// write in progress count as owned).
func (s *Store) FreeClusters() uint64 {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.lay.clusters - s.nused
}

// TotalClusters is the number of data clusters (SPDK's
// total_data_clusters).
func (s *Store) TotalClusters() uint64 { return s.lay.clusters }

// ClusterSize is the cluster size in bytes.
func (s *Store) ClusterSize() uint64 { return s.lay.clusterSize }

// BlockSize is the device's block size, the I/O alignment of the lvols.
func (s *Store) BlockSize() int { return int(s.lay.blockSize) }

// UUID is the lvstore's UUID.
func (s *Store) UUID() UUID { return s.uuid }

// Name is the lvstore's name.
func (s *Store) Name() string { return s.name }

// MaxLvols is the capacity of the lvol table.
func (s *Store) MaxLvols() int { return int(s.lay.maxLvols) }

// Flush makes all lvol data written so far durable. (Metadata is durable
// when the call that changed it returns.)
func (s *Store) Flush() error {
	if s.closed.Load() {
		return ErrClosed
	}
	if err := s.dev.Flush(); err != nil {
		return fmt.Errorf("lvs: flush: %w", err)
	}
	return nil
}

// Close waits for I/O in flight, flushes, and makes the store and its
// lvols unusable (ErrClosed). The device stays open; it is the caller's.
func (s *Store) Close() error {
	s.opMu.Lock()
	defer s.opMu.Unlock()
	if s.closed.Swap(true) {
		return nil
	}
	for _, l := range s.Lvols() {
		// An I/O that started before closed was set holds the read lock.
		l.io.Lock()
		l.io.Unlock()
	}
	if err := s.dev.Flush(); err != nil {
		return fmt.Errorf("lvs: close: %w", err)
	}
	return nil
}
