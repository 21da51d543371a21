package main

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/virtual-disk-array/vda/daemons/internal/daemon"
	"github.com/virtual-disk-array/vda/daemons/internal/daemontest"
	"github.com/virtual-disk-array/vda/pki"
	"github.com/virtual-disk-array/vda/pki/pkitest"
	vdav1 "github.com/virtual-disk-array/vda/proto/vda/v1"
	"github.com/virtual-disk-array/vda/proto/vda/v1/vdav1connect"
	"github.com/virtual-disk-array/vda/spdk/model"
	"github.com/virtual-disk-array/vda/spdk/spdktest"
)

// TestServeSyncupMetricsAndShutdown runs the daemon in-process over a fake
// SPDK: it answers Syncup and Status, serves /metrics, and returns nil when
// its context ends.
func TestServeSyncupMetricsAndShutdown(t *testing.T) {
	srv := spdktest.Start(t, model.Config{})
	ctx := t.Context()
	// Over mutual TLS, as the control plane calls it.
	p := pkitest.New(t)
	args := append([]string{"--listen", "127.0.0.1:0", "--spdk-socket", srv.Path, "--log-format", "json"}, p.Args(t, "agent", pki.Agent)...)
	addr, stop := daemontest.Serve(t, serve, args)
	client := vdav1connect.NewCnAgentServiceClient(p.Client(t, "monitor", pki.ControlPlane), "https://"+addr)
	// Anyone else is refused.
	_, err := vdav1connect.NewCnAgentServiceClient(p.Client(t, "anyone", "-"), "https://"+addr).Status(t.Context(), connect.NewRequest(&vdav1.AgentStatusRequest{}))
	assert.Equal(t, connect.CodeUnauthenticated, connect.CodeOf(err), "%v", err)
	_, err = vdav1connect.NewCnAgentServiceClient(p.Client(t, "other-agent", pki.Agent), "https://"+addr).Status(t.Context(), connect.NewRequest(&vdav1.AgentStatusRequest{}))
	assert.Equal(t, connect.CodePermissionDenied, connect.CodeOf(err), "%v", err)

	resp, err := client.Syncup(ctx, connect.NewRequest(&vdav1.CnSyncupRequest{Desired: &vdav1.CnDesired{
		CnId: "cn1", Generation: 1,
		Listener: &vdav1.NvmfListener{Trtype: "tcp", Adrfam: "ipv4", Traddr: "127.0.0.1", Trsvcid: daemontest.FreePort(t)},
	}}))
	require.NoError(t, err)
	rep := resp.Msg.GetReport()
	assert.Equal(t, uint64(1), rep.GetGeneration())
	assert.Empty(t, rep.GetError())
	assert.Empty(t, rep.GetCntlrs())

	st, err := client.Status(ctx, connect.NewRequest(&vdav1.AgentStatusRequest{}))
	require.NoError(t, err)
	assert.True(t, st.Msg.GetSpdkReachable(), st.Msg.GetSpdkError())
	assert.Equal(t, uint64(1), st.Msg.GetAppliedGeneration())
	assert.Empty(t, st.Msg.GetPds())

	code, body := pkitest.GetWith(t, p.Client(t, "scraper", "-"), "https://"+addr+"/metrics")
	assert.Equal(t, http.StatusOK, code)
	assert.Contains(t, body, "vda_agent_applied_generation 1")
	assert.Contains(t, body, "go_goroutines")

	logs, err := stop(15 * time.Second)
	assert.NoError(t, err)
	assert.Contains(t, logs, `"msg":"cn agent stopped"`)
}

// TestSIGTERM runs the real binary over a fake SPDK and stops it the way a
// service manager does.
func TestSIGTERM(t *testing.T) {
	srv := spdktest.Start(t, model.Config{})
	daemontest.SIGTERM(t, []string{"--listen", "127.0.0.1:0", "--spdk-socket", srv.Path, "--log-format", "json", "--insecure"},
		`"msg":"cn agent serving"`, `"msg":"cn agent stopped"`)
}

// TestDeleteGuardFlags: the guard's flags reach the agent, which refuses
// values out of range before it serves.
func TestDeleteGuardFlags(t *testing.T) {
	for _, args := range [][]string{
		{"--delete-guard-share", "1.5"},
		{"--delete-guard-share=-0.5"},
		{"--delete-guard-floor=-1"},
	} {
		var stdout, stderr strings.Builder
		err := serve(t.Context(), append([]string{"--listen", "127.0.0.1:0", "--insecure"}, args...), &stdout, &stderr, nil)
		require.Error(t, err, "%v", args)
		assert.Contains(t, err.Error(), "DeleteGuard", "%v", args)
	}
	t.Setenv("VDA_AGENT_DELETE_GUARD_SHARE", "7")
	err := serve(t.Context(), []string{"--listen", "127.0.0.1:0", "--insecure"}, io.Discard, io.Discard, nil)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "DeleteGuard.Share 7")
	err = serve(t.Context(), []string{"--listen", "127.0.0.1:0"}, io.Discard, io.Discard, nil)
	assert.ErrorIs(t, err, daemon.ErrNoTLS, "no TLS files and no --insecure")
}
