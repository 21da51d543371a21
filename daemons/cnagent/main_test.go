package main

import (
	"net/http"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/virtual-disk-array/vda/daemons/internal/daemontest"
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
	addr, stop := daemontest.Serve(t, serve, []string{"--listen", "127.0.0.1:0", "--spdk-socket", srv.Path, "--log-format", "json"})
	client := vdav1connect.NewCnAgentServiceClient(http.DefaultClient, "http://"+addr)

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

	body := daemontest.Metrics(t, addr)
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
	daemontest.SIGTERM(t, []string{"--listen", "127.0.0.1:0", "--spdk-socket", srv.Path, "--log-format", "json"},
		`"msg":"cn agent serving"`, `"msg":"cn agent stopped"`)
}
