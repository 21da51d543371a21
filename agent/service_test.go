package agent_test

import (
	"context"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/virtual-disk-array/vda/agent"
	"github.com/virtual-disk-array/vda/pki"
	"github.com/virtual-disk-array/vda/pki/pkitest"
	vdav1 "github.com/virtual-disk-array/vda/proto/vda/v1"
	"github.com/virtual-disk-array/vda/proto/vda/v1/vdav1connect"
	"github.com/virtual-disk-array/vda/serve"
)

// TestHandlerControlPlaneOnly: an agent's handler, as built by default,
// serves Syncup and Status to the control plane's certificate only. A
// forged syncup (an empty desired state, forced) in plaintext, over TLS
// without a certificate or with an agent's certificate is refused with a
// clear code, and the node is unchanged; the health service stays open.
func TestHandlerControlPlaneOnly(t *testing.T) {
	n, _ := guardedDN(t, agent.DeleteGuard{}, 4)
	c := n.srv.Client()
	before := dump(t, c)

	p := pkitest.New(t)
	server, err := pki.Load(p.Files(t, "dn1", pki.Agent), quiet())
	require.NoError(t, err)
	h := agent.NewDNHandler(n.a, agent.HandlerConfig{Logger: quiet()})

	// The same handler on a plaintext and on a TLS listener.
	plainLn, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	tlsLn, err := serve.Listen("127.0.0.1:0", server.ServerConfig(false))
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 2)
	go func() { done <- serve.HTTP(ctx, plainLn, h, time.Second) }()
	go func() { done <- serve.HTTP(ctx, tlsLn, h, time.Second) }()
	t.Cleanup(func() { cancel(); <-done; <-done })

	forged := connect.NewRequest(&vdav1.DnSyncupRequest{Force: true,
		Desired: &vdav1.DnDesired{DnId: "dn1", Generation: n.gen + 1, Listener: wireListener("4420")}})
	for _, tc := range []struct {
		name   string
		client *http.Client
		url    string
		code   connect.Code
	}{
		{"plaintext", http.DefaultClient, "http://" + plainLn.Addr().String(), connect.CodeUnauthenticated},
		{"TLS without a certificate", p.Client(t, "anyone", "-"), "https://" + tlsLn.Addr().String(), connect.CodeUnauthenticated},
		{"an agent's certificate", p.Client(t, "dn2", pki.Agent), "https://" + tlsLn.Addr().String(), connect.CodePermissionDenied},
		{"a certificate without identity", p.Client(t, "someone", ""), "https://" + tlsLn.Addr().String(), connect.CodePermissionDenied},
	} {
		cl := vdav1connect.NewDnAgentServiceClient(tc.client, tc.url)
		_, err := cl.Syncup(ctxT(t), forged)
		assert.Equal(t, tc.code, connect.CodeOf(err), "%s: syncup: %v", tc.name, err)
		_, err = cl.Status(ctxT(t), connect.NewRequest(&vdav1.AgentStatusRequest{}))
		assert.Equal(t, tc.code, connect.CodeOf(err), "%s: status: %v", tc.name, err)
	}
	assert.Equal(t, before, dump(t, c), "a refused syncup changed the node")
	assert.Equal(t, n.gen, n.a.AppliedGeneration())

	// Health is open; the control plane gets through.
	resp, err := http.Post("http://"+plainLn.Addr().String()+"/grpc.health.v1.Health/Check", "application/json", strings.NewReader("{}"))
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	cp := vdav1connect.NewDnAgentServiceClient(p.Client(t, "monitor", pki.ControlPlane), "https://"+tlsLn.Addr().String())
	st, err := cp.Status(ctxT(t), connect.NewRequest(&vdav1.AgentStatusRequest{}))
	require.NoError(t, err)
	assert.Equal(t, n.gen, st.Msg.GetAppliedGeneration())
}
