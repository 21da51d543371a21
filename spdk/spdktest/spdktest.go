// Package spdktest serves a fake SPDK application on a Unix socket for
// tests: a model.Target behind the same JSON-RPC server protocol as SPDK,
// so that code under test talks to it exactly as it would to SPDK.
//
//	srv := spdktest.Start(t, model.Config{})
//	c := srv.Client()
//	name, err := c.BdevMallocCreate(ctx, spdk.BdevMallocCreateRequest{NumBlocks: 8192, BlockSize: 512})
//
// Several servers on one model.Fabric (StartFabric) reach each other over
// NVMe-oF: one's bdev_nvme_attach_controller connects to another's
// subsystem, with the host checks that fence a deposed controller.
package spdktest

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"testing"

	"github.com/virtual-disk-array/vda/spdk"
	"github.com/virtual-disk-array/vda/spdk/jsonrpc"
	"github.com/virtual-disk-array/vda/spdk/model"
)

// Server is one fake SPDK application serving its socket until the test
// ends.
type Server struct {
	// Path is the Unix socket, as SPDK's -r option would name it.
	Path string
	// Target is the model behind the socket, for tests that look at or
	// change its state directly.
	Target *model.Target

	tb     testing.TB
	cfg    model.Config
	cancel context.CancelFunc
	done   chan error
}

// Start serves a new model.Target built from cfg on a Unix socket in a
// temporary directory. The server stops, and the socket goes, when the
// test ends.
func Start(tb testing.TB, cfg model.Config) *Server {
	tb.Helper()
	if cfg.Fabric == nil {
		// Restart needs the fabric the first target joined.
		cfg.Fabric = model.NewFabric()
	}
	s := &Server{Path: filepath.Join(socketDir(tb), "spdk.sock"), tb: tb, cfg: cfg}
	s.start()
	tb.Cleanup(s.stop)
	return s
}

func (s *Server) start() {
	s.tb.Helper()
	s.Target = model.New(s.cfg)
	ln, err := net.Listen("unix", s.Path)
	if err != nil {
		s.tb.Fatalf("spdktest: listen on %s: %v", s.Path, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	srv := jsonrpc.Server{Handler: s.Target, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	go func() { done <- srv.Serve(ctx, ln) }()
	s.cancel, s.done = cancel, done
}

func (s *Server) stop() {
	if s.cancel == nil {
		return
	}
	s.cancel()
	if err := <-s.done; err != nil && !errors.Is(err, net.ErrClosed) {
		s.tb.Errorf("spdktest: serve %s: %v", s.Path, err)
	}
	s.cancel = nil
	s.Target.Stop()
}

// Restart simulates the SPDK application dying and starting again: the
// socket closes (clients see their connection drop), the old target stops
// (its hosts and its own NVMe-oF connections are cut, its ports freed),
// and a fresh, empty target serves the same socket path on the same
// fabric. A client's spdk.Conn redials it on its next call.
func (s *Server) Restart() {
	s.tb.Helper()
	s.stop()
	_ = os.Remove(s.Path)
	s.start()
}

// Kill simulates the SPDK application dying for good: the socket closes
// and no one listens on its path until Restart.
func (s *Server) Kill() {
	s.tb.Helper()
	s.stop()
	_ = os.Remove(s.Path)
}

// StartFabric starts one server per config, all on one new model.Fabric
// (any Fabric set in the configs is replaced), so that they reach each
// other's listeners.
func StartFabric(tb testing.TB, cfgs ...model.Config) []*Server {
	tb.Helper()
	fabric := model.NewFabric()
	servers := make([]*Server, len(cfgs))
	for i, cfg := range cfgs {
		cfg.Fabric = fabric
		servers[i] = Start(tb, cfg)
	}
	return servers
}

// Client returns a client over a new spdk.Conn to the server, closed when
// the test ends.
func (s *Server) Client() *spdk.Client {
	return spdk.New(s.Conn())
}

// Conn returns a new spdk.Conn to the server, closed when the test ends.
func (s *Server) Conn() *spdk.Conn {
	conn := spdk.Dial(s.Path, spdk.ConnConfig{})
	s.tb.Cleanup(func() { _ = conn.Close() })
	return conn
}

// socketDir returns a directory for the socket: the test's temporary
// directory, unless its path is too long for a Unix socket (108 bytes).
func socketDir(tb testing.TB) string {
	dir := tb.TempDir()
	if len(dir)+len("/spdk.sock") < 100 {
		return dir
	}
	dir, err := os.MkdirTemp("", "spdk")
	if err != nil {
		tb.Fatalf("spdktest: %v", err)
	}
	tb.Cleanup(func() { _ = os.RemoveAll(dir) })
	return dir
}
