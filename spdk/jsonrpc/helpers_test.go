package jsonrpc_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/virtual-disk-array/vda/spdk/jsonrpc"
)

// testServer is a jsonrpc.Server on a Unix socket, stopped at cleanup
// (which also checks that Serve returned nil).
type testServer struct {
	path string
	logs *logBuffer
}

func startServer(t *testing.T, h jsonrpc.Handler) *testServer {
	t.Helper()
	// Unix socket paths are limited to about 100 bytes; t.TempDir() names
	// can be longer.
	dir, err := os.MkdirTemp("", "jsonrpc")
	require.NoError(t, err)
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	path := filepath.Join(dir, "spdk.sock")
	ln, err := net.Listen("unix", path)
	require.NoError(t, err)

	logs := &logBuffer{}
	srv := &jsonrpc.Server{
		Handler: h,
		Logger:  slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			require.NoError(t, err)
		case <-time.After(10 * time.Second):
			t.Error("Serve did not return after its context ended")
		}
	})
	return &testServer{path: path, logs: logs}
}

// logBuffer collects a server's log records.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// client is a raw connection that writes bytes and reads answer lines.
type client struct {
	t  *testing.T
	nc net.Conn
	r  *bufio.Reader
}

func dial(t *testing.T, path string) *client {
	t.Helper()
	nc, err := net.Dial("unix", path)
	require.NoError(t, err)
	t.Cleanup(func() { _ = nc.Close() })
	return &client{t: t, nc: nc, r: bufio.NewReader(nc)}
}

func (c *client) send(s string) {
	c.t.Helper()
	_, err := c.nc.Write([]byte(s))
	require.NoError(c.t, err)
}

// line reads one answer, newline included.
func (c *client) line() string {
	c.t.Helper()
	require.NoError(c.t, c.nc.SetReadDeadline(time.Now().Add(5*time.Second)))
	b, err := c.r.ReadString('\n')
	require.NoError(c.t, err, "reading an answer; got %q so far", b)
	return b
}

// silent checks that nothing arrives for a while.
func (c *client) silent(d time.Duration) {
	c.t.Helper()
	require.NoError(c.t, c.nc.SetReadDeadline(time.Now().Add(d)))
	b, err := c.r.ReadString('\n')
	var ne net.Error
	require.True(c.t, errors.As(err, &ne) && ne.Timeout(), "expected silence, got %q (%v)", b, err)
}

// closed checks that the server closes the connection without a byte.
func (c *client) closed() {
	c.t.Helper()
	require.NoError(c.t, c.nc.SetReadDeadline(time.Now().Add(5*time.Second)))
	b, err := io.ReadAll(c.r)
	require.NoError(c.t, err, "expected the server to close the connection")
	require.Empty(c.t, string(b), "no answer expected before the close")
}

// probe checks that the connection is still served, and that nothing was
// queued before the probe's answer.
func (c *client) probe() {
	c.t.Helper()
	c.send(`{"jsonrpc":"2.0","method":"probe","id":"probe"}`)
	require.Equal(c.t, `{"jsonrpc":"2.0","id":"probe","result":"probe"}`+"\n", c.line())
}
