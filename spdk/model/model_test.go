package model_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/virtual-disk-array/vda/spdk"
	"github.com/virtual-disk-array/vda/spdk/model"
)

// step is one call in a scenario: the method, its params ("" for none),
// and what must come back: an error code and message, a result equal to
// want (JSON), or a result that check accepts.
type step struct {
	on      int // which target (0 or 1)
	method  string
	params  string
	code    int
	msg     string
	want    string
	check   func(t *testing.T, result json.RawMessage)
	advance time.Duration // move the clock before the call
}

// clock is a settable Config.Now.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// run plays steps against two fresh Targets on one Fabric: 0 is a storage
// target (host NQN hostA), 1 an initiator (host NQN hostB).
func run(t *testing.T, steps []step) {
	t.Helper()
	clk := &clock{now: time.Unix(1700000000, 0)}
	fabric := model.NewFabric()
	targets := []*model.Target{
		model.New(model.Config{Fabric: fabric, Now: clk.Now, HostNQN: hostA}),
		model.New(model.Config{Fabric: fabric, Now: clk.Now, HostNQN: hostB}),
	}
	for i, s := range steps {
		clk.advance(s.advance)
		var params json.RawMessage
		if s.params != "" {
			params = json.RawMessage(s.params)
		}
		res, err := targets[s.on].Handle(context.Background(), s.method, params)
		desc := func() string { return s.method + " " + s.params }
		if s.code != 0 {
			var e *spdk.Error
			require.True(t, errors.As(err, &e), "step %d %s: want error %d %q, got %v", i, desc(), s.code, s.msg, err)
			assert.Equal(t, s.code, e.Code, "step %d %s: %s", i, desc(), e.Message)
			if s.msg != "" {
				assert.Equal(t, s.msg, e.Message, "step %d %s", i, desc())
			}
			continue
		}
		require.NoError(t, err, "step %d %s", i, desc())
		b, err := json.Marshal(res)
		require.NoError(t, err)
		if s.want != "" {
			assert.JSONEq(t, s.want, string(b), "step %d %s", i, desc())
		}
		if s.check != nil {
			s.check(t, b)
		}
	}
}

const (
	hostA = "nqn.2014-08.org.nvmexpress:uuid:aaaaaaaa-0000-0000-0000-000000000001"
	hostB = "nqn.2014-08.org.nvmexpress:uuid:bbbbbbbb-0000-0000-0000-000000000002"
	nqn1  = "nqn.2016-06.io.vda:dn1"
)

// field decodes result (a one-element bdev list, or any object list) and
// returns the value at a dotted path of its first element.
func field(t *testing.T, result json.RawMessage, path string) any {
	t.Helper()
	var v any
	require.NoError(t, json.Unmarshal(result, &v))
	if l, ok := v.([]any); ok {
		require.NotEmpty(t, l)
		v = l[0]
	}
	for _, k := range strings.Split(path, ".") {
		m, ok := v.(map[string]any)
		require.True(t, ok, "%s: not an object at %s in %s", path, k, result)
		v = m[k]
	}
	return v
}

func hasField(t *testing.T, path string, want any) func(*testing.T, json.RawMessage) {
	return func(t *testing.T, r json.RawMessage) {
		t.Helper()
		assert.Equal(t, want, field(t, r, path), "%s in %s", path, r)
	}
}

func malloc(name string, blocks int) step {
	return step{method: "bdev_malloc_create",
		params: `{"name":"` + name + `","num_blocks":` + itoa(blocks) + `,"block_size":512}`, want: `"` + name + `"`}
}

func itoa(i int) string { b, _ := json.Marshal(i); return string(b) }

// exportSteps make nqn1 on target 0 with a TCP listener on 127.0.0.1:4420
// and bdev as namespace 1, allowing hostB.
func exportSteps(bdev string) []step {
	return []step{
		{method: "nvmf_create_transport", params: `{"trtype":"TCP"}`, want: `true`},
		{method: "nvmf_create_subsystem", params: `{"nqn":"` + nqn1 + `","ana_reporting":true,"max_namespaces":4}`,
			want: `true`},
		{method: "nvmf_subsystem_add_ns", params: `{"nqn":"` + nqn1 + `","namespace":{"bdev_name":"` + bdev +
			`","nguid":"00112233445566778899AABBCCDDEEFF"}}`, want: `1`},
		{method: "nvmf_subsystem_add_listener", params: `{"nqn":"` + nqn1 +
			`","listen_address":{"trtype":"tcp","adrfam":"ipv4","traddr":"127.0.0.1","trsvcid":"4420"}}`, want: `true`},
		{method: "nvmf_subsystem_add_host", params: `{"nqn":"` + nqn1 + `","host":"` + hostB + `"}`, want: `true`},
	}
}

func attach(name, extra string) step {
	return step{on: 1, method: "bdev_nvme_attach_controller", params: `{"name":"` + name +
		`","trtype":"tcp","adrfam":"ipv4","traddr":"127.0.0.1","trsvcid":"4420","subnqn":"` + nqn1 + `"` + extra + `}`}
}

func ctrlrState(name, want string) step {
	return step{on: 1, method: "bdev_nvme_get_controllers", params: `{"name":"` + name + `"}`,
		check: func(t *testing.T, r json.RawMessage) {
			var cs []struct {
				Ctrlrs []struct {
					State string `json:"state"`
				} `json:"ctrlrs"`
			}
			require.NoError(t, json.Unmarshal(r, &cs))
			require.Len(t, cs, 1)
			require.NotEmpty(t, cs[0].Ctrlrs)
			assert.Equal(t, want, cs[0].Ctrlrs[0].State)
		}}
}

func concat(parts ...[]step) []step {
	var out []step
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

func TestClaims(t *testing.T) {
	run(t, []step{
		malloc("B", 262144),
		{method: "bdev_lvol_create_lvstore", params: `{"bdev_name":"B","lvs_name":"lvs"}`,
			check: func(t *testing.T, r json.RawMessage) { assert.Len(t, strings.Trim(string(r), `"`), 36) }},
		{method: "bdev_get_bdevs", params: `{"name":"B"}`, check: hasField(t, "claim_type", "read_many_write_one")},
		{method: "bdev_lvol_create_lvstore", params: `{"bdev_name":"B","lvs_name":"other"}`, code: -1,
			msg: "Operation not permitted"},
		{method: "bdev_raid_create", params: `{"name":"r","raid_level":"raid1","base_bdevs":["B","X"]}`, code: -1,
			msg: "Failed to create RAID bdev r: Operation not permitted"},
		{method: "bdev_raid_get_bdevs", params: `{"category":"all"}`, want: `[]`},
		{method: "nvmf_create_subsystem", params: `{"nqn":"` + nqn1 + `"}`, want: `true`},
		{method: "nvmf_subsystem_add_ns", params: `{"nqn":"` + nqn1 + `","namespace":{"bdev_name":"B"}}`,
			code: -32602, msg: "Invalid parameters"},
		{method: "bdev_lvol_create", params: `{"lvs_name":"lvs","lvol_name":"v","size_in_mib":8}`},
		{method: "nvmf_subsystem_add_ns", params: `{"nqn":"` + nqn1 + `","namespace":{"bdev_name":"lvs/v"}}`,
			want: `1`},
		{method: "bdev_get_bdevs", params: `{"name":"lvs/v"}`, check: hasField(t, "claim_type", "exclusive_write")},
		// A bdev name that is some lvol's alias is taken.
		{method: "bdev_malloc_create", params: `{"name":"lvs/v","num_blocks":8,"block_size":512}`, code: -17,
			msg: "File exists"},
		// Removing the namespace releases the claim.
		{method: "nvmf_subsystem_remove_ns", params: `{"nqn":"` + nqn1 + `","nsid":1}`, want: `true`},
		{method: "bdev_get_bdevs", params: `{"name":"lvs/v"}`, check: hasField(t, "claimed", false)},
	})
}

func TestCascades(t *testing.T) {
	tests := []struct {
		name  string
		steps []step
	}{
		{"lvstore base deleted takes lvstore, lvols and their namespace", []step{
			malloc("B", 262144),
			{method: "bdev_lvol_create_lvstore", params: `{"bdev_name":"B","lvs_name":"lvs"}`},
			{method: "bdev_lvol_create", params: `{"lvs_name":"lvs","lvol_name":"v","size_in_mib":8}`},
			{method: "nvmf_create_subsystem", params: `{"nqn":"` + nqn1 + `"}`},
			{method: "nvmf_subsystem_add_ns", params: `{"nqn":"` + nqn1 + `","namespace":{"bdev_name":"lvs/v"}}`},
			{method: "bdev_malloc_delete", params: `{"name":"B"}`, want: `true`},
			{method: "bdev_lvol_get_lvstores", want: `[]`},
			{method: "bdev_get_bdevs", params: `{"name":"lvs/v"}`, code: -19, msg: "No such device"},
			{method: "nvmf_get_subsystems", params: `{"nqn":"` + nqn1 + `"}`, check: hasField(t, "namespaces", []any{})},
		}},
		{"raid0 member deleted: raid offline, not a bdev, its namespace gone", []step{
			malloc("M0", 65536), malloc("M1", 65536),
			{method: "bdev_raid_create", params: `{"name":"r","raid_level":"raid0","strip_size_kb":64,"base_bdevs":["M0","M1"]}`},
			{method: "nvmf_create_subsystem", params: `{"nqn":"` + nqn1 + `"}`},
			{method: "nvmf_subsystem_add_ns", params: `{"nqn":"` + nqn1 + `","namespace":{"bdev_name":"r"}}`},
			{method: "bdev_malloc_delete", params: `{"name":"M0"}`, want: `true`},
			{method: "bdev_raid_get_bdevs", params: `{"category":"offline"}`, check: hasField(t, "num_base_bdevs_discovered", 1.0)},
			{method: "bdev_get_bdevs", params: `{"name":"r"}`, code: -19},
			{method: "nvmf_get_subsystems", params: `{"nqn":"` + nqn1 + `"}`, check: hasField(t, "namespaces", []any{})},
			{method: "bdev_get_bdevs", params: `{"name":"M1"}`, check: hasField(t, "claimed", true)},
			{method: "bdev_raid_delete", params: `{"name":"r"}`, want: `true`},
			{method: "bdev_get_bdevs", params: `{"name":"M1"}`, check: hasField(t, "claimed", false)},
		}},
		{"raid1 member deleted: degraded, then gone with the last", []step{
			malloc("M0", 65536), malloc("M1", 65536),
			{method: "bdev_raid_create", params: `{"name":"m","raid_level":"1","base_bdevs":["M0","M1"]}`, want: `true`},
			{method: "bdev_malloc_delete", params: `{"name":"M0"}`},
			{method: "bdev_get_bdevs", params: `{"name":"m"}`, check: hasField(t, "driver_specific.raid.num_base_bdevs_operational", 1.0)},
			{method: "bdev_malloc_delete", params: `{"name":"M1"}`},
			{method: "bdev_raid_get_bdevs", params: `{"category":"all"}`, want: `[]`},
		}},
		{"lvstore deleted with an lvol raid member", []step{
			malloc("B", 262144),
			{method: "bdev_lvol_create_lvstore", params: `{"bdev_name":"B","lvs_name":"lvs","cluster_sz":1048576}`},
			{method: "bdev_lvol_create", params: `{"lvs_name":"lvs","lvol_name":"a","size_in_mib":8}`},
			malloc("M", 16384),
			{method: "bdev_raid_create", params: `{"name":"r","raid_level":"concat","strip_size_kb":4,"base_bdevs":["lvs/a","M"]}`},
			{method: "bdev_get_bdevs", params: `{"name":"r"}`, check: hasField(t, "num_blocks", 32768.0)},
			{method: "bdev_lvol_delete_lvstore", params: `{"lvs_name":"lvs"}`, want: `true`},
			{method: "bdev_raid_get_bdevs", params: `{"category":"offline"}`, check: hasField(t, "name", "r")},
			{method: "bdev_get_bdevs", params: `{"name":"B"}`, check: hasField(t, "claimed", false)},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { run(t, tt.steps) })
	}
}

func TestRaidMembersAppearLater(t *testing.T) {
	run(t, []step{
		malloc("A", 65536),
		{method: "bdev_raid_create", params: `{"name":"r","raid_level":"raid0","strip_size_kb":64,"base_bdevs":["A","B","lvs/c"]}`,
			want: `true`},
		{method: "bdev_raid_get_bdevs", params: `{"category":"configuring"}`, check: func(t *testing.T, r json.RawMessage) {
			assert.Equal(t, "00000000-0000-0000-0000-000000000000", field(t, r, "uuid"))
			assert.Equal(t, 1.0, field(t, r, "num_base_bdevs_discovered"))
		}},
		{method: "bdev_get_bdevs", params: `{"name":"r"}`, code: -19},
		malloc("B", 65536),
		{method: "bdev_get_bdevs", params: `{"name":"r"}`, code: -19},
		// The last member is an lvol named by its alias.
		malloc("L", 262144),
		{method: "bdev_lvol_create_lvstore", params: `{"bdev_name":"L","lvs_name":"lvs","cluster_sz":1048576}`},
		{method: "bdev_lvol_create", params: `{"lvs_name":"lvs","lvol_name":"c","size_in_mib":32}`},
		{method: "bdev_get_bdevs", params: `{"name":"r"}`, check: func(t *testing.T, r json.RawMessage) {
			assert.Equal(t, "online", field(t, r, "driver_specific.raid.state"))
			assert.Equal(t, 3*65536.0, field(t, r, "num_blocks"))
			assert.NotEqual(t, "00000000-0000-0000-0000-000000000000", field(t, r, "uuid"))
		}},
		{method: "bdev_get_bdevs", params: `{"name":"lvs/c"}`, check: hasField(t, "claim_type", "exclusive_write")},
	})
}

func TestLvstoreCapacity(t *testing.T) {
	run(t, []step{
		malloc("B", 262144), // 128 MiB
		{method: "bdev_lvol_create_lvstore", params: `{"bdev_name":"B","lvs_name":"lvs","cluster_sz":1048576}`},
		{method: "bdev_lvol_create", params: `{"lvs_name":"lvs","lvol_name":"thick","size_in_mib":3}`},
		{method: "bdev_lvol_create", params: `{"lvs_name":"lvs","lvol_name":"thin","size_in_mib":1000,"thin_provision":true}`},
		{method: "bdev_lvol_get_lvstores", check: func(t *testing.T, r json.RawMessage) {
			assert.Equal(t, 127.0, field(t, r, "total_data_clusters"))
			assert.Equal(t, 124.0, field(t, r, "free_clusters"))
			assert.Equal(t, 34317795328.0, field(t, r, "max_growable_size"))
		}},
		{method: "bdev_lvol_create", params: `{"lvs_name":"lvs","lvol_name":"big","size_in_mib":125}`, code: -32602,
			msg: "No space left on device"},
		{method: "bdev_lvol_resize", params: `{"name":"lvs/thick","size_in_mib":127}`, want: `true`},
		{method: "bdev_lvol_resize", params: `{"name":"lvs/thick","size_in_mib":128}`, code: -32602,
			msg: "No space left on device"},
	})
}

func TestDecodeErrorsPerModule(t *testing.T) {
	run(t, []step{
		{method: "bdev_malloc_create", params: `{"num_blocks":8,"block_size":512,"bogus":1}`, code: -32603,
			msg: "spdk_json_decode_object failed"},
		{method: "bdev_malloc_create", params: `{"num_blocks":8,"block_size":"512"}`, code: -32603},
		{method: "bdev_malloc_create", params: `{"num_blocks":8,"block_size":512,"name":null}`, code: -32603},
		{method: "bdev_lvol_get_lvstores", params: `[]`, code: -32603},
		{method: "bdev_raid_get_bdevs", params: `{"category":"all","x":1}`, code: -32700,
			msg: "spdk_json_decode_object failed"},
		{method: "nvmf_create_subsystem", params: `{"nqn":"` + nqn1 + `","allow_any_host":"true"}`, code: -32602,
			msg: "Invalid parameters"},
		{method: "nvmf_create_transport", params: `{"trtype":"TCP","whatever":[1]}`, want: `true`},
		{method: "nvmf_create_subsystem", params: `{"nqn":"` + nqn1 + `"}`, want: `true`},
		{method: "nvmf_subsystem_add_listener", params: `{"nqn":"` + nqn1 +
			`","listen_address":{"trtype":"tcp","traddr":"127.0.0.1","trsvcid":"4420"},"x":1}`, want: `true`},
		{method: "nvmf_subsystem_add_listener", params: `{"nqn":"` + nqn1 +
			`","listen_address":{"trtype":"tcp","traddr":"127.0.0.1","trsvcid":"4421","x":1}}`, code: -32602},
		{method: "spdk_get_version", params: `{}`, code: -32602, msg: "spdk_get_version method requires no parameters"},
		{method: "no_such", code: -32601, msg: "Method not found"},
		{method: "bdev_set_options", code: -1},
	})
}

func TestQosOnIdleBdevSticks(t *testing.T) {
	run(t, []step{
		malloc("M", 1024),
		{method: "bdev_set_qos_limit", params: `{"name":"M","rw_ios_per_sec":1500}`, want: `true`},
		{method: "bdev_get_bdevs", params: `{"name":"M"}`, check: hasField(t, "assigned_rate_limits.rw_ios_per_sec", 2000.0)},
		{method: "bdev_set_qos_limit", params: `{"name":"M","rw_ios_per_sec":0}`, code: -32602,
			msg: "Failed to configure rate limit: Resource temporarily unavailable"},
		{method: "bdev_set_qos_limit", params: `{"name":"M"}`, code: -22, msg: "No rate limits specified"},
	})
}

func TestFabricAttach(t *testing.T) {
	tests := []struct {
		name  string
		steps []step
	}{
		{"host not allowed, unknown subsystem, nothing listening", concat(
			[]step{malloc("D", 65536)}, exportSteps("D"),
			[]step{
				{on: 1, method: "bdev_nvme_attach_controller", params: `{"name":"x","trtype":"tcp","traddr":"127.0.0.1","trsvcid":"4420","subnqn":"` + nqn1 + `","hostnqn":"` + hostA + `"}`,
					code: -5, msg: "Input/output error"},
				{on: 1, method: "bdev_nvme_attach_controller", params: `{"name":"x","trtype":"tcp","traddr":"127.0.0.1","trsvcid":"4420","subnqn":"nqn.2016-06.io.vda:nope"}`,
					code: -5},
				{on: 1, method: "bdev_nvme_attach_controller", params: `{"name":"x","trtype":"tcp","traddr":"127.0.0.1","trsvcid":"4999","subnqn":"` + nqn1 + `"}`,
					code: -5},
				{on: 1, method: "bdev_nvme_get_controllers", want: `[]`},
			})},
		{"attach mirrors the namespace; the bdev uuid is the nguid", concat(
			[]step{malloc("D", 65536)}, exportSteps("D"),
			[]step{
				func() step { s := attach("dn1", ""); s.want = `["dn1n1"]`; return s }(),
				{on: 1, method: "bdev_get_bdevs", params: `{"name":"dn1n1"}`, check: func(t *testing.T, r json.RawMessage) {
					assert.Equal(t, "00112233-4455-6677-8899-aabbccddeeff", field(t, r, "uuid"))
					assert.Equal(t, "NVMe disk", field(t, r, "product_name"))
					assert.Equal(t, 65536.0, field(t, r, "num_blocks"))
				}},
				{on: 1, method: "bdev_get_bdevs", params: `{"name":"00112233-4455-6677-8899-aabbccddeeff"}`,
					check: hasField(t, "name", "dn1n1")},
				{method: "nvmf_subsystem_get_controllers", params: `{"nqn":"` + nqn1 + `"}`, check: func(t *testing.T, r json.RawMessage) {
					assert.Equal(t, hostB, field(t, r, "hostnqn"))
					assert.Equal(t, "bbbbbbbb-0000-0000-0000-000000000002", field(t, r, "hostid"))
				}},
				// Same name, same path.
				func() step {
					s := attach("dn1", "")
					s.code, s.msg = -114, "A controller named dn1 already exists with the specified network path"
					return s
				}(),
				{on: 1, method: "bdev_nvme_detach_controller", params: `{"name":"dn1"}`, want: `true`},
				{on: 1, method: "bdev_get_bdevs", want: `[]`},
				{method: "nvmf_subsystem_get_controllers", params: `{"nqn":"` + nqn1 + `"}`, want: `[]`},
			})},
		{"namespaces and ANA states follow the remote", concat(
			[]step{malloc("D", 65536), malloc("E", 32768)}, exportSteps("D"),
			[]step{
				attach("dn1", ""),
				{method: "nvmf_subsystem_add_ns", params: `{"nqn":"` + nqn1 + `","namespace":{"bdev_name":"E"}}`, want: `2`},
				{on: 1, method: "bdev_get_bdevs", params: `{"name":"dn1n2"}`, check: hasField(t, "num_blocks", 32768.0)},
				{method: "nvmf_subsystem_listener_set_ana_state", params: `{"nqn":"` + nqn1 +
					`","listen_address":{"trtype":"TCP","traddr":"127.0.0.1","trsvcid":"4420"},"ana_state":"inaccessible","anagrpid":1}`},
				{on: 1, method: "bdev_get_bdevs", params: `{"name":"dn1n1"}`, check: func(t *testing.T, r json.RawMessage) {
					paths := field(t, r, "driver_specific.nvme").([]any)
					assert.Equal(t, "inaccessible", paths[0].(map[string]any)["ns_data"].(map[string]any)["ana_state"])
				}},
				{method: "bdev_malloc_delete", params: `{"name":"E"}`, want: `true`},
				{on: 1, method: "bdev_get_bdevs", params: `{"name":"dn1n2"}`, code: -19},
			})},
		{"fencing: remove_host cuts the host off until it is allowed again", concat(
			[]step{malloc("D", 65536)}, exportSteps("D"),
			[]step{
				attach("dn1", `,"ctrlr_loss_timeout_sec":-1,"reconnect_delay_sec":2`),
				ctrlrState("dn1", "enabled"),
				// Turning allow_any_host off does not disconnect.
				{method: "nvmf_subsystem_allow_any_host", params: `{"nqn":"` + nqn1 + `","allow_any_host":false}`},
				ctrlrState("dn1", "enabled"),
				{method: "nvmf_subsystem_remove_host", params: `{"nqn":"` + nqn1 + `","host":"` + hostB + `"}`, want: `true`},
				ctrlrState("dn1", "reconnect_is_delayed"),
				{method: "nvmf_subsystem_get_controllers", params: `{"nqn":"` + nqn1 + `"}`, want: `[]`},
				// The bdev stays while reconnecting; reconnects fail while fenced.
				{on: 1, method: "bdev_get_bdevs", params: `{"name":"dn1n1"}`, advance: 10 * time.Second},
				ctrlrState("dn1", "reconnect_is_delayed"),
				// A new attach with the fenced host fails too.
				func() step { s := attach("other", ""); s.code = -5; return s }(),
				{method: "nvmf_subsystem_add_host", params: `{"nqn":"` + nqn1 + `","host":"` + hostB + `"}`},
				{on: 1, method: "bdev_nvme_get_controllers", params: `{"name":"dn1"}`, advance: 3 * time.Second,
					check: func(t *testing.T, r json.RawMessage) {
						ctrl := field(t, r, "ctrlrs").([]any)[0].(map[string]any)
						assert.Equal(t, "enabled", ctrl["state"])
						assert.Equal(t, 2.0, ctrl["cntlid"], "a new controller")
					}},
			})},
		{"subsystem deleted: reconnect_is_delayed, then gone at ctrlr_loss_timeout", concat(
			[]step{malloc("D", 65536)}, exportSteps("D"),
			[]step{
				attach("dn1", `,"ctrlr_loss_timeout_sec":30,"reconnect_delay_sec":5`),
				{on: 1, method: "bdev_raid_create", params: `{"name":"r","raid_level":"raid0","strip_size_kb":64,"base_bdevs":["dn1n1"]}`},
				{method: "nvmf_delete_subsystem", params: `{"nqn":"` + nqn1 + `"}`, want: `true`},
				ctrlrState("dn1", "reconnect_is_delayed"),
				{on: 1, method: "bdev_get_bdevs", params: `{"name":"dn1n1"}`, advance: 29 * time.Second},
				{on: 1, method: "bdev_get_bdevs", params: `{"name":"dn1n1"}`, advance: time.Second, code: -19},
				{on: 1, method: "bdev_nvme_get_controllers", want: `[]`},
				{on: 1, method: "bdev_raid_get_bdevs", params: `{"category":"offline"}`, check: hasField(t, "name", "r")},
			})},
		{"subsystem deleted with the default ctrlr_loss_timeout_sec 0: controller deleted", concat(
			[]step{malloc("D", 65536)}, exportSteps("D"),
			[]step{
				attach("dn1", ""),
				{method: "nvmf_delete_subsystem", params: `{"nqn":"` + nqn1 + `"}`},
				{on: 1, method: "bdev_nvme_get_controllers", want: `[]`},
				{on: 1, method: "bdev_get_bdevs", want: `[]`},
			})},
		{"two paths, detach one", concat(
			[]step{malloc("D", 65536)}, exportSteps("D"),
			[]step{
				{method: "nvmf_subsystem_add_listener", params: `{"nqn":"` + nqn1 +
					`","listen_address":{"trtype":"tcp","traddr":"127.0.0.1","trsvcid":"4421"}}`},
				attach("dn1", ""),
				{on: 1, method: "bdev_nvme_attach_controller", params: `{"name":"dn1","trtype":"tcp","traddr":"127.0.0.1","trsvcid":"4421","subnqn":"` + nqn1 + `","multipath":"disable"}`,
					code: -114, msg: "A controller named dn1 already exists and multipath is disabled"},
				{on: 1, method: "bdev_nvme_attach_controller", params: `{"name":"dn1","trtype":"tcp","traddr":"127.0.0.1","trsvcid":"4421","subnqn":"` + nqn1 + `","multipath":"multipath"}`,
					want: `["dn1n1"]`},
				{on: 1, method: "bdev_get_bdevs", params: `{"name":"dn1n1"}`, check: func(t *testing.T, r json.RawMessage) {
					assert.Len(t, field(t, r, "driver_specific.nvme"), 2)
				}},
				{on: 1, method: "bdev_nvme_detach_controller", params: `{"name":"dn1","trsvcid":"4999"}`, code: -6},
				{on: 1, method: "bdev_nvme_detach_controller", params: `{"name":"dn1","trsvcid":"4420"}`, want: `true`},
				{on: 1, method: "bdev_get_bdevs", params: `{"name":"dn1n1"}`, check: func(t *testing.T, r json.RawMessage) {
					assert.Len(t, field(t, r, "driver_specific.nvme"), 1)
				}},
			})},
		{"listeners: port owned by another target, address not local", concat(
			[]step{malloc("D", 65536)}, exportSteps("D"),
			[]step{
				{on: 1, method: "nvmf_create_transport", params: `{"trtype":"TCP"}`},
				{on: 1, method: "nvmf_create_subsystem", params: `{"nqn":"nqn.2016-06.io.vda:cn1"}`},
				{on: 1, method: "nvmf_subsystem_add_listener", params: `{"nqn":"nqn.2016-06.io.vda:cn1","listen_address":{"trtype":"tcp","traddr":"127.0.0.1","trsvcid":"4420"}}`,
					code: -32602},
				{on: 1, method: "nvmf_subsystem_add_listener", params: `{"nqn":"nqn.2016-06.io.vda:cn1","listen_address":{"trtype":"tcp","traddr":"10.9.9.9","trsvcid":"4420"}}`,
					code: -32602},
				{on: 1, method: "nvmf_subsystem_add_listener", params: `{"nqn":"nqn.2016-06.io.vda:cn1","listen_address":{"trtype":"tcp","traddr":"127.0.0.1","trsvcid":"4430"}}`,
					want: `true`},
			})},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { run(t, tt.steps) })
	}
}

func TestDefaultHostNQN(t *testing.T) {
	tg := model.New(model.Config{})
	id := tg.HostID()
	assert.Len(t, id, 36)
	assert.Equal(t, "nqn.2014-08.org.nvmexpress:uuid:"+id, tg.HostNQN())
	tg = model.New(model.Config{HostNQN: hostA})
	assert.Equal(t, "aaaaaaaa-0000-0000-0000-000000000001", tg.HostID())
}

func TestGetBdevsWaitsForBdev(t *testing.T) {
	tg := model.New(model.Config{})
	ctx := context.Background()
	assert.True(t, tg.Async("bdev_get_bdevs"))
	assert.False(t, tg.Async("bdev_malloc_create"))
	done := make(chan error, 1)
	go func() {
		_, err := tg.Handle(ctx, "bdev_get_bdevs", json.RawMessage(`{"name":"Late","timeout":5000}`))
		done <- err
	}()
	time.Sleep(50 * time.Millisecond)
	_, err := tg.Handle(ctx, "bdev_malloc_create", json.RawMessage(`{"name":"Late","num_blocks":8,"block_size":512}`))
	require.NoError(t, err)
	select {
	case err := <-done:
		assert.NoError(t, err)
	case <-time.After(2 * time.Second):
		t.Fatal("bdev_get_bdevs did not see the new bdev")
	}
}
