package agent_test

import (
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/virtual-disk-array/vda"
	"github.com/virtual-disk-array/vda/agent"
)

// newScopedWorld is a world whose agents observe only what changed at
// every syncup they may, however small their nodes.
func newScopedWorld(t *testing.T) *world {
	w := newWorld(t)
	w.dn.a.AlwaysScope()
	w.cn1.a.AlwaysScope()
	w.cn2.a.AlwaysScope()
	return w
}

// TestScopedSyncupListsNothing: once a node converged, a syncup that
// changes one controller asks SPDK about that controller's objects only,
// and ends as one that lists everything.
func TestScopedSyncupListsNothing(t *testing.T) {
	full, scoped := newWorld(t), newScopedWorld(t)
	s := worldStates["both"]
	cn1 := slices.Clone(s.cn1)
	cn1[0].HostNQNs = []string{host1, host3}
	for _, w := range []*world{full, scoped} {
		_, ok := w.apply(t, "both")
		require.True(t, ok)
	}
	for _, tc := range []struct {
		w      *world
		listed int
	}{{full, 1}, {scoped, 0}} {
		before := tc.w.cn1.rec.listed()
		_, mut0 := tc.w.cn1.rec.counts()
		rep := tc.w.cn1.syncup(t, agent.CN{ID: "cn1", Listener: cn1L, Cntlrs: cn1})
		require.True(t, rep.OK(), rep)
		_, mut := tc.w.cn1.rec.counts()
		assert.Equal(t, tc.listed, tc.w.cn1.rec.listed()-before)
		assert.Equal(t, 1, mut-mut0, "one host added")
	}
	assert.Equal(t, full.dump(t), scoped.dump(t))
}

// TestScopedDrift: what changes behind the agent's back, outside what a
// syncup changes, is not seen by a scoped syncup; the same generation sent
// again (the monitor's repair) lists everything and repairs it.
func TestScopedDrift(t *testing.T) {
	w := newScopedWorld(t)
	_, ok := w.apply(t, "both")
	require.True(t, ok)
	want := w.dump(t)
	s := worldStates["both"]
	d := agent.CN{ID: "cn1", Listener: cn1L, Cntlrs: s.cn1}
	// A syncup without change observes what the last steps changed, so
	// that the agent's memory holds nothing it has not seen.
	require.True(t, w.cn1.syncup(t, d).OK())
	require.NoError(t, w.cn1.srv.Client().NvmfDeleteSubsystem(ctxT(t), vda.ArrayNQN("da2")))

	d.Cntlrs = slices.Clone(s.cn1)
	d.Cntlrs[0].HostNQNs = []string{host1, host3}
	l0 := w.cn1.rec.listed()
	rep := w.cn1.syncup(t, d)
	assert.True(t, rep.OK(), "da2 is outside the scope of this change")
	assert.Zero(t, w.cn1.rec.listed()-l0)

	d.Cntlrs = s.cn1
	rep = w.cn1.syncup(t, d)
	require.True(t, rep.OK(), rep)
	assert.NotEqual(t, want, w.dump(t), "da2's subsystem is still missing")

	before := w.cn1.rec.listed()
	d.Generation = w.cn1.gen
	rep, err := w.cn1.a.Syncup(ctxT(t), d)
	require.NoError(t, err)
	require.True(t, rep.OK(), rep)
	assert.Equal(t, 1, w.cn1.rec.listed()-before, "a repair lists everything")
	assert.Equal(t, want, w.dump(t))
}

// TestScopedRestartedSPDK: an SPDK that restarted behind the same socket
// shows by the transport it lost; the agent lists everything and rebuilds.
func TestScopedRestartedSPDK(t *testing.T) {
	w := newScopedWorld(t)
	_, ok := w.apply(t, "both")
	require.True(t, ok)
	want := w.dump(t)
	w.cn1.srv.Restart()
	w.cn2.srv.Restart()
	w.dn.srv.Restart()
	_, ok = w.apply(t, "both")
	require.True(t, ok)
	assert.Equal(t, want, w.dump(t))
}
