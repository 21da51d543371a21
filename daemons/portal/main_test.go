package main

import (
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/virtual-disk-array/vda/daemons/internal/daemon"
	"github.com/virtual-disk-array/vda/daemons/internal/daemontest"
	"github.com/virtual-disk-array/vda/pki"
	"github.com/virtual-disk-array/vda/pki/pkitest"
	"github.com/virtual-disk-array/vda/portal/portaltest"
	vdav1 "github.com/virtual-disk-array/vda/proto/vda/v1"
	"github.com/virtual-disk-array/vda/proto/vda/v1/vdav1connect"
)

// TestServeMetricsAndShutdown runs the daemon in-process: it writes its
// admin token, serves the API (to callers with a token) and /metrics on one
// address over TLS, and returns nil when its context ends. Started again
// with --insecure, it serves plaintext but still wants the token.
func TestServeMetricsAndShutdown(t *testing.T) {
	dir := t.TempDir()
	dsn := "sqlite:" + filepath.Join(dir, "vda.db")
	tokenFile := filepath.Join(dir, "state", "admin.token")
	p := pkitest.New(t)
	addr, stop := daemontest.Serve(t, serve, append([]string{"--listen", "127.0.0.1:0", "--dsn", dsn, "--log-format", "json",
		"--admin-token-file", tokenFile}, p.Args(t, "portal", pki.ControlPlane)...))
	b, err := os.ReadFile(tokenFile)
	require.NoError(t, err)
	token := strings.TrimSpace(string(b))

	https := p.Client(t, "user", "-")
	client := vdav1connect.NewPortalServiceClient(https, "https://"+addr, portaltest.WithToken(token))
	grpc := vdav1connect.NewPortalServiceClient(https, "https://"+addr, portaltest.WithToken(token), connect.WithGRPC())
	_, err = grpc.GetDa(t.Context(), connect.NewRequest(&vdav1.GetDaRequest{Name: "nope"}))
	assert.Equal(t, connect.CodeNotFound, connect.CodeOf(err), "gRPC over TLS: %v", err)
	_, err = client.GetDa(t.Context(), connect.NewRequest(&vdav1.GetDaRequest{Name: "nope"}))
	assert.Equal(t, connect.CodeNotFound, connect.CodeOf(err))
	who, err := client.WhoAmI(t.Context(), connect.NewRequest(&vdav1.WhoAmIRequest{}))
	require.NoError(t, err)
	assert.Equal(t, "admin", who.Msg.GetToken().GetName())
	assert.Equal(t, vdav1.Role_ROLE_ADMIN, who.Msg.GetToken().GetRole())

	anonymous := vdav1connect.NewPortalServiceClient(https, "https://"+addr)
	_, err = anonymous.GetDa(t.Context(), connect.NewRequest(&vdav1.GetDaRequest{Name: "nope"}))
	assert.Equal(t, connect.CodeUnauthenticated, connect.CodeOf(err))

	code, body := pkitest.GetWith(t, https, "https://"+addr+"/metrics")
	assert.Equal(t, http.StatusOK, code)
	assert.Contains(t, body, `vda_portal_requests_total{code="not_found",procedure="/vda.v1.PortalService/GetDa"} 2`, "one over Connect, one over gRPC")
	assert.Contains(t, body, `vda_portal_auth_refusals_total{code="unauthenticated",procedure="/vda.v1.PortalService/GetDa"} 1`)
	assert.Contains(t, body, "go_goroutines")
	assert.Contains(t, body, "vda_tls_certificate_expiry_timestamp_seconds ")
	assert.Contains(t, body, "process_resident_memory_bytes")

	logs, err := stop(15 * time.Second)
	assert.NoError(t, err)
	assert.Contains(t, logs, `"msg":"admin token written to `+tokenFile+`"`)
	assert.Contains(t, logs, `"msg":"portal stopped"`)
	_, secret, _ := strings.Cut(strings.TrimPrefix(token, "vda_"), "_")
	assert.NotContains(t, logs, secret, "the token is never logged")

	// A second start finds the token and writes nothing; --insecure
	// drops TLS, not the tokens.
	addr, stop = daemontest.Serve(t, serve, []string{"--listen", "127.0.0.1:0", "--dsn", dsn, "--log-format", "json",
		"--admin-token-file", tokenFile, "--insecure"})
	client = vdav1connect.NewPortalServiceClient(http.DefaultClient, "http://"+addr, portaltest.WithToken(token))
	_, err = client.WhoAmI(t.Context(), connect.NewRequest(&vdav1.WhoAmIRequest{}))
	assert.NoError(t, err)
	_, err = vdav1connect.NewPortalServiceClient(http.DefaultClient, "http://"+addr).WhoAmI(t.Context(), connect.NewRequest(&vdav1.WhoAmIRequest{}))
	assert.Equal(t, connect.CodeUnauthenticated, connect.CodeOf(err))
	logs, err = stop(15 * time.Second)
	assert.NoError(t, err)
	assert.NotContains(t, logs, "admin token written")
	assert.Contains(t, logs, "running INSECURE")

	// Neither TLS nor --insecure: no start.
	err = run(t.Context(), []string{"--listen", "127.0.0.1:0", "--dsn", dsn}, io.Discard, io.Discard)
	assert.ErrorIs(t, err, daemon.ErrNoTLS)
}

// TestSIGTERM runs the real binary and stops it the way a service manager
// does.
func TestSIGTERM(t *testing.T) {
	dsn := "sqlite:" + filepath.Join(t.TempDir(), "vda.db")
	daemontest.SIGTERM(t, []string{"--listen", "127.0.0.1:0", "--dsn", dsn, "--log-format", "json", "--insecure"},
		`"msg":"portal serving"`, `"msg":"portal stopped"`)
}
