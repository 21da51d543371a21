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
	"github.com/virtual-disk-array/vda"
	"github.com/virtual-disk-array/vda/daemons/internal/daemon"
	"github.com/virtual-disk-array/vda/daemons/internal/daemontest"
	"github.com/virtual-disk-array/vda/pki"
	"github.com/virtual-disk-array/vda/pki/pkitest"
	vdav1 "github.com/virtual-disk-array/vda/proto/vda/v1"
	"github.com/virtual-disk-array/vda/proto/vda/v1/vdav1connect"
	"github.com/virtual-disk-array/vda/spdk/model"
	"github.com/virtual-disk-array/vda/spdk/spdktest"
)

func desired(gen uint64, port string) *vdav1.DnDesired {
	return &vdav1.DnDesired{
		DnId: "dn1", Generation: gen,
		Listener: &vdav1.NvmfListener{Trtype: "tcp", Adrfam: "ipv4", Traddr: "127.0.0.1", Trsvcid: port},
		Pds: []*vdav1.PdDesired{{
			Id:      "pd1",
			Backend: &vdav1.PdDesired_Malloc{Malloc: &vdav1.PdMalloc{Size: 64 << 20}},
			Vds:     []*vdav1.VdDesired{{Id: "vd1", Size: 8 << 20, PrimaryCntlrId: "c1"}},
		}},
	}
}

// TestServeSyncupMetricsAndShutdown runs the daemon in-process over a fake
// SPDK: it reconciles what Syncup sends, reports it in Status and
// /metrics, and returns nil when its context ends.
func TestServeSyncupMetricsAndShutdown(t *testing.T) {
	srv := spdktest.Start(t, model.Config{})
	ctx := t.Context()
	// Over mutual TLS, as the control plane calls it.
	p := pkitest.New(t)
	args := append([]string{"--listen", "127.0.0.1:0", "--spdk-socket", srv.Path, "--log-format", "json"}, p.Args(t, "agent", pki.Agent)...)
	addr, stop := daemontest.Serve(t, serve, args)
	client := vdav1connect.NewDnAgentServiceClient(p.Client(t, "monitor", pki.ControlPlane), "https://"+addr)
	// Anyone else is refused.
	_, err := vdav1connect.NewDnAgentServiceClient(p.Client(t, "anyone", "-"), "https://"+addr).Status(t.Context(), connect.NewRequest(&vdav1.AgentStatusRequest{}))
	assert.Equal(t, connect.CodeUnauthenticated, connect.CodeOf(err), "%v", err)
	_, err = vdav1connect.NewDnAgentServiceClient(p.Client(t, "other-agent", pki.Agent), "https://"+addr).Status(t.Context(), connect.NewRequest(&vdav1.AgentStatusRequest{}))
	assert.Equal(t, connect.CodePermissionDenied, connect.CodeOf(err), "%v", err)
	port := daemontest.FreePort(t)

	resp, err := client.Syncup(ctx, connect.NewRequest(&vdav1.DnSyncupRequest{Desired: desired(1, port)}))
	require.NoError(t, err)
	rep := resp.Msg.GetReport()
	assert.Equal(t, uint64(1), rep.GetGeneration())
	assert.Empty(t, rep.GetError())
	require.Len(t, rep.GetPds(), 1)
	assert.Empty(t, rep.GetPds()[0].GetError())
	require.Len(t, rep.GetVds(), 1)
	assert.Empty(t, rep.GetVds()[0].GetError())
	subs, err := srv.Client().NvmfGetSubsystems(ctx, vda.VDNQN("vd1"))
	require.NoError(t, err)
	assert.Len(t, subs, 1)

	st, err := client.Status(ctx, connect.NewRequest(&vdav1.AgentStatusRequest{}))
	require.NoError(t, err)
	assert.True(t, st.Msg.GetSpdkReachable(), st.Msg.GetSpdkError())
	assert.Equal(t, uint64(1), st.Msg.GetAppliedGeneration())
	require.Len(t, st.Msg.GetPds(), 1)
	assert.Positive(t, st.Msg.GetPds()[0].GetCapacity())

	_, err = client.Syncup(ctx, connect.NewRequest(&vdav1.DnSyncupRequest{Desired: desired(0, port)}))
	assert.Equal(t, connect.CodeInvalidArgument, connect.CodeOf(err), "generation 0: %v", err)
	_, err = client.Syncup(ctx, connect.NewRequest(&vdav1.DnSyncupRequest{Desired: desired(2, port)}))
	require.NoError(t, err)
	_, err = client.Syncup(ctx, connect.NewRequest(&vdav1.DnSyncupRequest{Desired: desired(1, port)}))
	assert.Equal(t, connect.CodeFailedPrecondition, connect.CodeOf(err), "stale generation: %v", err)

	code, body := pkitest.GetWith(t, p.Client(t, "scraper", "-"), "https://"+addr+"/metrics")
	assert.Equal(t, http.StatusOK, code)
	assert.Contains(t, body, "vda_agent_applied_generation 2")
	assert.Contains(t, body, "vda_tls_certificate_expiry_timestamp_seconds ")
	assert.Contains(t, body, "go_goroutines")

	logs, err := stop(15 * time.Second)
	assert.NoError(t, err)
	assert.Contains(t, logs, `"msg":"dn agent stopped"`)
}

// TestSIGTERM runs the real binary over a fake SPDK and stops it the way a
// service manager does.
func TestSIGTERM(t *testing.T) {
	srv := spdktest.Start(t, model.Config{})
	daemontest.SIGTERM(t, []string{"--listen", "127.0.0.1:0", "--spdk-socket", srv.Path, "--log-format", "json", "--insecure"},
		`"msg":"dn agent serving"`, `"msg":"dn agent stopped"`)
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
