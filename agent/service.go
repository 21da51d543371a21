package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"connectrpc.com/connect"
	"connectrpc.com/grpchealth"
	"github.com/virtual-disk-array/vda"
	"github.com/virtual-disk-array/vda/pki"
	vdav1 "github.com/virtual-disk-array/vda/proto/vda/v1"
	"github.com/virtual-disk-array/vda/proto/vda/v1/vdav1connect"
)

// HandlerConfig configures NewDNHandler and NewCNHandler.
type HandlerConfig struct {
	// Logger receives one line per call; nil means slog.Default().
	Logger *slog.Logger
	// Options are passed to the Connect handler after VDA's own.
	Options []connect.HandlerOption
	// Insecure serves Syncup and Status to any caller. By default only
	// the control plane may call them: the handler must then be served
	// over TLS that asks for client certificates (pki.Source.ServerConfig),
	// and a call without a verified certificate carrying pki.ControlPlane
	// is refused (pki.PeerCheck). Insecure is for a network trusted
	// completely (the daemons' --insecure) and for tests.
	Insecure bool
}

// NewDNHandler serves a dn agent as vda.v1.DnAgentService (Connect, gRPC
// and gRPC-Web) with the standard health service, which is open to all.
func NewDNHandler(a *DNAgent, cfg HandlerConfig) http.Handler {
	opts, gate := handlerOptions(cfg)
	mux := http.NewServeMux()
	path, h := vdav1connect.NewDnAgentServiceHandler(dnService{a}, opts...)
	mux.Handle(path, gate(h))
	mux.Handle(grpchealth.NewHandler(grpchealth.NewStaticChecker(vdav1connect.DnAgentServiceName)))
	return mux
}

// NewCNHandler serves a cn agent as vda.v1.CnAgentService; see
// NewDNHandler.
func NewCNHandler(a *CNAgent, cfg HandlerConfig) http.Handler {
	opts, gate := handlerOptions(cfg)
	mux := http.NewServeMux()
	path, h := vdav1connect.NewCnAgentServiceHandler(cnService{a}, opts...)
	mux.Handle(path, gate(h))
	mux.Handle(grpchealth.NewHandler(grpchealth.NewStaticChecker(vdav1connect.CnAgentServiceName)))
	return mux
}

// MaxDesiredBytes bounds a syncup's message, decompressed: a node's whole
// desired state takes some 300 bytes a vd or controller, so this is room
// for about 200,000 of them.
const MaxDesiredBytes = 64 << 20

// handlerOptions are the Connect options of an agent's handler, and the
// middleware that wraps the service: the control-plane check comes first,
// from the TLS state before the body is read (pki.PeerCheck.Guard), so
// that a refused call costs nothing and is logged once, by the check.
func handlerOptions(cfg HandlerConfig) ([]connect.HandlerOption, func(http.Handler) http.Handler) {
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	gate := func(h http.Handler) http.Handler { return h }
	var opts []connect.HandlerOption
	if !cfg.Insecure {
		check := pki.PeerCheck{Identity: pki.ControlPlane, Logger: log}
		opts = append(opts, connect.WithInterceptors(check.Interceptor()))
		gate = check.Guard
	}
	opts = append(opts, connect.WithReadMaxBytes(MaxDesiredBytes))
	opts = append(opts,
		connect.WithInterceptors(connect.UnaryInterceptorFunc(func(next connect.UnaryFunc) connect.UnaryFunc {
			return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
				start := time.Now()
				resp, err := next(ctx, req)
				err = toConnect(err)
				level := slog.LevelInfo
				if req.Spec().IdempotencyLevel == connect.IdempotencyNoSideEffects && err == nil {
					level = slog.LevelDebug // heartbeats
				}
				log.Log(ctx, level, "call", "procedure", req.Spec().Procedure, "peer", req.Peer().Addr,
					"code", codeString(err), "took", time.Since(start), "error", err)
				return resp, err
			}
		})),
		connect.WithRecover(func(ctx context.Context, spec connect.Spec, _ http.Header, p any) error {
			log.ErrorContext(ctx, "panic in handler", "procedure", spec.Procedure, "panic", fmt.Sprint(p))
			return connect.NewError(connect.CodeInternal, errors.New("internal error; see the agent log"))
		}),
	)
	return append(opts, cfg.Options...), gate
}

func codeString(err error) string {
	if err == nil {
		return "ok"
	}
	return connect.CodeOf(err).String()
}

// toConnect maps the agent's sentinels to Connect codes.
func toConnect(err error) error {
	if err == nil {
		return nil
	}
	var ce *connect.Error
	if errors.As(err, &ce) {
		return err
	}
	code := connect.CodeInternal
	switch {
	case errors.Is(err, vda.ErrInvalidArgument):
		code = connect.CodeInvalidArgument
	case errors.Is(err, vda.ErrStaleGeneration):
		code = connect.CodeFailedPrecondition
	case errors.Is(err, vda.ErrUnavailable):
		code = connect.CodeUnavailable
	case errors.Is(err, ErrMassDelete):
		// Not FailedPrecondition: callers read that as a stale generation
		// and stop retrying.
		code = connect.CodeAborted
	case errors.Is(err, context.DeadlineExceeded):
		code = connect.CodeDeadlineExceeded
	case errors.Is(err, context.Canceled):
		code = connect.CodeCanceled
	}
	return connect.NewError(code, err)
}

type dnService struct{ a *DNAgent }

// Syncup applies the desired state; force bypasses the delete guard. A
// state the guard refuses is answered with a report whose node error says
// why, not with an error: the caller records it as the node's status (so
// that an operator sees it) and, the node not converged, tries again.
func (s dnService) Syncup(ctx context.Context, req *connect.Request[vdav1.DnSyncupRequest]) (*connect.Response[vdav1.DnSyncupResponse], error) {
	d, err := DNFromProto(req.Msg.GetDesired())
	if err != nil {
		return nil, err
	}
	sync := s.a.Syncup
	if req.Msg.GetForce() {
		sync = s.a.SyncupForce
	}
	rep, err := sync(ctx, d)
	if err != nil && !errors.Is(err, ErrMassDelete) {
		return nil, err
	}
	return connect.NewResponse(&vdav1.DnSyncupResponse{Report: DNReportProto(rep)}), nil
}

func (s dnService) Status(ctx context.Context, _ *connect.Request[vdav1.AgentStatusRequest]) (*connect.Response[vdav1.AgentStatusResponse], error) {
	return connect.NewResponse(StatusProto(s.a.Status(ctx))), nil
}

type cnService struct{ a *CNAgent }

// Syncup applies the desired state; see dnService.Syncup.
func (s cnService) Syncup(ctx context.Context, req *connect.Request[vdav1.CnSyncupRequest]) (*connect.Response[vdav1.CnSyncupResponse], error) {
	d, err := CNFromProto(req.Msg.GetDesired())
	if err != nil {
		return nil, err
	}
	sync := s.a.Syncup
	if req.Msg.GetForce() {
		sync = s.a.SyncupForce
	}
	rep, err := sync(ctx, d)
	if err != nil && !errors.Is(err, ErrMassDelete) {
		return nil, err
	}
	return connect.NewResponse(&vdav1.CnSyncupResponse{Report: CNReportProto(rep)}), nil
}

func (s cnService) Status(ctx context.Context, _ *connect.Request[vdav1.AgentStatusRequest]) (*connect.Response[vdav1.AgentStatusResponse], error) {
	return connect.NewResponse(StatusProto(s.a.Status(ctx))), nil
}

// DNReportProto puts a dn's report on the wire.
func DNReportProto(r Report) *vdav1.DnReport {
	m := &vdav1.DnReport{Generation: r.Generation, Error: r.Error}
	for _, p := range r.PDs {
		m.Pds = append(m.Pds, pdReportProto(p))
	}
	for _, v := range r.VDs {
		m.Vds = append(m.Vds, &vdav1.ResourceReport{Id: v.ID, Error: v.Error})
	}
	return m
}

// CNReportProto puts a cn's report on the wire.
func CNReportProto(r Report) *vdav1.CnReport {
	m := &vdav1.CnReport{Generation: r.Generation, Error: r.Error}
	for _, c := range r.Cntlrs {
		m.Cntlrs = append(m.Cntlrs, &vdav1.ResourceReport{Id: c.ID, Error: c.Error})
	}
	return m
}

func pdReportProto(p PDReport) *vdav1.PdReport {
	return &vdav1.PdReport{Id: string(p.ID), Error: p.Error, Capacity: p.Capacity, Free: p.Free}
}

// StatusProto puts a heartbeat on the wire.
func StatusProto(s Status) *vdav1.AgentStatusResponse {
	m := &vdav1.AgentStatusResponse{
		AppliedGeneration: s.AppliedGeneration, SpdkReachable: s.SPDKReachable,
		SpdkVersion: s.SPDKVersion, SpdkError: s.SPDKError, StartedAtMs: s.StartedAt.UnixMilli(),
		ResyncNeeded: s.ResyncNeeded,
	}
	for _, p := range s.PDs {
		m.Pds = append(m.Pds, pdReportProto(p))
	}
	for _, b := range s.Iostats {
		m.Iostats = append(m.Iostats, &vdav1.BdevIostat{
			Name: b.Name, BytesRead: b.BytesRead, NumReadOps: b.NumReadOps, BytesWritten: b.BytesWritten,
			NumWriteOps: b.NumWriteOps, BytesUnmapped: b.BytesUnmapped, NumUnmapOps: b.NumUnmapOps,
		})
	}
	return m
}
