package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/stretchr/testify/require"
	"github.com/virtual-disk-array/vda/auth"
	"github.com/virtual-disk-array/vda/internal/guest"
	"github.com/virtual-disk-array/vda/internal/proctest"
	"github.com/virtual-disk-array/vda/nvmetcp/host"
	"github.com/virtual-disk-array/vda/pki"
	vdav1 "github.com/virtual-disk-array/vda/proto/vda/v1"
	"github.com/virtual-disk-array/vda/proto/vda/v1/vdav1connect"
)

// binDir holds vda-cluster and every binary it runs, built once by
// TestMain (or VDA_TEST_E2E_BIN_DIR, binaries built beforehand).
var binDir string

func TestMain(m *testing.M) {
	flag.Parse()
	code := func() int {
		if testing.Short() {
			return m.Run() // every test here skips under -short
		}
		if dir := os.Getenv("VDA_TEST_E2E_BIN_DIR"); dir != "" {
			binDir = dir
			return m.Run()
		}
		dir, err := os.MkdirTemp("", "vda-e2e-bin-")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer os.RemoveAll(dir)
		if err := proctest.Build(dir, "vda-cluster", "vda-portal", "vda-monitor", "vda-dnagent", "vda-cnagent",
			"vda-dataplane", "vdactl"); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		binDir = dir
		return m.Run()
	}()
	os.Exit(code)
}

func needBinaries(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("runs the whole cluster")
	}
}

// kernel finds the guest kernel, or skips unless VDA_TEST_GUEST=1.
func kernel(t *testing.T) *guest.Kernel {
	t.Helper()
	if os.Getenv("VDA_TEST_GUEST") != "1" {
		t.Skip("VDA_TEST_GUEST=1 runs the tests with the Linux initiator in a QEMU guest")
	}
	k, err := guest.Find("")
	require.NoError(t, err)
	return k
}

// cluster is one vda-cluster process in the foreground, and what it made.
type cluster struct {
	t      *testing.T
	args   []string
	state  string
	portal string
	api    vdav1connect.PortalServiceClient
	run    *clusterRun
	// extra are processes the test started by hand (from <name>.args),
	// stopped at cleanup.
	extra []*exec.Cmd
	// restarted are the pids of those, by name: they write no pid file.
	restarted map[string]int
}

type clusterRun struct {
	cmd            *exec.Cmd
	stdout, stderr *proctest.Buffer
	exited         chan struct{}
	err            error
}

// monitorPeriod is the heartbeat period of the tests' monitor: 200ms
// (a node fails after 3 missed heartbeats), or VDA_TEST_E2E_MONITOR_PERIOD
// (vda-cluster's default is 1s).
func freeRange(t *testing.T, n int) int {
	t.Helper()
	base, err := proctest.FreeRange(n)
	if err != nil {
		t.Fatal(err)
	}
	return base
}

func monitorPeriod() string {
	if p := os.Getenv("VDA_TEST_E2E_MONITOR_PERIOD"); p != "" {
		return p
	}
	return "200ms"
}

// newCluster starts vda-cluster (2 dns, 2 cns, da0 with two controllers
// and the exporter host0) on a fresh state directory, with a fast
// monitor, and waits until it printed the cluster with da0 converged.
func newCluster(t *testing.T, extra ...string) *cluster {
	t.Helper()
	state := filepath.Join(t.TempDir(), "state")
	c := &cluster{t: t, state: state}
	t.Cleanup(func() {
		c.stop()
		// VDA_TEST_E2E_LOGS=<dir> keeps the children's logs there.
		if dir := os.Getenv("VDA_TEST_E2E_LOGS"); dir != "" {
			dst := filepath.Join(dir, strings.ReplaceAll(t.Name(), "/", "_"))
			_ = os.MkdirAll(dst, 0o755)
			_ = exec.Command("cp", "-r", filepath.Join(state, "logs"), dst).Run()
		}
		for _, cmd := range c.extra {
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			_ = cmd.Wait()
		}
	})
	// Ports found free may be taken by the time the cluster binds them
	// (other tests, other processes): then again with others.
	for attempt := 1; ; attempt++ {
		base, nvme := freeRange(t, 9), freeRange(t, 12)
		c.portal = net.JoinHostPort("127.0.0.1", strconv.Itoa(freeRange(t, 1)))
		c.args = append([]string{
			"--state-dir", state, "--portal-listen", c.portal,
			"--base-port", strconv.Itoa(base), "--nvme-base-port", strconv.Itoa(nvme),
			"--monitor-period", monitorPeriod(), "--ready-timeout", "40s", "--stop-timeout", "10s",
			"--aio-size", "512MiB", "--da-size", "128MiB",
		}, extra...)
		err := c.tryStart()
		if err == nil {
			return c
		}
		if attempt == 3 || !strings.Contains(err.Error(), "ports:") {
			t.Fatal(err)
		}
		t.Logf("again with other ports: %v", err)
		c.run = nil
	}
}

// start runs vda-cluster on c's state directory and waits until it has
// printed the cluster, da0 converged.
func (c *cluster) start() {
	c.t.Helper()
	require.NoError(c.t, c.tryStart())
}

func (c *cluster) tryStart() error {
	c.restarted = nil // vda-cluster starts every child and writes its pid file
	r := &clusterRun{stdout: &proctest.Buffer{}, stderr: &proctest.Buffer{}, exited: make(chan struct{})}
	r.cmd = exec.Command(filepath.Join(binDir, "vda-cluster"), c.args...)
	r.cmd.Stdout, r.cmd.Stderr = r.stdout, r.stderr
	r.cmd.Env = append(os.Environ(), "VDA_CLUSTER_BIN_DIR="+binDir)
	// If the test binary dies (a timeout, a closed pipe), the cluster
	// stops as at Ctrl-C.
	r.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGINT}
	if err := r.cmd.Start(); err != nil {
		return err
	}
	go func() {
		r.err = r.cmd.Wait()
		close(r.exited)
	}()
	c.run = r
	deadline := time.Now().Add(90 * time.Second)
	for !strings.Contains(r.stdout.String(), "Ctrl-C stops the cluster") {
		select {
		case <-r.exited:
			return fmt.Errorf("vda-cluster exited early: %v\nstdout:\n%s\nstderr:\n%s", r.err, r.stdout, proctest.Tail(r.stderr.String(), 60))
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("vda-cluster never printed the cluster\nstderr:\n%s", proctest.Tail(r.stderr.String(), 60))
		}
	}
	if out := r.stdout.String(); strings.Contains(out, "NOT READY") {
		return fmt.Errorf("da0 did not converge:\n%s", out)
	}
	api, err := c.portalClient()
	if err != nil {
		return err
	}
	c.api = api
	return nil
}

// portalClient is a client of the cluster's portal as vdactl reaches it:
// over TLS with the cluster's CA (unless it runs --insecure), with the
// admin token from the state directory.
func (c *cluster) portalClient() (vdav1connect.PortalServiceClient, error) {
	var cfg struct {
		Portal string `json:"portal"`
		Token  string `json:"token"`
		CAFile string `json:"ca_file"`
	}
	b, err := os.ReadFile(filepath.Join(c.state, "vdactl.json"))
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(b, &cfg); err != nil {
		return nil, err
	}
	tr := &http.Transport{ForceAttemptHTTP2: true}
	if cfg.CAFile != "" {
		if tr.TLSClientConfig, err = pki.ClientOnly(cfg.CAFile); err != nil {
			return nil, err
		}
	}
	return vdav1connect.NewPortalServiceClient(&http.Client{Timeout: 30 * time.Second, Transport: tr}, cfg.Portal,
		auth.WithBearer(cfg.Token)), nil
}

// stop stops vda-cluster with SIGINT (Ctrl-C), as a person does, and
// waits for it to exit.
func (c *cluster) stop() error {
	r := c.run
	if r == nil {
		return nil
	}
	c.run = nil
	select {
	case <-r.exited:
		return r.err
	default:
	}
	_ = r.cmd.Process.Signal(syscall.SIGINT)
	select {
	case <-r.exited:
	case <-time.After(60 * time.Second):
		_ = r.cmd.Process.Kill()
		<-r.exited
		return errors.New("vda-cluster did not stop within 60s of SIGINT")
	}
	if c.t.Failed() {
		c.t.Logf("vda-cluster stderr (last 150 lines):\n%s", proctest.Tail(r.stderr.String(), 150))
	}
	return r.err
}

// as makes c fail t (a subtest) until the returned func restores the
// test it failed before.
func (c *cluster) as(t *testing.T) (restore func()) {
	prev := c.t
	c.t = t
	return func() { c.t = prev }
}

// pid reads the pid file of a child of the cluster.
func (c *cluster) pid(name string) int {
	c.t.Helper()
	if pid, ok := c.restarted[name]; ok {
		return pid
	}
	b, err := os.ReadFile(filepath.Join(c.state, "run", name+".pid"))
	require.NoError(c.t, err, "pid file of %s", name)
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	require.NoError(c.t, err)
	return pid
}

// kill9 kills a child of the cluster (its process group) with SIGKILL
// and waits until it is gone.
func (c *cluster) kill9(name string) {
	c.t.Helper()
	pid := c.pid(name)
	require.NoError(c.t, syscall.Kill(-pid, syscall.SIGKILL), "kill -9 %s", name)
	for i := 0; alive(pid) && i < 100; i++ {
		time.Sleep(20 * time.Millisecond)
	}
}

// alive says whether pid runs (a zombie, not yet reaped, counts as gone).
func alive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	f := strings.Fields(string(b))
	return len(f) > 2 && f[2] != "Z"
}

// restart starts a child of the cluster again by hand, from the command
// line vda-cluster recorded in <state>/run/<name>.args, its output
// appended to its log.
func (c *cluster) restart(name string) *exec.Cmd {
	c.t.Helper()
	b, err := os.ReadFile(filepath.Join(c.state, "run", name+".args"))
	require.NoError(c.t, err)
	argv := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	log, err := os.OpenFile(filepath.Join(c.state, "logs", name+".log"), os.O_APPEND|os.O_WRONLY, 0o644)
	require.NoError(c.t, err)
	defer log.Close()
	fmt.Fprintf(log, "---- %s restarted by the test: %q\n", name, argv)
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdout, cmd.Stderr = log, log
	cmd.Env = append(os.Environ(), "VDA_LOG_FORMAT=text")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	require.NoError(c.t, cmd.Start())
	c.extra = append(c.extra, cmd)
	if c.restarted == nil {
		c.restarted = map[string]int{}
	}
	c.restarted[name] = cmd.Process.Pid
	return cmd
}

func (c *cluster) da(ctx context.Context) *vdav1.Da {
	c.t.Helper()
	resp, err := c.api.GetDa(ctx, connect.NewRequest(&vdav1.GetDaRequest{Name: "da0"}))
	require.NoError(c.t, err)
	return resp.Msg.GetDa()
}

// paths are the exporter's paths to da0, the primary's first.
type path struct {
	cn, port, role string
}

type access struct {
	nqn, hostNQN string
	paths        []path
}

func (c *cluster) access(ctx context.Context) access {
	c.t.Helper()
	resp, err := c.api.GetExp(ctx, connect.NewRequest(&vdav1.GetExpRequest{DaName: "da0", Name: "host0"}))
	require.NoError(c.t, err)
	e := resp.Msg.GetExp()
	a := access{nqn: e.GetTargetNqn(), hostNQN: e.GetHostNqn()}
	for _, p := range e.GetPaths() {
		pp := path{cn: p.GetCnName(), port: p.GetListener().GetTrsvcid(), role: role(p.GetRole())}
		if pp.role == "primary" {
			a.paths = append([]path{pp}, a.paths...)
		} else {
			a.paths = append(a.paths, pp)
		}
	}
	require.Len(c.t, a.paths, 2, "two paths: %+v", e.GetPaths())
	require.Equal(c.t, "primary", a.paths[0].role, "%+v", a.paths)
	return a
}

func role(r vdav1.CntlrRole) string {
	return strings.ToLower(strings.TrimPrefix(r.String(), "CNTLR_ROLE_"))
}

// primaryCn is the cn of da0's primary.
func (c *cluster) primaryCn(ctx context.Context) string {
	for _, ct := range c.da(ctx).GetCntlrs() {
		if ct.GetRole() == vdav1.CntlrRole_CNTLR_ROLE_PRIMARY {
			return ct.GetCnName()
		}
	}
	return ""
}

// notReady lists what of da0 is not OK, and the vds on the dns named
// that have not reported since since.
func notReady(da *vdav1.Da, since time.Time, dns ...string) []string {
	var out []string
	st := func(what string, s *vdav1.Status, fresh bool) {
		if s.GetHealth() != vdav1.Health_HEALTH_OK {
			out = append(out, fmt.Sprintf("%s: %s %s", what, s.GetHealth(), s.GetError()))
		} else if fresh && s.GetReportedAtMs() < since.UnixMilli() {
			out = append(out, what+": no report since "+since.Format(time.TimeOnly))
		}
	}
	for _, vd := range da.GetVds() {
		st(fmt.Sprintf("vd %d on %s", vd.GetIndex(), vd.GetDnName()), vd.GetStatus(), slices.Contains(dns, vd.GetDnName()))
	}
	for _, ct := range da.GetCntlrs() {
		st(fmt.Sprintf("cntlr %d (%s) on %s", ct.GetIndex(), role(ct.GetRole()), ct.GetCnName()), ct.GetStatus(), false)
	}
	return out
}

// waitReady waits until every vd and controller of da0 is OK, and the
// vds on the dns named reported after since.
func (c *cluster) waitReady(ctx context.Context, since time.Time, within time.Duration, dns ...string) {
	c.t.Helper()
	deadline := time.Now().Add(within)
	var last []string
	for time.Now().Before(deadline) {
		if last = notReady(c.da(ctx), since, dns...); len(last) == 0 {
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
	c.t.Fatalf("da0 not ready within %s: %s", within, strings.Join(last, "; "))
}

// readArray reads n bytes of da0 at off from the host, through the
// primary's path, with VDA's own NVMe/TCP initiator.
func (c *cluster) readArray(ctx context.Context, off int64, n int) []byte {
	c.t.Helper()
	a := c.access(ctx)
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	h, err := host.Dial(ctx, net.JoinHostPort("127.0.0.1", a.paths[0].port), host.Config{SubNQN: a.nqn, HostNQN: a.hostNQN})
	require.NoError(c.t, err, "connect to %s on %s", a.nqn, a.paths[0].port)
	defer h.Close()
	got := make([]byte, n)
	for done := 0; done < n; {
		k := min(n-done, 1<<20)
		require.NoError(c.t, h.ReadAt(ctx, got[done:done+k], uint64(off)+uint64(done)))
		done += k
	}
	return got
}

// vdactl runs vdactl against the cluster's portal.
func (c *cluster) vdactl(args ...string) (string, error) {
	// vdactl.json, which vda-cluster writes, has the portal's URL, the
	// CA and the admin token.
	cmd := exec.Command(filepath.Join(binDir, "vdactl"), args...)
	cmd.Env = append(os.Environ(), "NO_COLOR=1", "VDA_CONFIG="+filepath.Join(c.state, "vdactl.json"))
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// pattern is what the host writes: each 4 KiB block starts with its LBA
// and the seed, as text, and the rest is random bytes from the seed and
// the LBA, so that a block in the wrong place, a stale block and a torn
// block all fail the comparison.
func pattern(seed uint64, blocks int) []byte {
	p := make([]byte, blocks*blockSize)
	for i := range blocks {
		b := p[i*blockSize : (i+1)*blockSize]
		r := rand.New(rand.NewPCG(seed, uint64(i)))
		for j := range b {
			b[j] = byte(r.Uint32())
		}
		copy(b, fmt.Sprintf("vda-e2e lba=%d seed=%d\n", i, seed))
	}
	return p
}

const blockSize = 4096

// firstBad describes the first 4 KiB block where got differs from want.
func firstBad(want, got []byte) string {
	if len(want) != len(got) {
		return fmt.Sprintf("length %d, want %d", len(got), len(want))
	}
	for i := 0; i < len(want); i += blockSize {
		if !bytes.Equal(want[i:i+blockSize], got[i:i+blockSize]) {
			head := got[i : i+40]
			return fmt.Sprintf("block %d differs: starts %q", i/blockSize, regexp.MustCompile(`[^ -~]`).ReplaceAll(head, []byte(".")))
		}
	}
	return ""
}
