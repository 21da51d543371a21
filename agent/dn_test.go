package agent_test

import (
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/virtual-disk-array/vda/agent"
	"github.com/virtual-disk-array/vda/spdk/model"
)

func spdkCfg() model.Config { return model.Config{} }

func TestDNFromEmpty(t *testing.T) {
	srv := fake(t)
	a := runDN(t, srv.Conn())
	d := agent.DN{ID: "dn1", Generation: 1, Listener: agent.Listener{Trtype: "TCP", Adrfam: "IPv4", Traddr: "127.0.0.1", Trsvcid: "4420"},
		PDs: []agent.PD{{ID: "pd1", Kind: agent.PDMalloc, Size: 64 << 20, VDs: []agent.VD{{ID: "vd1", Size: 8 << 20, Primary: "c1"}}}}}
	rep, err := a.Syncup(ctxT(t), d)
	require.NoError(t, err)
	t.Logf("%+v", rep)
	for _, l := range dump(t, srv.Client()) {
		t.Log(l)
	}
}
