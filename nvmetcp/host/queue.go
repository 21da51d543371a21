package host

import (
	"context"
	"errors"
	"fmt"
	"net"
	"runtime"
	"sync"
	"time"

	"github.com/virtual-disk-array/vda/nvmetcp"
)

// ErrDisconnected is wrapped by the error of every command that fails
// because its connection was lost or closed.
var ErrDisconnected = errors.New("nvmetcp/host: disconnected")

// StatusError is an NVMe completion with a non-zero status.
type StatusError struct {
	SCT, SC uint8
	DNR     bool
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("nvmetcp/host: NVMe status SCT %#x SC %#02x (DNR %v)", e.SCT, e.SC, e.DNR)
}

// cmd is one command slot of a queue, indexed by CID.
type cmd struct {
	sqe  nvmetcp.SQE
	data []byte // outgoing data of a write, destination of a read
	read bool
	done chan struct{}
	cqe  nvmetcp.CQE
	err  error
	// cb, for a command from submit, is called at completion instead of
	// done being signalled.
	cb func(error)
}

// item is one PDU the writer loop sends.
type item struct {
	c      *cmd
	h2c    bool // H2CData instead of a capsule
	inCap  bool // capsule carries c.data
	ttag   uint16
	off, n uint32
	last   bool
}

// waiter is a submitted command waiting for a CID.
type waiter struct {
	sqe         nvmetcp.SQE
	data        []byte
	read, inCap bool
	cb          func(error)
}

// queue is one NVMe/TCP connection: one submission/completion queue pair.
type queue struct {
	qid    uint16
	nc     net.Conn
	r      *nvmetcp.Reader
	w      *nvmetcp.Writer
	maxH2C uint32
	depth  int // commands in flight at most
	free   chan uint16

	mu      sync.Mutex
	cmds    []*cmd // in flight, by CID
	slots   []cmd
	pending []item
	spare   []item
	writing bool // the writer loop is awake: submitters only append
	err     error
	// waiting are submitted commands that found no free CID: each takes
	// the next CID released, before any exec waiting on free.
	waiting []waiter

	// kick wakes the writer loop; it is sent only when writing turns true,
	// so it never holds more than one token.
	kick       chan struct{}
	dead       chan struct{}
	writerDone chan struct{}
	readerDone chan struct{}
}

// dialQueue connects and does the ICReq/ICResp exchange.
func dialQueue(ctx context.Context, addr string, qid uint16, depth int, dg nvmetcp.Digests, maxData int) (*queue, error) {
	var d net.Dialer
	nc, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	if tc, ok := nc.(*net.TCPConn); ok {
		tc.SetNoDelay(true)
	}
	if dl, ok := ctx.Deadline(); ok {
		nc.SetDeadline(dl)
	} else {
		nc.SetDeadline(time.Now().Add(30 * time.Second))
	}
	r, err := nvmetcp.NewReader(nc, nvmetcp.ReaderConfig{Role: nvmetcp.RoleHost, MaxData: maxData})
	if err != nil {
		nc.Close()
		return nil, err
	}
	w := nvmetcp.NewWriter(nc)
	if err := w.WritePDU(&nvmetcp.PDU{Type: nvmetcp.TypeICReq, ICReq: nvmetcp.ICReq{Digests: dg}}); err != nil {
		nc.Close()
		return nil, fmt.Errorf("nvmetcp/host: ICReq: %w", err)
	}
	p, err := r.Read()
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("nvmetcp/host: ICResp: %w", err)
	}
	if p.Type != nvmetcp.TypeICResp {
		nc.Close()
		return nil, fmt.Errorf("nvmetcp/host: got %v instead of ICResp", p.Type)
	}
	if p.ICResp.Digests != dg {
		nc.Close()
		return nil, fmt.Errorf("nvmetcp/host: digests %#x granted, %#x asked", p.ICResp.Digests, dg)
	}
	r.SetDigests(dg)
	w.Encoder = nvmetcp.Encoder{Digests: dg, PDA: p.ICResp.CPDA}
	nc.SetDeadline(time.Time{})
	q := &queue{
		qid: qid, nc: nc, r: r, w: w, maxH2C: p.ICResp.MaxH2CData, depth: depth,
		free: make(chan uint16, depth), cmds: make([]*cmd, depth), slots: make([]cmd, depth),
		kick: make(chan struct{}, 1), dead: make(chan struct{}),
		writerDone: make(chan struct{}), readerDone: make(chan struct{}),
	}
	for i := range depth {
		q.slots[i].done = make(chan struct{}, 1)
		q.free <- uint16(i)
	}
	go q.writeLoop()
	go q.readLoop()
	return q, nil
}

// fail marks the queue dead and closes its connection; the reader loop
// then fails every command in flight.
func (q *queue) fail(err error) {
	q.mu.Lock()
	if q.err == nil {
		if !errors.Is(err, ErrDisconnected) {
			err = fmt.Errorf("%w: queue %d: %v", ErrDisconnected, q.qid, err)
		}
		q.err = err
		close(q.dead)
	}
	q.mu.Unlock()
	q.nc.Close()
}

func (q *queue) close() {
	q.fail(fmt.Errorf("%w: queue %d closed", ErrDisconnected, q.qid))
	<-q.readerDone
}

func (q *queue) enqueue(it item) {
	q.mu.Lock()
	q.pending = append(q.pending, it)
	wake := q.wakeLocked()
	q.mu.Unlock()
	if wake {
		q.wake()
	}
}

// wakeLocked, with mu held, reports whether the caller must wake the
// writer loop (it was idle); it is then marked awake.
func (q *queue) wakeLocked() bool {
	if q.writing {
		return false
	}
	q.writing = true
	return true
}

func (q *queue) wake() {
	select {
	case q.kick <- struct{}{}:
	default:
	}
}

// writeLoop sends what submitters queue. Once woken it yields the
// processor once before taking the batch: the goroutines a burst of
// completions made runnable then submit their next commands first, and
// all of them go out in one writev instead of one each (with GOMAXPROCS=1
// the writer would otherwise run right after the first submitter, as the
// goroutine it readied). It then writes until nothing is pending; while it
// is awake, submitters only append under the lock, without waking anyone.
func (q *queue) writeLoop() {
	defer close(q.writerDone)
	var p nvmetcp.PDU
	for {
		select {
		case <-q.kick:
		case <-q.dead:
			return
		}
		runtime.Gosched()
		for {
			q.mu.Lock()
			items := q.pending
			if len(items) == 0 || q.err != nil {
				q.writing = false
				q.mu.Unlock()
				break
			}
			q.pending = q.spare[:0]
			q.mu.Unlock()
			if !q.send(items, &p) {
				return
			}
		}
	}
}

// send encodes items and writes them with one Flush; false if the
// connection failed.
func (q *queue) send(items []item, p *nvmetcp.PDU) bool {
	for _, it := range items {
		*p = nvmetcp.PDU{}
		if it.h2c {
			p.Type = nvmetcp.TypeH2CData
			p.H2CData = nvmetcp.H2CData{CCCID: it.c.sqe.CID(), TTAG: it.ttag, DataOffset: it.off, DataLength: it.n}
			p.Data = it.c.data[it.off : it.off+it.n]
			if it.last {
				p.Flags = nvmetcp.FlagLastPDU
			}
		} else {
			p.Type = nvmetcp.TypeCapsuleCmd
			p.SQE = it.c.sqe
			if it.inCap {
				p.Data = it.c.data
			}
		}
		if err := q.w.Queue(p); err != nil {
			q.fail(err)
			return false
		}
	}
	p.Data = nil
	clear(items)
	q.spare = items // only the writer loop touches spare
	if err := q.w.Flush(); err != nil {
		q.fail(err)
		return false
	}
	return true
}

func (q *queue) lookup(cid uint16) *cmd {
	q.mu.Lock()
	defer q.mu.Unlock()
	if int(cid) >= len(q.cmds) {
		return nil
	}
	return q.cmds[cid]
}

// complete ends command cid with cqe (nil for the SUCCESS flag) or err.
func (q *queue) complete(cid uint16, cqe *nvmetcp.CQE, err error) bool {
	q.mu.Lock()
	if int(cid) >= len(q.cmds) || q.cmds[cid] == nil {
		q.mu.Unlock()
		return false
	}
	c := q.cmds[cid]
	q.cmds[cid] = nil
	q.mu.Unlock()
	if cqe != nil {
		c.cqe = *cqe
	} else {
		c.cqe = nvmetcp.CQE{}
	}
	if c.err == nil {
		c.err = err
	}
	q.finish(c)
	return true
}

// finish hands a completed command to its waiter: exec's goroutine, or a
// submit's callback, which runs here, on the reader goroutine, once the
// CID is free again (so that the callback may submit the next command).
func (q *queue) finish(c *cmd) {
	cb := c.cb
	if cb == nil {
		c.done <- struct{}{}
		return
	}
	err := q.result(c)
	c.cb, c.data = nil, nil
	if !errors.Is(err, ErrDisconnected) {
		q.release(c.sqe.CID()) // the CID may still be in the controller's hands otherwise
	}
	cb(err)
}

// release frees cid: to the first waiting submitted command, else to free.
func (q *queue) release(cid uint16) {
	q.mu.Lock()
	if len(q.waiting) > 0 && q.err == nil {
		w := q.waiting[0]
		q.waiting[0] = waiter{}
		q.waiting = q.waiting[1:]
		wake := q.postLocked(cid, &w.sqe, w.data, w.read, w.inCap, w.cb)
		q.mu.Unlock()
		if wake {
			q.wake()
		}
		return
	}
	q.free <- cid // never blocks: free holds every CID
	q.mu.Unlock()
}

// result is a completed command's outcome: the transport's error, or a
// *StatusError for an NVMe status other than success.
func (q *queue) result(c *cmd) error {
	if c.err != nil {
		return c.err
	}
	if !c.cqe.Success() {
		return &StatusError{SCT: c.cqe.SCT(), SC: c.cqe.SC(), DNR: c.cqe.DNR()}
	}
	return nil
}

func (q *queue) readLoop() {
	defer close(q.readerDone)
	err := q.readPDUs()
	q.fail(err)
	<-q.writerDone
	q.mu.Lock()
	qerr := q.err
	var fl []*cmd
	for i, c := range q.cmds {
		if c != nil {
			fl = append(fl, c)
			q.cmds[i] = nil
		}
	}
	waiting := q.waiting
	q.waiting = nil
	q.mu.Unlock()
	for _, c := range fl {
		c.err = qerr
		q.finish(c)
	}
	for _, w := range waiting {
		w.cb(qerr)
	}
}

func (q *queue) readPDUs() error {
	for {
		p, err := q.r.ReadHeader()
		if err != nil {
			return err
		}
		switch p.Type {
		case nvmetcp.TypeCapsuleResp:
			cqe := p.CQE
			if !q.complete(cqe.CID(), &cqe, nil) {
				return fmt.Errorf("completion of unknown CID %d", cqe.CID())
			}
		case nvmetcp.TypeC2HData:
			d := p.C2HData
			flags := p.Flags
			c := q.lookup(d.CCCID)
			if c == nil || !c.read || uint64(d.DataOffset)+uint64(d.DataLength) > uint64(len(c.data)) {
				return fmt.Errorf("unexpected C2HData CID %d offset %d length %d", d.CCCID, d.DataOffset, d.DataLength)
			}
			if _, err := q.r.ReadData(c.data[d.DataOffset : d.DataOffset+d.DataLength]); err != nil {
				var pe *nvmetcp.ProtocolError
				if !errors.As(err, &pe) || pe.Fatal() {
					return err
				}
				c.err = fmt.Errorf("nvmetcp/host: %w", err) // the reader loop owns c until completion
			}
			if flags&nvmetcp.FlagSuccess != 0 {
				q.complete(d.CCCID, nil, nil)
			}
		case nvmetcp.TypeR2T:
			t := p.R2T
			c := q.lookup(t.CCCID)
			if c == nil || c.read || uint64(t.Offset)+uint64(t.Length) > uint64(len(c.data)) {
				return fmt.Errorf("unexpected R2T CID %d offset %d length %d", t.CCCID, t.Offset, t.Length)
			}
			for off := t.Offset; off < t.Offset+t.Length; {
				n := min(t.Offset+t.Length-off, q.maxH2C)
				q.enqueue(item{c: c, h2c: true, ttag: t.TTAG, off: off, n: n, last: off+n == t.Offset+t.Length})
				off += n
			}
		case nvmetcp.TypeC2HTermReq:
			return fmt.Errorf("controller terminated the connection: FES %v", p.TermReq.FES)
		default:
			return fmt.Errorf("unexpected %v", p.Type)
		}
	}
}

// exec runs one command: sqe (CID set here) with data, in-capsule when
// inCap. ctx bounds only the wait for a free CID: once sent, a command
// runs to completion or to the loss of the connection, since the
// controller may still write into data.
func (q *queue) exec(ctx context.Context, sqe *nvmetcp.SQE, data []byte, read, inCap bool) (nvmetcp.CQE, error) {
	var cid uint16
	select { // a free slot at once: no multi-way select
	case cid = <-q.free:
	default:
		var err error
		if cid, err = q.waitSlot(ctx); err != nil {
			return nvmetcp.CQE{}, err
		}
	}
	c, err := q.post(cid, sqe, data, read, inCap, nil)
	if err != nil {
		return nvmetcp.CQE{}, err
	}
	<-c.done
	cqe := c.cqe
	err = q.result(c)
	c.data = nil
	if errors.Is(err, ErrDisconnected) {
		return cqe, err // the CID may still be in the controller's hands; never reuse it
	}
	q.release(cid)
	return cqe, err
}

// submit sends a command without waiting, ever: done runs once with its
// outcome (as exec's error), on the queue's reader goroutine, so it must
// not block; it may submit again. Without a free CID the command waits in
// order for the next one released. An error (the queue is dead) means the
// command was not sent and done will not run.
func (q *queue) submit(sqe *nvmetcp.SQE, data []byte, read, inCap bool, done func(error)) error {
	q.mu.Lock()
	if q.err != nil {
		err := q.err
		q.mu.Unlock()
		return err
	}
	var wake bool
	select {
	case cid := <-q.free:
		wake = q.postLocked(cid, sqe, data, read, inCap, done)
	default:
		// Under mu, so that no release can slip between this look and
		// the append and leave the command waiting beside a free CID.
		q.waiting = append(q.waiting, waiter{sqe: *sqe, data: data, read: read, inCap: inCap, cb: done})
	}
	q.mu.Unlock()
	if wake {
		q.wake()
	}
	return nil
}

// post fills slot cid and queues the command for the writer loop; on a
// dead queue it frees the slot and returns the queue's error.
func (q *queue) post(cid uint16, sqe *nvmetcp.SQE, data []byte, read, inCap bool, cb func(error)) (*cmd, error) {
	q.mu.Lock()
	if q.err != nil {
		err := q.err
		q.mu.Unlock()
		q.free <- cid
		return nil, err
	}
	wake := q.postLocked(cid, sqe, data, read, inCap, cb)
	c := q.cmds[cid]
	q.mu.Unlock()
	if wake {
		q.wake()
	}
	return c, nil
}

// postLocked, with mu held on a live queue, fills slot cid and queues the
// command; it reports whether the caller must wake the writer loop.
func (q *queue) postLocked(cid uint16, sqe *nvmetcp.SQE, data []byte, read, inCap bool, cb func(error)) bool {
	c := &q.slots[cid]
	c.sqe = *sqe
	c.sqe.SetCID(cid)
	c.data, c.read, c.err, c.cb = data, read, nil, cb
	if inCap {
		c.sqe.SetSGL(nvmetcp.SGLInCapsule, 0, uint32(len(data)))
	} else {
		c.sqe.SetSGL(nvmetcp.SGLTransport, 0, uint32(len(data)))
	}
	q.cmds[cid] = c
	q.pending = append(q.pending, item{c: c, inCap: inCap})
	return q.wakeLocked()
}

// waitSlot waits for a free CID, the loss of the queue or the end of ctx.
func (q *queue) waitSlot(ctx context.Context) (uint16, error) {
	select {
	case cid := <-q.free:
		return cid, nil
	case <-q.dead:
		q.mu.Lock()
		err := q.err
		q.mu.Unlock()
		return 0, err
	case <-ctx.Done():
		return 0, ctx.Err()
	}
}
