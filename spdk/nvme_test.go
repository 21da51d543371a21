package spdk

import (
	"context"
	"testing"
)

func intp(v int) *int { return &v }

func TestNvmeWire(t *testing.T) {
	runWire(t, []wireCase{
		{
			name: "bdev_nvme_attach_controller",
			call: func(ctx context.Context, c *Client) (any, error) {
				return c.BdevNvmeAttachController(ctx, BdevNvmeAttachControllerRequest{Name: "ref1", Trtype: "tcp",
					Traddr: "127.0.0.1", Adrfam: "ipv4", Trsvcid: "4520", Subnqn: "nqn.2016-06.io.spdk:ref1",
					Hostnqn:             "nqn.2014-08.org.nvmexpress:uuid:11111111-0000-0000-0000-000000000001",
					CtrlrLossTimeoutSec: intp(-1), ReconnectDelaySec: intp(2), FastIOFailTimeoutSec: intp(0)})
			},
			method: "bdev_nvme_attach_controller",
			params: `{"name": "ref1", "trtype": "tcp", "traddr": "127.0.0.1", "adrfam": "ipv4", "trsvcid": "4520",
			 "subnqn": "nqn.2016-06.io.spdk:ref1",
			 "hostnqn": "nqn.2014-08.org.nvmexpress:uuid:11111111-0000-0000-0000-000000000001",
			 "ctrlr_loss_timeout_sec": -1, "reconnect_delay_sec": 2, "fast_io_fail_timeout_sec": 0}`,
			result: `["ref1n1", "ref1n3"]`, want: []string{"ref1n1", "ref1n3"},
		},
		{
			name: "bdev_nvme_attach_controller minimal",
			call: func(ctx context.Context, c *Client) (any, error) {
				return c.BdevNvmeAttachController(ctx, BdevNvmeAttachControllerRequest{Name: "r2", Trtype: "TCP",
					Traddr: "127.0.0.1", Multipath: MultipathMulti})
			},
			method: "bdev_nvme_attach_controller",
			params: `{"name": "r2", "trtype": "TCP", "traddr": "127.0.0.1", "multipath": "multipath"}`,
			result: `["r2n1"]`, want: []string{"r2n1"},
		},
		{
			name: "bdev_nvme_detach_controller one path",
			call: func(ctx context.Context, c *Client) (any, error) {
				return nil, c.BdevNvmeDetachController(ctx, BdevNvmeDetachControllerRequest{Name: "ref1",
					Trtype: "tcp", Traddr: "127.0.0.1", Trsvcid: "4521"})
			},
			method: "bdev_nvme_detach_controller",
			params: `{"name": "ref1", "trtype": "tcp", "traddr": "127.0.0.1", "trsvcid": "4521"}`,
		},
		{
			name:   "bdev_nvme_get_controllers all",
			call:   func(ctx context.Context, c *Client) (any, error) { return c.BdevNvmeGetControllers(ctx, "") },
			method: "bdev_nvme_get_controllers",
			result: `[{"name": "r2", "ctrlrs": [{"state": "reconnect_is_delayed", "trid": {"trtype": "TCP",
			 "adrfam": "IPv4", "traddr": "127.0.0.1", "trsvcid": "4520", "subnqn": "nqn.2016-06.io.spdk:ref2"},
			 "cntlid": 1, "host": {"nqn": "nqn.h", "addr": "", "svcid": "", "no_shn_notification": false}}]}]`,
			want: []NvmeController{{Name: "r2", Ctrlrs: []NvmeCtrlr{{State: NvmeCtrlrReconnectIsDelayed,
				Trid: NvmeTrid{Trtype: "TCP", Adrfam: "IPv4", Traddr: "127.0.0.1", Trsvcid: "4520",
					Subnqn: "nqn.2016-06.io.spdk:ref2"}, Cntlid: 1, Host: NvmeCtrlrHost{NQN: "nqn.h"}}}}},
		},
		{
			name:   "bdev_nvme_get_controllers by name",
			call:   func(ctx context.Context, c *Client) (any, error) { return c.BdevNvmeGetControllers(ctx, "r2") },
			method: "bdev_nvme_get_controllers", params: `{"name": "r2"}`, result: `[]`, want: []NvmeController{},
		},
		{
			name: "bdev_nvme_set_options",
			call: func(ctx context.Context, c *Client) (any, error) {
				return nil, c.BdevNvmeSetOptions(ctx, BdevNvmeSetOptionsRequest{CtrlrLossTimeoutSec: intp(30),
					ReconnectDelaySec: intp(5)})
			},
			method: "bdev_nvme_set_options", params: `{"ctrlr_loss_timeout_sec": 30, "reconnect_delay_sec": 5}`,
		},
	})
}
