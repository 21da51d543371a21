package main

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	vdav1 "github.com/virtual-disk-array/vda/proto/vda/v1"
	"github.com/virtual-disk-array/vda/proto/vda/v1/vdav1connect"
)

// TestServeMetricsAndShutdown runs the daemon in-process: it serves the API
// and /metrics on one address and returns nil when its context ends.
func TestServeMetricsAndShutdown(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ready := make(chan string, 1)
	done := make(chan error, 1)
	var logs bytes.Buffer
	dsn := "sqlite:" + filepath.Join(t.TempDir(), "vda.db")
	go func() {
		done <- serve(ctx, []string{"--listen", "127.0.0.1:0", "--dsn", dsn, "--log-format", "json"}, io.Discard, &logs, ready)
	}()
	var addr string
	select {
	case addr = <-ready:
	case err := <-done:
		t.Fatalf("serve ended early: %v", err)
	}
	base := "http://" + addr
	client := vdav1connect.NewPortalServiceClient(http.DefaultClient, base)
	_, err := client.GetDa(ctx, connect.NewRequest(&vdav1.GetDaRequest{Name: "nope"}))
	assert.Equal(t, connect.CodeNotFound, connect.CodeOf(err))

	resp, err := http.Get(base + "/metrics")
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Contains(t, string(body), `vda_portal_requests_total{code="not_found",procedure="/vda.v1.PortalService/GetDa"} 1`)
	assert.Contains(t, string(body), "go_goroutines")
	assert.Contains(t, string(body), "process_resident_memory_bytes")

	cancel()
	select {
	case err := <-done:
		assert.NoError(t, err)
	case <-time.After(15 * time.Second):
		t.Fatal("serve did not stop")
	}
	assert.Contains(t, logs.String(), `"msg":"portal stopped"`)
}

// TestSIGTERM runs the real binary and stops it the way a service manager
// does.
func TestSIGTERM(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a binary")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "vda-portal")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	require.NoError(t, err, string(out))
	cmd := exec.Command(bin, "--listen", "127.0.0.1:0", "--dsn", "sqlite:"+filepath.Join(dir, "vda.db"), "--log-format", "json")
	stderr, err := cmd.StderrPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	lines := bufio.NewScanner(stderr)
	serving := false
	for lines.Scan() {
		if strings.Contains(lines.Text(), `"msg":"portal serving"`) {
			serving = true
			break
		}
	}
	require.True(t, serving, "the portal never said it was serving")
	require.NoError(t, cmd.Process.Signal(syscall.SIGTERM))
	var rest strings.Builder
	for lines.Scan() {
		rest.WriteString(lines.Text() + "\n")
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	select {
	case err := <-exited:
		assert.NoError(t, err, "exit status after SIGTERM")
	case <-time.After(15 * time.Second):
		_ = cmd.Process.Kill()
		t.Fatal("the portal did not exit after SIGTERM")
	}
	assert.Contains(t, rest.String(), `"msg":"portal stopped"`)
}
