package spdk_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/virtual-disk-array/vda/spdk"
)

func TestOpSubject(t *testing.T) {
	const nqn = "nqn.2016-06.io.spdk:a"
	addr := spdk.ListenAddress{Trtype: "TCP", Adrfam: "IPv4", Traddr: "127.0.0.1", Trsvcid: "4420"}
	for _, tc := range []struct {
		op   spdk.Op
		want string
	}{
		{spdk.OpNvmfCreateTransport(spdk.NvmfCreateTransportRequest{Trtype: "TCP"}), ""},
		{spdk.OpBdevWaitForExamine(), ""},
		{spdk.OpBdevMallocCreate(spdk.BdevMallocCreateRequest{Name: "m"}), "m"},
		{spdk.OpBdevMallocDelete("m"), "m"},
		{spdk.OpBdevAioCreate(spdk.BdevAioCreateRequest{Name: "a", Filename: "/f"}), "a"},
		{spdk.OpBdevAioDelete("a"), "a"},
		{spdk.OpBdevNvmeAttachController(spdk.BdevNvmeAttachControllerRequest{Name: "c"}), "c"},
		{spdk.OpBdevNvmeDetachController(spdk.BdevNvmeDetachControllerRequest{Name: "c"}), "c"},
		{spdk.OpBdevLvolCreateLvstore(spdk.BdevLvolCreateLvstoreRequest{BdevName: "m", LvsName: "lvs"}), "lvs"},
		{spdk.OpBdevLvolDeleteLvstore(spdk.LvstoreSelector{LvsName: "lvs"}), "lvs"},
		{spdk.OpBdevLvolDeleteLvstore(spdk.LvstoreSelector{UUID: "u"}), "u"},
		{spdk.OpBdevLvolCreate(spdk.BdevLvolCreateRequest{LvolName: "l", LvsName: "lvs"}), "lvs/l"},
		{spdk.OpBdevLvolCreate(spdk.BdevLvolCreateRequest{LvolName: "l", UUID: "u"}), "u/l"},
		{spdk.OpBdevLvolResize(spdk.BdevLvolResizeRequest{Name: "lvs/l"}), "lvs/l"},
		{spdk.OpBdevLvolDelete("lvs/l"), "lvs/l"},
		{spdk.OpBdevRaidCreate(spdk.BdevRaidCreateRequest{Name: "r"}), "r"},
		{spdk.OpBdevRaidDelete("r"), "r"},
		{spdk.OpNvmfCreateSubsystem(spdk.NvmfCreateSubsystemRequest{NQN: nqn}), nqn},
		{spdk.OpNvmfDeleteSubsystem(nqn), nqn},
		{spdk.OpNvmfSubsystemAllowAnyHost(nqn, false), nqn},
		{spdk.OpNvmfSubsystemAddNs(spdk.NvmfSubsystemAddNsRequest{NQN: nqn}), nqn},
		{spdk.OpNvmfSubsystemRemoveNs(nqn, 1), nqn},
		{spdk.OpNvmfSubsystemAddListener(spdk.NvmfSubsystemAddListenerRequest{NQN: nqn, ListenAddress: addr}), nqn},
		{spdk.OpNvmfSubsystemRemoveListener(nqn, addr), nqn},
		{spdk.OpNvmfSubsystemListenerSetAnaState(spdk.NvmfSubsystemListenerSetAnaStateRequest{NQN: nqn, ListenAddress: addr}), nqn},
		{spdk.OpNvmfSubsystemAddHost(nqn, "h"), nqn},
		{spdk.OpNvmfSubsystemRemoveHost(nqn, "h"), nqn},
		{spdk.Op{Method: "framework_start_init"}, ""},
	} {
		t.Run(tc.op.Method, func(t *testing.T) {
			assert.Equal(t, tc.want, tc.op.Subject())
		})
	}
}
