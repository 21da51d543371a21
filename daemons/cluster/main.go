// Command vda-cluster runs a whole VDA cluster on one machine, as separate
// real processes on loopback: a portal and a monitor on one store (SQLite
// under the state directory by default), and --dns disk nodes and --cns
// controller nodes, each an agent beside its own embedded data plane
// process (vda-dataplane) with its own NVMe/TCP port.
//
// On the first run it registers the nodes and their pds (an aio pd on a
// sparse file per dn, whose data survives restarts, and a malloc pd on
// dn0), creates the disk array da0 with two vds and two controllers and
// the exporter host0, waits until the array has converged and prints what
// it made and the nvme connect line of each controller. It then stays in
// the foreground, the children's logs prefixed on the terminal and kept in
// <state>/logs, until Ctrl-C, which stops the children in order (monitor,
// portal, agents, data planes). Run again, it finds the state directory and
// comes back with the same arrays and data, creating nothing. vdactl drives
// the same cluster from another terminal.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/alecthomas/kong"
	"github.com/virtual-disk-array/vda/daemons/internal/daemon"
	"github.com/virtual-disk-array/vda/store"
)

var version = "dev"

type cli struct {
	daemon.LogFlags
	StateDir      string           `name:"state-dir" help:"Directory of the cluster's state: the SQLite store, the nodes' aio files and sockets, logs/ and run/ (each child's pid file and its command line, one argument a line, in <name>.args). A rerun on it comes back with the same cluster." default:".vda-cluster" env:"VDA_CLUSTER_STATE_DIR"`
	DNs           int              `name:"dns" help:"Number of disk nodes (dn0, dn1, ...), each with an aio pd; dn0 also gets a malloc pd." default:"2" env:"VDA_CLUSTER_DNS"`
	CNs           int              `name:"cns" help:"Number of controller nodes (cn0, cn1, ...)." default:"2" env:"VDA_CLUSTER_CNS"`
	DSN           string           `name:"dsn" help:"Store of the portal and the monitor: sqlite:<path>, postgres://... or mysql://user:pass@tcp(host:port)/db (default: sqlite:<state-dir>/vda.db)." env:"VDA_CLUSTER_DSN"`
	PortalListen  string           `name:"portal-listen" help:"Address of the portal's API (VDA_PORTAL for vdactl)." default:"127.0.0.1:9520" env:"VDA_CLUSTER_PORTAL_LISTEN"`
	BasePort      int              `name:"base-port" help:"First of the ports of the monitor, agents and data planes, B: the monitor's /metrics on B, dn i's agent on B+1+2i and its data plane's /metrics on B+2+2i, then the cns likewise after the dns." default:"9700" env:"VDA_CLUSTER_BASE_PORT"`
	NvmeBasePort  int              `name:"nvme-base-port" help:"NVMe/TCP ports: dn i listens on N+i, cn j on N+max(10,dns)+j." default:"4420" env:"VDA_CLUSTER_NVME_BASE_PORT"`
	HostNQN       string           `name:"host-nqn" help:"Host NQN of the exporter host0 (default: a uuid NQN made on the first run and kept in <state-dir>/host-nqn)." env:"VDA_CLUSTER_HOST_NQN"`
	BinDir        string           `name:"bin-dir" help:"Directory of vda-portal, vda-monitor, vda-dnagent, vda-cnagent, vda-dataplane and vdactl (default: this executable's)." env:"VDA_CLUSTER_BIN_DIR"`
	MonitorPeriod time.Duration    `name:"monitor-period" help:"Heartbeat period of the monitor." default:"1s" env:"VDA_CLUSTER_MONITOR_PERIOD"`
	MallocSize    size             `name:"malloc-size" help:"Size of dn0's malloc pd (RAM)." default:"64MiB" env:"VDA_CLUSTER_MALLOC_SIZE"`
	AioSize       size             `name:"aio-size" help:"Size of each dn's aio file (sparse: it takes disk space only as data is written)." default:"1GiB" env:"VDA_CLUSTER_AIO_SIZE"`
	DaSize        size             `name:"da-size" help:"Size of the array da0 made on the first run." default:"256MiB" env:"VDA_CLUSTER_DA_SIZE"`
	ReadyTimeout  time.Duration    `name:"ready-timeout" help:"How long to wait for each process to serve, for the pds to report, and for da0 to converge." default:"60s" env:"VDA_CLUSTER_READY_TIMEOUT"`
	StopTimeout   time.Duration    `name:"stop-timeout" help:"How long each process may take to stop after SIGTERM before it is killed." default:"15s" env:"VDA_CLUSTER_STOP_TIMEOUT"`
	Once          bool             `help:"Set up, print, then stop the cluster cleanly (CI, tests). Exits 1 if da0 did not converge, unless --allow-unready." env:"VDA_CLUSTER_ONCE"`
	Insecure      bool             `help:"Run the control plane in plaintext, without certificates (the default is TLS with a throwaway CA in <state-dir>/pki). For debugging only; it logs a warning." env:"VDA_CLUSTER_INSECURE"`
	AllowUnready  bool             `name:"allow-unready" help:"With --once, exit 0 even if da0 did not converge within --ready-timeout (what is not ready is still printed)." env:"VDA_CLUSTER_ALLOW_UNREADY"`
	Version       kong.VersionFlag `help:"Print the version and exit."`
}

// binaries are what the cluster runs, from --bin-dir.
var binaries = []string{"vda-dataplane", "vda-dnagent", "vda-cnagent", "vda-portal", "vda-monitor", "vdactl"}

func main() { daemon.Main("vda-cluster", run) }

// hangup also stops the cluster when its terminal goes away (SIGHUP),
// rather than leaving the children, in process groups of their own,
// running.
func hangup(ctx context.Context) (context.Context, context.CancelFunc) {
	return signal.NotifyContext(ctx, syscall.SIGHUP)
}

func (c *cli) validate() error {
	var errs []error
	if c.DNs < 1 || c.DNs > 99 {
		errs = append(errs, fmt.Errorf("--dns %d: between 1 and 99", c.DNs))
	}
	if c.CNs < 1 || c.CNs > 99 {
		errs = append(errs, fmt.Errorf("--cns %d: between 1 and 99", c.CNs))
	}
	if c.DSN != "" {
		if err := (store.Config{DSN: c.DSN}).Validate(); err != nil {
			errs = append(errs, fmt.Errorf("--dsn: %w", err))
		}
	}
	for _, s := range []struct {
		flag string
		v    size
	}{{"--malloc-size", c.MallocSize}, {"--aio-size", c.AioSize}, {"--da-size", c.DaSize}} {
		if s.v == 0 || s.v%(1<<20) != 0 {
			errs = append(errs, fmt.Errorf("%s %d: a positive multiple of 1 MiB", s.flag, s.v))
		}
	}
	if c.DaSize > 0 && c.AioSize > 0 && c.DaSize/size(min(2, max(c.DNs, 1))) >= c.AioSize {
		errs = append(errs, fmt.Errorf("--da-size %s does not fit on %d aio files of --aio-size %s", c.DaSize, min(2, c.DNs), c.AioSize))
	}
	if c.ReadyTimeout <= 0 || c.StopTimeout <= 0 {
		errs = append(errs, errors.New("--ready-timeout and --stop-timeout must be positive"))
	}
	return errors.Join(errs...)
}

// run runs the cluster until ctx ends (Ctrl-C), or once with --once.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	ctx, cancel := hangup(ctx)
	defer cancel()
	var c cli
	if done, err := daemon.Parse(&c, "vda-cluster", "A whole VDA cluster on one machine: portal, monitor, disk and controller nodes as real processes on loopback.", version, args, stdout, stderr); done || err != nil {
		return err
	}
	if err := c.validate(); err != nil {
		return err
	}
	if c.BinDir == "" {
		exe, err := os.Executable()
		if err != nil {
			return err
		}
		c.BinDir = filepath.Dir(exe)
	}
	var missing []string
	for _, b := range binaries {
		if _, err := os.Stat(filepath.Join(c.BinDir, b)); err != nil {
			missing = append(missing, b)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("--bin-dir %s lacks %s: run 'make build' (or 'make run'), or point --bin-dir at the directory that holds them", c.BinDir, strings.Join(missing, ", "))
	}
	l, err := plan(&c)
	if err != nil {
		return err
	}
	if c.DSN == "" {
		c.DSN = "sqlite:" + filepath.Join(l.State, "vda.db")
	}
	for _, d := range []string{l.State, filepath.Join(l.State, "logs"), filepath.Join(l.State, "run")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	unlock, err := lock(l.State)
	if err != nil {
		return err
	}
	defer unlock()
	if err := leftovers(l.State); err != nil {
		return err
	}
	if err := l.checkPorts(); err != nil {
		return fmt.Errorf("ports:\n%w", err)
	}
	hostNQN, err := hostNQN(c.HostNQN, l.State)
	if err != nil {
		return err
	}
	sec, err := prepareSecurity(l.State, c.Insecure)
	if err != nil {
		return err
	}
	for _, n := range l.nodes() {
		if err := os.MkdirAll(n.Dir, 0o755); err != nil {
			return err
		}
		if n.AioPath != "" {
			if err := sparseFile(n.AioPath, int64(c.AioSize)); err != nil {
				return err
			}
		}
	}

	term := &sync.Mutex{}
	if c.LogFormat == "auto" {
		c.LogFormat = "text"
	}
	own := &lineWriter{emit: func(line []byte) {
		term.Lock()
		defer term.Unlock()
		_, _ = fmt.Fprintf(stderr, "%-*s | %s\n", nameWidth, "cluster", stripANSI(line))
	}}
	log := c.Logger(own)
	sup := &supervisor{state: l.State, term: stderr, mu: term, log: log, level: c.LogLevel.String()}
	defer sup.stopAll(c.StopTimeout)
	log.Info("starting the cluster", "state_dir", l.State, "store", redact(c.DSN), "dns", c.DNs, "cns", c.CNs, "bin_dir", c.BinDir, "tls", !c.Insecure)
	if c.Insecure {
		log.Warn("--insecure: the control plane runs in plaintext and the agents take calls from anyone on this machine")
	}
	// A Ctrl-C while the cluster comes up stops it cleanly too.
	interrupted := func(err error) error {
		if ctx.Err() != nil {
			log.Info("interrupted: stopping the cluster")
			sup.stopAll(c.StopTimeout)
			return nil
		}
		return err
	}
	started := time.Now().UnixMilli()
	if err := startAll(ctx, sup, l, &c, sec); err != nil {
		return interrupted(err)
	}
	api, err := sec.portalClient(l.Portal)
	if err != nil {
		return interrupted(err)
	}
	if err := setup(ctx, api, l, &c, hostNQN, log); err != nil {
		return interrupted(err)
	}
	pending, err := waitConverged(ctx, api, started, c.ReadyTimeout)
	if err != nil {
		return interrupted(err)
	}
	if len(pending) > 0 {
		log.Error("da0 did not converge within --ready-timeout", "ready_timeout", c.ReadyTimeout, "not_ready", strings.Join(pending, "; "))
	} else {
		log.Info("da0 is ready")
	}
	if err := report(ctx, stdout, api, l, &c, sup, sec, pending); err != nil {
		return interrupted(err)
	}
	if c.Once {
		log.Info("--once: stopping the cluster")
		sup.stopAll(c.StopTimeout)
		if len(pending) > 0 && !c.AllowUnready {
			return fmt.Errorf("da0 did not converge within %s: %s", c.ReadyTimeout, strings.Join(pending, "; "))
		}
		return nil
	}
	if len(pending) > 0 {
		go watchConverged(ctx, api, started, log)
	}
	<-ctx.Done()
	log.Info("stopping the cluster")
	sup.stopAll(c.StopTimeout)
	log.Info("cluster stopped; run again to come back", "state_dir", l.State)
	return nil
}

// startAll starts the data planes, then the agents, the portal and the
// monitor, each tier once the one it needs serves.
func startAll(ctx context.Context, sup *supervisor, l *layout, c *cli, sec *security) error {
	bin := func(name string) string { return filepath.Join(c.BinDir, name) }
	type starting struct {
		p     *proc
		what  string
		ready func(context.Context) error
	}
	wait := func(ps []starting) error {
		for _, s := range ps {
			if err := waitReady(ctx, s.p, c.ReadyTimeout, s.what, s.ready); err != nil {
				return err
			}
		}
		return nil
	}
	var tier []starting
	for _, n := range l.nodes() {
		args := []string{"--socket", n.Socket, "--listen", n.MetricsAddr()}
		if n.HostNQN != "" {
			args = append(args, "--host-nqn", n.HostNQN)
		}
		p, err := sup.start(n.Name+"-dataplane", bin("vda-dataplane"), args...)
		if err != nil {
			return err
		}
		tier = append(tier, starting{p, "socket " + n.Socket, both(socketReady(n.Socket), httpReady(http.DefaultClient, "http://"+n.MetricsAddr(), "/healthz"))})
	}
	if err := wait(tier); err != nil {
		return err
	}
	tier = nil
	for _, n := range l.nodes() {
		p, err := sup.start(n.Name+"-agent", bin("vda-"+n.Kind+"agent"), append([]string{"--listen", n.AgentAddr(), "--spdk-socket", n.Socket}, sec.agentArgs...)...)
		if err != nil {
			return err
		}
		tier = append(tier, starting{p, "GET /metrics", sec.ready(n.AgentAddr(), "/metrics")})
	}
	if err := wait(tier); err != nil {
		return err
	}
	p, err := sup.start("portal", bin("vda-portal"), append([]string{"--listen", l.Portal, "--dsn", c.DSN, "--admin-token-file", sec.tokenFile}, sec.cpArgs...)...)
	if err != nil {
		return err
	}
	if err := wait([]starting{{p, "GET /metrics", sec.ready(l.Portal, "/metrics")}}); err != nil {
		return err
	}
	mon := hostPort(l.MonitorPort)
	p, err = sup.start("monitor", bin("vda-monitor"), append([]string{"--listen", mon, "--dsn", c.DSN, "--period", c.MonitorPeriod.String(), "--name", "vda-cluster-monitor"}, sec.cpArgs...)...)
	if err != nil {
		return err
	}
	return wait([]starting{{p, "GET /healthz", sec.ready(mon, "/healthz")}})
}

// lock takes <state>/run/lock, so that two vda-clusters never share a
// state directory; the lock goes with the process, however it ends.
func lock(state string) (unlock func(), err error) {
	f, err := os.OpenFile(filepath.Join(state, "run", "lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		return nil, fmt.Errorf("another vda-cluster runs on %s (%v)", state, err)
	}
	return func() { f.Close() }, nil
}

// leftovers refuses to start while a process of an earlier run, which
// died without stopping its children (kill -9), still runs: it holds the
// ports and the data planes' files.
func leftovers(state string) error {
	files, _ := filepath.Glob(filepath.Join(state, "run", "*.pid"))
	var alive []string
	var pids []string
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
		if err != nil || pid <= 0 {
			_ = os.Remove(f)
			continue
		}
		exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid))
		if err != nil || !strings.HasPrefix(filepath.Base(exe), "vda") {
			_ = os.Remove(f) // gone, or the pid is another program's now
			continue
		}
		alive = append(alive, fmt.Sprintf("%s (pid %d)", strings.TrimSuffix(filepath.Base(f), ".pid"), pid))
		pids = append(pids, strconv.Itoa(pid))
	}
	if len(alive) > 0 {
		return fmt.Errorf("processes of an earlier run on %s still run: %s; stop them (kill %s) and run again", state, strings.Join(alive, ", "), strings.Join(pids, " "))
	}
	return nil
}

// sparseFile makes path a sparse file of n bytes unless it exists; an
// existing file keeps its size and data.
func sparseFile(path string, n int64) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
	if errors.Is(err, os.ErrExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if err := f.Truncate(n); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// redact hides a DSN's password in logs.
func redact(dsn string) string {
	at := strings.LastIndex(dsn, "@")
	scheme := strings.Index(dsn, "://")
	if at < 0 || scheme < 0 || at < scheme {
		return dsn
	}
	creds := dsn[scheme+3 : at]
	if i := strings.Index(creds, ":"); i >= 0 {
		return dsn[:scheme+3] + creds[:i] + ":***" + dsn[at:]
	}
	return dsn
}
