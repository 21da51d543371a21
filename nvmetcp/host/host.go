// Package host is a pure-Go NVMe/TCP initiator (host) built on the
// nvmetcp codec: it connects one controller of a subsystem over an admin
// queue and a few I/O queues, learns the subsystem's active namespaces
// (size, block size, NGUID, UUID, ANA group and state) and does I/O to any
// of them (Controller.Namespace); ReadAt, WriteAt, Flush and WriteZeroes on
// the Controller itself go to its first namespace.
//
// The controller's view of its namespaces is kept current: an
// Asynchronous Event Request is kept outstanding and a Namespace Attribute
// Changed or ANA Change notice re-reads the active namespace list and the
// ANA log page (Config.Poll adds a slow periodic re-read, for targets that
// send no notices). Done is closed when any queue's connection is lost:
// the Controller does not reconnect, its user dials again.
//
// Each queue is one TCP connection with a writer goroutine (which batches
// capsules and H2CData PDUs into one writev) and a reader goroutine (which
// matches completions, C2HData and R2T to commands by CID). Any number of
// goroutines may issue I/O at once; commands are spread over the I/O
// queues round robin. Submitting appends under the queue's lock and wakes
// the writer only when it is idle; the woken writer yields once before
// taking the batch, so that the submitters a burst of completions made
// runnable all queue first and share one writev (at 4 KiB QD32, some 20
// commands per writev instead of one). A steady stream of I/O allocates
// nothing.
package host

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/virtual-disk-array/vda/nvmetcp"
)

// Config configures Dial.
type Config struct {
	SubNQN, HostNQN string
	HostID          [16]byte
	// IOQueues is the number of I/O queues asked for; 0 means 1. The
	// controller may grant fewer.
	IOQueues int
	// QueueDepth is the number of commands in flight per I/O queue; 0
	// means 32, at most 128. The queue asks for at least 2 entries (an
	// I/O queue's SQSIZE, 0's based, is at least 1) and never has more
	// than QueueDepth commands outstanding. The admin queue has its own
	// depth (adminDepth).
	QueueDepth               int
	HeaderDigest, DataDigest bool
	// KeepAlive is the KATO; Keep Alive is sent every half of it. 0 means
	// 5 s, a negative value disables keep alive.
	KeepAlive time.Duration
	// Poll, if positive, re-reads the active namespace list and the ANA
	// log page at that interval, in addition to doing so on Asynchronous
	// Event notices.
	Poll time.Duration
	// OnEvent, if set, is called on the controller's event goroutine for
	// each completed Asynchronous Event Request, after the view was
	// refreshed (Namespaces reflects the event). It must not block long.
	OnEvent func(Event)
}

// Identity is what Identify Controller says about the controller.
type Identity struct {
	Model, Serial, Firmware, SubNQN string
	CNTLID                          uint16
	MDTS                            uint8
	IOCCSZ                          uint32 // 16-byte units
	NN                              uint32
	// CMIC bit 3: the controller reports ANA states.
	ANAReporting bool
	// OAES: the optional asynchronous events the controller supports.
	OAES uint32
}

// Controller is a connected NVMe/TCP controller and its namespace.
type Controller struct {
	admin   *queue
	ioq     []*queue
	next    atomic.Uint32
	id      Identity
	nsid    uint32
	bs      uint32
	size    uint64
	maxXfer int       // bytes per command
	icd     int       // largest in-capsule write
	firstNS Namespace // the data path of nsid, made once so that I/O allocates nothing

	stopKA chan struct{}
	kaDone chan struct{}
	once   sync.Once

	cfg Config
	// view is the current namespace view (*view); changes closes and
	// replaces viewCh.
	viewMu  sync.Mutex
	view    atomic.Pointer[view]
	viewCh  chan struct{}
	refresh sync.Mutex // one refresh at a time
	// done is closed when a queue's connection is lost or at Close.
	done     chan struct{}
	doneOnce sync.Once
	bg       sync.WaitGroup // the event and poll goroutines
}

// NVMe opcodes and Fabrics command types used here.
const (
	fcPropertySet = 0x00
	fcConnect     = 0x01
	fcPropertyGet = 0x04

	opGetLogPage  = 0x02
	opIdentify    = 0x06
	opSetFeatures = 0x09
	opAER         = 0x0C
	opKeepAlive   = 0x18

	opFlush       = 0x00
	opWrite       = 0x01
	opRead        = 0x02
	opWriteZeroes = 0x08
	opDSM         = 0x09

	propCAP  = 0x00
	propCC   = 0x14
	propCSTS = 0x1C

	featNumQueues = 0x07
	featAEC       = 0x0B

	aecNSAttr = 1 << 8  // Namespace Attribute Notices
	aecANA    = 1 << 11 // ANA Change Notices

	maxXferCap = 1 << 20

	// adminDepth is the admin queue's depth, whatever QueueDepth is: an
	// Asynchronous Event Request stays outstanding there beside Keep Alive
	// and the refreshes.
	adminDepth = 32
)

// Dial connects to the NVMe/TCP target at addr and brings up a controller
// of cfg.SubNQN with its I/O queues.
func Dial(ctx context.Context, addr string, cfg Config) (*Controller, error) {
	if cfg.IOQueues <= 0 {
		cfg.IOQueues = 1
	}
	if cfg.QueueDepth <= 0 {
		cfg.QueueDepth = 32
	}
	cfg.QueueDepth = min(cfg.QueueDepth, 128)
	if cfg.KeepAlive == 0 {
		cfg.KeepAlive = 5 * time.Second
	}
	var dg nvmetcp.Digests
	if cfg.HeaderDigest {
		dg |= nvmetcp.HeaderDigest
	}
	if cfg.DataDigest {
		dg |= nvmetcp.DataDigest
	}
	admin, err := dialQueue(ctx, addr, 0, adminDepth, dg, 0)
	if err != nil {
		return nil, err
	}
	c := &Controller{admin: admin, cfg: cfg, viewCh: make(chan struct{}), done: make(chan struct{})}
	c.view.Store(&view{})
	if err := c.setup(ctx, addr, cfg, dg); err != nil {
		c.closeQueues()
		return nil, err
	}
	c.stopKA = make(chan struct{})
	if cfg.KeepAlive > 0 {
		c.kaDone = make(chan struct{})
		go c.keepAlive(cfg.KeepAlive / 2)
	}
	for _, q := range append([]*queue{c.admin}, c.ioq...) {
		go func() {
			select {
			case <-q.dead:
				c.lost()
			case <-c.done:
			}
		}()
	}
	c.bg.Add(1)
	go c.events()
	if cfg.Poll > 0 {
		c.bg.Add(1)
		go c.poll(cfg.Poll)
	}
	return c, nil
}

func connectData(cfg Config, cntlid uint16) []byte {
	d := make([]byte, 1024)
	copy(d[0:16], cfg.HostID[:])
	binary.LittleEndian.PutUint16(d[16:], cntlid)
	copy(d[256:511], cfg.SubNQN)
	copy(d[512:767], cfg.HostNQN)
	return d
}

func connect(ctx context.Context, q *queue, cfg Config, cntlid uint16, kato time.Duration) (uint16, error) {
	var sqe nvmetcp.SQE
	sqe.SetOpcode(nvmetcp.OpcodeFabrics)
	sqe[4] = fcConnect
	sqe.SetCDW(10, uint32(q.qid)<<16)
	// SQSIZE is 0's based and at least 1: ask for at least 2 entries; the
	// queue's own depth caps what is outstanding.
	sqe.SetCDW(11, uint32(max(q.depth, 2)-1))
	if kato > 0 {
		sqe.SetCDW(12, uint32(kato/time.Millisecond))
	}
	cqe, err := q.exec(ctx, &sqe, connectData(cfg, cntlid), false, true)
	if err != nil {
		return 0, fmt.Errorf("nvmetcp/host: Connect queue %d: %w", q.qid, err)
	}
	return uint16(cqe.DW0()), nil
}

func (c *Controller) property(ctx context.Context, set bool, off uint32, size8 bool, v uint64) (uint64, error) {
	var sqe nvmetcp.SQE
	sqe.SetOpcode(nvmetcp.OpcodeFabrics)
	sqe[4] = fcPropertyGet
	if set {
		sqe[4] = fcPropertySet
		sqe.SetCDW(12, uint32(v))
		sqe.SetCDW(13, uint32(v>>32))
	}
	if size8 {
		sqe.SetCDW(10, 1)
	}
	sqe.SetCDW(11, off)
	cqe, err := c.admin.exec(ctx, &sqe, nil, false, false)
	if err != nil {
		return 0, fmt.Errorf("nvmetcp/host: property %#x: %w", off, err)
	}
	return cqe.Result(), nil
}

func (c *Controller) identify(ctx context.Context, cns uint8, nsid uint32, buf []byte) error {
	var sqe nvmetcp.SQE
	sqe.SetOpcode(opIdentify)
	sqe.SetNSID(nsid)
	sqe.SetCDW(10, uint32(cns))
	if _, err := c.admin.exec(ctx, &sqe, buf, true, false); err != nil {
		return fmt.Errorf("nvmetcp/host: Identify CNS %d: %w", cns, err)
	}
	return nil
}

func str(b []byte) string {
	if i := bytes.IndexByte(b, 0); i >= 0 {
		b = b[:i]
	}
	return string(bytes.TrimRight(b, " "))
}

func (c *Controller) setup(ctx context.Context, addr string, cfg Config, dg nvmetcp.Digests) error {
	cntlid, err := connect(ctx, c.admin, cfg, 0xFFFF, max(cfg.KeepAlive, 0))
	if err != nil {
		return err
	}
	capv, err := c.property(ctx, false, propCAP, true, 0)
	if err != nil {
		return err
	}
	mps := 4096 << ((capv >> 48) & 0xF) // CAP.MPSMIN
	to := time.Duration((capv>>24)&0xFF) * 500 * time.Millisecond
	// CC: EN, IOSQES 6 (64 B), IOCQES 4 (16 B), MPS = MPSMIN.
	cc := uint64(1 | 6<<16 | 4<<20 | ((capv>>48)&0xF)<<7)
	if _, err := c.property(ctx, true, propCC, false, cc); err != nil {
		return err
	}
	deadline := time.Now().Add(max(to, time.Second))
	for {
		csts, err := c.property(ctx, false, propCSTS, false, 0)
		if err != nil {
			return err
		}
		if csts&2 != 0 {
			return errors.New("nvmetcp/host: controller fatal status (CSTS.CFS)")
		}
		if csts&1 != 0 {
			break
		}
		if time.Now().After(deadline) {
			return errors.New("nvmetcp/host: controller not ready (CSTS.RDY)")
		}
		time.Sleep(10 * time.Millisecond)
	}

	buf := make([]byte, nvmetcp.IdentifyLen)
	if err := c.identify(ctx, nvmetcp.CNSController, 0, buf); err != nil {
		return err
	}
	le := binary.LittleEndian
	c.id = Identity{
		Serial: str(buf[4:24]), Model: str(buf[24:64]), Firmware: str(buf[64:72]),
		MDTS: buf[77], CNTLID: le.Uint16(buf[78:]), NN: le.Uint32(buf[516:]),
		SubNQN: str(buf[768:1024]), IOCCSZ: le.Uint32(buf[1792:]),
		ANAReporting: buf[76]&0x08 != 0, OAES: le.Uint32(buf[92:]),
	}
	if c.id.CNTLID == 0 {
		c.id.CNTLID = cntlid
	}
	c.maxXfer = maxXferCap
	if c.id.MDTS != 0 && c.id.MDTS < 20 {
		c.maxXfer = min(maxXferCap, mps<<c.id.MDTS)
	}
	c.icd = max(int(c.id.IOCCSZ)*16-64, 0)

	if err := c.Refresh(ctx); err != nil {
		return err
	}
	if v := c.view.Load(); len(v.list) > 0 {
		first := v.list[0]
		c.nsid, c.bs, c.size = first.NSID, first.BlockSize, first.Blocks*uint64(first.BlockSize)
	}
	c.firstNS = Namespace{c: c, nsid: c.nsid}
	// Namespace Attribute Changed and ANA Change notices, when the
	// controller sends them; a controller that does not know the feature
	// is no error.
	var aec nvmetcp.SQE
	aec.SetOpcode(opSetFeatures)
	aec.SetCDW(10, featAEC)
	aec.SetCDW(11, aecNSAttr|aecANA)
	if _, err := c.admin.exec(ctx, &aec, nil, false, false); err != nil && errors.Is(err, ErrDisconnected) {
		return err
	}

	var sqe nvmetcp.SQE
	sqe.SetOpcode(opSetFeatures)
	sqe.SetCDW(10, featNumQueues)
	n := uint32(cfg.IOQueues - 1)
	sqe.SetCDW(11, n|n<<16)
	cqe, err := c.admin.exec(ctx, &sqe, nil, false, false)
	if err != nil {
		return fmt.Errorf("nvmetcp/host: Set Features Number of Queues: %w", err)
	}
	granted := int(min(cqe.DW0()&0xFFFF, cqe.DW0()>>16)) + 1

	nq := min(cfg.IOQueues, granted)
	for i := 1; i <= nq; i++ {
		q, err := dialQueue(ctx, addr, uint16(i), cfg.QueueDepth, dg, c.maxXfer)
		if err != nil {
			return err
		}
		c.ioq = append(c.ioq, q)
		if _, err := connect(ctx, q, cfg, c.id.CNTLID, 0); err != nil {
			return err
		}
	}
	return nil
}

func (c *Controller) keepAlive(every time.Duration) {
	defer close(c.kaDone)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-c.stopKA:
			return
		case <-c.admin.dead:
			return
		case <-t.C:
		}
		var sqe nvmetcp.SQE
		sqe.SetOpcode(opKeepAlive)
		if _, err := c.admin.exec(context.Background(), &sqe, nil, false, false); err != nil {
			if errors.Is(err, ErrDisconnected) {
				return
			}
		}
	}
}

func (c *Controller) closeQueues() {
	for _, q := range c.ioq {
		q.close()
	}
	c.admin.close()
}

// Close stops keep alive and closes every queue; commands still in flight
// fail with ErrDisconnected.
func (c *Controller) Close() error {
	c.once.Do(func() {
		close(c.stopKA)
		c.closeQueues() // ends a Keep Alive or an AER in flight
		if c.kaDone != nil {
			<-c.kaDone
		}
		c.lost()
		c.bg.Wait()
	})
	return nil
}

// lost closes Done once, and every queue: one lost connection is the loss
// of the controller.
func (c *Controller) lost() {
	c.doneOnce.Do(func() {
		close(c.done)
		go c.closeQueues()
	})
}

// Done is closed when the controller is lost (a queue's connection closed
// or failed, the keep-alive timer of the target fired) or closed. I/O then
// fails with ErrDisconnected.
func (c *Controller) Done() <-chan struct{} { return c.done }

// BlockSize returns the first namespace's logical block size in bytes.
func (c *Controller) BlockSize() uint32 { return c.bs }

// Size returns the first namespace's size in bytes, as of Dial.
func (c *Controller) Size() uint64 { return c.size }

// NSID returns the namespace the Controller's own ReadAt, WriteAt, Flush
// and WriteZeroes go to: the first active one at Dial (0 if none).
func (c *Controller) NSID() uint32 { return c.nsid }

// Identify returns what Identify Controller reported.
func (c *Controller) Identify() Identity { return c.id }

// IOQueues returns the number of I/O queues connected.
func (c *Controller) IOQueues() int { return len(c.ioq) }

// MaxTransfer returns the most bytes one command moves; larger I/O is split.
func (c *Controller) MaxTransfer() int { return c.maxXfer }

func (c *Controller) pick() *queue {
	return c.ioq[int(c.next.Add(1))%len(c.ioq)]
}

// pickFree is pick for a submission: from the next queue in turn, the
// first with a free command slot, else the next one (where the command
// waits for a slot).
func (c *Controller) pickFree() *queue {
	start := int(c.next.Add(1))
	for i := range c.ioq {
		if q := c.ioq[(start+i)%len(c.ioq)]; len(q.free) > 0 {
			return q
		}
	}
	return c.ioq[start%len(c.ioq)]
}

// SubmitRead starts a read from the first namespace; see
// Namespace.SubmitRead.
func (c *Controller) SubmitRead(p []byte, off uint64, done func(error)) error {
	return c.first().SubmitRead(p, off, done)
}

// SubmitWrite starts a write to the first namespace; see
// Namespace.SubmitWrite.
func (c *Controller) SubmitWrite(p []byte, off uint64, done func(error)) error {
	return c.first().SubmitWrite(p, off, done)
}

// ReadAt reads len(p) bytes at byte offset off of the first namespace;
// both are multiples of the block size. A context ends only the wait for a
// free command slot.
func (c *Controller) ReadAt(ctx context.Context, p []byte, off uint64) error {
	return c.first().ReadAt(ctx, p, off)
}

// WriteAt writes p at byte offset off of the first namespace; both are
// multiples of the block size. p must not change until WriteAt returns.
func (c *Controller) WriteAt(ctx context.Context, p []byte, off uint64) error {
	return c.first().WriteAt(ctx, p, off)
}

// Flush commits the first namespace's volatile write cache.
func (c *Controller) Flush(ctx context.Context) error { return c.first().Flush(ctx) }

// WriteZeroes zeroes n bytes at byte offset off of the first namespace.
func (c *Controller) WriteZeroes(ctx context.Context, off, n uint64) error {
	return c.first().WriteZeroes(ctx, off, n)
}

func (c *Controller) first() *Namespace { return &c.firstNS }
