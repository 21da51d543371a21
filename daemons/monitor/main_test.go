package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/virtual-disk-array/vda/daemons/internal/daemontest"
	"github.com/virtual-disk-array/vda/pki"
	"github.com/virtual-disk-array/vda/pki/pkitest"
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
		{name: "tls and insecure", args: []string{"--tls-cert", "c.pem"}, want: []string{"--insecure and --tls-* contradict"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			path := filepath.Join(t.TempDir(), "vda.db")
			args := append([]string{"--dsn", "sqlite:" + path, "--listen", "127.0.0.1:0", "--insecure"}, tc.args...)
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
	dsn := "sqlite:" + filepath.Join(t.TempDir(), "vda.db")
	addr, stop := daemontest.Serve(t, serve, []string{"--listen", "127.0.0.1:0", "--dsn", dsn, "--period", "50ms", "--name", "m1", "--log-format", "json", "--insecure"})

	body := daemontest.Metrics(t, addr)
	assert.Contains(t, body, "vda_monitor_rounds_total")
	assert.Contains(t, body, "go_goroutines")
	assert.Contains(t, body, "process_resident_memory_bytes")
	// The rounds run, one a period.
	assert.Eventually(t, func() bool {
		_, body := daemontest.Get(t, addr, "/metrics")
		m := roundsRe.FindStringSubmatch(body)
		if m == nil {
			return false
		}
		n, err := strconv.ParseFloat(m[1], 64)
		return err == nil && n >= 3
	}, 10*time.Second, 50*time.Millisecond)

	code, body := daemontest.Get(t, addr, "/healthz")
	assert.Equal(t, http.StatusOK, code)
	assert.Equal(t, "ok\n", body)
	code, _ = daemontest.Get(t, addr, "/vda.v1.PortalService/GetDa")
	assert.Equal(t, http.StatusNotFound, code)

	logs, err := stop(5 * time.Second)
	assert.NoError(t, err)
	assert.Contains(t, logs, `running INSECURE`)
	assert.Contains(t, logs, `"msg":"monitor serving"`)
	assert.Contains(t, logs, `"name":"m1"`)
	assert.Contains(t, logs, `"msg":"monitor stopped"`)
}

// TestSIGTERM runs the real binary and stops it the way a service manager
// does.
func TestSIGTERM(t *testing.T) {
	dsn := "sqlite:" + filepath.Join(t.TempDir(), "vda.db")
	daemontest.SIGTERM(t, []string{"--listen", "127.0.0.1:0", "--dsn", dsn, "--log-format", "json", "--insecure"},
		`"msg":"monitor serving"`, `"msg":"monitor stopped"`)
}

// TestTLS: without TLS files or --insecure the monitor does not start;
// with them it serves its metrics over TLS only.
func TestTLS(t *testing.T) {
	dsn := "sqlite:" + filepath.Join(t.TempDir(), "vda.db")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{nil, "TLS is required"},
		{[]string{"--tls-cert", "c.pem", "--tls-key", "k.pem"}, "go together"},
		{[]string{"--tls-cert", "c.pem", "--tls-key", "k.pem", "--tls-ca", "ca.pem"}, "c.pem"},
	} {
		err := run(context.Background(), append([]string{"--listen", "127.0.0.1:0", "--dsn", dsn}, tc.args...), io.Discard, io.Discard)
		assert.ErrorContains(t, err, tc.want, tc.args)
	}

	p := pkitest.New(t)
	args := append([]string{"--listen", "127.0.0.1:0", "--dsn", dsn, "--log-format", "json"}, p.Args(t, "monitor", pki.ControlPlane)...)
	addr, stop := daemontest.Serve(t, serve, args)
	code, body := pkitest.GetWith(t, p.Client(t, "scraper", "-"), "https://"+addr+"/metrics")
	assert.Equal(t, http.StatusOK, code)
	assert.Contains(t, body, "vda_monitor_rounds_total")
	assert.Contains(t, body, "vda_tls_certificate_expiry_timestamp_seconds ")
	resp, err := http.Get("http://" + addr + "/metrics")
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusBadRequest, resp.StatusCode, "no plaintext beside TLS")
	logs, err := stop(5 * time.Second)
	assert.NoError(t, err)
	assert.Contains(t, logs, `"tls":true`)
	assert.NotContains(t, logs, "INSECURE")
}
