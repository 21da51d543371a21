package main

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/virtual-disk-array/vda/daemons/internal/daemontest"
	"github.com/virtual-disk-array/vda/spdk"
)

func TestHelpAndVersion(t *testing.T) {
	for _, args := range [][]string{{"--help"}, {"--version"}} {
		var out strings.Builder
		require.NoError(t, run(context.Background(), args, &out, &out))
		assert.NotEmpty(t, out.String())
	}
}

// TestServe: the data plane answers SPDK's methods on its socket and
// moves data (a malloc bdev created over the socket is read through the
// model); /metrics and /healthz answer; a second data plane on the same
// socket is refused; it stops cleanly and removes its socket.
func TestServe(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "spdk.sock")
	args := []string{"--socket", sock, "--listen", "127.0.0.1:0", "--log-format", "json"}
	addr, stop := daemontest.Serve(t, serve, args)

	c := spdk.New(spdk.Dial(sock, spdk.ConnConfig{}))
	ctx := context.Background()
	v, err := c.SpdkGetVersion(ctx)
	require.NoError(t, err)
	assert.NotEmpty(t, v.Version)
	_, err = c.BdevMallocCreate(ctx, spdk.BdevMallocCreateRequest{Name: "m", NumBlocks: 2048, BlockSize: 512})
	require.NoError(t, err)
	bdevs, err := c.BdevGetBdevs(ctx, spdk.BdevGetBdevsRequest{Name: "m"})
	require.NoError(t, err)
	assert.Equal(t, uint64(2048), bdevs[0].NumBlocks)

	assert.Contains(t, daemontest.Metrics(t, addr), "go_goroutines")
	code, _ := daemontest.Get(t, addr, "/healthz")
	assert.Equal(t, 200, code)

	err = run(context.Background(), []string{"--socket", sock, "--listen", "127.0.0.1:0"}, &strings.Builder{}, &strings.Builder{})
	assert.ErrorContains(t, err, "in use by another process")

	logs, err := stop(15 * time.Second)
	require.NoError(t, err)
	assert.Contains(t, logs, `"msg":"data plane serving"`)
	assert.Contains(t, logs, `"msg":"data plane stopped"`)
	assert.NoFileExists(t, sock)
}

// TestSIGTERM runs the real binary and stops it as a service manager does.
func TestSIGTERM(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "spdk.sock")
	daemontest.SIGTERM(t, []string{"--socket", sock, "--listen", "127.0.0.1:0", "--log-format", "json"},
		`"msg":"data plane serving"`, `"msg":"data plane stopped"`)
}

// TestPprof: /debug/pprof/ is served only with --pprof.
func TestPprof(t *testing.T) {
	for _, on := range []bool{false, true} {
		args := []string{"--socket", filepath.Join(t.TempDir(), "spdk.sock"), "--listen", "127.0.0.1:0", "--log-format", "json"}
		if on {
			args = append(args, "--pprof")
		}
		addr, stop := daemontest.Serve(t, serve, args)
		code, _ := daemontest.Get(t, addr, "/debug/pprof/")
		want := 404
		if on {
			want = 200
		}
		assert.Equal(t, want, code, "--pprof %v", on)
		code, _ = daemontest.Get(t, addr, "/healthz")
		assert.Equal(t, 200, code)
		_, err := stop(15 * time.Second)
		require.NoError(t, err)
	}
}
