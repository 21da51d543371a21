package jsonrpc_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/virtual-disk-array/vda/spdk"
	"github.com/virtual-disk-array/vda/spdk/jsonrpc"
)

// testHandler answers a few methods that exercise the server.
type testHandler struct {
	// cancelled receives the error of every "wait" handler's ctx.
	cancelled chan error
	started   chan struct{}
}

func newTestHandler() *testHandler {
	return &testHandler{cancelled: make(chan error, 16), started: make(chan struct{}, 16)}
}

func (h *testHandler) Async(method string) bool {
	return method == "wait" || method == "slow" || method == "fast_async"
}

func (h *testHandler) Handle(ctx context.Context, method string, params json.RawMessage) (any, error) {
	switch method {
	case "probe":
		return "probe", nil
	case "ok", "fast_async":
		return true, nil
	case "params":
		// How the params reached the handler.
		if params == nil {
			return "<nil>", nil
		}
		return string(params), nil
	case "fail":
		return nil, spdk.NewError(method, -19, "No such device")
	case "plain_error":
		return nil, errors.New("boom")
	case "wrapped_error":
		return nil, fmt.Errorf("context: %w", spdk.NewError(method, -17, "File exists"))
	case "text":
		return map[string]string{"s": "é/<\x01>\t😀"}, nil
	case "bad_result":
		return make(chan int), nil
	case "slow":
		time.Sleep(50 * time.Millisecond)
		return "slow", nil
	case "wait":
		h.started <- struct{}{}
		<-ctx.Done()
		h.cancelled <- ctx.Err()
		return nil, ctx.Err()
	}
	return nil, spdk.ErrMethodNotFound
}

// TestRequests covers the envelope rules, ids, params and error objects
// beyond the reference cases. Each case runs on a connection of its own,
// which must stay open: a probe follows.
func TestRequests(t *testing.T) {
	srv := startServer(t, newTestHandler())
	const invalid = `{"jsonrpc":"2.0","id":null,"error":{"code":-32600,"message":"Invalid request"}}`
	tests := []struct {
		name string
		send string
		want []string
	}{
		{name: "notification error is sent with id null", send: `{"method":"fail"}`,
			want: []string{`{"jsonrpc":"2.0","id":null,"error":{"code":-19,"message":"No such device"}}`}},
		{name: "id null error is sent with id null", send: `{"method":"fail","id":null}`,
			want: []string{`{"jsonrpc":"2.0","id":null,"error":{"code":-19,"message":"No such device"}}`}},
		{name: "notification result is not sent", send: `{"method":"ok"}`},
		{name: "async notification result is not sent", send: `{"method":"fast_async"}`},
		{name: "duplicate member", send: `{"method":"ok","method":"ok","id":1}`, want: []string{invalid}},
		{name: "duplicate id", send: `{"method":"ok","id":1,"id":2}`, want: []string{invalid}},
		{name: "id bool", send: `{"method":"ok","id":true}`, want: []string{invalid}},
		{name: "id object", send: `{"method":"ok","id":{}}`, want: []string{invalid}},
		{name: "jsonrpc number", send: `{"jsonrpc":2.0,"method":"ok","id":1}`, want: []string{invalid}},
		{name: "jsonrpc null", send: `{"jsonrpc":null,"method":"ok","id":1}`, want: []string{invalid}},
		{name: "params number keeps the id", send: `{"method":"ok","id":3,"params":7}`,
			want: []string{`{"jsonrpc":"2.0","id":3,"error":{"code":-32600,"message":"Invalid request"}}`}},
		{name: "params bool of a notification", send: `{"method":"ok","params":true}`, want: []string{invalid}},
		{name: "top-level true", send: `true`, want: []string{invalid}},
		{name: "top-level null", send: `null`, want: []string{invalid}},
		{name: "whitespace around", send: " \t\r\n{\"method\":\"ok\",\"id\":1} \n",
			want: []string{`{"jsonrpc":"2.0","id":1,"result":true}`}},
		{name: "escaped member name", send: `{"\u006dethod":"ok","id":1}`,
			want: []string{`{"jsonrpc":"2.0","id":1,"result":true}`}},
		{name: "escaped jsonrpc value", send: `{"jsonrpc":"\u0032.0","method":"ok","id":1}`,
			want: []string{`{"jsonrpc":"2.0","id":1,"result":true}`}},
		{name: "params as sent", send: `{"method":"params","id":1,"params":{ "a" : [1, 2] }}`,
			want: []string{`{"jsonrpc":"2.0","id":1,"result":"{ \"a\" : [1, 2] }"}`}},
		{name: "params {}", send: `{"method":"params","id":1,"params":{}}`,
			want: []string{`{"jsonrpc":"2.0","id":1,"result":"{}"}`}},
		{name: "params array", send: `{"method":"params","id":1,"params":["x"]}`,
			want: []string{`{"jsonrpc":"2.0","id":1,"result":"[\"x\"]"}`}},
		{name: "params null", send: `{"method":"params","id":1,"params":null}`,
			want: []string{`{"jsonrpc":"2.0","id":1,"result":"<nil>"}`}},
		{name: "params omitted", send: `{"method":"params","id":1}`,
			want: []string{`{"jsonrpc":"2.0","id":1,"result":"<nil>"}`}},
		{name: "string id written back SPDK's way", send: `{"method":"ok","id":"\u00e9\/x"}`,
			want: []string{`{"jsonrpc":"2.0","id":"\u00E9/x","result":true}`}},
		{name: "number id verbatim", send: `{"method":"ok","id":1E3}`,
			want: []string{`{"jsonrpc":"2.0","id":1E3,"result":true}`}},
		{name: "result strings escaped SPDK's way", send: `{"method":"text","id":1}`,
			want: []string{`{"jsonrpc":"2.0","id":1,"result":{"s":"\u00E9/<\u0001>\t\uD83D\uDE00"}}`}},
		{name: "plain error is -32603 with its text", send: `{"method":"plain_error","id":1}`,
			want: []string{`{"jsonrpc":"2.0","id":1,"error":{"code":-32603,"message":"boom"}}`}},
		{name: "wrapped spdk error", send: `{"method":"wrapped_error","id":1}`,
			want: []string{`{"jsonrpc":"2.0","id":1,"error":{"code":-17,"message":"File exists"}}`}},
		{name: "result that cannot be encoded", send: `{"method":"bad_result","id":1}`,
			want: []string{`{"jsonrpc":"2.0","id":1,"error":{"code":-32603,"message":"json: unsupported type: chan int"}}`}},
		{name: "batch of notifications gets nothing", send: `[{"method":"ok"},{"method":"fast_async"}]`},
		{name: "batch nested array", send: `[[]]`, want: []string{"[" + invalid + "]"}},
		{name: "batch invalid object", send: `[{"id":1},{"method":"ok","id":2}]`,
			want: []string{"[" + invalid + `,{"jsonrpc":"2.0","id":2,"result":true}]`}},
		{name: "batch notification error has an entry", send: `[{"method":"fail"}]`,
			want: []string{`[{"jsonrpc":"2.0","id":null,"error":{"code":-19,"message":"No such device"}}]`}},
		{name: "batch with an async element keeps element order", send: `[{"method":"slow","id":1},{"method":"ok","id":2}]`,
			want: []string{`[{"jsonrpc":"2.0","id":1,"result":"slow"},{"jsonrpc":"2.0","id":2,"result":true}]`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := dial(t, srv.path)
			c.send(tt.send)
			for _, w := range tt.want {
				assert.Equal(t, w+"\n", c.line())
			}
			c.probe()
		})
	}
}

// TestAsyncAnswersComeAfterTheSyncOnesOfTheSameRead: SPDK runs an
// asynchronous method's callback on a later poll, so even an instant one is
// answered after the synchronous requests that came with it.
func TestAsyncAnswersComeAfterTheSyncOnesOfTheSameRead(t *testing.T) {
	srv := startServer(t, newTestHandler())
	tests := []struct {
		name string
		send string
		want []string
	}{
		{name: "request",
			send: `{"method":"fast_async","id":1}{"method":"ok","id":2}{"method":"probe","id":3}`,
			want: []string{
				`{"jsonrpc":"2.0","id":2,"result":true}`,
				`{"jsonrpc":"2.0","id":3,"result":"probe"}`,
				`{"jsonrpc":"2.0","id":1,"result":true}`,
			}},
		{name: "batch",
			send: `[{"method":"fast_async","id":1}]{"method":"ok","id":2}`,
			want: []string{
				`{"jsonrpc":"2.0","id":2,"result":true}`,
				`[{"jsonrpc":"2.0","id":1,"result":true}]`,
			}},
		{name: "sync batch in its place",
			send: `{"method":"fast_async","id":1}[{"method":"ok","id":2}]{"method":"ok","id":3}`,
			want: []string{
				`[{"jsonrpc":"2.0","id":2,"result":true}]`,
				`{"jsonrpc":"2.0","id":3,"result":true}`,
				`{"jsonrpc":"2.0","id":1,"result":true}`,
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for range 20 { // the order must not depend on scheduling
				c := dial(t, srv.path)
				c.send(tt.send)
				for _, w := range tt.want {
					require.Equal(t, w+"\n", c.line())
				}
				_ = c.nc.Close()
			}
		})
	}
}

func TestIncompleteRequestIsWaitedFor(t *testing.T) {
	srv := startServer(t, newTestHandler())
	c := dial(t, srv.path)
	req := `{"jsonrpc":"2.0","method":"ok","id":77}`
	for _, part := range []string{req[:1], req[1:10], req[10:30], req[30:]} {
		c.silent(20 * time.Millisecond)
		c.send(part)
	}
	assert.Equal(t, `{"jsonrpc":"2.0","id":77,"result":true}`+"\n", c.line())
	// A number at the end of a read is complete, as in SPDK.
	c.send(`123`)
	assert.Equal(t, `{"jsonrpc":"2.0","id":null,"error":{"code":-32600,"message":"Invalid request"}}`+"\n", c.line())
	c.probe()
}

// TestParseErrorClosesAndCancels: garbage closes the connection; the answers
// to earlier reads were sent; handlers still running see their ctx end and
// their answers are dropped.
func TestParseErrorClosesAndCancels(t *testing.T) {
	h := newTestHandler()
	srv := startServer(t, h)
	c := dial(t, srv.path)
	c.send(`{"method":"ok","id":1}`)
	assert.Equal(t, `{"jsonrpc":"2.0","id":1,"result":true}`+"\n", c.line())
	c.send(`{"method":"wait","id":2}`)
	<-h.started
	c.send(`{"method":"ok","id":3} }`)
	c.closed()
	select {
	case err := <-h.cancelled:
		assert.ErrorIs(t, err, context.Canceled)
	case <-time.After(5 * time.Second):
		t.Fatal("the handler's ctx did not end when the connection closed")
	}
	assert.Contains(t, srv.logs.String(), "jsonrpc parse request failed")
}

// TestPeerCloseAnswersWhatRuns: after the client closes its side, the
// requests still running are answered, then the connection closes.
func TestPeerCloseAnswersWhatRuns(t *testing.T) {
	srv := startServer(t, newTestHandler())
	c := dial(t, srv.path)
	c.send(`{"method":"slow","id":1}{"method":"ok","id":2}{"method":"ok"`)
	require.NoError(t, c.nc.(*net.UnixConn).CloseWrite())
	assert.Equal(t, `{"jsonrpc":"2.0","id":2,"result":true}`+"\n", c.line())
	assert.Equal(t, `{"jsonrpc":"2.0","id":1,"result":"slow"}`+"\n", c.line())
	c.closed()
}

func TestServeStops(t *testing.T) {
	h := newTestHandler()
	dir, err := os.MkdirTemp("", "jsonrpc")
	require.NoError(t, err)
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	path := filepath.Join(dir, "s.sock")
	ln, err := net.Listen("unix", path)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- jsonrpc.Serve(ctx, ln, h) }()

	c := dial(t, path)
	c.send(`{"method":"wait","id":1}`)
	<-h.started
	cancel()
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(5 * time.Second):
		t.Fatal("Serve did not return")
	}
	assert.ErrorIs(t, <-h.cancelled, context.Canceled)
	c.closed()
	_, err = net.Dial("unix", path)
	assert.Error(t, err, "the listener is closed")
}

func TestServeReportsAListenerFailure(t *testing.T) {
	dir, err := os.MkdirTemp("", "jsonrpc")
	require.NoError(t, err)
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	ln, err := net.Listen("unix", filepath.Join(dir, "s.sock"))
	require.NoError(t, err)
	done := make(chan error, 1)
	go func() { done <- jsonrpc.Serve(context.Background(), ln, newTestHandler()) }()
	time.Sleep(10 * time.Millisecond)
	require.NoError(t, ln.Close())
	select {
	case err := <-done:
		assert.ErrorIs(t, err, net.ErrClosed)
	case <-time.After(5 * time.Second):
		t.Fatal("Serve did not return")
	}
}

// TestLimits: SPDK's limits on one request.
func TestLimits(t *testing.T) {
	srv := startServer(t, newTestHandler())
	const okAnswer = `{"jsonrpc":"2.0","id":1,"result":true}` + "\n"

	// {"method":"ok","id":1,"params":[0,...]} holds 9 values and the zeros.
	values := func(n int) string {
		return `{"method":"ok","id":1,"params":[` + strings.Repeat("0,", n-10) + `0]}`
	}
	// A request of exactly n bytes.
	size := func(n int) string {
		const head, tail = `{"method":"ok","id":1,"params":{"s":"`, `"}}`
		return head + strings.Repeat("x", n-len(head)-len(tail)) + tail
	}
	deep := func(n int) string {
		return `{"method":"ok","id":1,"params":` + strings.Repeat("[", n-1) + strings.Repeat("]", n-1) + `}`
	}
	tests := []struct {
		name string
		send string
		ok   bool
	}{
		{name: "1024 values", send: values(1024), ok: true},
		{name: "1025 values", send: values(1025)},
		{name: "32 KiB", send: size(32 * 1024), ok: true},
		{name: "32 KiB and a byte", send: size(32*1024 + 1)},
		{name: "depth 64", send: deep(64), ok: true},
		{name: "depth 65", send: deep(65)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := dial(t, srv.path)
			c.send(tt.send)
			if tt.ok {
				assert.Equal(t, okAnswer, c.line())
				c.probe()
				return
			}
			// The server closes without answering. Bytes it did not read
			// make Linux report a reset rather than EOF.
			require.NoError(t, c.nc.SetReadDeadline(time.Now().Add(5*time.Second)))
			b, err := io.ReadAll(c.r)
			if err != nil {
				assert.ErrorIs(t, err, syscall.ECONNRESET)
			}
			assert.Empty(t, string(b))
		})
	}
}

// TestMaxConnections: SPDK serves 64 connections; the 65th waits until one
// closes.
func TestMaxConnections(t *testing.T) {
	srv := startServer(t, newTestHandler())
	var conns []*client
	for range 64 {
		c := dial(t, srv.path)
		c.probe()
		conns = append(conns, c)
	}
	extra := dial(t, srv.path)
	extra.send(`{"method":"probe","id":"probe"}`)
	extra.silent(200 * time.Millisecond)
	require.NoError(t, conns[0].nc.Close())
	assert.Equal(t, `{"jsonrpc":"2.0","id":"probe","result":"probe"}`+"\n", extra.line())
}
