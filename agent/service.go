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
	vdav1 "github.com/virtual-disk-array/vda/proto/vda/v1"
	"github.com/virtual-disk-array/vda/proto/vda/v1/vdav1connect"
)

// HandlerConfig configures NewDNHandler and NewCNHandler.
type HandlerConfig struct {
	// Logger receives one line per call; nil means slog.Default().
	Logger *slog.Logger
	// Options are passed to the Connect handler after VDA's own.
	Options []connect.HandlerOption
}

// NewDNHandler serves a dn agent as vda.v1.DnAgentService (Connect, gRPC
// and gRPC-Web) with the standard health service.
func NewDNHandler(a *DNAgent, cfg HandlerConfig) http.Handler {
	mux := http.NewServeMux()
	mux.Handle(vdav1connect.NewDnAgentServiceHandler(dnService{a}, handlerOptions(cfg)...))
	mux.Handle(grpchealth.NewHandler(grpchealth.NewStaticChecker(vdav1connect.DnAgentServiceName)))
	return mux
}

// NewCNHandler serves a cn agent as vda.v1.CnAgentService.
func NewCNHandler(a *CNAgent, cfg HandlerConfig) http.Handler {
	mux := http.NewServeMux()
	mux.Handle(vdav1connect.NewCnAgentServiceHandler(cnService{a}, handlerOptions(cfg)...))
	mux.Handle(grpchealth.NewHandler(grpchealth.NewStaticChecker(vdav1connect.CnAgentServiceName)))
	return mux
}

func handlerOptions(cfg HandlerConfig) []connect.HandlerOption {
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	return append([]connect.HandlerOption{
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
	}, cfg.Options...)
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
	case errors.Is(err, context.DeadlineExceeded):
		code = connect.CodeDeadlineExceeded
	case errors.Is(err, context.Canceled):
		code = connect.CodeCanceled
	}
	return connect.NewError(code, err)
}

type dnService struct{ a *DNAgent }

func (s dnService) Syncup(ctx context.Context, req *connect.Request[vdav1.DnSyncupRequest]) (*connect.Response[vdav1.DnSyncupResponse], error) {
	d, err := DNFromProto(req.Msg.GetDesired())
	if err != nil {
		return nil, err
	}
	rep, err := s.a.Syncup(ctx, d)
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&vdav1.DnSyncupResponse{Report: DNReportProto(rep)}), nil
}

func (s dnService) Status(ctx context.Context, _ *connect.Request[vdav1.AgentStatusRequest]) (*connect.Response[vdav1.AgentStatusResponse], error) {
	return connect.NewResponse(StatusProto(s.a.Status(ctx))), nil
}

type cnService struct{ a *CNAgent }

func (s cnService) Syncup(ctx context.Context, req *connect.Request[vdav1.CnSyncupRequest]) (*connect.Response[vdav1.CnSyncupResponse], error) {
	d, err := CNFromProto(req.Msg.GetDesired())
	if err != nil {
		return nil, err
	}
	rep, err := s.a.Syncup(ctx, d)
	if err != nil {
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
