package spdk_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/virtual-disk-array/vda/spdk"
	"github.com/virtual-disk-array/vda/spdk/jsonrpc"
)

// socketPath returns a fresh Unix socket path short enough for the kernel.
func socketPath(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "spdkconn")
	require.NoError(t, err)
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	return filepath.Join(dir, "spdk.sock")
}

// serve runs jsonrpc.Serve with h on path until the test ends.
func serve(t *testing.T, path string, h jsonrpc.Handler) {
	t.Helper()
	ln, err := net.Listen("unix", path)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	srv := &jsonrpc.Server{Handler: h, Logger: slog.New(slog.DiscardHandler)}
	go func() { done <- srv.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		assert.NoError(t, <-done)
	})
}

func dialConn(t *testing.T, path string, log *slog.Logger) *spdk.Conn {
	t.Helper()
	c := spdk.Dial(path, spdk.ConnConfig{Logger: log})
	t.Cleanup(func() { assert.NoError(t, c.Close()) })
	return c
}

// echoHandler answers the methods the Conn tests call through jsonrpc.Serve.
type echoHandler struct{}

func (echoHandler) Async(method string) bool { return method == "echo" }

func (echoHandler) Handle(ctx context.Context, method string, params json.RawMessage) (any, error) {
	switch method {
	case "echo":
		// Random delays make answers overtake each other.
		select {
		case <-time.After(time.Duration(rand.IntN(2000)) * time.Microsecond):
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		return params, nil
	case "params":
		if params == nil {
			return "<nil>", nil
		}
		return string(params), nil
	case "version":
		return map[string]any{"version": "SPDK v26.05", "fields": map[string]int{"major": 26}}, nil
	case "exists":
		return nil, spdk.NewError(method, -17, "File exists")
	case "nospace":
		return nil, spdk.NewError(method, -32602, "No space left on device")
	}
	return nil, spdk.ErrMethodNotFound
}

func TestConnCalls(t *testing.T) {
	path := socketPath(t)
	serve(t, path, echoHandler{})
	c := dialConn(t, path, nil)
	ctx := context.Background()

	t.Run("result", func(t *testing.T) {
		var v struct {
			Version string `json:"version"`
		}
		require.NoError(t, c.Call(ctx, "version", nil, &v))
		assert.Equal(t, "SPDK v26.05", v.Version)
	})
	t.Run("result discarded", func(t *testing.T) {
		assert.NoError(t, c.Call(ctx, "version", nil, nil))
	})
	t.Run("result of the wrong type", func(t *testing.T) {
		var n int
		err := c.Call(ctx, "version", nil, &n)
		assert.ErrorContains(t, err, "call version: decode result")
		_, isSPDK := spdk.ErrorCode(err)
		assert.False(t, isSPDK)
	})

	params := []struct {
		name   string
		params any
		want   string
	}{
		{"nil", nil, "<nil>"},
		{"typed nil pointer", (*struct{ A int })(nil), "<nil>"},
		{"nil map", map[string]int(nil), "<nil>"},
		{"struct", struct {
			Name string `json:"name"`
		}{"a<b>&"}, `{"name":"a<b>&"}`},
		{"raw", json.RawMessage(`{ "x" : 1 }`), `{"x":1}`},
		{"empty object", struct{}{}, `{}`},
	}
	for _, tt := range params {
		t.Run("params "+tt.name, func(t *testing.T) {
			var got string
			require.NoError(t, c.Call(ctx, "params", tt.params, &got))
			assert.Equal(t, tt.want, got)
		})
	}
	t.Run("params that cannot be encoded", func(t *testing.T) {
		err := c.Call(ctx, "params", make(chan int), nil)
		assert.ErrorContains(t, err, "call params: encode params")
	})

	errs := []struct {
		method  string
		is      []error
		code    int
		message string
	}{
		{"exists", []error{spdk.ErrExist}, -17, "File exists"},
		{"nospace", []error{spdk.ErrNoSpace, spdk.ErrInvalidParams}, -32602, "No space left on device"},
		{"nope", []error{spdk.ErrMethodNotFound}, -32601, "Method not found"},
	}
	for _, tt := range errs {
		t.Run("error "+tt.method, func(t *testing.T) {
			err := c.Call(ctx, tt.method, nil, nil)
			for _, target := range tt.is {
				assert.ErrorIs(t, err, target)
			}
			var e *spdk.Error
			require.ErrorAs(t, err, &e)
			assert.Equal(t, spdk.Error{Method: tt.method, Code: tt.code, Message: tt.message}, *e)
		})
	}
}

// TestConnConcurrentCalls: 100 goroutines on one Conn, answered out of
// order by an asynchronous method, each get their own answer.
func TestConnConcurrentCalls(t *testing.T) {
	path := socketPath(t)
	serve(t, path, echoHandler{})
	c := dialConn(t, path, nil)
	var wg sync.WaitGroup
	for i := range 100 {
		wg.Go(func() {
			for j := range 5 {
				want := map[string]int{"i": i, "j": j}
				var got map[string]int
				if assert.NoError(t, c.Call(context.Background(), "echo", want, &got)) {
					assert.Equal(t, want, got)
				}
			}
		})
	}
	wg.Wait()
}

// rawServer serves a Unix socket with hand-written behaviour: the i-th
// connection accepted is given to serve(i, conn). It records every request
// it reads, byte for byte.
type rawServer struct {
	t    *testing.T
	path string

	mu   sync.Mutex
	seen []string
}

func startRaw(t *testing.T, serve func(s *rawServer, i int, nc net.Conn)) *rawServer {
	t.Helper()
	s := &rawServer{t: t, path: socketPath(t)}
	ln, err := net.Listen("unix", s.path)
	require.NoError(t, err)
	var wg sync.WaitGroup
	var conns []net.Conn
	var mu sync.Mutex
	wg.Go(func() {
		for i := 0; ; i++ {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, nc)
			mu.Unlock()
			wg.Go(func() { serve(s, i, nc) })
		}
	})
	t.Cleanup(func() {
		_ = ln.Close()
		mu.Lock()
		for _, nc := range conns {
			_ = nc.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return s
}

// request reads one request and returns its id.
func (s *rawServer) request(dec *json.Decoder) (uint64, bool) {
	var raw json.RawMessage
	if err := dec.Decode(&raw); err != nil {
		return 0, false
	}
	s.mu.Lock()
	s.seen = append(s.seen, string(raw))
	s.mu.Unlock()
	var req struct {
		ID uint64 `json:"id"`
	}
	require.NoError(s.t, json.Unmarshal(raw, &req))
	return req.ID, true
}

func (s *rawServer) requests() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.seen...)
}

func answer(id uint64, result string) string {
	return `{"jsonrpc":"2.0","id":` + strconv.FormatUint(id, 10) + `,"result":` + result + "}\n"
}

// TestConnWireBytes: what the server reads is exactly the request, with no
// params member when params is nil.
func TestConnWireBytes(t *testing.T) {
	s := startRaw(t, func(s *rawServer, _ int, nc net.Conn) {
		dec := json.NewDecoder(nc)
		for {
			id, ok := s.request(dec)
			if !ok {
				return
			}
			_, _ = nc.Write([]byte(answer(id, "true")))
		}
	})
	c := dialConn(t, s.path, nil)
	ctx := context.Background()
	require.NoError(t, c.Call(ctx, "spdk_get_version", nil, nil))
	require.NoError(t, c.Call(ctx, "bdev_get_bdevs", map[string]string{"name": "a<b"}, nil))
	require.NoError(t, c.Call(ctx, "framework_wait_init", (*struct{})(nil), nil))
	assert.Equal(t, []string{
		`{"jsonrpc":"2.0","method":"spdk_get_version","id":1}`,
		`{"jsonrpc":"2.0","method":"bdev_get_bdevs","id":2,"params":{"name":"a<b"}}`,
		`{"jsonrpc":"2.0","method":"framework_wait_init","id":3}`,
	}, s.requests())
}

// TestConnMatchesAnswersByID: answers in reverse order, in one write,
// preceded by answers no call waits for (an unknown id, SPDK's id-null
// -32600, a batch), reach the right calls; the strays are logged and
// dropped. Answers split into single bytes are read too.
func TestConnMatchesAnswersByID(t *testing.T) {
	// who reads a request and returns its id and its params' "who".
	who := func(s *rawServer, dec *json.Decoder) (uint64, string, bool) {
		id, ok := s.request(dec)
		if !ok {
			return 0, "", false
		}
		var req struct {
			Params struct {
				Who string `json:"who"`
			} `json:"params"`
		}
		reqs := s.requests()
		require.NoError(t, json.Unmarshal([]byte(reqs[len(reqs)-1]), &req))
		return id, req.Params.Who, true
	}
	s := startRaw(t, func(s *rawServer, _ int, nc net.Conn) {
		dec := json.NewDecoder(nc)
		a, whoA, okA := who(s, dec)
		b, whoB, okB := who(s, dec)
		if !okA || !okB {
			return
		}
		_, _ = nc.Write([]byte(answer(999, `"stray"`) +
			`{"jsonrpc":"2.0","id":null,"error":{"code":-32600,"message":"Invalid request"}}` + "\n" +
			`[` + strings.TrimSpace(answer(a, `"batch"`)) + "]\n" +
			answer(b, strconv.Quote(whoB)) + answer(a, strconv.Quote(whoA))))
		c, whoC, ok := who(s, dec)
		if !ok {
			return
		}
		for _, ch := range []byte(answer(c, strconv.Quote(whoC))) {
			_, _ = nc.Write([]byte{ch})
			time.Sleep(time.Millisecond)
		}
	})
	var logs bytes.Buffer
	var logMu sync.Mutex
	log := slog.New(slog.NewTextHandler(lockedWriter{&logMu, &logs}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	c := dialConn(t, s.path, log)

	call := func(name string) {
		var got string
		if assert.NoError(t, c.Call(context.Background(), "m", map[string]string{"who": name}, &got)) {
			assert.Equal(t, name, got)
		}
	}
	var wg sync.WaitGroup
	wg.Go(func() { call("first") })
	wg.Go(func() { call("second") })
	wg.Wait()
	call("split")

	logMu.Lock()
	defer logMu.Unlock()
	assert.Contains(t, logs.String(), "no call waits for its id")
	assert.Contains(t, logs.String(), "no usable id")
	assert.Contains(t, logs.String(), "not an object")
}

type lockedWriter struct {
	mu *sync.Mutex
	w  *bytes.Buffer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// TestConnTimeout: a call whose ctx ends returns ctx.Err(); its late
// answer is dropped and the next call gets its own.
func TestConnTimeout(t *testing.T) {
	release := make(chan struct{})
	s := startRaw(t, func(s *rawServer, _ int, nc net.Conn) {
		dec := json.NewDecoder(nc)
		first, ok := s.request(dec)
		if !ok {
			return
		}
		<-release
		_, _ = nc.Write([]byte(answer(first, `"late"`)))
		for {
			id, ok := s.request(dec)
			if !ok {
				return
			}
			_, _ = nc.Write([]byte(answer(id, `"fresh"`)))
		}
	})
	c := dialConn(t, s.path, nil)

	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	err := c.Call(ctx, "stall", nil, nil)
	assert.ErrorIs(t, err, context.DeadlineExceeded)
	close(release)

	var got string
	require.NoError(t, c.Call(context.Background(), "m", nil, &got))
	assert.Equal(t, "fresh", got)

	done, cancelDone := context.WithCancel(context.Background())
	cancelDone()
	assert.ErrorIs(t, c.Call(done, "m", nil, nil), context.Canceled)
}

// TestConnReconnects: a socket that drops mid-call (closed, or closed
// after garbage) fails the call with ErrDisconnected; the next call dials
// again and succeeds.
func TestConnReconnects(t *testing.T) {
	s := startRaw(t, func(s *rawServer, i int, nc net.Conn) {
		dec := json.NewDecoder(nc)
		id, ok := s.request(dec)
		if !ok {
			return
		}
		switch i {
		case 0:
			_ = nc.Close()
		case 1:
			_, _ = nc.Write([]byte("hello world"))
			_ = nc.Close()
		default:
			_, _ = nc.Write([]byte(answer(id, strconv.Itoa(i))))
		}
	})
	c := dialConn(t, s.path, nil)
	ctx := context.Background()
	assert.Zero(t, c.Epoch(), "no socket before the first call")

	err := c.Call(ctx, "m", nil, nil)
	assert.ErrorIs(t, err, spdk.ErrDisconnected)
	assert.ErrorContains(t, err, "call m: spdk: disconnected")
	_, isSPDK := spdk.ErrorCode(err)
	assert.False(t, isSPDK)
	assert.Equal(t, uint64(1), c.Epoch())

	err = c.Call(ctx, "m", nil, nil)
	assert.ErrorIs(t, err, spdk.ErrDisconnected)

	var n int
	require.NoError(t, c.Call(ctx, "m", nil, &n))
	assert.Equal(t, 2, n)
	assert.Equal(t, uint64(3), c.Epoch(), "one epoch per socket")
}

// TestConnDialsLazily: Dial does not connect; a call while nothing listens
// fails with the dial error; once the server is up, calls succeed.
func TestConnDialsLazily(t *testing.T) {
	path := socketPath(t)
	c := dialConn(t, path, nil)
	err := c.Call(context.Background(), "version", nil, nil)
	require.Error(t, err)
	assert.ErrorContains(t, err, "dial spdk "+path)
	assert.NotErrorIs(t, err, spdk.ErrDisconnected)
	var opErr *net.OpError
	assert.ErrorAs(t, err, &opErr)

	serve(t, path, echoHandler{})
	assert.NoError(t, c.Call(context.Background(), "version", nil, nil))
}

// TestConnClose: Close fails calls in flight with ErrClosed, and every later
// call too.
func TestConnClose(t *testing.T) {
	got := make(chan struct{})
	s := startRaw(t, func(s *rawServer, _ int, nc net.Conn) {
		if _, ok := s.request(json.NewDecoder(nc)); ok {
			close(got)
		}
		// never answers
	})
	c := spdk.Dial(s.path, spdk.ConnConfig{})
	errc := make(chan error, 1)
	go func() { errc <- c.Call(context.Background(), "m", nil, nil) }()
	<-got
	require.NoError(t, c.Close())
	assert.ErrorIs(t, <-errc, spdk.ErrClosed)
	assert.ErrorIs(t, c.Call(context.Background(), "m", nil, nil), spdk.ErrClosed)
	assert.NoError(t, c.Close())
}

// TestConnWriteBoundedByCtx: a server that stops reading cannot hold a
// call past its ctx; the half-written socket is dropped and the next call
// dials again.
func TestConnWriteBoundedByCtx(t *testing.T) {
	quit := make(chan struct{})
	s := startRaw(t, func(s *rawServer, i int, nc net.Conn) {
		dec := json.NewDecoder(nc)
		for {
			id, ok := s.request(dec)
			if !ok {
				return
			}
			_, _ = nc.Write([]byte(answer(id, "true")))
			if i == 0 {
				<-quit // stops reading after one request
				return
			}
		}
	})
	t.Cleanup(func() { close(quit) }) // runs before the server's cleanup
	c := dialConn(t, s.path, nil)
	require.NoError(t, c.Call(context.Background(), "m", nil, nil))

	// Long enough to encode the request (under -race too), short enough
	// for a test.
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	huge := strings.Repeat("x", 1<<20) // far more than a socket buffer
	start := time.Now()
	err := c.Call(ctx, "m", map[string]string{"s": huge}, nil)
	assert.ErrorIs(t, err, context.DeadlineExceeded)
	assert.Less(t, time.Since(start), 5*time.Second)

	assert.NoError(t, c.Call(context.Background(), "m", nil, nil))
	assert.Len(t, s.requests(), 2, "the huge request never arrived whole")
}

func TestConnZeroConfig(t *testing.T) {
	// DialTimeout and Logger default; a call on a missing socket fails
	// fast and says why.
	c := spdk.Dial(filepath.Join(t.TempDir(), "none.sock"), spdk.ConnConfig{})
	defer c.Close()
	err := c.Call(context.Background(), "m", nil, nil)
	assert.True(t, errors.Is(err, os.ErrNotExist) || strings.Contains(err.Error(), "no such file"), err)
}
