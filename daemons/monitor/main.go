// Command vda-monitor keeps VDA's nodes converged and alive: it sends every
// agent a heartbeat each period, pushes each node its desired state until it
// has applied it, and fails over the controllers of a controller node that
// stops answering (see package monitor). It serves Prometheus metrics on
// /metrics and a health check on /healthz; it has no API.
package main

import (
	"cmp"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/alecthomas/kong"
	"github.com/virtual-disk-array/vda/daemons/internal/daemon"
	"github.com/virtual-disk-array/vda/failover"
	"github.com/virtual-disk-array/vda/monitor"
	"github.com/virtual-disk-array/vda/store"
	"github.com/virtual-disk-array/vda/syncup"
)

var version = "dev"

type cli struct {
	daemon.LogFlags
	daemon.TLSFlags
	Listen string        `help:"Address to serve /metrics and /healthz on." default:"127.0.0.1:9620" env:"VDA_MONITOR_LISTEN"`
	DSN    string        `help:"Store: sqlite:<path>, postgres://... or mysql://user:pass@tcp(host:port)/db." default:"sqlite:vda.db" env:"VDA_DSN"`
	Name   string        `help:"This monitor's name in the event log and among the lease holders; unique among the monitors (default: <hostname>-<pid>)." env:"VDA_MONITOR_NAME"`
	Grace  time.Duration `help:"How long scrapes in flight may finish at shutdown." default:"10s" env:"VDA_MONITOR_GRACE"`

	Period        time.Duration `help:"How often every node gets a heartbeat." default:"1s" env:"VDA_MONITOR_PERIOD"`
	StatusTimeout time.Duration `help:"Bound of one heartbeat (0: the period)." default:"0" env:"VDA_MONITOR_STATUS_TIMEOUT"`
	Misses        int           `help:"Consecutive heartbeats a node may miss before it is failed (at least 2)." default:"3" env:"VDA_MONITOR_MISSES"`
	Deadline      time.Duration `help:"Also fail a node this long after its last answer, after two misses at least (0: no deadline)." default:"0" env:"VDA_MONITOR_DEADLINE"`
	Concurrency   int           `help:"Heartbeats, and separately syncups, in flight at once." default:"64" env:"VDA_MONITOR_CONCURRENCY"`
	RetryMin      time.Duration `help:"Least backoff between syncups of a node that did not converge." default:"250ms" env:"VDA_MONITOR_RETRY_MIN"`
	RetryMax      time.Duration `help:"Most backoff between syncups of a node that did not converge." default:"30s" env:"VDA_MONITOR_RETRY_MAX"`
	PushTimeout   time.Duration `help:"Bound of one push of a node's desired state to its agent." default:"60s" env:"VDA_MONITOR_PUSH_TIMEOUT"`

	Leases    bool          `help:"Share the nodes with the other monitors through leases in the store; required to run several monitors (PostgreSQL or MySQL)." env:"VDA_MONITOR_LEASES"`
	LeaseTTL  time.Duration `name:"lease-ttl" help:"How long a lease lasts unless renewed (every period); must exceed the period plus the skew." default:"10s" env:"VDA_MONITOR_LEASE_TTL"`
	LeaseSkew time.Duration `help:"How far the monitors' clocks may disagree: a shard is given up this long before its lease ends." default:"1s" env:"VDA_MONITOR_LEASE_SKEW"`

	Version kong.VersionFlag `help:"Print the version and exit."`
}

// validate reports every problem of the flags, before anything starts.
func (c *cli) validate() error {
	var errs []error
	if err := (store.Config{DSN: c.DSN}).Validate(); err != nil {
		errs = append(errs, fmt.Errorf("--dsn: %w", err))
	} else if c.Leases && isSQLite(c.DSN) {
		errs = append(errs, errors.New("--leases cannot be used with a SQLite store: run one monitor per SQLite store (leases share the nodes among several monitors on PostgreSQL or MySQL)"))
	}
	if err := (failover.Config{Misses: c.Misses}).Validate(); err != nil {
		errs = append(errs, fmt.Errorf("--misses: %w", err))
	}
	for _, d := range []struct {
		flag string
		v    time.Duration
	}{
		{"--period", c.Period}, {"--status-timeout", c.StatusTimeout}, {"--deadline", c.Deadline}, {"--retry-min", c.RetryMin}, {"--retry-max", c.RetryMax},
		{"--push-timeout", c.PushTimeout}, {"--grace", c.Grace}, {"--lease-ttl", c.LeaseTTL}, {"--lease-skew", c.LeaseSkew},
	} {
		if d.v < 0 {
			errs = append(errs, fmt.Errorf("%s is negative (%s)", d.flag, d.v))
		}
	}
	if c.Concurrency < 0 {
		errs = append(errs, fmt.Errorf("--concurrency is negative (%d)", c.Concurrency))
	}
	if c.RetryMax > 0 && c.RetryMin > c.RetryMax {
		errs = append(errs, fmt.Errorf("--retry-min (%s) is above --retry-max (%s)", c.RetryMin, c.RetryMax))
	}
	if c.Leases && c.LeaseTTL >= 0 && c.LeaseSkew >= 0 && c.Period >= 0 {
		// The library's defaults for zero values.
		ttl, skew, period := cmp.Or(c.LeaseTTL, 10*time.Second), cmp.Or(c.LeaseSkew, time.Second), cmp.Or(c.Period, time.Second)
		if ttl <= period+skew {
			errs = append(errs, fmt.Errorf("--lease-ttl (%s) must exceed --period plus --lease-skew (%s): leases are renewed once a period and given up skew before they end", ttl, period+skew))
		}
	}
	return errors.Join(errs...)
}

func (c *cli) detector() failover.Config {
	return failover.Config{Misses: c.Misses, Deadline: c.Deadline}
}

// isSQLite says whether a valid DSN names a SQLite store: anything but
// PostgreSQL's and MySQL's URLs (see store.Config.DSN).
func isSQLite(dsn string) bool {
	for _, p := range []string{"postgres://", "postgresql://", "mysql://"} {
		if strings.HasPrefix(dsn, p) {
			return false
		}
	}
	return true
}

func main() {
	daemon.Main("vda-monitor", run)
}

// run monitors until ctx ends.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return serve(ctx, args, stdout, stderr, nil)
}

// serve is run; ready, if not nil, receives the bound address.
func serve(ctx context.Context, args []string, stdout, stderr io.Writer, ready chan<- string) error {
	var c cli
	if done, err := daemon.Parse(&c, "vda-monitor", "The VDA monitor: heartbeats, certain delivery of desired state, and failover.", version, args, stdout, stderr); done || err != nil {
		return err
	}
	if err := c.validate(); err != nil {
		return err
	}
	log := c.Logger(stderr)
	certs, err := c.TLSFlags.Load(log)
	if err != nil {
		return err
	}
	db, err := store.Open(ctx, store.Config{DSN: c.DSN, Logger: log})
	if err != nil {
		return err
	}
	defer db.Close()
	pcfg := syncup.Config{DB: db, Timeout: c.PushTimeout, Logger: log}
	var serverTLS *tls.Config
	if certs != nil {
		// The monitor calls the agents as the control plane, with its
		// certificate, and serves its metrics over TLS too.
		pcfg.Certs, serverTLS = certs, certs.ServerConfig(false)
	}
	pusher, err := syncup.New(pcfg)
	if err != nil {
		return err
	}
	reg := daemon.Registry()
	if certs != nil {
		reg.MustRegister(daemon.CertExpiry(certs))
	}
	cfg := monitor.Config{
		DB: db, Pusher: pusher, Logger: log, Name: c.Name, Registerer: reg,
		Period: c.Period, StatusTimeout: c.StatusTimeout, Detector: c.detector(), Concurrency: c.Concurrency,
		RetryMin: c.RetryMin, RetryMax: c.RetryMax,
	}
	if c.Leases {
		cfg.Leases = &monitor.LeaseConfig{TTL: c.LeaseTTL, Skew: c.LeaseSkew}
	}
	m, err := monitor.New(cfg)
	if err != nil {
		return err
	}
	ln, err := daemon.Listen(c.Listen, serverTLS)
	if err != nil {
		return err
	}
	attrs := []any{"addr", ln.Addr().String(), "tls", certs != nil, "store", db.Dialect(), "leases", c.Leases, "period", c.Period, "version", version}
	if c.Name != "" {
		attrs = append(attrs, "name", c.Name)
	}
	log.Info("monitor serving", attrs...)
	if ready != nil {
		ready <- ln.Addr().String()
	}
	err = daemon.Serve(ctx, ln, daemon.Health(), reg, c.Grace, m.Run)
	log.Info("monitor stopped")
	return err
}
