package main

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	vdav1 "github.com/virtual-disk-array/vda/proto/vda/v1"
	"github.com/virtual-disk-array/vda/proto/vda/v1/vdav1connect"
	"github.com/virtual-disk-array/vda/spdk/model"
	"github.com/virtual-disk-array/vda/spdk/spdktest"
)

// freePort returns a TCP port nothing listens on now.
func freePort(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	return strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
}

// TestServeSyncupMetricsAndShutdown runs the daemon in-process over a fake
// SPDK: it answers Syncup and Status, serves /metrics, and returns nil when
// its context ends.
func TestServeSyncupMetricsAndShutdown(t *testing.T) {
	srv := spdktest.Start(t, model.Config{})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ready := make(chan string, 1)
	done := make(chan error, 1)
	var logs bytes.Buffer
	go func() {
		done <- serve(ctx, []string{"--listen", "127.0.0.1:0", "--spdk-socket", srv.Path, "--log-format", "json"}, io.Discard, &logs, ready)
	}()
	var addr string
	select {
	case addr = <-ready:
	case err := <-done:
		t.Fatalf("serve ended early: %v", err)
	}
	base := "http://" + addr
	client := vdav1connect.NewCnAgentServiceClient(http.DefaultClient, base)

	resp, err := client.Syncup(ctx, connect.NewRequest(&vdav1.CnSyncupRequest{Desired: &vdav1.CnDesired{
		CnId: "cn1", Generation: 1,
		Listener: &vdav1.NvmfListener{Trtype: "tcp", Adrfam: "ipv4", Traddr: "127.0.0.1", Trsvcid: freePort(t)},
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

	mresp, err := http.Get(base + "/metrics")
	require.NoError(t, err)
	body, _ := io.ReadAll(mresp.Body)
	mresp.Body.Close()
	assert.Equal(t, http.StatusOK, mresp.StatusCode)
	assert.Contains(t, string(body), "vda_agent_applied_generation 1")
	assert.Contains(t, string(body), "go_goroutines")

	cancel()
	select {
	case err := <-done:
		assert.NoError(t, err)
	case <-time.After(15 * time.Second):
		t.Fatal("serve did not stop")
	}
	assert.Contains(t, logs.String(), `"msg":"cn agent stopped"`)
}

// TestSIGTERM runs the real binary over a fake SPDK and stops it the way a
// service manager does.
func TestSIGTERM(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a binary")
	}
	srv := spdktest.Start(t, model.Config{})
	bin := filepath.Join(t.TempDir(), "vda-cnagent")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	require.NoError(t, err, string(out))
	cmd := exec.Command(bin, "--listen", "127.0.0.1:0", "--spdk-socket", srv.Path, "--log-format", "json")
	stderr, err := cmd.StderrPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	lines := bufio.NewScanner(stderr)
	serving := false
	for lines.Scan() {
		if strings.Contains(lines.Text(), `"msg":"cn agent serving"`) {
			serving = true
			break
		}
	}
	require.True(t, serving, "the agent never said it was serving")
	require.NoError(t, cmd.Process.Signal(syscall.SIGTERM))
	var rest strings.Builder
	for lines.Scan() {
		rest.WriteString(lines.Text() + "\n")
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	select {
	case err := <-exited:
		assert.NoError(t, err, "exit status after SIGTERM")
	case <-time.After(15 * time.Second):
		_ = cmd.Process.Kill()
		t.Fatal("the agent did not exit after SIGTERM")
	}
	assert.Contains(t, rest.String(), `"msg":"cn agent stopped"`)
}
