package monitor_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/stretchr/testify/require"
	"github.com/virtual-disk-array/vda/agent"
	"github.com/virtual-disk-array/vda/failover"
	"github.com/virtual-disk-array/vda/monitor"
	"github.com/virtual-disk-array/vda/portal"
	vdav1 "github.com/virtual-disk-array/vda/proto/vda/v1"
	"github.com/virtual-disk-array/vda/spdk"
	"github.com/virtual-disk-array/vda/spdk/model"
	"github.com/virtual-disk-array/vda/spdk/spdktest"
	"github.com/virtual-disk-array/vda/store"
	"github.com/virtual-disk-array/vda/syncup"
)

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// A lab is a cluster in one process: a portal over a store, agents serving
// Connect on loopback over fake SPDKs on one fabric, and monitors started
// on demand. Nodes can die (agent and SPDK), be cut off (agent unreachable,
// SPDK serving on), and come back at the same address.
type lab struct {
	t     testing.TB
	db    *store.DB
	svc   *portal.Service
	nodes map[string]*labNode
}

type labNode struct {
	name string
	cn   bool
	fake *spdktest.Server
	addr string
	stop func() // stops the agent's server and loop
	// downAt is when stop began: from then on the agent answers nothing.
	downAt time.Time
}

func newLab(t testing.TB, db *store.DB, dns, cns int) *lab {
	return newLabWith(t, db, dns, cns, labOptions{pdSize: 256 << 20, push: true})
}

type labOptions struct {
	pdSize uint64
	// push makes the portal push each change and wait for it; without,
	// the monitor delivers everything.
	push bool
}

func newLabWith(t testing.TB, db *store.DB, dns, cns int, o labOptions) *lab {
	pcfg := portal.Config{DB: db, Logger: quiet()}
	if o.push {
		pusher, err := syncup.New(syncup.Config{DB: db, Logger: quiet(), Timeout: 10 * time.Second})
		require.NoError(t, err)
		pcfg.Pusher, pcfg.PushWait = pusher, 30*time.Second
	}
	svc, err := portal.New(pcfg)
	require.NoError(t, err)
	t.Cleanup(svc.Close)
	l := &lab{t: t, db: db, svc: svc, nodes: map[string]*labNode{}}
	fakes := spdktest.StartFabric(t, make([]model.Config, dns+cns)...)
	ctx := context.Background()
	for i, f := range fakes {
		n := &labNode{fake: f, cn: i >= dns}
		if n.cn {
			n.name = fmt.Sprintf("cn%d", i-dns+1)
		} else {
			n.name = fmt.Sprintf("dn%d", i+1)
		}
		l.nodes[n.name] = n
		l.up(n.name)
		lis := &vdav1.NvmfListener{Trtype: "tcp", Adrfam: "ipv4", Traddr: "127.0.0.1", Trsvcid: fmt.Sprint(4420 + i)}
		// Hash codes spread evenly, so that monitors sharing the nodes
		// each get some.
		hash := uint32(i * store.HashSpace / len(fakes))
		if n.cn {
			_, err = svc.CreateCn(ctx, connect.NewRequest(&vdav1.CreateCnRequest{Name: n.name, AgentAddress: n.addr, Listener: lis, Location: n.name, HashCode: &hash}))
			require.NoError(t, err)
			continue
		}
		_, err = svc.CreateDn(ctx, connect.NewRequest(&vdav1.CreateDnRequest{Name: n.name, AgentAddress: n.addr, Listener: lis, Location: n.name, HashCode: &hash}))
		require.NoError(t, err)
		_, err = svc.CreatePd(ctx, connect.NewRequest(&vdav1.CreatePdRequest{DnName: n.name, Name: "pd1",
			Backend: &vdav1.CreatePdRequest_Malloc{Malloc: &vdav1.PdMalloc{Size: o.pdSize}}}))
		require.NoError(t, err)
	}
	return l
}

// up starts node name's agent, at its old address if it had one.
func (l *lab) up(name string) {
	t, n := l.t, l.nodes[name]
	addr := n.addr
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	var ln net.Listener
	var err error
	for range 50 { // the old port may linger a moment
		if ln, err = net.Listen("tcp", addr); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	require.NoError(t, err)
	n.addr = ln.Addr().String()
	var h http.Handler
	var run func(context.Context) error
	conn := n.fake.Conn()
	if n.cn {
		a, err := agent.NewCN(agent.Config{SPDK: conn, Logger: quiet()})
		require.NoError(t, err)
		h, run = agent.NewCNHandler(a, agent.HandlerConfig{Logger: quiet(), Insecure: true}), a.Run
	} else {
		a, err := agent.NewDN(agent.Config{SPDK: conn, Logger: quiet()})
		require.NoError(t, err)
		h, run = agent.NewDNHandler(a, agent.HandlerConfig{Logger: quiet(), Insecure: true}), a.Run
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx) }()
	srv := &http.Server{Handler: h}
	served := make(chan struct{})
	go func() { defer close(served); _ = srv.Serve(ln) }()
	stopped := false
	n.stop = func() {
		if stopped {
			return
		}
		stopped = true
		n.downAt = time.Now()
		_ = srv.Close()
		<-served
		cancel()
		require.NoError(t, <-done)
	}
	t.Cleanup(n.stop)
}

// kill stops node name's agent and its SPDK, as when the machine dies.
func (l *lab) kill(name string) {
	n := l.nodes[name]
	n.stop()
	n.fake.Kill()
}

// revive restarts a killed node: an empty SPDK, its agent at its address.
func (l *lab) revive(name string) {
	l.nodes[name].fake.Restart()
	l.up(name)
}

// monitor starts a monitor over the lab's store until the test ends;
// edit, if given, changes its configuration.
func (l *lab) monitor(name string, edit ...func(*monitor.Config)) (stop func()) {
	_, stop = l.startMonitor(name, edit...)
	return stop
}

func (l *lab) startMonitor(name string, edit ...func(*monitor.Config)) (*monitor.Monitor, func()) {
	t := l.t
	pusher, err := syncup.New(syncup.Config{DB: l.db, Logger: quiet(), Timeout: 10 * time.Second})
	require.NoError(t, err)
	cfg := monitor.Config{DB: l.db, Pusher: pusher, Logger: quiet(), Name: name,
		Period: 50 * time.Millisecond, StatusTimeout: 200 * time.Millisecond,
		Detector: failover.Config{Misses: 3}, RetryMin: 50 * time.Millisecond, RetryMax: 500 * time.Millisecond}
	for _, e := range edit {
		e(&cfg)
	}
	m, err := monitor.New(cfg)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()
	stopped := false
	stop := func() {
		if !stopped {
			stopped = true
			cancel()
			require.NoError(t, <-done)
		}
	}
	t.Cleanup(stop)
	return m, stop
}

func (l *lab) da(name string) *vdav1.Da {
	resp, err := l.svc.GetDa(context.Background(), connect.NewRequest(&vdav1.GetDaRequest{Name: name}))
	require.NoError(l.t, err)
	return resp.Msg.GetDa()
}

// primary returns an array's primary controller.
func primaryOf(da *vdav1.Da) *vdav1.Cntlr {
	for _, c := range da.GetCntlrs() {
		if c.GetRole() == vdav1.CntlrRole_CNTLR_ROLE_PRIMARY {
			return c
		}
	}
	return nil
}

// eventually retries check until it returns nil, failing the test with
// its last error after d.
func eventually(t testing.TB, d time.Duration, check func() error) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		err := check()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("not within %s: %v", d, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// subsystem returns a subsystem of node name's SPDK, or an error.
func (l *lab) subsystem(name, nqn string) (spdk.Subsystem, error) {
	subs, err := l.nodes[name].fake.Client().NvmfGetSubsystems(context.Background(), nqn)
	if err != nil {
		return spdk.Subsystem{}, fmt.Errorf("%s: subsystem %s: %w", name, nqn, err)
	}
	if len(subs) != 1 {
		return spdk.Subsystem{}, fmt.Errorf("%s: %d subsystems %s", name, len(subs), nqn)
	}
	return subs[0], nil
}

// hostsOf lists the hosts a subsystem allows.
func hostsOf(s spdk.Subsystem) []string {
	var out []string
	for _, h := range s.Hosts {
		out = append(out, h.NQN)
	}
	return out
}

// nsBdev is the bdev of a subsystem's first namespace.
func nsBdev(s spdk.Subsystem) string {
	if len(s.Namespaces) == 0 {
		return ""
	}
	return s.Namespaces[0].BdevName
}

var errNotYet = errors.New("not yet")

func notYet(format string, args ...any) error {
	return fmt.Errorf("%w: %s", errNotYet, fmt.Sprintf(format, args...))
}

var _ = strings.Contains
