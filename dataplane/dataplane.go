// Package dataplane is VDA's embedded data plane: a pure-Go stand-in for
// an SPDK application that answers SPDK's JSON-RPC methods on a Unix socket
// and moves real data, so that VDA's agents run end to end where SPDK is
// not installed. The object graph and its semantics are spdk/model's (the
// same model behind the fake SPDK socket of the tests); the data is its
// data path (malloc, aio, raid0, NVMe namespaces).
//
// Its NVMe/TCP listeners are real: the first nvmf_subsystem_add_listener
// on an address opens a TCP socket there, served by nvmetcp/target, so a
// Linux host connects to the subsystems the agents build; the last
// listener's removal closes it. Each socket serves only the subsystems
// that listen on its address, with their hosts and, per namespace, the
// ANA state of that listener.
//
// Every socket also serves the discovery subsystem, as SPDK does: a host
// connecting to nqn.2014-08.org.nvmexpress.discovery reads every TCP
// listener of every subsystem it may reach. Changes the model makes after
// a host connected (namespaces added or removed, ANA states, what the
// discovery log lists) reach it through the model's Changed hook and the
// target's asynchronous event notices.
//
// bdev_nvme_attach_controller connects over real NVMe/TCP (nvmetcp/host,
// through the model's Dial hook; see initiator.go), so a controller
// node's data plane attaches the vds of other data planes and a secondary
// its primary, reconnecting as SPDK does. Lvols keep their data in the
// lvstore format of package lvs, and a bdev holding one (an aio file after
// a restart) is examined into its lvstore and lvols again.
//
// As in SPDK, nvmf_subsystem_remove_host closes the connections (every
// queue of every controller) of that host to that subsystem at once,
// which is what fences a deposed primary; nvmf_delete_subsystem closes
// all of the subsystem's, nvmf_subsystem_remove_listener those made
// through that listener. Turning allow_any_host off leaves hosts
// connected, as SPDK does.
package dataplane

import (
	"cmp"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"slices"
	"strconv"
	"sync"

	"github.com/virtual-disk-array/vda/nvmetcp/target"
	"github.com/virtual-disk-array/vda/spdk/jsonrpc"
	"github.com/virtual-disk-array/vda/spdk/model"
)

// Config configures a data plane.
type Config struct {
	// Socket is the JSON-RPC Unix socket path, SPDK's -r. Required.
	Socket string
	// Model configures the SPDK model (host NQN, addresses, fabric).
	Model model.Config
	// Logger; nil means slog.Default().
	Logger *slog.Logger
	// AttachIOQueues is the number of I/O queues bdev_nvme_attach_controller
	// opens when the request has no num_io_queues; 0 means
	// min(GOMAXPROCS, 4). (SPDK opens one per thread doing I/O to the
	// controller, when it starts doing so.)
	AttachIOQueues int
}

// DataPlane is one running data plane.
type DataPlane struct {
	cfg Config
	// Target is the model: tests and embedders reach its data path
	// (Target.Open) directly.
	Target *model.Target

	// ctx ends the NVMe/TCP servers when Run ends.
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup // the NVMe/TCP servers
	mu     sync.Mutex
	ports  map[model.ListenAddr]port
	// ids is shared by all listeners: CNTLIDs are unique per subsystem,
	// and the controllers of a subsystem reached through two of them (two
	// paths) need distinct ones.
	ids target.ControllerIDs
}

// port is one listening socket and the end of its server.
type port struct {
	ln     net.Listener
	srv    *target.Server
	cancel context.CancelFunc
}

// New returns a data plane; Run serves it. It sets cfg.Model's Listen,
// Unlisten, Disconnect, Changed, Controllers and Dial hooks: the data
// plane owns the listening sockets and their connections.
func New(cfg Config) (*DataPlane, error) {
	if cfg.Socket == "" {
		return nil, errors.New("dataplane: Socket is required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	d := &DataPlane{cfg: cfg, ports: map[model.ListenAddr]port{}}
	d.ctx, d.cancel = context.WithCancel(context.Background())
	cfg.Model.Listen = d.listen
	cfg.Model.Unlisten = d.unlisten
	cfg.Model.Disconnect = d.disconnect
	cfg.Model.Dial = d.dial // the NVMe/TCP initiator (initiator.go)
	cfg.Model.Changed = d.changed
	cfg.Model.Controllers = d.controllers
	if cfg.Model.Logger == nil {
		cfg.Model.Logger = cfg.Logger
	}
	d.Target = model.New(cfg.Model)
	return d, nil
}

// listen is the model's Listen hook: it opens the socket and serves it on
// its own goroutine. It runs under the model's lock, so it only starts
// the server, which calls the model (through the catalog) later.
func (d *DataPlane) listen(trtype, traddr, trsvcid string) error {
	if trtype != "TCP" {
		return fmt.Errorf("dataplane: transport %s is not served", trtype)
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(traddr, trsvcid))
	if err != nil {
		d.cfg.Logger.Warn("cannot listen", "traddr", traddr, "trsvcid", trsvcid, "err", err)
		return err
	}
	a := model.ListenAddr{Trtype: trtype, Traddr: traddr, Trsvcid: trsvcid}
	srv, err := target.NewServer(catalog{t: d.Target, addr: a}, target.Config{ControllerIDs: &d.ids})
	if err != nil {
		_ = ln.Close()
		return err
	}
	ctx, cancel := context.WithCancel(d.ctx)
	d.mu.Lock()
	d.ports[a] = port{ln: ln, srv: srv, cancel: cancel}
	d.mu.Unlock()
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		if err := srv.Serve(ctx, ln); err != nil {
			d.cfg.Logger.Error("NVMe/TCP listener failed", "traddr", traddr, "trsvcid", trsvcid, "err", err)
		}
	}()
	d.cfg.Logger.Info("NVMe/TCP listening", "traddr", traddr, "trsvcid", trsvcid)
	return nil
}

// unlisten is the model's Unlisten hook. It ends the server (which closes
// the socket and its connections) without waiting for it: the server's
// connections may be waiting for the model's lock, which the caller
// holds. Run waits for all servers at its end.
func (d *DataPlane) unlisten(trtype, traddr, trsvcid string) {
	a := model.ListenAddr{Trtype: trtype, Traddr: traddr, Trsvcid: trsvcid}
	d.mu.Lock()
	p, ok := d.ports[a]
	delete(d.ports, a)
	d.mu.Unlock()
	if ok {
		p.cancel()
		// Closed here rather than by the server's goroutine, so that the
		// address is free again when nvmf_subsystem_remove_listener
		// answers (an agent may add it back at once).
		_ = p.ln.Close()
		d.cfg.Logger.Info("NVMe/TCP stopped listening", "traddr", traddr, "trsvcid", trsvcid)
	}
}

// disconnect is the model's Disconnect hook: it drops the controllers of
// subsystem subnqn on the socket at addr (every socket when addr is zero)
// whose host is host (any host when ""), closing their connections. It
// runs under the model's lock and does not wait for the connections'
// goroutines; Server.Disconnect does not call the catalog.
func (d *DataPlane) disconnect(subnqn string, addr model.ListenAddr, host string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	n := 0
	for a, p := range d.ports {
		if addr != (model.ListenAddr{}) && a != addr {
			continue
		}
		n += p.srv.Disconnect(func(sub, h string) bool { return sub == subnqn && (host == "" || h == host) })
	}
	if n > 0 {
		d.cfg.Logger.Info("NVMe/TCP controllers disconnected", "nqn", subnqn, "host", host,
			"traddr", addr.Traddr, "trsvcid", addr.Trsvcid, "controllers", n)
	}
}

// changed is the model's Changed hook: every socket's server is told, as
// any of them may have controllers of the subsystem, and every discovery
// controller may list it. Notify only queues the NQN: the servers look the
// subsystem up later, once the model's lock is free.
func (d *DataPlane) changed(subnqn string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, p := range d.ports {
		p.srv.Notify(subnqn)
	}
}

// controllers is the model's Controllers hook: the live controllers of
// subsystem subnqn on every socket, oldest first (CNTLIDs are per
// subsystem and shared by the sockets, so creation order is SPDK's list
// order). It runs under the model's lock and answers from the servers'
// own state (Server.Controllers does not call the catalog).
func (d *DataPlane) controllers(subnqn string) []model.NVMfController {
	d.mu.Lock()
	var all []target.ControllerInfo
	for _, p := range d.ports {
		all = append(all, p.srv.Controllers(subnqn)...)
	}
	d.mu.Unlock()
	slices.SortFunc(all, func(a, b target.ControllerInfo) int { return cmp.Compare(a.Seq, b.Seq) })
	out := make([]model.NVMfController, 0, len(all))
	for _, c := range all {
		mc := model.NVMfController{CNTLID: int(c.CNTLID), HostNQN: c.HostNQN, HostID: formatUUID(c.HostID)}
		for _, q := range c.Queues {
			mc.Qpairs = append(mc.Qpairs, model.NVMfQpair{QID: int(q.QID), State: "enabled",
				Local: tcpAddr(q.Local), Peer: tcpAddr(q.Peer)})
		}
		out = append(out, mc)
	}
	return out
}

// tcpAddr spells a connection's address as the model does.
func tcpAddr(a net.Addr) model.ListenAddr {
	out := model.ListenAddr{Trtype: "TCP"}
	if ta, ok := a.(*net.TCPAddr); ok {
		ip := ta.IP
		if v4 := ip.To4(); v4 != nil {
			ip = v4
		}
		out.Traddr, out.Trsvcid = ip.String(), strconv.Itoa(ta.Port)
	} else if a != nil {
		out.Traddr, out.Trsvcid, _ = net.SplitHostPort(a.String())
	}
	return out
}

// formatUUID spells 16 bytes as a lower-case uuid.
func formatUUID(b [16]byte) string {
	h := hex.EncodeToString(b[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}

// Run serves the socket until ctx ends, then stops the target (its NVMe-oF
// connections drop, its files close) and removes the socket. A stale socket
// file left by a crashed data plane is replaced; a live one (another data
// plane answering on it) is an error.
func (d *DataPlane) Run(ctx context.Context, ready func()) error {
	if c, err := net.Dial("unix", d.cfg.Socket); err == nil {
		_ = c.Close()
		return fmt.Errorf("dataplane: %s is in use by another process", d.cfg.Socket)
	}
	_ = os.Remove(d.cfg.Socket)
	ln, err := net.Listen("unix", d.cfg.Socket)
	if err != nil {
		return fmt.Errorf("dataplane: %w", err)
	}
	defer os.Remove(d.cfg.Socket)
	// Whoever may connect may delete every volume: only the data plane's
	// own user (its agent runs as the same) may, whatever the umask.
	// Linux checks write permission on the socket file at each connect.
	if err := os.Chmod(d.cfg.Socket, 0o600); err != nil {
		_ = ln.Close()
		return fmt.Errorf("dataplane: %w", err)
	}
	defer func() {
		d.Target.Stop() // unlistens every address
		d.cancel()
		d.wg.Wait()
	}()
	if ready != nil {
		ready()
	}
	srv := jsonrpc.Server{Handler: d.Target, Logger: d.cfg.Logger}
	err = srv.Serve(ctx, ln)
	if errors.Is(err, net.ErrClosed) || ctx.Err() != nil {
		return nil
	}
	return err
}
