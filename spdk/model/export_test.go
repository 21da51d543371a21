package model_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/virtual-disk-array/vda/spdk"
	"github.com/virtual-disk-array/vda/spdk/model"
)

// TestListenHooks: Config.Listen runs once per address, when its first
// listener appears (whatever the subsystem), Unlisten when its last one
// goes (removed, or with its subsystem, or at Stop); a Listen error fails
// nvmf_subsystem_add_listener with SPDK's "Invalid parameters" and leaves
// nothing behind.
func TestListenHooks(t *testing.T) {
	var calls []string
	fail := false
	tg := model.New(model.Config{
		Listen: func(trtype, traddr, trsvcid string) error {
			calls = append(calls, fmt.Sprintf("listen %s %s %s", trtype, traddr, trsvcid))
			if fail {
				return errors.New("address in use")
			}
			return nil
		},
		Unlisten: func(trtype, traddr, trsvcid string) {
			calls = append(calls, fmt.Sprintf("unlisten %s %s %s", trtype, traddr, trsvcid))
		},
	})
	call := func(method, params string) error {
		_, err := tg.Handle(context.Background(), method, json.RawMessage(params))
		return err
	}
	listener := func(method, nqn, port string) error {
		return call(method, `{"nqn":"`+nqn+`","listen_address":{"trtype":"tcp","traddr":"127.0.0.1","trsvcid":"`+port+`"}}`)
	}
	const a, b = "nqn.2016-06.io.vda:a", "nqn.2016-06.io.vda:b"
	require.NoError(t, call("nvmf_create_transport", `{"trtype":"TCP"}`))
	require.NoError(t, call("nvmf_create_subsystem", `{"nqn":"`+a+`","ana_reporting":true}`))
	require.NoError(t, call("nvmf_create_subsystem", `{"nqn":"`+b+`"}`))
	require.NoError(t, call("bdev_malloc_create", `{"name":"m0","num_blocks":64,"block_size":512}`))
	require.NoError(t, call("nvmf_subsystem_add_ns", `{"nqn":"`+a+`","namespace":{"bdev_name":"m0"}}`))

	require.NoError(t, listener("nvmf_subsystem_add_listener", a, "4420"))
	require.NoError(t, listener("nvmf_subsystem_add_listener", b, "4420"))
	require.NoError(t, listener("nvmf_subsystem_add_listener", a, "4421"))
	assert.Equal(t, []string{"listen TCP 127.0.0.1 4420", "listen TCP 127.0.0.1 4421"}, calls)

	// The snapshot a real target takes at Connect.
	require.NoError(t, call("nvmf_subsystem_listener_set_ana_state",
		`{"nqn":"`+a+`","listen_address":{"trtype":"tcp","traddr":"127.0.0.1","trsvcid":"4421"},"ana_state":"non_optimized"}`))
	s, ok := tg.NVMfSubsystem(a, model.ListenAddr{Trtype: "TCP", Traddr: "127.0.0.1", Trsvcid: "4421"})
	require.True(t, ok)
	assert.True(t, s.Listening)
	assert.True(t, s.ANAReporting)
	require.Len(t, s.Namespaces, 1)
	assert.Equal(t, "non_optimized", s.Namespaces[0].ANAState)
	assert.NotNil(t, s.Namespaces[0].Dev)
	assert.Equal(t, uint64(64*512), s.Namespaces[0].Size)
	s, ok = tg.NVMfSubsystem(b, model.ListenAddr{Trtype: "TCP", Traddr: "127.0.0.1", Trsvcid: "4421"})
	require.True(t, ok)
	assert.False(t, s.Listening, "b does not listen on 4421")
	_, ok = tg.NVMfSubsystem("nqn.2014-08.org.nvmexpress.discovery", model.ListenAddr{})
	assert.False(t, ok)

	calls = nil
	require.NoError(t, listener("nvmf_subsystem_remove_listener", a, "4420"))
	assert.Empty(t, calls, "b still listens on 4420")
	require.NoError(t, listener("nvmf_subsystem_remove_listener", b, "4420"))
	assert.Equal(t, []string{"unlisten TCP 127.0.0.1 4420"}, calls)

	calls = nil
	fail = true
	err := listener("nvmf_subsystem_add_listener", b, "4422")
	var se *spdk.Error
	require.ErrorAs(t, err, &se)
	assert.Equal(t, -32602, se.Code)
	assert.Equal(t, []string{"listen TCP 127.0.0.1 4422"}, calls)
	assert.Error(t, listener("nvmf_subsystem_remove_listener", b, "4422"), "the failed listener was not added")

	calls = nil
	fail = false
	require.NoError(t, listener("nvmf_subsystem_add_listener", b, "4422"))
	require.NoError(t, call("nvmf_delete_subsystem", `{"nqn":"`+b+`"}`))
	tg.Stop()
	tg.Stop() // a second Stop unlistens nothing twice
	assert.Equal(t, []string{"listen TCP 127.0.0.1 4422", "unlisten TCP 127.0.0.1 4422", "unlisten TCP 127.0.0.1 4421"}, calls)
}

// TestControllersHook: with Config.Controllers, nvmf_subsystem_get_controllers
// and _get_qpairs list the real target's controllers and queues, in its
// order, num_io_qpairs counting the admin queue as SPDK does; the hook is
// asked for the subsystem named, never for the discovery subsystem; and
// NVMfSubsystem carries the CNTLID range and a new Instance for a
// subsystem created again under the same NQN.
func TestControllersHook(t *testing.T) {
	const nqn = "nqn.2016-06.io.vda:c"
	var asked []string
	tg := model.New(model.Config{Controllers: func(subnqn string) []model.NVMfController {
		asked = append(asked, subnqn)
		return []model.NVMfController{{CNTLID: 7, HostNQN: "nqn.h", HostID: "94c7258b-08b6-420e-ba7c-117e7657b13b",
			Qpairs: []model.NVMfQpair{
				{QID: 0, State: "enabled", Local: model.ListenAddr{Trtype: "TCP", Traddr: "127.0.0.1", Trsvcid: "4420"},
					Peer: model.ListenAddr{Trtype: "TCP", Traddr: "127.0.0.1", Trsvcid: "50000"}},
				{QID: 1, State: "enabled", Local: model.ListenAddr{Trtype: "TCP", Traddr: "::1", Trsvcid: "4420"},
					Peer: model.ListenAddr{Trtype: "TCP", Traddr: "::1", Trsvcid: "50001"}},
			}}}
	}})
	call := func(method, params string) string {
		res, err := tg.Handle(context.Background(), method, json.RawMessage(params))
		require.NoError(t, err)
		b, err := json.Marshal(res)
		require.NoError(t, err)
		return string(b)
	}
	call("nvmf_create_subsystem", `{"nqn":"`+nqn+`","min_cntlid":5,"max_cntlid":9}`)
	assert.JSONEq(t, `[{"cntlid":7,"cntrltype":"io","hostnqn":"nqn.h","hostid":"94c7258b-08b6-420e-ba7c-117e7657b13b",
		"num_io_qpairs":2}]`, call("nvmf_subsystem_get_controllers", `{"nqn":"`+nqn+`"}`))
	assert.JSONEq(t, `[
		{"cntlid":7,"qid":0,"state":"enabled","thread":"nvmf_tgt_poll_group_000","hostnqn":"nqn.h",
		 "listen_address":{"trtype":"TCP","adrfam":"IPv4","traddr":"127.0.0.1","trsvcid":"4420"},
		 "peer_address":{"trtype":"TCP","adrfam":"IPv4","traddr":"127.0.0.1","trsvcid":"50000"}},
		{"cntlid":7,"qid":1,"state":"enabled","thread":"nvmf_tgt_poll_group_000","hostnqn":"nqn.h",
		 "listen_address":{"trtype":"TCP","adrfam":"IPv6","traddr":"::1","trsvcid":"4420"},
		 "peer_address":{"trtype":"TCP","adrfam":"IPv6","traddr":"::1","trsvcid":"50001"}}]`,
		call("nvmf_subsystem_get_qpairs", `{"nqn":"`+nqn+`"}`))
	assert.Equal(t, "[]", call("nvmf_subsystem_get_controllers", `{"nqn":"nqn.2014-08.org.nvmexpress.discovery"}`))
	assert.Equal(t, []string{nqn, nqn}, asked)

	s1, ok := tg.NVMfSubsystem(nqn, model.ListenAddr{})
	require.True(t, ok)
	assert.Equal(t, [2]uint16{5, 9}, [2]uint16{s1.MinCntlid, s1.MaxCntlid})
	call("nvmf_delete_subsystem", `{"nqn":"`+nqn+`"}`)
	call("nvmf_create_subsystem", `{"nqn":"`+nqn+`"}`)
	s2, ok := tg.NVMfSubsystem(nqn, model.ListenAddr{})
	require.True(t, ok)
	assert.NotEqual(t, s1.Instance, s2.Instance)
	assert.Equal(t, [2]uint16{1, 0xFFEF}, [2]uint16{s2.MinCntlid, s2.MaxCntlid})
}
