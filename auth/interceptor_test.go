package auth_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"connectrpc.com/connect"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/types/known/emptypb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/virtual-disk-array/vda"
	"github.com/virtual-disk-array/vda/auth"
)

// Procedures of a test service, one per role, and one without a policy.
const (
	readProc   = "/test.v1.TestService/Read"
	writeProc  = "/test.v1.TestService/Write"
	adminProc  = "/test.v1.TestService/Admin"
	secretProc = "/test.v1.TestService/Unlisted"
)

var policy = map[string]auth.Role{readProc: auth.ReadOnly, writeProc: auth.Operator, adminProc: auth.Admin}

// lockedBuffer is a log sink safe for the server's goroutines.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// issued is a token given to a test caller.
type issued struct {
	bearer, id, secret string
}

// env is a test server guarded by an Interceptor over an in-memory token
// table.
type env struct {
	url    string
	log    *lockedBuffer
	reg    *prometheus.Registry
	tokens map[string]issued // by name
	// lookupErr, if set, is what every lookup returns.
	lookupErr error
}

func newEnv(t *testing.T) *env {
	t.Helper()
	e := &env{log: &lockedBuffer{}, reg: prometheus.NewRegistry(), tokens: map[string]issued{}}
	stored := map[string]auth.Token{}
	for _, tt := range []struct {
		name string
		role auth.Role
	}{{"ro", auth.ReadOnly}, {"ops", auth.Operator}, {"root", auth.Admin}} {
		bearer, id, hash := auth.NewToken()
		_, secret, err := auth.Parse(bearer)
		require.NoError(t, err)
		e.tokens[tt.name] = issued{bearer, id, secret}
		stored[id] = auth.Token{ID: id, Name: tt.name, Role: tt.role, Hash: hash}
	}
	i, err := auth.NewInterceptor(auth.Config{
		Lookup: func(ctx context.Context, id string) (auth.Token, error) {
			if e.lookupErr != nil {
				return auth.Token{}, e.lookupErr
			}
			tok, ok := stored[id]
			if !ok {
				return auth.Token{}, fmt.Errorf("token %s: %w", id, vda.ErrNotFound)
			}
			return tok, nil
		},
		Policy: func(procedure string) (auth.Role, bool) {
			r, ok := policy[procedure]
			return r, ok
		},
		Logger:     slog.New(slog.NewTextHandler(e.log, nil)),
		Registerer: e.reg,
	})
	require.NoError(t, err)
	// Every procedure answers with the caller's name and role.
	whoami := func(ctx context.Context, _ *connect.Request[emptypb.Empty]) (*connect.Response[wrapperspb.StringValue], error) {
		c, ok := auth.CallerFrom(ctx)
		if !ok {
			return nil, errors.New("no caller in the context")
		}
		return connect.NewResponse(wrapperspb.String(c.Name + "/" + c.ID + "/" + c.Role.String())), nil
	}
	mux := http.NewServeMux()
	for _, p := range []string{readProc, writeProc, adminProc, secretProc} {
		mux.Handle(p, connect.NewUnaryHandler(p, whoami, connect.WithInterceptors(i)))
	}
	stream := "/test.v1.TestService/Stream"
	mux.Handle(stream, connect.NewServerStreamHandler(stream,
		func(ctx context.Context, _ *connect.Request[emptypb.Empty], s *connect.ServerStream[emptypb.Empty]) error {
			return s.Send(&emptypb.Empty{})
		}, connect.WithInterceptors(i)))
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	e.url = srv.URL
	return e
}

// call calls procedure with the Authorization header auth ("" for none).
func (e *env) call(t *testing.T, procedure, authz string) (string, error) {
	t.Helper()
	c := connect.NewClient[emptypb.Empty, wrapperspb.StringValue](http.DefaultClient, e.url+procedure)
	req := connect.NewRequest(&emptypb.Empty{})
	if authz != "" {
		req.Header().Set("Authorization", authz)
	}
	resp, err := c.CallUnary(t.Context(), req)
	if err != nil {
		return "", err
	}
	return resp.Msg.GetValue(), nil
}

func TestInterceptor(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ro, ops, root := e.tokens["ro"], e.tokens["ops"], e.tokens["root"]
	wrongSecret := "vda_" + ops.id + "_" + root.secret
	unknownID, _, _ := auth.NewToken()

	tests := []struct {
		name      string
		procedure string
		authz     string
		code      connect.Code // 0: allowed
		msg       string
		logs      []string
	}{
		{"no header", readProc, "", connect.CodeUnauthenticated,
			"missing bearer token: pass --token or set VDA_TOKEN", []string{"caller=anonymous", "reason=\"no Authorization header\""}},
		{"basic auth", readProc, "Basic dXNlcjpwYXNz", connect.CodeUnauthenticated,
			"is not a bearer token", []string{"caller=anonymous"}},
		{"bearer without a token", readProc, "Bearer", connect.CodeUnauthenticated, "malformed API token", nil},
		{"bearer garbage", readProc, "Bearer garbage", connect.CodeUnauthenticated,
			"malformed API token: want vda_<id>_<secret>", []string{"reason=\"malformed token\""}},
		{"raw token without scheme", readProc, root.bearer, connect.CodeUnauthenticated, "is not a bearer token", nil},
		{"unknown id", readProc, "Bearer " + unknownID, connect.CodeUnauthenticated,
			"invalid API token", []string{"reason=\"unknown token id\"", "caller=anonymous"}},
		{"wrong secret", readProc, "Bearer " + wrongSecret, connect.CodeUnauthenticated,
			"invalid API token", []string{"reason=\"wrong secret\"", "caller=anonymous", "token=ops", "token_id=" + ops.id}},
		{"read-only reads", readProc, "Bearer " + ro.bearer, 0, "ro/" + ro.id + "/read-only", nil},
		{"read-only writes", writeProc, "Bearer " + ro.bearer, connect.CodePermissionDenied,
			`token "ro" (read-only) may not call test.v1.TestService/Write: it needs operator`,
			[]string{"caller=ro", "token_id=" + ro.id, "role=read-only"}},
		{"read-only administers", adminProc, "Bearer " + ro.bearer, connect.CodePermissionDenied, "it needs admin", nil},
		{"operator reads", readProc, "Bearer " + ops.bearer, 0, "ops/" + ops.id + "/operator", nil},
		{"operator writes", writeProc, "Bearer " + ops.bearer, 0, "ops/" + ops.id + "/operator", nil},
		{"operator administers", adminProc, "Bearer " + ops.bearer, connect.CodePermissionDenied,
			`token "ops" (operator) may not call test.v1.TestService/Admin: it needs admin`, nil},
		{"admin administers", adminProc, "Bearer " + root.bearer, 0, "root/" + root.id + "/admin", nil},
		{"lower-case scheme", adminProc, "bearer " + root.bearer, 0, "root/" + root.id + "/admin", nil},
		{"no policy, even for an admin", secretProc, "Bearer " + root.bearer, connect.CodePermissionDenied,
			"test.v1.TestService/Unlisted is not a procedure any token may call", []string{"reason=\"no policy for the procedure\""}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := e.call(t, tt.procedure, tt.authz)
			if tt.code == 0 {
				require.NoError(t, err)
				assert.Equal(t, tt.msg, got)
				return
			}
			require.Error(t, err)
			assert.Equal(t, tt.code, connect.CodeOf(err), "%v", err)
			var ce *connect.Error
			require.ErrorAs(t, err, &ce)
			assert.Contains(t, ce.Message(), tt.msg)
			for _, w := range tt.logs {
				assert.Contains(t, e.log.String(), w)
			}
		})
	}

	t.Run("refusals are logged with the peer and the procedure", func(t *testing.T) {
		_, err := e.call(t, adminProc, "Bearer "+ops.bearer)
		require.Error(t, err)
		var line string
		for l := range strings.Lines(e.log.String()) {
			if strings.Contains(l, "procedure="+adminProc) && strings.Contains(l, "caller=ops") {
				line = l
			}
		}
		require.NotEmpty(t, line)
		assert.Contains(t, line, "level=WARN")
		assert.Contains(t, line, `msg="request refused"`)
		assert.Regexp(t, `peer=127\.0\.0\.1:\d+`, line)
		assert.Contains(t, line, "code=permission_denied")
	})
	t.Run("no secret is ever logged", func(t *testing.T) {
		logs := e.log.String()
		for name, tok := range e.tokens {
			assert.NotContains(t, logs, tok.secret, "secret of %s", name)
			assert.NotContains(t, logs, tok.bearer, "bearer of %s", name)
		}
		assert.NotContains(t, logs, "dXNlcjpwYXNz", "a Basic header")
		assert.NotContains(t, logs, "garbage")
		assert.NotContains(t, logs, wrongSecret)
	})
	t.Run("refusals are counted", func(t *testing.T) {
		assert.Equal(t, 1.0, (refusals(t, e, writeProc, "permission_denied")))
		assert.Equal(t, 7.0, (refusals(t, e, readProc, "unauthenticated")))
		assert.Equal(t, 1.0, (refusals(t, e, secretProc, "permission_denied")))
	})
}

// refusals reads vda_portal_auth_refusals_total{procedure,code}.
func refusals(t *testing.T, e *env, procedure, code string) float64 {
	t.Helper()
	families, err := e.reg.Gather()
	require.NoError(t, err)
	for _, f := range families {
		if f.GetName() != "vda_portal_auth_refusals_total" {
			continue
		}
		for _, m := range f.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["procedure"] == procedure && labels["code"] == code {
				return m.GetCounter().GetValue()
			}
		}
	}
	t.Fatalf("no refusal counted for %s %s", procedure, code)
	return 0
}

func TestInterceptorLookupFails(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.lookupErr = errors.New("database is closed")
	_, err := e.call(t, readProc, "Bearer "+e.tokens["root"].bearer)
	require.Error(t, err)
	assert.Equal(t, connect.CodeUnavailable, connect.CodeOf(err))
	assert.NotContains(t, err.Error(), "database", "the cause stays in the log")
	assert.Contains(t, e.log.String(), "database is closed")
	assert.Contains(t, e.log.String(), "level=ERROR")
	assert.NotContains(t, e.log.String(), e.tokens["root"].secret)
}

func TestInterceptorRefusesStreams(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := connect.NewClient[emptypb.Empty, emptypb.Empty](http.DefaultClient, e.url+"/test.v1.TestService/Stream")
	req := connect.NewRequest(&emptypb.Empty{})
	req.Header().Set("Authorization", "Bearer "+e.tokens["root"].bearer)
	stream, err := c.CallServerStream(t.Context(), req)
	require.NoError(t, err)
	defer stream.Close()
	assert.False(t, stream.Receive(), "a streaming call gets no message")
	assert.Equal(t, connect.CodePermissionDenied, connect.CodeOf(stream.Err()))
	assert.Contains(t, e.log.String(), "reason=\"streaming procedure\"")
}

func TestNewInterceptorConfig(t *testing.T) {
	t.Parallel()
	_, err := auth.NewInterceptor(auth.Config{})
	require.ErrorIs(t, err, vda.ErrInvalidArgument)
	assert.ErrorContains(t, err, "Lookup is required")
	assert.ErrorContains(t, err, "Policy is required")

	reg := prometheus.NewRegistry()
	cfg := auth.Config{
		Lookup:     func(context.Context, string) (auth.Token, error) { return auth.Token{}, vda.ErrNotFound },
		Policy:     func(string) (auth.Role, bool) { return 0, false },
		Registerer: reg,
	}
	_, err = auth.NewInterceptor(cfg)
	require.NoError(t, err)
	_, err = auth.NewInterceptor(cfg)
	assert.ErrorContains(t, err, "register auth metrics", "a registry takes the metrics once")
}

func TestCallerFrom(t *testing.T) {
	t.Parallel()
	_, ok := auth.CallerFrom(context.Background())
	assert.False(t, ok)
	want := auth.Caller{ID: "abcdefghijkl", Name: "n", Role: auth.Operator}
	got, ok := auth.CallerFrom(auth.WithCaller(context.Background(), want))
	assert.True(t, ok)
	assert.Equal(t, want, got)
}

// TestMiddlewareReadsNoBody: the middleware refuses from the headers,
// before the body is read, with the interceptor's codes over Connect and
// gRPC; an allowed call reaches the handler with its caller, checked once.
func TestMiddlewareReadsNoBody(t *testing.T) {
	bearer, id, hash := auth.NewToken()
	lookups := atomic.Int32{}
	i, err := auth.NewInterceptor(auth.Config{
		Lookup: func(ctx context.Context, got string) (auth.Token, error) {
			lookups.Add(1)
			if got != id {
				return auth.Token{}, vda.ErrNotFound
			}
			return auth.Token{ID: id, Name: "ro", Role: auth.ReadOnly, Hash: hash}, nil
		},
		Policy: func(procedure string) (auth.Role, bool) {
			r, ok := policy[procedure]
			return r, ok
		},
		Logger: slog.New(slog.DiscardHandler),
	})
	require.NoError(t, err)
	echo := func(ctx context.Context, req *connect.Request[wrapperspb.StringValue]) (*connect.Response[wrapperspb.StringValue], error) {
		c, _ := auth.CallerFrom(ctx)
		return connect.NewResponse(wrapperspb.String(c.Name)), nil
	}
	var read atomic.Int64
	mux := http.NewServeMux()
	for _, p := range []string{readProc, adminProc} {
		h := i.Middleware(connect.NewUnaryHandler(p, echo, connect.WithInterceptors(i)))
		mux.Handle(p, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			r.Body = countingBody{r.Body, &read}
			h.ServeHTTP(w, r)
		}))
	}
	srv := httptest.NewUnstartedServer(mux)
	srv.EnableHTTP2 = true
	srv.StartTLS()
	t.Cleanup(srv.Close)
	big := wrapperspb.String(strings.Repeat("x", 200<<10))
	for _, tc := range []struct {
		proc, authz string
		code        connect.Code
	}{
		{readProc, "", connect.CodeUnauthenticated},
		{readProc, "Bearer vda_aaaaaaaaaaaa_" + strings.Repeat("A", 43), connect.CodeUnauthenticated},
		{adminProc, "Bearer " + bearer, connect.CodePermissionDenied},
	} {
		for _, grpc := range []bool{false, true} {
			opts := []connect.ClientOption{}
			if grpc {
				opts = append(opts, connect.WithGRPC())
			}
			c := connect.NewClient[wrapperspb.StringValue, wrapperspb.StringValue](srv.Client(), srv.URL+tc.proc, opts...)
			req := connect.NewRequest(big)
			if tc.authz != "" {
				req.Header().Set("Authorization", tc.authz)
			}
			_, err := c.CallUnary(t.Context(), req)
			assert.Equal(t, tc.code, connect.CodeOf(err), "%s %q grpc %v: %v", tc.proc, tc.authz, grpc, err)
		}
	}
	assert.Zero(t, read.Load(), "a refused call's body was read")

	lookups.Store(0)
	c := connect.NewClient[wrapperspb.StringValue, wrapperspb.StringValue](srv.Client(), srv.URL+readProc)
	req := connect.NewRequest(big)
	req.Header().Set("Authorization", "Bearer "+bearer)
	resp, err := c.CallUnary(t.Context(), req)
	require.NoError(t, err)
	assert.Equal(t, "ro", resp.Msg.GetValue())
	assert.Greater(t, read.Load(), int64(100<<10))
	assert.Equal(t, int32(1), lookups.Load(), "the interceptor does not look the token up again")
}

// countingBody counts what the handlers read of a request's body.
type countingBody struct {
	io.ReadCloser
	n *atomic.Int64
}

func (b countingBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.n.Add(int64(n))
	return n, err
}
