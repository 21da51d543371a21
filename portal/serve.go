package portal

import (
	"context"
	"net"
	"net/http"
	"time"

	"github.com/virtual-disk-array/vda/serve"
)

// Serve serves h on ln over HTTP/1.1 and unencrypted HTTP/2 (h2c), which is
// what gRPC clients need without TLS, until ctx ends; then it stops taking
// connections and waits up to grace for calls in flight to finish.
//
// It is kept for embedders; it calls serve.HTTP, which the daemons use.
func Serve(ctx context.Context, ln net.Listener, h http.Handler, grace time.Duration) error {
	return serve.HTTP(ctx, ln, h, grace)
}
