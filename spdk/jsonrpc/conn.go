package jsonrpc

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"sync"
)

// conn serves one connection. Its reader runs the synchronous handlers in
// arrival order and queues their answers; a writer goroutine sends queued
// answers; each asynchronous request runs in a goroutine of its own.
//
// What it reproduces of SPDK (lib/jsonrpc/jsonrpc_server_tcp.c):
//   - The answers to one read are queued after every request in it was
//     parsed and run, and a parse error closes the connection at once: so
//     a valid request followed by garbage in the same write is run but not
//     answered.
//   - When the peer closes its side, the requests still running are
//     answered before the connection closes.
//   - A request that does not fit the 32 KiB receive buffer makes SPDK read
//     0 bytes, which it takes for the peer closing its side.
type conn struct {
	nc    net.Conn
	h     Handler
	async AsyncMethods // nil: every method is synchronous
	log   *slog.Logger
	out   outbox

	// ctx is given to handlers: it ends when the connection is closing or
	// Serve is stopping.
	ctx    context.Context
	cancel context.CancelFunc
	// stopped ends only when Serve is stopping.
	stopped context.Context

	handlers sync.WaitGroup // asynchronous handler goroutines
}

func newConn(serveCtx context.Context, nc net.Conn, h Handler, log *slog.Logger) *conn {
	c := &conn{nc: nc, h: h, log: log, stopped: serveCtx}
	c.async, _ = h.(AsyncMethods)
	c.ctx, c.cancel = context.WithCancel(serveCtx)
	c.out.wake = make(chan struct{}, 1)
	return c
}

func (c *conn) serve() {
	c.log.Debug("jsonrpc connection opened")
	// Serve stopping closes the socket, which ends the reader and writer.
	stop := context.AfterFunc(c.stopped, func() { _ = c.nc.Close() })
	defer stop()

	writerDone := make(chan struct{})
	go func() {
		defer close(writerDone)
		if err := c.out.run(c.nc); err != nil {
			c.log.Debug("jsonrpc send failed", "err", err)
			c.cancel()
			_ = c.nc.Close() // unblocks the reader
		}
	}()

	switch c.readLoop() {
	case peerClosed:
		// Answer what is still running, then close.
		c.handlers.Wait()
		c.out.drain()
	case parseFailed:
		// Send what earlier reads queued (SPDK sent it before this read),
		// nothing more.
		c.cancel()
		c.out.drain()
	case readFailed:
		c.cancel()
		c.out.abort()
	}
	<-writerDone
	c.cancel()
	c.handlers.Wait()
	_ = c.nc.Close() // done with it; a close error changes nothing
	c.log.Debug("jsonrpc connection closed")
}

// How a connection's reading ended.
type readEnd int

const (
	peerClosed  readEnd = iota // EOF (or SPDK would think so)
	parseFailed                // malformed JSON
	readFailed                 // a read error, or the socket was closed
)

// readLoop reads and runs requests until the connection ends, and says how.
func (c *conn) readLoop() readEnd {
	buf := make([]byte, recvBufSize)
	n := 0
	for {
		if n == len(buf) {
			c.log.Debug("jsonrpc request larger than the receive buffer", "size", recvBufSize)
			return peerClosed
		}
		m, err := c.nc.Read(buf[n:])
		n += m
		if m > 0 {
			used, ok := c.process(buf[:n])
			if !ok {
				return parseFailed
			}
			n = copy(buf, buf[used:n])
		}
		switch {
		case errors.Is(err, io.EOF):
			return peerClosed
		case err != nil:
			c.log.Debug("jsonrpc receive failed", "err", err)
			return readFailed
		}
	}
}

// A batch of requests that arrived in one read. Its synchronous answers are
// queued together when the read has been processed; asynchronous answers
// wait for that (flushed) before they are queued.
type chunk struct {
	answers [][]byte
	flushed chan struct{}
}

// process runs every complete request at the start of data and reports how
// many bytes they took. It reports false after a parse error: the
// connection must close, and the answers of this read are dropped.
func (c *conn) process(data []byte) (int, bool) {
	ch := &chunk{flushed: make(chan struct{})}
	defer close(ch.flushed)
	off := 0
	for {
		values, end, err := scan(data[off:])
		if errors.Is(err, errIncomplete) {
			break
		}
		if err == nil && values > maxValues {
			err = errTooManyValues
		}
		if err != nil {
			c.log.Error("jsonrpc parse request failed", "err", err)
			c.out.drain() // refuses the answers of this read, and any later
			return off, false
		}
		// The value, without the whitespace around it (a read may start
		// with some).
		c.dispatch(bytes.Trim(data[off:off+end], " \t\r\n"), ch)
		off += end
	}
	c.out.push(ch.answers...)
	return off, true
}

// dispatch runs one top-level JSON value: a request object, a batch, or
// anything else, which is an invalid request.
func (c *conn) dispatch(v []byte, ch *chunk) {
	switch v[0] {
	case '{':
		req, bad := parseRequest(v)
		if bad != nil {
			ch.answers = append(ch.answers, line(bad))
			return
		}
		if !c.isAsync(req.method) {
			if a := c.call(req); a != nil {
				ch.answers = append(ch.answers, line(a))
			}
			return
		}
		c.handlers.Add(1)
		go func() {
			defer c.handlers.Done()
			a := c.call(req)
			<-ch.flushed
			if a != nil {
				c.out.push(line(a))
			}
		}()
	case '[':
		c.batch(v, ch)
	default:
		ch.answers = append(ch.answers, line(invalidRequest(nullID)))
	}
}

// batch runs a batch: its elements in order (the asynchronous ones in
// goroutines), answered by one array in element order once all are done.
// Elements that get no answer (successful notifications) have no entry; if
// none has one, nothing is sent. An empty batch gets one -32600 object. A
// batch with an asynchronous element is answered like an asynchronous
// request.
func (c *conn) batch(v []byte, ch *chunk) {
	elems, _ := batchElements(v) // v is valid JSON
	if len(elems) == 0 {
		ch.answers = append(ch.answers, line(invalidRequest(nullID)))
		return
	}
	reqs := make([]*request, len(elems))
	answers := make([][]byte, len(elems))
	async := false
	for i, e := range elems {
		if e[0] != '{' {
			answers[i] = invalidRequest(nullID)
			continue
		}
		req, bad := parseRequest(e)
		if bad != nil {
			answers[i] = bad
			continue
		}
		reqs[i] = &req
		async = async || c.isAsync(req.method)
	}
	var running sync.WaitGroup
	for i, req := range reqs {
		switch {
		case req == nil:
		case c.isAsync(req.method):
			running.Add(1)
			go func() {
				defer running.Done()
				answers[i] = c.call(*req)
			}()
		default:
			answers[i] = c.call(*req)
		}
	}
	if !async {
		if b := joinAnswers(answers); b != nil {
			ch.answers = append(ch.answers, b)
		}
		return
	}
	c.handlers.Add(1)
	go func() {
		defer c.handlers.Done()
		running.Wait()
		<-ch.flushed
		if b := joinAnswers(answers); b != nil {
			c.out.push(b)
		}
	}()
}

// joinAnswers makes the array answer of a batch, or nil if no element has
// an answer.
func joinAnswers(answers [][]byte) []byte {
	var b []byte
	for _, a := range answers {
		if a == nil {
			continue
		}
		if b == nil {
			b = append(b, '[')
		} else {
			b = append(b, ',')
		}
		b = append(b, a...)
	}
	if b == nil {
		return nil
	}
	return line(append(b, ']'))
}

func (c *conn) isAsync(method string) bool {
	return c.async != nil && c.async.Async(method)
}

// call runs the handler and returns the answer to send, or nil for a
// notification that succeeded, or when the connection is closing.
func (c *conn) call(req request) []byte {
	result, err := c.h.Handle(c.ctx, req.method, req.params)
	if c.ctx.Err() != nil {
		return nil
	}
	if err != nil {
		code, msg := errorObject(err)
		return appendError(nil, req.id, code, msg)
	}
	if req.notify {
		return nil
	}
	b, err := marshalResult(result)
	if err != nil {
		code, msg := errorObject(err)
		return appendError(nil, req.id, code, msg)
	}
	return appendResult(nil, req.id, b)
}

// line terminates an answer: SPDK follows each with a newline.
func line(b []byte) []byte { return append(b, '\n') }

// outbox is the queue of answers for the writer.
type outbox struct {
	mu       sync.Mutex
	queue    [][]byte
	draining bool // no more answers accepted; send what is queued, then stop
	aborted  bool // stop now
	wake     chan struct{}
}

// push queues answers, unless the connection is closing.
func (o *outbox) push(answers ...[]byte) {
	if len(answers) == 0 {
		return
	}
	o.mu.Lock()
	if !o.draining && !o.aborted {
		o.queue = append(o.queue, answers...)
	}
	o.mu.Unlock()
	o.signal()
}

func (o *outbox) drain() {
	o.mu.Lock()
	o.draining = true
	o.mu.Unlock()
	o.signal()
}

func (o *outbox) abort() {
	o.mu.Lock()
	o.aborted = true
	o.queue = nil
	o.mu.Unlock()
	o.signal()
}

func (o *outbox) signal() {
	select {
	case o.wake <- struct{}{}:
	default:
	}
}

// run writes queued answers to w until the outbox is drained or aborted.
func (o *outbox) run(w io.Writer) error {
	for {
		o.mu.Lock()
		batch, draining, aborted := o.queue, o.draining, o.aborted
		o.queue = nil
		o.mu.Unlock()
		if aborted {
			return nil
		}
		if len(batch) > 0 {
			if _, err := w.Write(bytes.Join(batch, nil)); err != nil {
				return err
			}
			continue
		}
		if draining {
			return nil
		}
		<-o.wake
	}
}
