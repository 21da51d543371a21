// Package dataplane is VDA's embedded data plane: a pure-Go stand-in for
// an SPDK application that answers SPDK's JSON-RPC methods on a Unix socket
// and moves real data, so that VDA's agents run end to end where SPDK is
// not installed. The object graph and its semantics are spdk/model's (the
// same model behind the fake SPDK socket of the tests); the data is its
// data path (malloc, aio, raid0, NVMe namespaces).
//
// What it does not do yet: NVMe/TCP on real sockets (the model's
// attachments reach only targets in the same process, through a
// model.Fabric; the codec is in package nvmetcp) and lvols with data
// (their on-disk format is package lvs). Until then a data plane serves
// one process's worth of nodes.
package dataplane

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"

	"github.com/virtual-disk-array/vda/spdk/jsonrpc"
	"github.com/virtual-disk-array/vda/spdk/model"
)

// Config configures a data plane.
type Config struct {
	// Socket is the JSON-RPC Unix socket path, SPDK's -r. Required.
	Socket string
	// Model configures the SPDK model (host NQN, addresses, fabric).
	Model model.Config
	// Logger; nil means slog.Default().
	Logger *slog.Logger
}

// DataPlane is one running data plane.
type DataPlane struct {
	cfg Config
	// Target is the model: tests and embedders reach its data path
	// (Target.Open) directly.
	Target *model.Target
}

// New returns a data plane; Run serves it.
func New(cfg Config) (*DataPlane, error) {
	if cfg.Socket == "" {
		return nil, errors.New("dataplane: Socket is required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &DataPlane{cfg: cfg, Target: model.New(cfg.Model)}, nil
}

// Run serves the socket until ctx ends, then stops the target (its NVMe-oF
// connections drop, its files close) and removes the socket. A stale socket
// file left by a crashed data plane is replaced; a live one (another data
// plane answering on it) is an error.
func (d *DataPlane) Run(ctx context.Context, ready func()) error {
	if c, err := net.Dial("unix", d.cfg.Socket); err == nil {
		_ = c.Close()
		return fmt.Errorf("dataplane: %s is in use by another process", d.cfg.Socket)
	}
	_ = os.Remove(d.cfg.Socket)
	ln, err := net.Listen("unix", d.cfg.Socket)
	if err != nil {
		return fmt.Errorf("dataplane: %w", err)
	}
	defer os.Remove(d.cfg.Socket)
	defer d.Target.Stop()
	if ready != nil {
		ready()
	}
	srv := jsonrpc.Server{Handler: d.Target, Logger: d.cfg.Logger}
	err = srv.Serve(ctx, ln)
	if errors.Is(err, net.ErrClosed) || ctx.Err() != nil {
		return nil
	}
	return err
}
