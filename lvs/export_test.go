package lvs

import (
	"encoding/binary"
	"fmt"
)

// This file lets the external tests (package lvs_test) check invariants
// and plant raw metadata without the package exporting either.

// CheckInvariants verifies, on a quiescent store, that every mapped
// cluster has exactly one owner and that the owner table, the maps, the
// bitmap and the counters agree.
func CheckInvariants(s *Store) error {
	s.opMu.Lock()
	defer s.opMu.Unlock()
	s.mu.RLock()
	defer s.mu.RUnlock()
	n := s.lay.clusters
	seen := make([]bool, n)
	var owned uint64
	var err error
	for _, l := range s.slots {
		if l == nil {
			continue
		}
		var c uint64
		l.m.each(0, l.nclusters.Load(), func(i uint64, v uint32) {
			p := uint64(v - 1)
			switch {
			case err != nil:
			case p >= n:
				err = fmt.Errorf("lvol %q cluster %d maps to %d, beyond %d", l.name, i, p, n)
			case seen[p]:
				err = fmt.Errorf("cluster %d mapped twice (again by lvol %q cluster %d)", p, l.name, i)
			case s.owner[p] != (uint64(l.slot)+1)<<logicalBits|i:
				err = fmt.Errorf("cluster %d owner %#x, but lvol %q cluster %d maps it", p, s.owner[p], l.name, i)
			default:
				seen[p] = true
				c++
			}
		})
		if err != nil {
			return err
		}
		if c != l.nalloc.Load() {
			return fmt.Errorf("lvol %q counts %d allocated clusters, maps %d", l.name, l.nalloc.Load(), c)
		}
		if !l.thin && c != l.nclusters.Load() {
			return fmt.Errorf("thick lvol %q maps %d of %d clusters", l.name, c, l.nclusters.Load())
		}
		owned += c
	}
	for p := range n {
		if (s.owner[p] != 0) != seen[p] || s.used.test(p) != seen[p] {
			return fmt.Errorf("cluster %d: owner %#x, mapped %v, in bitmap %v", p, s.owner[p], seen[p], s.used.test(p))
		}
	}
	if owned != s.nused {
		return fmt.Errorf("%d clusters owned, %d counted used", owned, s.nused)
	}
	return nil
}

// AppendRawEntry writes payload as the next journal entry, with a valid
// header and checksum, without applying it.
func AppendRawEntry(s *Store, payload []byte) error {
	if uint64(len(payload))+jHeaderLen > s.lay.journalSize {
		payload = payload[:s.lay.journalSize-jHeaderLen]
	}
	if roundUp(jHeaderLen+uint64(len(payload)), s.lay.blockSize) > s.lay.journalSize-s.jpos {
		if err := s.writeCheckpoint(); err != nil {
			return err
		}
	}
	return s.appendEntry(payload)
}

// WriteRawCheckpoint writes a checkpoint with the given lvol count and
// payload, valid header and checksum, as the newest checkpoint.
func WriteRawCheckpoint(s *Store, nlvols uint32, payload []byte) error {
	if max := s.lay.slotSize - cpHeaderLen; uint64(len(payload)) > max {
		payload = payload[:max]
	}
	b := AlignedBuffer(int(roundUp(cpHeaderLen+uint64(len(payload)), s.lay.blockSize)))
	le := binary.LittleEndian
	le.PutUint32(b[0:], cpMagic)
	le.PutUint32(b[4:], formatVersion)
	le.PutUint64(b[8:], s.seq+1)
	le.PutUint64(b[16:], s.formatNonce)
	le.PutUint64(b[24:], randUint64())
	le.PutUint32(b[32:], nlvols)
	le.PutUint64(b[40:], uint64(len(payload)))
	copy(b[cpHeaderLen:], payload)
	le.PutUint32(b[cpCRCOff:], crc(b[:cpCRCOff], payload))
	if _, err := s.dev.WriteAt(b, int64(s.lay.slotOff[1-s.active])); err != nil {
		return err
	}
	return s.dev.Flush()
}

// Layout is where a store's regions are, for tests that corrupt them.
type Layout struct {
	SlotOff     [2]int64
	SlotSize    int64
	JournalOff  int64
	JournalSize int64
	DataOff     int64
	Active      int
}

// LayoutOf returns s's layout and its current checkpoint slot.
func LayoutOf(s *Store) Layout {
	return Layout{
		SlotOff:     [2]int64{int64(s.lay.slotOff[0]), int64(s.lay.slotOff[1])},
		SlotSize:    int64(s.lay.slotSize),
		JournalOff:  int64(s.lay.journalOff),
		JournalSize: int64(s.lay.journalSize),
		DataOff:     int64(s.lay.dataOff),
		Active:      s.active,
	}
}

// EncodeRecord encodes one journal record, for the fuzz seeds.
func EncodeRecord(op byte, slot uint32, thin bool, clusters uint64, name string, phys uint32, logical, count uint64) []byte {
	r := rec{op: opcode(op), slot: slot, thin: thin, clusters: clusters, name: name, phys: phys, logical: logical, count: count, uuid: NewUUID()}
	return r.encode(nil)
}
