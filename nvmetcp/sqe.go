package nvmetcp

import "encoding/binary"

// SQE is a 64-byte NVMe submission queue entry as it travels in a
// CapsuleCmd. It is kept raw so that a command passes through the transport
// untouched; the accessors read and write the fields every command shares.
// Command-specific dwords are reached with CDW and SetCDW.
type SQE [64]byte

// CQE is a 16-byte NVMe completion queue entry as it travels in a
// CapsuleResp.
type CQE [16]byte

// Byte offsets inside an SQE.
const (
	sqeOpcode = 0
	sqeFlags  = 1
	sqeCID    = 2
	sqeNSID   = 4
	sqeSGL    = 24 // DPTR: SGL descriptor 1, 16 bytes
	sqeCDW0   = 0
)

// SQE flag fields (byte 1).
const (
	// PSDTSGL is the PSDT value of a command whose DPTR is an SGL descriptor
	// (PSDT=01b). It is the only value NVMe over Fabrics allows.
	PSDTSGL = 0x1
)

// SGL descriptor types (the high nibble of byte 15 of a descriptor).
const (
	SGLTypeDataBlock          = 0x0
	SGLTypeKeyedDataBlock     = 0x4
	SGLTypeTransportDataBlock = 0x5
)

// SGL descriptor subtypes (the low nibble of byte 15).
const (
	SGLSubtypeAddress   = 0x0
	SGLSubtypeOffset    = 0x1
	SGLSubtypeTransport = 0xA
)

// The two descriptor identifiers NVMe/TCP hosts send (type<<4 | subtype).
const (
	// SGLInCapsule (0x01) marks data inside the CapsuleCmd at the offset in
	// the descriptor's address.
	SGLInCapsule = SGLTypeDataBlock<<4 | SGLSubtypeOffset
	// SGLTransport (0x5A) marks data moved by R2T/H2CData or C2HData, and
	// with length 0 a command without data.
	SGLTransport = SGLTypeTransportDataBlock<<4 | SGLSubtypeTransport
)

// OpcodeFabrics is the opcode of every Fabrics command (Connect, Property
// Get/Set, …); its command type is FCType.
const OpcodeFabrics = 0x7F

// Opcode returns the command opcode (byte 0).
func (s *SQE) Opcode() uint8 { return s[sqeOpcode] }

// SetOpcode sets the command opcode.
func (s *SQE) SetOpcode(op uint8) { s[sqeOpcode] = op }

// Flags returns byte 1: FUSE in bits 1:0, PSDT in bits 7:6.
func (s *SQE) Flags() uint8 { return s[sqeFlags] }

// SetFlags sets byte 1.
func (s *SQE) SetFlags(f uint8) { s[sqeFlags] = f }

// FUSE returns the fused-operation field (bits 1:0 of byte 1).
func (s *SQE) FUSE() uint8 { return s[sqeFlags] & 0x3 }

// PSDT returns the PRP-or-SGL field (bits 7:6 of byte 1); NVMe over Fabrics
// requires PSDTSGL.
func (s *SQE) PSDT() uint8 { return s[sqeFlags] >> 6 }

// SetPSDT sets bits 7:6 of byte 1, keeping the others.
func (s *SQE) SetPSDT(psdt uint8) { s[sqeFlags] = s[sqeFlags]&0x3f | psdt<<6 }

// CID returns the command identifier.
func (s *SQE) CID() uint16 { return binary.LittleEndian.Uint16(s[sqeCID:]) }

// SetCID sets the command identifier.
func (s *SQE) SetCID(cid uint16) { binary.LittleEndian.PutUint16(s[sqeCID:], cid) }

// NSID returns the namespace identifier (dword 1).
func (s *SQE) NSID() uint32 { return binary.LittleEndian.Uint32(s[sqeNSID:]) }

// SetNSID sets the namespace identifier.
func (s *SQE) SetNSID(nsid uint32) { binary.LittleEndian.PutUint32(s[sqeNSID:], nsid) }

// FCType returns the Fabrics command type, byte 4; it is meaningful when
// Opcode is OpcodeFabrics, where it takes the place of the NSID.
func (s *SQE) FCType() uint8 { return s[sqeNSID] }

// CDW returns command dword i (0..15); it panics for other i, like an index
// out of range, because i is always a constant chosen by the caller.
func (s *SQE) CDW(i int) uint32 { return binary.LittleEndian.Uint32(s[sqeCDW0+4*i:]) }

// SetCDW sets command dword i (0..15).
func (s *SQE) SetCDW(i int, v uint32) { binary.LittleEndian.PutUint32(s[sqeCDW0+4*i:], v) }

// CDW10 returns command dword 10.
func (s *SQE) CDW10() uint32 { return s.CDW(10) }

// CDW11 returns command dword 11.
func (s *SQE) CDW11() uint32 { return s.CDW(11) }

// CDW12 returns command dword 12.
func (s *SQE) CDW12() uint32 { return s.CDW(12) }

// CDW13 returns command dword 13.
func (s *SQE) CDW13() uint32 { return s.CDW(13) }

// CDW14 returns command dword 14.
func (s *SQE) CDW14() uint32 { return s.CDW(14) }

// CDW15 returns command dword 15.
func (s *SQE) CDW15() uint32 { return s.CDW(15) }

// SGLIdentifier returns byte 15 of the DPTR SGL descriptor: type<<4 | subtype
// (SGLInCapsule, SGLTransport, …).
func (s *SQE) SGLIdentifier() uint8 { return s[sqeSGL+15] }

// SGLType returns the descriptor type (SGLTypeDataBlock, …).
func (s *SQE) SGLType() uint8 { return s[sqeSGL+15] >> 4 }

// SGLSubtype returns the descriptor subtype (SGLSubtypeOffset, …).
func (s *SQE) SGLSubtype() uint8 { return s[sqeSGL+15] & 0xf }

// SGLAddress returns the descriptor's address field; for an in-capsule
// descriptor it is the offset of the data in the capsule's data part.
func (s *SQE) SGLAddress() uint64 { return binary.LittleEndian.Uint64(s[sqeSGL:]) }

// SGLLength returns the descriptor's 32-bit length field. Keyed descriptors
// (RDMA only, never seen on TCP) use 24 bits of it and a key; read those
// bytes from the array when needed.
func (s *SQE) SGLLength() uint32 { return binary.LittleEndian.Uint32(s[sqeSGL+8:]) }

// SetSGL writes a non-keyed SGL descriptor into DPTR: address, length, zero
// reserved bytes, and the identifier byte (type<<4 | subtype, e.g.
// SGLTransport). It also sets PSDT to PSDTSGL, which Fabrics requires.
func (s *SQE) SetSGL(id uint8, addr uint64, length uint32) {
	d := s[sqeSGL : sqeSGL+16]
	binary.LittleEndian.PutUint64(d[0:], addr)
	binary.LittleEndian.PutUint32(d[8:], length)
	d[12], d[13], d[14] = 0, 0, 0
	d[15] = id
	s.SetPSDT(PSDTSGL)
}

// Byte offsets inside a CQE.
const (
	cqeDW0    = 0
	cqeDW1    = 4
	cqeSQHD   = 8
	cqeSQID   = 10
	cqeCID    = 12
	cqeStatus = 14
)

// DW0 returns command-specific dword 0 (Connect: the controller ID;
// Property Get: the low 32 bits; AER: the event).
func (c *CQE) DW0() uint32 { return binary.LittleEndian.Uint32(c[cqeDW0:]) }

// SetDW0 sets command-specific dword 0.
func (c *CQE) SetDW0(v uint32) { binary.LittleEndian.PutUint32(c[cqeDW0:], v) }

// DW1 returns command-specific dword 1.
func (c *CQE) DW1() uint32 { return binary.LittleEndian.Uint32(c[cqeDW1:]) }

// SetDW1 sets command-specific dword 1.
func (c *CQE) SetDW1(v uint32) { binary.LittleEndian.PutUint32(c[cqeDW1:], v) }

// Result returns DW1<<32 | DW0, the 64-bit value of an 8-byte Property Get.
func (c *CQE) Result() uint64 { return uint64(c.DW1())<<32 | uint64(c.DW0()) }

// SQHead returns the submission queue head pointer (SQHD).
func (c *CQE) SQHead() uint16 { return binary.LittleEndian.Uint16(c[cqeSQHD:]) }

// SetSQHead sets SQHD.
func (c *CQE) SetSQHead(v uint16) { binary.LittleEndian.PutUint16(c[cqeSQHD:], v) }

// SQID returns the submission queue identifier.
func (c *CQE) SQID() uint16 { return binary.LittleEndian.Uint16(c[cqeSQID:]) }

// SetSQID sets the submission queue identifier.
func (c *CQE) SetSQID(v uint16) { binary.LittleEndian.PutUint16(c[cqeSQID:], v) }

// CID returns the identifier of the completed command.
func (c *CQE) CID() uint16 { return binary.LittleEndian.Uint16(c[cqeCID:]) }

// SetCID sets the identifier of the completed command.
func (c *CQE) SetCID(v uint16) { binary.LittleEndian.PutUint16(c[cqeCID:], v) }

// Status returns the raw 16-bit status word: the phase tag in bit 0 and
// the status field (SC, SCT, CRD, M, DNR) in bits 15:1.
func (c *CQE) Status() uint16 { return binary.LittleEndian.Uint16(c[cqeStatus:]) }

// SetStatus sets the raw 16-bit status word, phase tag included.
func (c *CQE) SetStatus(v uint16) { binary.LittleEndian.PutUint16(c[cqeStatus:], v) }

// Phase returns the phase tag. Fabrics has no completion queue in host
// memory, so senders leave it 0 and receivers ignore it.
func (c *CQE) Phase() bool { return c.Status()&1 != 0 }

// SC returns the status code (bits 8:1 of the status word).
func (c *CQE) SC() uint8 { return uint8(c.Status() >> 1) }

// SCT returns the status code type (bits 11:9).
func (c *CQE) SCT() uint8 { return uint8(c.Status()>>9) & 0x7 }

// More reports the More bit (bit 14).
func (c *CQE) More() bool { return c.Status()&(1<<14) != 0 }

// DNR reports the Do Not Retry bit (bit 15).
func (c *CQE) DNR() bool { return c.Status()&(1<<15) != 0 }

// Success reports whether SCT and SC are both 0, whatever the phase.
func (c *CQE) Success() bool { return c.Status()&0x0ffe == 0 }

// StatusWord builds a status word from a status code type, a status code
// and the DNR bit, with phase, CRD and More clear.
func StatusWord(sct, sc uint8, dnr bool) uint16 {
	v := uint16(sct&0x7)<<9 | uint16(sc)<<1
	if dnr {
		v |= 1 << 15
	}
	return v
}
