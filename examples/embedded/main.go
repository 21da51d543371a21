// Command embedded runs VDA's control plane inside one program, through the
// library and without any of VDA's daemons: the portal (the API, served as
// Connect, gRPC and gRPC-Web on one h2c port) and the monitor (delivery,
// heartbeats, failover) over one SQLite store, sharing one pusher. This is
// what a storage product that embeds VDA does in its own process; the
// agents and data planes run on the nodes as usual.
//
//	go run ./examples/embedded -db /tmp/vda.db -listen 127.0.0.1:9520
//
// Every API call needs a token: the first run writes an admin token to
// -token-file (mode 0600); clients send it as "Authorization: Bearer <token>".
// With -tls-cert, -tls-key and -tls-ca (a certificate with the control-plane
// identity, see package pki) the API is served over TLS and the agents are
// called over mutual TLS, as they require; without, everything is plaintext
// and only agents run with --insecure accept the pushes.
//
// Ctrl-C stops both: the monitor first, then the portal, then the store.
package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/lmittmann/tint"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/virtual-disk-array/vda/monitor"
	"github.com/virtual-disk-array/vda/pki"
	"github.com/virtual-disk-array/vda/portal"
	"github.com/virtual-disk-array/vda/store"
	"github.com/virtual-disk-array/vda/syncup"
)

func main() {
	dbPath := flag.String("db", "vda-embedded.db", "SQLite file of the cluster")
	listen := flag.String("listen", "127.0.0.1:9520", "address of the API")
	period := flag.Duration("period", time.Second, "monitor heartbeat period")
	tokenFile := flag.String("token-file", "vda-embedded.token", "file of the admin API token, written on the first run")
	var files pki.Files
	flag.StringVar(&files.Cert, "tls-cert", "", "certificate (PEM) with the control-plane identity")
	flag.StringVar(&files.Key, "tls-key", "", "its key (PEM)")
	flag.StringVar(&files.CA, "tls-ca", "", "CA bundle (PEM) of the cluster")
	flag.Parse()

	log := slog.New(tint.NewHandler(os.Stderr, &tint.Options{TimeFormat: time.TimeOnly}))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var certs *pki.Source
	var err error
	if files != (pki.Files{}) {
		certs, err = pki.Load(files, log)
	}
	var ln net.Listener
	if err == nil {
		ln, err = net.Listen("tcp", *listen)
	}
	if err == nil {
		err = run(ctx, Config{DSN: "sqlite:" + *dbPath, Listener: ln, Period: *period, Logger: log, TokenFile: *tokenFile, TLS: certs})
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "embedded:", err)
		os.Exit(1)
	}
}

// Config is what run needs; main fills it from flags, tests directly.
type Config struct {
	DSN      string
	Listener net.Listener
	Period   time.Duration
	Logger   *slog.Logger
	// TokenFile holds the admin API token; see portal.EnsureAdminToken.
	TokenFile string
	// TLS, if set, serves the API over TLS and calls the agents over
	// mutual TLS with its certificate; nil means plaintext.
	TLS *pki.Source
	// Ready, if set, is called once the API serves.
	Ready func()
}

// run serves the portal and runs the monitor until ctx ends.
func run(ctx context.Context, cfg Config) error {
	log := cfg.Logger
	db, err := store.Open(ctx, store.Config{DSN: cfg.DSN, Logger: log})
	if err != nil {
		return err
	}
	defer db.Close()
	// The first admin token, for the embedder to hand to its clients.
	created, err := portal.EnsureAdminToken(ctx, db, cfg.TokenFile)
	if err != nil {
		return err
	}
	if created {
		log.Info("admin token written to " + cfg.TokenFile)
	}

	// One pusher delivers both the portal's changes and the monitor's
	// retries to the agents.
	pcfg := syncup.Config{DB: db, Logger: log}
	ln := cfg.Listener
	if cfg.TLS != nil {
		pcfg.Certs = cfg.TLS
		ln = tls.NewListener(ln, cfg.TLS.ServerConfig(false))
	} else {
		log.Warn("no TLS: the API is plaintext, and only agents run with --insecure take the pushes")
	}
	pusher, err := syncup.New(pcfg)
	if err != nil {
		return err
	}
	svc, err := portal.New(portal.Config{DB: db, Logger: log, Pusher: pusher})
	if err != nil {
		return err
	}
	// Close waits for pushes still running; it must run after the server
	// stops and before the store closes (deferred calls run in reverse).
	defer svc.Close()
	reg := prometheus.NewRegistry()
	handler, err := portal.NewHandler(svc, portal.HandlerConfig{Logger: log, Registerer: reg})
	if err != nil {
		return err
	}
	mon, err := monitor.New(monitor.Config{DB: db, Pusher: pusher, Logger: log, Period: cfg.Period, Registerer: reg})
	if err != nil {
		return err
	}

	// The monitor stops first when ctx ends, so that it does not fail
	// nodes over while the portal drains.
	monCtx, stopMon := context.WithCancel(ctx)
	defer stopMon()
	monDone := make(chan error, 1)
	go func() { monDone <- mon.Run(monCtx) }()

	log.Info("VDA control plane serving", "api", ln.Addr().String(), "tls", cfg.TLS != nil, "store", cfg.DSN)
	if cfg.Ready != nil {
		cfg.Ready()
	}
	served := portal.Serve(ctx, ln, handler, 5*time.Second)
	stopMon()
	return errors.Join(served, <-monDone)
}
