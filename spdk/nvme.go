package spdk

import "context"

// Multipath modes of bdev_nvme_attach_controller.
const (
	// MultipathFailover (SPDK's default when omitted) and MultipathMulti
	// both add a new path to an existing controller of the same name.
	MultipathFailover = "failover"
	MultipathMulti    = "multipath"
	// MultipathDisable refuses a second path with ErrAlready.
	MultipathDisable = "disable"
)

// Controller states reported in NvmeCtrlr.State.
const (
	NvmeCtrlrEnabled = "enabled"
	// NvmeCtrlrReconnectIsDelayed: the path was lost (the remote subsystem
	// was deleted, or fenced this host) and SPDK waits to reconnect.
	NvmeCtrlrReconnectIsDelayed = "reconnect_is_delayed"
)

// BdevNvmeAttachControllerRequest connects to an NVMe-oF subsystem. The
// timeouts are pointers because 0 and -1 mean something (no reconnect,
// reconnect forever) and nil means the default set by
// bdev_nvme_set_options.
type BdevNvmeAttachControllerRequest struct {
	// Name is the controller name; its bdevs are "<Name>n<nsid>".
	Name    string `json:"name"`
	Trtype  string `json:"trtype"`
	Traddr  string `json:"traddr"`
	Adrfam  string `json:"adrfam,omitempty"`
	Trsvcid string `json:"trsvcid,omitempty"`
	Subnqn  string `json:"subnqn,omitempty"`
	// Hostnqn is the host NQN presented to the target; "" uses the
	// application's default (nqn.2014-08.org.nvmexpress:uuid:<host uuid>).
	Hostnqn              string `json:"hostnqn,omitempty"`
	Multipath            string `json:"multipath,omitempty"`
	CtrlrLossTimeoutSec  *int   `json:"ctrlr_loss_timeout_sec,omitempty"`
	ReconnectDelaySec    *int   `json:"reconnect_delay_sec,omitempty"`
	FastIOFailTimeoutSec *int   `json:"fast_io_fail_timeout_sec,omitempty"`
	Hdgst                bool   `json:"hdgst,omitempty"`
	Ddgst                bool   `json:"ddgst,omitempty"`
	NumIOQueues          uint32 `json:"num_io_queues,omitempty"`
}

// BdevNvmeAttachController connects and returns the names of the bdevs
// made for the subsystem's namespaces. Every connection failure (host not
// allowed, unknown subnqn, nothing listening) is ErrIO; an unknown trtype
// ErrNoDevice; the same name again with the same path, or with multipath
// disabled, ErrAlready. With a new path and multipath not disabled it adds
// the path and returns the same names.
func (c *Client) BdevNvmeAttachController(ctx context.Context, req BdevNvmeAttachControllerRequest) ([]string, error) {
	var names []string
	err := c.Call(ctx, "bdev_nvme_attach_controller", req, &names)
	return names, err
}

// BdevNvmeDetachControllerRequest removes a controller, or with any trid
// field set only the paths matching them.
type BdevNvmeDetachControllerRequest struct {
	Name    string `json:"name"`
	Trtype  string `json:"trtype,omitempty"`
	Traddr  string `json:"traddr,omitempty"`
	Adrfam  string `json:"adrfam,omitempty"`
	Trsvcid string `json:"trsvcid,omitempty"`
	Subnqn  string `json:"subnqn,omitempty"`
}

// BdevNvmeDetachController detaches; removing the last path removes the
// bdevs. Unknown name: ErrNoDevice; no such path: ErrNoDeviceOrAddress.
func (c *Client) BdevNvmeDetachController(ctx context.Context, req BdevNvmeDetachControllerRequest) error {
	return c.Call(ctx, "bdev_nvme_detach_controller", req, nil)
}

// NvmeController is one named controller as bdev_nvme_get_controllers
// reports it, with one NvmeCtrlr per path.
type NvmeController struct {
	Name   string      `json:"name"`
	Ctrlrs []NvmeCtrlr `json:"ctrlrs"`
}

// NvmeCtrlr is one path of a controller.
type NvmeCtrlr struct {
	State  string        `json:"state"`
	Trid   NvmeTrid      `json:"trid"`
	Cntlid int           `json:"cntlid"`
	Host   NvmeCtrlrHost `json:"host"`
}

// NvmeTrid is an NVMe transport id. SPDK reports trtype and adrfam in
// upper/canonical case ("TCP", "IPv4").
type NvmeTrid struct {
	Trtype  string `json:"trtype"`
	Adrfam  string `json:"adrfam,omitempty"`
	Traddr  string `json:"traddr"`
	Trsvcid string `json:"trsvcid,omitempty"`
	Subnqn  string `json:"subnqn,omitempty"`
}

// NvmeCtrlrHost is the host side of a path.
type NvmeCtrlrHost struct {
	NQN               string `json:"nqn"`
	Addr              string `json:"addr"`
	Svcid             string `json:"svcid"`
	NoShnNotification bool   `json:"no_shn_notification"`
}

// BdevNvmeGetControllers lists controllers; name "" lists all. An unknown
// name is ErrInvalid ("Controller X does not exist").
func (c *Client) BdevNvmeGetControllers(ctx context.Context, name string) ([]NvmeController, error) {
	var ctrlrs []NvmeController
	var params any
	if name != "" {
		params = nameParams{Name: name}
	}
	err := c.Call(ctx, "bdev_nvme_get_controllers", params, &ctrlrs)
	return ctrlrs, err
}

// BdevNvmeSetOptionsRequest sets defaults for later attaches. nil fields
// are left as they are.
type BdevNvmeSetOptionsRequest struct {
	CtrlrLossTimeoutSec  *int `json:"ctrlr_loss_timeout_sec,omitempty"`
	ReconnectDelaySec    *int `json:"reconnect_delay_sec,omitempty"`
	FastIOFailTimeoutSec *int `json:"fast_io_fail_timeout_sec,omitempty"`
	BdevRetryCount       *int `json:"bdev_retry_count,omitempty"`
}

// BdevNvmeSetOptions is allowed only before any controller exists;
// afterwards it fails with ErrNotPermitted.
func (c *Client) BdevNvmeSetOptions(ctx context.Context, req BdevNvmeSetOptionsRequest) error {
	return c.Call(ctx, "bdev_nvme_set_options", req, nil)
}

// NvmeNamespacePath is one path of an NVMe namespace bdev, in its
// driver_specific "nvme" array.
type NvmeNamespacePath struct {
	Trid      NvmeTrid      `json:"trid"`
	CtrlrData NvmeCtrlrData `json:"ctrlr_data"`
	NsData    NvmeNsData    `json:"ns_data"`
}

// NvmeCtrlrData is what the remote controller says about itself.
type NvmeCtrlrData struct {
	Cntlid       int    `json:"cntlid"`
	ModelNumber  string `json:"model_number"`
	SerialNumber string `json:"serial_number"`
	Subnqn       string `json:"subnqn"`
	MultiCtrlr   bool   `json:"multi_ctrlr"`
	AnaReporting bool   `json:"ana_reporting"`
}

// NvmeNsData is what the remote controller says about the namespace.
type NvmeNsData struct {
	ID int `json:"id"`
	// AnaState is set only when the subsystem reports ANA.
	AnaState string `json:"ana_state,omitempty"`
	CanShare bool   `json:"can_share"`
}
