// Package dataplanetest runs an embedded data plane inside a test's
// process: real JSON-RPC socket, real NVMe/TCP listeners and attaches,
// stopped when the test ends.
package dataplanetest

import (
	"context"
	"log/slog"
	"path/filepath"
	"testing"

	"github.com/virtual-disk-array/vda/dataplane"
	"github.com/virtual-disk-array/vda/spdk"
)

// Server is a data plane served until Stop or the end of the test.
type Server struct {
	*dataplane.DataPlane
	// Socket is the JSON-RPC socket's path.
	Socket string
	// Client calls it over Socket.
	Client *spdk.Client

	conn    *spdk.Conn
	cancel  context.CancelFunc
	done    chan error
	stopped bool
	tb      testing.TB
}

// Start serves a data plane configured by cfg. An empty cfg.Socket gets a
// socket in a temporary directory; a nil cfg.Logger discards the logs. It
// fails the test if the data plane does not start.
func Start(tb testing.TB, cfg dataplane.Config) *Server {
	tb.Helper()
	if cfg.Socket == "" {
		cfg.Socket = filepath.Join(tb.TempDir(), "spdk.sock")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	dp, err := dataplane.New(cfg)
	if err != nil {
		tb.Fatalf("dataplane.New: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Server{DataPlane: dp, Socket: cfg.Socket, cancel: cancel, done: make(chan error, 1), tb: tb}
	ready := make(chan struct{})
	go func() { s.done <- dp.Run(ctx, func() { close(ready) }) }()
	select {
	case <-ready:
	case err := <-s.done:
		cancel()
		tb.Fatalf("data plane on %s: %v", cfg.Socket, err)
	}
	s.conn = spdk.Dial(cfg.Socket, spdk.ConnConfig{})
	s.Client = spdk.New(s.conn)
	tb.Cleanup(s.Stop)
	return s
}

// Stop ends the data plane (its sockets close, its connections drop) and
// waits for it; a second call does nothing.
func (s *Server) Stop() {
	s.tb.Helper()
	if s.stopped {
		return
	}
	s.stopped = true
	s.conn.Close()
	s.cancel()
	if err := <-s.done; err != nil {
		s.tb.Errorf("data plane on %s: %v", s.Socket, err)
	}
}
