package main

import (
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/virtual-disk-array/vda"
)

// node is one dn or cn of the cluster: its agent beside its own data plane
// process, and every address and path they use.
type node struct {
	Kind  string // "dn" or "cn"
	Index int
	Name  string // dn0, cn1: the name in the store too
	Dir   string // <state>/<name>
	// Socket is the data plane's JSON-RPC socket, which the agent dials.
	Socket string
	// AgentPort serves the agent's API and /metrics; MetricsPort the data
	// plane's /metrics and /healthz; NvmePort the NVMe/TCP listener of the
	// node's subsystems (a dn's vds, a cn's arrays).
	AgentPort, MetricsPort, NvmePort int
	// AioPath is a dn's sparse file behind its aio pd; empty for a cn.
	AioPath string
	// HostNQN is a cn data plane's default host NQN (see plan).
	HostNQN string
}

func (n *node) AgentAddr() string   { return hostPort(n.AgentPort) }
func (n *node) MetricsAddr() string { return hostPort(n.MetricsPort) }

// layout is where every process of the cluster listens and keeps its
// files. It is a pure function of the flags, so a rerun with the same
// flags finds the same addresses as the store holds.
type layout struct {
	State       string // absolute
	Portal      string // host:port
	MonitorPort int
	Dns, Cns    []*node
}

// loopback is the address every process listens on: the cluster is one
// machine's loopback.
const loopback = "127.0.0.1"

func hostPort(port int) string { return net.JoinHostPort(loopback, strconv.Itoa(port)) }

// plan lays the cluster out. Ports, from --base-port B upward: the
// monitor's /metrics on B, then per dn i its agent on B+1+2i and its data
// plane's /metrics on B+2+2i, then the cns likewise after the dns (cn j:
// agent B+1+2(dns+j), data plane B+2+2(dns+j)). NVMe/TCP ports, from
// --nvme-base-port N: dn i listens on N+i, cn j on N+max(10,dns)+j (4430+j
// by default), so no count of dns and cns makes two nodes collide.
func plan(c *cli) (*layout, error) {
	state, err := filepath.Abs(c.StateDir)
	if err != nil {
		return nil, err
	}
	l := &layout{State: state, Portal: c.PortalListen, MonitorPort: c.BasePort}
	next := c.BasePort + 1
	cnNvme := c.NvmeBasePort + max(10, c.DNs)
	for i := range c.DNs {
		n := &node{Kind: "dn", Index: i, Name: fmt.Sprintf("dn%d", i), AgentPort: next, MetricsPort: next + 1, NvmePort: c.NvmeBasePort + i}
		next += 2
		n.Dir = filepath.Join(state, n.Name)
		n.Socket = filepath.Join(n.Dir, "spdk.sock")
		n.AioPath = filepath.Join(n.Dir, "aio0.img")
		l.Dns = append(l.Dns, n)
	}
	for j := range c.CNs {
		n := &node{Kind: "cn", Index: j, Name: fmt.Sprintf("cn%d", j), AgentPort: next, MetricsPort: next + 1, NvmePort: cnNvme + j}
		next += 2
		n.Dir = filepath.Join(state, n.Name)
		n.Socket = filepath.Join(n.Dir, "spdk.sock")
		// The cn agent gives every bdev_nvme_attach_controller the
		// controller's own host NQN (vda.CntlrHostNQN), which is all a vd
		// or a primary allows: that is the fence. This default is used
		// only by an attach that names no host NQN; giving each cn one of
		// its own, which nothing allows, keeps such an attach fenced out
		// rather than sharing SPDK's uuid-based default.
		n.HostNQN = vda.NQNPrefix + ":cluster-" + n.Name
		l.Cns = append(l.Cns, n)
	}
	// A Unix socket path has at most 107 bytes on Linux.
	for _, n := range l.nodes() {
		if len(n.Socket) > 107 {
			return nil, fmt.Errorf("--state-dir %s is too deep: the data plane socket %s is longer than a Unix socket path may be (107 bytes)", c.StateDir, n.Socket)
		}
	}
	return l, nil
}

func (l *layout) nodes() []*node { return append(append([]*node{}, l.Dns...), l.Cns...) }

// ports lists every TCP address the cluster will listen on, with its user.
func (l *layout) ports() [][2]string {
	ps := [][2]string{{l.Portal, "portal"}, {hostPort(l.MonitorPort), "monitor /metrics"}}
	for _, n := range l.nodes() {
		ps = append(ps,
			[2]string{n.AgentAddr(), n.Name + " agent"},
			[2]string{n.MetricsAddr(), n.Name + " data plane /metrics"},
			[2]string{hostPort(n.NvmePort), n.Name + " NVMe/TCP"})
	}
	return ps
}

// checkPorts reports, all at once, every port the cluster needs that is
// taken or used twice, before anything starts.
func (l *layout) checkPorts() error {
	var errs []error
	seen := map[string]string{}
	for _, p := range l.ports() {
		addr, who := p[0], p[1]
		_, port, err := net.SplitHostPort(addr)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %q is not host:port", who, addr))
			continue
		}
		if n, err := strconv.Atoi(port); err != nil || n <= 0 || n > 65535 {
			errs = append(errs, fmt.Errorf("%s: port %s is out of range (see --base-port, --nvme-base-port)", who, port))
			continue
		}
		if other, ok := seen[port]; ok {
			errs = append(errs, fmt.Errorf("%s and %s would both use port %s", other, who, port))
			continue
		}
		seen[port] = who
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %s is taken (%v)", who, addr, err))
			continue
		}
		_ = ln.Close()
	}
	if len(errs) > 0 {
		errs = append(errs, errors.New("stop what uses them (another vda-cluster?), or move the cluster with --base-port, --nvme-base-port or --portal-listen"))
	}
	return errors.Join(errs...)
}

// hostNQN returns the exporter's host NQN: the flag, else the one kept in
// <state>/host-nqn, made on the first run so that every rerun exports the
// array to the same host.
func hostNQN(flag, state string) (string, error) {
	if flag != "" {
		return flag, vda.ValidateNQN("--host-nqn", flag)
	}
	file := filepath.Join(state, "host-nqn")
	b, err := os.ReadFile(file)
	if err == nil {
		nqn := strings.TrimSpace(string(b))
		return nqn, vda.ValidateNQN(file, nqn)
	}
	if !errors.Is(err, os.ErrNotExist) {
		return "", err
	}
	var u [16]byte
	_, _ = rand.Read(u[:])
	u[6] = u[6]&0x0f | 0x40 // version 4
	u[8] = u[8]&0x3f | 0x80 // RFC 4122 variant
	nqn := fmt.Sprintf("nqn.2014-08.org.nvmexpress:uuid:%x-%x-%x-%x-%x", u[0:4], u[4:6], u[6:8], u[8:10], u[10:16])
	return nqn, os.WriteFile(file, []byte(nqn+"\n"), 0o644)
}
