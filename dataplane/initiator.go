package dataplane

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"runtime"
	"strings"
	"time"

	"github.com/virtual-disk-array/vda/nvmetcp"
	"github.com/virtual-disk-array/vda/nvmetcp/host"
	"github.com/virtual-disk-array/vda/spdk/model"
)

// The NVMe/TCP initiator behind bdev_nvme_attach_controller: the model's
// Dial hook, over nvmetcp/host. The model owns the paths, multipath,
// reconnects and timeouts; a remote here is one live controller.

const (
	// initiatorKeepAlive is SPDK's default keep_alive_timeout_ms.
	initiatorKeepAlive = 10 * time.Second
	// initiatorPoll re-reads the namespaces and ANA states of a remote
	// that sends no asynchronous event notices (they are acted on at
	// once when it does).
	initiatorPoll = 2 * time.Second
)

// dial is the model's Dial hook: one controller of req.Subnqn at
// req.Traddr:req.Trsvcid, with req's host NQN and host ID and digests, and
// num_io_queues I/O queues, else Config.AttachIOQueues, else
// min(GOMAXPROCS, 4).
func (d *DataPlane) dial(ctx context.Context, req model.ConnectRequest) (model.RemoteController, error) {
	if req.Trtype != "TCP" {
		return nil, fmt.Errorf("dataplane: transport %s is not served", req.Trtype)
	}
	cfg := host.Config{SubNQN: req.Subnqn, HostNQN: req.Hostnqn, HeaderDigest: req.Hdgst, DataDigest: req.Ddgst,
		IOQueues: req.NumIOQueues, KeepAlive: initiatorKeepAlive, Poll: initiatorPoll}
	if cfg.IOQueues <= 0 {
		cfg.IOQueues = d.cfg.AttachIOQueues
	}
	if cfg.IOQueues <= 0 {
		cfg.IOQueues = min(runtime.GOMAXPROCS(0), 4)
	}
	cfg.HostID = parseHostID(req.Hostid)
	addr := net.JoinHostPort(req.Traddr, req.Trsvcid)
	c, err := host.Dial(ctx, addr, cfg)
	if err != nil {
		d.cfg.Logger.Info("NVMe/TCP connect failed", "traddr", req.Traddr, "trsvcid", req.Trsvcid,
			"nqn", req.Subnqn, "hostnqn", req.Hostnqn, "err", err)
		return nil, err
	}
	d.cfg.Logger.Info("NVMe/TCP connected", "traddr", req.Traddr, "trsvcid", req.Trsvcid, "nqn", req.Subnqn,
		"cntlid", c.Identify().CNTLID, "io_queues", c.IOQueues())
	return remote{c}, nil
}

// parseHostID turns a uuid into its 16 bytes (zero if it is not one).
func parseHostID(s string) [16]byte {
	var b [16]byte
	if d, err := hex.DecodeString(strings.ReplaceAll(s, "-", "")); err == nil && len(d) == 16 {
		copy(b[:], d)
	}
	return b
}

// remote is a host.Controller as the model sees it.
type remote struct{ c *host.Controller }

func (r remote) View() (model.RemoteView, uint64) {
	version := r.c.Version()
	id := r.c.Identify()
	v := model.RemoteView{CNTLID: int(id.CNTLID), Subnqn: id.SubNQN, Model: id.Model, Serial: id.Serial,
		ANAReporting: id.ANAReporting}
	for _, n := range r.c.Namespaces() {
		rn := model.RemoteNamespace{NSID: n.NSID, NGUID: n.NGUID, UUID: n.UUID, BlockSize: n.BlockSize,
			NumBlocks: n.Blocks, IO: nsIO{r.c.Namespace(n.NSID)}}
		if id.ANAReporting {
			rn.ANAState = anaName(n.ANAState)
		}
		v.Namespaces = append(v.Namespaces, rn)
	}
	return v, version
}

func (r remote) Changed() <-chan struct{} { return r.c.Changed() }
func (r remote) Done() <-chan struct{}    { return r.c.Done() }
func (r remote) Close()                   { _ = r.c.Close() }

// Alive checks the connections' sockets (model.RemoteAlive): a controller
// whose target closed it is lost at once.
func (r remote) Alive() bool { return r.c.Alive() }

// anaName is SPDK's name of an ANA state.
func anaName(s nvmetcp.ANAState) string {
	switch s {
	case nvmetcp.ANAOptimized:
		return "optimized"
	case nvmetcp.ANANonOptimized:
		return "non_optimized"
	case nvmetcp.ANAInaccessible:
		return "inaccessible"
	case nvmetcp.ANAPersistentLoss:
		return "persistent_loss"
	case nvmetcp.ANAChange:
		return "change"
	}
	return "inaccessible"
}

// nsIO is a remote namespace's data path, with the host's errors mapped
// to the model's: a lost connection, a namespace not ready or gone, or a
// path error (ANA) is ErrPathDown (the model tries another path or waits
// for a reconnect); LBA Out of Range is ErrRange.
type nsIO struct{ n *host.Namespace }

func (n nsIO) ReadAt(ctx context.Context, p []byte, off uint64) error {
	return ioErr(n.n.ReadAt(ctx, p, off))
}

func (n nsIO) WriteAt(ctx context.Context, p []byte, off uint64) error {
	return ioErr(n.n.WriteAt(ctx, p, off))
}

func (n nsIO) Flush(ctx context.Context) error { return ioErr(n.n.Flush(ctx)) }

func (n nsIO) WriteZeroes(ctx context.Context, off, size uint64) error {
	return ioErr(n.n.WriteZeroes(ctx, off, size))
}

func (n nsIO) Unmap(ctx context.Context, off, size uint64) error {
	return ioErr(n.n.Unmap(ctx, off, size))
}

// NVMe statuses the mapping looks at.
const (
	scLBARange        = 0x80
	scNamespaceNotRdy = 0x82
	sctPath           = 0x3
)

func ioErr(err error) error {
	if err == nil {
		return nil
	}
	var se *host.StatusError
	switch {
	case errors.Is(err, host.ErrDisconnected), errors.Is(err, host.ErrNoNamespace):
		return fmt.Errorf("%w: %w", model.ErrPathDown, err)
	case errors.As(err, &se) && se.SCT == 0 && se.SC == scLBARange:
		return fmt.Errorf("%w: %w", model.ErrRange, err)
	case errors.As(err, &se) && ((se.SCT == 0 && se.SC == scNamespaceNotRdy) || se.SCT == sctPath):
		return fmt.Errorf("%w: %w", model.ErrPathDown, err)
	}
	return err
}
