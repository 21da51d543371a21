package nvmetcp

import (
	"bytes"
	"encoding/binary"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The testdata/*.hex files are PDUs of the Linux 6.1 and spdk_nvme_perf
// captures described in the wire note (see TestGenerateCaptureHex).

func captureNames() []string {
	names := make([]string, len(captureSels))
	for i, s := range captureSels {
		names[i] = s.out
	}
	return names
}

func loadCapture(t *testing.T, name string) []decoded {
	t.Helper()
	return decodeStream(t, loadHex(t, name), ReaderConfig{Role: roleOf(name)})
}

// TestCaptureRoundTrip decodes every captured PDU, re-encodes it to the
// very bytes captured, and re-encodes the whole stream with digests and
// padding to the same values.
func TestCaptureRoundTrip(t *testing.T) {
	encoders := []Encoder{
		{Digests: HeaderDigest | DataDigest},
		{Digests: HeaderDigest},
		{Digests: DataDigest, PDA: 7},
		{PDA: 31},
		{Digests: HeaderDigest | DataDigest, PDA: 3},
	}
	for _, name := range captureNames() {
		t.Run(name, func(t *testing.T) {
			pdus := loadCapture(t, name)
			require.NotEmpty(t, pdus)
			for i, d := range pdus {
				b, err := Encoder{}.Append(nil, &d.PDU)
				require.NoError(t, err, "PDU %d", i)
				require.Equal(t, d.Raw, b, "PDU %d %v re-encoded", i, d.PDU.Type)
			}
			for _, e := range encoders {
				var stream []byte
				for i, d := range pdus {
					var err error
					stream, err = e.Append(stream, &d.PDU)
					require.NoError(t, err, "PDU %d", i)
				}
				got := decodeStream(t, stream, ReaderConfig{Role: roleOf(name), Digests: e.Digests, PDA: e.PDA})
				require.Len(t, got, len(pdus))
				for i := range pdus {
					require.Equal(t, value(pdus[i].PDU), value(got[i].PDU), "PDU %d with %+v", i, e)
				}
			}
		})
	}
}

func findPDU(t *testing.T, pdus []decoded, what string, match func(p *PDU) bool) *PDU {
	t.Helper()
	for i := range pdus {
		if match(&pdus[i].PDU) {
			return &pdus[i].PDU
		}
	}
	require.Failf(t, "PDU not found", "%s", what)
	return nil
}

func cstring(b []byte) string {
	if i := bytes.IndexByte(b, 0); i >= 0 {
		b = b[:i]
	}
	return string(b)
}

// TestCaptureLinuxAdmin checks what the wire note says of the Linux 6.1
// I/O controller's admin queue.
func TestCaptureLinuxAdmin(t *testing.T) {
	h2c := loadCapture(t, "linux-admin-h2c.hex")
	c2h := loadCapture(t, "linux-admin-c2h.hex")

	// §2: ICReq and ICResp.
	ic := h2c[0].PDU
	assert.Equal(t, TypeICReq, ic.Type)
	assert.Equal(t, CommonHeader{Type: TypeICReq, HLen: 128, PDO: 0, PLen: 128}, ic.Header)
	assert.Equal(t, ICReq{PFV: 0, HPDA: 0, Digests: 0, MaxR2T: 0}, ic.ICReq)
	resp := c2h[0].PDU
	assert.Equal(t, TypeICResp, resp.Type)
	assert.Equal(t, ICResp{PFV: 0, CPDA: 0, Digests: 0, MaxH2CData: 131072}, resp.ICResp)

	// §3: Fabrics Connect, in-capsule data.
	conn := h2c[1].PDU
	require.Equal(t, TypeCapsuleCmd, conn.Type)
	assert.Equal(t, CommonHeader{Type: TypeCapsuleCmd, HLen: 72, PDO: 72, PLen: 1096}, conn.Header)
	sqe := &conn.SQE
	assert.Equal(t, uint8(OpcodeFabrics), sqe.Opcode())
	assert.Equal(t, uint8(0x01), sqe.FCType())
	assert.Equal(t, uint8(0x40), sqe.Flags())
	assert.Equal(t, uint8(PSDTSGL), sqe.PSDT())
	assert.Equal(t, uint16(0), sqe.CID())
	assert.Equal(t, uint8(SGLInCapsule), sqe.SGLIdentifier())
	assert.Equal(t, uint8(SGLTypeDataBlock), sqe.SGLType())
	assert.Equal(t, uint8(SGLSubtypeOffset), sqe.SGLSubtype())
	assert.Equal(t, uint64(0), sqe.SGLAddress())
	assert.Equal(t, uint32(1024), sqe.SGLLength())
	assert.Equal(t, uint32(0), sqe.CDW10(), "RECFMT 0, QID 0")
	assert.Equal(t, uint32(31), sqe.CDW11()&0xffff, "SQSIZE")
	assert.Equal(t, uint32(5000), sqe.CDW12(), "KATO")
	require.Len(t, conn.Data, 1024)
	assert.Equal(t, uint16(0xffff), binary.LittleEndian.Uint16(conn.Data[16:]), "CNTLID")
	assert.Equal(t, "nqn.2016-06.io.spdk:wire", cstring(conn.Data[256:512]))
	assert.True(t, strings.HasPrefix(cstring(conn.Data[512:]), "nqn.2014-08.org.nvmexpress:uuid:"))

	// §4: Property Set CC = 0x00460001 (EN=1); Property Get CAP's answer.
	findPDU(t, h2c, "Property Set CC EN=1", func(p *PDU) bool {
		return p.SQE.Opcode() == OpcodeFabrics && p.SQE.FCType() == 0x00 &&
			p.SQE.CDW11() == 0x14 && p.SQE.CDW12() == 0x00460001
	})
	capGet := findPDU(t, h2c, "Property Get CAP", func(p *PDU) bool {
		return p.SQE.Opcode() == OpcodeFabrics && p.SQE.FCType() == 0x04 && p.SQE.CDW11() == 0
	})
	assert.Equal(t, uint32(1), capGet.SQE.CDW10()&1, "8-byte property")
	assert.Equal(t, uint8(SGLTransport), capGet.SQE.SGLIdentifier())
	assert.Equal(t, uint32(0), capGet.SQE.SGLLength())
	capResp := findPDU(t, c2h, "CAP value", func(p *PDU) bool { return p.CQE.CID() == capGet.SQE.CID() })
	assert.Equal(t, uint64(0x080000201E01007F), capResp.CQE.Result())

	// §5: admin commands.
	aer := findPDU(t, h2c, "AER", func(p *PDU) bool { return p.SQE.Opcode() == 0x0C })
	assert.Equal(t, uint16(31), aer.SQE.CID())
	nq := findPDU(t, h2c, "Set Features Number of Queues", func(p *PDU) bool {
		return p.SQE.Opcode() == 0x09 && p.SQE.CDW10() == 0x07
	})
	assert.Equal(t, uint32(0x00010001), nq.SQE.CDW11())
	nqResp := findPDU(t, c2h, "Number of Queues granted", func(p *PDU) bool { return p.CQE.CID() == nq.SQE.CID() })
	assert.Equal(t, uint32(0x007E007E), nqResp.CQE.DW0())
	ana := findPDU(t, h2c, "ANA log", func(p *PDU) bool { return p.SQE.Opcode() == 0x02 && p.SQE.CDW10()&0xff == 0x0C })
	assert.Equal(t, uint32(0xFFFFFFFF), ana.SQE.NSID())
	assert.Equal(t, uint32(1168), ana.SQE.SGLLength())
	findPDU(t, h2c, "Keep Alive", func(p *PDU) bool { return p.SQE.Opcode() == 0x18 })
	gf := findPDU(t, h2c, "Get Features Number of Queues", func(p *PDU) bool {
		return p.SQE.Opcode() == 0x0A && p.SQE.CDW10() == 0x07
	})
	assert.Equal(t, uint32(0xFFFFFFFF), gf.SQE.NSID())
	gfResp := findPDU(t, c2h, "Get Features answer", func(p *PDU) bool { return p.CQE.CID() == gf.SQE.CID() })
	assert.Equal(t, uint32(0x007E007E), gfResp.CQE.DW0())

	// §10: Identify Controller data in one C2HData with LAST|SUCCESS.
	id := findPDU(t, c2h, "Identify Controller data", func(p *PDU) bool {
		return p.Type == TypeC2HData && p.C2HData.CCCID == 10
	})
	assert.Equal(t, CommonHeader{Type: TypeC2HData, Flags: FlagLastPDU | FlagSuccess, HLen: 24, PDO: 24, PLen: 4120}, id.Header)
	assert.Equal(t, C2HData{CCCID: 10, DataOffset: 0, DataLength: 4096}, id.C2HData)
	assert.Equal(t, uint16(0x8086), binary.LittleEndian.Uint16(id.Data[0:]), "VID")
	assert.Equal(t, "SPDK00000000000001  ", string(id.Data[4:24]), "SN")
	assert.True(t, strings.HasPrefix(string(id.Data[24:64]), "SPDK bdev Controller"), "MN")
	assert.Equal(t, uint8(5), id.Data[77], "MDTS")
	assert.Equal(t, uint32(260), binary.LittleEndian.Uint32(id.Data[1792:]), "IOCCSZ")
	assert.Equal(t, "nqn.2016-06.io.spdk:wire", cstring(id.Data[768:1024]), "SUBNQN")

	// §6: AER completions for CID 31.
	for _, dw0 := range []uint32{0x00040002, 0x000C0302} {
		aen := findPDU(t, c2h, "AEN", func(p *PDU) bool { return p.Type == TypeCapsuleResp && p.CQE.DW0() == dw0 })
		assert.Equal(t, uint16(31), aen.CQE.CID())
		assert.True(t, aen.CQE.Success())
	}
	// §8: shutdown: CSTS read back as 0x9.
	last := c2h[len(c2h)-1].PDU
	assert.Equal(t, uint32(0x9), last.CQE.DW0())
}

// TestCaptureLinuxIO checks the Linux 6.1 I/O queues: R2T writes, in-capsule
// writes and DSM, Write Zeroes, reads of unwritten blocks.
func TestCaptureLinuxIO(t *testing.T) {
	q1h := loadCapture(t, "linux-qid1-h2c.hex")
	q1c := loadCapture(t, "linux-qid1-c2h.hex")
	q2h := loadCapture(t, "linux-qid2-h2c.hex")
	q2c := loadCapture(t, "linux-qid2-c2h.hex")

	conn := q1h[1].PDU
	assert.Equal(t, uint32(1), conn.SQE.CDW10()>>16, "QID")
	adminConnect := loadCapture(t, "linux-admin-c2h.hex")[1].PDU
	assert.Equal(t, adminConnect.CQE.DW0()&0xffff, q1c[1].PDU.CQE.DW0()&0xffff, "I/O queue connect returns the admin cntlid")
	assert.Equal(t, adminConnect.CQE.DW0()&0xffff, q2c[1].PDU.CQE.DW0()&0xffff)
	assert.Equal(t, uint16(adminConnect.CQE.DW0()), binary.LittleEndian.Uint16(conn.Data[16:]),
		"an I/O queue Connect names the admin queue's cntlid")
	assert.Equal(t, uint32(127), conn.SQE.CDW11()&0xffff, "SQSIZE")
	assert.Equal(t, uint32(0), conn.SQE.CDW12(), "KATO 0 on I/O queues")

	// §7: an 8 KiB write goes by R2T and one H2CData.
	wr := findPDU(t, q1h, "8 KiB write", func(p *PDU) bool { return p.Type == TypeCapsuleCmd && p.SQE.Opcode() == 0x01 })
	assert.Equal(t, uint16(37), wr.SQE.CID())
	assert.Equal(t, uint8(SGLTransport), wr.SQE.SGLIdentifier())
	assert.Equal(t, uint32(8192), wr.SQE.SGLLength())
	assert.Equal(t, CommonHeader{Type: TypeCapsuleCmd, HLen: 72, PDO: 0, PLen: 72}, wr.Header)
	r2t := findPDU(t, q1c, "R2T", func(p *PDU) bool { return p.Type == TypeR2T })
	assert.Equal(t, R2T{CCCID: 37, TTAG: 6, Offset: 0, Length: 8192}, r2t.R2T)
	assert.Equal(t, CommonHeader{Type: TypeR2T, HLen: 24, PLen: 24}, r2t.Header)
	h2c := findPDU(t, q1h, "H2CData", func(p *PDU) bool { return p.Type == TypeH2CData })
	assert.Equal(t, H2CData{CCCID: 37, TTAG: 6, DataOffset: 0, DataLength: 8192}, h2c.H2CData)
	assert.Equal(t, CommonHeader{Type: TypeH2CData, Flags: FlagLastPDU, HLen: 24, PDO: 24, PLen: 8216}, h2c.Header)
	assert.Len(t, h2c.Data, 8192)

	// §9: CRC32C of an unwritten 4 KiB block, the DDGST of such a read.
	zeros := 0
	for _, d := range q1c {
		if d.PDU.Type == TypeC2HData {
			assert.Equal(t, FlagLastPDU|FlagSuccess, d.PDU.Flags)
			require.Equal(t, make([]byte, 4096), d.PDU.Data)
			assert.Equal(t, uint32(0x98F94189), CRC32C(d.PDU.Data))
			zeros++
		}
	}
	assert.Equal(t, 2, zeros)

	// §7: in-capsule 4 KiB write, DSM with its range in the capsule, Write
	// Zeroes and Flush without data.
	icw := findPDU(t, q2h, "in-capsule write", func(p *PDU) bool { return p.SQE.Opcode() == 0x01 && len(p.Data) > 0 })
	assert.Equal(t, CommonHeader{Type: TypeCapsuleCmd, HLen: 72, PDO: 72, PLen: 4168}, icw.Header)
	assert.Equal(t, uint8(SGLInCapsule), icw.SQE.SGLIdentifier())
	assert.Equal(t, uint32(4096), icw.SQE.SGLLength())
	big := findPDU(t, q2h, "128 KiB write", func(p *PDU) bool { return p.SQE.Opcode() == 0x01 && p.SQE.SGLLength() == 131072 })
	assert.Empty(t, big.Data)
	bigR2T := findPDU(t, q2c, "R2T for 128 KiB", func(p *PDU) bool { return p.Type == TypeR2T })
	assert.Equal(t, R2T{CCCID: big.SQE.CID(), TTAG: 4, Offset: 0, Length: 131072}, bigR2T.R2T)
	dsm := findPDU(t, q2h, "DSM", func(p *PDU) bool { return p.SQE.Opcode() == 0x09 })
	assert.Equal(t, uint32(0), dsm.SQE.CDW10(), "NR 0")
	assert.Equal(t, uint32(0x4), dsm.SQE.CDW11(), "AD")
	require.Len(t, dsm.Data, 4096)
	assert.Equal(t, uint32(0), binary.LittleEndian.Uint32(dsm.Data[0:]), "CATTR")
	assert.Equal(t, uint32(256), binary.LittleEndian.Uint32(dsm.Data[4:]), "NLB")
	assert.Equal(t, uint64(256), binary.LittleEndian.Uint64(dsm.Data[8:]), "SLBA")
	wz := findPDU(t, q2h, "Write Zeroes", func(p *PDU) bool { return p.SQE.Opcode() == 0x08 })
	assert.Equal(t, uint32(512), wz.SQE.CDW10(), "SLBA")
	assert.Equal(t, uint32(0xF), wz.SQE.CDW12(), "NLB")
	assert.Equal(t, uint8(SGLTransport), wz.SQE.SGLIdentifier())
	assert.Equal(t, uint32(0), wz.SQE.SGLLength())
	fl := findPDU(t, q2h, "Flush", func(p *PDU) bool { return p.Type == TypeCapsuleCmd && p.SQE.Opcode() == 0x00 })
	assert.Equal(t, uint32(1), fl.SQE.NSID())
	for _, d := range q2c {
		if d.PDU.Type == TypeCapsuleResp {
			assert.Equal(t, uint16(0), d.PDU.CQE.SQID(), "SQID in I/O CQEs")
		}
	}
}

// TestCaptureLinuxDiscovery checks the discovery controller's log page.
func TestCaptureLinuxDiscovery(t *testing.T) {
	h2c := loadCapture(t, "linux-discovery-h2c.hex")
	c2h := loadCapture(t, "linux-discovery-c2h.hex")
	assert.Equal(t, uint32(0), h2c[1].PDU.SQE.CDW12(), "discovery KATO 0")
	logp := findPDU(t, c2h, "discovery log", func(p *PDU) bool { return p.Type == TypeC2HData && len(p.Data) == 3072 })
	assert.Equal(t, uint64(2), binary.LittleEndian.Uint64(logp.Data[0:]), "GENCTR")
	assert.Equal(t, uint64(2), binary.LittleEndian.Uint64(logp.Data[8:]), "NUMREC")
	e1 := logp.Data[2048:3072]
	assert.Equal(t, uint8(3), e1[0], "TRTYPE TCP")
	assert.Equal(t, uint8(2), e1[2], "SUBTYPE NVM")
	assert.Equal(t, "nqn.2016-06.io.spdk:wire", cstring(e1[256:512]))
}

// TestCaptureSPDKPerf checks the spdk_nvme_perf host.
func TestCaptureSPDKPerf(t *testing.T) {
	adm := loadCapture(t, "spdk-admin-h2c.hex")
	q1h := loadCapture(t, "spdk-qid1-h2c.hex")
	q1c := loadCapture(t, "spdk-qid1-c2h.hex")

	conn := adm[1].PDU
	assert.Equal(t, uint32(10000), conn.SQE.CDW12(), "KATO")
	assert.Equal(t, make([]byte, 256), conn.Data[512:768], "HOSTNQN empty")
	sf := findPDU(t, adm, "Set Features", func(p *PDU) bool { return p.SQE.Opcode() == 0x09 })
	assert.Equal(t, uint8(SGLInCapsule), sf.SQE.SGLIdentifier(), "Set Features uses a data-block SGL")
	assert.Equal(t, uint32(0), sf.SQE.SGLLength())
	assert.Empty(t, sf.Data)

	ioConn := q1h[1].PDU
	assert.Equal(t, uint32(1), ioConn.SQE.CDW10()>>16, "QID")
	assert.Equal(t, uint32(10000), ioConn.SQE.CDW12(), "KATO on the I/O queue")
	for i, d := range q1h[2:5] {
		assert.Equal(t, uint8(0x01), d.PDU.SQE.Opcode())
		assert.Equal(t, uint16(i), d.PDU.SQE.CID())
		assert.Equal(t, uint32(0), d.PDU.SQE.CDW12(), "NLB 0")
		assert.Equal(t, uint32(4168), d.PDU.Header.PLen)
		assert.Len(t, d.PDU.Data, 4096)
	}
	for _, d := range q1c {
		if d.PDU.Type == TypeC2HData {
			assert.Equal(t, FlagLastPDU|FlagSuccess, d.PDU.Flags)
			assert.Equal(t, uint32(0x98F94189), CRC32C(d.PDU.Data))
		}
	}
}

// TestDigestVectors checks the wire note's digest values (§9).
func TestDigestVectors(t *testing.T) {
	assert.Equal(t, uint32(0x98F94189), CRC32C(make([]byte, 4096)))

	hdr := []byte{0x05, 0x01, 0x18, 0x00, 0x1c, 0x00, 0x00, 0x00, 0x03, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
		0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00}
	assert.Equal(t, uint32(0xD3C70F4F), CRC32C(hdr))
	wire := append(bytes.Clone(hdr), 0x4f, 0x0f, 0xc7, 0xd3)

	p, err := readOne(t, wire, ReaderConfig{Role: RoleHost, Established: true, Digests: HeaderDigest | DataDigest})
	require.NoError(t, err)
	assert.Equal(t, uint32(3), p.CQE.DW0(), "controller ID")
	assert.Equal(t, uint16(1), p.CQE.SQHead())

	var cqe CQE
	cqe.SetDW0(3)
	cqe.SetSQHead(1)
	b, err := Encoder{Digests: HeaderDigest | DataDigest}.Append(nil, &PDU{Type: TypeCapsuleResp, CQE: cqe})
	require.NoError(t, err)
	assert.Equal(t, wire, b)
}
