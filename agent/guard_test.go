package agent_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"testing"

	"connectrpc.com/connect"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/virtual-disk-array/vda"
	"github.com/virtual-disk-array/vda/agent"
	vdav1 "github.com/virtual-disk-array/vda/proto/vda/v1"
	"github.com/virtual-disk-array/vda/proto/vda/v1/vdav1connect"
	"github.com/virtual-disk-array/vda/spdk"
	"github.com/virtual-disk-array/vda/spdk/spdktest"
)

// guardedDN is a dn agent with guard g over a fake SPDK holding one pd
// and vds vd1..vd<n>: n+1 VDA-owned resources.
func guardedDN(t *testing.T, g agent.DeleteGuard, n int) (*dnNode, agent.DN) {
	t.Helper()
	srv := spdktest.Start(t, spdkCfg())
	rec := &recorder{next: srv.Conn()}
	a, err := agent.NewDN(agent.Config{SPDK: rec, Logger: quiet(), DeleteGuard: g})
	require.NoError(t, err)
	run(t, a.Run)
	node := &dnNode{srv: srv, rec: rec, a: a}
	d := agent.DN{ID: "dn1", Listener: lis("4420"), PDs: []agent.PD{{ID: "pd1", Kind: agent.PDMalloc, Size: 256 * mib, VDs: manyVDs(n)}}}
	requireOK(t, node.syncup(t, d))
	return node, d
}

func manyVDs(n int) []agent.VD {
	var out []agent.VD
	for i := 1; i <= n; i++ {
		out = append(out, agent.VD{ID: vda.VDID(fmt.Sprintf("vd%d", i)), Size: 8 * mib, Primary: "c1"})
	}
	return out
}

// keepVDs is d with only its first k vds.
func keepVDs(d agent.DN, k int) agent.DN {
	d.PDs = []agent.PD{d.PDs[0]}
	d.PDs[0].VDs = d.PDs[0].VDs[:k]
	return d
}

const refusal97 = "refusing to delete 7 of 9 VDA-owned resources at once (more than 50%); " +
	"if this is intended, an admin can push it with `vdactl dn syncup <name> --force`"

// TestDeleteGuardDN: a desired state that deletes more than the floor and
// the share of a dn's resources changes nothing, is not applied, says why,
// and is applied when forced; smaller deletes go through.
func TestDeleteGuardDN(t *testing.T) {
	pd2 := agent.PD{ID: "pd2", Kind: agent.PDMalloc, Size: 64 * mib, VDs: []agent.VD{{ID: "vd99", Size: 8 * mib, Primary: "c1"}}}
	tests := []struct {
		name    string
		guard   agent.DeleteGuard
		desired func(agent.DN) agent.DN // of a dn with pd1 and vd1..vd8
		refused string                  // the report's error, "" if applied
	}{
		{"empty state", agent.DeleteGuard{}, func(d agent.DN) agent.DN { d.PDs = nil; return d },
			"refusing to delete 9 of 9 VDA-owned resources at once (more than 50%)"},
		{"7 of 9", agent.DeleteGuard{}, func(d agent.DN) agent.DN { return keepVDs(d, 1) }, refusal97},
		{"refused states create nothing either", agent.DeleteGuard{}, func(d agent.DN) agent.DN {
			d = keepVDs(d, 1)
			d.PDs = append(d.PDs, pd2)
			return d
		}, refusal97},
		{"5 of 9 is above the share", agent.DeleteGuard{}, func(d agent.DN) agent.DN { return keepVDs(d, 3) },
			"refusing to delete 5 of 9"},
		{"4 is the floor", agent.DeleteGuard{}, func(d agent.DN) agent.DN { return keepVDs(d, 4) }, ""},
		{"within the share", agent.DeleteGuard{Floor: 1}, func(d agent.DN) agent.DN { return keepVDs(d, 4) }, ""},
		{"above a smaller share", agent.DeleteGuard{Floor: 1, Share: 0.25}, func(d agent.DN) agent.DN { return keepVDs(d, 5) },
			"refusing to delete 3 of 9 VDA-owned resources at once (more than 25%)"},
		{"a higher floor", agent.DeleteGuard{Floor: 9}, func(d agent.DN) agent.DN { d.PDs = nil; return d }, ""},
		{"off", agent.DeleteGuard{Off: true}, func(d agent.DN) agent.DN { d.PDs = nil; return d }, ""},
		{"creates only", agent.DeleteGuard{}, func(d agent.DN) agent.DN { d.PDs = append(d.PDs, pd2); return d }, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			n, d := guardedDN(t, tt.guard, 8)
			c := n.srv.Client()
			before := dump(t, c)
			applied := n.a.AppliedGeneration()
			want := tt.desired(d)

			n.gen++
			want.Generation = n.gen
			rep, err := n.a.Syncup(ctxT(t), want)
			if tt.refused == "" {
				require.NoError(t, err)
				requireOK(t, rep)
				assert.Equal(t, want.Generation, n.a.AppliedGeneration())
				assert.Equal(t, built(t, want), dump(t, c))
				return
			}
			require.ErrorIs(t, err, agent.ErrMassDelete)
			var ge *agent.GuardError
			require.True(t, errors.As(err, &ge))
			assert.Equal(t, want.Generation, ge.Generation)
			assert.Equal(t, "dn", ge.Node)
			assert.Contains(t, rep.Error, tt.refused)
			assert.Equal(t, err.Error(), rep.Error)
			assert.Equal(t, want.Generation, rep.Generation)
			assert.False(t, rep.OK())
			assert.Empty(t, rep.PDs, "a refused state reports no resource: none was looked at")
			assert.Equal(t, before, dump(t, c), "a refused syncup changes nothing")
			assert.Equal(t, applied, n.a.AppliedGeneration(), "a refused generation is not applied")

			// Sent again, the same generation is judged again.
			_, err = n.a.Syncup(ctxT(t), want)
			require.ErrorIs(t, err, agent.ErrMassDelete)
			assert.Equal(t, before, dump(t, c))

			// An admin forces it.
			rep, err = n.a.SyncupForce(ctxT(t), want)
			require.NoError(t, err)
			requireOK(t, rep)
			assert.Equal(t, want.Generation, n.a.AppliedGeneration())
			assert.Equal(t, built(t, want), dump(t, c))
		})
	}
}

// built is what building d from empty leaves in SPDK.
func built(t *testing.T, d agent.DN) []string {
	t.Helper()
	n := newDNNode(t, nil)
	n.force = true
	requireOK(t, n.syncup(t, d))
	return dump(t, n.srv.Client())
}

// TestDeleteGuardForgets: a refused syncup leaves the agent nothing to
// scope the next one with, which lists everything.
func TestDeleteGuardForgets(t *testing.T) {
	n, d := guardedDN(t, agent.DeleteGuard{}, 8)
	n.a.AlwaysScope()
	requireOK(t, n.syncup(t, keepVDs(d, 7)))
	listed := n.rec.listed()
	requireOK(t, n.syncup(t, keepVDs(d, 6)))
	require.Equal(t, listed, n.rec.listed(), "a converged node scopes its next syncup")

	n.gen++
	empty := agent.DN{ID: "dn1", Generation: n.gen, Listener: lis("4420")}
	_, err := n.a.Syncup(ctxT(t), empty)
	require.ErrorIs(t, err, agent.ErrMassDelete)
	listed = n.rec.listed()
	requireOK(t, n.syncup(t, keepVDs(d, 5)))
	assert.Greater(t, n.rec.listed(), listed, "after a refusal the agent lists everything")
}

// TestDeleteGuardCN: a cn refuses to drop most of its controllers at once.
func TestDeleteGuardCN(t *testing.T) {
	srv := spdktest.Start(t, spdkCfg())
	c, ctx := srv.Client(), ctxT(t)
	// Six arrays' subsystems, as a cn holding six controllers has them.
	for i := 1; i <= 6; i++ {
		require.NoError(t, c.NvmfCreateSubsystem(ctx, spdk.NvmfCreateSubsystemRequest{NQN: vda.ArrayNQN(vda.DAID(fmt.Sprintf("da%d", i)))}))
	}
	before := dump(t, c)
	a := runCN(t, srv.Conn())
	cn := agent.CN{ID: "cn1", Generation: 1, Listener: cn1L}

	rep, err := a.Syncup(ctx, cn)
	require.ErrorIs(t, err, agent.ErrMassDelete)
	assert.Equal(t, "refusing to delete 6 of 6 VDA-owned resources at once (more than 50%); "+
		"if this is intended, an admin can push it with `vdactl cn syncup <name> --force`", rep.Error)
	assert.Equal(t, before, dump(t, c))
	assert.Zero(t, a.AppliedGeneration())

	rep, err = a.SyncupForce(ctx, cn)
	require.NoError(t, err)
	requireOK(t, rep)
	assert.NotContains(t, fmt.Sprint(dump(t, c)), "io.vda:da-")
	assert.Equal(t, uint64(1), a.AppliedGeneration())
}

// TestDeleteGuardService: over Connect, a refusal is a report with the
// node error (what the control plane records), never FailedPrecondition;
// the request's force applies it.
func TestDeleteGuardService(t *testing.T) {
	n, _ := guardedDN(t, agent.DeleteGuard{}, 8)
	srv := httptest.NewServer(agent.NewDNHandler(n.a, agent.HandlerConfig{Logger: quiet(), Insecure: true}))
	t.Cleanup(srv.Close)
	client := vdav1connect.NewDnAgentServiceClient(http.DefaultClient, srv.URL)
	c := n.srv.Client()
	before := dump(t, c)
	empty := &vdav1.DnDesired{DnId: "dn1", Generation: n.gen + 1, Listener: wireListener("4420")}

	resp, err := client.Syncup(ctxT(t), connect.NewRequest(&vdav1.DnSyncupRequest{Desired: empty}))
	require.NoError(t, err)
	assert.Equal(t, "refusing to delete 9 of 9 VDA-owned resources at once (more than 50%); "+
		"if this is intended, an admin can push it with `vdactl dn syncup <name> --force`", resp.Msg.GetReport().GetError())
	assert.Equal(t, empty.Generation, resp.Msg.GetReport().GetGeneration())
	assert.Equal(t, before, dump(t, c))
	assert.Equal(t, n.gen, n.a.AppliedGeneration())

	resp, err = client.Syncup(ctxT(t), connect.NewRequest(&vdav1.DnSyncupRequest{Desired: empty, Force: true}))
	require.NoError(t, err)
	assert.Empty(t, resp.Msg.GetReport().GetError())
	assert.Equal(t, empty.Generation, n.a.AppliedGeneration())
	assert.Equal(t, built(t, agent.DN{ID: "dn1", Generation: 1, Listener: lis("4420")}), dump(t, c))
}

func TestDeleteGuardConfig(t *testing.T) {
	for _, g := range []agent.DeleteGuard{{Share: -0.1}, {Share: 1.5}, {Share: math.NaN()}, {Floor: -1}} {
		_, err := agent.NewDN(agent.Config{SPDK: fakeCaller{}, DeleteGuard: g})
		require.ErrorIs(t, err, vda.ErrInvalidArgument, "%+v", g)
		assert.Contains(t, err.Error(), "DeleteGuard")
	}
	for _, g := range []agent.DeleteGuard{{}, {Share: 1, Floor: 1}, {Share: 0.01, Floor: 100}, {Off: true}} {
		_, err := agent.NewCN(agent.Config{SPDK: fakeCaller{}, DeleteGuard: g})
		require.NoError(t, err, "%+v", g)
	}
}

type fakeCaller struct{}

func (fakeCaller) Call(ctx context.Context, method string, params, result any) error {
	return errors.New("not connected")
}

// TestLvstoreOnlyWhenEmpty: the lvstore of a removed pd goes only once it
// is observed holding no lvol at all. Its VDA lvols go first (a pass
// later, the lvstore and its bdev); a foreign lvol keeps it for good.
func TestLvstoreOnlyWhenEmpty(t *testing.T) {
	actual := func(lvols ...spdk.Lvol) *agent.Actual {
		a := &agent.Actual{
			Bdevs:    map[string]spdk.Bdev{"vda-pd-pd1": {Name: "vda-pd-pd1", ProductName: "Malloc disk", BlockSize: 512, NumBlocks: 131072}},
			Names:    map[string]string{"vda-pd-pd1": "vda-pd-pd1"},
			Lvstores: map[string]spdk.Lvstore{"vda-lvs-pd1": {Name: "vda-lvs-pd1", BaseBdev: "vda-pd-pd1"}},
			Lvols:    map[string]spdk.Lvol{},
		}
		for _, l := range lvols {
			l.Lvs.Name = "vda-lvs-pd1"
			l.Alias = "vda-lvs-pd1/" + l.Name
			a.Lvols[l.Alias] = l
		}
		return a
	}
	methods := func(p agent.Plan) []string {
		var out []string
		for _, s := range p.Steps {
			if s.Op.Method != "nvmf_create_transport" {
				out = append(out, s.Op.Method+" "+fmt.Sprint(s.Op.Params))
			}
		}
		return out
	}
	empty := agent.DN{ID: "dn1", Generation: 1, Listener: lis("4420")}
	tests := []struct {
		name     string
		a        *agent.Actual
		steps    []string
		problems string
	}{
		{"VDA lvols first", actual(spdk.Lvol{Name: "vda-vd-vd1"}, spdk.Lvol{Name: "vda-vd-vd2"}),
			[]string{"bdev_lvol_delete {vda-lvs-pd1/vda-vd-vd1}", "bdev_lvol_delete {vda-lvs-pd1/vda-vd-vd2}"}, ""},
		{"then the empty lvstore and its bdev", actual(),
			[]string{"bdev_lvol_delete_lvstore { vda-lvs-pd1}", "bdev_malloc_delete {vda-pd-pd1}"}, ""},
		{"a foreign lvol keeps it", actual(spdk.Lvol{Name: "vda-vd-vd1"}, spdk.Lvol{Name: "mine"}),
			[]string{"bdev_lvol_delete {vda-lvs-pd1/vda-vd-vd1}"},
			"lvstore vda-lvs-pd1 of a removed pd holds lvols VDA does not own (vda-lvs-pd1/mine): left alone"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := agent.PlanDN(empty, tt.a)
			assert.Equal(t, tt.steps, methods(p))
			var problems []string
			for _, ps := range p.Problems {
				problems = append(problems, ps...)
			}
			if tt.problems == "" {
				assert.Empty(t, problems)
			} else {
				assert.Equal(t, []string{tt.problems}, problems)
			}
		})
	}
}
