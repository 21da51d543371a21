package monitor_test

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/virtual-disk-array/vda/monitor"
	vdav1 "github.com/virtual-disk-array/vda/proto/vda/v1"
	"github.com/virtual-disk-array/vda/store/storetest"
)

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestNodeErrorLoggedOnce: a node that keeps reporting an error (a pd
// whose file does not exist) is retried with backoff and logged at warn
// once, not at every retry; once it converges, that is logged too.
func TestNodeErrorLoggedOnce(t *testing.T) {
	db := storetest.Open(t, storetest.Backends()[0])
	l := newLabWith(t, db, 1, 0, labOptions{pdSize: 64 << 20})
	var logs syncBuffer
	l.monitor("m1", func(c *monitor.Config) {
		c.Logger = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	})
	ctx := context.Background()
	_, err := l.svc.CreatePd(ctx, connect.NewRequest(&vdav1.CreatePdRequest{DnName: "dn1", Name: "gone",
		Backend: &vdav1.CreatePdRequest_Aio{Aio: &vdav1.PdAio{Path: "/nonexistent/vda-test.img"}}}))
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		return strings.Count(logs.String(), "node reports errors") >= 1
	}, 10*time.Second, 20*time.Millisecond)
	// Several retries (backoff 50-500 ms) later, still one line.
	time.Sleep(1500 * time.Millisecond)
	assert.Equal(t, 1, strings.Count(logs.String(), "node reports errors"), logs.String())
	assert.Contains(t, logs.String(), "node=dn1")
	assert.Contains(t, logs.String(), "failed=1")

	_, err = l.svc.DeletePd(ctx, connect.NewRequest(&vdav1.DeletePdRequest{DnName: "dn1", Name: "gone"}))
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		return strings.Contains(logs.String(), "node converged again")
	}, 10*time.Second, 20*time.Millisecond)
}
