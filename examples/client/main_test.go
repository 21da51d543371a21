package main

import (
	"bytes"
	"context"
	"encoding/pem"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/virtual-disk-array/vda/auth"
	"github.com/virtual-disk-array/vda/portal"
	"github.com/virtual-disk-array/vda/portal/portaltest"
	vdav1 "github.com/virtual-disk-array/vda/proto/vda/v1"
	"github.com/virtual-disk-array/vda/proto/vda/v1/vdav1connect"
	"github.com/virtual-disk-array/vda/store"
)

// portalWithNodes serves a real portal on SQLite holding two dns with a
// malloc pd each and two cns (no agents: nothing ever reports), and
// returns its URL and an operator's API token.
func portalWithNodes(t *testing.T) (url, token string) {
	ctx := context.Background()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	db, err := store.Open(ctx, store.Config{DSN: "sqlite:" + filepath.Join(t.TempDir(), "vda.db"), Logger: log})
	require.NoError(t, err)
	t.Cleanup(func() { _ = db.Close() })
	svc, err := portal.New(portal.Config{DB: db, Logger: log})
	require.NoError(t, err)
	t.Cleanup(svc.Close)
	h, err := portal.NewHandler(svc, portal.HandlerConfig{Logger: log})
	require.NoError(t, err)
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)

	// Nodes and pds are an admin's; arrays and exporters an operator's.
	c := vdav1connect.NewPortalServiceClient(http.DefaultClient, srv.URL,
		portaltest.WithToken(portaltest.AddToken(t, db, "admin", auth.Admin)))
	for i := range 2 {
		n := strconv.Itoa(i)
		_, err := c.CreateDn(ctx, connect.NewRequest(&vdav1.CreateDnRequest{Name: "dn" + n,
			AgentAddress: "127.0.0.1:972" + n, Listener: &vdav1.NvmfListener{Traddr: "127.0.0.1", Trsvcid: "442" + n}}))
		require.NoError(t, err)
		_, err = c.CreatePd(ctx, connect.NewRequest(&vdav1.CreatePdRequest{DnName: "dn" + n, Name: "pd0",
			Backend: &vdav1.CreatePdRequest_Malloc{Malloc: &vdav1.PdMalloc{Size: 4 << 30}}}))
		require.NoError(t, err)
		_, err = c.CreateCn(ctx, connect.NewRequest(&vdav1.CreateCnRequest{Name: "cn" + n,
			AgentAddress: "127.0.0.1:982" + n, Listener: &vdav1.NvmfListener{Traddr: "127.0.0.1", Trsvcid: "443" + n}}))
		require.NoError(t, err)
	}
	return srv.URL, portaltest.AddToken(t, db, "ops", auth.Operator)
}

func TestClient(t *testing.T) {
	url, token := portalWithNodes(t)
	const host = "nqn.2014-08.org.nvmexpress:uuid:8f6c3a2e-0b1d-4c5e-9f7a-1b2c3d4e5f60"
	base := Options{Portal: url, Token: token, Name: "da1", Size: 1 << 30, VDs: 2, Cntlrs: 2, HostNQN: host}

	var out bytes.Buffer
	require.NoError(t, run(context.Background(), http.DefaultClient, base, &out))
	require.Contains(t, out.String(), "array da1: 1073741824 bytes, nqn ")
	require.Contains(t, out.String(), "vd 0 on dn")
	require.Contains(t, out.String(), "vd 1 on dn")
	require.Contains(t, out.String(), "(primary)")
	require.Contains(t, out.String(), "(secondary)")
	require.Contains(t, out.String(), "nvme connect -t tcp -a 127.0.0.1 -s 443")
	require.Contains(t, out.String(), "-q "+host)

	tests := []struct {
		name string
		mod  func(*Options)
		code connect.Code
	}{
		{"same name again", func(*Options) {}, connect.CodeAlreadyExists},
		{"bad name", func(o *Options) { o.Name = "bad name" }, connect.CodeInvalidArgument},
		{"too large", func(o *Options) { o.Name = "huge"; o.Size = 1 << 50 }, connect.CodeResourceExhausted},
		{"no token", func(o *Options) { o.Name = "da3"; o.Token = "" }, connect.CodeUnauthenticated},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o := base
			tc.mod(&o)
			err := run(context.Background(), http.DefaultClient, o, io.Discard)
			require.Error(t, err)
			require.Equal(t, tc.code, connect.CodeOf(err), "%v", err)
		})
	}

	// Nothing reports (no agents), so the array never gets ready: the
	// wait ends with the reason.
	o := base
	o.Name, o.HostNQN, o.Wait = "da2", "", 300*time.Millisecond
	err := run(context.Background(), http.DefaultClient, o, io.Discard)
	require.ErrorContains(t, err, "array da2 not ready after 300ms: health HEALTH_UNKNOWN")
}

func TestParseSize(t *testing.T) {
	tests := []struct {
		in   string
		want uint64
		ok   bool
	}{
		{"4096", 4096, true},
		{"1GiB", 1 << 30, true},
		{"512MiB", 512 << 20, true},
		{"2TiB", 2 << 40, true},
		{"0", 0, false},
		{"-1GiB", 0, false},
		{"1GB", 0, false},
		{"99999999TiB", 0, false},
	}
	for _, tc := range tests {
		got, err := parseSize(tc.in)
		if !tc.ok {
			require.Error(t, err, tc.in)
			continue
		}
		require.NoError(t, err, tc.in)
		require.Equal(t, tc.want, got, tc.in)
	}
}

// TestHTTPClient: -ca-file makes the client trust the portal's CA, and
// only it.
func TestHTTPClient(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer srv.Close()
	caFile := filepath.Join(t.TempDir(), "ca.crt")
	require.NoError(t, os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o644))
	hc, err := httpClient(caFile)
	require.NoError(t, err)
	resp, err := hc.Get(srv.URL)
	require.NoError(t, err)
	resp.Body.Close()
	_, err = http.DefaultClient.Get(srv.URL)
	assert.ErrorContains(t, err, "certificate", "the system's roots do not know the test CA")
	_, err = httpClient(filepath.Join(t.TempDir(), "missing.crt"))
	assert.Error(t, err)
	require.NoError(t, os.WriteFile(caFile, []byte("junk"), 0o644))
	_, err = httpClient(caFile)
	assert.ErrorContains(t, err, "no PEM certificate")
}
