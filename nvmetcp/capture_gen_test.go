package nvmetcp

import (
	"encoding/binary"
	"encoding/hex"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// pcapDir, when set, makes TestGenerateCaptureHex rewrite testdata/*.hex
// from the captures of docs' wire note; the other tests read only testdata.
var pcapDir = flag.String("pcapdir", "", "directory holding nvme-tcp-*.pcap; regenerates testdata/*.hex")

// captureSel picks the PDUs of one direction of one TCP connection.
type captureSel struct {
	out        string // testdata file
	pcap       string
	clientPort uint16
	toCtrl     bool // host to controller
	desc       string
	keep       func(i int, pdu []byte) bool // nil keeps all
}

func keepFirst(n int) func(int, []byte) bool {
	return func(i int, _ []byte) bool { return i < n }
}

// keepHeadersAnd keeps every PDU without data and the data PDUs whose
// CCCID is listed.
func keepHeadersAnd(cccids ...uint16) func(int, []byte) bool {
	return func(_ int, p []byte) bool {
		if p[0] != byte(TypeC2HData) && p[0] != byte(TypeH2CData) {
			return true
		}
		id := binary.LittleEndian.Uint16(p[8:])
		for _, c := range cccids {
			if c == id {
				return true
			}
		}
		return false
	}
}

var captureSels = []captureSel{
	{"linux-discovery-h2c.hex", "nvme-tcp-linux-6.1.pcap", 54658, true, "Linux 6.1 discovery controller, host to controller, all PDUs", nil},
	{"linux-discovery-c2h.hex", "nvme-tcp-linux-6.1.pcap", 54658, false, "Linux 6.1 discovery controller, controller to host, Identify data left out", keepHeadersAnd(20, 22)},
	{"linux-admin-h2c.hex", "nvme-tcp-linux-6.1.pcap", 54670, true, "Linux 6.1 I/O controller admin queue, host to controller, all PDUs", nil},
	{"linux-admin-c2h.hex", "nvme-tcp-linux-6.1.pcap", 54670, false, "Linux 6.1 admin queue, controller to host, Identify Controller and first ANA log data only", keepHeadersAnd(10, 12)},
	{"linux-qid1-h2c.hex", "nvme-tcp-linux-6.1.pcap", 54684, true, "Linux 6.1 I/O queue 1, host to controller, all PDUs", nil},
	{"linux-qid1-c2h.hex", "nvme-tcp-linux-6.1.pcap", 54684, false, "Linux 6.1 I/O queue 1, controller to host, reads of CID 33 and 34 only", keepHeadersAnd(33, 34)},
	{"linux-qid2-h2c.hex", "nvme-tcp-linux-6.1.pcap", 54690, true, "Linux 6.1 I/O queue 2, host to controller, the 128 KiB H2CData left out", keepHeadersAnd()},
	{"linux-qid2-c2h.hex", "nvme-tcp-linux-6.1.pcap", 54690, false, "Linux 6.1 I/O queue 2, controller to host, all PDUs", nil},
	{"spdk-admin-h2c.hex", "nvme-tcp-spdk-perf.pcap", 60238, true, "spdk_nvme_perf admin queue, host to controller, all PDUs", nil},
	{"spdk-admin-c2h.hex", "nvme-tcp-spdk-perf.pcap", 60238, false, "spdk_nvme_perf admin queue, controller to host, first C2HData only", keepFirst(10)},
	{"spdk-qid1-h2c.hex", "nvme-tcp-spdk-perf.pcap", 60246, true, "spdk_nvme_perf I/O queue 1, host to controller, first 7 PDUs", keepFirst(7)},
	{"spdk-qid1-c2h.hex", "nvme-tcp-spdk-perf.pcap", 60246, false, "spdk_nvme_perf I/O queue 1, controller to host, first 8 PDUs", keepFirst(8)},
}

func TestGenerateCaptureHex(t *testing.T) {
	if *pcapDir == "" {
		t.Skip("set -pcapdir to regenerate testdata/*.hex from the captures")
	}
	streams := map[string]map[streamKey][]byte{}
	for _, s := range captureSels {
		if streams[s.pcap] == nil {
			b, err := os.ReadFile(filepath.Join(*pcapDir, s.pcap))
			require.NoError(t, err)
			streams[s.pcap] = tcpStreams(t, b)
		}
		stream := streams[s.pcap][streamKey{s.clientPort, s.toCtrl}]
		require.NotEmpty(t, stream, s.out)
		var out strings.Builder
		fmt.Fprintf(&out, "# %s\n# from %s, TCP port %d, one PDU per block, 32 bytes a line\n", s.desc, s.pcap, s.clientPort)
		for i, off := 0, 0; off < len(stream); i++ {
			require.GreaterOrEqual(t, len(stream)-off, CommonHeaderLen)
			plen := int(binary.LittleEndian.Uint32(stream[off+4:]))
			require.LessOrEqual(t, off+plen, len(stream))
			p := stream[off : off+plen]
			if s.keep == nil || s.keep(i, p) {
				fmt.Fprintf(&out, "# pdu %d at stream offset %d: %v plen %d\n", i, off, Type(p[0]), plen)
				for len(p) > 0 {
					n := min(32, len(p))
					out.WriteString(hex.EncodeToString(p[:n]))
					out.WriteByte('\n')
					p = p[n:]
				}
			}
			off += plen
		}
		require.NoError(t, os.WriteFile(filepath.Join("testdata", s.out), []byte(out.String()), 0o644))
	}
}

type streamKey struct {
	clientPort uint16
	toCtrl     bool
}

// tcpStreams reassembles the TCP payload of each direction of each
// connection to port 4620 in a little-endian, microsecond pcap of Ethernet
// frames carrying IPv4: what the wire note's captures are.
func tcpStreams(t *testing.T, b []byte) map[streamKey][]byte {
	le := binary.LittleEndian
	be := binary.BigEndian
	require.GreaterOrEqual(t, len(b), 24)
	require.Equal(t, uint32(0xa1b2c3d4), le.Uint32(b), "pcap magic")
	require.Equal(t, uint32(1), le.Uint32(b[20:]), "link type Ethernet")
	type seg struct {
		seq  uint32
		data []byte
	}
	segs := map[streamKey][]seg{}
	isn := map[streamKey]uint32{}
	for off := 24; off+16 <= len(b); {
		incl := int(le.Uint32(b[off+8:]))
		require.LessOrEqual(t, off+16+incl, len(b))
		frame := b[off+16 : off+16+incl]
		off += 16 + incl
		if len(frame) < 14+20 || be.Uint16(frame[12:]) != 0x0800 {
			continue
		}
		ip := frame[14:]
		ihl := int(ip[0]&0xf) * 4
		total := int(be.Uint16(ip[2:]))
		if ip[9] != 6 || total > len(ip) {
			continue
		}
		tcp := ip[ihl:total]
		sport, dport := be.Uint16(tcp[0:]), be.Uint16(tcp[2:])
		seq := be.Uint32(tcp[4:])
		doff := int(tcp[12]>>4) * 4
		var k streamKey
		switch {
		case dport == 4620:
			k = streamKey{sport, true}
		case sport == 4620:
			k = streamKey{dport, false}
		default:
			continue
		}
		if tcp[13]&0x02 != 0 { // SYN
			isn[k] = seq + 1
		}
		if payload := tcp[doff:]; len(payload) > 0 {
			segs[k] = append(segs[k], seg{seq, payload})
		}
	}
	out := map[streamKey][]byte{}
	for k, ss := range segs {
		sort.SliceStable(ss, func(i, j int) bool { return int32(ss[i].seq-ss[j].seq) < 0 })
		next, ok := isn[k]
		require.True(t, ok, "no SYN for %v", k)
		var buf []byte
		for _, s := range ss {
			skip := int(int32(next - s.seq)) // retransmitted bytes
			require.GreaterOrEqual(t, skip, 0, "gap in stream %v", k)
			if skip < len(s.data) {
				buf = append(buf, s.data[skip:]...)
				next += uint32(len(s.data) - skip)
			}
		}
		out[k] = buf
	}
	return out
}
