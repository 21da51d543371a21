package model_test

import (
	"context"
	"encoding/json"
	"strconv"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/virtual-disk-array/vda/spdk/model"
)

// TestChangedHook: Config.Changed names the subsystem of every change a
// connected host or a discovery controller should hear of, and
// NVMfDiscovery lists what a host may reach, as SPDK's discovery log does.
func TestChangedHook(t *testing.T) {
	var changed []string
	tg := model.New(model.Config{Changed: func(nqn string) { changed = append(changed, nqn) }})
	call := func(method, params string) {
		t.Helper()
		_, err := tg.Handle(context.Background(), method, json.RawMessage(params))
		require.NoError(t, err, method)
	}
	const a, b = "nqn.2016-06.io.vda:a", "nqn.2016-06.io.vda:b"
	const disc = "nqn.2014-08.org.nvmexpress.discovery"
	const h1, h2 = "nqn.2016-06.io.vda:host1", "nqn.2016-06.io.vda:host2"
	addr := func(port string) string {
		return `"listen_address":{"trtype":"tcp","traddr":"127.0.0.1","trsvcid":"` + port + `"}`
	}
	call("nvmf_create_transport", `{"trtype":"TCP"}`)
	call("nvmf_create_subsystem", `{"nqn":"`+a+`","ana_reporting":true}`)
	call("nvmf_create_subsystem", `{"nqn":"`+b+`","allow_any_host":true}`)
	call("bdev_malloc_create", `{"name":"m0","num_blocks":64,"block_size":512}`)
	call("bdev_malloc_create", `{"name":"m1","num_blocks":64,"block_size":512}`)
	assert.Empty(t, changed, "nothing to tell about new subsystems")

	for _, tc := range []struct {
		method, params, want string
	}{
		{"nvmf_subsystem_add_listener", `{"nqn":"` + a + `",` + addr("4420") + `}`, a},
		{"nvmf_subsystem_add_listener", `{"nqn":"` + a + `",` + addr("4421") + `}`, a},
		{"nvmf_subsystem_add_listener", `{"nqn":"` + b + `",` + addr("4420") + `}`, b},
		{"nvmf_subsystem_add_listener", `{"nqn":"` + disc + `",` + addr("4420") + `}`, disc},
		{"nvmf_subsystem_add_ns", `{"nqn":"` + a + `","namespace":{"bdev_name":"m0"}}`, a},
		{"nvmf_subsystem_add_ns", `{"nqn":"` + a + `","namespace":{"bdev_name":"m1"}}`, a},
		{"nvmf_subsystem_remove_ns", `{"nqn":"` + a + `","nsid":2}`, a},
		{"nvmf_subsystem_listener_set_ana_state", `{"nqn":"` + a + `",` + addr("4421") + `,"ana_state":"inaccessible"}`, a},
		{"nvmf_subsystem_set_ns_ana_group", `{"nqn":"` + a + `","nsid":1,"anagrpid":3}`, a},
		{"nvmf_subsystem_add_host", `{"nqn":"` + a + `","host":"` + h1 + `"}`, a},
		{"nvmf_subsystem_add_host", `{"nqn":"` + a + `","host":"` + h2 + `"}`, a},
		{"nvmf_subsystem_remove_host", `{"nqn":"` + a + `","host":"` + h2 + `"}`, a},
		{"nvmf_subsystem_allow_any_host", `{"nqn":"` + b + `","allow_any_host":false}`, b},
		{"nvmf_subsystem_allow_any_host", `{"nqn":"` + b + `","allow_any_host":true}`, b},
	} {
		changed = nil
		call(tc.method, tc.params)
		assert.Equal(t, []string{tc.want}, changed, tc.method)
	}

	tcp := func(nqn string, discovery bool, port string, id uint16) model.NVMfDiscoveryEntry {
		return model.NVMfDiscoveryEntry{NQN: nqn, Discovery: discovery, Trtype: "TCP", Adrfam: "IPv4",
			Traddr: "127.0.0.1", Trsvcid: port, PortID: id}
	}
	assert.Equal(t, []model.NVMfDiscoveryEntry{
		tcp(disc, true, "4420", 0), tcp(a, false, "4420", 0), tcp(a, false, "4421", 1), tcp(b, false, "4420", 0),
	}, tg.NVMfDiscovery(h1))
	assert.Equal(t, []model.NVMfDiscoveryEntry{tcp(disc, true, "4420", 0), tcp(b, false, "4420", 0)},
		tg.NVMfDiscovery(h2), "a does not allow h2")

	s, ok := tg.NVMfSubsystem(a, model.ListenAddr{Trtype: "TCP", Traddr: "127.0.0.1", Trsvcid: "4420"})
	require.True(t, ok)
	assert.Equal(t, uint32(32), s.MaxNamespaces)

	changed = nil
	call("bdev_malloc_delete", `{"name":"m0"}`)
	assert.Equal(t, []string{a}, changed, "namespace hot-removed with its bdev")
	// An lvol exported by b grows: b's hosts are told (SPDK's resize
	// event); the same size again tells nobody.
	call("bdev_malloc_create", `{"name":"base","num_blocks":65536,"block_size":512}`)
	call("bdev_lvol_create_lvstore", `{"bdev_name":"base","lvs_name":"lvs","cluster_sz":1048576}`)
	call("bdev_lvol_create", `{"lvol_name":"v","size_in_mib":2,"lvs_name":"lvs"}`)
	call("nvmf_subsystem_add_ns", `{"nqn":"`+b+`","namespace":{"bdev_name":"lvs/v"}}`)
	for _, tc := range []struct {
		mib  int
		want []string
	}{{4, []string{b}}, {4, nil}} {
		changed = nil
		call("bdev_lvol_resize", `{"name":"lvs/v","size_in_mib":`+strconv.Itoa(tc.mib)+`}`)
		assert.Equal(t, tc.want, changed, "resize to %d MiB", tc.mib)
	}

	changed = nil
	call("nvmf_subsystem_remove_listener", `{"nqn":"`+a+`",`+addr("4421")+`}`)
	assert.Equal(t, []string{a}, changed)
	changed = nil
	call("nvmf_delete_subsystem", `{"nqn":"`+a+`"}`)
	assert.Contains(t, changed, a)
	assert.Equal(t, []model.NVMfDiscoveryEntry{tcp(disc, true, "4420", 0), tcp(b, false, "4420", 0)},
		tg.NVMfDiscovery(h1))
}
