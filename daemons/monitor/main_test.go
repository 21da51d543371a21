package main

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net/http"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestHelpAndVersion: --help and --version print and return nil, without
// opening the store.
func TestHelpAndVersion(t *testing.T) {
	for _, tc := range []struct {
		arg  string
		want []string
	}{
		{"--help", []string{"Usage: vda-monitor", "--leases", "--lease-ttl=10s", "--push-timeout=60s", "$VDA_MONITOR_PERIOD", "$VDA_DSN"}},
		{"--version", []string{version}},
	} {
		t.Run(tc.arg, func(t *testing.T) {
			dsn := "sqlite:" + filepath.Join(t.TempDir(), "vda.db")
			var stdout bytes.Buffer
			require.NoError(t, run(context.Background(), []string{tc.arg, "--dsn", dsn}, &stdout, io.Discard))
			for _, w := range tc.want {
				assert.Contains(t, stdout.String(), w)
			}
			assert.NoFileExists(t, strings.TrimPrefix(dsn, "sqlite:"))
		})
	}
}

// TestBadFlags: a bad value or combination is an error naming it, returned
// before the store is opened (no SQLite file appears).
func TestBadFlags(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		env  map[string]string
		want []string
	}{
		{name: "leases on sqlite", args: []string{"--leases"}, want: []string{"--leases", "one monitor per SQLite store"}},
		{name: "one miss", args: []string{"--misses", "1"}, want: []string{"--misses", "Misses is 1; at least 2"}},
		{name: "one miss from the environment", env: map[string]string{"VDA_MONITOR_MISSES": "1"}, want: []string{"--misses", "Misses is 1"}},
		{name: "retry bounds", args: []string{"--retry-min", "1m", "--retry-max", "1s"}, want: []string{"--retry-min (1m0s) is above --retry-max (1s)"}},
		{name: "negative", args: []string{"--period=-1s", "--concurrency=-1", "--deadline=-2s"}, want: []string{"--period is negative", "--concurrency is negative", "--deadline is negative"}},
		{
			name: "lease ttl within a period",
			args: []string{"--leases", "--dsn", "postgres://nobody@127.0.0.1:1/none", "--period", "5s", "--lease-ttl", "5s"},
			want: []string{"--lease-ttl (5s) must exceed --period plus --lease-skew (6s)"},
		},
		{name: "dsn", args: []string{"--dsn", "nonsense"}, want: []string{"--dsn", `DSN "nonsense"`}},
		{name: "unknown flag", args: []string{"--bogus"}, want: []string{"unknown flag --bogus"}},
		{name: "log format", args: []string{"--log-format", "xml"}, want: []string{"--log-format"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			path := filepath.Join(t.TempDir(), "vda.db")
			args := append([]string{"--dsn", "sqlite:" + path, "--listen", "127.0.0.1:0"}, tc.args...)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			err := run(ctx, args, io.Discard, io.Discard)
			require.Error(t, err)
			for _, w := range tc.want {
				assert.Contains(t, err.Error(), w)
			}
			assert.NoFileExists(t, path, "the store was opened")
		})
	}
}

var roundsRe = regexp.MustCompile(`(?m)^vda_monitor_rounds_total (\S+)$`)

// TestServeMetricsAndShutdown runs the daemon in-process on an empty SQLite
// store: it serves /metrics (its own and the Go runtime's) and /healthz,
// 404 elsewhere, and returns nil when its context ends.
func TestServeMetricsAndShutdown(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ready := make(chan string, 1)
	done := make(chan error, 1)
	var logs bytes.Buffer // read once serve has returned
	dsn := "sqlite:" + filepath.Join(t.TempDir(), "vda.db")
	go func() {
		done <- serve(ctx, []string{"--listen", "127.0.0.1:0", "--dsn", dsn, "--period", "50ms", "--name", "m1", "--log-format", "json"}, io.Discard, &logs, ready)
	}()
	var addr string
	select {
	case addr = <-ready:
	case err := <-done:
		t.Fatalf("serve ended early: %v", err)
	case <-time.After(15 * time.Second):
		t.Fatal("serve never became ready")
	}
	base := "http://" + addr

	get := func(path string) (int, string) {
		resp, err := http.Get(base + path)
		require.NoError(t, err)
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		return resp.StatusCode, string(body)
	}
	code, body := get("/metrics")
	assert.Equal(t, http.StatusOK, code)
	assert.Contains(t, body, "vda_monitor_rounds_total")
	assert.Contains(t, body, "go_goroutines")
	assert.Contains(t, body, "process_resident_memory_bytes")
	// The rounds run, one a period.
	assert.Eventually(t, func() bool {
		_, body := get("/metrics")
		m := roundsRe.FindStringSubmatch(body)
		if m == nil {
			return false
		}
		n, err := strconv.ParseFloat(m[1], 64)
		return err == nil && n >= 3
	}, 10*time.Second, 50*time.Millisecond)

	code, body = get("/healthz")
	assert.Equal(t, http.StatusOK, code)
	assert.Equal(t, "ok\n", body)
	code, _ = get("/vda.v1.PortalService/GetDa")
	assert.Equal(t, http.StatusNotFound, code)

	cancel()
	select {
	case err := <-done:
		assert.NoError(t, err)
	case <-time.After(5 * time.Second):
		t.Fatal("serve did not stop")
	}
	assert.Contains(t, logs.String(), `"msg":"monitor serving"`)
	assert.Contains(t, logs.String(), `"name":"m1"`)
	assert.Contains(t, logs.String(), `"msg":"monitor stopped"`)
}

// TestSIGTERM runs the real binary and stops it the way a service manager
// does.
func TestSIGTERM(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a binary")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "vda-monitor")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	require.NoError(t, err, string(out))
	cmd := exec.Command(bin, "--listen", "127.0.0.1:0", "--dsn", "sqlite:"+filepath.Join(dir, "vda.db"), "--log-format", "json")
	stderr, err := cmd.StderrPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	lines := bufio.NewScanner(stderr)
	serving := false
	for lines.Scan() {
		if strings.Contains(lines.Text(), `"msg":"monitor serving"`) {
			serving = true
			break
		}
	}
	require.True(t, serving, "the monitor never said it was serving")
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
		t.Fatal("the monitor did not exit after SIGTERM")
	}
	assert.Contains(t, rest.String(), `"msg":"monitor stopped"`)
}
