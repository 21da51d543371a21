package dataplane

import (
	"context"
	"errors"
	"fmt"

	"github.com/virtual-disk-array/vda/nvmetcp"
	"github.com/virtual-disk-array/vda/nvmetcp/target"
	"github.com/virtual-disk-array/vda/spdk/model"
)

// catalog is the nvmetcp/target Catalog of one listening socket: the
// model's subsystems that listen on addr, as seen through that listener.
type catalog struct {
	t    *model.Target
	addr model.ListenAddr
}

func (c catalog) Subsystem(nqn string) (*target.Subsystem, bool) {
	s, ok := c.t.NVMfSubsystem(nqn, c.addr)
	if !ok || !s.Listening {
		return nil, false // a subsystem is reached only through its own listeners
	}
	sub := &target.Subsystem{NQN: s.NQN, Serial: s.Serial, Model: s.Model, AllowAnyHost: s.AllowAnyHost,
		Hosts: s.Hosts, MaxNamespaces: s.MaxNamespaces, ANAReporting: s.ANAReporting, MinCNTLID: s.MinCntlid,
		MaxCNTLID: s.MaxCntlid, Instance: s.Instance}
	for _, n := range s.Namespaces {
		ns := target.NS{NSID: n.NSID, NGUID: n.NGUID, UUID: n.UUID, ANAGroup: n.ANAGroup,
			ANAState: anaState(n.ANAState)}
		if n.Dev != nil {
			ns.Dev = dev{n.Dev}
		} else {
			ns.Dev = noData{bs: n.BlockSize, size: n.Size}
		}
		sub.Namespaces = append(sub.Namespaces, ns)
	}
	return sub, true
}

// Discovery lists, as SPDK's discovery service does, every TCP listener
// of every subsystem hostnqn may connect to, whatever the address (not
// only this socket's), the discovery subsystem's own listeners included.
func (c catalog) Discovery(hostnqn string) []target.DiscoveryEntry {
	var out []target.DiscoveryEntry
	for _, e := range c.t.NVMfDiscovery(hostnqn) {
		if e.Trtype != "TCP" {
			continue // not served by this data plane
		}
		out = append(out, target.DiscoveryEntry{NQN: e.NQN, Discovery: e.Discovery, Traddr: e.Traddr,
			Trsvcid: e.Trsvcid, IPv6: e.Adrfam == "IPv6", PortID: e.PortID})
	}
	return out
}

// anaState maps the model's ANA state names; "" (no ANA reporting) is
// optimized.
func anaState(s string) nvmetcp.ANAState {
	switch s {
	case "non_optimized":
		return nvmetcp.ANANonOptimized
	case "inaccessible":
		return nvmetcp.ANAInaccessible
	}
	return nvmetcp.ANAOptimized
}

// dev is a model Dev whose errors carry the target's meaning, so that the
// host gets LBA Out of Range or Namespace Not Ready (which it may retry on
// another path) rather than Internal Error.
type dev struct{ d *model.Dev }

func (d dev) BlockSize() uint32 { return d.d.BlockSize() }
func (d dev) Size() uint64      { return d.d.Size() }

func (d dev) ReadAt(ctx context.Context, p []byte, off uint64) error {
	return mapErr(d.d.ReadAt(ctx, p, off))
}

func (d dev) WriteAt(ctx context.Context, p []byte, off uint64) error {
	return mapErr(d.d.WriteAt(ctx, p, off))
}

func (d dev) Flush(ctx context.Context) error { return mapErr(d.d.Flush(ctx)) }

func (d dev) WriteZeroes(ctx context.Context, off, n uint64) error {
	return mapErr(d.d.WriteZeroes(ctx, off, n))
}

func (d dev) Unmap(ctx context.Context, off, n uint64) error { return mapErr(d.d.Unmap(ctx, off, n)) }

func mapErr(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, model.ErrRange):
		return fmt.Errorf("%w: %w", target.ErrLBARange, err)
	case errors.Is(err, model.ErrNoBdev), errors.Is(err, model.ErrPathDown), errors.Is(err, model.ErrUnsupported):
		return fmt.Errorf("%w: %w", target.ErrNotReady, err)
	}
	return err
}

// noData is the namespace of a bdev whose module moves no data yet: it
// has a size, and every I/O fails as not ready.
type noData struct {
	bs   uint32
	size uint64
}

func (n noData) BlockSize() uint32                                 { return n.bs }
func (n noData) Size() uint64                                      { return n.size }
func (n noData) ReadAt(context.Context, []byte, uint64) error      { return n.err() }
func (n noData) WriteAt(context.Context, []byte, uint64) error     { return n.err() }
func (n noData) Flush(context.Context) error                       { return n.err() }
func (n noData) WriteZeroes(context.Context, uint64, uint64) error { return n.err() }
func (n noData) Unmap(context.Context, uint64, uint64) error       { return n.err() }
func (n noData) err() error {
	return fmt.Errorf("%w: %w", target.ErrNotReady, model.ErrUnsupported)
}
