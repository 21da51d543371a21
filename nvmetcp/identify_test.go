package nvmetcp

import (
	"bytes"
	"encoding/binary"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The decoders below exist only for the tests: the target encodes these
// structures and never reads them.

var le = binary.LittleEndian

// unpad returns the field's text without trailing pad bytes or NULs (a
// discovery controller's SN and MN are all NUL).
func unpad(b []byte, pad byte) string { return string(bytes.TrimRight(b, string([]byte{pad, 0}))) }

func decodeIdentifyController(b *[IdentifyLen]byte) IdentifyController {
	return IdentifyController{
		VID:       le.Uint16(b[idcVID:]),
		SSVID:     le.Uint16(b[idcSSVID:]),
		SN:        unpad(b[idcSN:idcSN+snLen], ' '),
		MN:        unpad(b[idcMN:idcMN+mnLen], ' '),
		FR:        unpad(b[idcFR:idcFR+frLen], ' '),
		RAB:       b[idcRAB],
		IEEE:      [3]byte(b[idcIEEE : idcIEEE+3]),
		CMIC:      b[idcCMIC],
		MDTS:      b[idcMDTS],
		CNTLID:    le.Uint16(b[idcCNTLID:]),
		VER:       le.Uint32(b[idcVER:]),
		RTD3R:     le.Uint32(b[idcRTD3R:]),
		RTD3E:     le.Uint32(b[idcRTD3E:]),
		OAES:      le.Uint32(b[idcOAES:]),
		CTRATT:    le.Uint32(b[idcCTRATT:]),
		CNTRLTYPE: b[idcCNTRLTYPE],
		OACS:      le.Uint16(b[idcOACS:]),
		ACL:       b[idcACL],
		AERL:      b[idcAERL],
		FRMW:      b[idcFRMW],
		LPA:       b[idcLPA],
		ELPE:      b[idcELPE],
		NPSS:      b[idcNPSS],
		AVSCC:     b[idcAVSCC],
		WCTEMP:    le.Uint16(b[idcWCTEMP:]),
		CCTEMP:    le.Uint16(b[idcCCTEMP:]),
		KAS:       le.Uint16(b[idcKAS:]),
		ANATT:     b[idcANATT],
		ANACAP:    b[idcANACAP],
		ANAGRPMAX: le.Uint32(b[idcANAGRPMAX:]),
		NANAGRPID: le.Uint32(b[idcNANAGRPID:]),
		SQES:      b[idcSQES],
		CQES:      b[idcCQES],
		MAXCMD:    le.Uint16(b[idcMAXCMD:]),
		NN:        le.Uint32(b[idcNN:]),
		ONCS:      le.Uint16(b[idcONCS:]),
		FUSES:     le.Uint16(b[idcFUSES:]),
		FNA:       b[idcFNA],
		VWC:       b[idcVWC],
		AWUN:      le.Uint16(b[idcAWUN:]),
		AWUPF:     le.Uint16(b[idcAWUPF:]),
		ACWU:      le.Uint16(b[idcACWU:]),
		OCFS:      le.Uint16(b[idcOCFS:]),
		SGLS:      le.Uint32(b[idcSGLS:]),
		MNAN:      le.Uint32(b[idcMNAN:]),
		SUBNQN:    cstring(b[idcSUBNQN : idcSUBNQN+nqnLen]),
		IOCCSZ:    le.Uint32(b[idcIOCCSZ:]),
		IORCSZ:    le.Uint32(b[idcIORCSZ:]),
		ICDOFF:    le.Uint16(b[idcICDOFF:]),
		FCATT:     b[idcFCATT],
		MSDBD:     b[idcMSDBD],
		OFCS:      le.Uint16(b[idcOFCS:]),
	}
}

func decodeIdentifyNamespace(b *[IdentifyLen]byte) IdentifyNamespace {
	n := IdentifyNamespace{
		NSZE:     le.Uint64(b[idnNSZE:]),
		NCAP:     le.Uint64(b[idnNCAP:]),
		NUSE:     le.Uint64(b[idnNUSE:]),
		NSFEAT:   b[idnNSFEAT],
		NLBAF:    b[idnNLBAF],
		FLBAS:    b[idnFLBAS],
		MC:       b[idnMC],
		DPC:      b[idnDPC],
		DPS:      b[idnDPS],
		NMIC:     b[idnNMIC],
		RESCAP:   b[idnRESCAP],
		FPI:      b[idnFPI],
		DLFEAT:   b[idnDLFEAT],
		NAWUN:    le.Uint16(b[idnNAWUN:]),
		NAWUPF:   le.Uint16(b[idnNAWUPF:]),
		NACWU:    le.Uint16(b[idnNACWU:]),
		NABSN:    le.Uint16(b[idnNABSN:]),
		NABO:     le.Uint16(b[idnNABO:]),
		NABSPF:   le.Uint16(b[idnNABSPF:]),
		NOIOB:    le.Uint16(b[idnNOIOB:]),
		NPWG:     le.Uint16(b[idnNPWG:]),
		NPWA:     le.Uint16(b[idnNPWA:]),
		NPDG:     le.Uint16(b[idnNPDG:]),
		NPDA:     le.Uint16(b[idnNPDA:]),
		NOWS:     le.Uint16(b[idnNOWS:]),
		MSSRL:    le.Uint16(b[idnMSSRL:]),
		MCL:      le.Uint32(b[idnMCL:]),
		MSRC:     b[idnMSRC],
		ANAGRPID: le.Uint32(b[idnANAGRPID:]),
		NSATTR:   b[idnNSATTR],
		NVMSETID: le.Uint16(b[idnNVMSETID:]),
		ENDGID:   le.Uint16(b[idnENDGID:]),
		NGUID:    [16]byte(b[idnNGUID : idnNGUID+16]),
		EUI64:    [8]byte(b[idnEUI64 : idnEUI64+8]),
	}
	for i := range n.LBAF {
		v := le.Uint32(b[idnLBAF+4*i:])
		n.LBAF[i] = LBAFormat{MS: uint16(v), LBADS: uint8(v >> 16), RP: uint8(v>>24) & 3}
	}
	return n
}

func decodeNamespaceDescriptors(t *testing.T, b *[IdentifyLen]byte) NamespaceDescriptors {
	t.Helper()
	var d NamespaceDescriptors
	for off := 0; off+4 <= IdentifyLen && b[off] != 0; {
		nidt, nidl := b[off], int(b[off+1])
		id := b[off+4 : off+4+nidl]
		switch nidt {
		case NIDTEUI64:
			require.Equal(t, 8, nidl)
			d.EUI64 = [8]byte(id)
		case NIDTNGUID:
			require.Equal(t, 16, nidl)
			d.NGUID = [16]byte(id)
		case NIDTUUID:
			require.Equal(t, 16, nidl)
			d.UUID = [16]byte(id)
		case NIDTCSI:
			require.Equal(t, 1, nidl)
			d.HasCSI, d.CSI = true, id[0]
		default:
			require.Failf(t, "unknown NIDT", "%d", nidt)
		}
		off += 4 + nidl
	}
	return d
}

// spdkIdentifyController is SPDK v26.05's Identify Controller of the wire
// note's target (§10), with the controller ID as given.
func spdkIdentifyController(cntlid uint16) IdentifyController {
	return IdentifyController{
		VID: 0x8086, SSVID: 0x8086,
		SN: "SPDK00000000000001", MN: "SPDK bdev Controller", FR: "26.05",
		RAB: 6, IEEE: [3]byte{0xe4, 0xd2, 0x5c}, CMIC: 0x0B, MDTS: 5, CNTLID: cntlid,
		VER: 0x00020000, OAES: 0x900, CTRATT: 0x1, CNTRLTYPE: ControllerTypeIO,
		ACL: 3, AERL: 3, FRMW: 0x03, LPA: 0x26, ELPE: 127,
		WCTEMP: 343, CCTEMP: 373, KAS: 100,
		ANATT: 10, ANACAP: 0x47, ANAGRPMAX: 32, NANAGRPID: 32,
		SQES: 0x66, CQES: 0x44, MAXCMD: 128, NN: 32, ONCS: 0x012D, FUSES: 0x1, VWC: 0x05,
		OCFS: 0x1, SGLS: 0x00100005, MNAN: 32,
		SUBNQN: "nqn.2016-06.io.spdk:wire",
		IOCCSZ: 260, IORCSZ: 1, MSDBD: 1,
	}
}

// capturedIdentify returns the 4096 bytes of the first Identify data
// C2HData of a capture.
func capturedIdentify(t *testing.T, name string) *[IdentifyLen]byte {
	t.Helper()
	p := findPDU(t, loadCapture(t, name), "Identify data", func(p *PDU) bool {
		return p.Type == TypeC2HData && len(p.Data) == IdentifyLen
	})
	return (*[IdentifyLen]byte)(p.Data)
}

// TestIdentifyControllerGolden encodes SPDK's Identify Controller and
// compares all 4096 bytes with what SPDK sent to Linux 6.1 and to
// spdk_nvme_perf. The only field that differs by design, CNTLID, is set to
// the captured value.
func TestIdentifyControllerGolden(t *testing.T) {
	for _, c := range []struct {
		file   string
		cntlid uint16
	}{
		{"linux-admin-c2h.hex", 8},
		{"spdk-admin-c2h.hex", 6},
	} {
		t.Run(c.file, func(t *testing.T) {
			want := capturedIdentify(t, c.file)
			ctrl := spdkIdentifyController(c.cntlid)
			var got [IdentifyLen]byte
			ctrl.Encode(&got)
			require.Equal(t, want[:], got[:])
			// Decoding the captured bytes gives the same structure, so
			// every non-zero captured byte is a field of IdentifyController.
			assert.Equal(t, ctrl, decodeIdentifyController(want))
		})
	}
}

func TestIdentifyControllerRoundTrip(t *testing.T) {
	c := IdentifyController{
		VID: 0x1234, SSVID: 0x5678, SN: "VDA-SN-1", MN: "VDA Controller", FR: "1.0",
		RAB: 1, IEEE: [3]byte{1, 2, 3}, CMIC: 0x0B, MDTS: 5, CNTLID: 0xABCD, VER: 0x00020000,
		RTD3R: 7, RTD3E: 8, OAES: 0x900, CTRATT: 0x1, CNTRLTYPE: ControllerTypeIO,
		OACS: 0x4, ACL: 3, AERL: 3, FRMW: 3, LPA: 0x26, ELPE: 63, NPSS: 0, AVSCC: 1,
		WCTEMP: 343, CCTEMP: 373, KAS: 100, ANATT: 10, ANACAP: 0x47, ANAGRPMAX: 32, NANAGRPID: 16,
		SQES: 0x66, CQES: 0x44, MAXCMD: 128, NN: 1024, ONCS: 0x2D, FUSES: 1, FNA: 2, VWC: 7,
		AWUN: 9, AWUPF: 10, ACWU: 11, OCFS: 1, SGLS: 0x00100005, MNAN: 1024,
		SUBNQN: "nqn.2016-06.io.vda:ctrl", IOCCSZ: 260, IORCSZ: 1, ICDOFF: 0, FCATT: 1, MSDBD: 1, OFCS: 1,
	}
	var b [IdentifyLen]byte
	for i := range b {
		b[i] = 0xAA // Encode overwrites everything
	}
	c.Encode(&b)
	assert.Equal(t, c, decodeIdentifyController(&b))
	assert.Equal(t, byte(0), b[IdentifyLen-1])
	assert.Equal(t, "VDA-SN-1            ", string(b[idcSN:idcSN+snLen]), "space padded")

	// Too long strings are truncated; SUBNQN stays NUL terminated.
	long := string(bytes.Repeat([]byte{'x'}, 300))
	c = IdentifyController{SN: long, MN: long, FR: long, SUBNQN: long}
	c.Encode(&b)
	d := decodeIdentifyController(&b)
	assert.Equal(t, long[:snLen], d.SN)
	assert.Equal(t, long[:mnLen], d.MN)
	assert.Equal(t, long[:frLen], d.FR)
	assert.Equal(t, long[:nqnLen-1], d.SUBNQN)
	assert.Equal(t, byte(0), b[idcSUBNQN+nqnLen-1])
	assert.Equal(t, byte(0), b[idcIOCCSZ], "nothing spilled past SUBNQN")
}

// TestDiscoveryIdentifyController checks the discovery flavour against the
// values of wire note §11 (the capture files leave that data out).
func TestDiscoveryIdentifyController(t *testing.T) {
	d := DiscoveryIdentifyController{
		FR: "26.05", MDTS: 5, CNTLID: 1, VER: 0x00020000, OAES: 0x80000000, AERL: 3,
		LPA: 0x04, ELPE: 127, MAXCMD: 128, SGLS: 0x00100005, SUBNQN: DiscoveryNQN,
	}
	var b [IdentifyLen]byte
	d.Encode(&b)
	assert.Equal(t, make([]byte, snLen+mnLen), b[idcSN:idcMN+mnLen], "SN and MN all NUL")
	assert.Equal(t, "26.05   ", string(b[idcFR:idcFR+frLen]))
	got := decodeIdentifyController(&b)
	assert.Equal(t, IdentifyController{
		FR: "26.05", MDTS: 5, CNTLID: 1, VER: 0x00020000, OAES: 0x80000000,
		CNTRLTYPE: ControllerTypeDiscovery, AERL: 3, LPA: 0x04, ELPE: 127, MAXCMD: 128,
		SGLS: 0x00100005, SUBNQN: DiscoveryNQN,
	}, got)
	assert.Equal(t, uint8(2), b[111], "CNTRLTYPE")
	assert.Equal(t, uint32(0x80000000), le.Uint32(b[92:]), "OAES")
	assert.Equal(t, DiscoveryNQN, cstring(b[768:1024]))
}

// TestIdentifyControllerNVM checks CNS 0x06 against wire note §10.
func TestIdentifyControllerNVM(t *testing.T) {
	c := IdentifyControllerNVM{WZSL: 12, DMRL: 1, DMRSL: 0x200000, DMSL: 0x200000}
	var b [IdentifyLen]byte
	c.Encode(&b)
	want := make([]byte, IdentifyLen)
	want[1], want[3] = 12, 1
	le.PutUint32(want[4:], 0x200000)
	le.PutUint64(want[8:], 0x200000)
	assert.Equal(t, want, b[:])
	c = IdentifyControllerNVM{VSL: 1, WZSL: 2, WUSL: 3, DMRL: 4, DMRSL: 5, DMSL: 6}
	c.Encode(&b)
	assert.Equal(t, c, IdentifyControllerNVM{b[0], b[1], b[2], b[3], le.Uint32(b[4:]), le.Uint64(b[8:])})
}

// spdkNamespace is SPDK's Identify Namespace for NSID 1 (wire note §10),
// with a made-up NGUID (SPDK's is random).
func spdkNamespace() IdentifyNamespace {
	return IdentifyNamespace{
		NSZE: 65536, NCAP: 65536, NUSE: 65536, NSFEAT: 0x12, NLBAF: 0, FLBAS: 0,
		NMIC: 0x1, RESCAP: 0xFE, NOWS: 31, MSSRL: 65535, MCL: 65535, ANAGRPID: 1,
		NGUID: [16]byte{0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff, 0x01},
		LBAF:  [MaxLBAFormats]LBAFormat{{LBADS: 12}},
	}
}

// TestIdentifyNamespace checks the encoding of SPDK's namespace field by
// field against the wire note (no capture holds it) and round-trips a
// structure with every field set.
func TestIdentifyNamespace(t *testing.T) {
	n := spdkNamespace()
	var b [IdentifyLen]byte
	n.Encode(&b)
	want := make([]byte, IdentifyLen)
	le.PutUint64(want[0:], 65536)
	le.PutUint64(want[8:], 65536)
	le.PutUint64(want[16:], 65536)
	want[24] = 0x12 // NSFEAT
	want[30] = 0x1  // NMIC
	want[31] = 0xFE // RESCAP
	want[72] = 31   // NOWS
	want[74] = 0xff // MSSRL
	want[75] = 0xff //
	want[76] = 0xff // MCL
	want[77] = 0xff //
	want[92] = 1    // ANAGRPID
	copy(want[104:], n.NGUID[:])
	le.PutUint32(want[128:], 0x000C0000) // LBAF0: LBADS 12
	assert.Equal(t, want, b[:])
	assert.Equal(t, n, decodeIdentifyNamespace(&b))

	full := IdentifyNamespace{
		NSZE: 1 << 40, NCAP: 1<<40 - 1, NUSE: 12345, NSFEAT: 0x1f, NLBAF: 2, FLBAS: 1,
		MC: 1, DPC: 2, DPS: 3, NMIC: 1, RESCAP: 0xff, FPI: 0x80, DLFEAT: 0x9,
		NAWUN: 1, NAWUPF: 2, NACWU: 3, NABSN: 4, NABO: 5, NABSPF: 6, NOIOB: 7,
		NPWG: 8, NPWA: 9, NPDG: 10, NPDA: 11, NOWS: 12, MSSRL: 13, MCL: 14, MSRC: 15,
		ANAGRPID: 16, NSATTR: 1, NVMSETID: 17, ENDGID: 18,
		NGUID: [16]byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16},
		EUI64: [8]byte{8, 7, 6, 5, 4, 3, 2, 1},
	}
	full.LBAF[0] = LBAFormat{LBADS: 9}
	full.LBAF[1] = LBAFormat{LBADS: 12, RP: 1}
	full.LBAF[2] = LBAFormat{MS: 8, LBADS: 12, RP: 3}
	full.Encode(&b)
	assert.Equal(t, full, decodeIdentifyNamespace(&b))

	// Formats past NLBAF are not written.
	full.NLBAF = 0
	full.Encode(&b)
	assert.Equal(t, uint32(0), le.Uint32(b[idnLBAF+4:]))
}

func TestActiveNamespaceList(t *testing.T) {
	var b [IdentifyLen]byte
	decode := func() []uint32 {
		var ids []uint32
		for i := 0; i < MaxActiveNamespaces; i++ {
			id := le.Uint32(b[4*i:])
			if id == 0 {
				break
			}
			ids = append(ids, id)
		}
		return ids
	}
	l := ActiveNamespaceList{1}
	assert.Equal(t, 1, l.Encode(&b, 0))
	want := make([]byte, IdentifyLen)
	want[0] = 1
	assert.Equal(t, want, b[:], "SPDK's list [1]")

	l = ActiveNamespaceList{1, 2, 5, 9, 0xFFFFFFFE}
	assert.Equal(t, 5, l.Encode(&b, 0))
	assert.Equal(t, []uint32(l), decode())
	assert.Equal(t, 3, l.Encode(&b, 2))
	assert.Equal(t, []uint32{5, 9, 0xFFFFFFFE}, decode())
	assert.Equal(t, 0, l.Encode(&b, 0xFFFFFFFE))
	assert.Nil(t, decode())

	var many ActiveNamespaceList
	for i := uint32(1); i <= 2000; i++ {
		many = append(many, i)
	}
	assert.Equal(t, MaxActiveNamespaces, many.Encode(&b, 0))
	ids := decode()
	assert.Len(t, ids, MaxActiveNamespaces)
	assert.Equal(t, uint32(MaxActiveNamespaces), ids[len(ids)-1])
	assert.Equal(t, 1000, many.Encode(&b, 1000))
	assert.Equal(t, uint32(1001), decode()[0])
	assert.Equal(t, MaxActiveNamespaces, many.Encode(&b, 500))
	assert.Equal(t, uint32(501), decode()[0])
}

func TestNamespaceDescriptors(t *testing.T) {
	nguid := spdkNamespace().NGUID
	// SPDK: NGUID and UUID with the same bytes, no EUI-64.
	d := NamespaceDescriptors{NGUID: nguid, UUID: nguid}
	var b [IdentifyLen]byte
	d.Encode(&b)
	want := make([]byte, IdentifyLen)
	want[0], want[1] = NIDTNGUID, 16
	copy(want[4:], nguid[:])
	want[20], want[21] = NIDTUUID, 16
	copy(want[24:], nguid[:])
	assert.Equal(t, want, b[:])
	assert.Equal(t, d, decodeNamespaceDescriptors(t, &b))

	all := NamespaceDescriptors{
		EUI64: [8]byte{1, 2, 3, 4, 5, 6, 7, 8}, NGUID: nguid,
		UUID: [16]byte{0xde, 0xad, 0xbe, 0xef}, HasCSI: true, CSI: 0,
	}
	all.Encode(&b)
	assert.Equal(t, byte(NIDTEUI64), b[0])
	assert.Equal(t, byte(NIDTNGUID), b[12])
	assert.Equal(t, byte(NIDTUUID), b[32])
	assert.Equal(t, byte(NIDTCSI), b[52])
	assert.Equal(t, all, decodeNamespaceDescriptors(t, &b))

	var none NamespaceDescriptors
	none.Encode(&b)
	assert.Equal(t, make([]byte, IdentifyLen), b[:])
}

func TestIdentifyEncodeAllocs(t *testing.T) {
	var b [IdentifyLen]byte
	c := spdkIdentifyController(1)
	n := spdkNamespace()
	d := NamespaceDescriptors{NGUID: n.NGUID, UUID: n.NGUID, HasCSI: true}
	dc := DiscoveryIdentifyController{FR: "1", SUBNQN: DiscoveryNQN}
	l := ActiveNamespaceList{1, 2, 3}
	allocs := testing.AllocsPerRun(100, func() {
		c.Encode(&b)
		n.Encode(&b)
		d.Encode(&b)
		dc.Encode(&b)
		l.Encode(&b, 0)
	})
	assert.Zero(t, allocs)
}
