package syncup_test

import (
	"context"
	"net/http"
	"sync"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/virtual-disk-array/vda/pki"
	"github.com/virtual-disk-array/vda/pki/pkitest"
	vdav1 "github.com/virtual-disk-array/vda/proto/vda/v1"
	"github.com/virtual-disk-array/vda/proto/vda/v1/vdav1connect"
	"github.com/virtual-disk-array/vda/serve"
	"github.com/virtual-disk-array/vda/store/storetest"
	"github.com/virtual-disk-array/vda/syncup"
)

type statusAgent struct {
	vdav1connect.UnimplementedDnAgentServiceHandler
}

func (statusAgent) Status(context.Context, *connect.Request[vdav1.AgentStatusRequest]) (*connect.Response[vdav1.AgentStatusResponse], error) {
	return connect.NewResponse(&vdav1.AgentStatusResponse{SpdkReachable: true}), nil
}

// TestTLSRecycle: the pusher calls agents over mutual TLS with its
// certificate, and a rotated certificate reaches the agents within
// Recycle, although heartbeats keep the HTTP/2 connection busy.
func TestTLSRecycle(t *testing.T) {
	p := pkitest.New(t)
	agentCerts, err := pki.Load(p.Files(t, "agent", pki.Agent), quiet())
	require.NoError(t, err)

	// The agent notes the serial of the client certificate of each call.
	var mu sync.Mutex
	var serials []string
	mux := http.NewServeMux()
	mux.Handle(vdav1connect.NewDnAgentServiceHandler(statusAgent{}))
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		serials = append(serials, r.TLS.PeerCertificates[0].SerialNumber.String())
		mu.Unlock()
		mux.ServeHTTP(w, r)
	})
	ln, err := serve.Listen("127.0.0.1:0", agentCerts.ServerConfig(true))
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- serve.HTTP(ctx, ln, h, time.Second) }()
	t.Cleanup(func() { cancel(); <-done })

	cp, err := pki.Load(p.Files(t, "monitor", pki.ControlPlane), quiet())
	require.NoError(t, err)
	db := storetest.Open(t, storetest.Backends()[0])
	pusher, err := syncup.New(syncup.Config{DB: db, Logger: quiet(), Certs: cp, Recycle: 200 * time.Millisecond})
	require.NoError(t, err)
	status := func() {
		t.Helper()
		_, err := pusher.Status(context.Background(), false, ln.Addr().String())
		require.NoError(t, err)
	}
	status()
	p.Files(t, "monitor", pki.ControlPlane) // rotated on disk
	// A heartbeat every 50 ms keeps the connection busy; the rotated
	// certificate (the files are looked at once a second) must show up.
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		status()
		mu.Lock()
		changed := serials[len(serials)-1] != serials[0]
		mu.Unlock()
		if changed {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	mu.Lock()
	defer mu.Unlock()
	assert.NotEqual(t, serials[0], serials[len(serials)-1], "the agent never saw the rotated certificate")
}
