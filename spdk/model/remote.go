package model

import (
	"context"
	"encoding/hex"
	"slices"
	"strings"
	"time"
)

// Real NVMe-oF connections. Without Config.Dial, bdev_nvme_attach_controller
// reaches the Targets of its Fabric (a link kept current by the remote
// model). With it, the embedder connects (e.g. over NVMe/TCP with
// nvmetcp/host) and hands back a RemoteController; the model wraps it in
// the same link, so paths, multipath, failover, reconnects and timeouts
// are one logic for both.

// ConnectRequest is what bdev_nvme_attach_controller asks Config.Dial to
// connect to, in SPDK's spelling (Trtype "TCP", Adrfam "IPv4").
type ConnectRequest struct {
	Trtype, Adrfam, Traddr, Trsvcid string
	Subnqn, Hostnqn, Hostid         string
	// Hdgst and Ddgst are the attach's header and data digest switches.
	Hdgst, Ddgst bool
	// NumIOQueues is the attach's num_io_queues (0: the default).
	NumIOQueues int
}

// RemoteController is one live controller connection made by Config.Dial.
// Its methods may be called from any goroutine.
type RemoteController interface {
	// View returns what the controller reports now, and a version that
	// changes whenever the view does.
	View() (RemoteView, uint64)
	// Changed returns a channel closed at the next change of View.
	Changed() <-chan struct{}
	// Done is closed when the connection is lost (or closed): the path is
	// then lost and the model reconnects as SPDK would.
	Done() <-chan struct{}
	// Close ends the connection. The model calls it at most once, maybe
	// with its lock held: it must not wait for the network.
	Close()
}

// RemoteAlive is a RemoteController that can tell at once whether its
// connection is still up, from the connection itself (the socket's
// state), before its reader notices a loss: the methods that report path
// states (bdev_nvme_get_controllers, bdev_nvme_get_io_paths,
// bdev_get_bdevs) ask it first, so that a path whose target closed the
// connection before they were called is reported lost, whatever the
// scheduling of the reader. Alive is called with the Target's lock held:
// it must not wait for the network. After it returns false, Done must be
// closed.
type RemoteAlive interface {
	Alive() bool
}

// RemoteView is the controller's identify data and its namespaces.
type RemoteView struct {
	CNTLID        int
	Subnqn        string
	Model, Serial string
	ANAReporting  bool
	Namespaces    []RemoteNamespace // by NSID
}

// RemoteNamespace is one active namespace of a RemoteController.
type RemoteNamespace struct {
	NSID        uint32
	NGUID, UUID [16]byte
	BlockSize   uint32
	NumBlocks   uint64
	// ANAState is SPDK's name of the state of the namespace's ANA group
	// ("optimized", "non_optimized", "inaccessible", ...), "" without ANA
	// reporting.
	ANAState string
	// IO is the namespace's data path through this connection. Its errors
	// should wrap ErrPathDown when the path failed (connection lost,
	// namespace not ready) and ErrRange for an LBA out of range.
	IO NamespaceIO
}

// NamespaceIO moves the data of a remote namespace; offsets and lengths are
// in bytes, multiples of the block size.
type NamespaceIO interface {
	ReadAt(ctx context.Context, p []byte, off uint64) error
	WriteAt(ctx context.Context, p []byte, off uint64) error
	Flush(ctx context.Context) error
	WriteZeroes(ctx context.Context, off, n uint64) error
	Unmap(ctx context.Context, off, n uint64) error
}

// connectTimeout bounds one Dial.
const connectTimeout = 10 * time.Second

func (v RemoteView) model() remoteView {
	rv := remoteView{cntlid: v.CNTLID, subnqn: v.Subnqn, model: v.Model, serial: v.Serial, anaReporting: v.ANAReporting}
	for _, n := range v.Namespaces {
		rn := remoteNamespace{nsid: n.NSID, nguid: strings.ToUpper(hex.EncodeToString(n.NGUID[:])),
			blockSize: n.BlockSize, numBlocks: n.NumBlocks, anaState: n.ANAState, io: n.IO}
		if n.UUID != [16]byte{} {
			rn.uuid = formatUUID(n.UUID)
		}
		rv.namespaces = append(rv.namespaces, rn)
	}
	slices.SortFunc(rv.namespaces, func(a, b remoteNamespace) int { return int(int64(a.nsid) - int64(b.nsid)) })
	return rv
}

// dialPath connects one path: through Config.Dial when set, else through
// the Fabric. It must be called without t.mu.
func (t *Target) dialPath(ctx context.Context, req connectRequest) (*link, bool) {
	if t.dial == nil {
		return t.fabric.connect(req)
	}
	ctx, cancel := context.WithTimeout(ctx, connectTimeout)
	defer cancel()
	rc, err := t.dial(ctx, ConnectRequest{Trtype: req.trtype, Adrfam: req.adrfam, Traddr: req.traddr,
		Trsvcid: req.trsvcid, Subnqn: req.subnqn, Hostnqn: req.hostnqn, Hostid: req.hostid,
		Hdgst: req.hdgst, Ddgst: req.ddgst, NumIOQueues: req.ioQueues})
	if err != nil || rc == nil {
		return nil, false
	}
	v, _ := rc.View()
	l := &link{view: v.model(), version: 1, rc: rc, gone: make(chan struct{})}
	go t.watch(l)
	return l, true
}

// watch keeps a real link's view current and marks it closed when its
// connection is lost; the loss is then polled at once, so that the
// reconnect starts without waiting for a request.
func (t *Target) watch(l *link) {
	rc := l.rc
	var seen uint64
	for {
		ch := rc.Changed()
		if v, version := rc.View(); version != seen {
			seen = version
			l.setView(v.model())
		}
		select {
		case <-ch:
		case <-l.gone:
			return
		case <-rc.Done():
			l.close()
			t.mu.Lock()
			t.poll()
			t.mu.Unlock()
			return
		}
	}
}

// probeLinks closes the real links whose connection is found lost
// (RemoteAlive), for poll to see. It runs under t.mu.
func (t *Target) probeLinks() {
	if t.dial == nil {
		return
	}
	for _, c := range t.ctrlrs {
		for _, p := range c.paths {
			if p.link == nil || p.link.rc == nil {
				continue
			}
			if a, ok := p.link.rc.(RemoteAlive); ok && !p.link.isClosed() && !a.Alive() {
				p.link.close()
			}
		}
	}
}

// redial is the goroutine of a lost path of a Target with Config.Dial: it
// reconnects every reconnect_delay_sec until it succeeds, the path goes
// (detach, ctrlr_loss_timeout_sec; poll deletes it) or the Target stops.
// It dials without holding t.mu.
func (t *Target) redial(c *nvmeCtrlr, p *nvmePath) {
	for {
		t.mu.Lock()
		t.poll()
		if t.stopped || !slices.Contains(t.ctrlrs, c) || !slices.Contains(c.paths, p) || p.link != nil {
			p.redialing = false
			t.mu.Unlock()
			return
		}
		now := t.now()
		wait := p.nextAttempt.Sub(now)
		if loss := p.opts.ctrlrLossTimeoutSec; loss > 0 {
			wait = min(wait, p.lostAt.Add(time.Duration(loss)*time.Second).Sub(now))
		}
		req := p.req(t)
		t.mu.Unlock()
		if wait > 0 {
			select {
			case <-time.After(wait):
			case <-t.stopCh:
			}
			continue
		}
		l, ok := t.dialPath(context.Background(), req)
		t.mu.Lock()
		if t.stopped || !slices.Contains(t.ctrlrs, c) || !slices.Contains(c.paths, p) || p.link != nil {
			if ok {
				l.close()
			}
			p.redialing = false
			t.mu.Unlock()
			return
		}
		if !ok {
			p.nextAttempt = t.now().Add(time.Duration(p.opts.reconnectDelaySec) * time.Second)
			t.mu.Unlock()
			continue
		}
		p.link = l
		p.view, _, p.seen = l.snapshot()
		p.synced = false
		p.redialing = false
		t.poll() // the namespaces of the new connection
		t.mu.Unlock()
		return
	}
}

// stopInitiator ends the redial goroutines; t.mu is held.
func (t *Target) stopInitiator() {
	if !t.stopped {
		t.stopped = true
		close(t.stopCh)
	}
}

// anaRank orders the paths of an I/O: optimized (or no ANA) first, then
// non-optimized; -1: never (inaccessible, persistent loss, change).
func anaRank(state string) int {
	switch state {
	case "", "optimized":
		return 0
	case "non_optimized":
		return 1
	}
	return -1
}
