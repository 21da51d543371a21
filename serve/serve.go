// Package serve runs VDA's HTTP servers: HTTP/1.1 and HTTP/2 on one
// listener, over TLS (see Listen) or, for clusters run with --insecure,
// unencrypted (h2c, which is what gRPC clients need without TLS), with
// graceful shutdown.
package serve

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"net/http"
	"sync"
	"time"
)

// Listen listens on addr, over TLS with cfg unless cfg is nil. The TLS
// listener offers HTTP/2 and HTTP/1.1 by ALPN.
func Listen(addr string, cfg *tls.Config) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil || cfg == nil {
		return ln, err
	}
	if len(cfg.NextProtos) == 0 {
		cfg = cfg.Clone()
		cfg.NextProtos = []string{"h2", "http/1.1"}
	}
	return tls.NewListener(ln, cfg), nil
}

// HTTP serves h on ln over HTTP/1.1 and HTTP/2: over TLS when ln is a TLS
// listener (Listen), else unencrypted (h2c), until ctx ends; then it stops
// taking connections and waits up to grace for calls in flight to finish.
func HTTP(ctx context.Context, ln net.Listener, h http.Handler, grace time.Duration) error {
	protocols := new(http.Protocols)
	protocols.SetHTTP1(true)
	protocols.SetHTTP2(true)
	protocols.SetUnencryptedHTTP2(true)
	srv := &http.Server{
		Handler:           h,
		Protocols:         protocols,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
	}
	// http.Server.Shutdown waits for a connection that has not sent a
	// request yet (a client's spare dial, a TCP probe) as if a call were in
	// flight on it, for up to 5 seconds. No call is, so close such
	// connections when shutting down.
	var (
		mu       sync.Mutex
		stopping bool
		fresh    = map[net.Conn]bool{}
	)
	srv.ConnState = func(c net.Conn, st http.ConnState) {
		mu.Lock()
		defer mu.Unlock()
		switch {
		case st == http.StateNew && stopping:
			_ = c.Close()
		case st == http.StateNew:
			fresh[c] = true
		default:
			delete(fresh, c)
		}
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
	}
	mu.Lock()
	stopping = true
	for c := range fresh {
		_ = c.Close()
	}
	mu.Unlock()
	shutdown, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	err := srv.Shutdown(shutdown)
	if err != nil {
		// Calls still running past the grace lose their connections.
		_ = srv.Close()
	}
	if serr := <-done; serr != nil && !errors.Is(serr, http.ErrServerClosed) {
		err = errors.Join(err, serr)
	}
	return err
}
