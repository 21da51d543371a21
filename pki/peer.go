package pki

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"

	"connectrpc.com/connect"
)

// Peer is what a server knows of a caller from TLS.
type Peer struct {
	// Verified says the caller presented a client certificate that
	// chains to the server's CA bundle.
	Verified bool
	// Identity is the certificate's VDA identity ("" if none).
	Identity string
	// Subject is the certificate's common name, for logs.
	Subject string
}

type peerKey struct{}

// PeerFrom returns the caller recorded by PeerCheck.Middleware.
func PeerFrom(ctx context.Context) (Peer, bool) {
	p, ok := ctx.Value(peerKey{}).(Peer)
	return p, ok
}

// PeerCheck admits to a Connect service only callers whose client
// certificate, verified against the server's CA bundle, carries Identity.
// It has two halves that work together: Middleware records the caller in
// the request's context, and Interceptor refuses a call without the
// identity, with UNAUTHENTICATED when no verified certificate came and
// PERMISSION_DENIED when one came with another identity. The refusal is a
// proper Connect, gRPC or gRPC-Web error, which is why it is made by the
// interceptor and not by the middleware. Without the middleware every call
// is refused.
type PeerCheck struct {
	Identity string
	// Logger receives one line per refusal; nil means slog.Default().
	Logger *slog.Logger
}

// Middleware records the TLS peer of each request for Interceptor.
func (c PeerCheck) Middleware(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), peerKey{}, peerOf(r))))
	})
}

// Guard is Middleware that also refuses, from the TLS state alone and
// before the request's body is read, a caller without the identity: a
// stranger cannot make the server read, decompress and decode a large
// body. The refusal is the interceptor's, as a Connect, gRPC or gRPC-Web
// error. Wrap the guarded service's handler (not health) with it, and keep
// the interceptor on the handler too.
func (c PeerCheck) Guard(h http.Handler) http.Handler {
	ew := connect.NewErrorWriter()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := peerOf(r)
		if err := c.decide(r.Context(), p, r.URL.Path, r.RemoteAddr); err != nil {
			_ = ew.Write(w, r, err)
			return
		}
		h.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), peerKey{}, p)))
	})
}

// peerOf is the verified client certificate of r, if any. With
// VerifyClientCertIfGiven, VerifiedChains is set only when a certificate
// came and verified.
func peerOf(r *http.Request) Peer {
	if r.TLS != nil && len(r.TLS.VerifiedChains) > 0 && len(r.TLS.VerifiedChains[0]) > 0 {
		leaf := r.TLS.VerifiedChains[0][0]
		return Peer{Verified: true, Identity: Identity(leaf), Subject: leaf.Subject.CommonName}
	}
	return Peer{}
}

// Interceptor refuses calls from callers without the identity.
func (c PeerCheck) Interceptor() connect.Interceptor {
	return &peerInterceptor{c}
}

type peerInterceptor struct{ c PeerCheck }

func (i *peerInterceptor) check(ctx context.Context, procedure, addr string) error {
	p, _ := PeerFrom(ctx)
	return i.c.decide(ctx, p, procedure, addr)
}

// decide admits p to procedure, or logs the refusal and returns its error.
func (c PeerCheck) decide(ctx context.Context, p Peer, procedure, addr string) error {
	if p.Verified && p.Identity == c.Identity {
		return nil
	}
	i := peerInterceptor{c}
	log := i.c.Logger
	if log == nil {
		log = slog.Default()
	}
	if !p.Verified {
		log.WarnContext(ctx, "call refused: no verified client certificate", "procedure", procedure, "peer", addr)
		return connect.NewError(connect.CodeUnauthenticated,
			fmt.Errorf("%s needs a client certificate with the identity %s from the cluster's CA", procedure, i.c.Identity))
	}
	log.WarnContext(ctx, "call refused: wrong identity", "procedure", procedure, "peer", addr,
		"subject", p.Subject, "identity", p.Identity)
	who := p.Identity
	if who == "" {
		who = "no VDA identity"
	}
	return connect.NewError(connect.CodePermissionDenied,
		fmt.Errorf("%s is for %s only; the caller's certificate (%s) has %s", procedure, i.c.Identity, p.Subject, who))
}

func (i *peerInterceptor) WrapUnary(next connect.UnaryFunc) connect.UnaryFunc {
	return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
		if err := i.check(ctx, req.Spec().Procedure, req.Peer().Addr); err != nil {
			return nil, err
		}
		return next(ctx, req)
	}
}

func (i *peerInterceptor) WrapStreamingClient(next connect.StreamingClientFunc) connect.StreamingClientFunc {
	return next
}

func (i *peerInterceptor) WrapStreamingHandler(next connect.StreamingHandlerFunc) connect.StreamingHandlerFunc {
	return func(ctx context.Context, conn connect.StreamingHandlerConn) error {
		if err := i.check(ctx, conn.Spec().Procedure, conn.Peer().Addr); err != nil {
			return err
		}
		return next(ctx, conn)
	}
}
