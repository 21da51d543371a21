package main

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/stretchr/testify/require"

	"github.com/virtual-disk-array/vda/pki"
	"github.com/virtual-disk-array/vda/portal/portaltest"
	vdav1 "github.com/virtual-disk-array/vda/proto/vda/v1"
	"github.com/virtual-disk-array/vda/proto/vda/v1/vdav1connect"
)

// TestEmbedded runs the embedded control plane, registers a dn through
// its API, watches the monitor find the dn unreachable (no agent runs),
// and stops it; a second run on the same file, over TLS, finds the dn
// again.
func TestEmbedded(t *testing.T) {
	dir := t.TempDir()
	dsn := "sqlite:" + filepath.Join(dir, "vda.db")
	tokenFile := filepath.Join(dir, "admin.token")
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	start := func(t *testing.T, certs *pki.Source) (vdav1connect.PortalServiceClient, func() error) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		ctx, cancel := context.WithCancel(context.Background())
		ready := make(chan struct{})
		done := make(chan error, 1)
		go func() {
			done <- run(ctx, Config{DSN: dsn, Listener: ln, Period: 50 * time.Millisecond, Logger: log,
				TokenFile: tokenFile, TLS: certs, Ready: func() { close(ready) }})
		}()
		select {
		case <-ready:
		case err := <-done:
			t.Fatalf("run: %v", err)
		}
		token, err := os.ReadFile(tokenFile)
		require.NoError(t, err)
		httpc, url := http.DefaultClient, "http://"+ln.Addr().String()
		if certs != nil {
			cfg, err := pki.ClientOnly(filepath.Join(dir, "ca.crt"))
			require.NoError(t, err)
			httpc, url = &http.Client{Transport: &http.Transport{TLSClientConfig: cfg, ForceAttemptHTTP2: true}}, "https://"+ln.Addr().String()
		}
		c := vdav1connect.NewPortalServiceClient(httpc, url, portaltest.WithToken(strings.TrimSpace(string(token))))
		return c, func() error { cancel(); return <-done }
	}

	ctx := context.Background()
	c, stop := start(t, nil)
	_, err := c.CreateDn(ctx, connect.NewRequest(&vdav1.CreateDnRequest{Name: "dn0", AgentAddress: "127.0.0.1:1",
		Listener: &vdav1.NvmfListener{Traddr: "127.0.0.1", Trsvcid: "4420"}}))
	require.NoError(t, err)
	// The monitor runs: nothing answers at the agent address, so the dn's
	// health leaves UNKNOWN.
	require.Eventually(t, func() bool {
		got, err := c.GetDn(ctx, connect.NewRequest(&vdav1.GetDnRequest{Name: "dn0"}))
		require.NoError(t, err)
		return got.Msg.Dn.Status.GetHealth() != vdav1.Health_HEALTH_UNKNOWN
	}, 10*time.Second, 50*time.Millisecond)
	require.NoError(t, stop())

	ca, err := pki.NewCA("test", time.Hour)
	require.NoError(t, err)
	require.NoError(t, ca.WriteFiles(dir, "ca"))
	cert, key, err := ca.Issue(pki.Leaf{CommonName: "embedded", Identity: pki.ControlPlane, IPs: []net.IP{net.IPv4(127, 0, 0, 1)}})
	require.NoError(t, err)
	require.NoError(t, pki.WriteFiles(dir, "embedded", cert, key))
	certs, err := pki.Load(pki.Files{Cert: filepath.Join(dir, "embedded.crt"), Key: filepath.Join(dir, "embedded.key"), CA: filepath.Join(dir, "ca.crt")}, log)
	require.NoError(t, err)
	c, stop = start(t, certs)
	sum, err := c.GetClusterSummary(ctx, connect.NewRequest(&vdav1.GetClusterSummaryRequest{}))
	require.NoError(t, err)
	require.EqualValues(t, 1, sum.Msg.Summary.DnCount)
	require.NoError(t, stop())
}
