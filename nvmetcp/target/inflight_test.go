package target_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/virtual-disk-array/vda/nvmetcp"
	"github.com/virtual-disk-array/vda/nvmetcp/target"
)

// gateDev is a memDev whose reads and writes of the first gated blocks
// each wait until the test opens their gate (or their context ends).
type gateDev struct {
	*memDev
	gated   uint64 // blocks [0, gated) are gated
	started chan uint64
	mu      sync.Mutex
	gates   map[uint64]chan struct{}
	done    chan error // what each gated op returned
}

func newGateDev(gated uint64) *gateDev {
	return &gateDev{memDev: newMem(4096, 4<<20), gated: gated, started: make(chan uint64, 1024),
		gates: map[uint64]chan struct{}{}, done: make(chan error, 1024)}
}

func (d *gateDev) gate(lba uint64) chan struct{} {
	d.mu.Lock()
	defer d.mu.Unlock()
	g := d.gates[lba]
	if g == nil {
		g = make(chan struct{})
		d.gates[lba] = g
	}
	return g
}

func (d *gateDev) wait(ctx context.Context, off uint64) error {
	lba := off / 4096
	if lba >= d.gated {
		return nil
	}
	d.started <- lba
	select {
	case <-d.gate(lba):
		d.done <- nil
		return nil
	case <-ctx.Done():
		d.done <- ctx.Err()
		return ctx.Err()
	}
}

func (d *gateDev) ReadAt(ctx context.Context, p []byte, off uint64) error {
	if err := d.wait(ctx, off); err != nil {
		return err
	}
	return d.memDev.ReadAt(ctx, p, off)
}

func (d *gateDev) WriteAt(ctx context.Context, p []byte, off uint64) error {
	if err := d.wait(ctx, off); err != nil {
		return err
	}
	return d.memDev.WriteAt(ctx, p, off)
}

// waitStarted waits until n gated operations have started and returns
// their LBAs.
func (d *gateDev) waitStarted(t *testing.T, n int) []uint64 {
	t.Helper()
	var lbas []uint64
	for len(lbas) < n {
		select {
		case l := <-d.started:
			lbas = append(lbas, l)
		case <-time.After(10 * time.Second):
			t.Fatalf("%d of %d operations started: %v", len(lbas), n, lbas)
		}
	}
	return lbas
}

// startDev serves one subsystem whose namespace 1 is dev.
func startDev(t *testing.T, dev target.Namespace, cfg target.Config) (*target.Server, *env) {
	t.Helper()
	sub := &target.Subsystem{NQN: subNQN, Hosts: []string{hostNQN}, Namespaces: []target.NS{{NSID: 1, Dev: dev}}}
	srv, err := target.NewServer(catalog{subNQN: sub}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return srv, serveServer(t, srv)
}

// ioQueue brings a controller up and connects one I/O queue (SQSIZE 127).
func ioQueue(t *testing.T, e *env) (admin, q *client, cntlid uint16) {
	t.Helper()
	admin, cntlid = bringUp(t, e, 0, 0)
	q = dial(t, e.addr, 0)
	ok(t, "io connect", q.connect(1, cntlid, subNQN, hostNQN, 0))
	return admin, q, cntlid
}

// send queues a command (data in the capsule when inCapsule, else by R2T
// or, for a read, sglLen bytes from the target) without flushing.
func (c *client) send(sqe nvmetcp.SQE, cid uint16, out []byte, inCapsule bool, sglLen uint32) {
	c.t.Helper()
	sqe.SetCID(cid)
	p := nvmetcp.PDU{Type: nvmetcp.TypeCapsuleCmd}
	if inCapsule {
		sqe.SetSGL(nvmetcp.SGLInCapsule, 0, uint32(len(out)))
		p.Data = out
	} else {
		sqe.SetSGL(nvmetcp.SGLTransport, 0, sglLen)
	}
	p.SQE = sqe
	if err := c.w.Queue(&p); err != nil {
		c.t.Fatal(err)
	}
}

func (c *client) flush() {
	c.t.Helper()
	if err := c.w.Flush(); err != nil {
		c.t.Fatal(err)
	}
}

// result is what a command got back.
type result struct {
	cqe  nvmetcp.CQE
	data []byte
}

// collect reads until every CID of want completed: C2HData fill the
// reads' buffers, R2Ts are answered by answer (nil: at once, from out),
// CapsuleResps are returned in the order they came.
func (c *client) collect(want map[uint16]int, out map[uint16][]byte, answer func([]nvmetcp.R2T) []nvmetcp.R2T) (order []uint16, res map[uint16]*result) {
	c.t.Helper()
	res = map[uint16]*result{}
	for cid, n := range want {
		res[cid] = &result{data: make([]byte, n)}
	}
	var r2ts []nvmetcp.R2T
	send := func(list []nvmetcp.R2T) {
		for _, r2 := range list {
			d := out[r2.CCCID]
			for off := r2.Offset; off < r2.Offset+r2.Length; {
				n := min(r2.Offset+r2.Length-off, 4096)
				h := nvmetcp.PDU{Type: nvmetcp.TypeH2CData, Data: d[off : off+n],
					H2CData: nvmetcp.H2CData{CCCID: r2.CCCID, TTAG: r2.TTAG, DataOffset: off, DataLength: n}}
				if off+n == r2.Offset+r2.Length {
					h.Flags = nvmetcp.FlagLastPDU
				}
				if err := c.w.Queue(&h); err != nil {
					c.t.Fatal(err)
				}
				off += n
			}
		}
		c.flush()
	}
	for len(order) < len(want) {
		p, err := c.r.Read()
		if err != nil {
			c.t.Fatalf("read after %d completions: %v", len(order), err)
		}
		switch p.Type {
		case nvmetcp.TypeCapsuleResp:
			r := res[p.CQE.CID()]
			if r == nil || slices.Contains(order, p.CQE.CID()) {
				c.t.Fatalf("unexpected completion of CID %d", p.CQE.CID())
			}
			r.cqe = p.CQE
			order = append(order, p.CQE.CID())
		case nvmetcp.TypeC2HData:
			r := res[p.C2HData.CCCID]
			if r == nil || int(p.C2HData.DataOffset)+len(p.Data) > len(r.data) {
				c.t.Fatalf("unexpected C2HData %+v", p.C2HData)
			}
			copy(r.data[p.C2HData.DataOffset:], p.Data)
		case nvmetcp.TypeR2T:
			if out[p.R2T.CCCID] == nil {
				c.t.Fatalf("R2T for CID %d", p.R2T.CCCID)
			}
			r2ts = append(r2ts, p.R2T)
			if answer == nil {
				send(r2ts)
				r2ts = nil
			} else if s := answer(r2ts); s != nil {
				send(s)
				r2ts = slices.DeleteFunc(r2ts, func(x nvmetcp.R2T) bool { return slices.Contains(s, x) })
			}
		default:
			c.t.Fatalf("unexpected %v", p.Type)
		}
	}
	return order, res
}

// TestInFlightOutOfOrder: commands of one queue run at once and complete
// in the order their namespace finishes them, each CQE with the SQ head
// of all the commands taken.
func TestInFlightOutOfOrder(t *testing.T) {
	for _, async := range []bool{false, true} {
		t.Run(fmt.Sprintf("AsyncIO=%v", async), func(t *testing.T) {
			dev := newGateDev(64)
			_, e := startDev(t, dev, target.Config{AsyncIO: async})
			_, q, _ := ioQueue(t, e)
			for i := range 64 * 4096 {
				dev.data[i] = byte(i/4096) + 1
			}
			const n = 32
			want := map[uint16]int{}
			out := map[uint16][]byte{}
			for i := range n {
				cid := uint16(100 + i)
				if i%2 == 0 {
					q.send(rw(0x02, uint64(i), 1), cid, nil, false, 4096)
					want[cid] = 4096
				} else {
					out[cid] = bytes.Repeat([]byte{0xA0 + byte(i)}, 4096)
					q.send(rw(0x01, uint64(i), 1), cid, out[cid], true, 0)
					want[cid] = 0
				}
			}
			q.flush()
			if lbas := dev.waitStarted(t, n); len(lbas) != n {
				t.Fatal(lbas)
			}
			// Open the gates from the last command to the first, each once
			// the previous one's completion arrived.
			for i := n - 1; i >= 0; i-- {
				close(dev.gate(uint64(i)))
				cid := uint16(100 + i)
				order, res := q.collect(map[uint16]int{cid: want[cid]}, nil, nil)
				cqe := res[order[0]].cqe
				ok(t, fmt.Sprintf("CID %d", cid), cqe)
				// Connect, then all n commands, were taken (SQSIZE 127).
				if cqe.SQHead() != 1+n || cqe.SQID() != 1 {
					t.Fatalf("CID %d: SQHD %d SQID %d, want %d and 1", cid, cqe.SQHead(), cqe.SQID(), 1+n)
				}
				if i%2 == 0 && !bytes.Equal(res[cid].data, bytes.Repeat([]byte{byte(i) + 1}, 4096)) {
					t.Fatalf("read of LBA %d: wrong data", i)
				}
			}
			dev.memDev.mu.Lock()
			defer dev.memDev.mu.Unlock()
			for i := 1; i < n; i += 2 {
				if dev.data[i*4096] != 0xA0+byte(i) {
					t.Fatalf("write of LBA %d missing", i)
				}
			}
		})
	}
}

// TestSQHeadWraps: SQHD counts the commands taken, modulo SQSIZE+1.
func TestSQHeadWraps(t *testing.T) {
	_, e := startDev(t, newMem(4096, 1<<20), target.Config{})
	_, q, _ := ioQueue(t, e)
	head := 1 // after Connect
	for i := range 300 {
		// Batches of 1 to 5 commands in one write.
		k := i%5 + 1
		want := map[uint16]int{}
		for j := range k {
			cid := uint16(j + 1)
			q.send(rw(0x02, uint64(j), 1), cid, nil, false, 4096)
			want[cid] = 4096
		}
		q.flush()
		head = (head + k) % 128
		_, res := q.collect(want, nil, nil)
		for cid, r := range res {
			ok(t, "read", r.cqe)
			// Completions of a batch may be built before the reader took
			// the batch's last commands: SQHD is at least the command's own
			// position and at most the batch's end.
			h := int(r.cqe.SQHead())
			lo := (head - k + int(cid) + 128) % 128
			if d := (h - lo + 128) % 128; d > k-int(cid) {
				t.Fatalf("batch %d CID %d: SQHD %d, want %d..%d", i, cid, h, lo, head)
			}
		}
	}
}

// TestR2TInterleavedWithReads: several writes by R2T at once on one queue,
// their H2CData sent in an order unlike their R2Ts', with reads in
// between.
func TestR2TInterleavedWithReads(t *testing.T) {
	for _, async := range []bool{false, true} {
		t.Run(fmt.Sprintf("AsyncIO=%v", async), func(t *testing.T) {
			dev := newMem(4096, 4<<20)
			for i := range dev.data {
				dev.data[i] = byte(i / 4096)
			}
			_, e := startDev(t, modelNS{dev}, target.Config{AsyncIO: async, MaxH2CData: 8192})
			_, q, _ := ioQueue(t, e)
			for range 100 { // fast reads: the queue then executes inline unless AsyncIO
				cqe, _ := q.exec(rw(0x02, 0, 1), nil, false, 4096)
				ok(t, "warm-up read", cqe)
			}
			want := map[uint16]int{}
			out := map[uint16][]byte{}
			var writes []uint16
			for i := range 24 {
				cid := uint16(i + 1)
				lba := uint64(i * 8)
				if i%3 == 0 {
					out[cid] = pattern(32<<10, byte(i))
					q.send(rw(0x01, 256+lba, 8), cid, nil, false, 32<<10)
					want[cid] = 0
					writes = append(writes, cid)
				} else {
					q.send(rw(0x02, lba, 8), cid, nil, false, 32<<10)
					want[cid] = 32 << 10
				}
			}
			q.flush()
			// Hold the R2Ts until every write has one, then answer them
			// from the last write to the first.
			answer := func(r2ts []nvmetcp.R2T) []nvmetcp.R2T {
				if len(r2ts) < len(writes) {
					return nil
				}
				s := slices.Clone(r2ts)
				slices.Reverse(s)
				return s
			}
			_, res := q.collect(want, out, answer)
			for cid, r := range res {
				ok(t, fmt.Sprintf("CID %d", cid), r.cqe)
				i := int(cid - 1)
				if i%3 != 0 {
					for j, b := range r.data {
						if b != byte(i*8+j/4096) {
							t.Fatalf("read CID %d: byte %d is %d", cid, j, b)
						}
					}
				}
			}
			dev.mu.Lock()
			defer dev.mu.Unlock()
			for _, cid := range writes {
				off := (256 + int(cid-1)*8) * 4096
				if !bytes.Equal(dev.data[off:off+32<<10], out[cid]) {
					t.Fatalf("write CID %d: data differs", cid)
				}
			}
		})
	}
}

// baseGoroutines returns the number of goroutines once the server's
// have started.
func baseGoroutines() int {
	time.Sleep(100 * time.Millisecond)
	return runtime.NumGoroutine()
}

// settle waits until the number of goroutines is back to base.
func settle(t *testing.T, base int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for runtime.NumGoroutine() > base {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("%d goroutines, want %d:\n%s", runtime.NumGoroutine(), base, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestMalformedPDUInFlight: a malformed PDU while commands are in flight
// ends that connection only (a C2HTermReq, then nothing but the end of
// the stream); its commands are cancelled and their goroutines end.
func TestMalformedPDUInFlight(t *testing.T) {
	dev := newGateDev(64)
	_, e := startDev(t, dev, target.Config{})
	base := baseGoroutines()
	a, q, cntlid := ioQueue(t, e)
	q2 := dial(t, e.addr, 0)
	ok(t, "second io queue", q2.connect(2, cntlid, subNQN, hostNQN, 0))
	for i := range 16 {
		q.send(rw(0x02, uint64(i), 1), uint16(i+1), nil, false, 4096)
	}
	q.flush()
	dev.waitStarted(t, 16)
	// An H2CData for a transfer that does not exist.
	h := nvmetcp.PDU{Type: nvmetcp.TypeH2CData, Data: make([]byte, 4096), Flags: nvmetcp.FlagLastPDU,
		H2CData: nvmetcp.H2CData{CCCID: 1, TTAG: 77, DataLength: 4096}}
	if err := q.w.WritePDU(&h); err != nil {
		t.Fatal(err)
	}
	q.nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	p, err := q.r.Read()
	if err != nil || p.Type != nvmetcp.TypeC2HTermReq {
		t.Fatalf("got %v, %v; want a C2HTermReq", p, err)
	}
	if _, err := q.r.Read(); !errors.Is(err, io.EOF) {
		t.Fatalf("after the C2HTermReq: %v, want EOF", err)
	}
	for range 16 {
		if err := <-dev.done; !errors.Is(err, context.Canceled) {
			t.Fatalf("gated read returned %v, want cancelled", err)
		}
	}
	// The controller and its other queues go on.
	ok(t, "admin after", a.property(false, 0x1C, false, 0))
	cqe, _ := q2.exec(rw(0x02, 100, 1), nil, false, 4096)
	ok(t, "other queue after", cqe)
	a.nc.Close()
	q2.nc.Close()
	settle(t, base)
}

// TestDisconnectInFlight: Server.Disconnect while commands are in flight
// (blocked in the namespace, waiting for R2T data) closes the queues and
// ends every goroutine of theirs.
func TestDisconnectInFlight(t *testing.T) {
	for _, async := range []bool{false, true} {
		t.Run(fmt.Sprintf("AsyncIO=%v", async), func(t *testing.T) {
			dev := newGateDev(64)
			srv, e := startDev(t, dev, target.Config{AsyncIO: async})
			base := baseGoroutines()
			a, q, _ := ioQueue(t, e)
			for i := range 32 {
				q.send(rw(0x02, uint64(i), 1), uint16(i+1), nil, false, 4096)
			}
			for i := range 8 { // writes waiting for their data
				q.send(rw(0x01, uint64(200+i), 4), uint16(100+i), nil, false, 16384)
			}
			q.flush()
			dev.waitStarted(t, 32)
			if n := srv.Disconnect(func(s, h string) bool { return true }); n != 1 {
				t.Fatalf("Disconnect: %d controllers", n)
			}
			wantEOF(t, "admin", a)
			for {
				q.nc.SetReadDeadline(time.Now().Add(10 * time.Second))
				p, err := q.r.Read()
				if errors.Is(err, io.EOF) {
					break
				}
				if err != nil || p.Type != nvmetcp.TypeR2T {
					t.Fatalf("I/O queue: %v %v, want R2Ts then EOF", p, err)
				}
			}
			for range 32 {
				if err := <-dev.done; !errors.Is(err, context.Canceled) {
					t.Fatalf("gated read returned %v, want cancelled", err)
				}
			}
			settle(t, base)
		})
	}
}

// TestSteadyStateIOAllocs: once warm, an I/O costs the target no heap
// allocation (the raw client allocates none either): data buffers and
// command state come from pools, PDUs are encoded into reused buffers.
func TestSteadyStateIOAllocs(t *testing.T) {
	if testing.Short() || raceEnabled {
		t.Skip("allocation counts need a normal build")
	}
	for _, async := range []bool{false, true} {
		for _, tc := range []struct {
			name      string
			op        uint8
			size      int
			inCapsule bool
		}{
			{"read 4K", 0x02, 4096, false},
			{"write 4K in-capsule", 0x01, 4096, true},
			{"read 128K", 0x02, 128 << 10, false},
			{"write 128K R2T", 0x01, 128 << 10, false},
		} {
			t.Run(fmt.Sprintf("%s/AsyncIO=%v", tc.name, async), func(t *testing.T) {
				_, e := startDev(t, newMem(4096, 4<<20), target.Config{AsyncIO: async, C2HSuccess: true})
				_, q, _ := ioQueue(t, e)
				data := pattern(tc.size, 3)
				nlb := uint32(tc.size / 4096)
				const depth = 8
				var sqe [depth]nvmetcp.SQE
				for i := range sqe {
					sqe[i] = rw(tc.op, uint64(i)*uint64(nlb), nlb)
					sqe[i].SetCID(uint16(i + 1))
					if tc.inCapsule {
						sqe[i].SetSGL(nvmetcp.SGLInCapsule, 0, uint32(tc.size))
					} else {
						sqe[i].SetSGL(nvmetcp.SGLTransport, 0, uint32(tc.size))
					}
				}
				var p, h nvmetcp.PDU
				round := func() { // depth commands in flight, then their completions
					for i := range sqe {
						p = nvmetcp.PDU{Type: nvmetcp.TypeCapsuleCmd, SQE: sqe[i]}
						if tc.inCapsule {
							p.Data = data
						}
						if err := q.w.Queue(&p); err != nil {
							t.Fatal(err)
						}
					}
					if err := q.w.Flush(); err != nil {
						t.Fatal(err)
					}
					for done := 0; done < depth; {
						r, err := q.r.Read()
						if err != nil {
							t.Fatal(err)
						}
						switch r.Type {
						case nvmetcp.TypeCapsuleResp:
							if !r.CQE.Success() {
								t.Fatalf("status %#x", r.CQE.Status())
							}
							done++
						case nvmetcp.TypeC2HData:
							if r.Flags&nvmetcp.FlagSuccess != 0 {
								done++
							}
						case nvmetcp.TypeR2T:
							h = nvmetcp.PDU{Type: nvmetcp.TypeH2CData, Flags: nvmetcp.FlagLastPDU,
								Data: data[r.R2T.Offset : r.R2T.Offset+r.R2T.Length],
								H2CData: nvmetcp.H2CData{CCCID: r.R2T.CCCID, TTAG: r.R2T.TTAG,
									DataOffset: r.R2T.Offset, DataLength: r.R2T.Length}}
							if err := q.w.WritePDU(&h); err != nil {
								t.Fatal(err)
							}
						}
					}
				}
				for range 200 {
					round()
				}
				allocs := testing.AllocsPerRun(200, round) / depth
				t.Logf("%.3f allocations per I/O", allocs)
				if allocs > 0.05 {
					t.Errorf("%.3f allocations per I/O, want 0", allocs)
				}
			})
		}
	}
}
