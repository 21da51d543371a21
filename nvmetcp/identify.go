package nvmetcp

import "encoding/binary"

// IdentifyLen is the size of every Identify data structure (4 KiB).
const IdentifyLen = 4096

// Identify CNS values a target answers (CDW10 bits 7:0 of Identify, opcode
// 0x06).
const (
	CNSNamespace            = 0x00 // Identify Namespace, NVM command set
	CNSController           = 0x01 // Identify Controller
	CNSActiveNamespaces     = 0x02 // Active Namespace ID list
	CNSNamespaceDescriptors = 0x03 // Namespace Identification Descriptor list
	CNSNamespaceCSI         = 0x05 // I/O command set specific Identify Namespace
	CNSControllerCSI        = 0x06 // I/O command set specific Identify Controller
)

// Controller types (CNTRLTYPE, byte 111 of Identify Controller).
const (
	ControllerTypeIO        = 1
	ControllerTypeDiscovery = 2
	ControllerTypeAdmin     = 3
)

// DiscoveryNQN is the well-known NQN of discovery subsystems.
const DiscoveryNQN = "nqn.2014-08.org.nvmexpress.discovery"

// Byte offsets inside Identify Controller.
const (
	idcVID       = 0
	idcSSVID     = 2
	idcSN        = 4   // 20 bytes
	idcMN        = 24  // 40 bytes
	idcFR        = 64  // 8 bytes
	idcRAB       = 72  //
	idcIEEE      = 73  // 3 bytes
	idcCMIC      = 76  //
	idcMDTS      = 77  //
	idcCNTLID    = 78  // u16
	idcVER       = 80  // u32
	idcRTD3R     = 84  // u32
	idcRTD3E     = 88  // u32
	idcOAES      = 92  // u32
	idcCTRATT    = 96  // u32
	idcCNTRLTYPE = 111 //
	idcOACS      = 256 // u16
	idcACL       = 258
	idcAERL      = 259
	idcFRMW      = 260
	idcLPA       = 261
	idcELPE      = 262
	idcNPSS      = 263
	idcAVSCC     = 264
	idcWCTEMP    = 266 // u16
	idcCCTEMP    = 268 // u16
	idcKAS       = 320 // u16
	idcANATT     = 342
	idcANACAP    = 343
	idcANAGRPMAX = 344 // u32
	idcNANAGRPID = 348 // u32
	idcSQES      = 512
	idcCQES      = 513
	idcMAXCMD    = 514 // u16
	idcNN        = 516 // u32
	idcONCS      = 520 // u16
	idcFUSES     = 522 // u16
	idcFNA       = 524
	idcVWC       = 525
	idcAWUN      = 526 // u16
	idcAWUPF     = 528 // u16
	idcACWU      = 532 // u16
	idcOCFS      = 534 // u16
	idcSGLS      = 536 // u32
	idcMNAN      = 540 // u32
	idcSUBNQN    = 768 // 256 bytes
	idcIOCCSZ    = 1792
	idcIORCSZ    = 1796
	idcICDOFF    = 1800 // u16
	idcFCATT     = 1802
	idcMSDBD     = 1803
	idcOFCS      = 1804 // u16

	snLen     = 20
	mnLen     = 40
	frLen     = 8
	nqnLen    = 256
	trsvcLen  = 32
	traddrLen = 256
)

// IdentifyController is the Identify Controller data structure (CNS 0x01)
// as a Fabrics target fills it: the fields a Linux 6.1 or SPDK host reads,
// at the offsets of NVMe base specification 2.0. Fields not listed here
// (RTD3 latencies aside) are reserved or unsupported and encode as zero,
// power state descriptor 0 included.
//
// SN, MN and FR are ASCII, space padded; SUBNQN is NUL padded. A string
// longer than its field is truncated (SUBNQN to 255 bytes, so that it
// stays NUL terminated): check lengths when configuring, not here.
type IdentifyController struct {
	VID   uint16  // PCI vendor ID
	SSVID uint16  // PCI subsystem vendor ID
	SN    string  // serial number, 20 bytes
	MN    string  // model number, 40 bytes
	FR    string  // firmware revision, 8 bytes
	RAB   uint8   // recommended arbitration burst
	IEEE  [3]byte // IEEE OUI, as it sits in the structure (least significant byte first)
	CMIC  uint8   // multi-path I/O and namespace sharing capabilities
	MDTS  uint8   // maximum data transfer size, a power of two of CAP.MPSMIN units; 0 = no limit
	// CNTLID is the controller ID.
	CNTLID uint16
	VER    uint32 // version, e.g. 0x00020000 for 2.0
	RTD3R  uint32 // RTD3 resume latency, µs
	RTD3E  uint32 // RTD3 entry latency, µs
	OAES   uint32 // optional asynchronous events supported
	CTRATT uint32 // controller attributes
	// CNTRLTYPE is ControllerTypeIO, ControllerTypeDiscovery or
	// ControllerTypeAdmin.
	CNTRLTYPE uint8

	OACS      uint16 // optional admin command support
	ACL       uint8  // abort command limit, 0's based
	AERL      uint8  // asynchronous event request limit, 0's based
	FRMW      uint8  // firmware updates
	LPA       uint8  // log page attributes
	ELPE      uint8  // error log page entries, 0's based
	NPSS      uint8  // number of power states support, 0's based
	AVSCC     uint8  // admin vendor specific command configuration
	WCTEMP    uint16 // warning composite temperature threshold, K
	CCTEMP    uint16 // critical composite temperature threshold, K
	KAS       uint16 // keep alive support, in 100 ms units; 0 = not supported
	ANATT     uint8  // ANA transition time, s
	ANACAP    uint8  // ANA capabilities
	ANAGRPMAX uint32 // largest ANA group ID
	NANAGRPID uint32 // number of ANA group IDs

	SQES   uint8  // SQ entry size: required (3:0) and maximum (7:4), powers of two
	CQES   uint8  // CQ entry size, as SQES
	MAXCMD uint16 // outstanding commands per queue
	NN     uint32 // number of namespaces (largest NSID)
	ONCS   uint16 // optional NVM command support
	FUSES  uint16 // fused operation support
	FNA    uint8  // format NVM attributes
	VWC    uint8  // volatile write cache
	AWUN   uint16 // atomic write unit normal, 0's based blocks
	AWUPF  uint16 // atomic write unit power fail, 0's based blocks
	ACWU   uint16 // atomic compare & write unit, 0's based blocks
	OCFS   uint16 // optional copy formats supported
	SGLS   uint32 // SGL support
	MNAN   uint32 // maximum number of allowed namespaces
	SUBNQN string // NVM subsystem NQN, 256 bytes

	IOCCSZ uint32 // I/O queue command capsule size, 16-byte units
	IORCSZ uint32 // I/O queue response capsule size, 16-byte units
	ICDOFF uint16 // in-capsule data offset, 16-byte units
	FCATT  uint8  // Fabrics controller attributes: bit 0 static controller model
	MSDBD  uint8  // maximum SGL data block descriptors
	OFCS   uint16 // optional Fabrics commands supported
}

// Encode writes the structure to dst, overwriting all 4096 bytes.
func (c *IdentifyController) Encode(dst *[IdentifyLen]byte) {
	*dst = [IdentifyLen]byte{}
	b := dst[:]
	le := binary.LittleEndian
	le.PutUint16(b[idcVID:], c.VID)
	le.PutUint16(b[idcSSVID:], c.SSVID)
	putPadded(b[idcSN:idcSN+snLen], c.SN, ' ')
	putPadded(b[idcMN:idcMN+mnLen], c.MN, ' ')
	putPadded(b[idcFR:idcFR+frLen], c.FR, ' ')
	b[idcRAB] = c.RAB
	copy(b[idcIEEE:], c.IEEE[:])
	b[idcCMIC] = c.CMIC
	b[idcMDTS] = c.MDTS
	le.PutUint16(b[idcCNTLID:], c.CNTLID)
	le.PutUint32(b[idcVER:], c.VER)
	le.PutUint32(b[idcRTD3R:], c.RTD3R)
	le.PutUint32(b[idcRTD3E:], c.RTD3E)
	le.PutUint32(b[idcOAES:], c.OAES)
	le.PutUint32(b[idcCTRATT:], c.CTRATT)
	b[idcCNTRLTYPE] = c.CNTRLTYPE

	le.PutUint16(b[idcOACS:], c.OACS)
	b[idcACL] = c.ACL
	b[idcAERL] = c.AERL
	b[idcFRMW] = c.FRMW
	b[idcLPA] = c.LPA
	b[idcELPE] = c.ELPE
	b[idcNPSS] = c.NPSS
	b[idcAVSCC] = c.AVSCC
	le.PutUint16(b[idcWCTEMP:], c.WCTEMP)
	le.PutUint16(b[idcCCTEMP:], c.CCTEMP)
	le.PutUint16(b[idcKAS:], c.KAS)
	b[idcANATT] = c.ANATT
	b[idcANACAP] = c.ANACAP
	le.PutUint32(b[idcANAGRPMAX:], c.ANAGRPMAX)
	le.PutUint32(b[idcNANAGRPID:], c.NANAGRPID)

	b[idcSQES] = c.SQES
	b[idcCQES] = c.CQES
	le.PutUint16(b[idcMAXCMD:], c.MAXCMD)
	le.PutUint32(b[idcNN:], c.NN)
	le.PutUint16(b[idcONCS:], c.ONCS)
	le.PutUint16(b[idcFUSES:], c.FUSES)
	b[idcFNA] = c.FNA
	b[idcVWC] = c.VWC
	le.PutUint16(b[idcAWUN:], c.AWUN)
	le.PutUint16(b[idcAWUPF:], c.AWUPF)
	le.PutUint16(b[idcACWU:], c.ACWU)
	le.PutUint16(b[idcOCFS:], c.OCFS)
	le.PutUint32(b[idcSGLS:], c.SGLS)
	le.PutUint32(b[idcMNAN:], c.MNAN)
	putPadded(b[idcSUBNQN:idcSUBNQN+nqnLen-1], c.SUBNQN, 0)

	le.PutUint32(b[idcIOCCSZ:], c.IOCCSZ)
	le.PutUint32(b[idcIORCSZ:], c.IORCSZ)
	le.PutUint16(b[idcICDOFF:], c.ICDOFF)
	b[idcFCATT] = c.FCATT
	b[idcMSDBD] = c.MSDBD
	le.PutUint16(b[idcOFCS:], c.OFCS)
}

// DiscoveryIdentifyController is the Identify Controller data of a
// discovery controller. It has the layout of IdentifyController with
// CNTRLTYPE 2, no namespaces, no I/O queues, and SN and MN left all NUL
// as SPDK v26.05 leaves them (Linux 6.1 accepts that).
type DiscoveryIdentifyController struct {
	FR     string // firmware revision, space padded
	MDTS   uint8
	CNTLID uint16
	VER    uint32
	OAES   uint32 // bit 31: discovery log page change notices
	AERL   uint8  // 0's based
	LPA    uint8
	ELPE   uint8 // 0's based
	MAXCMD uint16
	KAS    uint16 // 100 ms units; 0 = not supported
	SGLS   uint32
	SUBNQN string // normally DiscoveryNQN
}

// Encode writes the structure to dst, overwriting all 4096 bytes.
func (d *DiscoveryIdentifyController) Encode(dst *[IdentifyLen]byte) {
	c := IdentifyController{
		FR:        d.FR,
		MDTS:      d.MDTS,
		CNTLID:    d.CNTLID,
		VER:       d.VER,
		OAES:      d.OAES,
		CNTRLTYPE: ControllerTypeDiscovery,
		AERL:      d.AERL,
		LPA:       d.LPA,
		ELPE:      d.ELPE,
		MAXCMD:    d.MAXCMD,
		KAS:       d.KAS,
		SGLS:      d.SGLS,
		SUBNQN:    d.SUBNQN,
	}
	c.Encode(dst)
	clear(dst[idcSN : idcMN+mnLen])
}

// IdentifyControllerNVM is the NVM command set specific Identify
// Controller data structure (CNS 0x06, CSI 0).
type IdentifyControllerNVM struct {
	VSL   uint8  // verify size limit, power of two of MPSMIN units
	WZSL  uint8  // write zeroes size limit, as VSL
	WUSL  uint8  // write uncorrectable size limit, as VSL
	DMRL  uint8  // dataset management ranges limit
	DMRSL uint32 // dataset management range size limit, blocks
	DMSL  uint64 // dataset management size limit, blocks
}

// Encode writes the structure to dst, overwriting all 4096 bytes.
func (c *IdentifyControllerNVM) Encode(dst *[IdentifyLen]byte) {
	*dst = [IdentifyLen]byte{}
	dst[0] = c.VSL
	dst[1] = c.WZSL
	dst[2] = c.WUSL
	dst[3] = c.DMRL
	binary.LittleEndian.PutUint32(dst[4:], c.DMRSL)
	binary.LittleEndian.PutUint64(dst[8:], c.DMSL)
}

// LBAFormat is one LBA format descriptor of Identify Namespace.
type LBAFormat struct {
	MS    uint16 // metadata bytes per block
	LBADS uint8  // block size, a power of two (9 = 512, 12 = 4096)
	RP    uint8  // relative performance, 0 (best) to 3
}

func (f LBAFormat) value() uint32 {
	return uint32(f.MS) | uint32(f.LBADS)<<16 | uint32(f.RP&0x3)<<24
}

// MaxLBAFormats is the number of LBA formats IdentifyNamespace holds
// (NLBAF at most 15).
const MaxLBAFormats = 16

// Byte offsets inside Identify Namespace.
const (
	idnNSZE     = 0 // u64
	idnNCAP     = 8
	idnNUSE     = 16
	idnNSFEAT   = 24
	idnNLBAF    = 25
	idnFLBAS    = 26
	idnMC       = 27
	idnDPC      = 28
	idnDPS      = 29
	idnNMIC     = 30
	idnRESCAP   = 31
	idnFPI      = 32
	idnDLFEAT   = 33
	idnNAWUN    = 34 // u16
	idnNAWUPF   = 36
	idnNACWU    = 38
	idnNABSN    = 40
	idnNABO     = 42
	idnNABSPF   = 44
	idnNOIOB    = 46
	idnNPWG     = 64 // u16
	idnNPWA     = 66
	idnNPDG     = 68
	idnNPDA     = 70
	idnNOWS     = 72
	idnMSSRL    = 74 // u16
	idnMCL      = 76 // u32
	idnMSRC     = 80
	idnANAGRPID = 92 // u32
	idnNSATTR   = 99
	idnNVMSETID = 100 // u16
	idnENDGID   = 102 // u16
	idnNGUID    = 104 // 16 bytes
	idnEUI64    = 120 // 8 bytes
	idnLBAF     = 128 // u32 each
)

// IdentifyNamespace is the NVM command set Identify Namespace data
// structure (CNS 0x00). Sizes and counts are in logical blocks. Fields not
// listed encode as zero.
type IdentifyNamespace struct {
	NSZE   uint64 // namespace size
	NCAP   uint64 // namespace capacity
	NUSE   uint64 // namespace utilization
	NSFEAT uint8  // namespace features
	NLBAF  uint8  // number of LBA formats, 0's based (at most 15 here)
	FLBAS  uint8  // formatted LBA size: index of the format in use in bits 3:0
	MC     uint8  // metadata capabilities
	DPC    uint8  // end-to-end data protection capabilities
	DPS    uint8  // end-to-end data protection type settings
	NMIC   uint8  // multi-path I/O and namespace sharing: bit 0 shared
	RESCAP uint8  // reservation capabilities
	FPI    uint8  // format progress indicator
	DLFEAT uint8  // deallocate logical block features
	NAWUN  uint16 // namespace atomic write unit normal, 0's based
	NAWUPF uint16 // namespace atomic write unit power fail, 0's based
	NACWU  uint16 // namespace atomic compare & write unit, 0's based
	NABSN  uint16 // atomic boundary size normal, 0's based
	NABO   uint16 // atomic boundary offset
	NABSPF uint16 // atomic boundary size power fail, 0's based
	NOIOB  uint16 // optimal I/O boundary
	NPWG   uint16 // preferred write granularity, 0's based
	NPWA   uint16 // preferred write alignment, 0's based
	NPDG   uint16 // preferred deallocate granularity, 0's based
	NPDA   uint16 // preferred deallocate alignment, 0's based
	NOWS   uint16 // optimal write size, 0's based
	MSSRL  uint16 // maximum single source range length (Copy)
	MCL    uint32 // maximum copy length
	MSRC   uint8  // maximum source range count, 0's based
	// ANAGRPID is the ANA group the namespace belongs to (0 without ANA).
	ANAGRPID uint32
	NSATTR   uint8 // namespace attributes: bit 0 write protected
	NVMSETID uint16
	ENDGID   uint16
	NGUID    [16]byte // namespace globally unique identifier
	EUI64    [8]byte  // IEEE extended unique identifier
	LBAF     [MaxLBAFormats]LBAFormat
}

// Encode writes the structure to dst, overwriting all 4096 bytes. LBA
// formats past NLBAF are written as zero.
func (n *IdentifyNamespace) Encode(dst *[IdentifyLen]byte) {
	*dst = [IdentifyLen]byte{}
	b := dst[:]
	le := binary.LittleEndian
	le.PutUint64(b[idnNSZE:], n.NSZE)
	le.PutUint64(b[idnNCAP:], n.NCAP)
	le.PutUint64(b[idnNUSE:], n.NUSE)
	b[idnNSFEAT] = n.NSFEAT
	b[idnNLBAF] = n.NLBAF
	b[idnFLBAS] = n.FLBAS
	b[idnMC] = n.MC
	b[idnDPC] = n.DPC
	b[idnDPS] = n.DPS
	b[idnNMIC] = n.NMIC
	b[idnRESCAP] = n.RESCAP
	b[idnFPI] = n.FPI
	b[idnDLFEAT] = n.DLFEAT
	le.PutUint16(b[idnNAWUN:], n.NAWUN)
	le.PutUint16(b[idnNAWUPF:], n.NAWUPF)
	le.PutUint16(b[idnNACWU:], n.NACWU)
	le.PutUint16(b[idnNABSN:], n.NABSN)
	le.PutUint16(b[idnNABO:], n.NABO)
	le.PutUint16(b[idnNABSPF:], n.NABSPF)
	le.PutUint16(b[idnNOIOB:], n.NOIOB)
	le.PutUint16(b[idnNPWG:], n.NPWG)
	le.PutUint16(b[idnNPWA:], n.NPWA)
	le.PutUint16(b[idnNPDG:], n.NPDG)
	le.PutUint16(b[idnNPDA:], n.NPDA)
	le.PutUint16(b[idnNOWS:], n.NOWS)
	le.PutUint16(b[idnMSSRL:], n.MSSRL)
	le.PutUint32(b[idnMCL:], n.MCL)
	b[idnMSRC] = n.MSRC
	le.PutUint32(b[idnANAGRPID:], n.ANAGRPID)
	b[idnNSATTR] = n.NSATTR
	le.PutUint16(b[idnNVMSETID:], n.NVMSETID)
	le.PutUint16(b[idnENDGID:], n.ENDGID)
	copy(b[idnNGUID:], n.NGUID[:])
	copy(b[idnEUI64:], n.EUI64[:])
	for i := 0; i <= int(n.NLBAF) && i < MaxLBAFormats; i++ {
		le.PutUint32(b[idnLBAF+4*i:], n.LBAF[i].value())
	}
}

// MaxActiveNamespaces is the number of NSIDs an Active Namespace ID list
// holds.
const MaxActiveNamespaces = IdentifyLen / 4

// ActiveNamespaceList is the set of active NSIDs, in increasing order,
// answered to Identify CNS 0x02.
type ActiveNamespaceList []uint32

// Encode writes to dst, overwriting all 4096 bytes, the NSIDs of l greater
// than after (the command's NSID), at most MaxActiveNamespaces of them,
// followed by zeros. l must be sorted in increasing order. It returns the
// number of NSIDs written.
func (l ActiveNamespaceList) Encode(dst *[IdentifyLen]byte, after uint32) int {
	*dst = [IdentifyLen]byte{}
	n := 0
	for _, id := range l {
		if id <= after || id == 0 {
			continue
		}
		if n == MaxActiveNamespaces {
			break
		}
		binary.LittleEndian.PutUint32(dst[4*n:], id)
		n++
	}
	return n
}

// Namespace Identifier Types (NIDT) of the descriptor list.
const (
	NIDTEUI64 = 1 // 8 bytes
	NIDTNGUID = 2 // 16 bytes
	NIDTUUID  = 3 // 16 bytes
	NIDTCSI   = 4 // 1 byte
)

// NamespaceDescriptors is the Namespace Identification Descriptor list
// (CNS 0x03). A descriptor is written for each non-zero identifier, in
// NIDT order (EUI64, NGUID, UUID), and one for CSI if HasCSI is set.
type NamespaceDescriptors struct {
	EUI64  [8]byte
	NGUID  [16]byte
	UUID   [16]byte
	HasCSI bool
	CSI    uint8 // command set identifier, 0 = NVM
}

// Encode writes the list to dst, overwriting all 4096 bytes; a zero
// descriptor header ends it.
func (d *NamespaceDescriptors) Encode(dst *[IdentifyLen]byte) {
	*dst = [IdentifyLen]byte{}
	off := 0
	put := func(nidt uint8, id []byte) {
		dst[off] = nidt
		dst[off+1] = uint8(len(id))
		copy(dst[off+4:], id)
		off += 4 + len(id)
	}
	if d.EUI64 != [8]byte{} {
		put(NIDTEUI64, d.EUI64[:])
	}
	if d.NGUID != [16]byte{} {
		put(NIDTNGUID, d.NGUID[:])
	}
	if d.UUID != [16]byte{} {
		put(NIDTUUID, d.UUID[:])
	}
	if d.HasCSI {
		put(NIDTCSI, []byte{d.CSI})
	}
}

// putPadded copies s into field and fills the rest with pad, truncating s
// to the field.
func putPadded(field []byte, s string, pad byte) {
	n := copy(field, s)
	for i := n; i < len(field); i++ {
		field[i] = pad
	}
}
