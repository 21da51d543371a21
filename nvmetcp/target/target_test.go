package target_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/virtual-disk-array/vda/nvmetcp"
	"github.com/virtual-disk-array/vda/nvmetcp/target"
	"github.com/virtual-disk-array/vda/spdk/model"
)

// *model.Dev has the Namespace method set; modelNS below only translates
// its errors.
var _ target.Namespace = (*model.Dev)(nil)

// modelNS adapts a model-style device: its errors become the target's.
type modelNS struct{ target.Namespace }

func mapErr(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, model.ErrPathDown), errors.Is(err, model.ErrNoBdev):
		return errors.Join(err, target.ErrNotReady)
	case errors.Is(err, model.ErrRange):
		return errors.Join(err, target.ErrLBARange)
	}
	return err
}

func (m modelNS) ReadAt(ctx context.Context, p []byte, off uint64) error {
	return mapErr(m.Namespace.ReadAt(ctx, p, off))
}
func (m modelNS) WriteAt(ctx context.Context, p []byte, off uint64) error {
	return mapErr(m.Namespace.WriteAt(ctx, p, off))
}
func (m modelNS) Flush(ctx context.Context) error { return mapErr(m.Namespace.Flush(ctx)) }
func (m modelNS) WriteZeroes(ctx context.Context, off, n uint64) error {
	return mapErr(m.Namespace.WriteZeroes(ctx, off, n))
}
func (m modelNS) Unmap(ctx context.Context, off, n uint64) error {
	return mapErr(m.Namespace.Unmap(ctx, off, n))
}

// memDev is a []byte-backed device that fails like model.Dev.
type memDev struct {
	mu    sync.Mutex
	bs    uint32
	data  []byte
	down  bool
	unmap int
}

func newMem(bs uint32, size int) *memDev { return &memDev{bs: bs, data: make([]byte, size)} }

func (d *memDev) BlockSize() uint32 { return d.bs }
func (d *memDev) Size() uint64 {
	d.mu.Lock()
	defer d.mu.Unlock()
	return uint64(len(d.data))
}
func (d *memDev) check(off, n uint64) error {
	if d.down {
		return model.ErrPathDown
	}
	if off%uint64(d.bs) != 0 || n%uint64(d.bs) != 0 || off+n > uint64(len(d.data)) {
		return model.ErrRange
	}
	return nil
}
func (d *memDev) ReadAt(_ context.Context, p []byte, off uint64) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.check(off, uint64(len(p))); err != nil {
		return err
	}
	copy(p, d.data[off:])
	return nil
}
func (d *memDev) WriteAt(_ context.Context, p []byte, off uint64) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.check(off, uint64(len(p))); err != nil {
		return err
	}
	copy(d.data[off:], p)
	return nil
}
func (d *memDev) Flush(context.Context) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.check(0, 0)
}
func (d *memDev) WriteZeroes(_ context.Context, off, n uint64) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.check(off, n); err != nil {
		return err
	}
	clear(d.data[off : off+n])
	return nil
}
func (d *memDev) Unmap(ctx context.Context, off, n uint64) error {
	d.mu.Lock()
	d.unmap++
	d.mu.Unlock()
	return d.WriteZeroes(ctx, off, n)
}

type catalog map[string]*target.Subsystem

func (c catalog) Subsystem(nqn string) (*target.Subsystem, bool) { s, ok := c[nqn]; return s, ok }

const (
	subNQN  = "nqn.2016-06.io.vda:test"
	hostNQN = "nqn.2014-08.org.nvmexpress:uuid:host-a"
)

type env struct {
	addr string
	dev  *memDev
}

func start(t *testing.T, cfg target.Config) *env {
	t.Helper()
	dev := newMem(4096, 1<<20)
	cat := catalog{subNQN: {
		NQN: subNQN, Serial: "VDA0001", Model: "VDA Controller", Hosts: []string{hostNQN}, ANAReporting: true,
		Namespaces: []target.NS{{NSID: 1, NGUID: [16]byte{1, 2, 3}, UUID: [16]byte{4, 5, 6}, Dev: modelNS{dev}}},
	}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- target.Serve(ctx, ln, cat, cfg) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return &env{addr: ln.Addr().String(), dev: dev}
}

// client is a minimal NVMe/TCP host for one queue.
type client struct {
	t      *testing.T
	nc     net.Conn
	r      *nvmetcp.Reader
	w      *nvmetcp.Writer
	cid    uint16
	maxH2C uint32
}

func dial(t *testing.T, addr string, dg nvmetcp.Digests) *client {
	t.Helper()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	nc.SetDeadline(time.Now().Add(20 * time.Second))
	r, err := nvmetcp.NewReader(nc, nvmetcp.ReaderConfig{Role: nvmetcp.RoleHost, MaxData: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	c := &client{t: t, nc: nc, r: r, w: nvmetcp.NewWriter(nc)}
	if err := c.w.WritePDU(&nvmetcp.PDU{Type: nvmetcp.TypeICReq, ICReq: nvmetcp.ICReq{Digests: dg}}); err != nil {
		t.Fatal(err)
	}
	p, err := r.Read()
	if err != nil {
		t.Fatal(err)
	}
	if p.Type != nvmetcp.TypeICResp || p.ICResp.Digests != dg || p.ICResp.MaxH2CData < 4096 {
		t.Fatalf("ICResp %+v", p.ICResp)
	}
	c.maxH2C = p.ICResp.MaxH2CData
	r.SetDigests(dg)
	c.w.Encoder = nvmetcp.Encoder{Digests: dg}
	return c
}

// exec sends sqe with out (in-capsule when inCapsule, else by R2T) and
// returns the completion and the data read (inLen bytes expected).
func (c *client) exec(sqe nvmetcp.SQE, out []byte, inCapsule bool, inLen int) (nvmetcp.CQE, []byte) {
	c.t.Helper()
	c.cid++
	sqe.SetCID(c.cid)
	p := nvmetcp.PDU{Type: nvmetcp.TypeCapsuleCmd}
	switch {
	case inCapsule:
		sqe.SetSGL(nvmetcp.SGLInCapsule, 0, uint32(len(out)))
		p.Data = out
	case len(out) > 0:
		sqe.SetSGL(nvmetcp.SGLTransport, 0, uint32(len(out)))
	default:
		sqe.SetSGL(nvmetcp.SGLTransport, 0, uint32(inLen))
	}
	p.SQE = sqe
	if err := c.w.WritePDU(&p); err != nil {
		c.t.Fatal(err)
	}
	in := make([]byte, inLen)
	got := 0
	for {
		q, err := c.r.Read()
		if err != nil {
			c.t.Fatalf("read: %v", err)
		}
		switch q.Type {
		case nvmetcp.TypeCapsuleResp:
			if q.CQE.CID() != c.cid {
				c.t.Fatalf("CQE CID %d, want %d", q.CQE.CID(), c.cid)
			}
			return q.CQE, in[:got]
		case nvmetcp.TypeC2HData:
			d := q.C2HData
			if d.CCCID != c.cid || int(d.DataOffset) != got || got+len(q.Data) > inLen {
				c.t.Fatalf("C2HData %+v after %d bytes", d, got)
			}
			got += copy(in[d.DataOffset:], q.Data)
			if q.Flags&nvmetcp.FlagSuccess != 0 {
				var cqe nvmetcp.CQE
				cqe.SetCID(c.cid)
				return cqe, in[:got]
			}
		case nvmetcp.TypeR2T:
			r2 := q.R2T
			if r2.CCCID != c.cid || r2.Length > c.maxH2C || int(r2.Offset+r2.Length) > len(out) {
				c.t.Fatalf("R2T %+v", r2)
			}
			for off := r2.Offset; off < r2.Offset+r2.Length; {
				n := min(r2.Offset+r2.Length-off, 8192) // several H2CData per R2T
				h := nvmetcp.PDU{Type: nvmetcp.TypeH2CData, Data: out[off : off+n],
					H2CData: nvmetcp.H2CData{CCCID: c.cid, TTAG: r2.TTAG, DataOffset: off, DataLength: n}}
				if off+n == r2.Offset+r2.Length {
					h.Flags = nvmetcp.FlagLastPDU
				}
				if err := c.w.Queue(&h); err != nil {
					c.t.Fatal(err)
				}
				off += n
			}
			if err := c.w.Flush(); err != nil {
				c.t.Fatal(err)
			}
		default:
			c.t.Fatalf("unexpected %v", q.Type)
		}
	}
}

func connectSQE(qid uint16) nvmetcp.SQE {
	var s nvmetcp.SQE
	s.SetOpcode(nvmetcp.OpcodeFabrics)
	s[4] = 0x01 // Connect
	s.SetCDW(10, uint32(qid)<<16)
	if qid == 0 {
		s.SetCDW(11, 31)
	} else {
		s.SetCDW(11, 127)
	}
	return s
}

func connectData(cntlid uint16, sub, host string) []byte {
	d := make([]byte, 1024)
	binary.LittleEndian.PutUint16(d[16:], cntlid)
	copy(d[256:], sub)
	copy(d[512:], host)
	return d
}

func (c *client) connect(qid, cntlid uint16, sub, host string, kato uint32) nvmetcp.CQE {
	s := connectSQE(qid)
	s.SetCDW(12, kato)
	cqe, _ := c.exec(s, connectData(cntlid, sub, host), true, 0)
	return cqe
}

func (c *client) property(set bool, off uint32, size8 bool, v uint64) nvmetcp.CQE {
	var s nvmetcp.SQE
	s.SetOpcode(nvmetcp.OpcodeFabrics)
	if set {
		s[4] = 0x00
	} else {
		s[4] = 0x04
	}
	if size8 {
		s.SetCDW(10, 1)
	}
	s.SetCDW(11, off)
	s.SetCDW(12, uint32(v))
	s.SetCDW(13, uint32(v>>32))
	cqe, _ := c.exec(s, nil, false, 0)
	return cqe
}

func ok(t *testing.T, what string, cqe nvmetcp.CQE) {
	t.Helper()
	if !cqe.Success() {
		t.Fatalf("%s: status SCT %d SC %#x", what, cqe.SCT(), cqe.SC())
	}
}

func wantStatus(t *testing.T, what string, cqe nvmetcp.CQE, sct, sc uint8) {
	t.Helper()
	if cqe.SCT() != sct || cqe.SC() != sc {
		t.Fatalf("%s: status SCT %d SC %#x, want SCT %d SC %#x", what, cqe.SCT(), cqe.SC(), sct, sc)
	}
}

// bringUp connects and enables an admin queue and returns it with the
// controller ID.
func bringUp(t *testing.T, e *env, dg nvmetcp.Digests, kato uint32) (*client, uint16) {
	t.Helper()
	a := dial(t, e.addr, dg)
	cqe := a.connect(0, 0xFFFF, subNQN, hostNQN, kato)
	ok(t, "admin connect", cqe)
	cntlid := uint16(cqe.DW0())
	if cqe := a.property(false, 0x00, true, 0); cqe.Result()&0xFFFF != 0x7F {
		t.Fatalf("CAP %#x", cqe.Result())
	}
	ok(t, "set CC", a.property(true, 0x14, false, 0x00460001))
	if cqe := a.property(false, 0x1C, false, 0); cqe.DW0()&1 != 1 {
		t.Fatalf("CSTS %#x, want RDY", cqe.DW0())
	}
	return a, cntlid
}

func rw(op uint8, slba uint64, nlb uint32) nvmetcp.SQE {
	var s nvmetcp.SQE
	s.SetOpcode(op)
	s.SetNSID(1)
	s.SetCDW(10, uint32(slba))
	s.SetCDW(11, uint32(slba>>32))
	s.SetCDW(12, nlb-1)
	return s
}

func pattern(n int, seed byte) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7) ^ seed
	}
	return b
}

func TestBringUpAndIO(t *testing.T) {
	for _, tc := range []struct {
		name    string
		dg      nvmetcp.Digests
		success bool
	}{
		{"plain", 0, false},
		{"digests+success", nvmetcp.HeaderDigest | nvmetcp.DataDigest, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := start(t, target.Config{MaxH2CData: 16 << 10, C2HDataMax: 16 << 10, C2HSuccess: tc.success})
			a, cntlid := bringUp(t, e, tc.dg, 5000)

			var id nvmetcp.SQE
			id.SetOpcode(0x06)
			id.SetCDW(10, nvmetcp.CNSController)
			cqe, data := a.exec(id, nil, false, 4096)
			ok(t, "identify", cqe)
			if len(data) != 4096 || !strings.HasPrefix(string(data[4:24]), "VDA0001 ") ||
				!strings.HasPrefix(string(data[24:64]), "VDA Controller ") ||
				string(data[768:768+len(subNQN)+1]) != subNQN+"\x00" ||
				binary.LittleEndian.Uint16(data[78:]) != cntlid {
				t.Fatalf("identify controller: SN %q MN %q SUBNQN %q", data[4:24], data[24:64], data[768:800])
			}
			id.SetCDW(10, nvmetcp.CNSNamespace)
			id.SetNSID(1)
			cqe, data = a.exec(id, nil, false, 4096)
			ok(t, "identify ns", cqe)
			if nsze := binary.LittleEndian.Uint64(data); nsze != 256 {
				t.Fatalf("NSZE %d", nsze)
			}

			var lp nvmetcp.SQE // ANA log, 4 KiB from offset 0
			lp.SetOpcode(0x02)
			lp.SetNSID(0xFFFFFFFF)
			lp.SetCDW(10, nvmetcp.LogANA|1023<<16)
			cqe, data = a.exec(lp, nil, false, 4096)
			ok(t, "ANA log", cqe)
			if binary.LittleEndian.Uint16(data[8:]) != 1 {
				t.Fatalf("ANA log groups %d", binary.LittleEndian.Uint16(data[8:]))
			}

			var sf nvmetcp.SQE
			sf.SetOpcode(0x09)
			sf.SetCDW(10, 0x07)
			sf.SetCDW(11, 0x00010001)
			cqe, _ = a.exec(sf, nil, false, 0)
			ok(t, "set features queues", cqe)
			if cqe.DW0() != 0x00010001 {
				t.Fatalf("queues granted %#x", cqe.DW0())
			}
			var ka nvmetcp.SQE
			ka.SetOpcode(0x18)
			cqe, _ = a.exec(ka, nil, false, 0)
			ok(t, "keep alive", cqe)

			q := dial(t, e.addr, tc.dg)
			ok(t, "io connect", q.connect(1, cntlid, subNQN, hostNQN, 0))

			w4 := pattern(4096, 1)
			cqe, _ = q.exec(rw(0x01, 3, 1), w4, true, 0)
			ok(t, "write 4K in-capsule", cqe)
			cqe, data = q.exec(rw(0x02, 3, 1), nil, false, 4096)
			ok(t, "read 4K", cqe)
			if !bytes.Equal(data, w4) {
				t.Fatal("read 4K: data differs")
			}

			w64 := pattern(64<<10, 2)
			cqe, _ = q.exec(rw(0x01, 16, 16), w64, false, 0)
			ok(t, "write 64K R2T", cqe)
			cqe, data = q.exec(rw(0x02, 16, 16), nil, false, 64<<10)
			ok(t, "read 64K", cqe)
			if !bytes.Equal(data, w64) {
				t.Fatal("read 64K: data differs")
			}

			cqe, _ = q.exec(rw(0x08, 16, 2), nil, false, 0)
			ok(t, "write zeroes", cqe)
			dsm := make([]byte, 4096)
			binary.LittleEndian.PutUint32(dsm[4:], 2)
			binary.LittleEndian.PutUint64(dsm[8:], 18)
			var d nvmetcp.SQE
			d.SetOpcode(0x09)
			d.SetNSID(1)
			d.SetCDW(11, 0x4)
			cqe, _ = q.exec(d, dsm, true, 0)
			ok(t, "dsm", cqe)
			cqe, _ = q.exec(rw(0x00, 0, 1), nil, false, 0)
			ok(t, "flush", cqe)
			cqe, data = q.exec(rw(0x02, 16, 16), nil, false, 64<<10)
			ok(t, "read after zero/deallocate", cqe)
			if !bytes.Equal(data[:16<<10], make([]byte, 16<<10)) || !bytes.Equal(data[16<<10:], w64[16<<10:]) {
				t.Fatal("zeroed/deallocated blocks wrong")
			}

			cqe, _ = q.exec(rw(0x02, 255, 2), nil, false, 8192)
			wantStatus(t, "read past end", cqe, 0, 0x80)
			e.dev.mu.Lock()
			e.dev.down = true
			e.dev.mu.Unlock()
			cqe, _ = q.exec(rw(0x02, 0, 1), nil, false, 4096)
			wantStatus(t, "read, path down", cqe, 0, 0x82)

			ok(t, "shutdown", a.property(true, 0x14, false, 0x00464001))
			if cqe := a.property(false, 0x1C, false, 0); cqe.DW0() != 0x9 {
				t.Fatalf("CSTS after shutdown %#x", cqe.DW0())
			}
		})
	}
}

func TestConnectRefused(t *testing.T) {
	e := start(t, target.Config{})
	c := dial(t, e.addr, 0)
	cqe := c.connect(0, 0xFFFF, subNQN, "nqn.2014-08.org.nvmexpress:uuid:intruder", 0)
	wantStatus(t, "disallowed host", cqe, 1, 0x84)
	cqe = c.connect(0, 0xFFFF, "nqn.2016-06.io.vda:nope", hostNQN, 0)
	wantStatus(t, "unknown NQN", cqe, 1, 0x82)
	if cqe.DW0() != 1<<16|256 {
		t.Fatalf("unknown NQN: IATTR/IPO %#x", cqe.DW0())
	}
	cqe = c.connect(1, 0x1234, subNQN, hostNQN, 0)
	wantStatus(t, "unknown CNTLID", cqe, 1, 0x82)
}

func TestMalformedPDU(t *testing.T) {
	e := start(t, target.Config{})
	a, cntlid := bringUp(t, e, nvmetcp.HeaderDigest|nvmetcp.DataDigest, 0)
	bad := dial(t, e.addr, nvmetcp.HeaderDigest|nvmetcp.DataDigest)
	ok(t, "io connect", bad.connect(1, cntlid, subNQN, hostNQN, 0))
	good := dial(t, e.addr, nvmetcp.HeaderDigest|nvmetcp.DataDigest)
	ok(t, "io connect", good.connect(2, cntlid, subNQN, hostNQN, 0))

	// A CapsuleCmd whose HLEN is 71.
	var s nvmetcp.SQE
	buf, err := bad.w.Encoder.Append(nil, &nvmetcp.PDU{Type: nvmetcp.TypeCapsuleCmd, SQE: s})
	if err != nil {
		t.Fatal(err)
	}
	buf[2] = 71
	if _, err := bad.nc.Write(buf); err != nil {
		t.Fatal(err)
	}
	p, err := bad.r.Read()
	if err != nil {
		t.Fatal(err)
	}
	if p.Type != nvmetcp.TypeC2HTermReq || p.TermReq.FES != nvmetcp.FESInvalidHeaderField || p.TermReq.FEI != 2 {
		t.Fatalf("got %v %+v, want C2HTermReq FES 1 FEI 2", p.Type, p.TermReq)
	}
	if _, err := bad.r.Read(); !errors.Is(err, io.EOF) {
		t.Fatalf("after TermReq: %v, want EOF", err)
	}

	w := pattern(4096, 3)
	cqe, _ := good.exec(rw(0x01, 1, 1), w, true, 0)
	ok(t, "write on the other connection", cqe)
	cqe, data := good.exec(rw(0x02, 1, 1), nil, false, 4096)
	ok(t, "read on the other connection", cqe)
	if !bytes.Equal(data, w) {
		t.Fatal("data differs")
	}
	var ka nvmetcp.SQE
	ka.SetOpcode(0x18)
	cqe, _ = a.exec(ka, nil, false, 0)
	ok(t, "admin still there", cqe)
}

func TestKeepAliveExpiry(t *testing.T) {
	e := start(t, target.Config{})
	a, _ := bringUp(t, e, 0, 100) // KATO 100 ms, never refreshed
	a.nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := a.r.Read(); !errors.Is(err, io.EOF) {
		t.Fatalf("admin queue after KATO: %v, want EOF", err)
	}
}

func TestH2CDataOutOfRange(t *testing.T) {
	e := start(t, target.Config{})
	_, cntlid := bringUp(t, e, 0, 0)
	q := dial(t, e.addr, 0)
	ok(t, "io connect", q.connect(1, cntlid, subNQN, hostNQN, 0))
	s := rw(0x01, 0, 2)
	s.SetCID(77)
	s.SetSGL(nvmetcp.SGLTransport, 0, 8192)
	if err := q.w.WritePDU(&nvmetcp.PDU{Type: nvmetcp.TypeCapsuleCmd, SQE: s}); err != nil {
		t.Fatal(err)
	}
	p, err := q.r.Read()
	if err != nil || p.Type != nvmetcp.TypeR2T || p.R2T.Length != 8192 {
		t.Fatalf("want R2T for 8192 bytes, got %v %+v %v", p, p.R2T, err)
	}
	h := nvmetcp.PDU{Type: nvmetcp.TypeH2CData, Flags: nvmetcp.FlagLastPDU, Data: make([]byte, 4096),
		H2CData: nvmetcp.H2CData{CCCID: 77, TTAG: p.R2T.TTAG, DataOffset: 4096, DataLength: 4096}}
	if err := q.w.WritePDU(&h); err != nil {
		t.Fatal(err)
	}
	p, err = q.r.Read()
	if err != nil || p.Type != nvmetcp.TypeC2HTermReq || p.TermReq.FES != nvmetcp.FESDataOutOfRange {
		t.Fatalf("want C2HTermReq FES 4, got %v %v", p, err)
	}
}

func TestDataDigestErrorFailsCommand(t *testing.T) {
	e := start(t, target.Config{})
	dg := nvmetcp.HeaderDigest | nvmetcp.DataDigest
	_, cntlid := bringUp(t, e, dg, 0)
	q := dial(t, e.addr, dg)
	ok(t, "io connect", q.connect(1, cntlid, subNQN, hostNQN, 0))
	s := rw(0x01, 0, 1)
	s.SetCID(9)
	s.SetSGL(nvmetcp.SGLInCapsule, 0, 4096)
	buf, err := q.w.Encoder.Append(nil, &nvmetcp.PDU{Type: nvmetcp.TypeCapsuleCmd, SQE: s, Data: pattern(4096, 4)})
	if err != nil {
		t.Fatal(err)
	}
	buf[len(buf)-1] ^= 0xFF // spoil the data digest
	if _, err := q.nc.Write(buf); err != nil {
		t.Fatal(err)
	}
	p, err := q.r.Read()
	if err != nil || p.Type != nvmetcp.TypeCapsuleResp {
		t.Fatalf("want CapsuleResp, got %v %v", p, err)
	}
	wantStatus(t, "write with bad data digest", p.CQE, 0, 0x22)
	cqe, data := q.exec(rw(0x02, 0, 1), nil, false, 4096)
	ok(t, "read after digest error", cqe)
	if !bytes.Equal(data, make([]byte, 4096)) {
		t.Fatal("the failed write reached the device")
	}
}
