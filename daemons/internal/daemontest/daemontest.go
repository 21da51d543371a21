// Package daemontest holds the tests every VDA daemon runs on its main: the
// real binary stopped by SIGTERM, and the daemon served in-process. Only
// tests import it.
package daemontest

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// SIGTERM builds the package in the current directory (a test's is its
// package's), runs it with args and stops it the way a service manager
// does: once a line of its stderr contains serving, it sends SIGTERM and
// asserts that the process exits with status 0 within 15 s (it is killed
// otherwise) and that a later line contains stopped.
//
// It builds a binary, so -short skips it.
func SIGTERM(t *testing.T, args []string, serving, stopped string) {
	t.Helper()
	if testing.Short() {
		t.Skip("builds a binary")
	}
	bin := filepath.Join(t.TempDir(), "bin")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	require.NoError(t, err, string(out))
	cmd := exec.Command(bin, args...)
	stderr, err := cmd.StderrPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	waited := false
	// A failure before the process is waited for leaves none behind.
	t.Cleanup(func() {
		if !waited {
			_ = cmd.Process.Kill()
		}
	})
	lines := bufio.NewScanner(stderr)
	up := false
	for lines.Scan() {
		if strings.Contains(lines.Text(), serving) {
			up = true
			break
		}
	}
	require.True(t, up, "the daemon never logged %s", serving)
	require.NoError(t, cmd.Process.Signal(syscall.SIGTERM))
	// Reading the rest of stderr waits for the process too, so it is under
	// the same bound; Wait comes after the last read (see StderrPipe).
	var rest strings.Builder
	exited := make(chan error, 1)
	go func() {
		for lines.Scan() {
			rest.WriteString(lines.Text() + "\n")
		}
		exited <- cmd.Wait()
	}()
	select {
	case err := <-exited:
		waited = true
		assert.NoError(t, err, "exit status after SIGTERM")
	case <-time.After(15 * time.Second):
		_ = cmd.Process.Kill()
		t.Fatal("the daemon did not exit after SIGTERM")
	}
	assert.Contains(t, rest.String(), stopped)
}

// ServeFunc is a daemon's serve: its run, which also sends the address it
// listens on to ready (when ready is not nil) once it serves.
type ServeFunc func(ctx context.Context, args []string, stdout, stderr io.Writer, ready chan<- string) error

// Serve runs serve in-process with args (stdout discarded, stderr kept for
// stop) and returns once it is ready, with the address it serves on; it
// fails the test if serve returns first or is not ready within 15 s.
//
// stop ends serve's context, waits at most within for serve to return
// (failing the test otherwise) and returns serve's error and what it wrote
// to stderr. If the test ends without stop, serve's context ends then and
// the test's cleanup waits for it, so that it stops before the test's
// temporary directories are removed.
func Serve(t *testing.T, serve ServeFunc, args []string) (addr string, stop func(within time.Duration) (logs string, err error)) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan string, 1)
	done := make(chan error, 1)
	var stderr bytes.Buffer // read once serve has returned
	go func() { done <- serve(ctx, args, io.Discard, &stderr, ready) }()
	returned := false
	t.Cleanup(func() {
		if !returned {
			cancel()
			select {
			case <-done:
			case <-time.After(15 * time.Second):
			}
		}
	})
	select {
	case addr = <-ready:
	case err := <-done:
		returned = true
		t.Fatalf("serve ended early: %v", err)
	case <-time.After(15 * time.Second):
		t.Fatal("serve never became ready")
	}
	return addr, func(within time.Duration) (string, error) {
		t.Helper()
		cancel()
		select {
		case err := <-done:
			returned = true
			return stderr.String(), err
		case <-time.After(within):
			t.Fatal("serve did not stop")
			return "", nil
		}
	}
}

// Get gets path from the daemon serving on addr and returns the status and
// the body.
func Get(t *testing.T, addr, path string) (code int, body string) {
	t.Helper()
	resp, err := http.Get("http://" + addr + path)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(b)
}

// Metrics gets /metrics from the daemon serving on addr, asserts that it
// answered 200 and returns the body, for the caller's own assertions.
func Metrics(t *testing.T, addr string) string {
	t.Helper()
	code, body := Get(t, addr, "/metrics")
	assert.Equal(t, http.StatusOK, code)
	return body
}

// FreePort returns a TCP port of 127.0.0.1 nothing listens on now.
func FreePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	return strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
}
