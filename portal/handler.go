package portal

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"connectrpc.com/connect"
	"connectrpc.com/grpchealth"
	"connectrpc.com/grpcreflect"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/virtual-disk-array/vda/auth"
	"github.com/virtual-disk-array/vda/proto/vda/v1/vdav1connect"
	"github.com/virtual-disk-array/vda/store"
)

// MaxRequestBytes bounds a request's message, decompressed: the largest,
// a CreateDa, is a few hundred bytes.
const MaxRequestBytes = 1 << 20

// HandlerConfig configures NewHandler.
type HandlerConfig struct {
	// Logger receives one line per request; nil means the service's logger.
	Logger *slog.Logger
	// Registerer receives the request metrics; nil means no metrics.
	Registerer prometheus.Registerer
	// Options are passed to every Connect handler, after VDA's own.
	Options []connect.HandlerOption
	// Insecure serves every caller as an admin, without tokens: for tests
	// and single-user embedding only. By default (false) every call needs
	// an API token whose role covers it (see Policy and package auth).
	Insecure bool
}

// NewHandler serves svc as vda.v1.PortalService for Connect, gRPC and
// gRPC-Web clients, with gRPC server reflection (v1 and v1alpha) and the
// standard health service (SERVING while the store answers). Unless
// cfg.Insecure, every PortalService call must carry an API token of the
// service's store whose role covers the call (Policy); refusals are
// Unauthenticated or PermissionDenied, logged once with the caller and
// counted (vda_portal_auth_refusals_total). Health and reflection stay
// open: they reveal nothing of the cluster. NewHandler maps service errors
// to Connect codes, logs every call it lets through, turns a panic in a
// handler into CodeInternal, and records request metrics.
func NewHandler(svc *Service, cfg HandlerConfig) (http.Handler, error) {
	log := cfg.Logger
	if log == nil {
		log = svc.log
	}
	var m *metrics
	if cfg.Registerer != nil {
		var err error
		if m, err = newMetrics(cfg.Registerer); err != nil {
			return nil, err
		}
	}
	// The guard is outermost: a refused call is logged once, by auth, with
	// its caller, and reaches nothing else.
	// Its middleware decides from the headers, before the body is read
	// (a refused caller cannot make the portal decode anything); the
	// interceptor then only passes the caller on.
	var guard connect.Interceptor = insecure{}
	early := func(h http.Handler) http.Handler { return h }
	if !cfg.Insecure {
		a, err := auth.NewInterceptor(auth.Config{
			Lookup: svc.lookupToken, Policy: Policy, Logger: log, Registerer: cfg.Registerer,
		})
		if err != nil {
			return nil, err
		}
		guard, early = a, a.Middleware
	}
	opts := append([]connect.HandlerOption{
		connect.WithInterceptors(guard, &interceptor{log: log, metrics: m}),
		// A bound on what an allowed caller may send, decompressed.
		connect.WithReadMaxBytes(MaxRequestBytes),
		connect.WithRecover(func(ctx context.Context, spec connect.Spec, _ http.Header, p any) error {
			log.ErrorContext(ctx, "panic in handler", "procedure", spec.Procedure, "panic", fmt.Sprint(p))
			return connect.NewError(connect.CodeInternal, errors.New("internal error; see the portal log"))
		}),
	}, cfg.Options...)
	mux := http.NewServeMux()
	path, api := vdav1connect.NewPortalServiceHandler(svc, opts...)
	mux.Handle(path, early(api))
	reflector := grpcreflect.NewStaticReflector(vdav1connect.PortalServiceName, grpchealth.HealthV1ServiceName)
	mux.Handle(grpcreflect.NewHandlerV1(reflector))
	mux.Handle(grpcreflect.NewHandlerV1Alpha(reflector))
	mux.Handle(grpchealth.NewHandler(&health{svc: svc}))
	return mux, nil
}

// lookupToken is the auth.Lookup over the service's store.
func (s *Service) lookupToken(ctx context.Context, id string) (auth.Token, error) {
	var tok store.Token
	err := s.db.View(ctx, func(ctx context.Context, tx *store.Tx) error {
		var err error
		tok, err = tx.TokenByID(ctx, id)
		return err
	})
	if err != nil {
		return auth.Token{}, err
	}
	role, err := auth.ParseRole(tok.Role)
	if err != nil {
		return auth.Token{}, fmt.Errorf("token %s has a bad role in the store: %w", tok.Name, err)
	}
	return auth.Token{ID: tok.ID, Name: tok.Name, Role: role, Hash: tok.Hash}, nil
}

// insecure serves every caller as one admin without a token
// (HandlerConfig.Insecure).
type insecure struct{}

// insecureCaller is who every caller of an insecure portal is.
var insecureCaller = auth.Caller{Name: "insecure", Role: auth.Admin}

func (insecure) WrapUnary(next connect.UnaryFunc) connect.UnaryFunc {
	return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
		return next(auth.WithCaller(ctx, insecureCaller), req)
	}
}

func (insecure) WrapStreamingClient(next connect.StreamingClientFunc) connect.StreamingClientFunc {
	return next
}

func (insecure) WrapStreamingHandler(next connect.StreamingHandlerFunc) connect.StreamingHandlerFunc {
	return func(ctx context.Context, conn connect.StreamingHandlerConn) error {
		return next(auth.WithCaller(ctx, insecureCaller), conn)
	}
}

// health reports SERVING for the portal service (and the server as a whole,
// the empty name) while the store answers a ping.
type health struct{ svc *Service }

func (h *health) Check(ctx context.Context, req *grpchealth.CheckRequest) (*grpchealth.CheckResponse, error) {
	if req.Service != "" && req.Service != vdav1connect.PortalServiceName {
		return nil, connect.NewError(connect.CodeNotFound, fmt.Errorf("unknown service %q", req.Service))
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := h.svc.db.Ping(ctx); err != nil {
		return &grpchealth.CheckResponse{Status: grpchealth.StatusNotServing}, nil
	}
	return &grpchealth.CheckResponse{Status: grpchealth.StatusServing}, nil
}

// interceptor maps errors, logs and measures unary calls.
type interceptor struct {
	log     *slog.Logger
	metrics *metrics
}

func (i *interceptor) WrapUnary(next connect.UnaryFunc) connect.UnaryFunc {
	return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
		start := time.Now()
		resp, err := next(ctx, req)
		procedure := req.Spec().Procedure
		err = toConnect(ctx, i.log, procedure, err)
		code := "ok"
		if err != nil {
			code = connect.CodeOf(err).String()
		}
		elapsed := time.Since(start)
		level := slog.LevelInfo
		if req.Spec().IdempotencyLevel == connect.IdempotencyNoSideEffects && err == nil {
			level = slog.LevelDebug
		}
		attrs := []any{"procedure", procedure, "code", code, "ms", float64(elapsed.Microseconds()) / 1000, "peer", req.Peer().Addr}
		// Who did it: the audit trail of every change.
		if c, ok := auth.CallerFrom(ctx); ok {
			attrs = append(attrs, "caller", c.Name)
			if c.ID != "" {
				attrs = append(attrs, "token_id", c.ID)
			}
		}
		if err != nil {
			attrs = append(attrs, "err", err.Error())
		}
		i.log.Log(ctx, level, "request", attrs...)
		i.metrics.observe(procedure, code, elapsed)
		return resp, err
	}
}

func (i *interceptor) WrapStreamingClient(next connect.StreamingClientFunc) connect.StreamingClientFunc {
	return next
}

func (i *interceptor) WrapStreamingHandler(next connect.StreamingHandlerFunc) connect.StreamingHandlerFunc {
	return next
}

// metrics counts and times requests by procedure and code.
type metrics struct {
	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "vda", Subsystem: "portal", Name: "requests_total",
			Help: "Portal requests by procedure and Connect code.",
		}, []string{"procedure", "code"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "vda", Subsystem: "portal", Name: "request_duration_seconds",
			Help:    "Portal request latency by procedure.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16),
		}, []string{"procedure"}),
	}
	for _, c := range []prometheus.Collector{m.requests, m.latency} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("register portal metrics: %w", err)
		}
	}
	return m, nil
}

func (m *metrics) observe(procedure, code string, d time.Duration) {
	if m == nil {
		return
	}
	m.requests.WithLabelValues(procedure, code).Inc()
	m.latency.WithLabelValues(procedure).Observe(d.Seconds())
}
