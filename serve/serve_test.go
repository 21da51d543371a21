package serve_test

import (
	"context"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/virtual-disk-array/vda/serve"
)

func TestHTTP(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	const grace = 5 * time.Second
	done := make(chan error, 1)
	go func() {
		done <- serve.HTTP(ctx, ln, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.WriteString(w, r.Proto)
		}), grace)
	}()

	get := func(t *testing.T, c *http.Client) string {
		t.Helper()
		resp, err := c.Get("http://" + addr + "/")
		require.NoError(t, err)
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		assert.Equal(t, http.StatusOK, resp.StatusCode)
		return string(b)
	}
	client := func(h1, h2c bool) *http.Client {
		p := new(http.Protocols)
		p.SetHTTP1(h1)
		p.SetUnencryptedHTTP2(h2c)
		return &http.Client{Transport: &http.Transport{Protocols: p}, Timeout: 5 * time.Second}
	}
	h2c, h1 := client(false, true), client(true, false)
	assert.Equal(t, "HTTP/2.0", get(t, h2c), "h2c")
	assert.Equal(t, "HTTP/1.1", get(t, h1), "HTTP/1.1")
	// Their kept-alive connections are not what this test is about: an
	// idle HTTP/2 connection gets a GOAWAY and up to a second to close.
	h2c.CloseIdleConnections()
	h1.CloseIdleConnections()

	// A connection that never sends a request must not hold up the
	// shutdown for http.Server's 5 s poll of idle-new connections.
	conn, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	defer conn.Close()
	time.Sleep(50 * time.Millisecond) // let the server accept it

	start := time.Now()
	cancel()
	select {
	case err := <-done:
		assert.NoError(t, err)
		assert.Less(t, time.Since(start), time.Second)
	case <-time.After(grace + 5*time.Second):
		t.Fatal("HTTP did not return")
	}
}
