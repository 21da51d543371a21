// Command vda-dataplane is VDA's embedded data plane: a pure-Go stand-in
// for an SPDK application, answering SPDK's JSON-RPC methods on a Unix
// socket and moving real data (package dataplane). Run it where SPDK would
// run and point an agent's --spdk-socket at it. It serves Prometheus
// metrics on /metrics and a health check on /healthz of --listen, and with
// --pprof Go's profiles on /debug/pprof/ there.
package main

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/pprof"
	"time"

	"github.com/alecthomas/kong"
	"github.com/virtual-disk-array/vda/daemons/internal/daemon"
	"github.com/virtual-disk-array/vda/dataplane"
	"github.com/virtual-disk-array/vda/spdk/model"
)

var version = "dev"

type cli struct {
	daemon.LogFlags
	Socket  string           `help:"The JSON-RPC Unix socket to serve (SPDK's -r)." default:"/var/tmp/spdk.sock" env:"VDA_DATAPLANE_SOCKET"`
	Listen  string           `help:"Address to serve /metrics and /healthz on." default:"127.0.0.1:9920" env:"VDA_DATAPLANE_LISTEN"`
	HostNQN string           `name:"host-nqn" help:"Default host NQN of the NVMe-oF controllers it attaches (empty: SPDK's uuid-based default)." env:"VDA_DATAPLANE_HOST_NQN"`
	Pprof   bool             `help:"Serve Go's profiling endpoints (net/http/pprof) on /debug/pprof/ of --listen." env:"VDA_DATAPLANE_PPROF"`
	Grace   time.Duration    `help:"How long scrapes in flight may finish at shutdown." default:"10s" env:"VDA_DATAPLANE_GRACE"`
	Version kong.VersionFlag `help:"Print the version and exit."`
}

func main() { daemon.Main("vda-dataplane", run) }

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return serve(ctx, args, stdout, stderr, nil)
}

// serve is run; ready, if not nil, receives the address of /metrics once
// the socket is served.
func serve(ctx context.Context, args []string, stdout, stderr io.Writer, ready chan<- string) error {
	var c cli
	if done, err := daemon.Parse(&c, "vda-dataplane", "The VDA embedded data plane: SPDK's JSON-RPC methods, in pure Go.", version, args, stdout, stderr); done || err != nil {
		return err
	}
	log := c.Logger(stderr)
	dp, err := dataplane.New(dataplane.Config{Socket: c.Socket, Logger: log, Model: model.Config{HostNQN: c.HostNQN}})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", c.Listen)
	if err != nil {
		return err
	}
	api := daemon.Health()
	if c.Pprof {
		mux := http.NewServeMux()
		mux.Handle("/", api)
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
		api = mux
	}
	err = daemon.Serve(ctx, ln, api, daemon.Registry(), c.Grace, func(ctx context.Context) error {
		return dp.Run(ctx, func() {
			log.Info("data plane serving", "socket", c.Socket, "metrics", ln.Addr().String(), "version", version)
			if ready != nil {
				ready <- ln.Addr().String()
			}
		})
	})
	log.Info("data plane stopped")
	return err
}
