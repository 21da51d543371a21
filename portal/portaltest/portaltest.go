// Package portaltest runs a real portal for tests: the Connect handler over a
// store, served over h2c on a loopback port, with API tokens on as in
// production, and clients that send a token.
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
	"github.com/virtual-disk-array/vda/auth"
	"github.com/virtual-disk-array/vda/portal"
	"github.com/virtual-disk-array/vda/proto/vda/v1/vdav1connect"
	"github.com/virtual-disk-array/vda/store"
)

// Server is a portal serving on loopback until the test ends.
type Server struct {
	// URL is the base URL, http://127.0.0.1:port.
	URL string
	// Token is an admin API token ("vda_<id>_<secret>") stored in the
	// server's store; Client and GRPCClient send it.
	Token string

	db *store.DB
}

// Start serves a portal over db on a loopback port until t ends, with
// tokens required; it stores an admin token (Server.Token) named
// "portaltest-<id>", so that several servers may share one store.
func Start(t testing.TB, db *store.DB) *Server {
	t.Helper()
	svc, err := portal.New(portal.Config{DB: db, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	require.NoError(t, err)
	h, err := portal.NewHandler(svc, portal.HandlerConfig{})
	require.NoError(t, err)
	s := &Server{URL: Serve(t, h), db: db}
	bearer, id, hash := auth.NewToken()
	require.NoError(t, db.Update(context.Background(), func(ctx context.Context, tx *store.Tx) error {
		return tx.CreateToken(ctx, &store.Token{ID: id, Name: "portaltest-" + id, Role: auth.Admin.String(), Hash: hash})
	}))
	s.Token = bearer
	return s
}

// Serve serves h over h2c on a loopback port until t ends and returns its
// base URL, for tests that build the handler themselves.
func Serve(t testing.TB, h http.Handler) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- portal.Serve(ctx, ln, h, 5*time.Second) }()
	t.Cleanup(func() {
		cancel()
		require.NoError(t, <-done)
	})
	return "http://" + ln.Addr().String()
}

// AddToken stores a new API token of role named name in the server's
// store and returns its bearer string.
func (s *Server) AddToken(t testing.TB, name string, role auth.Role) string {
	t.Helper()
	return AddToken(t, s.db, name, role)
}

// AddToken stores a new API token of role named name in db and returns
// its bearer string.
func AddToken(t testing.TB, db *store.DB, name string, role auth.Role) string {
	t.Helper()
	bearer, id, hash := auth.NewToken()
	require.NoError(t, db.Update(context.Background(), func(ctx context.Context, tx *store.Tx) error {
		return tx.CreateToken(ctx, &store.Token{ID: id, Name: name, Role: role.String(), Hash: hash, Description: "portaltest"})
	}))
	return bearer
}

// Client returns a Connect-protocol client of the server that sends the
// admin token.
func (s *Server) Client(opts ...connect.ClientOption) vdav1connect.PortalServiceClient {
	return s.ClientWithToken(s.Token, opts...)
}

// ClientWithToken returns a Connect-protocol client that sends token
// (none if "").
func (s *Server) ClientWithToken(token string, opts ...connect.ClientOption) vdav1connect.PortalServiceClient {
	return vdav1connect.NewPortalServiceClient(http.DefaultClient, s.URL, append([]connect.ClientOption{WithToken(token)}, opts...)...)
}

// GRPCClient returns a gRPC-protocol client over h2c that sends the admin
// token.
func (s *Server) GRPCClient() vdav1connect.PortalServiceClient {
	return s.GRPCClientWithToken(s.Token)
}

// GRPCClientWithToken returns a gRPC-protocol client over h2c that sends
// token (none if "").
func (s *Server) GRPCClientWithToken(token string) vdav1connect.PortalServiceClient {
	return vdav1connect.NewPortalServiceClient(H2CClient(), s.URL, connect.WithGRPC(), WithToken(token))
}

// WithToken makes a client send "Authorization: Bearer <token>" with
// every call; "" sends nothing. It is auth.WithBearer.
func WithToken(token string) connect.ClientOption {
	return auth.WithBearer(token)
}

// H2CClient is an HTTP client that speaks unencrypted HTTP/2, as gRPC needs.
func H2CClient() *http.Client {
	protocols := new(http.Protocols)
	protocols.SetUnencryptedHTTP2(true)
	return &http.Client{Transport: &http.Transport{Protocols: protocols}}
}
