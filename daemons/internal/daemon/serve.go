package daemon

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/virtual-disk-array/vda/serve"
	"golang.org/x/sync/errgroup"
)

// Serve serves api on "/" and reg's metrics on "/metrics" of ln (h2c and
// HTTP/1.1, see serve.HTTP) and runs run beside the server, until ctx ends
// or either fails; then it stops both and returns the first error.
//
// run's context ends only once the server has stopped, so that calls in
// flight, which may wait for run (an agent's Syncup waits for its reconcile
// loop), get the grace to finish.
func Serve(ctx context.Context, ln net.Listener, api http.Handler, reg *prometheus.Registry, grace time.Duration, run func(context.Context) error) error {
	mux := http.NewServeMux()
	mux.Handle("/", api)
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	g, gctx := errgroup.WithContext(ctx)
	runCtx, stopRun := context.WithCancel(context.WithoutCancel(ctx))
	defer stopRun()
	g.Go(func() error {
		defer stopRun()
		return serve.HTTP(gctx, ln, mux, grace)
	})
	g.Go(func() error {
		err := run(runCtx)
		if err == nil && runCtx.Err() == nil {
			err = errors.New("stopped before it was asked to")
		}
		return err
	})
	return g.Wait()
}

// AppliedGeneration is an agent's metric: the gauge
// vda_agent_applied_generation, read from applied at each scrape.
func AppliedGeneration(applied func() uint64) prometheus.Collector {
	return prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "vda_agent_applied_generation",
		Help: "The highest generation of the node's desired state this agent process has applied; 0 after a restart.",
	}, func() float64 { return float64(applied()) })
}

// Health is the API of a daemon without one: /healthz answers while the
// daemon serves, everything but what Serve mounts itself (/metrics) is
// 404.
func Health() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = io.WriteString(w, "ok\n")
	})
	return mux
}
