package monitor_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/stretchr/testify/require"
	"github.com/virtual-disk-array/vda/monitor"
	vdav1 "github.com/virtual-disk-array/vda/proto/vda/v1"
	"github.com/virtual-disk-array/vda/store"
	"github.com/virtual-disk-array/vda/store/storetest"
)

// BenchmarkFailover measures, on an in-process cluster (SQLite, agents
// over Connect on loopback, fake SPDKs), the time from a cn's death (its
// agent and SPDK killed) to every array whose primary it held reporting
// its new primary ready, split into detection (kill → the monitor records
// the cn failed) and reconfiguration (→ every dn and the surviving cn
// report the new generation applied without error). The cluster holds n
// arrays of 2 vds and 2 controllers on 4 dns and 2 cns; the allocator puts
// every primary on the same cn (equal loads, lowest id), the one killed. The monitor beats every 200 ms and fails a node
// after 3 misses.
//
//	go test ./monitor -run '^$' -bench Failover -benchtime 1x -timeout 30m
func BenchmarkFailover(b *testing.B) {
	for _, n := range []int{1, 100, 1000} {
		b.Run(fmt.Sprintf("arrays=%d", n), func(b *testing.B) {
			db := storetest.Open(b, backendFor(b, store.SQLite))
			l := newLabWith(b, db, 4, 2, labOptions{pdSize: 64 << 30})
			ctx := context.Background()
			for i := range n {
				_, err := l.svc.CreateDa(ctx, connect.NewRequest(&vdav1.CreateDaRequest{
					Name: fmt.Sprintf("da%d", i), Size: 8 << 20, CntlrCount: 2,
					Raid: &vdav1.CreateDaRequest_Raid0{Raid0: &vdav1.Raid0{VdCount: 2}},
				}))
				require.NoError(b, err)
			}
			const period = 200 * time.Millisecond
			l.monitor("m1", func(c *monitor.Config) {
				c.Period, c.StatusTimeout = period, period
				c.Logger = quiet()
			})
			all := func() error {
				for _, name := range []string{"dn1", "dn2", "dn3", "dn4", "cn1", "cn2"} {
					if err := l.converged(name); err != nil {
						return err
					}
				}
				return nil
			}
			eventually(b, 20*time.Minute, all)

			victim, survivor := "cn1", "cn2"
			if l.primariesOn("cn2") > l.primariesOn("cn1") {
				victim, survivor = "cn2", "cn1"
			}
			affected := l.primariesOn(victim)
			b.ResetTimer()
			for b.Loop() {
				l.kill(victim)
				killed := l.nodes[victim].downAt
				eventually(b, 20*time.Minute, func() error {
					if l.health(victim) != store.HealthFailed {
						return notYet("%s not failed yet", victim)
					}
					for _, name := range []string{"dn1", "dn2", "dn3", "dn4", survivor} {
						if err := l.converged(name); err != nil {
							return err
						}
					}
					return nil
				})
				ready := time.Since(killed)
				var failedAt time.Time
				for _, e := range l.events(victim) {
					if e.To == "failed" {
						failedAt = e.At
					}
				}
				require.False(b, failedAt.IsZero(), "no failed event")
				// Event times are in milliseconds.
				detected := failedAt.Sub(killed.Truncate(time.Millisecond))
				require.Zero(b, l.primariesOn(victim), "every primary moved")
				b.ReportMetric(float64(affected), "arrays")
				b.ReportMetric(float64(detected.Milliseconds()), "detect-ms")
				b.ReportMetric(float64((ready - detected).Milliseconds()), "reconfigure-ms")
				b.ReportMetric(float64(ready.Milliseconds()), "total-ms")
				b.ReportMetric(0, "ns/op")
			}
		})
	}
}

// primariesOn counts the primary controllers on cn name.
func (l *lab) primariesOn(name string) int {
	n := 0
	require.NoError(l.t, l.db.View(context.Background(), func(ctx context.Context, tx *store.Tx) error {
		cn, err := tx.CN(ctx, name)
		if err != nil {
			return err
		}
		cs, err := tx.CntlrsOnCN(ctx, cn.ID)
		for _, c := range cs {
			if c.Primary {
				n++
			}
		}
		return err
	}))
	return n
}

// health is node name's recorded health.
func (l *lab) health(name string) store.Health {
	var h store.Health
	require.NoError(l.t, l.db.View(context.Background(), func(ctx context.Context, tx *store.Tx) error {
		cn, err := tx.CN(ctx, name)
		if err != nil {
			return err
		}
		st, err := tx.CNStatus(ctx, cn.ID)
		h = st.Health
		return err
	}))
	return h
}
