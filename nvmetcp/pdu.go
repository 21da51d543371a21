package nvmetcp

import "fmt"

// Type is the PDU-Type field, byte 0 of every PDU.
type Type uint8

// The PDU types of NVMe/TCP. Even types travel from host to controller,
// odd ones from controller to host; 0x08 and 0x0A-0xFF are reserved.
const (
	TypeICReq       Type = 0x00
	TypeICResp      Type = 0x01
	TypeH2CTermReq  Type = 0x02
	TypeC2HTermReq  Type = 0x03
	TypeCapsuleCmd  Type = 0x04
	TypeCapsuleResp Type = 0x05
	TypeH2CData     Type = 0x06
	TypeC2HData     Type = 0x07
	TypeR2T         Type = 0x09
)

// Header lengths (HLEN) the specification fixes for each PDU type. A PDU
// whose hlen differs is rejected: Linux does the same ("unexpected header
// length"), and an hlen taken on trust would let a peer shift every later
// field.
const (
	ICReqLen       = 128
	ICRespLen      = 128
	TermReqLen     = 24
	CapsuleCmdLen  = 72
	CapsuleRespLen = 24
	H2CDataLen     = 24
	C2HDataLen     = 24
	R2TLen         = 24
)

// Sizes and limits of the framing.
const (
	// CommonHeaderLen is the size of the common header every PDU starts with.
	CommonHeaderLen = 8
	// DigestLen is the size of a header or data digest (CRC32C).
	DigestLen = 4
	// MaxTermReqData is the most error data (the offending PDU header) a
	// TermReq carries; a TermReq is never longer than 152 bytes.
	MaxTermReqData = 128
	// MaxPDA is the largest HPDA/CPDA value: (31+1)×4 = 128-byte alignment.
	MaxPDA = 31
	// MinMaxH2CData is the smallest MAXH2CDATA a controller may announce.
	MinMaxH2CData = 4096
	// DefaultMaxData is the data limit of a Reader whose config leaves it 0:
	// SPDK's default MAXH2CDATA and largest I/O (128 KiB).
	DefaultMaxData = 128 << 10

	maxHeaderLen = ICReqLen
)

// String returns the specification's name of the type, or "PDU(0xNN)".
func (t Type) String() string {
	switch t {
	case TypeICReq:
		return "ICReq"
	case TypeICResp:
		return "ICResp"
	case TypeH2CTermReq:
		return "H2CTermReq"
	case TypeC2HTermReq:
		return "C2HTermReq"
	case TypeCapsuleCmd:
		return "CapsuleCmd"
	case TypeCapsuleResp:
		return "CapsuleResp"
	case TypeH2CData:
		return "H2CData"
	case TypeC2HData:
		return "C2HData"
	case TypeR2T:
		return "R2T"
	}
	return fmt.Sprintf("PDU(%#02x)", uint8(t))
}

// HeaderLen returns the HLEN the specification requires for t, or 0 if t is
// not a defined type.
func (t Type) HeaderLen() int {
	switch t {
	case TypeICReq:
		return ICReqLen
	case TypeICResp:
		return ICRespLen
	case TypeH2CTermReq, TypeC2HTermReq:
		return TermReqLen
	case TypeCapsuleCmd:
		return CapsuleCmdLen
	case TypeCapsuleResp:
		return CapsuleRespLen
	case TypeH2CData:
		return H2CDataLen
	case TypeC2HData:
		return C2HDataLen
	case TypeR2T:
		return R2TLen
	}
	return 0
}

// Valid reports whether t is one of the defined PDU types.
func (t Type) Valid() bool { return t.HeaderLen() != 0 }

// FromHost reports whether t is sent by a host (even types).
func (t Type) FromHost() bool { return t&1 == 0 }

// usesDigests reports whether PDUs of type t carry digests once negotiated:
// the IC and TermReq PDUs never do, so that they stay readable whatever
// was (or was not) agreed.
func (t Type) usesDigests() bool {
	switch t {
	case TypeCapsuleCmd, TypeCapsuleResp, TypeH2CData, TypeC2HData, TypeR2T:
		return true
	}
	return false
}

// carriesData reports whether PDUs of type t may have a data part placed by
// PDO (TermReq error data sits right after the header and is handled apart).
func (t Type) carriesData() bool {
	switch t {
	case TypeCapsuleCmd, TypeH2CData, TypeC2HData:
		return true
	}
	return false
}

// Flags is the FLAGS field, byte 1 of every PDU.
type Flags uint8

// Flag bits. HDGSTF and DDGSTF say that a digest is present; the Reader
// checks them against what was negotiated and the Encoder sets them itself.
const (
	FlagHDGST   Flags = 1 << 0 // header digest present
	FlagDDGST   Flags = 1 << 1 // data digest present
	FlagLastPDU Flags = 1 << 2 // H2CData/C2HData: last data PDU of the transfer
	FlagSuccess Flags = 1 << 3 // C2HData: command completed, no CapsuleResp follows
)

const digestFlags = FlagHDGST | FlagDDGST

// semanticFlags returns the flags other than the digest flags that PDUs of
// type t may carry.
func (t Type) semanticFlags() Flags {
	switch t {
	case TypeH2CData:
		return FlagLastPDU
	case TypeC2HData:
		return FlagLastPDU | FlagSuccess
	}
	return 0
}

// String lists the set flags, e.g. "LAST_PDU|SUCCESS".
func (f Flags) String() string {
	if f == 0 {
		return "0"
	}
	names := [...]string{"HDGSTF", "DDGSTF", "LAST_PDU", "SUCCESS"}
	var b []byte
	for i, n := range names {
		if f&(1<<i) != 0 {
			if len(b) > 0 {
				b = append(b, '|')
			}
			b = append(b, n...)
		}
	}
	if rest := f &^ 0x0f; rest != 0 {
		if len(b) > 0 {
			b = append(b, '|')
		}
		b = fmt.Appendf(b, "%#02x", uint8(rest))
	}
	return string(b)
}

// Digests is the DGST field of ICReq/ICResp: which digests a connection uses.
type Digests uint8

// Digest bits of ICReq/ICResp DGST.
const (
	HeaderDigest Digests = 1 << 0
	DataDigest   Digests = 1 << 1

	digestMask = HeaderDigest | DataDigest
)

// CommonHeader is the 8-byte header every PDU starts with.
type CommonHeader struct {
	Type  Type
	Flags Flags
	HLen  uint8  // length of the PDU header, without digest
	PDO   uint8  // offset of the data from the start of the PDU, 0 without data
	PLen  uint32 // length of the whole PDU, digests and padding included
}

// ICReq is the PDU-specific header of an Initialize Connection Request.
type ICReq struct {
	PFV     uint16  // PDU format version, 0
	HPDA    uint8   // host PDU data alignment, 0's based in dwords (0..31)
	Digests Digests // digests the host asks for
	MaxR2T  uint32  // 0's based number of outstanding R2Ts per command
}

// ICResp is the PDU-specific header of an Initialize Connection Response.
type ICResp struct {
	PFV        uint16  // PDU format version, 0
	CPDA       uint8   // controller PDU data alignment, 0's based in dwords (0..31)
	Digests    Digests // digests enabled, an echo of the host's request
	MaxH2CData uint32  // most data bytes in one H2CData PDU, ≥ 4096, multiple of 4
}

// TermReq is the PDU-specific header of an H2CTermReq or a C2HTermReq. The
// PDU's data is the header of the PDU that caused the error.
type TermReq struct {
	FES FES    // fatal error status
	FEI uint32 // fatal error information: the field's byte offset for FES 1 and 6
}

// H2CData is the PDU-specific header of a Host to Controller Data PDU.
type H2CData struct {
	CCCID      uint16 // command capsule CID
	TTAG       uint16 // transfer tag from the R2T
	DataOffset uint32 // DATAO: offset of this data in the command's buffer
	DataLength uint32 // DATAL: bytes of data in this PDU
}

// C2HData is the PDU-specific header of a Controller to Host Data PDU.
type C2HData struct {
	CCCID      uint16 // command capsule CID
	DataOffset uint32 // DATAO
	DataLength uint32 // DATAL
}

// R2T is the PDU-specific header of a Ready to Transfer PDU.
type R2T struct {
	CCCID  uint16 // command capsule CID
	TTAG   uint16 // transfer tag the H2CData PDUs must echo
	Offset uint32 // R2TO: offset of the requested data in the command's buffer
	Length uint32 // R2TL: bytes requested, never 0
}

// PDU is one decoded PDU, or one to encode. Type selects which of the
// PDU-specific fields is meaningful; the others are zero after a Read and
// ignored by the Encoder.
//
// After a Read, Header holds the common header as received. The Encoder
// ignores Header, computes HLEN, PDO and PLEN itself and takes from Flags
// only LAST_PDU and SUCCESS: the digest flags follow from the connection's
// negotiated digests and whether the PDU has data.
type PDU struct {
	Header CommonHeader
	Type   Type
	Flags  Flags

	ICReq   ICReq
	ICResp  ICResp
	TermReq TermReq // H2CTermReq and C2HTermReq
	SQE     SQE     // CapsuleCmd
	CQE     CQE     // CapsuleResp
	H2CData H2CData
	C2HData C2HData
	R2T     R2T

	// Data is the PDU's data: in-capsule data of a CapsuleCmd, the payload
	// of H2CData/C2HData, the offending header of a TermReq. After a Read it
	// aliases the Reader's memory and is valid until the next call on that
	// Reader; to encode, it is referenced, not copied (see Writer.Queue).
	Data []byte
}

// DataLen returns the number of data bytes a PDU with this common header
// carries, from its PLEN, PDO, HLEN and flags. It is meaningful for headers
// the Reader accepted.
func (h CommonHeader) DataLen() int {
	switch {
	case h.Type == TypeH2CTermReq || h.Type == TypeC2HTermReq:
		return int(h.PLen) - int(h.HLen)
	case h.PDO == 0:
		return 0
	}
	n := int64(h.PLen) - int64(h.PDO)
	if h.Flags&FlagDDGST != 0 {
		n -= DigestLen
	}
	return int(n)
}
