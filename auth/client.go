package auth

import (
	"context"

	"connectrpc.com/connect"
)

// Bearer is a client interceptor that sends an API token with every call,
// as "Authorization: Bearer <token>". An empty token sends nothing, so that
// the portal answers UNAUTHENTICATED with its hint.
type Bearer string

// WithBearer is the client option of Bearer(token).
func WithBearer(token string) connect.ClientOption {
	return connect.WithInterceptors(Bearer(token))
}

func (b Bearer) set(h interface{ Set(string, string) }) {
	if b != "" {
		h.Set("Authorization", "Bearer "+string(b))
	}
}

// WrapUnary sets the header on a client's call and leaves handlers alone.
func (b Bearer) WrapUnary(next connect.UnaryFunc) connect.UnaryFunc {
	return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
		if req.Spec().IsClient {
			b.set(req.Header())
		}
		return next(ctx, req)
	}
}

// WrapStreamingClient sets the header on a client's stream.
func (b Bearer) WrapStreamingClient(next connect.StreamingClientFunc) connect.StreamingClientFunc {
	return func(ctx context.Context, spec connect.Spec) connect.StreamingClientConn {
		conn := next(ctx, spec)
		b.set(conn.RequestHeader())
		return conn
	}
}

// WrapStreamingHandler leaves handlers alone.
func (b Bearer) WrapStreamingHandler(next connect.StreamingHandlerFunc) connect.StreamingHandlerFunc {
	return next
}
