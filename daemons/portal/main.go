// Command vda-portal serves VDA's PortalService (Connect, gRPC and gRPC-Web
// over h2c, with reflection and health) over one store, and Prometheus
// metrics on /metrics of the same address.
package main

import (
	"context"
	"crypto/tls"
	"io"
	"net/http"
	"time"

	"github.com/alecthomas/kong"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/virtual-disk-array/vda/daemons/internal/daemon"
	"github.com/virtual-disk-array/vda/portal"
	"github.com/virtual-disk-array/vda/store"
	"github.com/virtual-disk-array/vda/syncup"
)

var version = "dev"

type cli struct {
	daemon.LogFlags
	daemon.TLSFlags
	Listen string        `help:"Address to serve the API and /metrics on." default:"127.0.0.1:9520" env:"VDA_PORTAL_LISTEN"`
	DSN    string        `help:"Store: sqlite:<path>, postgres://... or mysql://user:pass@tcp(host:port)/db." default:"sqlite:vda.db" env:"VDA_DSN"`
	Grace  time.Duration `help:"How long calls in flight may finish at shutdown." default:"10s"`
	// Pushing is best effort: the monitor makes delivery certain.
	PushWait    time.Duration    `help:"How long a change waits for the agents it touched before it answers (they are pushed on in the background)." default:"3s" env:"VDA_PORTAL_PUSH_WAIT"`
	PushTimeout time.Duration    `help:"Bound of one push of a node's desired state to its agent." default:"60s" env:"VDA_PORTAL_PUSH_TIMEOUT"`
	NoPush      bool             `help:"Only write the store; leave delivery to the monitor." env:"VDA_PORTAL_NO_PUSH"`
	Version     kong.VersionFlag `help:"Print the version and exit."`
	// Every call needs an API token; this file holds the first admin's.
	AdminTokenFile string `help:"File of an admin API token (mode 0600): created with a new token if missing, stored if the store lacks it." env:"VDA_PORTAL_ADMIN_TOKEN_FILE" placeholder:"FILE"`
}

func main() {
	daemon.Main("vda-portal", run)
}

// run serves until ctx ends. ready, if not nil, receives the bound address.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return serve(ctx, args, stdout, stderr, nil)
}

func serve(ctx context.Context, args []string, stdout, stderr io.Writer, ready chan<- string) error {
	var c cli
	if done, err := daemon.Parse(&c, "vda-portal", "The VDA portal: the cluster's API server.", version, args, stdout, stderr); done || err != nil {
		return err
	}
	log := c.Logger(stderr)
	// TLS serves the API and, as the control plane, calls the agents.
	certs, err := c.TLSFlags.Load(log)
	if err != nil {
		return err
	}
	db, err := store.Open(ctx, store.Config{DSN: c.DSN, Logger: log})
	if err != nil {
		return err
	}
	defer db.Close()
	if c.AdminTokenFile != "" {
		created, err := portal.EnsureAdminToken(ctx, db, c.AdminTokenFile)
		if err != nil {
			return err
		}
		if created {
			log.Info("admin token written to " + c.AdminTokenFile)
		}
	}
	cfg := portal.Config{DB: db, Logger: log, PushWait: c.PushWait}
	if !c.NoPush {
		pcfg := syncup.Config{DB: db, Timeout: c.PushTimeout, Logger: log}
		if certs != nil {
			pcfg.Certs = certs
		}
		pusher, err := syncup.New(pcfg)
		if err != nil {
			return err
		}
		cfg.Pusher = pusher
	}
	svc, err := portal.New(cfg)
	if err != nil {
		return err
	}
	// Pushes still running finish before the store closes.
	defer svc.Close()
	reg := daemon.Registry()
	if certs != nil {
		reg.MustRegister(daemon.CertExpiry(certs))
	}
	api, err := portal.NewHandler(svc, portal.HandlerConfig{Registerer: reg})
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	mux.Handle("/", api)
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	var serverTLS *tls.Config
	if certs != nil {
		// Callers authenticate with API tokens, not certificates.
		serverTLS = certs.ServerConfig(false)
	}
	ln, err := daemon.Listen(c.Listen, serverTLS)
	if err != nil {
		return err
	}
	log.Info("portal serving", "addr", ln.Addr().String(), "tls", certs != nil, "store", db.Dialect(), "version", version)
	if ready != nil {
		ready <- ln.Addr().String()
	}
	err = portal.Serve(ctx, ln, mux, c.Grace)
	log.Info("portal stopped")
	return err
}
