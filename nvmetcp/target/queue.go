package target

import (
	"math/bits"
	"runtime"
	"sync"
	"time"

	"github.com/virtual-disk-array/vda/nvmetcp"
)

// The concurrency of one queue (connection):
//
//   - The reader (conn.serve's goroutine) reads and checks every PDU, runs
//     Fabrics and admin commands itself, in order, and for an I/O command
//     checks it, takes one of the queue's slots (backpressure: at most
//     SQSIZE+1 commands between their capsule and the write of their
//     completion), gets the command's data (in the capsule, or by R2T and
//     H2CData, received straight into the command's buffer) and dispatches
//     it: on a worker goroutine, or inline on the reader when the
//     namespace has proved fast (see dispatch).
//   - Workers execute I/O commands; several run at once and complete in
//     any order. Idle workers wait for the next command; there are at most
//     as many as commands were ever in flight at once.
//   - Whoever completes a command (a worker, the reader, the server's
//     Notify goroutine for an AER) queues its PDUs (C2HData, CapsuleResp,
//     R2T) into the connection's out Writer under wmu, without writing.
//   - The writer goroutine takes everything queued at once (swapping out
//     for an empty Writer, so that queueing goes on during the write) and
//     sends it with one writev; then it returns the commands' buffers to
//     the pool and frees their slots.
//
// A completion wakes the writer; the reader wakes it only when it has no
// more input buffered, so that the answers to a batch of commands read by
// one read system call go out in one write. When no worker runs (all
// commands inline) the reader writes itself instead (flushOut), when its
// buffer is empty or flushBatch PDUs are queued.

// ioBuf is a data buffer from the server's pool.
type ioBuf struct {
	b     []byte
	class uint8
}

const minBufClass = 9 // 512 bytes

func (s *server) getBuf(n int) *ioBuf {
	class := max(bits.Len(uint(n-1)), minBufClass)
	if v := s.bufs[class].Get(); v != nil {
		b := v.(*ioBuf)
		b.b = b.b[:n]
		return b
	}
	return &ioBuf{b: make([]byte, n, 1<<class), class: uint8(class)}
}

func (s *server) putBuf(b *ioBuf) {
	if b != nil {
		s.bufs[b.class].Put(b)
	}
}

// command is an I/O command between its dispatch and its completion.
type command struct {
	sqe      nvmetcp.SQE
	ns       *NS
	off, len uint64
	buf      *ioBuf // data buffer (read data, write data), released after the write
	data     []byte // the command's data: in buf, or a view of the reader's buffer (inline only)
	// R2T state of a write waiting for its data.
	r2to, r2tl, got uint32
	digestKO        bool
}

var commandPool = sync.Pool{New: func() any { return new(command) }}

func newCommand() *command { return commandPool.Get().(*command) }

func freeCommand(cm *command) {
	*cm = command{}
	commandPool.Put(cm)
}

// Execution: a connection executes I/O commands inline on the reader once
// fastStreak commands in a row took less than fastOp on workers, and goes
// back to workers as soon as one inline command takes longer than fastOp.
// A namespace whose I/O blocks (a remote bdev, a QoS limit) therefore runs
// many commands at once, and one that answers from memory saves the
// hand-off to a worker.
const (
	fastOp     = 20 * time.Microsecond
	fastStreak = 64
	fastSample = 8
)

// flushBatch is the number of queued PDUs at which the reader writes
// them even though more commands are buffered. A host that keeps QD
// commands in flight otherwise gets all QD answers in one write and sends
// its next QD commands in one write: the two ends take turns, each idle
// while the other works. Written in batches of flushBatch, the answers
// reach the host while the target still works on the rest, and the two
// ends overlap: at 4 KiB QD32 on two cores, 330k IOPS instead of 220k,
// with fewer CPU cycles per I/O on both ends (measured against 8, 12, 16
// and 20: 8 and 12 cost more system calls per I/O).
const flushBatch = 16

// acquire takes a slot of the queue for a command, waiting (with no new
// PDUs read meanwhile: TCP backpressure) while SQSIZE+1 commands are in
// flight. false means the connection is ending.
func (c *conn) acquire() bool {
	select {
	case c.slots <- struct{}{}:
		return true
	default:
	}
	c.kick() // completions waiting to be written free slots
	select {
	case c.slots <- struct{}{}:
		return true
	case <-c.ctx.Done():
		return false
	}
}

// dispatch executes an I/O command whose data is all there, inline or on
// a worker.
func (c *conn) dispatch(cm *command) {
	if !c.s.cfg.AsyncIO && c.fast.Load() >= fastStreak {
		// One command in fastSample is timed: reading the clock twice
		// per command cost more than the command (a malloc read).
		c.inlineN++
		if c.inlineN%fastSample != 0 {
			c.exec(cm, false)
			return
		}
		t0 := time.Now()
		c.exec(cm, false)
		if time.Since(t0) > fastOp {
			c.fast.Store(0)
		}
		return
	}
	if cm.data != nil && cm.buf == nil { // a view of the reader's buffer
		cm.buf = c.s.getBuf(len(cm.data))
		copy(cm.buf.b, cm.data)
		cm.data = cm.buf.b
	}
	c.running.Add(1)
	select {
	case c.work <- cm:
	default:
		c.workers.Add(1)
		go c.worker(cm)
	}
}

func (c *conn) worker(cm *command) {
	defer c.workers.Done()
	for {
		t0 := time.Now()
		c.exec(cm, true)
		if time.Since(t0) > fastOp {
			c.fast.Store(0)
		} else if c.fast.Load() < fastStreak {
			c.fast.Add(1)
		}
		select {
		case cm = <-c.work:
		case <-c.ctx.Done():
			return
		}
	}
}

// kick wakes the writer goroutine.
func (c *conn) kick() {
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// queueLocked adds a PDU to what the writer sends next; false when the
// connection no longer writes. Runs under wmu.
func (c *conn) queueLocked(p *nvmetcp.PDU) bool {
	if c.wclosed || c.final {
		return false
	}
	if err := c.out.Queue(p); err != nil {
		// An encoding error is the target's bug; the stream is intact.
		return false
	}
	c.outN.Add(1)
	return true
}

// holdLocked makes the writer release buf (and a slot) once what is
// queued is written.
func (c *conn) holdLocked(buf *ioBuf, slot bool) {
	if c.wclosed || c.final {
		c.s.putBuf(buf)
		if slot {
			<-c.slots
		}
		return
	}
	if buf != nil {
		c.outRel = append(c.outRel, buf)
	}
	if slot {
		c.outSlots++
	}
}

// writeLoop is the writer goroutine: each wake-up sends all that is
// queued in one write. It ends when wstop closes, after a last write, or
// when a write fails.
func (c *conn) writeLoop() {
	defer close(c.wdone)
	for {
		stop := false
		select {
		case <-c.wake:
			if c.running.Load() > 0 {
				// Workers that are about to complete (runnable, on this P
				// with GOMAXPROCS=1) join this write.
				runtime.Gosched()
			}
		case <-c.wstop:
			stop = true
		}
		wrote, err := c.flushOut(stop)
		if err != nil {
			c.closeWriter()
			c.close()
			return
		}
		if stop && !wrote {
			return
		}
	}
}

// flushOut writes everything queued with one writev, then releases the
// buffers and slots of what it wrote; wrote is false when nothing was
// queued. The writer goroutine calls it, and the reader too when no
// worker runs (every command executed inline): the reader is about to
// read again, and writing itself saves waking the writer. fmu keeps the
// writes in the order the PDUs were queued.
func (c *conn) flushOut(stop bool) (wrote bool, err error) {
	c.fmu.Lock()
	defer c.fmu.Unlock()
	c.wmu.Lock()
	if c.outN.Load() == 0 {
		c.wmu.Unlock()
		return false, nil
	}
	w := c.out
	c.spare.Encoder = w.Encoder
	c.out, c.spare = c.spare, w
	rel := c.rel
	c.rel, c.outRel = c.outRel, rel
	slots := c.outSlots
	c.outN.Store(0)
	c.outSlots = 0
	c.wmu.Unlock()
	if stop {
		c.nc.SetWriteDeadline(time.Now().Add(5 * time.Second))
	}
	err = c.spare.Flush()
	for i, b := range c.rel {
		c.s.putBuf(b)
		c.rel[i] = nil
	}
	c.rel = c.rel[:0]
	for range slots {
		<-c.slots
	}
	return true, err
}

// closeWriter stops queueing: what is queued and not written is dropped
// and its buffers and slots released.
func (c *conn) closeWriter() {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.wclosed {
		return
	}
	c.wclosed = true
	for i, b := range c.outRel {
		c.s.putBuf(b)
		c.outRel[i] = nil
	}
	c.outRel = c.outRel[:0]
	for range c.outSlots {
		<-c.slots
	}
	c.outSlots = 0
	c.outN.Store(0)
}

// close ends the connection from any goroutine: the reader's next read
// fails, commands in flight see their context cancelled. The socket
// closes first, so that no completion of a command the cancellation ends
// is written.
func (c *conn) close() {
	c.nc.Close()
	c.cancel()
}
