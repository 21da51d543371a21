package agent_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/virtual-disk-array/vda"
	"github.com/virtual-disk-array/vda/agent"
	"github.com/virtual-disk-array/vda/spdk/spdktest"
)

// BenchmarkCNSyncup measures one syncup of a cn that holds n primary
// controllers (each striping 2 vds of one dn) after one array changed (an
// exporter's host is added or removed): wall time per syncup, and the SPDK
// calls it made, all and state-changing. observe=scoped is the agent as it
// runs, asking SPDK only about the changed array's objects;
// observe=listed lists everything at every syncup (RelistAfter < 0), for
// comparison.
//
//	go test ./agent -run '^$' -bench CNSyncup -benchtime 20x
func BenchmarkCNSyncup(b *testing.B) {
	for _, bc := range []struct {
		n       int
		observe string
	}{{1, "scoped"}, {100, "scoped"}, {1000, "scoped"}, {1, "listed"}, {100, "listed"}, {1000, "listed"}} {
		n := bc.n
		b.Run(fmt.Sprintf("controllers=%d/observe=%s", n, bc.observe), func(b *testing.B) {
			srvs := spdktest.StartFabric(b, spdkCfg(), spdkCfg())
			dnA, err := agent.NewDN(agent.Config{SPDK: srvs[0].Conn(), Logger: quiet()})
			require.NoError(b, err)
			run(b, dnA.Run)
			rec := &recorder{next: srvs[1].Conn()}
			relist := time.Duration(0)
			if bc.observe == "listed" {
				relist = -1
			}
			cnA, err := agent.NewCN(agent.Config{SPDK: rec, Logger: quiet(), RelistAfter: relist})
			require.NoError(b, err)
			run(b, cnA.Run)

			dn := agent.DN{ID: "dn1", Generation: 1, Listener: lis("4420")}
			cn := agent.CN{ID: "cn1", Generation: 1, Listener: lis("4430")}
			pd := agent.PD{ID: "pd1", Kind: agent.PDMalloc, Size: uint64(2*n+1) * 4 * mib * 2}
			for i := range n {
				ct := agent.Cntlr{ID: vda.CntlrID(fmt.Sprintf("c%d", i)), DA: vda.DAID(fmt.Sprintf("da%d", i)), StripSizeKB: 64,
					HostNQNs: []string{host1}, Primary: &agent.Primary{}}
				for j := range 2 {
					id := vda.VDID(fmt.Sprintf("vd%d-%d", i, j))
					pd.VDs = append(pd.VDs, agent.VD{ID: id, Size: 4 * mib, Primary: ct.ID})
					ct.Primary.VDs = append(ct.Primary.VDs, agent.VDPath{ID: id, Listener: lis("4420")})
				}
				cn.Cntlrs = append(cn.Cntlrs, ct)
			}
			dn.PDs = []agent.PD{pd}
			// Two syncups: the first creates the pd's bdev and waits for
			// examine, which a large node may not finish in one pass.
			for range 2 {
				rep, err := dnA.Syncup(ctxT(b), dn)
				require.NoError(b, err)
				if rep.OK() {
					break
				}
				dn.Generation++
			}
			rep, err := cnA.Syncup(ctxT(b), cn)
			require.NoError(b, err)
			require.True(b, rep.OK(), "%+v", rep.Error)
			// The syncup after building the whole node lists it again: what
			// it built is too much to ask about object by object.
			cn.Generation++
			_, err = cnA.Syncup(ctxT(b), cn)
			require.NoError(b, err)

			calls0, mut0 := rec.counts()
			b.ResetTimer()
			for i := 0; b.Loop(); i++ {
				cn.Generation++
				if i%2 == 0 {
					cn.Cntlrs[0].HostNQNs = []string{host1, host2}
				} else {
					cn.Cntlrs[0].HostNQNs = []string{host1}
				}
				rep, err := cnA.Syncup(ctxT(b), cn)
				if err != nil || !rep.OK() {
					b.Fatalf("syncup: %v %+v", err, rep.Error)
				}
			}
			calls, mut := rec.counts()
			b.ReportMetric(float64(calls-calls0)/float64(b.N), "spdk-calls/op")
			b.ReportMetric(float64(mut-mut0)/float64(b.N), "changes/op")
		})
	}
}
