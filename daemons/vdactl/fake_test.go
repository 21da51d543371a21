package main

import (
	"bytes"
	"context"
	"encoding/pem"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"connectrpc.com/connect"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"

	vdav1 "github.com/virtual-disk-array/vda/proto/vda/v1"
	"github.com/virtual-disk-array/vda/proto/vda/v1/vdav1connect"
)

// call is one request the fake portal received.
type call struct {
	method string
	req    proto.Message
	// auth is the request's Authorization header, "" when absent.
	auth string
}

// fakePortal is a PortalService that records every request and answers
// from handlers, keyed by method name ("CreateDn"). A method without a
// handler answers an empty response.
type fakePortal struct {
	vdav1connect.UnimplementedPortalServiceHandler

	handlers map[string]func(ctx context.Context, req proto.Message) (proto.Message, error)

	mu    sync.Mutex
	calls []call
}

// on sets the handler of method; fn takes the request type of the method
// and returns its response type.
func on[Req, Resp proto.Message](f *fakePortal, method string, fn func(ctx context.Context, req Req) (Resp, error)) {
	f.handlers[method] = func(ctx context.Context, req proto.Message) (proto.Message, error) {
		return fn(ctx, req.(Req))
	}
}

// received returns the requests received so far.
func (f *fakePortal) received() []call {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]call(nil), f.calls...)
}

// only returns the single request received, failing the test otherwise.
func (f *fakePortal) only(t *testing.T, method string) proto.Message {
	t.Helper()
	calls := f.received()
	require.Len(t, calls, 1, "calls: %v", calls)
	require.Equal(t, method, calls[0].method)
	return calls[0].req
}

func serve[Req, Resp any](ctx context.Context, f *fakePortal, method string, r *connect.Request[Req]) (*connect.Response[Resp], error) {
	msg := any(r.Msg).(proto.Message)
	f.mu.Lock()
	f.calls = append(f.calls, call{method: method, req: proto.Clone(msg), auth: r.Header().Get("Authorization")})
	h := f.handlers[method]
	f.mu.Unlock()
	if h == nil {
		return connect.NewResponse(new(Resp)), nil
	}
	resp, err := h(ctx, msg)
	if err != nil {
		return nil, err
	}
	out, ok := any(resp).(*Resp)
	if !ok {
		return nil, connect.NewError(connect.CodeInternal, fmt.Errorf("fake %s answered %T", method, resp))
	}
	return connect.NewResponse(out), nil
}

func (f *fakePortal) CreateDn(ctx context.Context, r *connect.Request[vdav1.CreateDnRequest]) (*connect.Response[vdav1.CreateDnResponse], error) {
	return serve[vdav1.CreateDnRequest, vdav1.CreateDnResponse](ctx, f, "CreateDn", r)
}
func (f *fakePortal) DeleteDn(ctx context.Context, r *connect.Request[vdav1.DeleteDnRequest]) (*connect.Response[vdav1.DeleteDnResponse], error) {
	return serve[vdav1.DeleteDnRequest, vdav1.DeleteDnResponse](ctx, f, "DeleteDn", r)
}
func (f *fakePortal) ModifyDn(ctx context.Context, r *connect.Request[vdav1.ModifyDnRequest]) (*connect.Response[vdav1.ModifyDnResponse], error) {
	return serve[vdav1.ModifyDnRequest, vdav1.ModifyDnResponse](ctx, f, "ModifyDn", r)
}
func (f *fakePortal) ListDn(ctx context.Context, r *connect.Request[vdav1.ListDnRequest]) (*connect.Response[vdav1.ListDnResponse], error) {
	return serve[vdav1.ListDnRequest, vdav1.ListDnResponse](ctx, f, "ListDn", r)
}
func (f *fakePortal) GetDn(ctx context.Context, r *connect.Request[vdav1.GetDnRequest]) (*connect.Response[vdav1.GetDnResponse], error) {
	return serve[vdav1.GetDnRequest, vdav1.GetDnResponse](ctx, f, "GetDn", r)
}
func (f *fakePortal) ListDnEvents(ctx context.Context, r *connect.Request[vdav1.ListNodeEventsRequest]) (*connect.Response[vdav1.ListNodeEventsResponse], error) {
	return serve[vdav1.ListNodeEventsRequest, vdav1.ListNodeEventsResponse](ctx, f, "ListDnEvents", r)
}
func (f *fakePortal) CreatePd(ctx context.Context, r *connect.Request[vdav1.CreatePdRequest]) (*connect.Response[vdav1.CreatePdResponse], error) {
	return serve[vdav1.CreatePdRequest, vdav1.CreatePdResponse](ctx, f, "CreatePd", r)
}
func (f *fakePortal) DeletePd(ctx context.Context, r *connect.Request[vdav1.DeletePdRequest]) (*connect.Response[vdav1.DeletePdResponse], error) {
	return serve[vdav1.DeletePdRequest, vdav1.DeletePdResponse](ctx, f, "DeletePd", r)
}
func (f *fakePortal) ModifyPd(ctx context.Context, r *connect.Request[vdav1.ModifyPdRequest]) (*connect.Response[vdav1.ModifyPdResponse], error) {
	return serve[vdav1.ModifyPdRequest, vdav1.ModifyPdResponse](ctx, f, "ModifyPd", r)
}
func (f *fakePortal) ListPd(ctx context.Context, r *connect.Request[vdav1.ListPdRequest]) (*connect.Response[vdav1.ListPdResponse], error) {
	return serve[vdav1.ListPdRequest, vdav1.ListPdResponse](ctx, f, "ListPd", r)
}
func (f *fakePortal) GetPd(ctx context.Context, r *connect.Request[vdav1.GetPdRequest]) (*connect.Response[vdav1.GetPdResponse], error) {
	return serve[vdav1.GetPdRequest, vdav1.GetPdResponse](ctx, f, "GetPd", r)
}
func (f *fakePortal) CreateCn(ctx context.Context, r *connect.Request[vdav1.CreateCnRequest]) (*connect.Response[vdav1.CreateCnResponse], error) {
	return serve[vdav1.CreateCnRequest, vdav1.CreateCnResponse](ctx, f, "CreateCn", r)
}
func (f *fakePortal) DeleteCn(ctx context.Context, r *connect.Request[vdav1.DeleteCnRequest]) (*connect.Response[vdav1.DeleteCnResponse], error) {
	return serve[vdav1.DeleteCnRequest, vdav1.DeleteCnResponse](ctx, f, "DeleteCn", r)
}
func (f *fakePortal) ModifyCn(ctx context.Context, r *connect.Request[vdav1.ModifyCnRequest]) (*connect.Response[vdav1.ModifyCnResponse], error) {
	return serve[vdav1.ModifyCnRequest, vdav1.ModifyCnResponse](ctx, f, "ModifyCn", r)
}
func (f *fakePortal) ListCn(ctx context.Context, r *connect.Request[vdav1.ListCnRequest]) (*connect.Response[vdav1.ListCnResponse], error) {
	return serve[vdav1.ListCnRequest, vdav1.ListCnResponse](ctx, f, "ListCn", r)
}
func (f *fakePortal) GetCn(ctx context.Context, r *connect.Request[vdav1.GetCnRequest]) (*connect.Response[vdav1.GetCnResponse], error) {
	return serve[vdav1.GetCnRequest, vdav1.GetCnResponse](ctx, f, "GetCn", r)
}
func (f *fakePortal) ListCnEvents(ctx context.Context, r *connect.Request[vdav1.ListNodeEventsRequest]) (*connect.Response[vdav1.ListNodeEventsResponse], error) {
	return serve[vdav1.ListNodeEventsRequest, vdav1.ListNodeEventsResponse](ctx, f, "ListCnEvents", r)
}
func (f *fakePortal) CreateDa(ctx context.Context, r *connect.Request[vdav1.CreateDaRequest]) (*connect.Response[vdav1.CreateDaResponse], error) {
	return serve[vdav1.CreateDaRequest, vdav1.CreateDaResponse](ctx, f, "CreateDa", r)
}
func (f *fakePortal) DeleteDa(ctx context.Context, r *connect.Request[vdav1.DeleteDaRequest]) (*connect.Response[vdav1.DeleteDaResponse], error) {
	return serve[vdav1.DeleteDaRequest, vdav1.DeleteDaResponse](ctx, f, "DeleteDa", r)
}
func (f *fakePortal) ModifyDa(ctx context.Context, r *connect.Request[vdav1.ModifyDaRequest]) (*connect.Response[vdav1.ModifyDaResponse], error) {
	return serve[vdav1.ModifyDaRequest, vdav1.ModifyDaResponse](ctx, f, "ModifyDa", r)
}
func (f *fakePortal) ListDa(ctx context.Context, r *connect.Request[vdav1.ListDaRequest]) (*connect.Response[vdav1.ListDaResponse], error) {
	return serve[vdav1.ListDaRequest, vdav1.ListDaResponse](ctx, f, "ListDa", r)
}
func (f *fakePortal) GetDa(ctx context.Context, r *connect.Request[vdav1.GetDaRequest]) (*connect.Response[vdav1.GetDaResponse], error) {
	return serve[vdav1.GetDaRequest, vdav1.GetDaResponse](ctx, f, "GetDa", r)
}
func (f *fakePortal) CreateExp(ctx context.Context, r *connect.Request[vdav1.CreateExpRequest]) (*connect.Response[vdav1.CreateExpResponse], error) {
	return serve[vdav1.CreateExpRequest, vdav1.CreateExpResponse](ctx, f, "CreateExp", r)
}
func (f *fakePortal) DeleteExp(ctx context.Context, r *connect.Request[vdav1.DeleteExpRequest]) (*connect.Response[vdav1.DeleteExpResponse], error) {
	return serve[vdav1.DeleteExpRequest, vdav1.DeleteExpResponse](ctx, f, "DeleteExp", r)
}
func (f *fakePortal) ModifyExp(ctx context.Context, r *connect.Request[vdav1.ModifyExpRequest]) (*connect.Response[vdav1.ModifyExpResponse], error) {
	return serve[vdav1.ModifyExpRequest, vdav1.ModifyExpResponse](ctx, f, "ModifyExp", r)
}
func (f *fakePortal) ListExp(ctx context.Context, r *connect.Request[vdav1.ListExpRequest]) (*connect.Response[vdav1.ListExpResponse], error) {
	return serve[vdav1.ListExpRequest, vdav1.ListExpResponse](ctx, f, "ListExp", r)
}
func (f *fakePortal) GetExp(ctx context.Context, r *connect.Request[vdav1.GetExpRequest]) (*connect.Response[vdav1.GetExpResponse], error) {
	return serve[vdav1.GetExpRequest, vdav1.GetExpResponse](ctx, f, "GetExp", r)
}
func (f *fakePortal) GetClusterSummary(ctx context.Context, r *connect.Request[vdav1.GetClusterSummaryRequest]) (*connect.Response[vdav1.GetClusterSummaryResponse], error) {
	return serve[vdav1.GetClusterSummaryRequest, vdav1.GetClusterSummaryResponse](ctx, f, "GetClusterSummary", r)
}
func (f *fakePortal) SyncupDn(ctx context.Context, r *connect.Request[vdav1.SyncupDnRequest]) (*connect.Response[vdav1.SyncupDnResponse], error) {
	return serve[vdav1.SyncupDnRequest, vdav1.SyncupDnResponse](ctx, f, "SyncupDn", r)
}
func (f *fakePortal) SyncupCn(ctx context.Context, r *connect.Request[vdav1.SyncupCnRequest]) (*connect.Response[vdav1.SyncupCnResponse], error) {
	return serve[vdav1.SyncupCnRequest, vdav1.SyncupCnResponse](ctx, f, "SyncupCn", r)
}
func (f *fakePortal) CreateToken(ctx context.Context, r *connect.Request[vdav1.CreateTokenRequest]) (*connect.Response[vdav1.CreateTokenResponse], error) {
	return serve[vdav1.CreateTokenRequest, vdav1.CreateTokenResponse](ctx, f, "CreateToken", r)
}
func (f *fakePortal) DeleteToken(ctx context.Context, r *connect.Request[vdav1.DeleteTokenRequest]) (*connect.Response[vdav1.DeleteTokenResponse], error) {
	return serve[vdav1.DeleteTokenRequest, vdav1.DeleteTokenResponse](ctx, f, "DeleteToken", r)
}
func (f *fakePortal) ListToken(ctx context.Context, r *connect.Request[vdav1.ListTokenRequest]) (*connect.Response[vdav1.ListTokenResponse], error) {
	return serve[vdav1.ListTokenRequest, vdav1.ListTokenResponse](ctx, f, "ListToken", r)
}
func (f *fakePortal) WhoAmI(ctx context.Context, r *connect.Request[vdav1.WhoAmIRequest]) (*connect.Response[vdav1.WhoAmIResponse], error) {
	return serve[vdav1.WhoAmIRequest, vdav1.WhoAmIResponse](ctx, f, "WhoAmI", r)
}

// TestMain keeps the tests from the environment of the person running
// them: no VDA_* variables, and a config directory of its own with no
// vdactl.json, so that the default config file is missing. Tests that
// need either set them with t.Setenv.
func TestMain(m *testing.M) {
	for _, v := range []string{"VDA_PORTAL", "VDA_TOKEN", "VDA_TOKEN_FILE", "VDA_CA_FILE", "VDA_CONFIG"} {
		os.Unsetenv(v)
	}
	dir, err := os.MkdirTemp("", "vdactl-test-config")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Setenv("XDG_CONFIG_HOME", dir)
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// newFakeHandler returns a fake portal and the HTTP handler serving it.
func newFakeHandler() (*fakePortal, http.Handler) {
	f := &fakePortal{handlers: map[string]func(context.Context, proto.Message) (proto.Message, error){}}
	path, h := vdav1connect.NewPortalServiceHandler(f)
	mux := http.NewServeMux()
	mux.Handle(path, h)
	return f, mux
}

// newFake starts a fake portal over HTTP and returns it with its URL.
func newFake(t *testing.T) (*fakePortal, string) {
	t.Helper()
	f, h := newFakeHandler()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return f, srv.URL
}

// tlsFake is a fake portal over HTTPS (HTTP/2 offered) with a certificate
// of httptest's own CA.
type tlsFake struct {
	*fakePortal
	// url is https://127.0.0.1:port.
	url string
	// caFile is a PEM file of the certificate that signed the server's.
	caFile string

	mu     sync.Mutex
	protos []string // the HTTP version of each request
}

// newTLSFake starts a fake portal over HTTPS.
func newTLSFake(t *testing.T) *tlsFake {
	t.Helper()
	f, h := newFakeHandler()
	tf := &tlsFake{fakePortal: f}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tf.mu.Lock()
		tf.protos = append(tf.protos, r.Proto)
		tf.mu.Unlock()
		h.ServeHTTP(w, r)
	}))
	srv.EnableHTTP2 = true
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshakes are expected
	srv.StartTLS()
	t.Cleanup(srv.Close)
	tf.url = srv.URL
	tf.caFile = filepath.Join(t.TempDir(), "ca.pem")
	caPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	require.NoError(t, os.WriteFile(tf.caFile, caPEM, 0o644))
	return tf
}

// httpVersions returns the HTTP version of each request so far.
func (tf *tlsFake) httpVersions() []string {
	tf.mu.Lock()
	defer tf.mu.Unlock()
	return append([]string(nil), tf.protos...)
}

// result is what one run of vdactl did.
type result struct {
	stdout, stderr string
	err            error
}

// vdactl runs the CLI in process against the portal at url.
func vdactl(t *testing.T, url string, args ...string) result {
	t.Helper()
	var stdout, stderr bytes.Buffer
	err := run(t.Context(), append([]string{"--portal", url}, args...), &stdout, &stderr)
	return result{stdout: stdout.String(), stderr: stderr.String(), err: err}
}

// ok fails the test unless r succeeded with nothing on stderr.
func (r result) ok(t *testing.T) result {
	t.Helper()
	require.NoError(t, r.err, "stderr: %s", r.stderr)
	require.Empty(t, r.stderr)
	return r
}
