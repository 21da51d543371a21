package portal_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"connectrpc.com/connect"
	"connectrpc.com/grpchealth"
	"connectrpc.com/grpcreflect"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"

	"github.com/virtual-disk-array/vda"
	"github.com/virtual-disk-array/vda/auth"
	"github.com/virtual-disk-array/vda/portal"
	"github.com/virtual-disk-array/vda/portal/portaltest"
	vdav1 "github.com/virtual-disk-array/vda/proto/vda/v1"
	"github.com/virtual-disk-array/vda/proto/vda/v1/vdav1connect"
	"github.com/virtual-disk-array/vda/store"
	"github.com/virtual-disk-array/vda/store/storetest"
)

// logBuffer is a goroutine-safe log sink.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// serveHandler serves h over h2c on loopback until t ends and returns its
// base URL, for tests that build the handler themselves.
func serveHandler(t *testing.T, h http.Handler) string {
	t.Helper()
	return portaltest.Serve(t, h)
}

// newHandler builds a portal handler over db that logs to log.
func newHandler(t *testing.T, db *store.DB, log *logBuffer, cfg portal.HandlerConfig) http.Handler {
	t.Helper()
	svc, err := portal.New(portal.Config{DB: db, Logger: slog.New(slog.NewTextHandler(log, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	require.NoError(t, err)
	h, err := portal.NewHandler(svc, cfg)
	require.NoError(t, err)
	return h
}

// methodRecorder is a client interceptor that records the HTTP method of
// each call.
type methodRecorder struct {
	mu      sync.Mutex
	methods []string
}

func (m *methodRecorder) WrapUnary(next connect.UnaryFunc) connect.UnaryFunc {
	return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
		resp, err := next(ctx, req)
		m.mu.Lock()
		m.methods = append(m.methods, req.HTTPMethod())
		m.mu.Unlock()
		return resp, err
	}
}

func (m *methodRecorder) WrapStreamingClient(next connect.StreamingClientFunc) connect.StreamingClientFunc {
	return next
}

func (m *methodRecorder) WrapStreamingHandler(next connect.StreamingHandlerFunc) connect.StreamingHandlerFunc {
	return next
}

func TestProtocols(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		srv := portaltest.Start(t, db)
		gets := &methodRecorder{}
		clients := []struct {
			name string
			c    client
		}{
			{"connect", srv.Client()},
			{"connect json", srv.Client(connect.WithProtoJSON())},
			{"connect get", srv.Client(connect.WithHTTPGet(), connect.WithInterceptors(gets))},
			{"grpc", srv.GRPCClient()},
			{"grpc-web", srv.Client(connect.WithGRPCWeb())},
			{"grpc-web json over h2c", vdav1connect.NewPortalServiceClient(portaltest.H2CClient(), srv.URL, connect.WithGRPCWeb(), connect.WithProtoJSON(), portaltest.WithToken(srv.Token))},
		}
		for i, tt := range clients {
			t.Run(tt.name, func(t *testing.T) {
				name := "dn" + string(rune('a'+i))
				created := must(t, tt.c.CreateDn, &vdav1.CreateDnRequest{
					Name: name, AgentAddress: "h:1", Listener: tcp("10.0.0.1", 4420), Description: "via " + tt.name,
				}).GetDn()
				assert.Equal(t, name, created.GetName())
				got := getDn(t, tt.c, name)
				assert.True(t, proto.Equal(created, got), "GetDn differs from CreateDn")
				assert.Equal(t, "via "+tt.name, got.GetDescription())
				assert.NotEmpty(t, must(t, tt.c.ListDn, &vdav1.ListDnRequest{}).GetDns())

				// Errors keep their code and message on every protocol.
				_, err := do(t, tt.c.GetDn, &vdav1.GetDnRequest{Name: "nope"})
				requireCode(t, err, connect.CodeNotFound, "dn nope")
				_, err = do(t, tt.c.CreateDn, &vdav1.CreateDnRequest{Name: "bad name"})
				requireCode(t, err, connect.CodeInvalidArgument, `name "bad name"`, "listener is required")
			})
		}
		t.Run("GET is used for reads", func(t *testing.T) {
			gets.mu.Lock()
			defer gets.mu.Unlock()
			assert.Equal(t, []string{http.MethodPost, http.MethodGet, http.MethodGet, http.MethodGet, http.MethodPost}, gets.methods)
		})
	})
}

func TestHealth(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		srv := portaltest.Start(t, db)
		clients := map[string]*grpchealth.Client{
			"grpc":    grpchealth.NewClient(portaltest.H2CClient(), srv.URL, connect.WithGRPC()),
			"connect": grpchealth.NewClient(http.DefaultClient, srv.URL),
		}
		for name, hc := range clients {
			t.Run(name, func(t *testing.T) {
				for _, svc := range []string{"", vdav1connect.PortalServiceName} {
					resp, err := hc.Check(t.Context(), &grpchealth.CheckRequest{Service: svc})
					require.NoError(t, err)
					assert.Equal(t, grpchealth.StatusServing, resp.Status, "service %q", svc)
				}
				_, err := hc.Check(t.Context(), &grpchealth.CheckRequest{Service: "vda.v1.Nope"})
				requireCode(t, err, connect.CodeNotFound, `unknown service "vda.v1.Nope"`)
			})
		}
	})
}

func TestReflection(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		srv := portaltest.Start(t, db)
		rc := grpcreflect.NewClient(portaltest.H2CClient(), srv.URL, connect.WithGRPC())
		stream := rc.NewStream(t.Context())
		t.Cleanup(func() { _, _ = stream.Close() })
		services, err := stream.ListServices()
		require.NoError(t, err)
		var got []string
		for _, s := range services {
			got = append(got, string(s))
		}
		assert.Contains(t, got, "vda.v1.PortalService")
		assert.Contains(t, got, "grpc.health.v1.Health")

		files, err := stream.FileContainingSymbol("vda.v1.PortalService")
		require.NoError(t, err)
		require.NotEmpty(t, files)
		assert.Equal(t, "vda/v1/portal.proto", files[0].GetName())
		var methods []string
		for _, s := range files[0].GetService() {
			for _, m := range s.GetMethod() {
				methods = append(methods, m.GetName())
			}
		}
		assert.Contains(t, methods, "CreateDa")
		assert.Contains(t, methods, "GetClusterSummary")
		assert.Contains(t, methods, "ListDnEvents")
		assert.Contains(t, methods, "ListCnEvents")
		assert.Contains(t, methods, "WhoAmI")
		assert.Len(t, methods, 34)
	})
}

// TestNilSubMessages: a request without a required sub-message is refused,
// not dereferenced.
func TestNilSubMessages(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		c := start(t, db)
		tests := []struct {
			name string
			call func() error
			want []string
		}{
			{"CreateDn without a listener", func() error {
				_, err := do(t, c.CreateDn, &vdav1.CreateDnRequest{Name: "d1", AgentAddress: "h:1"})
				return err
			}, []string{"listener is required"}},
			{"CreateCn without a listener", func() error {
				_, err := do(t, c.CreateCn, &vdav1.CreateCnRequest{Name: "c1", AgentAddress: "h:1"})
				return err
			}, []string{"listener is required"}},
			{"empty CreateDn", func() error { _, err := do(t, c.CreateDn, &vdav1.CreateDnRequest{}); return err },
				[]string{"name is empty", `agent_address "": want host:port`, "listener is required"}},
			{"empty CreatePd", func() error { _, err := do(t, c.CreatePd, &vdav1.CreatePdRequest{}); return err },
				[]string{"dn_name is empty", "name is empty", "a backend is required"}},
			{"empty CreateDa", func() error { _, err := do(t, c.CreateDa, &vdav1.CreateDaRequest{}); return err },
				[]string{"name is empty", "size is 0"}},
			{"empty CreateExp", func() error { _, err := do(t, c.CreateExp, &vdav1.CreateExpRequest{}); return err },
				[]string{"da_name is empty", "name is empty", "host_nqn is empty"}},
			{"empty ModifyDn", func() error { _, err := do(t, c.ModifyDn, &vdav1.ModifyDnRequest{}); return err },
				[]string{"name is empty"}},
			{"empty ModifyPd", func() error { _, err := do(t, c.ModifyPd, &vdav1.ModifyPdRequest{}); return err },
				[]string{"dn_name is empty", "name is empty"}},
			{"empty GetExp", func() error { _, err := do(t, c.GetExp, &vdav1.GetExpRequest{}); return err },
				[]string{"da_name is empty", "name is empty"}},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				requireCode(t, tt.call(), connect.CodeInvalidArgument, tt.want...)
			})
		}
		t.Run("ModifyDn without a listener keeps it", func(t *testing.T) {
			mkDn(t, c, "d1", "")
			got := must(t, c.ModifyDn, &vdav1.ModifyDnRequest{Name: "d1", Location: ptr("b")}).GetDn()
			assert.True(t, proto.Equal(tcp("10.0.0.1", 4420), got.GetListener()))
		})
		t.Run("nothing was created", func(t *testing.T) {
			assert.Equal(t, []string{"d1"}, names(must(t, c.ListDn, &vdav1.ListDnRequest{}).GetDns()))
			s := summary(t, c)
			assert.Zero(t, s.GetPdCount()+s.GetCnCount()+s.GetDaCount()+s.GetExpCount())
		})
	})
}

// panicker panics in every call carrying the header X-Panic.
var panicker = connect.UnaryInterceptorFunc(func(next connect.UnaryFunc) connect.UnaryFunc {
	return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
		if req.Header().Get("X-Panic") != "" {
			panic("boom: secret detail")
		}
		return next(ctx, req)
	}
})

func TestPanicIsInternal(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		var log logBuffer
		h := newHandler(t, db, &log, portal.HandlerConfig{Options: []connect.HandlerOption{connect.WithInterceptors(panicker)}})
		token := portaltest.AddToken(t, db, "admin", auth.Admin)
		c := vdav1connect.NewPortalServiceClient(portaltest.H2CClient(), serveHandler(t, h), connect.WithGRPC(), portaltest.WithToken(token))

		req := connect.NewRequest(&vdav1.GetClusterSummaryRequest{})
		req.Header().Set("X-Panic", "1")
		_, err := c.GetClusterSummary(t.Context(), req)
		requireCode(t, err, connect.CodeInternal)
		var ce *connect.Error
		require.True(t, errors.As(err, &ce))
		assert.Equal(t, "internal error; see the portal log", ce.Message())
		assert.Contains(t, log.String(), "panic in handler")
		assert.Contains(t, log.String(), "boom: secret detail")
		assert.Contains(t, log.String(), "code=internal", "the request log records the code")

		// The portal goes on serving.
		assert.NotNil(t, summary(t, c))
	})
}

// TestStoreGoneIsInternal: a database error is CodeInternal with a generic
// message; the cause goes to the log, never to the client.
func TestStoreGoneIsInternal(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		var log logBuffer
		// Insecure: with tokens on, a closed store refuses every call
		// before it reaches the service (Unavailable; TestAuthStoreGone).
		url := serveHandler(t, newHandler(t, db, &log, portal.HandlerConfig{Insecure: true}))
		c := vdav1connect.NewPortalServiceClient(http.DefaultClient, url)
		mkDn(t, c, "d1", "")
		require.NoError(t, db.Close())

		calls := map[string]func() error{
			"GetDn":    func() error { _, err := do(t, c.GetDn, &vdav1.GetDnRequest{Name: "d1"}); return err },
			"ListDn":   func() error { _, err := do(t, c.ListDn, &vdav1.ListDnRequest{}); return err },
			"CreateCn": func() error { _, err := do(t, c.CreateCn, cnCreate(validNode())); return err },
			"CreateDa": func() error { _, err := do(t, c.CreateDa, daReq("a1", 4096, 1, 1)); return err },
			"GetClusterSummary": func() error {
				_, err := do(t, c.GetClusterSummary, &vdav1.GetClusterSummaryRequest{})
				return err
			},
		}
		for name, call := range calls {
			t.Run(name, func(t *testing.T) {
				err := call()
				requireCode(t, err, connect.CodeInternal)
				var ce *connect.Error
				require.True(t, errors.As(err, &ce))
				assert.Equal(t, "internal error; see the portal log", ce.Message())
				assert.NotContains(t, strings.ToLower(err.Error()), "sql")
				assert.Contains(t, log.String(), "procedure=/vda.v1.PortalService/"+name)
			})
		}
		t.Run("the log has the cause", func(t *testing.T) {
			assert.Contains(t, log.String(), "database is closed")
		})
		t.Run("validation still answers", func(t *testing.T) {
			_, err := do(t, c.GetDn, &vdav1.GetDnRequest{})
			requireCode(t, err, connect.CodeInvalidArgument, "name is empty")
		})
		t.Run("health says not serving", func(t *testing.T) {
			resp, err := grpchealth.NewClient(http.DefaultClient, url).Check(t.Context(), &grpchealth.CheckRequest{})
			require.NoError(t, err)
			assert.Equal(t, grpchealth.StatusNotServing, resp.Status)
		})
	})
}

func TestMetrics(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		reg := prometheus.NewRegistry()
		var log logBuffer
		token := portaltest.AddToken(t, db, "admin", auth.Admin)
		c := vdav1connect.NewPortalServiceClient(http.DefaultClient, serveHandler(t, newHandler(t, db, &log, portal.HandlerConfig{Registerer: reg})),
			portaltest.WithToken(token))
		mkDn(t, c, "d1", "")
		getDn(t, c, "d1")
		_, err := do(t, c.GetDn, &vdav1.GetDnRequest{Name: "nope"})
		requireCode(t, err, connect.CodeNotFound)

		families, err := reg.Gather()
		require.NoError(t, err)
		counts := map[string]float64{}
		var observed uint64
		for _, f := range families {
			for _, m := range f.GetMetric() {
				labels := map[string]string{}
				for _, l := range m.GetLabel() {
					labels[l.GetName()] = l.GetValue()
				}
				switch f.GetName() {
				case "vda_portal_requests_total":
					counts[labels["procedure"]+" "+labels["code"]] = m.GetCounter().GetValue()
				case "vda_portal_request_duration_seconds":
					observed += m.GetHistogram().GetSampleCount()
				}
			}
		}
		assert.Equal(t, map[string]float64{
			"/vda.v1.PortalService/CreateDn ok":     1,
			"/vda.v1.PortalService/GetDn ok":        1,
			"/vda.v1.PortalService/GetDn not_found": 1,
		}, counts)
		assert.Equal(t, uint64(3), observed)

		// A registry takes the metrics once.
		svc, err := portal.New(portal.Config{DB: db})
		require.NoError(t, err)
		_, err = portal.NewHandler(svc, portal.HandlerConfig{Registerer: reg})
		assert.ErrorContains(t, err, "register portal metrics")

		// Reads log at debug, failures and changes at info.
		assert.Contains(t, log.String(), "level=DEBUG msg=request procedure=/vda.v1.PortalService/GetDn code=ok")
		assert.Contains(t, log.String(), "level=INFO msg=request procedure=/vda.v1.PortalService/GetDn code=not_found")
		assert.Contains(t, log.String(), "level=INFO msg=request procedure=/vda.v1.PortalService/CreateDn code=ok")
	})
}

func TestNewNeedsAStore(t *testing.T) {
	t.Parallel()
	_, err := portal.New(portal.Config{})
	require.ErrorIs(t, err, vda.ErrInvalidArgument)
	assert.ErrorContains(t, err, "portal: DB is required")
}

func TestServe(t *testing.T) {
	t.Parallel()
	// serve runs Serve on h until the returned stop is called; stop returns
	// Serve's result and how long it took to return.
	serve := func(t *testing.T, h http.Handler, grace time.Duration) (string, func() (error, time.Duration)) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- portal.Serve(ctx, ln, h, grace) }()
		return "http://" + ln.Addr().String(), func() (error, time.Duration) {
			start := time.Now()
			cancel()
			select {
			case err := <-done:
				return err, time.Since(start)
			case <-time.After(grace + 5*time.Second):
				t.Fatal("Serve did not return")
				return nil, 0
			}
		}
	}

	t.Run("unused connections do not hold it up", func(t *testing.T) {
		t.Parallel()
		url, stop := serve(t, http.NotFoundHandler(), 5*time.Second)
		for range 3 {
			conn, err := net.Dial("tcp", strings.TrimPrefix(url, "http://"))
			require.NoError(t, err)
			defer conn.Close()
		}
		time.Sleep(50 * time.Millisecond) // let the server accept them
		err, took := stop()
		assert.NoError(t, err)
		assert.Less(t, took, time.Second)
	})
	t.Run("waits for calls in flight", func(t *testing.T) {
		t.Parallel()
		entered, release := make(chan struct{}), make(chan struct{})
		url, stop := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			close(entered)
			<-release
			_, _ = io.WriteString(w, "done")
		}), 5*time.Second)
		got := make(chan string, 1)
		go func() {
			resp, err := http.Get(url)
			if err != nil {
				got <- err.Error()
				return
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			got <- string(b)
		}()
		<-entered
		time.AfterFunc(200*time.Millisecond, func() { close(release) })
		err, took := stop()
		assert.NoError(t, err)
		assert.GreaterOrEqual(t, took, 150*time.Millisecond)
		assert.Equal(t, "done", <-got)
	})
	t.Run("gives up after the grace", func(t *testing.T) {
		t.Parallel()
		entered, canceled := make(chan struct{}), make(chan struct{})
		url, stop := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			close(entered)
			<-r.Context().Done()
			close(canceled)
		}), 200*time.Millisecond)
		go func() {
			if resp, err := http.Get(url); err == nil {
				resp.Body.Close()
			}
		}()
		<-entered
		err, took := stop()
		assert.ErrorIs(t, err, context.DeadlineExceeded)
		assert.Less(t, took, 2*time.Second)
		select {
		case <-canceled:
		case <-time.After(5 * time.Second):
			t.Error("the call left running was not canceled")
		}
	})
}
