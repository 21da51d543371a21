package syncup_test

import (
	"context"
	"fmt"
	"testing"

	"connectrpc.com/connect"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/virtual-disk-array/vda"
	vdav1 "github.com/virtual-disk-array/vda/proto/vda/v1"
	"github.com/virtual-disk-array/vda/spdk"
	"github.com/virtual-disk-array/vda/store/storetest"
	"github.com/virtual-disk-array/vda/syncup"
)

// TestGuardRefusalRecorded: a dn whose agent refuses its desired state
// (it would delete most of what the node holds) records the refusal as
// the node's status, with what to do, not as a stale push; a forced push
// applies it.
func TestGuardRefusalRecorded(t *testing.T) {
	ctx := context.Background()
	db := storetest.Open(t, storetest.Backends()[0])
	c := startCluster(t, db, 1, 0)
	dn1 := c.fakes["dn1"]
	// Six vds the store does not know, as if it had lost them.
	for i := 1; i <= 6; i++ {
		require.NoError(t, dn1.Client().NvmfCreateSubsystem(ctx, spdk.NvmfCreateSubsystemRequest{NQN: vda.VDNQN(vda.VDID(fmt.Sprintf("lost%d", i)))}))
	}
	get, err := c.svc.GetDn(ctx, connect.NewRequest(&vdav1.GetDnRequest{Name: "dn1"}))
	require.NoError(t, err)
	id := vda.DNID(get.Msg.GetDn().GetId())
	p, err := syncup.New(syncup.Config{DB: db, Logger: quiet()})
	require.NoError(t, err)

	res, err := p.Push(ctx, false, string(id))
	require.NoError(t, err, "a refusal is a report, not an error")
	assert.False(t, syncup.IsStale(err))
	assert.False(t, res.OK(), "the monitor keeps pushing a node in error")
	want := "refusing to delete 6 of 7 VDA-owned resources at once (more than 50%); " +
		"if this is intended, an admin can push it with `vdactl dn syncup <name> --force`"
	assert.Equal(t, want, res.Error)
	get, err = c.svc.GetDn(ctx, connect.NewRequest(&vdav1.GetDnRequest{Name: "dn1"}))
	require.NoError(t, err)
	assert.Equal(t, want, get.Msg.GetDn().GetStatus().GetError())
	subs, err := dn1.Client().NvmfGetSubsystems(ctx, "")
	require.NoError(t, err)
	assert.Len(t, subs, 7, "the discovery subsystem and the six")

	rep, err := p.PushDNForce(ctx, id, true)
	require.NoError(t, err)
	assert.Empty(t, rep.GetError())
	get, err = c.svc.GetDn(ctx, connect.NewRequest(&vdav1.GetDnRequest{Name: "dn1"}))
	require.NoError(t, err)
	assert.Empty(t, get.Msg.GetDn().GetStatus().GetError())
	assert.Equal(t, vdav1.Health_HEALTH_OK, get.Msg.GetDn().GetStatus().GetHealth())
}
