package jsonrpc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"
)

// A Handler answers one request. params is nil when the request had no
// params member (or it was null). It returns the result to encode, or an
// error: a *spdk.Error is sent as that JSON-RPC error object; any other
// error is sent as -32603 with its text.
//
// A Handler answers an unknown method with an error matching
// spdk.ErrMethodNotFound (code -32601, message "Method not found"). The
// server sends every error, even for a notification (with id null), as SPDK
// does; a notification's result is not sent. Handle must return when ctx
// ends (the connection closed, or Serve is stopping); it may be called
// concurrently for different connections and for asynchronous methods.
type Handler interface {
	Handle(ctx context.Context, method string, params json.RawMessage) (any, error)
}

// Methods that SPDK answers asynchronously (their answers may overtake
// answers to later requests on the same connection). A Handler may
// implement it; other methods are answered in order.
//
// Each asynchronous request runs in its own goroutine, and its answer is
// sent no earlier than the answers of the synchronous requests that arrived
// in the same read: SPDK's single thread runs the handler's callback on a
// later poll.
type AsyncMethods interface{ Async(method string) bool }

// Server serves SPDK's JSON-RPC protocol to a Handler.
type Server struct {
	Handler Handler
	// Logger receives the errors SPDK logs ("jsonrpc parse request
	// failed") and debug records of connections. Nil means slog.Default().
	Logger *slog.Logger
}

// Limits of SPDK's server (lib/jsonrpc/jsonrpc_internal.h, json_parse.c),
// kept so that a client that works here works against SPDK.
const (
	// maxConns: SPDK serves 64 connections; more wait unaccepted.
	maxConns = 64
	// recvBufSize: a request must fit in SPDK's 32 KiB receive buffer.
	recvBufSize = 32 * 1024
	// maxValues: a request may hold at most 1024 JSON values.
	maxValues = 1024
)

// Serve accepts connections on ln until ctx ends, and serves each one.
// It is Server{Handler: h}.Serve.
func Serve(ctx context.Context, ln net.Listener, h Handler) error {
	s := &Server{Handler: h}
	return s.Serve(ctx, ln)
}

// Serve accepts connections on ln until ctx ends, and serves each one the
// way SPDK does (see the package doc). When ctx ends it closes ln and every
// connection, waits for their goroutines (handlers included) and returns
// nil. It returns an error only if ln fails for another reason; ln is
// closed then too.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	log := s.Logger
	if log == nil {
		log = slog.Default()
	}
	ctx, cancel := context.WithCancel(ctx)
	context.AfterFunc(ctx, func() { _ = ln.Close() }) // unblocks Accept
	var wg sync.WaitGroup
	defer func() {
		cancel() // closes ln and every connection
		wg.Wait()
	}()
	slots := make(chan struct{}, maxConns)
	var backoff time.Duration
	for {
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
			return nil
		}
		nc, err := ln.Accept()
		if err != nil {
			<-slots
			if ctx.Err() != nil {
				return nil
			}
			if errors.Is(err, net.ErrClosed) {
				return fmt.Errorf("jsonrpc: accept: %w", err)
			}
			// Out of file descriptors and the like: wait, as net/http does.
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			log.Error("jsonrpc accept failed", "err", err, "retry_in", backoff)
			select {
			case <-time.After(backoff):
				continue
			case <-ctx.Done():
				return nil
			}
		}
		backoff = 0
		c := newConn(ctx, nc, s.Handler, log)
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-slots }()
			c.serve()
		}()
	}
}
