package auth

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"

	"connectrpc.com/connect"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/virtual-disk-array/vda"
)

// Token is a stored API token as a Lookup returns it: never the secret,
// only its hash.
type Token struct {
	// ID is the token's public id.
	ID   string
	Name string
	Role Role
	// Hash is Hash(secret).
	Hash []byte
}

// Lookup returns the stored token with the public id. When no token has
// it, the error wraps vda.ErrNotFound (the caller is then refused as
// Unauthenticated); any other error refuses the call as Unavailable and is
// logged. A Lookup is called once per call and must be safe for concurrent
// use.
type Lookup func(ctx context.Context, id string) (Token, error)

// Policy returns the role a procedure ("/vda.v1.PortalService/CreateDn")
// needs, and false for a procedure it does not know, which is refused.
type Policy func(procedure string) (Role, bool)

// Caller is an authenticated caller: the token it presented.
type Caller struct {
	// ID is the token's public id ("" for a caller not authenticated by a
	// token, such as every caller of an insecure portal).
	ID   string
	Name string
	Role Role
}

type callerKey struct{}

// WithCaller returns ctx carrying c. The Interceptor does it for every
// call it lets through; an embedder that serves without tokens may do it
// for its own callers.
func WithCaller(ctx context.Context, c Caller) context.Context {
	return context.WithValue(ctx, callerKey{}, c)
}

// CallerFrom returns the caller that ctx carries, if any.
func CallerFrom(ctx context.Context) (Caller, bool) {
	c, ok := ctx.Value(callerKey{}).(Caller)
	return c, ok
}

// Config configures NewInterceptor.
type Config struct {
	// Lookup finds stored tokens. Required.
	Lookup Lookup
	// Policy says which role each procedure needs. Required.
	Policy Policy
	// Logger receives one Warn line per refusal (and an Error line when
	// Lookup fails); nil means slog.Default().
	Logger *slog.Logger
	// Registerer receives vda_portal_auth_refusals_total{procedure,code};
	// nil means no metrics.
	Registerer prometheus.Registerer
}

// Validate reports every problem with the configuration at once.
func (c Config) Validate() error {
	var errs []error
	if c.Lookup == nil {
		errs = append(errs, vda.Invalidf("auth: Lookup is required"))
	}
	if c.Policy == nil {
		errs = append(errs, vda.Invalidf("auth: Policy is required"))
	}
	return errors.Join(errs...)
}

// Interceptor is a Connect handler interceptor that authenticates and
// authorizes every unary call, and refuses every streaming call (no
// streaming procedure is guarded by a policy yet). Install it outermost,
// so that a refused call reaches no other interceptor.
type Interceptor struct {
	lookup   Lookup
	policy   Policy
	log      *slog.Logger
	refusals *prometheus.CounterVec
}

var _ connect.Interceptor = (*Interceptor)(nil)

// NewInterceptor returns an Interceptor, or an error if cfg is invalid or
// its metrics cannot be registered.
func NewInterceptor(cfg Config) (*Interceptor, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	i := &Interceptor{lookup: cfg.Lookup, policy: cfg.Policy, log: cfg.Logger}
	if i.log == nil {
		i.log = slog.Default()
	}
	if cfg.Registerer != nil {
		i.refusals = prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "vda", Subsystem: "portal", Name: "auth_refusals_total",
			Help: "Portal calls refused by authentication or authorization, by procedure and Connect code.",
		}, []string{"procedure", "code"})
		if err := cfg.Registerer.Register(i.refusals); err != nil {
			return nil, fmt.Errorf("register auth metrics: %w", err)
		}
	}
	return i, nil
}

// Messages of refusals. None repeats what the caller sent.
const (
	msgMissing   = "missing bearer token: pass --token or set VDA_TOKEN"
	msgNotBearer = `the Authorization header is not a bearer token: want "Authorization: Bearer vda_<id>_<secret>"`
	msgInvalid   = "invalid API token"
)

// refusal is a refused call: what the client is told, and what is logged.
type refusal struct {
	code   connect.Code
	msg    string // for the client
	reason string // for the log
	caller Caller // the token presented, as far as known
}

// Middleware makes the same decision as the interceptor from the request
// line and headers alone, before the request's body is read: a refused
// caller cannot make the server read, decompress and decode a large body.
// The refusal is a proper Connect, gRPC or gRPC-Web error; an allowed
// call carries its caller in its context, and the interceptor then does
// not check it again. Wrap the service's handler (not health or
// reflection) with it.
func (i *Interceptor) Middleware(h http.Handler) http.Handler {
	ew := connect.NewErrorWriter()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		procedure := r.URL.Path
		caller, ref := i.check(r.Context(), procedure, r.Header.Get("Authorization"))
		if ref != nil {
			_ = ew.Write(w, r, i.refuse(r.Context(), procedure, r.RemoteAddr, ref))
			return
		}
		h.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), checkedKey{}, caller)))
	})
}

// checkedKey marks a request the middleware already allowed.
type checkedKey struct{}

// WrapUnary authenticates and authorizes the call before next runs.
func (i *Interceptor) WrapUnary(next connect.UnaryFunc) connect.UnaryFunc {
	return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
		if req.Spec().IsClient {
			return next(ctx, req)
		}
		if caller, ok := ctx.Value(checkedKey{}).(Caller); ok {
			return next(WithCaller(ctx, caller), req)
		}
		procedure := req.Spec().Procedure
		caller, ref := i.check(ctx, procedure, req.Header().Get("Authorization"))
		if ref != nil {
			return nil, i.refuse(ctx, procedure, req.Peer().Addr, ref)
		}
		return next(WithCaller(ctx, caller), req)
	}
}

// WrapStreamingClient leaves clients alone: the Interceptor guards
// handlers.
func (i *Interceptor) WrapStreamingClient(next connect.StreamingClientFunc) connect.StreamingClientFunc {
	return next
}

// WrapStreamingHandler refuses every streaming call.
func (i *Interceptor) WrapStreamingHandler(next connect.StreamingHandlerFunc) connect.StreamingHandlerFunc {
	return func(ctx context.Context, conn connect.StreamingHandlerConn) error {
		procedure := conn.Spec().Procedure
		return i.refuse(ctx, procedure, conn.Peer().Addr, &refusal{
			code:   connect.CodePermissionDenied,
			msg:    fmt.Sprintf("%s is a streaming procedure, which the portal does not authorize", name(procedure)),
			reason: "streaming procedure",
		})
	}
}

// check authenticates the header's token and authorizes it for
// procedure.
func (i *Interceptor) check(ctx context.Context, procedure, header string) (Caller, *refusal) {
	if header == "" {
		return Caller{}, &refusal{code: connect.CodeUnauthenticated, msg: msgMissing, reason: "no Authorization header"}
	}
	scheme, bearer, _ := strings.Cut(header, " ")
	if !strings.EqualFold(scheme, "Bearer") {
		return Caller{}, &refusal{code: connect.CodeUnauthenticated, msg: msgNotBearer, reason: "not a bearer token"}
	}
	id, secret, err := Parse(strings.TrimSpace(bearer))
	if err != nil {
		return Caller{}, &refusal{code: connect.CodeUnauthenticated, msg: ErrMalformed.Error(), reason: "malformed token"}
	}
	tok, err := i.lookup(ctx, id)
	switch {
	case errors.Is(err, vda.ErrNotFound):
		return Caller{}, &refusal{code: connect.CodeUnauthenticated, msg: msgInvalid, reason: "unknown token id",
			caller: Caller{ID: id}}
	case err != nil:
		i.log.ErrorContext(ctx, "cannot look the API token up", "procedure", procedure, "token_id", id, "err", err)
		return Caller{}, &refusal{code: connect.CodeUnavailable, msg: "cannot check the API token now; see the portal log",
			reason: "token lookup failed", caller: Caller{ID: id}}
	}
	if !Matches(secret, tok.Hash) {
		return Caller{}, &refusal{code: connect.CodeUnauthenticated, msg: msgInvalid, reason: "wrong secret",
			caller: Caller{ID: id, Name: tok.Name}}
	}
	caller := Caller{ID: tok.ID, Name: tok.Name, Role: tok.Role}
	need, ok := i.policy(procedure)
	if !ok {
		return caller, &refusal{code: connect.CodePermissionDenied, caller: caller, reason: "no policy for the procedure",
			msg: fmt.Sprintf("%s is not a procedure any token may call", name(procedure))}
	}
	if !caller.Role.Covers(need) {
		return caller, &refusal{code: connect.CodePermissionDenied, caller: caller, reason: "role too low",
			msg: fmt.Sprintf("token %q (%s) may not call %s: it needs %s", caller.Name, caller.Role, name(procedure), need)}
	}
	return caller, nil
}

// refuse logs and counts a refusal and returns its error.
func (i *Interceptor) refuse(ctx context.Context, procedure, peer string, r *refusal) error {
	who := r.caller.Name
	if who == "" || r.code == connect.CodeUnauthenticated {
		who = "anonymous"
	}
	attrs := []any{"procedure", procedure, "code", r.code.String(), "caller", who}
	if r.caller.Name != "" {
		attrs = append(attrs, "token", r.caller.Name)
	}
	if r.caller.ID != "" {
		attrs = append(attrs, "token_id", r.caller.ID)
	}
	if r.caller.Role != 0 {
		attrs = append(attrs, "role", r.caller.Role.String())
	}
	attrs = append(attrs, "peer", peer, "reason", r.reason)
	i.log.WarnContext(ctx, "request refused", attrs...)
	if i.refusals != nil {
		i.refusals.WithLabelValues(procedure, r.code.String()).Inc()
	}
	return connect.NewError(r.code, errors.New(r.msg))
}

// name is a procedure without its leading slash, as users write it.
func name(procedure string) string { return strings.TrimPrefix(procedure, "/") }
