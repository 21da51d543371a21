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
