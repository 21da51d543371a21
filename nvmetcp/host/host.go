// Package host is a pure-Go NVMe/TCP initiator (host) built on the
// nvmetcp codec: it connects one controller of a subsystem over an admin
// queue and a few I/O queues and reads and writes its first namespace.
//
// Each queue is one TCP connection with a writer goroutine (which batches
// capsules and H2CData PDUs into one writev) and a reader goroutine (which
// matches completions, C2HData and R2T to commands by CID). Any number of
// goroutines may issue I/O at once; commands are spread over the I/O
// queues round robin.
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
	// QueueDepth is the number of commands in flight per queue; 0 means 32.
	QueueDepth               int
	HeaderDigest, DataDigest bool
	// KeepAlive is the KATO; Keep Alive is sent every half of it. 0 means
	// 5 s, a negative value disables keep alive.
	KeepAlive time.Duration
}

// Identity is what Identify Controller says about the controller.
type Identity struct {
	Model, Serial, Firmware, SubNQN string
	CNTLID                          uint16
	MDTS                            uint8
	IOCCSZ                          uint32 // 16-byte units
	NN                              uint32
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
	maxXfer int // bytes per command
	icd     int // largest in-capsule write

	stopKA chan struct{}
	kaDone chan struct{}
	once   sync.Once
}

// NVMe opcodes and Fabrics command types used here.
const (
	fcPropertySet = 0x00
	fcConnect     = 0x01
	fcPropertyGet = 0x04

	opIdentify    = 0x06
	opSetFeatures = 0x09
	opKeepAlive   = 0x18

	opFlush       = 0x00
	opWrite       = 0x01
	opRead        = 0x02
	opWriteZeroes = 0x08

	propCAP  = 0x00
	propCC   = 0x14
	propCSTS = 0x1C

	featNumQueues = 0x07

	maxXferCap = 1 << 20
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
	admin, err := dialQueue(ctx, addr, 0, cfg.QueueDepth, dg, 0)
	if err != nil {
		return nil, err
	}
	c := &Controller{admin: admin}
	if err := c.setup(ctx, addr, cfg, dg); err != nil {
		c.closeQueues()
		return nil, err
	}
	if cfg.KeepAlive > 0 {
		c.stopKA, c.kaDone = make(chan struct{}), make(chan struct{})
		go c.keepAlive(cfg.KeepAlive / 2)
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
	sqe.SetCDW(11, uint32(cap(q.free)-1))
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
	}
	if c.id.CNTLID == 0 {
		c.id.CNTLID = cntlid
	}
	c.maxXfer = maxXferCap
	if c.id.MDTS != 0 && c.id.MDTS < 20 {
		c.maxXfer = min(maxXferCap, mps<<c.id.MDTS)
	}
	c.icd = max(int(c.id.IOCCSZ)*16-64, 0)

	if err := c.identify(ctx, nvmetcp.CNSActiveNamespaces, 0, buf); err != nil {
		return err
	}
	c.nsid = le.Uint32(buf)
	if c.nsid == 0 {
		return errors.New("nvmetcp/host: subsystem has no namespace")
	}
	if err := c.identify(ctx, nvmetcp.CNSNamespace, c.nsid, buf); err != nil {
		return err
	}
	nsze := le.Uint64(buf[0:])
	fmtIdx := int(buf[26] & 0xF)
	lbads := buf[128+4*fmtIdx+2]
	if lbads < 9 || lbads > 16 {
		return fmt.Errorf("nvmetcp/host: unsupported LBADS %d", lbads)
	}
	c.bs = 1 << lbads
	c.size = nsze * uint64(c.bs)
	// NLB is 16 bits: keep a command within 65536 blocks.
	c.maxXfer = min(c.maxXfer, 65536*int(c.bs))

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
		if c.stopKA != nil {
			close(c.stopKA)
			<-c.kaDone
		}
		c.closeQueues()
	})
	return nil
}

// BlockSize returns the namespace's logical block size in bytes.
func (c *Controller) BlockSize() uint32 { return c.bs }

// Size returns the namespace's size in bytes.
func (c *Controller) Size() uint64 { return c.size }

// NSID returns the namespace the Controller does I/O to.
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

func (c *Controller) check(off uint64, n uint64) error {
	bs := uint64(c.bs)
	if off%bs != 0 || n%bs != 0 {
		return fmt.Errorf("nvmetcp/host: offset %d or length %d not a multiple of the block size %d", off, n, bs)
	}
	if off > c.size || n > c.size-off {
		return fmt.Errorf("nvmetcp/host: range %d+%d beyond the namespace size %d", off, n, c.size)
	}
	return nil
}

// rw issues one Read or Write of at most maxXfer bytes.
func (c *Controller) rw(ctx context.Context, op uint8, p []byte, off uint64) error {
	var sqe nvmetcp.SQE
	sqe.SetOpcode(op)
	sqe.SetNSID(c.nsid)
	slba := off / uint64(c.bs)
	sqe.SetCDW(10, uint32(slba))
	sqe.SetCDW(11, uint32(slba>>32))
	sqe.SetCDW(12, uint32(len(p)/int(c.bs)-1))
	read := op == opRead
	_, err := c.pick().exec(ctx, &sqe, p, read, !read && len(p) <= c.icd)
	return err
}

// split runs fn on chunks of at most maxXfer bytes, concurrently.
func (c *Controller) split(ctx context.Context, op uint8, p []byte, off uint64) error {
	if err := c.check(off, uint64(len(p))); err != nil {
		return err
	}
	if len(p) == 0 {
		return nil
	}
	if len(p) <= c.maxXfer {
		return c.rw(ctx, op, p, off)
	}
	var wg sync.WaitGroup
	errs := make([]error, (len(p)+c.maxXfer-1)/c.maxXfer)
	for i := range errs {
		s := i * c.maxXfer
		e := min(s+c.maxXfer, len(p))
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = c.rw(ctx, op, p[s:e], off+uint64(s))
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// ReadAt reads len(p) bytes at byte offset off; both are multiples of the
// block size. A context ends only the wait for a free command slot.
func (c *Controller) ReadAt(ctx context.Context, p []byte, off uint64) error {
	return c.split(ctx, opRead, p, off)
}

// WriteAt writes p at byte offset off; both are multiples of the block
// size. p must not change until WriteAt returns.
func (c *Controller) WriteAt(ctx context.Context, p []byte, off uint64) error {
	return c.split(ctx, opWrite, p, off)
}

// Flush commits the namespace's volatile write cache.
func (c *Controller) Flush(ctx context.Context) error {
	var sqe nvmetcp.SQE
	sqe.SetOpcode(opFlush)
	sqe.SetNSID(c.nsid)
	_, err := c.pick().exec(ctx, &sqe, nil, false, false)
	return err
}

// WriteZeroes zeroes n bytes at byte offset off.
func (c *Controller) WriteZeroes(ctx context.Context, off, n uint64) error {
	if err := c.check(off, n); err != nil {
		return err
	}
	bs := uint64(c.bs)
	for n > 0 {
		k := min(n, 65536*bs)
		var sqe nvmetcp.SQE
		sqe.SetOpcode(opWriteZeroes)
		sqe.SetNSID(c.nsid)
		slba := off / bs
		sqe.SetCDW(10, uint32(slba))
		sqe.SetCDW(11, uint32(slba>>32))
		sqe.SetCDW(12, uint32(k/bs-1))
		if _, err := c.pick().exec(ctx, &sqe, nil, false, false); err != nil {
			return err
		}
		off += k
		n -= k
	}
	return nil
}
