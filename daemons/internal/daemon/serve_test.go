package daemon_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/virtual-disk-array/vda/daemons/internal/daemon"
)

func serveOn(t *testing.T, ctx context.Context, run func(context.Context) error) <-chan error {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	done := make(chan error, 1)
	go func() { done <- daemon.Serve(ctx, ln, http.NotFoundHandler(), daemon.Registry(), time.Second, run) }()
	return done
}

func wait(t *testing.T, done <-chan error) error {
	t.Helper()
	select {
	case err := <-done:
		return err
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return")
		return nil
	}
}

func TestServeStopsWhenRunFails(t *testing.T) {
	boom := errors.New("boom")
	err := wait(t, serveOn(t, context.Background(), func(context.Context) error { return boom }))
	assert.ErrorIs(t, err, boom)
}

func TestServeRunStopsWithCtx(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	started := make(chan struct{})
	done := serveOn(t, ctx, func(ctx context.Context) error {
		close(started)
		<-ctx.Done()
		return nil
	})
	<-started
	cancel()
	assert.NoError(t, wait(t, done))
}

func TestServeRunMustNotEndOnItsOwn(t *testing.T) {
	err := wait(t, serveOn(t, context.Background(), func(context.Context) error { return nil }))
	assert.ErrorContains(t, err, "stopped before it was asked to")
}
