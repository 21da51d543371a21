package target_test

import (
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"github.com/virtual-disk-array/vda/nvmetcp"
	"github.com/virtual-disk-array/vda/nvmetcp/target"
)

// FuzzCommands is the command decoder's fuzz target: any command, on the
// admin queue or on an I/O queue of a controller brought up as Linux
// does, with any SGL and any in-capsule data, must get an answer (a
// completion, its data, or an R2T, which the fuzz host then feeds) or
// close that connection, within a bound; the target must not crash or
// hang, and must go on serving: a second I/O queue of the same controller
// still reads and writes afterwards. (The PDU parser has its own fuzz
// target, nvmetcp.FuzzReader.)
func FuzzCommands(f *testing.F) {
	sqe := func(op uint8, nsid uint32, cdw ...uint32) []byte {
		var s nvmetcp.SQE
		s.SetOpcode(op)
		s.SetNSID(nsid)
		for i, v := range cdw {
			s.SetCDW(10+i, v)
		}
		s.SetSGL(nvmetcp.SGLTransport, 0, 4096)
		return s[:]
	}
	inCapsule := func(b []byte, n uint32) []byte {
		var s nvmetcp.SQE
		copy(s[:], b)
		s.SetSGL(nvmetcp.SGLInCapsule, 0, n)
		return s[:]
	}
	block := make([]byte, 4096)
	for _, seed := range []struct {
		admin bool
		sqe   []byte
		data  []byte
	}{
		{true, sqe(0x06, 0, nvmetcp.CNSController), nil},                    // Identify controller
		{true, sqe(0x06, 1, nvmetcp.CNSNamespace), nil},                     // Identify namespace
		{true, sqe(0x06, 0, 2), nil},                                        // active namespace list
		{true, sqe(0x02, 0xFFFFFFFF, nvmetcp.LogANA|1023<<16), nil},         // ANA log
		{true, sqe(0x02, 0xFFFFFFFF, 0x04|1023<<16), nil},                   // changed namespaces
		{true, sqe(0x09, 0, 0x07, 0x00030003), nil},                         // Set Features: queues
		{true, sqe(0x0A, 0, 0x0B), nil},                                     // Get Features: AEN config
		{true, sqe(0x18, 0), nil},                                           // Keep Alive
		{true, sqe(0x7F, 0x04, 0, 0x14), nil},                               // Property Get CC
		{true, sqe(0xC0, 0), nil},                                           // vendor specific
		{false, sqe(0x02, 1, 0, 0, 0), nil},                                 // Read
		{false, inCapsule(sqe(0x01, 1, 8, 0, 0), 4096), block},              // Write in capsule
		{false, sqe(0x01, 1, 0, 0, 0), nil},                                 // Write by R2T
		{false, sqe(0x00, 1), nil},                                          // Flush
		{false, sqe(0x08, 1, 4, 0, 7), nil},                                 // Write Zeroes
		{false, inCapsule(sqe(0x09, 1, 0, 1<<2), 16), make([]byte, 16)},     // DSM deallocate
		{false, sqe(0x02, 1, 0xFFFFFFFF, 0xFFFFFFFF, 0xFFFF), nil},          // Read past the end
		{false, inCapsule(sqe(0x01, 1, 0, 0, 0), 8192), make([]byte, 8192)}, // more data than IOCCSZ
		{false, sqe(0x02, 7, 0, 0, 0), nil},                                 // no such namespace
	} {
		f.Add(seed.admin, seed.sqe, seed.data)
	}

	f.Fuzz(func(t *testing.T, admin bool, raw []byte, data []byte) {
		var s nvmetcp.SQE
		copy(s[:], raw)
		if admin && s.Opcode() == 0x0C {
			// An Asynchronous Event Request is held until an event: no
			// answer is its right behaviour.
			return
		}
		if len(data) > 16<<10 {
			data = data[:16<<10]
		}
		e := start(t, target.Config{})
		a, cntlid := bringUp(t, e, 0, 0)
		c := a
		if !admin {
			c = dial(t, e.addr, 0)
			ok(t, "io connect", c.connect(1, cntlid, subNQN, hostNQN, 0))
		}
		answer(t, c, s, data)

		// The target still serves: a fresh I/O queue of the controller (or
		// of a new one, if the fuzz command tore it down) moves data.
		q := dial(t, e.addr, 0)
		if cqe := q.connect(2, cntlid, subNQN, hostNQN, 0); cqe.Status() != 0 {
			_, id := bringUp(t, e, 0, 0)
			q = dial(t, e.addr, 0)
			ok(t, "io connect after", q.connect(1, id, subNQN, hostNQN, 0))
		}
		w := rw(0x01, 3, 1)
		ok(t, "write after", func() nvmetcp.CQE { cqe, _ := q.exec(w, block, true, 0); return cqe }())
		cqe, got := q.exec(rw(0x02, 3, 1), nil, false, 4096)
		ok(t, "read after", cqe)
		if len(got) != 4096 {
			t.Fatalf("read after: %d bytes", len(got))
		}
	})
}

// answer sends s (with data in its capsule when its SGL says so) and reads
// until the command is answered or the connection ends; R2Ts are fed.
func answer(t *testing.T, c *client, s nvmetcp.SQE, data []byte) {
	t.Helper()
	s.SetCID(0xBEEF)
	p := nvmetcp.PDU{Type: nvmetcp.TypeCapsuleCmd, SQE: s}
	if s.SGLIdentifier() == nvmetcp.SGLInCapsule {
		p.Data = data
	}
	if err := c.nc.SetDeadline(time.Now().Add(10 * time.Second)); err != nil {
		t.Fatal(err)
	}
	if err := c.w.WritePDU(&p); err != nil {
		return // the target may have closed already: fine
	}
	for {
		q, err := c.r.Read()
		var ne net.Error
		switch {
		case errors.As(err, &ne) && ne.Timeout():
			t.Fatalf("no answer to %x within 10s", s[:])
		case err != nil:
			return // closed (after a TermReq, or a Fabrics Disconnect)
		}
		switch q.Type {
		case nvmetcp.TypeCapsuleResp:
			if q.CQE.CID() == 0xBEEF {
				return
			}
		case nvmetcp.TypeC2HData:
			if q.Flags&nvmetcp.FlagSuccess != 0 && q.C2HData.CCCID == 0xBEEF {
				return
			}
		case nvmetcp.TypeR2T:
			r2 := q.R2T
			h := nvmetcp.PDU{Type: nvmetcp.TypeH2CData, Flags: nvmetcp.FlagLastPDU, Data: make([]byte, r2.Length),
				H2CData: nvmetcp.H2CData{CCCID: r2.CCCID, TTAG: r2.TTAG, DataOffset: r2.Offset, DataLength: r2.Length}}
			if err := c.w.WritePDU(&h); err != nil {
				return
			}
		case nvmetcp.TypeC2HTermReq:
			_, _ = io.Copy(io.Discard, c.nc) // then the target closes
			return
		}
	}
}
