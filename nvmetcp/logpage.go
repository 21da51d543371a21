package nvmetcp

import (
	"encoding/binary"
	"slices"
)

// Log page identifiers (Get Log Page CDW10 bits 7:0) a target answers.
const (
	LogErrorInformation  = 0x01
	LogSMARTHealth       = 0x02
	LogFirmwareSlot      = 0x03
	LogChangedNamespaces = 0x04
	LogCommandsEffects   = 0x05
	LogANA               = 0x0C
	LogDiscovery         = 0x70
)

// A host reads a log page in pieces: Get Log Page carries an offset
// (LPOL/LPOU) and a length (NUMDL/NUMDU). Every log page type here has
// Len, the size of its content, and AppendRange(dst, off, n), which appends
// exactly n bytes to dst: the page's bytes [off, off+n), with zeros past
// Len (a host may ask for more than there is, as Linux does for the ANA log
// sized for NN namespaces). Only the parts overlapping the range are
// encoded, and nothing is allocated beyond growing dst. Rejecting an
// offset past Len (Invalid Field in Command) is the caller's choice.

// rangeOut collects the bytes of a page range: pieces of the page are
// offered in order with their page offset, and the overlapping part lands
// in out.
type rangeOut struct {
	out      []byte // n zero bytes, the range
	off, end uint64 // page offsets of out[0] and past its end
}

// newRange grows dst by n zero bytes and returns it with the range writer.
func newRange(dst []byte, off uint64, n int) ([]byte, rangeOut) {
	if n < 0 {
		n = 0
	}
	l := len(dst)
	dst = slices.Grow(dst, n)[:l+n]
	clear(dst[l:])
	end := off + uint64(n)
	if end < off { // past 2^64: nothing there but zeros anyway
		end = ^uint64(0)
	}
	return dst, rangeOut{out: dst[l:], off: off, end: end}
}

// wants reports whether a piece of size at page offset pos overlaps the
// range.
func (r *rangeOut) wants(pos uint64, size int) bool {
	return pos < r.end && pos+uint64(size) > r.off
}

// done reports whether pieces at pos and beyond are past the range.
func (r *rangeOut) done(pos uint64) bool { return pos >= r.end }

// put copies the overlap of piece, found at page offset pos, into the range.
func (r *rangeOut) put(pos uint64, piece []byte) {
	if !r.wants(pos, len(piece)) {
		return
	}
	if pos >= r.off {
		copy(r.out[pos-r.off:], piece)
	} else {
		copy(r.out, piece[r.off-pos:])
	}
}

// ErrorLogEntryLen is the size of one Error Information log entry.
const ErrorLogEntryLen = 64

// ErrorInformationLog is an Error Information log page (0x01) with no
// error recorded: Entries zero entries (ELPE+1).
type ErrorInformationLog struct {
	Entries int
}

// Len returns the page size, Entries × 64 bytes.
func (l *ErrorInformationLog) Len() int { return l.Entries * ErrorLogEntryLen }

// AppendRange appends n bytes of the page from offset off: all zero.
func (l *ErrorInformationLog) AppendRange(dst []byte, off uint64, n int) []byte {
	dst, _ = newRange(dst, off, n)
	return dst
}

// SMARTLogLen is the size of the SMART / Health Information log page.
const SMARTLogLen = 512

// SMARTLog is the SMART / Health Information log page (0x02). The 128-bit
// counters are given as their low 64 bits. The zero value is what SPDK
// v26.05 returns for a malloc bdev: every field 0 (temperature 0 = not
// reported).
type SMARTLog struct {
	CriticalWarning         uint8
	CompositeTemperature    uint16 // K
	AvailableSpare          uint8  // percent
	AvailableSpareThreshold uint8  // percent
	PercentageUsed          uint8
	EnduranceGroupWarning   uint8
	DataUnitsRead           uint64 // thousands of 512-byte units
	DataUnitsWritten        uint64
	HostReadCommands        uint64
	HostWriteCommands       uint64
	ControllerBusyTime      uint64 // minutes
	PowerCycles             uint64
	PowerOnHours            uint64
	UnsafeShutdowns         uint64
	MediaErrors             uint64
	ErrorLogEntries         uint64
	WarningTempTime         uint32 // minutes
	CriticalTempTime        uint32 // minutes
	TemperatureSensors      [8]uint16
}

// Len returns SMARTLogLen.
func (l *SMARTLog) Len() int { return SMARTLogLen }

// Encode writes the whole page to dst.
func (l *SMARTLog) Encode(dst *[SMARTLogLen]byte) {
	*dst = [SMARTLogLen]byte{}
	le := binary.LittleEndian
	dst[0] = l.CriticalWarning
	le.PutUint16(dst[1:], l.CompositeTemperature)
	dst[3] = l.AvailableSpare
	dst[4] = l.AvailableSpareThreshold
	dst[5] = l.PercentageUsed
	dst[6] = l.EnduranceGroupWarning
	for i, v := range [...]uint64{
		l.DataUnitsRead, l.DataUnitsWritten, l.HostReadCommands, l.HostWriteCommands,
		l.ControllerBusyTime, l.PowerCycles, l.PowerOnHours, l.UnsafeShutdowns,
		l.MediaErrors, l.ErrorLogEntries,
	} {
		le.PutUint64(dst[32+16*i:], v) // bytes 8..15 of each counter stay 0
	}
	le.PutUint32(dst[192:], l.WarningTempTime)
	le.PutUint32(dst[196:], l.CriticalTempTime)
	for i, t := range l.TemperatureSensors {
		le.PutUint16(dst[200+2*i:], t)
	}
}

// AppendRange appends n bytes of the page from offset off.
func (l *SMARTLog) AppendRange(dst []byte, off uint64, n int) []byte {
	dst, r := newRange(dst, off, n)
	if r.wants(0, SMARTLogLen) {
		var page [SMARTLogLen]byte
		l.Encode(&page)
		r.put(0, page[:])
	}
	return dst
}

// ANA states (ANAS, bits 3:0 of a group descriptor's byte 16).
type ANAState uint8

// The ANA states.
const (
	ANAOptimized      ANAState = 0x1
	ANANonOptimized   ANAState = 0x2
	ANAInaccessible   ANAState = 0x3
	ANAPersistentLoss ANAState = 0x4
	ANAChange         ANAState = 0xF
)

// Sizes of the ANA log page parts.
const (
	ANALogHeaderLen = 16
	ANAGroupDescLen = 32 // without its NSID list
)

// ANAGroup is one ANA group descriptor.
type ANAGroup struct {
	ID          uint32   // ANAGRPID
	ChangeCount uint64   // CHGCNT of the group
	State       ANAState // ANAS
	NSIDs       []uint32 // the group's attached namespaces, in increasing order
}

// ANALog is the Asymmetric Namespace Access log page (0x0C): a header and
// one descriptor per group. With RGO (Return Groups Only, bit 0 of the
// command's LSP) set the descriptors carry NNSIDS 0 and no NSID list.
type ANALog struct {
	ChangeCount uint64 // CHGCNT of the page
	Groups      []ANAGroup
	RGO         bool
}

// Len returns 16 + 32 per group + 4 per NSID (none with RGO).
func (l *ANALog) Len() int {
	n := ANALogHeaderLen
	for i := range l.Groups {
		n += ANAGroupDescLen + 4*l.nsids(&l.Groups[i])
	}
	return n
}

func (l *ANALog) nsids(g *ANAGroup) int {
	if l.RGO {
		return 0
	}
	return len(g.NSIDs)
}

// AppendRange appends n bytes of the page from offset off.
func (l *ANALog) AppendRange(dst []byte, off uint64, n int) []byte {
	dst, r := newRange(dst, off, n)
	var piece [ANAGroupDescLen]byte
	le := binary.LittleEndian
	if r.wants(0, ANALogHeaderLen) {
		h := piece[:ANALogHeaderLen]
		clear(h)
		le.PutUint64(h[0:], l.ChangeCount)
		le.PutUint16(h[8:], uint16(len(l.Groups)))
		r.put(0, h)
	}
	pos := uint64(ANALogHeaderLen)
	for i := range l.Groups {
		if r.done(pos) {
			break
		}
		g := &l.Groups[i]
		nn := l.nsids(g)
		if r.wants(pos, ANAGroupDescLen) {
			d := piece[:ANAGroupDescLen]
			clear(d)
			le.PutUint32(d[0:], g.ID)
			le.PutUint32(d[4:], uint32(nn))
			le.PutUint64(d[8:], g.ChangeCount)
			d[16] = uint8(g.State) & 0xf
			r.put(pos, d)
		}
		pos += ANAGroupDescLen
		if !r.wants(pos, 4*nn) {
			pos += 4 * uint64(nn)
			continue
		}
		for _, id := range g.NSIDs[:nn] {
			if r.done(pos) {
				break
			}
			if r.wants(pos, 4) {
				le.PutUint32(piece[:4], id)
				r.put(pos, piece[:4])
			}
			pos += 4
		}
	}
	return dst
}

// Discovery log page values.
const (
	// DiscoveryLogHeaderLen and DiscoveryLogEntryLen are the sizes of the
	// page's header and of each entry.
	DiscoveryLogHeaderLen = 1024
	DiscoveryLogEntryLen  = 1024

	TransportTCP = 3 // TRTYPE

	AddressFamilyIPv4 = 1 // ADRFAM
	AddressFamilyIPv6 = 2

	// SUBTYPE values.
	SubtypeReferral         = 1 // a referral to another discovery service
	SubtypeNVM              = 2 // an NVM subsystem
	SubtypeCurrentDiscovery = 3 // the discovery subsystem answering

	// TREQ: secure channel not required (bits 1:0 = 10b).
	TREQSecureChannelNotRequired = 0x02

	// CNTLID of the dynamic controller model.
	DynamicCNTLID = 0xFFFF

	// EFLAGS bits.
	EFlagDuplicateReturnedInfo = 1 << 0
	EFlagExplicitPersistent    = 1 << 1
)

// DiscoveryLogEntry is one Discovery log page entry. TRSVCID and TRADDR are
// ASCII and space padded, SUBNQN is NUL padded; longer strings are
// truncated (SUBNQN to 255 bytes).
type DiscoveryLogEntry struct {
	TRTYPE  uint8  // TransportTCP
	ADRFAM  uint8  // AddressFamilyIPv4, …
	SUBTYPE uint8  // SubtypeNVM, …
	TREQ    uint8  // transport requirements
	PORTID  uint16 // port ID
	CNTLID  uint16 // DynamicCNTLID for the dynamic controller model
	ASQSZ   uint16 // admin max SQ size
	EFLAGS  uint16 // entry flags
	TRSVCID string // transport service ID: the TCP port, e.g. "4420"
	SUBNQN  string
	TRADDR  string // transport address, e.g. "127.0.0.1"
	SECTYPE uint8  // TSAS byte 0 for TCP: 0 = no security
}

// Encode writes the 1024-byte entry to dst.
func (e *DiscoveryLogEntry) Encode(dst *[DiscoveryLogEntryLen]byte) {
	*dst = [DiscoveryLogEntryLen]byte{}
	le := binary.LittleEndian
	dst[0] = e.TRTYPE
	dst[1] = e.ADRFAM
	dst[2] = e.SUBTYPE
	dst[3] = e.TREQ
	le.PutUint16(dst[4:], e.PORTID)
	le.PutUint16(dst[6:], e.CNTLID)
	le.PutUint16(dst[8:], e.ASQSZ)
	le.PutUint16(dst[10:], e.EFLAGS)
	putPadded(dst[32:32+trsvcLen], e.TRSVCID, ' ')
	putPadded(dst[256:256+nqnLen-1], e.SUBNQN, 0)
	putPadded(dst[512:512+traddrLen], e.TRADDR, ' ')
	dst[768] = e.SECTYPE
}

// DiscoveryLog is the Discovery log page (0x70): a 1024-byte header
// (GENCTR, NUMREC = len(Entries), RECFMT) and the entries.
type DiscoveryLog struct {
	GenCtr  uint64 // generation counter, changed whenever the entries change
	RecFmt  uint16 // record format, 0
	Entries []DiscoveryLogEntry
}

// Len returns 1024 × (1 + len(Entries)).
func (l *DiscoveryLog) Len() int { return DiscoveryLogHeaderLen + DiscoveryLogEntryLen*len(l.Entries) }

// AppendRange appends n bytes of the page from offset off.
func (l *DiscoveryLog) AppendRange(dst []byte, off uint64, n int) []byte {
	dst, r := newRange(dst, off, n)
	var piece [DiscoveryLogEntryLen]byte
	if r.wants(0, DiscoveryLogHeaderLen) {
		// Only the first 18 bytes are not reserved.
		var h [18]byte
		binary.LittleEndian.PutUint64(h[0:], l.GenCtr)
		binary.LittleEndian.PutUint64(h[8:], uint64(len(l.Entries)))
		binary.LittleEndian.PutUint16(h[16:], l.RecFmt)
		r.put(0, h[:])
	}
	pos := uint64(DiscoveryLogHeaderLen)
	for i := range l.Entries {
		if r.done(pos) {
			break
		}
		if r.wants(pos, DiscoveryLogEntryLen) {
			l.Entries[i].Encode(&piece)
			r.put(pos, piece[:])
		}
		pos += DiscoveryLogEntryLen
	}
	return dst
}

// ChangedNamespaceListLen is the size of the Changed Namespace List log
// page.
const ChangedNamespaceListLen = 4096

// ChangedNamespaceList is the Changed Namespace List log page (0x04): the
// NSIDs whose attributes changed since the page was last read (Linux reads
// it after a Namespace Attribute Changed event), in increasing order. With
// more than 1024 of them the page holds 0xFFFFFFFF alone.
type ChangedNamespaceList []uint32

// Len returns ChangedNamespaceListLen.
func (l ChangedNamespaceList) Len() int { return ChangedNamespaceListLen }

// AppendRange appends n bytes of the page from offset off.
func (l ChangedNamespaceList) AppendRange(dst []byte, off uint64, n int) []byte {
	dst, r := newRange(dst, off, n)
	var v [4]byte
	if len(l) > ChangedNamespaceListLen/4 {
		binary.LittleEndian.PutUint32(v[:], 0xFFFFFFFF)
		r.put(0, v[:])
		return dst
	}
	for i, id := range l {
		pos := uint64(4 * i)
		if r.done(pos) {
			break
		}
		if r.wants(pos, 4) {
			binary.LittleEndian.PutUint32(v[:], id)
			r.put(pos, v[:])
		}
	}
	return dst
}

// CommandEffectsLogLen is the size of the Commands Supported and Effects
// log page.
const CommandEffectsLogLen = 4096

// Command effects bits of the Commands Supported and Effects log page.
const (
	EffectCSUPP = 1 << 0 // command supported
	EffectLBCC  = 1 << 1 // logical block content change
	EffectNCC   = 1 << 2 // namespace capability change
	EffectNIC   = 1 << 3 // namespace inventory change
	EffectCCC   = 1 << 4 // controller capability change
)

// CommandEffectsLog is the Commands Supported and Effects log page (0x05):
// one effects dword per admin opcode and per I/O opcode. Reporting only
// EffectCSUPP, plus EffectLBCC for commands that write, keeps Linux 6.1
// from logging "unusual effects" (wire note §10).
type CommandEffectsLog struct {
	Admin [256]uint32
	IO    [256]uint32
}

// Len returns CommandEffectsLogLen.
func (l *CommandEffectsLog) Len() int { return CommandEffectsLogLen }

// AppendRange appends n bytes of the page from offset off.
func (l *CommandEffectsLog) AppendRange(dst []byte, off uint64, n int) []byte {
	dst, r := newRange(dst, off, n)
	var v [4]byte
	for i, tab := range [2]*[256]uint32{&l.Admin, &l.IO} {
		base := uint64(1024 * i)
		for op, e := range tab {
			pos := base + 4*uint64(op)
			if r.done(pos) {
				return dst
			}
			if e != 0 && r.wants(pos, 4) {
				binary.LittleEndian.PutUint32(v[:], e)
				r.put(pos, v[:])
			}
		}
	}
	return dst
}
