package main

import (
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/stretchr/testify/assert"
	"github.com/virtual-disk-array/vda/daemons/internal/daemontest"
	vdav1 "github.com/virtual-disk-array/vda/proto/vda/v1"
	"github.com/virtual-disk-array/vda/proto/vda/v1/vdav1connect"
)

// TestServeMetricsAndShutdown runs the daemon in-process: it serves the API
// and /metrics on one address and returns nil when its context ends.
func TestServeMetricsAndShutdown(t *testing.T) {
	dsn := "sqlite:" + filepath.Join(t.TempDir(), "vda.db")
	addr, stop := daemontest.Serve(t, serve, []string{"--listen", "127.0.0.1:0", "--dsn", dsn, "--log-format", "json"})
	client := vdav1connect.NewPortalServiceClient(http.DefaultClient, "http://"+addr)
	_, err := client.GetDa(t.Context(), connect.NewRequest(&vdav1.GetDaRequest{Name: "nope"}))
	assert.Equal(t, connect.CodeNotFound, connect.CodeOf(err))

	body := daemontest.Metrics(t, addr)
	assert.Contains(t, body, `vda_portal_requests_total{code="not_found",procedure="/vda.v1.PortalService/GetDa"} 1`)
	assert.Contains(t, body, "go_goroutines")
	assert.Contains(t, body, "process_resident_memory_bytes")

	logs, err := stop(15 * time.Second)
	assert.NoError(t, err)
	assert.Contains(t, logs, `"msg":"portal stopped"`)
}

// TestSIGTERM runs the real binary and stops it the way a service manager
// does.
func TestSIGTERM(t *testing.T) {
	dsn := "sqlite:" + filepath.Join(t.TempDir(), "vda.db")
	daemontest.SIGTERM(t, []string{"--listen", "127.0.0.1:0", "--dsn", dsn, "--log-format", "json"},
		`"msg":"portal serving"`, `"msg":"portal stopped"`)
}
