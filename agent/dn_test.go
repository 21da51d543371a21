package agent_test

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/virtual-disk-array/vda/agent"
	"github.com/virtual-disk-array/vda/spdk"
	"github.com/virtual-disk-array/vda/spdk/model"
	"github.com/virtual-disk-array/vda/spdk/spdktest"
)

func spdkCfg() model.Config { return model.Config{} }

const mib = 1 << 20

// dnCases are desired states of one dn, by name; dir holds aio files.
func dnCases(t *testing.T) (names []string, build func(name string, gen uint64) agent.DN) {
	dir := t.TempDir()
	aio := filepath.Join(dir, "disk.img")
	require.NoError(t, os.WriteFile(aio, nil, 0o644))
	require.NoError(t, os.Truncate(aio, 128*mib))
	malloc := func(vds ...agent.VD) agent.PD {
		return agent.PD{ID: "pd1", Kind: agent.PDMalloc, Size: 64 * mib, VDs: vds}
	}
	aioPD := func(vds ...agent.VD) agent.PD {
		return agent.PD{ID: "pd2", Kind: agent.PDAio, Path: aio, VDs: vds}
	}
	cases := map[string][]agent.PD{
		"empty":        nil,
		"malloc-novd":  {malloc()},
		"malloc":       {malloc(agent.VD{ID: "vd1", Size: 8 * mib, Primary: "c1"}, agent.VD{ID: "vd2", Size: 12 * mib, Primary: "c2"})},
		"malloc-moved": {malloc(agent.VD{ID: "vd1", Size: 8 * mib, Primary: "c9"})},
		"aio":          {aioPD(agent.VD{ID: "vd3", Size: 16 * mib, Primary: "c3"})},
		"both":         {malloc(agent.VD{ID: "vd1", Size: 8 * mib, Primary: "c1"}), aioPD(agent.VD{ID: "vd3", Size: 16 * mib, Primary: "c3"})},
	}
	for n := range cases {
		names = append(names, n)
	}
	slices.Sort(names)
	return names, func(name string, gen uint64) agent.DN {
		return agent.DN{ID: "dn1", Generation: gen, Listener: lis("4420"), PDs: cases[name]}
	}
}

func lis(port string) agent.Listener {
	return agent.Listener{Trtype: "TCP", Adrfam: "IPv4", Traddr: "127.0.0.1", Trsvcid: port}
}

// dnNode is a fake SPDK application with a dn agent over a recorder.
type dnNode struct {
	srv *spdktest.Server
	rec *recorder
	a   *agent.DNAgent
	gen uint64
	// force makes every syncup a forced one (the delete guard off).
	force bool
}

func newDNNode(t *testing.T, srv *spdktest.Server) *dnNode {
	if srv == nil {
		srv = spdktest.Start(t, spdkCfg())
	}
	rec := &recorder{next: srv.Conn()}
	return &dnNode{srv: srv, rec: rec, a: runDN(t, rec)}
}

// syncup applies the named desired state with the next generation.
func (n *dnNode) syncup(t *testing.T, d agent.DN) agent.Report {
	t.Helper()
	n.gen++
	d.Generation = n.gen
	sync := n.a.Syncup
	if n.force {
		sync = n.a.SyncupForce
	}
	rep, err := sync(ctxT(t), d)
	require.NoError(t, err)
	require.Equal(t, n.gen, rep.Generation)
	return rep
}

func requireOK(t *testing.T, rep agent.Report) {
	t.Helper()
	require.True(t, rep.OK(), "report has errors: %+v", rep)
}

// TestDNReconcile builds every desired state from an empty SPDK and checks
// the exact objects; a second syncup changes nothing.
func TestDNReconcile(t *testing.T) {
	names, build := dnCases(t)
	for _, name := range names {
		t.Run(name, func(t *testing.T) {
			n := newDNNode(t, nil)
			rep := n.syncup(t, build(name, 0))
			requireOK(t, rep)
			golden(t, "dn/"+name, dump(t, n.srv.Client()))
			if d := build(name, 0); len(d.PDs) > 0 {
				assert.NotZero(t, rep.PDs[0].Capacity)
			}

			_, before := n.rec.counts()
			requireOK(t, n.syncup(t, build(name, 0)))
			_, after := n.rec.counts()
			assert.Equal(t, before, after, "a converged node must take no step")
		})
	}
}

// TestDNInterrupted fails each step of every build, before and after it
// reaches SPDK, and checks that the next syncup finishes the job exactly.
func TestDNInterrupted(t *testing.T) {
	names, build := dnCases(t)
	for _, name := range names {
		// How many steps does the build take?
		n := newDNNode(t, nil)
		requireOK(t, n.syncup(t, build(name, 0)))
		_, steps := n.rec.counts()
		want := dump(t, n.srv.Client())
		for k := 1; k <= steps; k++ {
			for _, after := range []bool{false, true} {
				t.Run(fmt.Sprintf("%s/step%d/after=%v", name, k, after), func(t *testing.T) {
					freshDisks(t, build(name, 0))
					n := newDNNode(t, nil)
					n.rec.arm(k, after)
					rep := n.syncup(t, build(name, 0))
					assert.False(t, rep.OK(), "the fault must show in the report")
					n.rec.arm(0, false)
					requireOK(t, n.syncup(t, build(name, 0)))
					assert.Equal(t, want, dump(t, n.srv.Client()))
				})
			}
		}
	}
}

// freshDisks zeroes the files of d's aio pds, so that a new fake SPDK
// finds an empty disk: SPDK's examine would otherwise load the lvstore an
// earlier node left on it, as after a restart, and the build would need
// fewer steps.
func freshDisks(t *testing.T, d agent.DN) {
	t.Helper()
	for _, pd := range d.PDs {
		if pd.Kind == agent.PDAio {
			fi, err := os.Stat(pd.Path)
			require.NoError(t, err)
			require.NoError(t, os.Truncate(pd.Path, 0))
			require.NoError(t, os.Truncate(pd.Path, fi.Size()))
		}
	}
}

// TestDNTransitions goes from every desired state to every other: the
// result is exactly what building the second from empty gives, so every
// leftover is removed and nothing wanted is rebuilt.
func TestDNTransitions(t *testing.T) {
	names, build := dnCases(t)
	want := map[string][]string{}
	for _, name := range names {
		n := newDNNode(t, nil)
		requireOK(t, n.syncup(t, build(name, 0)))
		want[name] = dump(t, n.srv.Client())
	}
	for _, from := range names {
		for _, to := range names {
			t.Run(from+"->"+to, func(t *testing.T) {
				n := newDNNode(t, nil)
				requireOK(t, n.syncup(t, build(from, 0)))
				requireOK(t, n.syncup(t, build(to, 0)))
				assert.Equal(t, want[to], dump(t, n.srv.Client()))
			})
		}
	}
}

// TestDNRestartedSPDK rebuilds everything after SPDK restarts empty, on
// the same socket, with the same generation (how the monitor repairs).
func TestDNRestartedSPDK(t *testing.T) {
	names, build := dnCases(t)
	n := newDNNode(t, nil)
	requireOK(t, n.syncup(t, build("both", 0)))
	want := dump(t, n.srv.Client())
	n.srv.Restart()
	require.NotEqual(t, want, dump(t, n.srv.Client()))
	rep, err := n.a.Syncup(ctxT(t), build("both", n.gen))
	require.NoError(t, err)
	requireOK(t, rep)
	assert.Equal(t, want, dump(t, n.srv.Client()))
	_ = names
}

// TestDNForeignObjects leaves everything VDA does not own alone, and never
// removes a pd whose lvstore holds lvols VDA did not make.
func TestDNForeignObjects(t *testing.T) {
	_, build := dnCases(t)
	n := newDNNode(t, nil)
	c := n.srv.Client()
	ctx := ctxT(t)
	_, err := c.BdevMallocCreate(ctx, spdk.BdevMallocCreateRequest{Name: "user0", NumBlocks: 16384, BlockSize: 512})
	require.NoError(t, err)
	_, err = c.BdevLvolCreateLvstore(ctx, spdk.BdevLvolCreateLvstoreRequest{BdevName: "user0", LvsName: "userlvs"})
	require.NoError(t, err)
	_, err = c.BdevLvolCreate(ctx, spdk.BdevLvolCreateRequest{LvolName: "vda-vd-lookalike", SizeInMiB: 4, LvsName: "userlvs"})
	require.NoError(t, err)
	require.NoError(t, c.NvmfCreateTransport(ctx, spdk.NvmfCreateTransportRequest{Trtype: "TCP"}))
	require.NoError(t, c.NvmfCreateSubsystem(ctx, spdk.NvmfCreateSubsystemRequest{NQN: "nqn.2016-06.io.example:user"}))
	foreign := dump(t, c)

	requireOK(t, n.syncup(t, build("both", 0)))
	// A foreign lvol inside a VDA lvstore pins its pd.
	_, err = c.BdevLvolCreate(ctx, spdk.BdevLvolCreateRequest{LvolName: "mine", SizeInMiB: 4, LvsName: "vda-lvs-pd1"})
	require.NoError(t, err)
	rep := n.syncup(t, build("aio", 0))
	assert.Contains(t, rep.Error, "lvstore vda-lvs-pd1 of a removed pd holds lvols VDA does not own (vda-lvs-pd1/mine): left alone")
	assert.Contains(t, dump(t, c), "lvol vda-lvs-pd1/mine thin=false")
	assert.NotContains(t, strings.Join(dump(t, c), "\n"), "vda-vd-vd1", "VDA's own lvol on that pd still goes")

	require.NoError(t, c.BdevLvolDelete(ctx, "vda-lvs-pd1/mine"))
	requireOK(t, n.syncup(t, build("empty", 0)))
	assert.Equal(t, foreign, dump(t, c))
}

// TestDNExistingLvstore finds an lvstore again instead of creating one, and
// refuses to build on a bdev that holds someone else's.
func TestDNExistingLvstore(t *testing.T) {
	_, build := dnCases(t)
	t.Run("own lvstore and lvol are kept", func(t *testing.T) {
		n := newDNNode(t, nil)
		c, ctx := n.srv.Client(), ctxT(t)
		_, err := c.BdevMallocCreate(ctx, spdk.BdevMallocCreateRequest{Name: "vda-pd-pd1", NumBlocks: 64 * mib / 512, BlockSize: 512})
		require.NoError(t, err)
		lvs, err := c.BdevLvolCreateLvstore(ctx, spdk.BdevLvolCreateLvstoreRequest{BdevName: "vda-pd-pd1", LvsName: "vda-lvs-pd1"})
		require.NoError(t, err)
		lvol, err := c.BdevLvolCreate(ctx, spdk.BdevLvolCreateRequest{LvolName: "vda-vd-vd1", SizeInMiB: 8, LvsName: "vda-lvs-pd1"})
		require.NoError(t, err)
		requireOK(t, n.syncup(t, build("malloc", 0)))
		assert.NotContains(t, n.rec.methods, "bdev_lvol_create_lvstore")
		got, err := c.BdevLvolGetLvstores(ctx, spdk.LvstoreSelector{LvsName: "vda-lvs-pd1"})
		require.NoError(t, err)
		assert.Equal(t, lvs, got[0].UUID)
		b, err := c.BdevGetBdev(ctx, "vda-lvs-pd1/vda-vd-vd1")
		require.NoError(t, err)
		assert.Equal(t, lvol, b.Name)
	})
	t.Run("foreign lvstore on the pd's bdev", func(t *testing.T) {
		n := newDNNode(t, nil)
		c, ctx := n.srv.Client(), ctxT(t)
		_, err := c.BdevMallocCreate(ctx, spdk.BdevMallocCreateRequest{Name: "vda-pd-pd1", NumBlocks: 64 * mib / 512, BlockSize: 512})
		require.NoError(t, err)
		_, err = c.BdevLvolCreateLvstore(ctx, spdk.BdevLvolCreateLvstoreRequest{BdevName: "vda-pd-pd1", LvsName: "precious"})
		require.NoError(t, err)
		before := dump(t, c)
		rep := n.syncup(t, build("malloc", 0))
		require.Len(t, rep.PDs, 1)
		assert.Equal(t, "bdev vda-pd-pd1 holds lvstore precious, not vda-lvs-pd1: left alone", rep.PDs[0].Error)
		assert.Contains(t, rep.VDs[0].Error, "pd pd1")
		// Only the transport was added.
		assert.Equal(t, append(before, "transport TCP"), dump(t, c))
	})
	t.Run("backend mismatch", func(t *testing.T) {
		n := newDNNode(t, nil)
		c, ctx := n.srv.Client(), ctxT(t)
		_, err := c.BdevMallocCreate(ctx, spdk.BdevMallocCreateRequest{Name: "vda-pd-pd1", NumBlocks: 1024, BlockSize: 512})
		require.NoError(t, err)
		rep := n.syncup(t, build("malloc", 0))
		assert.Equal(t, "malloc bdev vda-pd-pd1 has 524288 bytes, not 67108864", rep.PDs[0].Error)
	})
}

// TestDNFenceMoves checks that a vd's subsystem allows exactly its
// array's current primary, and that the move never allows both.
func TestDNFenceMoves(t *testing.T) {
	_, build := dnCases(t)
	n := newDNNode(t, nil)
	requireOK(t, n.syncup(t, build("malloc", 0)))
	n.rec.methods = nil
	requireOK(t, n.syncup(t, build("malloc-moved", 0)))
	assert.Equal(t, []string{"nvmf_subsystem_remove_host", "nvmf_subsystem_add_host"},
		filter(n.rec.methods, "nvmf_subsystem_remove_host", "nvmf_subsystem_add_host"))
	subs, err := n.srv.Client().NvmfGetSubsystems(ctxT(t), "nqn.2016-06.io.vda:vd-vd1")
	require.NoError(t, err)
	assert.Equal(t, []spdk.SubsystemHost{{NQN: "nqn.2016-06.io.vda:cntlr-c9"}}, subs[0].Hosts)
}

func filter(methods []string, keep ...string) []string {
	var out []string
	for _, m := range methods {
		if slices.Contains(keep, m) {
			out = append(out, m)
		}
	}
	return out
}
