package agent_test

import (
	"fmt"
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/virtual-disk-array/vda"
	"github.com/virtual-disk-array/vda/agent"
	"github.com/virtual-disk-array/vda/spdk/spdktest"
)

// A world is one dn and two cns on one fabric, each a fake SPDK with its
// agent. cn1 is the node under test; the dn and cn2 play their parts.
type world struct {
	dn       *dnNode
	cn1, cn2 *cnNode
}

type cnNode struct {
	srv *spdktest.Server
	rec *recorder
	a   *agent.CNAgent
	gen uint64
	// force makes every syncup a forced one (the delete guard off).
	force bool
}

func newWorld(t *testing.T) *world {
	srvs := spdktest.StartFabric(t, spdkCfg(), spdkCfg(), spdkCfg())
	w := &world{dn: newDNNode(t, srvs[0])}
	for i, n := range []**cnNode{&w.cn1, &w.cn2} {
		rec := &recorder{next: srvs[i+1].Conn()}
		*n = &cnNode{srv: srvs[i+1], rec: rec, a: runCN(t, rec)}
	}
	return w
}

func (n *cnNode) syncup(t *testing.T, c agent.CN) agent.Report {
	t.Helper()
	n.gen++
	c.Generation = n.gen
	sync := n.a.Syncup
	if n.force {
		sync = n.a.SyncupForce
	}
	rep, err := sync(ctxT(t), c)
	require.NoError(t, err)
	return rep
}

// worldState is the desired state of every node of a world.
type worldState struct {
	dn       []agent.VD // all on pd1
	cn1, cn2 []agent.Cntlr
}

const (
	host1 = "nqn.2014-08.org.example:host1"
	host2 = "nqn.2014-08.org.example:host2"
	host3 = "nqn.2014-08.org.example:host3"
)

var (
	dnL, cn1L, cn2L = lis("4420"), lis("4430"), lis("4440")
)

func vdsOf(primary vda.CntlrID, ids ...vda.VDID) []agent.VD {
	var out []agent.VD
	for _, id := range ids {
		out = append(out, agent.VD{ID: id, Size: 8 * mib, Primary: primary})
	}
	return out
}

func paths(ids ...vda.VDID) []agent.VDPath {
	var out []agent.VDPath
	for _, id := range ids {
		out = append(out, agent.VDPath{ID: id, Listener: dnL})
	}
	return out
}

// Array da1 has vds vd1, vd2; array da2 vd3, vd4.
var worldStates = map[string]worldState{
	"empty": {},
	// cn1 holds da1's primary; cn2 its secondary.
	"primary": {
		dn:  vdsOf("c1", "vd1", "vd2"),
		cn1: []agent.Cntlr{{ID: "c1", DA: "da1", StripSizeKB: 64, HostNQNs: []string{host1}, Primary: &agent.Primary{VDs: paths("vd1", "vd2"), Secondaries: []vda.CntlrID{"c2"}}}},
		cn2: []agent.Cntlr{{ID: "c2", DA: "da1", HostNQNs: []string{host1}, Secondary: &agent.Secondary{Primary: "c1", Listener: cn1L}}},
	},
	// cn1 holds da2's secondary; cn2 its primary.
	"secondary": {
		dn:  vdsOf("c4", "vd3", "vd4"),
		cn1: []agent.Cntlr{{ID: "c3", DA: "da2", HostNQNs: []string{host2}, Secondary: &agent.Secondary{Primary: "c4", Listener: cn2L}}},
		cn2: []agent.Cntlr{{ID: "c4", DA: "da2", StripSizeKB: 128, HostNQNs: []string{host2}, Primary: &agent.Primary{VDs: paths("vd3", "vd4"), Secondaries: []vda.CntlrID{"c3"}}}},
	},
	// cn2 failed: da2's secondary on cn1 was promoted, and got a new
	// secondary (c5) on cn2.
	"promoted": {
		dn:  append(vdsOf("c1", "vd1", "vd2"), vdsOf("c3", "vd3", "vd4")...),
		cn1: []agent.Cntlr{{ID: "c1", DA: "da1", StripSizeKB: 64, HostNQNs: []string{host1}, Primary: &agent.Primary{VDs: paths("vd1", "vd2")}}, {ID: "c3", DA: "da2", StripSizeKB: 128, HostNQNs: []string{host2}, Primary: &agent.Primary{VDs: paths("vd3", "vd4"), Secondaries: []vda.CntlrID{"c5"}}}},
		cn2: []agent.Cntlr{{ID: "c5", DA: "da2", HostNQNs: []string{host2}, Secondary: &agent.Secondary{Primary: "c3", Listener: cn1L}}},
	},
	// da1 without secondaries, with two more exporters.
	"exporters": {
		dn:  vdsOf("c1", "vd1", "vd2"),
		cn1: []agent.Cntlr{{ID: "c1", DA: "da1", StripSizeKB: 64, HostNQNs: []string{host1, host2, host3}, Primary: &agent.Primary{VDs: paths("vd1", "vd2")}}},
	},
}

func init() {
	both := worldState{}
	for _, n := range []string{"primary", "secondary"} {
		s := worldStates[n]
		both.dn = append(both.dn, s.dn...)
		both.cn1 = append(both.cn1, s.cn1...)
		both.cn2 = append(both.cn2, s.cn2...)
	}
	worldStates["both"] = both
}

func worldNames() []string {
	var out []string
	for n := range worldStates {
		out = append(out, n)
	}
	slices.Sort(out)
	return out
}

// apply pushes a world state to every node, in rounds, as the monitor
// would until all converge (a secondary can only attach once its primary
// exports). It returns cn1's first report and whether the last round was
// clean.
func (w *world) apply(t *testing.T, name string) (first agent.Report, ok bool) {
	t.Helper()
	s := worldStates[name]
	dn := agent.DN{ID: "dn1", Listener: dnL}
	if len(s.dn) > 0 {
		dn.PDs = []agent.PD{{ID: "pd1", Kind: agent.PDMalloc, Size: 128 * mib, VDs: s.dn}}
	}
	for round := 0; round < 3; round++ {
		r0 := w.dn.syncup(t, dn)
		r1 := w.cn1.syncup(t, agent.CN{ID: "cn1", Listener: cn1L, Cntlrs: s.cn1})
		r2 := w.cn2.syncup(t, agent.CN{ID: "cn2", Listener: cn2L, Cntlrs: s.cn2})
		if round == 0 {
			first = r1
		}
		if r0.OK() && r1.OK() && r2.OK() {
			return first, true
		}
	}
	return first, false
}

func (w *world) dump(t *testing.T) []string {
	var out []string
	for _, n := range []struct {
		name string
		srv  *spdktest.Server
	}{{"dn1", w.dn.srv}, {"cn1", w.cn1.srv}, {"cn2", w.cn2.srv}} {
		for _, l := range dump(t, n.srv.Client()) {
			out = append(out, n.name+" "+l)
		}
	}
	return out
}

// TestCNReconcile builds every world state from empty SPDKs and checks the
// exact objects of every node; a second push changes nothing.
func TestCNReconcile(t *testing.T) {
	for _, name := range worldNames() {
		t.Run(name, func(t *testing.T) {
			w := newWorld(t)
			_, ok := w.apply(t, name)
			require.True(t, ok)
			golden(t, "cn/"+name, w.dump(t))
			_, before := w.cn1.rec.counts()
			_, ok = w.apply(t, name)
			require.True(t, ok)
			_, after := w.cn1.rec.counts()
			assert.Equal(t, before, after, "a converged node must take no step")
		})
	}
}

// TestCNInterrupted fails each of cn1's steps, before and after SPDK acts;
// the next push finishes the job exactly.
func TestCNInterrupted(t *testing.T) {
	for _, name := range worldNames() {
		w := newWorld(t)
		_, before := w.cn1.rec.counts()
		_, ok := w.apply(t, name)
		require.True(t, ok)
		// Steps of cn1's first (building) syncup.
		_, after := w.cn1.rec.counts()
		want := w.dump(t)
		for k := 1; k <= after-before; k++ {
			for _, late := range []bool{false, true} {
				t.Run(fmt.Sprintf("%s/step%d/after=%v", name, k, late), func(t *testing.T) {
					w := newWorld(t)
					w.cn1.rec.arm(k, late)
					first, _ := w.apply(t, name)
					assert.False(t, first.OK(), "the fault must show in the report")
					w.cn1.rec.arm(0, false)
					_, ok := w.apply(t, name)
					require.True(t, ok)
					assert.Equal(t, want, w.dump(t))
				})
			}
		}
	}
}

// TestCNTransitions goes from every world state to every other and back,
// failover and its reverse included: each ends exactly as if built from
// empty. The scoped worlds' agents observe only what changed whenever they
// may (see agents.md, scoped observation); they must end the same.
func TestCNTransitions(t *testing.T) {
	want := map[string][]string{}
	for _, name := range worldNames() {
		w := newWorld(t)
		_, ok := w.apply(t, name)
		require.True(t, ok)
		want[name] = w.dump(t)
	}
	for _, mode := range []string{"listed", "scoped"} {
		for _, from := range worldNames() {
			for _, to := range worldNames() {
				t.Run(mode+"/"+from+"->"+to, func(t *testing.T) {
					newW := newWorld
					if mode == "scoped" {
						newW = newScopedWorld
					}
					w := newW(t)
					// Some transitions delete a whole node at once, which
					// the delete guard refuses (guard_test.go): an admin
					// forces them.
					w.dn.force, w.cn1.force, w.cn2.force = true, true, true
					for _, name := range []string{from, to, from} {
						_, ok := w.apply(t, name)
						require.True(t, ok)
						assert.Equal(t, want[name], w.dump(t), name)
					}
				})
			}
		}
	}
}

// TestCNRestartedSPDK rebuilds a cn whose SPDK restarted empty.
func TestCNRestartedSPDK(t *testing.T) {
	w := newWorld(t)
	_, ok := w.apply(t, "both")
	require.True(t, ok)
	want := w.dump(t)
	w.cn1.srv.Restart()
	w.cn2.srv.Restart()
	_, ok = w.apply(t, "both")
	require.True(t, ok)
	assert.Equal(t, want, w.dump(t))
}

// TestCNPromotionKeepsNamespace checks the order of a promotion's steps:
// the secondary swaps its namespace to the new raid at once (removed and
// added back with the same identity) and detaches its controller to the
// lost primary only afterwards, so that the host's I/O still waiting in
// that controller fails, and is retried, while the namespace is there
// (see planCN). The end state is checked by TestCNTransitions.
func TestCNPromotionKeepsNamespace(t *testing.T) {
	w := newWorld(t)
	_, ok := w.apply(t, "secondary")
	require.True(t, ok)
	w.cn1.rec.mu.Lock()
	from := len(w.cn1.rec.methods)
	w.cn1.rec.mu.Unlock()
	_, ok = w.apply(t, "promoted")
	require.True(t, ok)
	w.cn1.rec.mu.Lock()
	steps := slices.Clone(w.cn1.rec.methods[from:])
	w.cn1.rec.mu.Unlock()
	at := func(method string) []int {
		var is []int
		for i, m := range steps {
			if m == method {
				is = append(is, i)
			}
		}
		return is
	}
	removes, adds, detaches := at("nvmf_subsystem_remove_ns"), at("nvmf_subsystem_add_ns"), at("bdev_nvme_detach_controller")
	require.Len(t, removes, 1, "%v", steps)
	require.NotEmpty(t, adds, "%v", steps)
	require.Len(t, detaches, 1, "%v", steps)
	assert.Less(t, removes[0], adds[len(adds)-1], "%v", steps)
	assert.Less(t, adds[len(adds)-1], detaches[0], "the old primary's controller goes last: %v", steps)
}

// TestCNPromotionInterrupted fails each step of a promotion, before and
// after SPDK acts; the next push finishes it exactly.
func TestCNPromotionInterrupted(t *testing.T) {
	ref := newWorld(t)
	_, ok := ref.apply(t, "secondary")
	require.True(t, ok)
	_, before := ref.cn1.rec.counts()
	_, ok = ref.apply(t, "promoted")
	require.True(t, ok)
	_, after := ref.cn1.rec.counts()
	want := ref.dump(t)
	for k := 1; k <= after-before; k++ {
		for _, late := range []bool{false, true} {
			t.Run(fmt.Sprintf("step%d/after=%v", k, late), func(t *testing.T) {
				w := newWorld(t)
				_, ok := w.apply(t, "secondary")
				require.True(t, ok)
				w.cn1.rec.arm(k, late)
				first, _ := w.apply(t, "promoted")
				assert.False(t, first.OK(), "the fault must show in the report")
				w.cn1.rec.arm(0, false)
				_, ok = w.apply(t, "promoted")
				require.True(t, ok)
				assert.Equal(t, want, w.dump(t))
			})
		}
	}
}
