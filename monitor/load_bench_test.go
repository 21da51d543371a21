package monitor_test

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
	"github.com/virtual-disk-array/vda"
	"github.com/virtual-disk-array/vda/monitor"
	vdav1 "github.com/virtual-disk-array/vda/proto/vda/v1"
	"github.com/virtual-disk-array/vda/proto/vda/v1/vdav1connect"
	"github.com/virtual-disk-array/vda/store"
	"github.com/virtual-disk-array/vda/store/storetest"
	"github.com/virtual-disk-array/vda/syncup"
)

// stubAgent answers a node's Status and Syncup at once, remembering the
// generation it was last sent: the monitor's side of the wire without
// SPDK.
type stubAgent struct {
	vdav1connect.UnimplementedDnAgentServiceHandler
	applied atomic.Uint64
}

func (s *stubAgent) status() *vdav1.AgentStatusResponse {
	return &vdav1.AgentStatusResponse{AppliedGeneration: s.applied.Load(), SpdkReachable: true, SpdkVersion: "stub"}
}

func (s *stubAgent) Status(context.Context, *connect.Request[vdav1.AgentStatusRequest]) (*connect.Response[vdav1.AgentStatusResponse], error) {
	return connect.NewResponse(s.status()), nil
}

func (s *stubAgent) Syncup(_ context.Context, req *connect.Request[vdav1.DnSyncupRequest]) (*connect.Response[vdav1.DnSyncupResponse], error) {
	g := req.Msg.GetDesired().GetGeneration()
	s.applied.Store(g)
	return connect.NewResponse(&vdav1.DnSyncupResponse{Report: &vdav1.DnReport{Generation: g}}), nil
}

type stubCN struct {
	vdav1connect.UnimplementedCnAgentServiceHandler
	s *stubAgent
}

func (c stubCN) Status(ctx context.Context, r *connect.Request[vdav1.AgentStatusRequest]) (*connect.Response[vdav1.AgentStatusResponse], error) {
	return c.s.Status(ctx, r)
}

func (c stubCN) Syncup(_ context.Context, req *connect.Request[vdav1.CnSyncupRequest]) (*connect.Response[vdav1.CnSyncupResponse], error) {
	g := req.Msg.GetDesired().GetGeneration()
	c.s.applied.Store(g)
	return connect.NewResponse(&vdav1.CnSyncupResponse{Report: &vdav1.CnReport{Generation: g}}), nil
}

// BenchmarkMonitorLoad: one monitor covering 1,000 nodes (500 dns, 500
// cns, stub agents that answer at once) and 10,000 arrays of 2 vds and 2
// controllers, on SQLite. It measures the first convergence (every node
// pushed once: "storm") and then 5 s of steady state (heartbeats only):
// the store transactions per second the monitor and its pusher make, the
// heartbeats per second, and the CPU the process uses (the stub agents'
// HTTP serving included).
//
//	go test ./monitor -run '^$' -bench MonitorLoad -benchtime 1x -timeout 30m
func BenchmarkMonitorLoad(b *testing.B) {
	const dns, cns, arrays = 500, 500, 10000
	db := storetest.Open(b, backendFor(b, store.SQLite))
	ctx := context.Background()

	mux := http.NewServeMux()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(b, err)
	srv := &http.Server{Handler: mux}
	go func() { _ = srv.Serve(ln) }()
	b.Cleanup(func() { _ = srv.Close() })
	stubs := make([]*stubAgent, dns+cns)
	addr := func(i int) string { return fmt.Sprintf("http://%s/n%d", ln.Addr(), i) }
	for i := range stubs {
		stubs[i] = &stubAgent{}
		var path string
		var h http.Handler
		if i < dns {
			path, h = vdav1connect.NewDnAgentServiceHandler(stubs[i])
		} else {
			path, h = vdav1connect.NewCnAgentServiceHandler(stubCN{s: stubs[i]})
		}
		prefix := fmt.Sprintf("/n%d", i)
		mux.Handle(prefix+path, http.StripPrefix(prefix, h))
	}

	dnIDs, pdIDs, cnIDs := make([]vda.DNID, dns), make([]vda.PDID, dns), make([]vda.CNID, cns)
	require.NoError(b, db.Update(ctx, func(ctx context.Context, tx *store.Tx) error {
		for i := range dns {
			dn := store.DN{NodeSpec: loadNode(fmt.Sprintf("dn%d", i), addr(i), uint32(i*store.HashSpace/(dns+cns)))}
			if err := tx.InsertDN(ctx, &dn); err != nil {
				return err
			}
			pd := store.PD{DNID: dn.ID, Name: "pd1", Kind: store.PDMalloc, Size: 1 << 40}
			if err := tx.InsertPD(ctx, &pd); err != nil {
				return err
			}
			dnIDs[i], pdIDs[i] = dn.ID, pd.ID
		}
		for i := range cns {
			cn := store.CN{NodeSpec: loadNode(fmt.Sprintf("cn%d", i), addr(dns+i), uint32((dns+i)*store.HashSpace/(dns+cns)))}
			if err := tx.InsertCN(ctx, &cn); err != nil {
				return err
			}
			cnIDs[i] = cn.ID
		}
		return nil
	}))
	for chunk := 0; chunk < arrays; chunk += 500 {
		require.NoError(b, db.Update(ctx, func(ctx context.Context, tx *store.Tx) error {
			for i := chunk; i < chunk+500; i++ {
				da := store.DA{Name: fmt.Sprintf("da%d", i), Size: 8 << 20, RaidLevel: store.Raid0, VDCount: 2, StripSizeKB: 64, CntlrCount: 2}
				vds := []store.VD{{Index: 0, DNID: dnIDs[i%dns], PDID: pdIDs[i%dns], Size: 4 << 20},
					{Index: 1, DNID: dnIDs[(i+1)%dns], PDID: pdIDs[(i+1)%dns], Size: 4 << 20}}
				cs := []store.Cntlr{{Index: 0, CNID: cnIDs[i%cns], Primary: true}, {Index: 1, CNID: cnIDs[(i+1)%cns]}}
				if err := tx.InsertDA(ctx, &da, vds, cs); err != nil {
					return err
				}
			}
			return nil
		}))
	}

	reg := prometheus.NewRegistry()
	pusher, err := syncup.New(syncup.Config{DB: db, Logger: quiet()})
	require.NoError(b, err)
	m, err := monitor.New(monitor.Config{DB: db, Pusher: pusher, Logger: quiet(), Name: "m1", Registerer: reg,
		Period: time.Second})
	require.NoError(b, err)
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)

	b.ResetTimer()
	for b.Loop() {
		start, cpu0 := time.Now(), cpuTime()
		go func() { done <- m.Run(runCtx) }()
		eventually(b, 20*time.Minute, func() error {
			for i, s := range stubs {
				if s.applied.Load() == 0 {
					return notYet("node %d not pushed", i)
				}
			}
			return nil
		})
		storm, stormCPU := time.Since(start), cpuTime()-cpu0
		tx0 := storeTx(b, reg)
		time.Sleep(200 * time.Millisecond) // the last reports recorded
		tx1, hb1, cpu1, t1 := storeTx(b, reg), counter(b, reg, "vda_monitor_heartbeats_total"), cpuTime(), time.Now()
		time.Sleep(5 * time.Second)
		tx2, hb2, cpu2, t2 := storeTx(b, reg), counter(b, reg, "vda_monitor_heartbeats_total"), cpuTime(), time.Now()
		steady := t2.Sub(t1).Seconds()
		b.ReportMetric(storm.Seconds(), "storm-s")
		b.ReportMetric(float64(tx0)/storm.Seconds(), "storm-tx/s")
		b.ReportMetric(stormCPU.Seconds()/storm.Seconds(), "storm-cpu-cores")
		b.ReportMetric(float64(tx2-tx1)/steady, "steady-tx/s")
		b.ReportMetric((hb2-hb1)/steady, "heartbeats/s")
		b.ReportMetric((cpu2-cpu1).Seconds()/steady, "steady-cpu-cores")
		b.ReportMetric(0, "ns/op")
	}
	cancel()
	require.NoError(b, <-done)
}

func loadNode(name, addr string, hash uint32) store.NodeSpec {
	return store.NodeSpec{Name: name, AgentAddr: addr, HashCode: hash,
		Listener: store.Listener{TrType: "tcp", AdrFam: "ipv4", TrAddr: "127.0.0.1", TrSvcID: "4420"}}
}

// cpuTime is the process's user and system CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// storeTx counts the store transactions made so far: the monitor's own
// (vda_monitor_store_seconds) and its pushes' (each reads the node's state
// in one transaction and records the report in another).
func storeTx(b *testing.B, reg *prometheus.Registry) uint64 {
	var n uint64
	mfs, err := reg.Gather()
	require.NoError(b, err)
	for _, mf := range mfs {
		switch mf.GetName() {
		case "vda_monitor_store_seconds":
			for _, m := range mf.GetMetric() {
				n += m.GetHistogram().GetSampleCount()
			}
		case "vda_monitor_syncup_seconds":
			for _, m := range mf.GetMetric() {
				n += 2 * m.GetHistogram().GetSampleCount()
			}
		}
	}
	return n
}

func counter(b *testing.B, reg *prometheus.Registry, name string) float64 {
	var n float64
	mfs, err := reg.Gather()
	require.NoError(b, err)
	for _, mf := range mfs {
		if mf.GetName() == name {
			for _, m := range mf.GetMetric() {
				n += m.GetCounter().GetValue()
			}
		}
	}
	return n
}
