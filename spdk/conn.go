package spdk

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// ConnConfig configures a [Conn]. The zero value is ready to use.
type ConnConfig struct {
	// DialTimeout bounds each dial of the socket (the call's ctx bounds it
	// too). Zero means 5s.
	DialTimeout time.Duration
	// Logger receives debug records about dials, drops and stray
	// responses. Nil discards them.
	Logger *slog.Logger
}

const defaultDialTimeout = 5 * time.Second

// Conn is a [Caller] over an SPDK application's JSON-RPC Unix socket.
//
// It dials lazily, on the first call, so that an agent may start before
// SPDK does; when the socket drops, every call in flight fails with an error
// wrapping [ErrDisconnected] and the next call dials again. One socket
// carries all calls: writes are serialized, and one reader per socket
// matches responses to calls by id, because SPDK answers asynchronous
// methods (bdev_get_bdevs) after later synchronous ones. Ids are an
// increasing uint64 per Conn; a response whose id no call waits for (its
// call gave up) is dropped.
//
// A Conn is safe for concurrent use. Close it to release the socket.
type Conn struct {
	path   string
	dialTO time.Duration
	log    *slog.Logger
	lastID atomic.Uint64
	epoch  atomic.Uint64

	mu      sync.Mutex
	closed  bool
	sess    *session      // the live socket, nil before the first dial
	dialing chan struct{} // closed when the dial in progress ends
}

// Dial returns a Conn to the SPDK socket at path. It does not connect: the
// first Call does.
func Dial(path string, cfg ConnConfig) *Conn {
	c := &Conn{path: path, dialTO: cfg.DialTimeout, log: cfg.Logger}
	if c.dialTO <= 0 {
		c.dialTO = defaultDialTimeout
	}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	return c
}

// Call sends method with params and decodes the result into result (see
// [Caller]). An error object from SPDK is returned as a *[Error]. It returns
// ctx.Err() when ctx ends first; a late response is then dropped. Transport
// failures wrap [ErrDisconnected] (the socket dropped with the call in
// flight: it may or may not have run), [ErrClosed], or the dial error.
func (c *Conn) Call(ctx context.Context, method string, params, result any) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	id := c.lastID.Add(1)
	req, err := encodeRequest(id, method, params)
	if err != nil {
		return fmt.Errorf("call %s: %w", method, err)
	}
	// A socket found dead before the request went out is replaced once;
	// the request was not sent, so sending it on the new one is safe.
	for attempt := 0; ; attempt++ {
		s, err := c.session(ctx)
		if err != nil {
			if ctxErr := ctx.Err(); ctxErr != nil {
				return ctxErr
			}
			return fmt.Errorf("call %s: %w", method, err)
		}
		ch, err := s.register(id)
		if err != nil {
			if attempt == 0 {
				continue
			}
			return fmt.Errorf("call %s: %w", method, err)
		}
		if err := s.write(ctx, req); err != nil {
			s.unregister(id)
			if ctxErr := ctx.Err(); ctxErr != nil {
				return ctxErr
			}
			return fmt.Errorf("call %s: %w", method, err)
		}
		select {
		case r := <-ch:
			return r.decode(method, result)
		case <-ctx.Done():
			s.unregister(id)
			return ctx.Err()
		}
	}
}

// Close fails every call in flight with [ErrClosed], closes the socket and
// waits for its reader to stop. Later calls fail with ErrClosed. Close is
// idempotent.
func (c *Conn) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	s := c.sess
	c.sess = nil
	c.mu.Unlock()
	if s != nil {
		s.fail(ErrClosed)
		<-s.readerDone
	}
	return nil
}

// session returns the live socket, dialling if there is none. Only one
// caller dials at a time; the others wait for it (or for their ctx), then
// look again.
func (c *Conn) session(ctx context.Context) (*session, error) {
	for {
		c.mu.Lock()
		if c.closed {
			c.mu.Unlock()
			return nil, ErrClosed
		}
		if s := c.sess; s != nil && s.alive() {
			c.mu.Unlock()
			return s, nil
		}
		if wait := c.dialing; wait != nil {
			c.mu.Unlock()
			select {
			case <-wait:
				continue
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}
		done := make(chan struct{})
		c.dialing = done
		c.mu.Unlock()

		s, err := c.dial(ctx)

		c.mu.Lock()
		c.dialing = nil
		close(done)
		if err == nil && c.closed {
			c.mu.Unlock()
			s.fail(ErrClosed)
			<-s.readerDone
			return nil, ErrClosed
		}
		if err == nil {
			c.sess = s
			c.epoch.Add(1)
		}
		c.mu.Unlock()
		return s, err
	}
}

// Epoch counts the sockets this Conn has dialled: 0 before the first call,
// 1 after, and one more after each drop. SPDK keeps no state a restart
// would leave behind, so a caller that remembers what it observed must
// forget it when Epoch changes: the application may have restarted
// between the two sockets.
func (c *Conn) Epoch() uint64 { return c.epoch.Load() }

func (c *Conn) dial(ctx context.Context) (*session, error) {
	d := net.Dialer{Timeout: c.dialTO}
	nc, err := d.DialContext(ctx, "unix", c.path)
	if err != nil {
		return nil, fmt.Errorf("dial spdk %s: %w", c.path, err)
	}
	c.log.Debug("spdk connected", "path", c.path)
	s := &session{
		nc:         nc,
		log:        c.log,
		wsem:       make(chan struct{}, 1),
		dead:       make(chan struct{}),
		readerDone: make(chan struct{}),
		pending:    make(map[uint64]chan response),
	}
	go s.read()
	return s, nil
}

// A session is one dialled socket and the calls waiting on it. It dies
// once, when the socket drops or the Conn closes; a Conn then dials a new
// one.
type session struct {
	nc         net.Conn
	log        *slog.Logger
	wsem       chan struct{} // held while writing a request
	dead       chan struct{} // closed by fail
	readerDone chan struct{} // closed when read returns

	mu      sync.Mutex
	err     error // why the session died; nil while alive
	pending map[uint64]chan response
}

// response is what a call gets back: a result, an error object, or a
// transport failure.
type response struct {
	result json.RawMessage
	rpcErr *rpcError
	err    error
}

type rpcError struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
}

func (r response) decode(method string, result any) error {
	switch {
	case r.err != nil:
		return fmt.Errorf("call %s: %w", method, r.err)
	case r.rpcErr != nil:
		return NewError(method, r.rpcErr.Code, r.rpcErr.Message)
	case result == nil:
		return nil
	}
	if err := json.Unmarshal(r.result, result); err != nil {
		return fmt.Errorf("call %s: decode result: %w", method, err)
	}
	return nil
}

func (s *session) alive() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err == nil
}

func (s *session) register(id uint64) (chan response, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return nil, s.err
	}
	ch := make(chan response, 1)
	s.pending[id] = ch
	return ch, nil
}

func (s *session) unregister(id uint64) {
	s.mu.Lock()
	delete(s.pending, id)
	s.mu.Unlock()
}

// fail kills the session once: it records why, closes the socket and fails
// every pending call with err.
func (s *session) fail(err error) {
	s.mu.Lock()
	if s.err != nil {
		s.mu.Unlock()
		return
	}
	s.err = err
	pending := s.pending
	s.pending = nil
	close(s.dead)
	s.mu.Unlock()
	_ = s.nc.Close() // the session is dead either way; nothing to report
	for _, ch := range pending {
		ch <- response{err: err}
	}
}

// aLongTimeAgo is a deadline in the past: it interrupts a blocked write.
var aLongTimeAgo = time.Unix(1, 0)

// write sends one request. Writes are serialized; waiting for the turn and
// the write itself are bounded by ctx. A write cut short leaves half a
// request on the socket, so any write error kills the session.
func (s *session) write(ctx context.Context, b []byte) error {
	select {
	case s.wsem <- struct{}{}:
	case <-s.dead:
		return s.deathErr()
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-s.wsem }()
	if err := ctx.Err(); err != nil {
		return err // not a byte sent: the socket stays good
	}
	if !s.alive() {
		return s.deathErr()
	}
	// Only ctx ending interrupts the write (so that ctx.Err() is set when
	// it does); clear what an interrupted writer may have left.
	if err := s.nc.SetWriteDeadline(time.Time{}); err != nil {
		s.fail(fmt.Errorf("%w: %w", ErrDisconnected, err))
		return s.deathErr()
	}
	interrupted := make(chan struct{})
	stop := context.AfterFunc(ctx, func() {
		defer close(interrupted)
		_ = s.nc.SetWriteDeadline(aLongTimeAgo) // best effort: Write then fails
	})
	_, err := s.nc.Write(b)
	if !stop() {
		<-interrupted // do not let it move the next writer's deadline
	}
	if err != nil {
		s.fail(fmt.Errorf("%w: write: %w", ErrDisconnected, err))
		return s.deathErr()
	}
	return nil
}

func (s *session) deathErr() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

// read decodes the response stream (compact JSON values, each followed by
// "\n" — but any whitespace or none will do) and hands each to its call.
func (s *session) read() {
	defer close(s.readerDone)
	dec := json.NewDecoder(s.nc)
	for {
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			s.log.Debug("spdk connection lost", "err", err)
			s.fail(fmt.Errorf("%w: %w", ErrDisconnected, err))
			return
		}
		s.deliver(raw)
	}
}

func (s *session) deliver(raw json.RawMessage) {
	var env struct {
		ID     json.RawMessage `json:"id"`
		Result json.RawMessage `json:"result"`
		Error  json.RawMessage `json:"error"`
	}
	if err := json.Unmarshal(raw, &env); err != nil {
		// A batch answer or a bare value: this client sends neither.
		s.log.Debug("spdk response dropped: not an object", "response", string(raw))
		return
	}
	id, err := strconv.ParseUint(string(env.ID), 10, 64)
	if err != nil {
		// SPDK answers requests it cannot read (-32600) with id null; this
		// client sends only valid ones, so no call is waiting for it.
		s.log.Debug("spdk response dropped: no usable id", "response", string(raw))
		return
	}
	s.mu.Lock()
	ch, ok := s.pending[id]
	delete(s.pending, id)
	s.mu.Unlock()
	if !ok {
		s.log.Debug("spdk response dropped: no call waits for its id", "id", id)
		return
	}
	var r response
	switch {
	case len(env.Error) > 0 && !isNull(env.Error):
		var e rpcError
		if err := json.Unmarshal(env.Error, &e); err != nil {
			r.err = fmt.Errorf("malformed error object %s: %w", env.Error, err)
		} else {
			r.rpcErr = &e
		}
	case len(env.Result) > 0:
		r.result = env.Result
	default:
		r.err = errors.New("spdk response has neither result nor error")
	}
	ch <- r
}

func isNull(b []byte) bool { return bytes.Equal(bytes.TrimSpace(b), []byte("null")) }

// encodeRequest builds {"jsonrpc":"2.0","method":…,"id":N[,"params":…]}.
// params that encode to null (nil, a nil pointer or map) are left out,
// because SPDK refuses any params, even {}, for methods that take none.
func encodeRequest(id uint64, method string, params any) ([]byte, error) {
	var b bytes.Buffer
	b.WriteString(`{"jsonrpc":"2.0","method":`)
	if err := encodeCompact(&b, method); err != nil {
		return nil, err
	}
	b.WriteString(`,"id":`)
	b.WriteString(strconv.FormatUint(id, 10))
	if params != nil {
		var p bytes.Buffer
		if err := encodeCompact(&p, params); err != nil {
			return nil, fmt.Errorf("encode params: %w", err)
		}
		if !isNull(p.Bytes()) {
			b.WriteString(`,"params":`)
			b.Write(p.Bytes())
		}
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

// encodeCompact writes v as compact JSON without a trailing newline and
// without HTML escaping (SPDK has no use for it).
func encodeCompact(b *bytes.Buffer, v any) error {
	enc := json.NewEncoder(b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return err
	}
	b.Truncate(b.Len() - 1) // Encode's newline
	return nil
}
