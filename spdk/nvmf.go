package spdk

import "context"

// Well-known NVMe-oF names.
const (
	// DiscoveryNQN is the discovery subsystem every target starts with.
	DiscoveryNQN = "nqn.2014-08.org.nvmexpress.discovery"
	// TrtypeTCP is the only transport VDA uses.
	TrtypeTCP = "TCP"
	// AdrfamIPv4 and AdrfamIPv6 are the address families of TCP listeners.
	AdrfamIPv4 = "IPv4"
	AdrfamIPv6 = "IPv6"
)

// ANA states of a listener's ANA groups.
const (
	AnaOptimized    = "optimized"
	AnaNonOptimized = "non_optimized"
	AnaInaccessible = "inaccessible"
)

// Most nvmf failures are a generic ErrInvalidParams or ErrInternal whatever
// the cause (the cause is only in the target's log), so a caller should
// list the state (NvmfGetSubsystems) rather than branch on codes.

// NvmfCreateTransportRequest creates a transport. Options left zero take
// SPDK's defaults.
type NvmfCreateTransportRequest struct {
	Trtype              string `json:"trtype"`
	MaxQueueDepth       uint32 `json:"max_queue_depth,omitempty"`
	MaxIOQpairsPerCtrlr uint32 `json:"max_io_qpairs_per_ctrlr,omitempty"`
	InCapsuleDataSize   uint32 `json:"in_capsule_data_size,omitempty"`
	MaxIOSize           uint32 `json:"max_io_size,omitempty"`
	MaxAqDepth          uint32 `json:"max_aq_depth,omitempty"`
}

// NvmfCreateTransport creates a transport. One that exists already fails
// with ErrInternal ("Transport type 'tcp' already exists"); an unknown or
// unbuilt one with ErrInvalidParams.
func (c *Client) NvmfCreateTransport(ctx context.Context, req NvmfCreateTransportRequest) error {
	return c.Call(ctx, "nvmf_create_transport", req, nil)
}

// Transport is one transport as nvmf_get_transports reports it.
type Transport struct {
	Trtype              string `json:"trtype"`
	MaxQueueDepth       uint32 `json:"max_queue_depth"`
	MaxIOQpairsPerCtrlr uint32 `json:"max_io_qpairs_per_ctrlr"`
	InCapsuleDataSize   uint32 `json:"in_capsule_data_size"`
	MaxIOSize           uint32 `json:"max_io_size"`
	MaxAqDepth          uint32 `json:"max_aq_depth"`
}

// NvmfGetTransports lists transports; with trtype (any case) only that one,
// and ErrNoDevice if it has not been created.
func (c *Client) NvmfGetTransports(ctx context.Context, trtype string) ([]Transport, error) {
	var ts []Transport
	var params any
	if trtype != "" {
		params = struct {
			Trtype string `json:"trtype"`
		}{trtype}
	}
	err := c.Call(ctx, "nvmf_get_transports", params, &ts)
	return ts, err
}

// NvmfCreateSubsystemRequest creates an NVMe subsystem.
type NvmfCreateSubsystemRequest struct {
	NQN string `json:"nqn"`
	// SerialNumber (at most 20 characters; default twenty zeroes).
	SerialNumber string `json:"serial_number,omitempty"`
	// ModelNumber (at most 40 characters; default "SPDK bdev Controller").
	ModelNumber  string `json:"model_number,omitempty"`
	AllowAnyHost bool   `json:"allow_any_host,omitempty"`
	AnaReporting bool   `json:"ana_reporting,omitempty"`
	// MaxNamespaces defaults to 32; with ANA reporting it is also the
	// number of ANA groups.
	MaxNamespaces uint32 `json:"max_namespaces,omitempty"`
	MinCntlid     uint16 `json:"min_cntlid,omitempty"`
	MaxCntlid     uint16 `json:"max_cntlid,omitempty"`
}

// NvmfCreateSubsystem creates a subsystem. A duplicate or invalid NQN fails
// with ErrInternal ("Unable to create subsystem <nqn>"), a too long serial
// with ErrInvalidParams.
func (c *Client) NvmfCreateSubsystem(ctx context.Context, req NvmfCreateSubsystemRequest) error {
	return c.Call(ctx, "nvmf_create_subsystem", req, nil)
}

// nqnParams is the {"nqn": ...} params object of nvmf methods.
type nqnParams struct {
	NQN string `json:"nqn"`
}

// NvmfDeleteSubsystem deletes a subsystem even with hosts connected (their
// controllers go to reconnect_is_delayed). Unknown: ErrInvalidParams.
func (c *Client) NvmfDeleteSubsystem(ctx context.Context, nqn string) error {
	return c.Call(ctx, "nvmf_delete_subsystem", nqnParams{NQN: nqn}, nil)
}

// Subsystem is one subsystem as nvmf_get_subsystems reports it. The
// discovery subsystem (Subtype "Discovery") has only the first five fields.
type Subsystem struct {
	NQN             string          `json:"nqn"`
	Subtype         string          `json:"subtype"` // "NVMe" or "Discovery"
	ListenAddresses []ListenAddress `json:"listen_addresses"`
	AllowAnyHost    bool            `json:"allow_any_host"`
	Hosts           []SubsystemHost `json:"hosts"`
	SerialNumber    string          `json:"serial_number,omitempty"`
	ModelNumber     string          `json:"model_number,omitempty"`
	MaxNamespaces   uint32          `json:"max_namespaces,omitempty"`
	MinCntlid       uint16          `json:"min_cntlid,omitempty"`
	MaxCntlid       uint16          `json:"max_cntlid,omitempty"`
	Namespaces      []Namespace     `json:"namespaces,omitempty"`
}

// SubsystemHost is one allowed host.
type SubsystemHost struct {
	NQN string `json:"nqn"`
}

// ListenAddress is a listener's address. SPDK reports Trtype "TCP" and
// Adrfam "IPv4" whatever case was sent.
type ListenAddress struct {
	Trtype  string `json:"trtype"`
	Adrfam  string `json:"adrfam,omitempty"`
	Traddr  string `json:"traddr"`
	Trsvcid string `json:"trsvcid,omitempty"`
}

// Namespace is one namespace of a Subsystem.
type Namespace struct {
	NSID uint32 `json:"nsid"`
	// BdevName is the canonical bdev name (an lvol's uuid even if it was
	// added by alias).
	BdevName string `json:"bdev_name"`
	Name     string `json:"name"`
	NGUID    string `json:"nguid"`
	UUID     string `json:"uuid"`
	// AnaGrpID is reported only by subsystems with ANA reporting.
	AnaGrpID uint32 `json:"anagrpid,omitempty"`
}

// NvmfGetSubsystems lists subsystems, the discovery one first; with nqn
// only that one (ErrNoDevice if unknown).
func (c *Client) NvmfGetSubsystems(ctx context.Context, nqn string) ([]Subsystem, error) {
	var subs []Subsystem
	var params any
	if nqn != "" {
		params = nqnParams{NQN: nqn}
	}
	err := c.Call(ctx, "nvmf_get_subsystems", params, &subs)
	return subs, err
}

// NamespaceParams describes a namespace to add.
type NamespaceParams struct {
	// BdevName names the bdev by name or alias; it gets claimed
	// exclusive_write, so a bdev backs at most one namespace per target.
	BdevName string `json:"bdev_name"`
	// NSID 0 takes the lowest free nsid.
	NSID uint32 `json:"nsid,omitempty"`
	// UUID and NGUID default to the bdev's uuid. Set them to give every
	// controller of an array the same namespace identity.
	UUID     string `json:"uuid,omitempty"`
	NGUID    string `json:"nguid,omitempty"`
	EUI64    string `json:"eui64,omitempty"`
	AnaGrpID uint32 `json:"anagrpid,omitempty"`
}

// NvmfSubsystemAddNsRequest adds a namespace to a subsystem.
type NvmfSubsystemAddNsRequest struct {
	NQN       string          `json:"nqn"`
	Namespace NamespaceParams `json:"namespace"`
}

// NvmfSubsystemAddNs adds a namespace and returns its nsid. Every failure
// is ErrInvalidParams.
func (c *Client) NvmfSubsystemAddNs(ctx context.Context, req NvmfSubsystemAddNsRequest) (uint32, error) {
	var nsid uint32
	err := c.Call(ctx, "nvmf_subsystem_add_ns", req, &nsid)
	return nsid, err
}

// NvmfSubsystemRemoveNs removes a namespace and releases its bdev.
func (c *Client) NvmfSubsystemRemoveNs(ctx context.Context, nqn string, nsid uint32) error {
	return c.Do(ctx, OpNvmfSubsystemRemoveNs(nqn, nsid))
}

// NvmfSubsystemAddListenerRequest adds a listener to a subsystem.
type NvmfSubsystemAddListenerRequest struct {
	NQN           string        `json:"nqn"`
	ListenAddress ListenAddress `json:"listen_address"`
	// AnaState sets every ANA group of the new listener; "" is optimized.
	AnaState string `json:"ana_state,omitempty"`
}

// NvmfSubsystemAddListener adds a listener. Every failure (duplicate, no
// transport, address not local, missing trsvcid) is ErrInvalidParams.
func (c *Client) NvmfSubsystemAddListener(ctx context.Context, req NvmfSubsystemAddListenerRequest) error {
	return c.Call(ctx, "nvmf_subsystem_add_listener", req, nil)
}

// NvmfSubsystemRemoveListener removes a listener; a missing one is
// ErrInvalidParams.
func (c *Client) NvmfSubsystemRemoveListener(ctx context.Context, nqn string, addr ListenAddress) error {
	return c.Do(ctx, OpNvmfSubsystemRemoveListener(nqn, addr))
}

// Listener is one listener as nvmf_subsystem_get_listeners reports it.
type Listener struct {
	Address ListenAddress `json:"address"`
	// AnaStates has one entry per ANA group, only with ANA reporting.
	AnaStates []AnaGroupState `json:"ana_states,omitempty"`
}

// AnaGroupState is the state of one ANA group on a listener.
type AnaGroupState struct {
	AnaGroup uint32 `json:"ana_group"`
	AnaState string `json:"ana_state"`
}

// NvmfSubsystemGetListeners lists a subsystem's listeners, newest first.
func (c *Client) NvmfSubsystemGetListeners(ctx context.Context, nqn string) ([]Listener, error) {
	var ls []Listener
	err := c.Call(ctx, "nvmf_subsystem_get_listeners", nqnParams{NQN: nqn}, &ls)
	return ls, err
}

// NvmfSubsystemListenerSetAnaStateRequest sets the ANA state of a
// listener's groups.
type NvmfSubsystemListenerSetAnaStateRequest struct {
	NQN           string        `json:"nqn"`
	ListenAddress ListenAddress `json:"listen_address"`
	AnaState      string        `json:"ana_state"`
	// AnaGrpID 0 changes every group of the listener.
	AnaGrpID uint32 `json:"anagrpid,omitempty"`
}

// NvmfSubsystemListenerSetAnaState sets ANA states. A subsystem without
// ANA reporting, an unknown listener or group fail with ErrInternal
// ("error setting ANA state: -22").
func (c *Client) NvmfSubsystemListenerSetAnaState(ctx context.Context, req NvmfSubsystemListenerSetAnaStateRequest) error {
	return c.Call(ctx, "nvmf_subsystem_listener_set_ana_state", req, nil)
}

// hostParams is the {"nqn", "host"} params object of the host methods.
type hostParams struct {
	NQN  string `json:"nqn"`
	Host string `json:"host"`
}

// NvmfSubsystemAddHost allows a host NQN. A duplicate or invalid host NQN
// fails with ErrInternal, an unknown subsystem with ErrInvalidParams.
func (c *Client) NvmfSubsystemAddHost(ctx context.Context, nqn, host string) error {
	return c.Call(ctx, "nvmf_subsystem_add_host", hostParams{NQN: nqn, Host: host}, nil)
}

// NvmfSubsystemRemoveHost disallows a host NQN and disconnects its
// controllers. A host not in the list fails with ErrInternal.
func (c *Client) NvmfSubsystemRemoveHost(ctx context.Context, nqn, host string) error {
	return c.Call(ctx, "nvmf_subsystem_remove_host", hostParams{NQN: nqn, Host: host}, nil)
}

// NvmfSubsystemAllowAnyHost sets allow_any_host. Turning it off does not
// disconnect hosts already connected.
func (c *Client) NvmfSubsystemAllowAnyHost(ctx context.Context, nqn string, allow bool) error {
	return c.Do(ctx, OpNvmfSubsystemAllowAnyHost(nqn, allow))
}

// NvmfController is a host's controller on a subsystem, as
// nvmf_subsystem_get_controllers reports it.
type NvmfController struct {
	Cntlid      int    `json:"cntlid"`
	Cntrltype   string `json:"cntrltype"`
	Hostnqn     string `json:"hostnqn"`
	Hostid      string `json:"hostid"`
	NumIOQpairs int    `json:"num_io_qpairs"`
}

// NvmfSubsystemGetControllers lists the controllers connected to a
// subsystem; unknown subsystem: ErrInvalidParams.
func (c *Client) NvmfSubsystemGetControllers(ctx context.Context, nqn string) ([]NvmfController, error) {
	var cs []NvmfController
	err := c.Call(ctx, "nvmf_subsystem_get_controllers", nqnParams{NQN: nqn}, &cs)
	return cs, err
}
