// Package serve runs VDA's HTTP servers: HTTP/1.1 and unencrypted HTTP/2
// (h2c) on one listener, which is what gRPC clients need without TLS, with
// graceful shutdown.
package serve

import (
	"context"
	"errors"
	"net"
	"net/http"
	"sync"
	"time"
)

// HTTP serves h on ln over HTTP/1.1 and unencrypted HTTP/2 (h2c), which is
// what gRPC clients need without TLS, until ctx ends; then it stops taking
// connections and waits up to grace for calls in flight to finish.
func HTTP(ctx context.Context, ln net.Listener, h http.Handler, grace time.Duration) error {
	protocols := new(http.Protocols)
	protocols.SetHTTP1(true)
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
