package syncup_test

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/virtual-disk-array/vda"
	"github.com/virtual-disk-array/vda/agent"
	"github.com/virtual-disk-array/vda/portal"
	vdav1 "github.com/virtual-disk-array/vda/proto/vda/v1"
	"github.com/virtual-disk-array/vda/spdk/model"
	"github.com/virtual-disk-array/vda/spdk/spdktest"
	"github.com/virtual-disk-array/vda/store"
	"github.com/virtual-disk-array/vda/store/storetest"
	"github.com/virtual-disk-array/vda/syncup"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden")

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// cluster is a whole control plane in one process: a portal over a store
// that pushes to real agents (over Connect, on loopback) driving fake
// SPDK applications on one NVMe-oF fabric.
type cluster struct {
	svc   *portal.Service
	fakes map[string]*spdktest.Server // by node name
}

func listener(port int) *vdav1.NvmfListener {
	return &vdav1.NvmfListener{Trtype: "tcp", Adrfam: "ipv4", Traddr: "127.0.0.1", Trsvcid: fmt.Sprint(port)}
}

func startCluster(t *testing.T, db *store.DB, dns, cns int) *cluster {
	ctx := context.Background()
	pusher, err := syncup.New(syncup.Config{DB: db, Logger: quiet(), Timeout: 30 * time.Second})
	require.NoError(t, err)
	svc, err := portal.New(portal.Config{DB: db, Logger: quiet(), Pusher: pusher, PushWait: 30 * time.Second})
	require.NoError(t, err)
	t.Cleanup(svc.Close)
	c := &cluster{svc: svc, fakes: map[string]*spdktest.Server{}}
	cfgs := make([]model.Config, dns+cns)
	fakes := spdktest.StartFabric(t, cfgs...)
	for i, f := range fakes {
		runCtx, cancel := context.WithCancel(ctx)
		var h http.Handler
		var run func(context.Context) error
		if i < dns {
			a, err := agent.NewDN(agent.Config{SPDK: f.Conn(), Logger: quiet()})
			require.NoError(t, err)
			h, run = agent.NewDNHandler(a, agent.HandlerConfig{Logger: quiet(), Insecure: true}), a.Run
		} else {
			a, err := agent.NewCN(agent.Config{SPDK: f.Conn(), Logger: quiet()})
			require.NoError(t, err)
			h, run = agent.NewCNHandler(a, agent.HandlerConfig{Logger: quiet(), Insecure: true}), a.Run
		}
		done := make(chan error, 1)
		go func() { done <- run(runCtx) }()
		srv := httptest.NewServer(h)
		t.Cleanup(func() {
			srv.Close()
			cancel()
			require.NoError(t, <-done)
		})
		addr := strings.TrimPrefix(srv.URL, "http://")
		if i < dns {
			name := fmt.Sprintf("dn%d", i+1)
			_, err := svc.CreateDn(ctx, connect.NewRequest(&vdav1.CreateDnRequest{Name: name, AgentAddress: addr, Listener: listener(4420 + i), Location: name}))
			require.NoError(t, err)
			_, err = svc.CreatePd(ctx, connect.NewRequest(&vdav1.CreatePdRequest{DnName: name, Name: "pd1", Backend: &vdav1.CreatePdRequest_Malloc{Malloc: &vdav1.PdMalloc{Size: 256 << 20}}}))
			require.NoError(t, err)
			c.fakes[name] = f
		} else {
			name := fmt.Sprintf("cn%d", i-dns+1)
			_, err := svc.CreateCn(ctx, connect.NewRequest(&vdav1.CreateCnRequest{Name: name, AgentAddress: addr, Listener: listener(4520 + i)}))
			require.NoError(t, err)
			c.fakes[name] = f
		}
	}
	return c
}

// roles renames everything generated (ids, the uuids derived from them,
// the nodes' listener ports) after the role it plays in the array, so that
// the state of the cluster compares with a golden file whatever ids and
// placement the run chose.
func (c *cluster) roles(t *testing.T, da *vdav1.Da) (*strings.Replacer, map[string]string) {
	ctx := context.Background()
	var pairs []string
	nodeRole := map[string]string{}
	add := func(from, to string) { pairs = append(pairs, from, to) }
	add(da.GetId(), "DA")
	add(vda.ArrayNamespaceUUID(vda.DAID(da.GetId())), "NSUUID-DA")
	add(vda.NGUID(vda.ArrayNamespaceUUID(vda.DAID(da.GetId()))), "NGUID-DA")
	for _, vd := range da.GetVds() {
		r := fmt.Sprintf("VD%d", vd.GetIndex())
		add(vd.GetId(), r)
		add(vda.VDNamespaceUUID(vda.VDID(vd.GetId())), "NSUUID-"+r)
		add(vda.NGUID(vda.VDNamespaceUUID(vda.VDID(vd.GetId()))), "NGUID-"+r)
		pd, err := c.svc.GetPd(ctx, connect.NewRequest(&vdav1.GetPdRequest{DnName: vd.GetDnName(), Name: vd.GetPdName()}))
		require.NoError(t, err)
		add(pd.Msg.GetPd().GetId(), fmt.Sprintf("PD%d", vd.GetIndex()))
		dn, err := c.svc.GetDn(ctx, connect.NewRequest(&vdav1.GetDnRequest{Name: vd.GetDnName()}))
		require.NoError(t, err)
		add("127.0.0.1:"+dn.Msg.GetDn().GetListener().GetTrsvcid(), fmt.Sprintf("dn-of-VD%d:port", vd.GetIndex()))
		nodeRole[vd.GetDnName()] = fmt.Sprintf("dn-of-VD%d", vd.GetIndex())
	}
	for _, ct := range da.GetCntlrs() {
		r := fmt.Sprintf("C%d", ct.GetIndex())
		add(ct.GetId(), r)
		add("127.0.0.1:"+ct.GetListener().GetTrsvcid(), "cn-of-"+r+":port")
		nodeRole[ct.GetCnName()] = "cn-of-" + r
	}
	for name := range c.fakes {
		if nodeRole[name] == "" && strings.HasPrefix(name, "dn") {
			pd, err := c.svc.GetPd(ctx, connect.NewRequest(&vdav1.GetPdRequest{DnName: name, Name: "pd1"}))
			require.NoError(t, err)
			add(pd.Msg.GetPd().GetId(), "PD-idle")
		}
	}
	return strings.NewReplacer(pairs...), nodeRole
}

// state dumps every fake SPDK, node by node in role order.
func (c *cluster) state(t *testing.T, rep *strings.Replacer, nodeRole map[string]string) []string {
	var out []string
	for name, f := range c.fakes {
		lines, err := spdktest.Dump(context.Background(), f.Client())
		require.NoError(t, err)
		role := nodeRole[name]
		if role == "" {
			role = "idle " + name[:2] // which node is idle is placement's choice
		}
		for _, l := range lines {
			out = append(out, role+" | "+rep.Replace(l))
		}
	}
	slices.Sort(out)
	return out
}

func golden(t *testing.T, name string, got []string) {
	t.Helper()
	path := filepath.Join("testdata", name+".golden")
	text := strings.Join(got, "\n") + "\n"
	if *update {
		require.NoError(t, os.WriteFile(path, []byte(text), 0o644))
		return
	}
	want, err := os.ReadFile(path)
	require.NoError(t, err, "go test -update creates it")
	require.Equal(t, string(want), text)
}

// TestCluster creates an array with two vds, two controllers and an
// exporter through the portal, which pushes to the agents: every object
// on every fake SPDK is checked, and the status the agents reported is
// what the API shows. Deleting everything leaves nothing VDA owns.
func TestCluster(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		c := startCluster(t, db, 3, 3)
		resp, err := c.svc.CreateDa(ctx, connect.NewRequest(&vdav1.CreateDaRequest{
			Name: "da1", Size: 64 << 20, Raid: &vdav1.CreateDaRequest_Raid0{Raid0: &vdav1.Raid0{VdCount: 2}}, CntlrCount: 2,
		}))
		require.NoError(t, err)
		da := resp.Msg.GetDa()
		assert.Equal(t, vdav1.Health_HEALTH_OK, da.GetHealth(), "the create waited for the agents: %v", da)
		_, err = c.svc.CreateExp(ctx, connect.NewRequest(&vdav1.CreateExpRequest{DaName: "da1", Name: "exp1", HostNqn: "nqn.2014-08.org.example:host1"}))
		require.NoError(t, err)

		got, err := c.svc.GetDa(ctx, connect.NewRequest(&vdav1.GetDaRequest{Name: "da1"}))
		require.NoError(t, err)
		da = got.Msg.GetDa()
		assert.Equal(t, vdav1.Health_HEALTH_OK, da.GetHealth())
		for _, x := range da.GetVds() {
			assert.Equal(t, vdav1.Health_HEALTH_OK, x.GetStatus().GetHealth(), "vd %d: %s", x.GetIndex(), x.GetStatus().GetError())
			assert.NotZero(t, x.GetStatus().GetReportedAtMs())
		}
		for _, x := range da.GetCntlrs() {
			assert.Equal(t, vdav1.Health_HEALTH_OK, x.GetStatus().GetHealth(), "cntlr %d: %s", x.GetIndex(), x.GetStatus().GetError())
		}
		rep, roles := c.roles(t, da)
		golden(t, "cluster", c.state(t, rep, roles))

		// Each pd's capacity is now the one its lvstore reported.
		pd, err := c.svc.GetPd(ctx, connect.NewRequest(&vdav1.GetPdRequest{DnName: da.GetVds()[0].GetDnName(), Name: "pd1"}))
		require.NoError(t, err)
		assert.Equal(t, vdav1.Health_HEALTH_OK, pd.Msg.GetPd().GetStatus().GetHealth())
		assert.EqualValues(t, 63*vda.ClusterSize, pd.Msg.GetPd().GetStatus().GetCapacity())

		_, err = c.svc.DeleteExp(ctx, connect.NewRequest(&vdav1.DeleteExpRequest{DaName: "da1", Name: "exp1"}))
		require.NoError(t, err)
		_, err = c.svc.DeleteDa(ctx, connect.NewRequest(&vdav1.DeleteDaRequest{Name: "da1"}))
		require.NoError(t, err)
		for name, f := range c.fakes {
			if strings.HasPrefix(name, "dn") {
				_, err := c.svc.DeletePd(ctx, connect.NewRequest(&vdav1.DeletePdRequest{DnName: name, Name: "pd1"}))
				require.NoError(t, err)
			}
			_ = f
		}
		c.svc.Close()
		for name, f := range c.fakes {
			lines, err := spdktest.Dump(ctx, f.Client())
			require.NoError(t, err)
			assert.Equal(t, []string{"transport TCP"}, lines, "%s still holds objects", name)
		}
	})
}
