package agent_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/virtual-disk-array/vda/agent"
)

// TestStatus: a heartbeat reports SPDK's version, each pd's capacity and
// the I/O counters of the vds (dn), whether SPDK answers, and whether SPDK
// was dialled again since the last syncup (it may have restarted).
func TestStatus(t *testing.T) {
	srv := fake(t)
	a, err := agent.NewDN(agent.Config{SPDK: srv.Conn(), Logger: quiet()})
	require.NoError(t, err)
	run(t, a.Run)

	st := a.Status(ctxT(t))
	assert.True(t, st.SPDKReachable, st.SPDKError)
	assert.NotEmpty(t, st.SPDKVersion)
	assert.Zero(t, st.AppliedGeneration)
	assert.False(t, st.ResyncNeeded, "nothing applied: nothing to lose")

	names, build := dnCases(t)
	require.Contains(t, names, "malloc")
	d := build("malloc", 1)
	for range 2 { // the pd's bdev, then its lvstore and vds
		_, err = a.Syncup(ctxT(t), d)
		require.NoError(t, err)
		d.Generation++
	}
	st = a.Status(ctxT(t))
	assert.Equal(t, uint64(2), st.AppliedGeneration)
	require.Len(t, st.PDs, 1)
	assert.Equal(t, "pd1", string(st.PDs[0].ID))
	assert.Positive(t, st.PDs[0].Capacity)
	assert.Equal(t, st.PDs[0].Capacity-20*mib, st.PDs[0].Free, "8 MiB and 12 MiB of vds, in 4 MiB clusters")
	var vds []string
	for _, io := range st.Iostats {
		vds = append(vds, io.Name)
	}
	assert.ElementsMatch(t, []string{"vda-lvs-pd1/vda-vd-vd1", "vda-lvs-pd1/vda-vd-vd2"}, vds)
	assert.False(t, st.ResyncNeeded)

	srv.Kill()
	st = a.Status(ctxT(t))
	assert.False(t, st.SPDKReachable)
	assert.NotEmpty(t, st.SPDKError)

	srv.Restart()
	st = a.Status(ctxT(t))
	assert.True(t, st.SPDKReachable, st.SPDKError)
	assert.True(t, st.ResyncNeeded, "SPDK came back on a new socket")
	assert.Empty(t, st.PDs, "the restarted SPDK lost everything")

	_, err = a.Syncup(ctxT(t), d)
	require.NoError(t, err)
	_, err = a.Syncup(ctxT(t), agent.DN{ID: d.ID, Generation: d.Generation + 1, Listener: d.Listener, PDs: d.PDs})
	require.NoError(t, err)
	st = a.Status(ctxT(t))
	assert.False(t, st.ResyncNeeded)
	assert.Len(t, st.PDs, 1)
}
