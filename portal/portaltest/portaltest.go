// Package portaltest runs a real portal for tests: the Connect handler over a
// store, served over h2c on a loopback port, and clients for it.
package portaltest

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/stretchr/testify/require"
	"github.com/virtual-disk-array/vda/portal"
	"github.com/virtual-disk-array/vda/proto/vda/v1/vdav1connect"
	"github.com/virtual-disk-array/vda/store"
)

// Server is a portal serving on loopback until the test ends.
type Server struct {
	// URL is the base URL, http://127.0.0.1:port.
	URL string
}

// Start serves a portal over db on a loopback port until t ends.
func Start(t testing.TB, db *store.DB) *Server {
	t.Helper()
	svc, err := portal.New(portal.Config{DB: db, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	require.NoError(t, err)
	h, err := portal.NewHandler(svc, portal.HandlerConfig{})
	require.NoError(t, err)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- portal.Serve(ctx, ln, h, 5*time.Second) }()
	t.Cleanup(func() {
		cancel()
		require.NoError(t, <-done)
	})
	return &Server{URL: "http://" + ln.Addr().String()}
}

// Client returns a Connect-protocol client of the server.
func (s *Server) Client(opts ...connect.ClientOption) vdav1connect.PortalServiceClient {
	return vdav1connect.NewPortalServiceClient(http.DefaultClient, s.URL, opts...)
}

// GRPCClient returns a gRPC-protocol client over h2c.
func (s *Server) GRPCClient() vdav1connect.PortalServiceClient {
	return vdav1connect.NewPortalServiceClient(H2CClient(), s.URL, connect.WithGRPC())
}

// H2CClient is an HTTP client that speaks unencrypted HTTP/2, as gRPC needs.
func H2CClient() *http.Client {
	protocols := new(http.Protocols)
	protocols.SetUnencryptedHTTP2(true)
	return &http.Client{Transport: &http.Transport{Protocols: protocols}}
}
