package agent_test

import (
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/virtual-disk-array/vda"
	"github.com/virtual-disk-array/vda/agent"
	"github.com/virtual-disk-array/vda/spdk/spdktest"
)

func lis(port string) agent.Listener {
	return agent.Listener{Trtype: "TCP", Adrfam: "IPv4", Traddr: "127.0.0.1", Trsvcid: port}
}

func TestCNSmoke(t *testing.T) {
	srvs := spdktest.StartFabric(t, spdkCfg(), spdkCfg(), spdkCfg())
	dn, cn1, cn2 := runDN(t, srvs[0].Conn()), runCN(t, srvs[1].Conn()), runCN(t, srvs[2].Conn())
	d := agent.DN{ID: "dn1", Generation: 1, Listener: lis("4420"),
		PDs: []agent.PD{{ID: "pd1", Kind: agent.PDMalloc, Size: 64 << 20, VDs: []agent.VD{{ID: "vd1", Size: 8 << 20, Primary: "c1"}, {ID: "vd2", Size: 8 << 20, Primary: "c1"}}}}}
	rep, err := dn.Syncup(ctxT(t), d)
	require.NoError(t, err)
	require.True(t, rep.OK(), "%+v", rep)
	c1 := agent.CN{ID: "cn1", Generation: 1, Listener: lis("4430"), Cntlrs: []agent.Cntlr{{ID: "c1", DA: "da1", StripSizeKB: 64,
		Primary:  &agent.Primary{VDs: []agent.VDPath{{ID: "vd1", Listener: lis("4420")}, {ID: "vd2", Listener: lis("4420")}}, Secondaries: []vda.CntlrID{"c2"}},
		HostNQNs: []string{"nqn.2014-08.org.example:host1"}}}}
	rep, err = cn1.Syncup(ctxT(t), c1)
	require.NoError(t, err)
	require.True(t, rep.OK(), "%+v", rep)
	c2 := agent.CN{ID: "cn2", Generation: 1, Listener: lis("4440"), Cntlrs: []agent.Cntlr{{ID: "c2", DA: "da1", StripSizeKB: 64,
		Secondary: &agent.Secondary{Primary: "c1", Listener: lis("4430")},
		HostNQNs:  []string{"nqn.2014-08.org.example:host1"}}}}
	rep, err = cn2.Syncup(ctxT(t), c2)
	require.NoError(t, err)
	require.True(t, rep.OK(), "%+v", rep)
	for i, s := range srvs {
		for _, l := range dump(t, s.Client()) {
			t.Log(i, l)
		}
	}
}
