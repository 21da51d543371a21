package spdk

import (
	"context"
	"testing"
)

func TestNvmfWire(t *testing.T) {
	const nqn = "nqn.2016-06.io.spdk:ref1"
	addr := ListenAddress{Trtype: TrtypeTCP, Adrfam: AdrfamIPv4, Traddr: "127.0.0.1", Trsvcid: "4520"}
	const addrJSON = `{"trtype": "TCP", "adrfam": "IPv4", "traddr": "127.0.0.1", "trsvcid": "4520"}`
	runWire(t, []wireCase{
		{
			name: "nvmf_create_transport",
			call: func(ctx context.Context, c *Client) (any, error) {
				return nil, c.NvmfCreateTransport(ctx, NvmfCreateTransportRequest{Trtype: TrtypeTCP})
			},
			method: "nvmf_create_transport", params: `{"trtype": "TCP"}`,
		},
		{
			name:   "nvmf_get_transports",
			call:   func(ctx context.Context, c *Client) (any, error) { return c.NvmfGetTransports(ctx, "") },
			method: "nvmf_get_transports",
			result: `[{"trtype": "TCP", "max_queue_depth": 128, "max_io_qpairs_per_ctrlr": 127,
			 "in_capsule_data_size": 4096, "max_io_size": 131072, "max_aq_depth": 128, "kas": 100}]`,
			want: []Transport{{Trtype: "TCP", MaxQueueDepth: 128, MaxIOQpairsPerCtrlr: 127, InCapsuleDataSize: 4096,
				MaxIOSize: 131072, MaxAqDepth: 128}},
		},
		{
			name:   "nvmf_get_transports by type",
			call:   func(ctx context.Context, c *Client) (any, error) { return c.NvmfGetTransports(ctx, "tcp") },
			method: "nvmf_get_transports", params: `{"trtype": "tcp"}`, result: `[]`, want: []Transport{},
		},
		{
			name: "nvmf_create_subsystem",
			call: func(ctx context.Context, c *Client) (any, error) {
				return nil, c.NvmfCreateSubsystem(ctx, NvmfCreateSubsystemRequest{NQN: nqn, SerialNumber: "S1",
					ModelNumber: "M", AnaReporting: true, MaxNamespaces: 8})
			},
			method: "nvmf_create_subsystem",
			params: `{"nqn": "` + nqn + `", "serial_number": "S1", "model_number": "M", "ana_reporting": true,
			 "max_namespaces": 8}`,
		},
		{
			name:   "nvmf_delete_subsystem",
			call:   func(ctx context.Context, c *Client) (any, error) { return nil, c.NvmfDeleteSubsystem(ctx, nqn) },
			method: "nvmf_delete_subsystem", params: `{"nqn": "` + nqn + `"}`,
		},
		{
			name:   "nvmf_get_subsystems",
			call:   func(ctx context.Context, c *Client) (any, error) { return c.NvmfGetSubsystems(ctx, "") },
			method: "nvmf_get_subsystems",
			result: `[{"nqn": "nqn.2014-08.org.nvmexpress.discovery", "subtype": "Discovery", "listen_addresses": [],
			  "allow_any_host": true, "hosts": []},
			 {"nqn": "` + nqn + `", "subtype": "NVMe", "listen_addresses": [` + addrJSON + `], "allow_any_host": false,
			  "hosts": [{"nqn": "h"}], "serial_number": "S1", "model_number": "M", "max_namespaces": 8,
			  "passthrough": false, "min_cntlid": 1, "max_cntlid": 65519, "dmrsl": 2097152, "wzsl": 12,
			  "namespaces": [{"nsid": 1, "bdev_name": "b", "name": "b", "nguid": "6D36", "uuid": "6d36",
			   "anagrpid": 4}]}]`,
			want: []Subsystem{
				{NQN: DiscoveryNQN, Subtype: "Discovery", ListenAddresses: []ListenAddress{}, AllowAnyHost: true,
					Hosts: []SubsystemHost{}},
				{NQN: nqn, Subtype: "NVMe", ListenAddresses: []ListenAddress{addr}, Hosts: []SubsystemHost{{NQN: "h"}},
					SerialNumber: "S1", ModelNumber: "M", MaxNamespaces: 8, MinCntlid: 1, MaxCntlid: 65519,
					Namespaces: []Namespace{{NSID: 1, BdevName: "b", Name: "b", NGUID: "6D36", UUID: "6d36",
						AnaGrpID: 4}}},
			},
		},
		{
			name: "nvmf_subsystem_add_ns",
			call: func(ctx context.Context, c *Client) (any, error) {
				return c.NvmfSubsystemAddNs(ctx, NvmfSubsystemAddNsRequest{NQN: nqn, Namespace: NamespaceParams{
					BdevName: "b", UUID: "12345678-1234-1234-1234-123456789abc"}})
			},
			method: "nvmf_subsystem_add_ns",
			params: `{"nqn": "` + nqn + `", "namespace": {"bdev_name": "b", "uuid": "12345678-1234-1234-1234-123456789abc"}}`,
			result: `1`, want: uint32(1),
		},
		{
			name: "nvmf_subsystem_remove_ns",
			call: func(ctx context.Context, c *Client) (any, error) {
				return nil, c.NvmfSubsystemRemoveNs(ctx, nqn, 5)
			},
			method: "nvmf_subsystem_remove_ns", params: `{"nqn": "` + nqn + `", "nsid": 5}`,
		},
		{
			name: "nvmf_subsystem_add_listener",
			call: func(ctx context.Context, c *Client) (any, error) {
				return nil, c.NvmfSubsystemAddListener(ctx, NvmfSubsystemAddListenerRequest{NQN: nqn,
					ListenAddress: addr, AnaState: AnaNonOptimized})
			},
			method: "nvmf_subsystem_add_listener",
			params: `{"nqn": "` + nqn + `", "listen_address": ` + addrJSON + `, "ana_state": "non_optimized"}`,
		},
		{
			name: "nvmf_subsystem_remove_listener",
			call: func(ctx context.Context, c *Client) (any, error) {
				return nil, c.NvmfSubsystemRemoveListener(ctx, nqn, addr)
			},
			method: "nvmf_subsystem_remove_listener",
			params: `{"nqn": "` + nqn + `", "listen_address": ` + addrJSON + `}`,
		},
		{
			name:   "nvmf_subsystem_get_listeners",
			call:   func(ctx context.Context, c *Client) (any, error) { return c.NvmfSubsystemGetListeners(ctx, nqn) },
			method: "nvmf_subsystem_get_listeners", params: `{"nqn": "` + nqn + `"}`,
			result: `[{"address": ` + addrJSON + `, "ana_states": [{"ana_group": 1, "ana_state": "optimized"}]}]`,
			want:   []Listener{{Address: addr, AnaStates: []AnaGroupState{{AnaGroup: 1, AnaState: AnaOptimized}}}},
		},
		{
			name: "nvmf_subsystem_listener_set_ana_state all groups",
			call: func(ctx context.Context, c *Client) (any, error) {
				return nil, c.NvmfSubsystemListenerSetAnaState(ctx, NvmfSubsystemListenerSetAnaStateRequest{
					NQN: nqn, ListenAddress: addr, AnaState: AnaInaccessible})
			},
			method: "nvmf_subsystem_listener_set_ana_state",
			params: `{"nqn": "` + nqn + `", "listen_address": ` + addrJSON + `, "ana_state": "inaccessible"}`,
		},
		{
			name: "nvmf_subsystem_listener_set_ana_state one group",
			call: func(ctx context.Context, c *Client) (any, error) {
				return nil, c.NvmfSubsystemListenerSetAnaState(ctx, NvmfSubsystemListenerSetAnaStateRequest{
					NQN: nqn, ListenAddress: addr, AnaState: AnaOptimized, AnaGrpID: 2})
			},
			method: "nvmf_subsystem_listener_set_ana_state",
			params: `{"nqn": "` + nqn + `", "listen_address": ` + addrJSON + `, "ana_state": "optimized", "anagrpid": 2}`,
		},
		{
			name: "nvmf_subsystem_add_host",
			call: func(ctx context.Context, c *Client) (any, error) {
				return nil, c.NvmfSubsystemAddHost(ctx, nqn, "nqn.h:1")
			},
			method: "nvmf_subsystem_add_host", params: `{"nqn": "` + nqn + `", "host": "nqn.h:1"}`,
		},
		{
			name: "nvmf_subsystem_remove_host",
			call: func(ctx context.Context, c *Client) (any, error) {
				return nil, c.NvmfSubsystemRemoveHost(ctx, nqn, "nqn.h:1")
			},
			method: "nvmf_subsystem_remove_host", params: `{"nqn": "` + nqn + `", "host": "nqn.h:1"}`,
		},
		{
			name: "nvmf_subsystem_allow_any_host false is sent",
			call: func(ctx context.Context, c *Client) (any, error) {
				return nil, c.NvmfSubsystemAllowAnyHost(ctx, nqn, false)
			},
			method: "nvmf_subsystem_allow_any_host", params: `{"nqn": "` + nqn + `", "allow_any_host": false}`,
		},
		{
			name:   "nvmf_subsystem_get_controllers",
			call:   func(ctx context.Context, c *Client) (any, error) { return c.NvmfSubsystemGetControllers(ctx, nqn) },
			method: "nvmf_subsystem_get_controllers", params: `{"nqn": "` + nqn + `"}`,
			result: `[{"cntlid": 1, "cntrltype": "io", "hostnqn": "h", "hostid": "94c7", "num_io_qpairs": 1}]`,
			want:   []NvmfController{{Cntlid: 1, Cntrltype: "io", Hostnqn: "h", Hostid: "94c7", NumIOQpairs: 1}},
		},
	})
}
