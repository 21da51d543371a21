package main

import (
	"context"
	"net"
	"os"
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
	"github.com/virtual-disk-array/vda/daemons/internal/daemontest"
	"github.com/virtual-disk-array/vda/internal/proctest"
	"github.com/virtual-disk-array/vda/nvmetcp/host"
	"github.com/virtual-disk-array/vda/store/storetest"
)

// allowUnreadyEnv, set to 1, lets TestCluster pass while da0 does not
// converge: until the data plane's bdev_nvme_attach_controller reaches
// other processes over real NVMe/TCP, a cn cannot attach the vds of a dn
// in another process. Without it the test asserts convergence.
const allowUnreadyEnv = "VDA_TEST_CLUSTER_ALLOW_UNREADY"

// children are the processes of a 2-dn, 2-cn cluster, by pid file name.
var children = []string{
	"dn0-dataplane", "dn1-dataplane", "cn0-dataplane", "cn1-dataplane",
	"dn0-agent", "dn1-agent", "cn0-agent", "cn1-agent", "portal", "monitor",
}

// binDirEnv names a directory of binaries built beforehand (make build's
// .tmp/bin) for TestCluster to use instead of building them.
const binDirEnv = "VDA_TEST_CLUSTER_BIN_DIR"

// buildAll builds vda-cluster and every binary it runs into one directory.
func buildAll(t *testing.T) string {
	t.Helper()
	if dir := os.Getenv(binDirEnv); dir != "" {
		return dir
	}
	bin := t.TempDir()
	if err := proctest.Build(bin, "vda-cluster", "vda-portal", "vda-monitor", "vda-dnagent", "vda-cnagent",
		"vda-dataplane", "vdactl"); err != nil {
		t.Fatal(err)
	}
	return bin
}

// freeRange returns the first of n consecutive free loopback ports.
func freeRange(t *testing.T, n int) int {
	t.Helper()
	base, err := proctest.FreeRange(n)
	if err != nil {
		t.Fatal(err)
	}
	return base
}

type clusterRun struct {
	cmd            *exec.Cmd
	stdout, stderr *proctest.Buffer
	exited         chan struct{} // closed once the process exited
	err            error         // its exit, set before exited closes
}

func startCluster(t *testing.T, bin string, args ...string) *clusterRun {
	t.Helper()
	r := &clusterRun{stdout: &proctest.Buffer{}, stderr: &proctest.Buffer{}, exited: make(chan struct{})}
	r.cmd = exec.Command(filepath.Join(bin, "vda-cluster"), args...)
	r.cmd.Stdout, r.cmd.Stderr = r.stdout, r.stderr
	require.NoError(t, r.cmd.Start())
	go func() {
		r.err = r.cmd.Wait()
		close(r.exited)
	}()
	t.Cleanup(func() {
		select {
		case <-r.exited:
		default:
			_ = r.cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-r.exited:
			case <-time.After(30 * time.Second):
				_ = r.cmd.Process.Kill()
			}
		}
		if t.Failed() {
			t.Logf("vda-cluster %v\nstdout:\n%s\nstderr (last 100 lines):\n%s", args, r.stdout, proctest.Tail(r.stderr.String(), 100))
		}
	})
	return r
}

func (r *clusterRun) wait(t *testing.T, within time.Duration) error {
	t.Helper()
	select {
	case <-r.exited:
		return r.err
	case <-time.After(within):
		t.Fatalf("vda-cluster did not exit within %s", within)
		return nil
	}
}

func alive(pid int) bool { return syscall.Kill(pid, 0) == nil }

// TestCluster runs vda-cluster as a person would, on every store this
// machine offers: first in the foreground until SIGINT (Ctrl-C), checking
// what it printed, its pid files and that every child is gone afterwards;
// then again with --once on the same state directory, which must create
// nothing and report the same array.
func TestCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binaries")
	}
	bin := buildAll(t)
	allowUnready := os.Getenv(allowUnreadyEnv) == "1"
	for _, b := range storetest.Backends() {
		t.Run(string(b.Dialect), func(t *testing.T) {
			state := filepath.Join(t.TempDir(), "state")
			base, nvme := freeRange(t, 9), freeRange(t, 12)
			portal := "127.0.0.1:" + daemontest.FreePort(t)
			args := []string{
				"--state-dir", state, "--dsn", storetest.NewDSN(t, b), "--portal-listen", portal,
				"--base-port", strconv.Itoa(base), "--nvme-base-port", strconv.Itoa(nvme),
				"--monitor-period", "200ms", "--stop-timeout", "10s",
			}
			if allowUnready {
				args = append(args, "--ready-timeout", "3s", "--allow-unready")
			} else {
				args = append(args, "--ready-timeout", "20s")
			}
			connect := regexp.MustCompile(`nvme connect -t tcp -a 127\.0\.0\.1 -s (\d+) -n (nqn\.2016-06\.io\.vda:da-[0-9a-f]+) -q (nqn\.2014-08\.org\.nvmexpress:uuid:[0-9a-f-]+)\n`)
			cnPorts := []string{strconv.Itoa(nvme + 10), strconv.Itoa(nvme + 11)}

			// First run, in the foreground.
			r := startCluster(t, bin, args...)
			waitPrinted(t, r)
			out := r.stdout.String()
			assert.Contains(t, out, "Disk array da0: 256.0 MiB raid0 over 2 vds, 2 controllers")
			lines := connect.FindAllStringSubmatch(out, -1)
			require.Len(t, lines, 2, "one nvme connect line per controller")
			assert.ElementsMatch(t, cnPorts, []string{lines[0][1], lines[1][1]})
			hostNQN, err := os.ReadFile(filepath.Join(state, "host-nqn"))
			require.NoError(t, err)
			assert.Equal(t, strings.TrimSpace(string(hostNQN)), lines[0][3])
			assert.Contains(t, out, "export VDA_CONFIG="+filepath.Join(state, "vdactl.json"))
			assert.Contains(t, out, "The control plane runs over TLS with the CA in "+filepath.Join(state, "pki"))
			// vdactl reaches the portal with what vda-cluster wrote: TLS, the
			// CA and the admin token.
			vdactl := exec.Command(filepath.Join(bin, "vdactl"), "whoami")
			vdactl.Env = append(os.Environ(), "VDA_CONFIG="+filepath.Join(state, "vdactl.json"))
			who, err := vdactl.CombinedOutput()
			require.NoError(t, err, "%s", who)
			assert.Contains(t, string(who), "admin")
			for name, perm := range map[string]os.FileMode{"vdactl.json": 0o600, "admin.token": 0o600, "pki/ca.key": 0o600, "pki/agent.key": 0o600} {
				fi, err := os.Stat(filepath.Join(state, name))
				require.NoError(t, err)
				assert.Equal(t, perm, fi.Mode().Perm(), name)
			}
			if !allowUnready {
				assert.NotContains(t, out, "NOT READY", "da0 must converge (set %s=1 to allow otherwise)", allowUnreadyEnv)
			}
			// A host writes through the primary's path (the first
			// controller printed), when the array is up.
			var written []byte
			if !strings.Contains(out, "NOT READY") {
				written = make([]byte, 1<<20)
				for i := range written {
					written[i] = byte(i*7 + i>>12)
				}
				arrayIO(t, lines[0][1], lines[0][2], lines[0][3], written)
			}
			pids := map[string]int{}
			for _, name := range children {
				b, err := os.ReadFile(filepath.Join(state, "run", name+".pid"))
				require.NoError(t, err, "pid file of %s", name)
				pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
				require.NoError(t, err)
				assert.True(t, alive(pid), "%s (pid %d) runs", name, pid)
				pids[name] = pid
				argv, err := os.ReadFile(filepath.Join(state, "run", name+".args"))
				require.NoError(t, err, "args file of %s", name)
				assert.Regexp(t, `^`+regexp.QuoteMeta(bin)+`/vda(ctl|-[a-z]+)\n--`, string(argv), "the command line of %s", name)
				log, err := os.ReadFile(filepath.Join(state, "logs", name+".log"))
				require.NoError(t, err)
				assert.Contains(t, string(log), "serving", "the log of %s", name)
			}
			assert.Contains(t, r.stderr.String(), "dn0-agent      | ")

			// Ctrl-C.
			require.NoError(t, r.cmd.Process.Signal(syscall.SIGINT))
			require.NoError(t, r.wait(t, 60*time.Second), "exit status after SIGINT")
			for name, pid := range pids {
				assert.False(t, alive(pid), "%s (pid %d) is gone", name, pid)
				assert.NoFileExists(t, filepath.Join(state, "run", name+".pid"))
			}
			stopped := r.stderr.String()
			assert.Less(t, strings.Index(stopped, "stopped process=monitor"), strings.Index(stopped, "stopped process=portal"), "the monitor stops first")
			assert.Less(t, strings.Index(stopped, "stopped process=dn0-agent"), strings.Index(stopped, "stopped process=dn0-dataplane"), "agents stop before data planes")
			assert.NotContains(t, stopped, "DIED")

			// Second run, in the foreground on the same state directory:
			// the same array, and the data written in the first run.
			r = startCluster(t, bin, args...)
			waitPrinted(t, r)
			out = r.stdout.String()
			again := connect.FindAllStringSubmatch(out, -1)
			require.Len(t, again, 2)
			assert.Equal(t, lines[0][2], again[0][2], "the same array")
			assert.Equal(t, lines[0][3], again[0][3], "the same host")
			assert.Contains(t, r.stderr.String(), "found da0 from an earlier run")
			if written != nil {
				assert.Equal(t, written, arrayIO(t, again[0][1], again[0][2], again[0][3], nil), "the data written before the restart")
			}
			require.NoError(t, r.cmd.Process.Signal(syscall.SIGINT))
			require.NoError(t, r.wait(t, 60*time.Second), "exit status after SIGINT")

			// Third run, --once, on the same state directory.
			r = startCluster(t, bin, append(args, "--once")...)
			require.NoError(t, r.wait(t, 60*time.Second), "--once")
			out = r.stdout.String()
			assert.Contains(t, out, "Arrays in the store: da0\n", "da0 exists once")
			again = connect.FindAllStringSubmatch(out, -1)
			require.Len(t, again, 2)
			assert.Equal(t, lines[0][2], again[0][2], "the same array")
			logs := r.stderr.String()
			assert.Contains(t, logs, "found da0 from an earlier run")
			assert.NotRegexp(t, `cluster +\| .* created `, logs, "nothing is created twice")
			if !allowUnready {
				assert.NotContains(t, out, "NOT READY")
			}
			files, _ := filepath.Glob(filepath.Join(state, "run", "*.pid"))
			assert.Empty(t, files, "no pid file is left")
		})
	}
}

// waitPrinted waits until a foreground vda-cluster has printed the
// cluster.
func waitPrinted(t *testing.T, r *clusterRun) {
	t.Helper()
	deadline := time.Now().Add(45 * time.Second)
	for !strings.Contains(r.stdout.String(), "Ctrl-C stops the cluster") {
		select {
		case <-r.exited:
			t.Fatalf("vda-cluster exited early: %v", r.err)
		case <-time.After(100 * time.Millisecond):
		}
		require.True(t, time.Now().Before(deadline), "vda-cluster never printed the cluster")
	}
}

// arrayIO connects to the array nqn on 127.0.0.1:port as hostNQN, as a
// host does with the printed nvme connect line, and writes p at 1 MiB
// when p is not nil, else reads 1 MiB there.
func arrayIO(t *testing.T, port, nqn, hostNQN string, p []byte) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := host.Dial(ctx, net.JoinHostPort("127.0.0.1", port), host.Config{SubNQN: nqn, HostNQN: hostNQN})
	require.NoError(t, err, "connect to %s on port %s as %s", nqn, port, hostNQN)
	defer c.Close()
	if p != nil {
		require.NoError(t, c.WriteAt(ctx, p, 1<<20))
		require.NoError(t, c.Flush(ctx))
		return p
	}
	got := make([]byte, 1<<20)
	require.NoError(t, c.ReadAt(ctx, got, 1<<20))
	return got
}

// TestPlanPorts checks that no number of nodes makes two ports collide.
func TestPlanPorts(t *testing.T) {
	for _, n := range [][2]int{{1, 1}, {2, 2}, {10, 3}, {11, 11}, {40, 60}} {
		c := &cli{StateDir: t.TempDir(), DNs: n[0], CNs: n[1], PortalListen: "127.0.0.1:9520", BasePort: 9700, NvmeBasePort: 4420}
		l, err := plan(c)
		require.NoError(t, err)
		seen := map[string]string{}
		for _, p := range l.ports() {
			other, dup := seen[p[0]]
			assert.False(t, dup, "%v: %s and %s share %s", n, other, p[1], p[0])
			seen[p[0]] = p[1]
		}
		if n == [2]int{2, 2} {
			assert.Equal(t, 4430, l.Cns[0].NvmePort)
			assert.Equal(t, 9701, l.Dns[0].AgentPort)
		}
	}
}

func TestSize(t *testing.T) {
	for in, want := range map[string]size{"64MiB": 64 << 20, "1GiB": 1 << 30, "1G": 1 << 30, "4096": 4096, "2 tib": 2 << 40} {
		var s size
		require.NoError(t, s.UnmarshalText([]byte(in)), in)
		assert.Equal(t, want, s, in)
	}
	for _, in := range []string{"", "MiB", "1XB", "-1", "99999999999999TiB"} {
		var s size
		assert.Error(t, s.UnmarshalText([]byte(in)), in)
	}
}

func TestRedact(t *testing.T) {
	assert.Equal(t, "postgres://u:***@h/db", redact("postgres://u:pw@h/db"))
	assert.Equal(t, "sqlite:/x/vda.db", redact("sqlite:/x/vda.db"))
	assert.Equal(t, "mysql://root@tcp(h:3306)/db", redact("mysql://root@tcp(h:3306)/db"))
}
