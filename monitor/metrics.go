package monitor

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are a monitor's Prometheus series, all prefixed vda_monitor_.
type metrics struct {
	syncups    *prometheus.CounterVec   // kind, result
	syncupTime *prometheus.HistogramVec // kind
	heartbeats *prometheus.CounterVec   // kind, result
	failovers  *prometheus.CounterVec   // result
	nodes      *prometheus.GaugeVec     // kind, state
	storeTime  *prometheus.HistogramVec // op
	rounds     prometheus.Counter
	shards     prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		syncups: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vda_monitor_syncups_total", Help: "Syncups pushed to agents, by node kind and result (ok, error: the node reported errors, failed: the push did not complete, stale: something newer exists).",
		}, []string{"kind", "result"}),
		syncupTime: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "vda_monitor_syncup_seconds", Help: "Time a syncup took, from reading the desired state to recording the report.",
			Buckets: prometheus.ExponentialBuckets(0.001, 4, 10),
		}, []string{"kind"}),
		heartbeats: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vda_monitor_heartbeats_total", Help: "Heartbeats sent, by node kind and result (ok, miss).",
		}, []string{"kind", "result"}),
		failovers: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vda_monitor_failovers_total", Help: "Arrays failed over, by result (ok, no_primary, error).",
		}, []string{"result"}),
		nodes: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "vda_monitor_nodes", Help: "Nodes this monitor covers, by kind and detector state.",
		}, []string{"kind", "state"}),
		storeTime: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "vda_monitor_store_seconds", Help: "Time of the monitor's store transactions, by operation.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 4, 10),
		}, []string{"op"}),
		rounds: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "vda_monitor_rounds_total", Help: "Monitor rounds (one heartbeat of every covered node).",
		}),
		shards: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "vda_monitor_shards", Help: "Shards of the node hash space this monitor holds leases on (with leases).",
		}),
	}
	if reg != nil {
		reg.MustRegister(m.syncups, m.syncupTime, m.heartbeats, m.failovers, m.nodes, m.storeTime, m.rounds, m.shards)
	}
	return m
}

func kindOf(cn bool) string {
	if cn {
		return "cn"
	}
	return "dn"
}

// since observes the time since start in h.
func since(h prometheus.Observer, start time.Time) { h.Observe(time.Since(start).Seconds()) }
