package nvmetcp

import (
	"bytes"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// logPage is what every log page type here provides.
type logPage interface {
	Len() int
	AppendRange(dst []byte, off uint64, n int) []byte
}

var (
	_ logPage = (*ErrorInformationLog)(nil)
	_ logPage = (*SMARTLog)(nil)
	_ logPage = (*ANALog)(nil)
	_ logPage = (*DiscoveryLog)(nil)
	_ logPage = ChangedNamespaceList(nil)
	_ logPage = (*CommandEffectsLog)(nil)
)

// capturedLog returns the data of the C2HData PDU of a capture that has n
// bytes.
func capturedLog(t *testing.T, name string, n int) []byte {
	t.Helper()
	p := findPDU(t, loadCapture(t, name), "log data", func(p *PDU) bool {
		return p.Type == TypeC2HData && len(p.Data) == n
	})
	return p.Data
}

// checkRanges compares AppendRange for the given offsets and lengths with
// slices of the whole page (zero padded past Len), appending to a non-empty
// dst each time.
func checkRanges(t *testing.T, p logPage, offs, lens []int) {
	t.Helper()
	extra := 2048
	full := p.AppendRange(nil, 0, p.Len()+extra)
	require.Len(t, full, p.Len()+extra)
	require.Equal(t, make([]byte, extra), full[p.Len():], "zeros past Len")
	prefix := []byte("prefix")
	for _, off := range offs {
		for _, n := range lens {
			if off+n > len(full) {
				continue
			}
			got := p.AppendRange(bytes.Clone(prefix), uint64(off), n)
			if !bytes.Equal(append(bytes.Clone(prefix), full[off:off+n]...), got) {
				require.Failf(t, "range differs", "off %d n %d", off, n)
			}
		}
	}
	// Far past the end: zeros, no overflow.
	assert.Equal(t, make([]byte, 16), p.AppendRange(nil, 1<<62, 16))
	assert.Equal(t, make([]byte, 16), p.AppendRange(nil, ^uint64(0)-8, 16))
	assert.Empty(t, p.AppendRange(nil, 0, 0))
	assert.Empty(t, p.AppendRange(nil, 0, -1))
	// A dst with room is reused.
	buf := make([]byte, 0, 64)
	out := p.AppendRange(buf, 3, 64)
	assert.Equal(t, full[3:67], out)
	assert.Equal(t, &buf[:1][0], &out[0])
}

func allInts(n int) []int {
	s := make([]int, n)
	for i := range s {
		s[i] = i
	}
	return s
}

// someInts returns the interesting values around the multiples of unit up
// to max, plus random ones.
func someInts(r *rand.Rand, unit, max int) []int {
	var s []int
	for b := 0; b <= max; b += unit {
		for _, d := range []int{-5, -4, -1, 0, 1, 3, 4, 17} {
			if v := b + d; v >= 0 && v <= max {
				s = append(s, v)
			}
		}
	}
	for range 20 {
		s = append(s, r.IntN(max+1))
	}
	return s
}

type anaDesc struct {
	ID, NNSIDs  uint32
	ChangeCount uint64
	State       ANAState
	NSIDs       []uint32
}

// decodeANALog decodes an ANA log page and returns its length.
func decodeANALog(t *testing.T, b []byte) (chg uint64, groups []anaDesc, n int) {
	t.Helper()
	require.GreaterOrEqual(t, len(b), ANALogHeaderLen)
	chg = le.Uint64(b[0:])
	ngrps := int(le.Uint16(b[8:]))
	require.Equal(t, make([]byte, 6), b[10:16], "reserved")
	off := ANALogHeaderLen
	for range ngrps {
		d := b[off : off+ANAGroupDescLen]
		g := anaDesc{ID: le.Uint32(d[0:]), NNSIDs: le.Uint32(d[4:]), ChangeCount: le.Uint64(d[8:]), State: ANAState(d[16])}
		require.Equal(t, make([]byte, 15), d[17:32], "reserved")
		off += ANAGroupDescLen
		for range g.NNSIDs {
			g.NSIDs = append(g.NSIDs, le.Uint32(b[off:]))
			off += 4
		}
		groups = append(groups, g)
	}
	return chg, groups, off
}

// TestANALogGolden compares SPDK's ANA log as read by Linux 6.1 (1168
// bytes: 16 + NANAGRPID·32 + NN·4) with the encoding of one optimized
// group 1 holding NSID 1.
func TestANALogGolden(t *testing.T) {
	want := capturedLog(t, "linux-admin-c2h.hex", 1168)
	l := ANALog{Groups: []ANAGroup{{ID: 1, State: ANAOptimized, NSIDs: []uint32{1}}}}
	assert.Equal(t, 52, l.Len())
	assert.Equal(t, want, l.AppendRange(nil, 0, 1168))
}

func TestANALog(t *testing.T) {
	l := ANALog{
		ChangeCount: 0x0102030405060708,
		Groups: []ANAGroup{
			{ID: 1, ChangeCount: 5, State: ANAOptimized, NSIDs: []uint32{1, 3}},
			{ID: 2, State: ANANonOptimized},
			{ID: 7, ChangeCount: 9, State: ANAInaccessible, NSIDs: []uint32{2, 4, 5}},
			{ID: 8, State: ANAChange, NSIDs: []uint32{6}},
		},
	}
	assert.Equal(t, 16+4*32+6*4, l.Len())
	b := l.AppendRange(nil, 0, l.Len())
	chg, groups, n := decodeANALog(t, b)
	assert.Equal(t, l.Len(), n)
	assert.Equal(t, l.ChangeCount, chg)
	require.Len(t, groups, len(l.Groups))
	for i, g := range l.Groups {
		assert.Equal(t, anaDesc{g.ID, uint32(len(g.NSIDs)), g.ChangeCount, g.State, g.NSIDs}, groups[i])
	}
	checkRanges(t, &l, allInts(l.Len()+40), allInts(l.Len()+40))

	// RGO: the same groups without NSIDs.
	l.RGO = true
	assert.Equal(t, 16+4*32, l.Len())
	b = l.AppendRange(nil, 0, l.Len())
	_, groups, n = decodeANALog(t, b)
	assert.Equal(t, l.Len(), n)
	for i, g := range l.Groups {
		assert.Equal(t, anaDesc{g.ID, 0, g.ChangeCount, g.State, nil}, groups[i])
	}
	checkRanges(t, &l, allInts(l.Len()+40), allInts(l.Len()+40))

	empty := ANALog{ChangeCount: 3}
	assert.Equal(t, 16, empty.Len())
	assert.Equal(t, []byte{3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}, empty.AppendRange(nil, 0, 16))
}

func decodeDiscoveryEntry(b []byte) DiscoveryLogEntry {
	return DiscoveryLogEntry{
		TRTYPE: b[0], ADRFAM: b[1], SUBTYPE: b[2], TREQ: b[3],
		PORTID: le.Uint16(b[4:]), CNTLID: le.Uint16(b[6:]), ASQSZ: le.Uint16(b[8:]), EFLAGS: le.Uint16(b[10:]),
		TRSVCID: unpad(b[32:64], ' '),
		SUBNQN:  cstring(b[256:512]),
		TRADDR:  unpad(b[512:768], ' '),
		SECTYPE: b[768],
	}
}

func decodeDiscoveryLog(t *testing.T, b []byte) DiscoveryLog {
	t.Helper()
	l := DiscoveryLog{GenCtr: le.Uint64(b[0:]), RecFmt: le.Uint16(b[16:])}
	numrec := int(le.Uint64(b[8:]))
	require.Equal(t, make([]byte, DiscoveryLogHeaderLen-18), b[18:DiscoveryLogHeaderLen], "reserved")
	for i := range numrec {
		e := b[DiscoveryLogHeaderLen+i*DiscoveryLogEntryLen:][:DiscoveryLogEntryLen]
		l.Entries = append(l.Entries, decodeDiscoveryEntry(e))
	}
	return l
}

// spdkDiscoveryLog is the discovery log of wire note §11.
func spdkDiscoveryLog() DiscoveryLog {
	return DiscoveryLog{
		GenCtr: 2,
		Entries: []DiscoveryLogEntry{
			{
				TRTYPE: TransportTCP, ADRFAM: AddressFamilyIPv4, SUBTYPE: SubtypeCurrentDiscovery,
				TREQ: TREQSecureChannelNotRequired, CNTLID: DynamicCNTLID, ASQSZ: 128,
				EFLAGS:  EFlagDuplicateReturnedInfo | EFlagExplicitPersistent,
				TRSVCID: "4620", SUBNQN: DiscoveryNQN, TRADDR: "127.0.0.1",
			},
			{
				TRTYPE: TransportTCP, ADRFAM: AddressFamilyIPv4, SUBTYPE: SubtypeNVM,
				TREQ: TREQSecureChannelNotRequired, CNTLID: DynamicCNTLID, ASQSZ: 128,
				TRSVCID: "4620", SUBNQN: "nqn.2016-06.io.spdk:wire", TRADDR: "127.0.0.1",
			},
		},
	}
}

// TestDiscoveryLogGolden compares with the two reads nvme-cli made of
// SPDK's discovery log: the 1024-byte header, then header and entries.
func TestDiscoveryLogGolden(t *testing.T) {
	l := spdkDiscoveryLog()
	assert.Equal(t, 3072, l.Len())
	assert.Equal(t, capturedLog(t, "linux-discovery-c2h.hex", 1024), l.AppendRange(nil, 0, 1024))
	whole := capturedLog(t, "linux-discovery-c2h.hex", 3072)
	assert.Equal(t, whole, l.AppendRange(nil, 0, 3072))
	assert.Equal(t, l, decodeDiscoveryLog(t, whole))
	// SPDK's host re-reads the generation counter alone (8 bytes).
	assert.Equal(t, whole[:8], l.AppendRange(nil, 0, 8))
}

func TestDiscoveryLog(t *testing.T) {
	l := spdkDiscoveryLog()
	l.GenCtr = 0x1122334455667788
	l.RecFmt = 0
	l.Entries = append(l.Entries, DiscoveryLogEntry{
		TRTYPE: TransportTCP, ADRFAM: AddressFamilyIPv6, SUBTYPE: SubtypeReferral, TREQ: 0x1,
		PORTID: 7, CNTLID: 5, ASQSZ: 32, TRSVCID: "8009", SUBNQN: "nqn.2016-06.io.vda:x",
		TRADDR: "fe80::1", SECTYPE: 1,
	})
	b := l.AppendRange(nil, 0, l.Len())
	assert.Equal(t, l, decodeDiscoveryLog(t, b))
	assert.Equal(t, "8009"+string(bytes.Repeat([]byte{' '}, 28)), string(b[3*1024+32:3*1024+64]))
	r := rand.New(rand.NewPCG(1, 2))
	checkRanges(t, &l, someInts(r, 1024, l.Len()+1024), someInts(r, 1024, l.Len()+1024))

	var empty DiscoveryLog
	assert.Equal(t, 1024, empty.Len())
	assert.Equal(t, make([]byte, 1024), empty.AppendRange(nil, 0, 1024))
}

func TestSMARTLog(t *testing.T) {
	var zero SMARTLog
	assert.Equal(t, SMARTLogLen, zero.Len())
	assert.Equal(t, make([]byte, 512), zero.AppendRange(nil, 0, 512), "SPDK: all zero")

	l := SMARTLog{
		CriticalWarning: 0x1, CompositeTemperature: 310, AvailableSpare: 100, AvailableSpareThreshold: 10,
		PercentageUsed: 3, EnduranceGroupWarning: 0x2,
		DataUnitsRead: 1, DataUnitsWritten: 2, HostReadCommands: 3, HostWriteCommands: 4,
		ControllerBusyTime: 5, PowerCycles: 6, PowerOnHours: 7, UnsafeShutdowns: 8,
		MediaErrors: 9, ErrorLogEntries: 1 << 63,
		WarningTempTime: 11, CriticalTempTime: 12,
		TemperatureSensors: [8]uint16{300, 301, 302, 303, 304, 305, 306, 307},
	}
	var b [SMARTLogLen]byte
	l.Encode(&b)
	c := func(off int) uint64 {
		require.Equal(t, uint64(0), le.Uint64(b[off+8:]), "high half of the counter at %d", off)
		return le.Uint64(b[off:])
	}
	got := SMARTLog{
		CriticalWarning: b[0], CompositeTemperature: le.Uint16(b[1:]), AvailableSpare: b[3],
		AvailableSpareThreshold: b[4], PercentageUsed: b[5], EnduranceGroupWarning: b[6],
		DataUnitsRead: c(32), DataUnitsWritten: c(48), HostReadCommands: c(64), HostWriteCommands: c(80),
		ControllerBusyTime: c(96), PowerCycles: c(112), PowerOnHours: c(128), UnsafeShutdowns: c(144),
		MediaErrors: c(160), ErrorLogEntries: c(176),
		WarningTempTime: le.Uint32(b[192:]), CriticalTempTime: le.Uint32(b[196:]),
	}
	for i := range got.TemperatureSensors {
		got.TemperatureSensors[i] = le.Uint16(b[200+2*i:])
	}
	assert.Equal(t, l, got)
	assert.Equal(t, make([]byte, 512-216), b[216:], "reserved")
	assert.Equal(t, b[:], l.AppendRange(nil, 0, 512))
	checkRanges(t, &l, allInts(530), []int{0, 1, 2, 3, 4, 7, 8, 16, 100, 511, 512, 513})
}

func TestErrorInformationLog(t *testing.T) {
	l := ErrorInformationLog{Entries: 128}
	assert.Equal(t, 8192, l.Len())
	assert.Equal(t, make([]byte, 8192), l.AppendRange(nil, 0, 8192), "no errors recorded")
	checkRanges(t, &l, []int{0, 1, 64, 8191, 8192}, []int{0, 1, 64, 4096})
}

func TestLogPageAllocs(t *testing.T) {
	ana := ANALog{Groups: []ANAGroup{{ID: 1, State: ANAOptimized, NSIDs: []uint32{1}}}}
	disc := spdkDiscoveryLog()
	var smart SMARTLog
	var errs = ErrorInformationLog{Entries: 128}
	changed := ChangedNamespaceList{1, 2}
	var effects CommandEffectsLog
	effects.Admin[6] = EffectCSUPP
	buf := make([]byte, 0, 8192)
	allocs := testing.AllocsPerRun(100, func() {
		ana.AppendRange(buf, 0, 1168)
		disc.AppendRange(buf, 0, 3072)
		disc.AppendRange(buf, 1000, 1100)
		smart.AppendRange(buf, 0, 512)
		errs.AppendRange(buf, 0, 8192)
		changed.AppendRange(buf, 0, 4096)
		effects.AppendRange(buf, 100, 4000)
	})
	assert.Zero(t, allocs)
}

func TestChangedNamespaceList(t *testing.T) {
	l := ChangedNamespaceList{2}
	assert.Equal(t, 4096, l.Len())
	want := make([]byte, 4096)
	want[0] = 2
	assert.Equal(t, want, l.AppendRange(nil, 0, 4096), "the list Linux read: [2]")
	l = ChangedNamespaceList{1, 7, 0x10000}
	b := l.AppendRange(nil, 0, 4096)
	assert.Equal(t, []uint32{1, 7, 0x10000, 0}, []uint32{le.Uint32(b[0:]), le.Uint32(b[4:]), le.Uint32(b[8:]), le.Uint32(b[12:])})
	checkRanges(t, l, allInts(20), allInts(20))

	var many ChangedNamespaceList
	for i := uint32(1); i <= 1025; i++ {
		many = append(many, i)
	}
	want = make([]byte, 4096)
	le.PutUint32(want, 0xFFFFFFFF)
	assert.Equal(t, want, many.AppendRange(nil, 0, 4096), "overflow")
	many = many[:1024]
	b = many.AppendRange(nil, 0, 4096)
	assert.Equal(t, uint32(1024), le.Uint32(b[4092:]))
	checkRanges(t, many, []int{0, 1, 4090, 4095, 4096}, []int{0, 1, 5, 4096})
}

func TestCommandEffectsLog(t *testing.T) {
	var l CommandEffectsLog
	for _, op := range []int{0x02, 0x06, 0x09, 0x0A, 0x08, 0x0C, 0x18} {
		l.Admin[op] = EffectCSUPP
	}
	for _, op := range []int{0x00, 0x01, 0x08, 0x09} {
		l.IO[op] = EffectCSUPP | EffectLBCC
	}
	l.IO[0x02] = EffectCSUPP
	l.IO[0xFF] = 0xdeadbeef
	b := l.AppendRange(nil, 0, l.Len())
	var got CommandEffectsLog
	for i := range 256 {
		got.Admin[i] = le.Uint32(b[4*i:])
		got.IO[i] = le.Uint32(b[1024+4*i:])
	}
	assert.Equal(t, l, got)
	assert.Equal(t, make([]byte, 2048), b[2048:], "reserved")
	r := rand.New(rand.NewPCG(3, 4))
	checkRanges(t, &l, someInts(r, 1024, 5000), someInts(r, 1024, 5000))
}
