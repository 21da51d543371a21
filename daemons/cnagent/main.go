// Command vda-cnagent runs beside a controller node's SPDK application: it
// serves VDA's CnAgentService (Connect, gRPC and gRPC-Web over h2c, with
// health) and reconciles SPDK to the desired state the control plane sends,
// with Prometheus metrics on /metrics of the same address.
package main

import (
	"context"
	"crypto/tls"
	"io"
	"time"

	"github.com/alecthomas/kong"
	"github.com/virtual-disk-array/vda/agent"
	"github.com/virtual-disk-array/vda/daemons/internal/daemon"
	"github.com/virtual-disk-array/vda/pki"
	"github.com/virtual-disk-array/vda/spdk"
)

var version = "dev"

type cli struct {
	daemon.LogFlags
	daemon.TLSFlags
	Listen      string        `help:"Address to serve the agent API and /metrics on." default:"127.0.0.1:9820" env:"VDA_CNAGENT_LISTEN"`
	SPDKSocket  string        `name:"spdk-socket" help:"SPDK's JSON-RPC Unix socket (dialled on first use, redialled when it drops)." default:"/var/tmp/spdk.sock" env:"VDA_SPDK_SOCKET"`
	CallTimeout time.Duration `help:"How long each SPDK call may take." default:"30s"`
	Grace       time.Duration `help:"How long calls in flight may finish at shutdown." default:"10s"`

	// The delete guard (agent.DeleteGuard): a syncup that would delete more
	// than the floor and the share of the node's resources is refused
	// unless an admin forces it.
	DeleteGuardShare float64 `name:"delete-guard-share" help:"Largest share (0..1] of its VDA-owned resources one syncup may delete unless an admin forces it." default:"0.5" env:"VDA_AGENT_DELETE_GUARD_SHARE"`
	DeleteGuardFloor int     `name:"delete-guard-floor" help:"Resources one syncup may always delete, whatever their share (0: the default, 4)." default:"4" env:"VDA_AGENT_DELETE_GUARD_FLOOR"`

	// The reconnect options of the NVMe-oF controllers the cn attaches
	// (bdev_nvme_attach_controller); 0 leaves SPDK's default.
	CtrlrLossTimeoutSec  int `name:"ctrlr-loss-timeout-sec" help:"Seconds SPDK keeps reconnecting a lost vd or primary before giving it up (-1: forever)." default:"30"`
	ReconnectDelaySec    int `name:"reconnect-delay-sec" help:"Seconds between reconnect attempts." default:"2"`
	FastIOFailTimeoutSec int `name:"fast-io-fail-timeout-sec" help:"Seconds after which I/O to a lost controller fails while it reconnects (0: SPDK's default)." default:"0"`

	Version kong.VersionFlag `help:"Print the version and exit."`
}

func main() {
	daemon.Main("vda-cnagent", run)
}

// run serves until ctx ends.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return serve(ctx, args, stdout, stderr, nil)
}

// serve is run; ready, if not nil, receives the bound address.
func serve(ctx context.Context, args []string, stdout, stderr io.Writer, ready chan<- string) error {
	var c cli
	if done, err := daemon.Parse(&c, "vda-cnagent", "The VDA controller node agent: reconciles the node's SPDK application.", version, args, stdout, stderr); done || err != nil {
		return err
	}
	log := c.Logger(stderr)
	certs, err := c.TLSFlags.Load(log)
	if err != nil {
		return err
	}
	conn := spdk.Dial(c.SPDKSocket, spdk.ConnConfig{Logger: log})
	defer conn.Close()
	a, err := agent.NewCN(agent.Config{SPDK: conn, Logger: log, CallTimeout: c.CallTimeout, Nvme: agent.NvmeOptions{
		CtrlrLossTimeoutSec:  c.CtrlrLossTimeoutSec,
		ReconnectDelaySec:    c.ReconnectDelaySec,
		FastIOFailTimeoutSec: c.FastIOFailTimeoutSec,
	}, DeleteGuard: agent.DeleteGuard{Share: c.DeleteGuardShare, Floor: c.DeleteGuardFloor}})
	if err != nil {
		return err
	}
	reg := daemon.Registry()
	if certs != nil {
		reg.MustRegister(daemon.CertExpiry(certs))
	}
	reg.MustRegister(daemon.AppliedGeneration(a.AppliedGeneration))
	ln, err := daemon.Listen(c.Listen, serverTLS(certs))
	if err != nil {
		return err
	}
	log.Info("cn agent serving", "addr", ln.Addr().String(), "tls", certs != nil, "spdk_socket", c.SPDKSocket, "version", version)
	if ready != nil {
		ready <- ln.Addr().String()
	}
	err = daemon.Serve(ctx, ln, agent.NewCNHandler(a, agent.HandlerConfig{Logger: log, Insecure: certs == nil}), reg, c.Grace, a.Run)
	log.Info("cn agent stopped")
	return err
}

// serverTLS is the agent's side of mutual TLS: it asks every caller for a
// certificate, and the handler admits only the control plane's.
func serverTLS(certs *pki.Source) *tls.Config {
	if certs == nil {
		return nil
	}
	return certs.ServerConfig(false)
}
