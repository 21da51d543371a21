package host

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/virtual-disk-array/vda/nvmetcp"
)

// ErrNoNamespace is wrapped by the error of I/O to a namespace that is not
// (or no longer) active on the controller.
var ErrNoNamespace = errors.New("nvmetcp/host: no such namespace")

// NamespaceInfo is what the controller reports of one active namespace.
type NamespaceInfo struct {
	NSID      uint32
	BlockSize uint32 // bytes
	Blocks    uint64 // NSZE
	NGUID     [16]byte
	UUID      [16]byte
	// ANAGroup is the namespace's ANA group (0 without ANA reporting) and
	// ANAState that group's state in the ANA log page (0 without ANA
	// reporting).
	ANAGroup uint32
	ANAState nvmetcp.ANAState
}

// ANAGroupState is one group of the ANA log page.
type ANAGroupState struct {
	ID          uint32
	ChangeCount uint64
	State       nvmetcp.ANAState
	NSIDs       []uint32
}

// Event is one completed Asynchronous Event Request (its CQE DW0).
type Event struct {
	Type    uint8 // 0 error, 1 SMART/health, 2 notice, 6 I/O command set specific, 7 vendor
	Info    uint8 // for notices: 0 Namespace Attribute Changed, 3 ANA Change, ...
	LogPage uint8 // the log page to read to clear the event
}

// Event types and notice infos a host acts on.
const (
	EventTypeNotice   = 2
	NoticeNSAttribute = 0x00
	NoticeANAChange   = 0x03
)

// view is a snapshot of the active namespaces, in NSID order.
type view struct {
	version uint64
	list    []NamespaceInfo
}

func (v *view) find(nsid uint32) (NamespaceInfo, bool) {
	i, ok := slices.BinarySearchFunc(v.list, nsid, func(n NamespaceInfo, id uint32) int { return int(int64(n.NSID) - int64(id)) })
	if !ok {
		return NamespaceInfo{}, false
	}
	return v.list[i], true
}

// Namespaces returns the active namespaces as last read, in NSID order.
func (c *Controller) Namespaces() []NamespaceInfo {
	return slices.Clone(c.view.Load().list)
}

// Version counts the changes of Namespaces, from 1 after Dial.
func (c *Controller) Version() uint64 { return c.view.Load().version }

// Changed returns a channel closed at the next change of Namespaces (or
// when the controller is lost: select on Done too).
func (c *Controller) Changed() <-chan struct{} {
	c.viewMu.Lock()
	defer c.viewMu.Unlock()
	return c.viewCh
}

// Refresh re-reads the active namespace list, each namespace's identify
// data and descriptors, and the ANA log page, and publishes the result if
// it differs from the current view.
func (c *Controller) Refresh(ctx context.Context) error {
	c.refresh.Lock()
	defer c.refresh.Unlock()
	buf := make([]byte, nvmetcp.IdentifyLen)
	var nsids []uint32
	for after := uint32(0); ; {
		if err := c.identifyNS(ctx, nvmetcp.CNSActiveNamespaces, after, buf); err != nil {
			return err
		}
		n := 0
		for ; n < len(buf)/4; n++ {
			id := binary.LittleEndian.Uint32(buf[4*n:])
			if id == 0 {
				break
			}
			nsids = append(nsids, id)
			after = id
		}
		if n < len(buf)/4 {
			break
		}
	}
	list := make([]NamespaceInfo, 0, len(nsids))
	for _, id := range nsids {
		info, err := c.identifyNamespace(ctx, id, buf)
		if errors.Is(err, ErrNoNamespace) {
			continue // went away meanwhile
		}
		if err != nil {
			return err
		}
		list = append(list, info)
	}
	if c.id.ANAReporting {
		groups, err := c.ANALog(ctx)
		if err != nil {
			return err
		}
		for i := range list {
			for _, g := range groups {
				if g.ID == list[i].ANAGroup {
					list[i].ANAState = g.State
				}
			}
		}
	}
	c.publish(list)
	return nil
}

func (c *Controller) publish(list []NamespaceInfo) {
	c.viewMu.Lock()
	defer c.viewMu.Unlock()
	old := c.view.Load()
	if old.version > 0 && slices.Equal(old.list, list) {
		return
	}
	c.view.Store(&view{version: old.version + 1, list: list})
	close(c.viewCh)
	c.viewCh = make(chan struct{})
}

// identifyNS is Identify with an Invalid Namespace status turned into
// ErrNoNamespace.
func (c *Controller) identifyNS(ctx context.Context, cns uint8, nsid uint32, buf []byte) error {
	err := c.identify(ctx, cns, nsid, buf)
	var se *StatusError
	if errors.As(err, &se) && se.SCT == 0 && se.SC == 0x0B {
		return fmt.Errorf("nsid %d: %w", nsid, ErrNoNamespace)
	}
	return err
}

func (c *Controller) identifyNamespace(ctx context.Context, nsid uint32, buf []byte) (NamespaceInfo, error) {
	le := binary.LittleEndian
	if err := c.identifyNS(ctx, nvmetcp.CNSNamespace, nsid, buf); err != nil {
		return NamespaceInfo{}, err
	}
	info := NamespaceInfo{NSID: nsid, Blocks: le.Uint64(buf[0:]), ANAGroup: le.Uint32(buf[92:])}
	copy(info.NGUID[:], buf[104:120])
	fmtIdx := int(buf[26] & 0xF)
	lbads := buf[128+4*fmtIdx+2]
	if lbads < 9 || lbads > 16 {
		return info, fmt.Errorf("nvmetcp/host: namespace %d: unsupported LBADS %d", nsid, lbads)
	}
	info.BlockSize = 1 << lbads
	if err := c.identifyNS(ctx, nvmetcp.CNSNamespaceDescriptors, nsid, buf); err != nil {
		var se *StatusError
		if errors.As(err, &se) {
			return info, nil // descriptors not supported: no UUID
		}
		return info, err
	}
	for off := 0; off+4 <= len(buf); {
		nidt, nidl := buf[off], int(buf[off+1])
		if nidt == 0 || off+4+nidl > len(buf) {
			break
		}
		if nidt == nvmetcp.NIDTUUID && nidl == 16 {
			copy(info.UUID[:], buf[off+4:])
		}
		if nidt == nvmetcp.NIDTNGUID && nidl == 16 && info.NGUID == [16]byte{} {
			copy(info.NGUID[:], buf[off+4:])
		}
		off += 4 + nidl
	}
	return info, nil
}

// getLogPage reads len(buf) bytes (a multiple of 4) of log page lid from
// offset off.
func (c *Controller) getLogPage(ctx context.Context, lid uint8, off uint64, buf []byte) error {
	var sqe nvmetcp.SQE
	sqe.SetOpcode(opGetLogPage)
	sqe.SetNSID(0xFFFFFFFF)
	numd := uint32(len(buf)/4 - 1)
	sqe.SetCDW(10, uint32(lid)|numd<<16)
	sqe.SetCDW(11, numd>>16)
	sqe.SetCDW(12, uint32(off))
	sqe.SetCDW(13, uint32(off>>32))
	if _, err := c.admin.exec(ctx, &sqe, buf, true, false); err != nil {
		return fmt.Errorf("nvmetcp/host: Get Log Page %#x: %w", lid, err)
	}
	return nil
}

// ANALog reads the Asymmetric Namespace Access log page.
func (c *Controller) ANALog(ctx context.Context) ([]ANAGroupState, error) {
	buf := make([]byte, 4096)
	if err := c.getLogPage(ctx, nvmetcp.LogANA, 0, buf); err != nil {
		return nil, err
	}
	le := binary.LittleEndian
	ngrps := int(le.Uint16(buf[8:]))
	// The page's length, from the descriptors' NSID counts.
	need := func() int {
		pos := nvmetcp.ANALogHeaderLen
		for range ngrps {
			if pos+nvmetcp.ANAGroupDescLen > len(buf) {
				return pos + nvmetcp.ANAGroupDescLen
			}
			pos += nvmetcp.ANAGroupDescLen + 4*int(le.Uint32(buf[pos+4:]))
		}
		return pos
	}
	for n := need(); n > len(buf); n = need() {
		buf = make([]byte, (n+4095)&^4095)
		if err := c.getLogPage(ctx, nvmetcp.LogANA, 0, buf); err != nil {
			return nil, err
		}
		ngrps = int(le.Uint16(buf[8:]))
	}
	groups := make([]ANAGroupState, 0, ngrps)
	pos := nvmetcp.ANALogHeaderLen
	for range ngrps {
		d := buf[pos:]
		g := ANAGroupState{ID: le.Uint32(d[0:]), ChangeCount: le.Uint64(d[8:]), State: nvmetcp.ANAState(d[16] & 0xF)}
		nn := int(le.Uint32(d[4:]))
		pos += nvmetcp.ANAGroupDescLen
		for i := range nn {
			g.NSIDs = append(g.NSIDs, le.Uint32(buf[pos+4*i:]))
		}
		pos += 4 * nn
		groups = append(groups, g)
	}
	return groups, nil
}

// events keeps one Asynchronous Event Request outstanding; a completed
// one is acknowledged by reading its log page, then the view is refreshed
// and OnEvent called. It ends with the controller, or if the controller
// refuses AERs.
func (c *Controller) events() {
	defer c.bg.Done()
	ctx := context.Background()
	for {
		var sqe nvmetcp.SQE
		sqe.SetOpcode(opAER)
		cqe, err := c.admin.exec(ctx, &sqe, nil, false, false)
		if err != nil {
			return // lost, closed, or AERs not supported
		}
		dw0 := cqe.DW0()
		ev := Event{Type: uint8(dw0 & 7), Info: uint8(dw0 >> 8), LogPage: uint8(dw0 >> 16)}
		if ev.LogPage != 0 {
			buf := make([]byte, 4096)
			if ev.LogPage == nvmetcp.LogDiscovery {
				buf = buf[:nvmetcp.DiscoveryLogHeaderLen]
			}
			if err := c.getLogPage(ctx, ev.LogPage, 0, buf); errors.Is(err, ErrDisconnected) {
				return
			}
		}
		if err := c.Refresh(ctx); errors.Is(err, ErrDisconnected) {
			return
		}
		if c.cfg.OnEvent != nil {
			c.cfg.OnEvent(ev)
		}
	}
}

// poll refreshes the view every interval until the controller ends.
func (c *Controller) poll(every time.Duration) {
	defer c.bg.Done()
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-c.done:
			return
		case <-t.C:
		}
		if err := c.Refresh(context.Background()); errors.Is(err, ErrDisconnected) {
			return
		}
	}
}

// Namespace returns the data path of namespace nsid. It need not be active
// now: each I/O checks against the current view and fails with
// ErrNoNamespace if the namespace is not there.
func (c *Controller) Namespace(nsid uint32) *Namespace { return &Namespace{c: c, nsid: nsid} }

// Namespace is the data path of one namespace of a Controller. Offsets
// and lengths are in bytes, multiples of the namespace's block size. Any
// number of goroutines may use it at once.
type Namespace struct {
	c    *Controller
	nsid uint32
}

// NSID is the namespace's identifier.
func (n *Namespace) NSID() uint32 { return n.nsid }

// Info returns the namespace as last read, and whether it is active.
func (n *Namespace) Info() (NamespaceInfo, bool) { return n.c.view.Load().find(n.nsid) }

func (n *Namespace) check(off, size uint64) (NamespaceInfo, error) {
	info, ok := n.Info()
	if !ok || n.nsid == 0 {
		return info, fmt.Errorf("nsid %d: %w", n.nsid, ErrNoNamespace)
	}
	bs := uint64(info.BlockSize)
	if off%bs != 0 || size%bs != 0 {
		return info, fmt.Errorf("nvmetcp/host: offset %d or length %d not a multiple of the block size %d", off, size, bs)
	}
	total := info.Blocks * bs
	if off > total || size > total-off {
		return info, fmt.Errorf("nvmetcp/host: range %d+%d beyond the namespace size %d", off, size, total)
	}
	return info, nil
}

// rwSQE is the command of a Read or Write of p at byte offset off.
func (n *Namespace) rwSQE(op uint8, bs uint32, p []byte, off uint64) nvmetcp.SQE {
	var sqe nvmetcp.SQE
	sqe.SetOpcode(op)
	sqe.SetNSID(n.nsid)
	slba := off / uint64(bs)
	sqe.SetCDW(10, uint32(slba))
	sqe.SetCDW(11, uint32(slba>>32))
	sqe.SetCDW(12, uint32(len(p)/int(bs)-1))
	return sqe
}

// rw issues one Read or Write.
func (n *Namespace) rw(ctx context.Context, op uint8, bs uint32, p []byte, off uint64) error {
	sqe := n.rwSQE(op, bs, p, off)
	read := op == opRead
	_, err := n.c.pick().exec(ctx, &sqe, p, read, !read && len(p) <= n.c.icd)
	return err
}

// split runs rw on chunks of at most the transfer limit, concurrently.
func (n *Namespace) split(ctx context.Context, op uint8, p []byte, off uint64) error {
	info, err := n.check(off, uint64(len(p)))
	if err != nil {
		return err
	}
	if len(p) == 0 {
		return nil
	}
	// NLB is 16 bits: keep a command within 65536 blocks.
	step := min(n.c.maxXfer, 65536*int(info.BlockSize))
	if len(p) <= step {
		return n.rw(ctx, op, info.BlockSize, p, off)
	}
	var wg sync.WaitGroup
	errs := make([]error, (len(p)+step-1)/step)
	for i := range errs {
		s := i * step
		e := min(s+step, len(p))
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = n.rw(ctx, op, info.BlockSize, p[s:e], off+uint64(s))
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// SubmitRead starts reading len(p) bytes at byte offset off and returns
// at once, never waiting: done runs once with the outcome (as ReadAt's
// error) on the reader goroutine of the queue the command went to. done
// must not block, but it may submit the next command, as a load
// generator or a pipeline does. This is the submission path without a
// goroutine per command in flight: with no free command slot the command
// waits, in order, for the next one; the caller bounds how many it keeps
// in flight. len(p) is at most MaxTransfer. An error (a bad range, a lost
// connection) means nothing was sent and done will not run.
func (n *Namespace) SubmitRead(p []byte, off uint64, done func(error)) error {
	return n.submit(opRead, p, off, done)
}

// SubmitWrite starts writing p at byte offset off; see SubmitRead. p must
// not change until done runs.
func (n *Namespace) SubmitWrite(p []byte, off uint64, done func(error)) error {
	return n.submit(opWrite, p, off, done)
}

func (n *Namespace) submit(op uint8, p []byte, off uint64, done func(error)) error {
	info, err := n.check(off, uint64(len(p)))
	if err != nil {
		return err
	}
	bs := info.BlockSize
	if len(p) == 0 || len(p) > n.c.maxXfer || len(p)/int(bs) > 65536 {
		return fmt.Errorf("nvmetcp/host: a submitted transfer is 1 block to %d bytes, not %d", min(n.c.maxXfer, 65536*int(bs)), len(p))
	}
	sqe := n.rwSQE(op, bs, p, off)
	read := op == opRead
	return n.c.pickFree().submit(&sqe, p, read, !read && len(p) <= n.c.icd, done)
}

// ReadAt reads len(p) bytes at byte offset off. A context ends only the
// wait for a free command slot.
func (n *Namespace) ReadAt(ctx context.Context, p []byte, off uint64) error {
	return n.split(ctx, opRead, p, off)
}

// WriteAt writes p at byte offset off. p must not change until WriteAt
// returns.
func (n *Namespace) WriteAt(ctx context.Context, p []byte, off uint64) error {
	return n.split(ctx, opWrite, p, off)
}

// Flush commits the namespace's volatile write cache.
func (n *Namespace) Flush(ctx context.Context) error {
	if _, err := n.check(0, 0); err != nil {
		return err
	}
	var sqe nvmetcp.SQE
	sqe.SetOpcode(opFlush)
	sqe.SetNSID(n.nsid)
	_, err := n.c.pick().exec(ctx, &sqe, nil, false, false)
	return err
}

// WriteZeroes zeroes size bytes at byte offset off.
func (n *Namespace) WriteZeroes(ctx context.Context, off, size uint64) error {
	info, err := n.check(off, size)
	if err != nil {
		return err
	}
	bs := uint64(info.BlockSize)
	for size > 0 {
		k := min(size, 65536*bs)
		var sqe nvmetcp.SQE
		sqe.SetOpcode(opWriteZeroes)
		sqe.SetNSID(n.nsid)
		slba := off / bs
		sqe.SetCDW(10, uint32(slba))
		sqe.SetCDW(11, uint32(slba>>32))
		sqe.SetCDW(12, uint32(k/bs-1))
		if _, err := n.c.pick().exec(ctx, &sqe, nil, false, false); err != nil {
			return err
		}
		off += k
		size -= k
	}
	return nil
}

// Unmap deallocates size bytes at byte offset off: Dataset Management with
// the Deallocate attribute, up to 256 ranges of up to 2^32-1 blocks per
// command.
func (n *Namespace) Unmap(ctx context.Context, off, size uint64) error {
	info, err := n.check(off, size)
	if err != nil {
		return err
	}
	bs := uint64(info.BlockSize)
	const maxRange = 1<<32 - 1
	for size > 0 {
		var ranges []byte
		for size > 0 && len(ranges) < 256*16 {
			k := min(size/bs, maxRange)
			r := make([]byte, 16)
			binary.LittleEndian.PutUint32(r[4:], uint32(k))
			binary.LittleEndian.PutUint64(r[8:], off/bs)
			ranges = append(ranges, r...)
			off += k * bs
			size -= k * bs
		}
		var sqe nvmetcp.SQE
		sqe.SetOpcode(opDSM)
		sqe.SetNSID(n.nsid)
		sqe.SetCDW(10, uint32(len(ranges)/16-1))
		sqe.SetCDW(11, 1<<2) // AD: deallocate
		if _, err := n.c.pick().exec(ctx, &sqe, ranges, false, len(ranges) <= n.c.icd); err != nil {
			return err
		}
	}
	return nil
}
