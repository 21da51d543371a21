package lvs

import (
	"encoding/binary"
	"errors"
)

// opcode is a journal record's type.
type opcode uint8

const (
	opCreate opcode = 1 // slot, flags, clusters, order, uuid, name, extents
	opDelete opcode = 2 // slot
	opResize opcode = 3 // slot, clusters, extents (a thick lvol's new clusters)
	opRename opcode = 4 // slot, name
	opAlloc  opcode = 5 // slot, logical, phys: a thin lvol's first write
	opUnmap  opcode = 6 // slot, start, count: release a thin lvol's clusters
)

const flagThin = 1

// rec is one metadata change, the unit that apply validates and performs,
// both at run time and when Open replays the journal.
type rec struct {
	op       opcode
	slot     uint32
	thin     bool
	clusters uint64 // create, resize: the lvol's size in clusters
	order    uint64 // create: creation order, for listing
	uuid     UUID
	name     string
	ext      []extent // create, resize: clusters given to a thick lvol, mapped in order
	logical  uint64   // alloc: the logical cluster; unmap: the first one
	count    uint64   // unmap
	phys     uint32   // alloc
}

func (r *rec) encode(b []byte) []byte {
	le := binary.LittleEndian
	b = append(b, byte(r.op))
	b = le.AppendUint32(b, r.slot)
	switch r.op {
	case opCreate:
		var f byte
		if r.thin {
			f = flagThin
		}
		b = append(b, f)
		b = le.AppendUint64(b, r.clusters)
		b = le.AppendUint64(b, r.order)
		b = append(b, r.uuid[:]...)
		b = append(b, byte(len(r.name)))
		b = append(b, r.name...)
		b = appendExtents(b, r.ext)
	case opResize:
		b = le.AppendUint64(b, r.clusters)
		b = appendExtents(b, r.ext)
	case opRename:
		b = append(b, byte(len(r.name)))
		b = append(b, r.name...)
	case opAlloc:
		b = le.AppendUint64(b, r.logical)
		b = le.AppendUint32(b, r.phys)
	case opUnmap:
		b = le.AppendUint64(b, r.logical)
		b = le.AppendUint64(b, r.count)
	}
	return b
}

func appendExtents(b []byte, ext []extent) []byte {
	le := binary.LittleEndian
	b = le.AppendUint32(b, uint32(len(ext)))
	for _, e := range ext {
		b = le.AppendUint32(b, e.phys)
		b = le.AppendUint32(b, e.n)
	}
	return b
}

// reader decodes without trusting lengths: a short buffer sets bad and
// yields zeroes, so decoding garbage cannot panic.
type reader struct {
	b   []byte
	bad bool
}

func (r *reader) take(n int) []byte {
	if r.bad || n < 0 || n > len(r.b) {
		r.bad = true
		return nil
	}
	p := r.b[:n]
	r.b = r.b[n:]
	return p
}

func (r *reader) u8() byte {
	if p := r.take(1); p != nil {
		return p[0]
	}
	return 0
}

func (r *reader) u32() uint32 {
	if p := r.take(4); p != nil {
		return binary.LittleEndian.Uint32(p)
	}
	return 0
}

func (r *reader) u64() uint64 {
	if p := r.take(8); p != nil {
		return binary.LittleEndian.Uint64(p)
	}
	return 0
}

func (r *reader) name() string { return string(r.take(int(r.u8()))) }

func (r *reader) extents() []extent {
	n := r.u32()
	if r.bad || uint64(n)*8 > uint64(len(r.b)) {
		r.bad = true
		return nil
	}
	ext := make([]extent, n)
	for i := range ext {
		ext[i] = extent{phys: r.u32(), n: r.u32()}
	}
	return ext
}

var errShortRecord = errors.New("truncated or unknown record")

// decodeRecords parses a journal entry's payload.
func decodeRecords(b []byte) ([]rec, error) {
	var out []rec
	r := reader{b: b}
	for len(r.b) > 0 {
		x := rec{op: opcode(r.u8()), slot: r.u32()}
		switch x.op {
		case opCreate:
			f := r.u8()
			if f&^flagThin != 0 {
				return nil, errors.New("unknown lvol flags")
			}
			x.thin = f&flagThin != 0
			x.clusters = r.u64()
			x.order = r.u64()
			copy(x.uuid[:], r.take(16))
			x.name = r.name()
			x.ext = r.extents()
		case opDelete:
		case opResize:
			x.clusters = r.u64()
			x.ext = r.extents()
		case opRename:
			x.name = r.name()
		case opAlloc:
			x.logical = r.u64()
			x.phys = r.u32()
		case opUnmap:
			x.logical = r.u64()
			x.count = r.u64()
		default:
			return nil, errShortRecord
		}
		if r.bad {
			return nil, errShortRecord
		}
		out = append(out, x)
	}
	return out, nil
}
