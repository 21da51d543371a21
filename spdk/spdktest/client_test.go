package spdktest_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/virtual-disk-array/vda/spdk"
	"github.com/virtual-disk-array/vda/spdk/model"
	"github.com/virtual-disk-array/vda/spdk/spdktest"
)

// The typed client against the fake, end to end over Unix sockets: a disk
// node exports an lvol; a controller node attaches it, builds a raid on it
// and re-exports it; the disk node fences the controller node.
func TestTypedClientEndToEnd(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	const (
		cnHost = "nqn.2014-08.org.nvmexpress:uuid:cccccccc-0000-0000-0000-000000000001"
		vdNQN  = "nqn.2016-06.io.vda:vd-1"
		daNQN  = "nqn.2016-06.io.vda:da-1"
	)
	servers := spdktest.StartFabric(t, model.Config{}, model.Config{HostNQN: cnHost})
	dn, cn := servers[0].Client(), servers[1].Client()

	v, err := dn.SpdkGetVersion(ctx)
	require.NoError(t, err)
	assert.Equal(t, "SPDK v26.05", v.Version)
	require.NoError(t, dn.FrameworkWaitInit(ctx))

	// Disk node: pd, lvstore, vd.
	pd, err := dn.BdevMallocCreate(ctx, spdk.BdevMallocCreateRequest{Name: "pd0", NumBlocks: 262144, BlockSize: 512})
	require.NoError(t, err)
	_, err = dn.BdevMallocCreate(ctx, spdk.BdevMallocCreateRequest{Name: "pd0", NumBlocks: 8, BlockSize: 512})
	assert.ErrorIs(t, err, spdk.ErrExist)
	lvsUUID, err := dn.BdevLvolCreateLvstore(ctx, spdk.BdevLvolCreateLvstoreRequest{BdevName: pd, LvsName: "lvs0",
		ClusterSize: 1 << 20})
	require.NoError(t, err)
	lvs, err := dn.BdevLvolGetLvstores(ctx, spdk.LvstoreSelector{UUID: lvsUUID})
	require.NoError(t, err)
	require.Len(t, lvs, 1)
	assert.Equal(t, uint64(127), lvs[0].TotalDataClusters)
	_, err = dn.BdevLvolCreate(ctx, spdk.BdevLvolCreateRequest{LvolName: "big", SizeInMiB: 1000, LvsName: "lvs0"})
	assert.ErrorIs(t, err, spdk.ErrNoSpace)
	vd, err := dn.BdevLvolCreate(ctx, spdk.BdevLvolCreateRequest{LvolName: "vd0", SizeInMiB: 64, LvsName: "lvs0"})
	require.NoError(t, err)
	b, err := dn.BdevGetBdev(ctx, "lvs0/vd0")
	require.NoError(t, err)
	assert.Equal(t, vd, b.Name)
	assert.Equal(t, []string{"lvs0/vd0"}, b.Aliases)
	require.NotNil(t, b.DriverSpecific.Lvol)
	assert.Equal(t, lvsUUID, b.DriverSpecific.Lvol.LvolStoreUUID)
	assert.Equal(t, uint64(64), b.DriverSpecific.Lvol.NumAllocatedClusters)
	lvols, err := dn.BdevLvolGetLvols(ctx, spdk.BdevLvolGetLvolsRequest{LvsName: "lvs0"})
	require.NoError(t, err)
	require.Len(t, lvols, 1)
	assert.Equal(t, "vd0", lvols[0].Name)

	// Disk node: export the vd to the controller node only.
	require.NoError(t, dn.NvmfCreateTransport(ctx, spdk.NvmfCreateTransportRequest{Trtype: spdk.TrtypeTCP}))
	require.NoError(t, dn.NvmfCreateSubsystem(ctx, spdk.NvmfCreateSubsystemRequest{NQN: vdNQN, SerialNumber: "vd-1"}))
	nsid, err := dn.NvmfSubsystemAddNs(ctx, spdk.NvmfSubsystemAddNsRequest{NQN: vdNQN,
		Namespace: spdk.NamespaceParams{BdevName: "lvs0/vd0"}})
	require.NoError(t, err)
	assert.Equal(t, uint32(1), nsid)
	addr := spdk.ListenAddress{Trtype: "tcp", Adrfam: "ipv4", Traddr: "127.0.0.1", Trsvcid: "4420"}
	require.NoError(t, dn.NvmfSubsystemAddListener(ctx, spdk.NvmfSubsystemAddListenerRequest{NQN: vdNQN,
		ListenAddress: addr}))
	require.NoError(t, dn.NvmfSubsystemAddHost(ctx, vdNQN, cnHost))
	subs, err := dn.NvmfGetSubsystems(ctx, vdNQN)
	require.NoError(t, err)
	require.Len(t, subs, 1)
	assert.Equal(t, []spdk.ListenAddress{{Trtype: "TCP", Adrfam: "IPv4", Traddr: "127.0.0.1", Trsvcid: "4420"}},
		subs[0].ListenAddresses)
	assert.Equal(t, []spdk.SubsystemHost{{NQN: cnHost}}, subs[0].Hosts)
	require.Len(t, subs[0].Namespaces, 1)
	assert.Equal(t, vd, subs[0].Namespaces[0].BdevName)

	// Controller node: attach, raid, re-export.
	loss, delay := -1, 1
	names, err := cn.BdevNvmeAttachController(ctx, spdk.BdevNvmeAttachControllerRequest{Name: "vd1", Trtype: "tcp",
		Traddr: "127.0.0.1", Adrfam: "ipv4", Trsvcid: "4420", Subnqn: vdNQN,
		CtrlrLossTimeoutSec: &loss, ReconnectDelaySec: &delay})
	require.NoError(t, err)
	assert.Equal(t, []string{"vd1n1"}, names)
	nb, err := cn.BdevGetBdev(ctx, "vd1n1")
	require.NoError(t, err)
	assert.Equal(t, spdk.ProductNvme, nb.ProductName)
	assert.Equal(t, b.Size(), nb.Size())
	require.Len(t, nb.DriverSpecific.Nvme, 1)
	assert.Equal(t, vdNQN, nb.DriverSpecific.Nvme[0].CtrlrData.Subnqn)
	require.NoError(t, cn.BdevRaidCreate(ctx, spdk.BdevRaidCreateRequest{Name: "da1", RaidLevel: spdk.RaidLevel0,
		StripSizeKB: 64, BaseBdevs: []string{"vd1n1"}}))
	raids, err := cn.BdevRaidGetBdevs(ctx, spdk.RaidOnline)
	require.NoError(t, err)
	require.Len(t, raids, 1)
	assert.Equal(t, "da1", raids[0].Name)
	require.NoError(t, cn.NvmfCreateTransport(ctx, spdk.NvmfCreateTransportRequest{Trtype: spdk.TrtypeTCP}))
	require.NoError(t, cn.NvmfCreateSubsystem(ctx, spdk.NvmfCreateSubsystemRequest{NQN: daNQN, AnaReporting: true}))
	_, err = cn.NvmfSubsystemAddNs(ctx, spdk.NvmfSubsystemAddNsRequest{NQN: daNQN,
		Namespace: spdk.NamespaceParams{BdevName: "da1", UUID: "dddddddd-0000-0000-0000-000000000001",
			NGUID: "DDDDDDDD000000000000000000000001"}})
	require.NoError(t, err)
	err = cn.NvmfSubsystemAddListener(ctx, spdk.NvmfSubsystemAddListenerRequest{NQN: daNQN, ListenAddress: addr})
	assert.ErrorIs(t, err, spdk.ErrInvalidParams, "port 4420 belongs to the disk node")
	cnAddr := spdk.ListenAddress{Trtype: "TCP", Adrfam: "IPv4", Traddr: "127.0.0.1", Trsvcid: "4430"}
	require.NoError(t, cn.NvmfSubsystemAddListener(ctx, spdk.NvmfSubsystemAddListenerRequest{NQN: daNQN,
		ListenAddress: cnAddr, AnaState: spdk.AnaNonOptimized}))
	require.NoError(t, cn.NvmfSubsystemListenerSetAnaState(ctx, spdk.NvmfSubsystemListenerSetAnaStateRequest{
		NQN: daNQN, ListenAddress: cnAddr, AnaState: spdk.AnaOptimized}))
	ls, err := cn.NvmfSubsystemGetListeners(ctx, daNQN)
	require.NoError(t, err)
	require.Len(t, ls, 1)
	assert.Equal(t, spdk.AnaOptimized, ls[0].AnaStates[0].AnaState)

	// Fence: the disk node drops the controller node's host.
	ctrlrs, err := dn.NvmfSubsystemGetControllers(ctx, vdNQN)
	require.NoError(t, err)
	require.Len(t, ctrlrs, 1)
	assert.Equal(t, cnHost, ctrlrs[0].Hostnqn)
	require.NoError(t, dn.NvmfSubsystemRemoveHost(ctx, vdNQN, cnHost))
	got, err := cn.BdevNvmeGetControllers(ctx, "vd1")
	require.NoError(t, err)
	require.Len(t, got, 1)
	assert.Equal(t, spdk.NvmeCtrlrReconnectIsDelayed, got[0].Ctrlrs[0].State)
	_, err = cn.BdevNvmeGetControllers(ctx, "nope")
	assert.ErrorIs(t, err, spdk.ErrInvalid)

	// Tear down in reverse order.
	require.NoError(t, cn.NvmfDeleteSubsystem(ctx, daNQN))
	require.NoError(t, cn.BdevRaidDelete(ctx, "da1"))
	require.NoError(t, cn.BdevNvmeDetachController(ctx, spdk.BdevNvmeDetachControllerRequest{Name: "vd1"}))
	err = cn.BdevNvmeDetachController(ctx, spdk.BdevNvmeDetachControllerRequest{Name: "vd1"})
	assert.ErrorIs(t, err, spdk.ErrNoDevice)
	require.NoError(t, dn.NvmfSubsystemRemoveNs(ctx, vdNQN, 1))
	require.NoError(t, dn.BdevLvolDelete(ctx, vd))
	require.NoError(t, dn.BdevLvolDeleteLvstore(ctx, spdk.LvstoreSelector{LvsName: "lvs0"}))
	require.NoError(t, dn.BdevMallocDelete(ctx, pd))
	all, err := dn.BdevGetBdevs(ctx, spdk.BdevGetBdevsRequest{})
	require.NoError(t, err)
	assert.Empty(t, all)
	st, err := dn.BdevGetIostat(ctx, spdk.BdevGetIostatRequest{})
	require.NoError(t, err)
	assert.Equal(t, uint64(2600000000), st.TickRate)
}
