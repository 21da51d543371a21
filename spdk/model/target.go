package model

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/virtual-disk-array/vda/spdk"
)

// Config configures one Target. The zero value is a working target alone
// on its own fabric.
type Config struct {
	// Fabric is the NVMe-oF network the target listens on and attaches
	// through. Targets that share a Fabric reach each other's listeners;
	// nil gives the target a fabric of its own.
	Fabric *Fabric
	// Now is the clock: it drives reconnect delays, controller-loss
	// timeouts and iostat ticks. nil means time.Now.
	Now func() time.Time
	// Logger receives what SPDK would log and no request answers: an
	// lvstore that examine leaves alone, data that could not be erased.
	// nil means slog.Default().
	Logger *slog.Logger
	// HostNQN is the default host NQN of bdev_nvme_attach_controller. ""
	// means nqn.2014-08.org.nvmexpress:uuid:<HostID>, as SPDK generates.
	HostNQN string
	// HostID is the host identifier presented on connect (a uuid). ""
	// means the uuid in HostNQN when it has one, else a generated one.
	HostID string
	// Addresses are the IP addresses of this host: a listener on another
	// address fails, as SPDK's does. nil means 127.0.0.1, ::1 and the
	// wildcards 0.0.0.0 and ::.
	Addresses []string
	// FileSize reports the size of an aio bdev's backing file, whether it
	// is a block device, and an error wrapping fs.ErrNotExist if it is
	// missing. nil uses the real file system.
	FileSize func(name string) (size int64, blockDevice bool, err error)
	// Listen opens a real listening socket when the first subsystem
	// listener on an address appears (trtype is SPDK's spelling, "TCP");
	// an error fails nvmf_subsystem_add_listener with SPDK's "Invalid
	// parameters", as SPDK fails when it cannot listen. Unlisten closes it
	// when the last listener on the address goes, or at Stop. Both are
	// called with the Target's lock held, so that sockets open and close
	// in the order of the requests: they must not call the Target (nor
	// wait for anything that does, such as connections being served).
	// nil hooks: the target listens only on its Fabric.
	Listen   func(trtype, traddr, trsvcid string) error
	Unlisten func(trtype, traddr, trsvcid string)
	// Disconnect cuts the real connections of subsystem subnqn where the
	// model cuts its own controllers: nvmf_subsystem_remove_host (host is
	// that host, addr the zero ListenAddr: every listener),
	// nvmf_subsystem_remove_listener (addr is that listener, host ""),
	// nvmf_delete_subsystem (both zero: every controller of the
	// subsystem). Turning allow_any_host off disconnects nobody, as in
	// SPDK. addr is spelled as Listen spelled it. It is called with the
	// Target's lock held, within the request that made the change (a
	// lookup such as NVMfSubsystem that returns after it sees the change),
	// under the same rules as Listen and Unlisten: it must not call the
	// Target nor wait for anything that does. nil: only the model's own
	// controllers are cut.
	Disconnect func(subnqn string, addr ListenAddr, host string)
	// Changed tells a real target that subsystem subnqn changed in a way
	// its connected hosts or its discovery service should see: a
	// namespace added or removed (nvmf_subsystem_add_ns, remove_ns, its
	// bdev deleted), an ANA state or group changed, a host or listener
	// added or removed, allow_any_host changed, the subsystem created or
	// deleted. It is called with the Target's lock held, under the same
	// rules as Listen: it must not call the Target (queue the work). nil:
	// nobody is told.
	Changed func(subnqn string)
	// Controllers reports the live controllers of subsystem subnqn on a
	// real target, whose controllers (unlike the Fabric's) the model does
	// not hold: when set, nvmf_subsystem_get_controllers and
	// nvmf_subsystem_get_qpairs list what it returns, in its order
	// (oldest first), instead of the model's own controllers. It is called
	// with the Target's lock held, under the same rules as Listen: it
	// answers from the real target's own state and must not call the
	// Target. nil: the model's (Fabric) controllers are listed.
	Controllers func(subnqn string) []NVMfController
	// Dial, when set, makes bdev_nvme_attach_controller's connections (and
	// reconnects) real: it connects to req and returns the live
	// controller, or an error (connection refused, host not allowed, ...:
	// the attach fails with SPDK's -5). It is called without the Target's
	// lock, from the attach request or a path's reconnect goroutine. nil:
	// attaches reach only the Targets of the Fabric.
	Dial func(ctx context.Context, req ConnectRequest) (RemoteController, error)
}

// Target is the model of one SPDK application: its object graph (bdevs,
// lvstores and lvols, raids, NVMe-oF transports, subsystems, namespaces,
// listeners and hosts, NVMe-oF initiator controllers) and the JSON-RPC
// methods that change and report it, with SPDK's semantics, error codes
// and messages. It implements jsonrpc.Handler and jsonrpc.AsyncMethods.
//
// One mutex guards the whole graph; a Target is safe for concurrent use.
// Calls that reach another Target through the Fabric never hold this
// Target's lock while they wait for the other one.
type Target struct {
	fabric    *Fabric
	now       func() time.Time
	log       *slog.Logger
	start     time.Time
	hostNQN   string
	hostID    string
	addresses map[string]bool
	fileSize  func(string) (int64, bool, error)
	listen    func(trtype, traddr, trsvcid string) error
	unlisten  func(trtype, traddr, trsvcid string)
	discon    func(subnqn string, addr ListenAddr, host string)
	notify    func(subnqn string)
	ctrlInfo  func(subnqn string) []NVMfController
	// dial is Config.Dial; stopCh is closed by Stop, ending the reconnect
	// goroutines (stopped says so under mu).
	dial    func(ctx context.Context, req ConnectRequest) (RemoteController, error)
	stopCh  chan struct{}
	stopped bool

	mu sync.Mutex
	// changed is closed (and replaced) whenever a bdev is registered, to
	// wake bdev_get_bdevs calls waiting for one.
	changed     chan struct{}
	seq         uint64
	bdevs       []*bdev
	names       map[string]*bdev
	mallocCount int
	lvstores    []*lvstore
	raids       []*raid
	transports  []*transport
	subsystems  []*subsystem
	ctrlrs      []*nvmeCtrlr
	nvmeOpts    nvmeOptions
	// listening holds the port keys Config.Listen opened.
	listening map[string]bool
	// instances numbers the subsystems created (NVMfSubsystem.Instance).
	instances uint64
}

// New returns a Target in the state of a freshly started nvmf_tgt: no
// bdevs, no transports, and only the discovery subsystem.
func New(cfg Config) *Target {
	t := &Target{
		fabric:    cfg.Fabric,
		now:       cfg.Now,
		log:       cfg.Logger,
		hostNQN:   cfg.HostNQN,
		hostID:    cfg.HostID,
		fileSize:  cfg.FileSize,
		listen:    cfg.Listen,
		unlisten:  cfg.Unlisten,
		discon:    cfg.Disconnect,
		dial:      cfg.Dial,
		stopCh:    make(chan struct{}),
		notify:    cfg.Changed,
		ctrlInfo:  cfg.Controllers,
		listening: map[string]bool{},
		changed:   make(chan struct{}),
		names:     map[string]*bdev{},
		nvmeOpts:  defaultNvmeOptions(),
	}
	if t.fabric == nil {
		t.fabric = NewFabric()
	}
	if t.now == nil {
		t.now = time.Now
	}
	if t.log == nil {
		t.log = slog.Default()
	}
	if t.fileSize == nil {
		t.fileSize = osFileSize
	}
	if t.hostID == "" {
		if id, ok := uuidOfNQN(t.hostNQN); ok {
			t.hostID = id
		} else {
			t.hostID = newUUID()
		}
	}
	if t.hostNQN == "" {
		t.hostNQN = uuidNQNPrefix + t.hostID
	}
	addrs := cfg.Addresses
	if addrs == nil {
		addrs = []string{"127.0.0.1", "::1", "0.0.0.0", "::"}
	}
	t.addresses = map[string]bool{}
	for _, a := range addrs {
		t.addresses[a] = true
	}
	t.start = t.now()
	t.subsystems = []*subsystem{newDiscoverySubsystem()}
	return t
}

// HostNQN is the host NQN this target presents when bdev_nvme_attach_controller
// is called without one.
func (t *Target) HostNQN() string { return t.hostNQN }

// HostID is the host identifier this target presents on connect.
func (t *Target) HostID() string { return t.hostID }

// Handle answers one JSON-RPC request. params is nil when the request had
// none. Errors are *spdk.Error carrying SPDK's code and message; an
// unknown method is -32601 "Method not found".
func (t *Target) Handle(ctx context.Context, method string, params json.RawMessage) (any, error) {
	m, ok := methods[method]
	if !ok {
		if startupOnlyMethods[method] {
			return nil, spdk.NewError(method, -1, "Method may only be called before framework is initialized. "+
				"Use --wait-for-rpc command line parameter and then issue this RPC before the framework_start_init RPC.")
		}
		return nil, spdk.NewError(method, -32601, "Method not found")
	}
	r := &request{method: method, params: params, style: m.style}
	t.reconnect()
	if m.selfLocking {
		return m.fn(ctx, t, r)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if m.probe {
		t.probeLinks()
	}
	t.poll()
	return m.fn(ctx, t, r)
}

// Async reports the methods SPDK answers asynchronously: bdev_get_bdevs
// waits for examine (and, with a timeout, for the bdev to appear), so its
// answer may overtake answers to requests sent after it.
func (t *Target) Async(method string) bool {
	m, ok := methods[method]
	return ok && m.async
}

// handlerFunc serves one method. Unless the method is selfLocking, it runs
// with t.mu held.
type handlerFunc func(ctx context.Context, t *Target, r *request) (any, error)

type methodSpec struct {
	fn    handlerFunc
	style decodeStyle
	async bool
	// selfLocking handlers take t.mu themselves, because they wait or
	// reach another Target.
	selfLocking bool
	// probe: the method reports the state of initiator paths, which it
	// checks first (probeLinks).
	probe bool
}

// methods is the dispatch table: every method the model serves.
var methods = map[string]methodSpec{
	// framework
	"spdk_get_version":    {fn: spdkGetVersion, style: decodeInvalidParams},
	"rpc_get_methods":     {fn: rpcGetMethods, style: decodeInvalidParams},
	"framework_wait_init": {fn: frameworkWaitInit, style: decodeInvalidParams},

	// bdev core
	"bdev_get_bdevs":        {fn: bdevGetBdevs, style: decodeInternal, async: true, selfLocking: true},
	"bdev_examine":          {fn: bdevExamine, style: decodeInternal},
	"bdev_wait_for_examine": {fn: bdevWaitForExamine, style: decodeInternal},
	"bdev_set_qos_limit":    {fn: bdevSetQosLimit, style: decodeInternal},
	"bdev_get_iostat":       {fn: bdevGetIostat, style: decodeInternal},

	// malloc, null, aio
	"bdev_malloc_create": {fn: bdevMallocCreate, style: decodeInternal},
	"bdev_malloc_delete": {fn: bdevMallocDelete, style: decodeInternal},
	"bdev_null_create":   {fn: bdevNullCreate, style: decodeInternal},
	"bdev_null_delete":   {fn: bdevNullDelete, style: decodeInternal},
	"bdev_aio_create":    {fn: bdevAioCreate, style: decodeInternal},
	"bdev_aio_delete":    {fn: bdevAioDelete, style: decodeInternal},

	// lvol
	"bdev_lvol_create_lvstore": {fn: bdevLvolCreateLvstore, style: decodeInternal},
	"bdev_lvol_delete_lvstore": {fn: bdevLvolDeleteLvstore, style: decodeInternal},
	"bdev_lvol_get_lvstores":   {fn: bdevLvolGetLvstores, style: decodeInternal},
	"bdev_lvol_create":         {fn: bdevLvolCreate, style: decodeInternal},
	"bdev_lvol_delete":         {fn: bdevLvolDelete, style: decodeInternal},
	"bdev_lvol_resize":         {fn: bdevLvolResize, style: decodeInternal},
	"bdev_lvol_get_lvols":      {fn: bdevLvolGetLvols, style: decodeInternal},
	"bdev_lvol_snapshot":       {fn: bdevLvolSnapshot, style: decodeInternal},
	"bdev_lvol_clone":          {fn: bdevLvolClone, style: decodeInternal},

	// raid
	"bdev_raid_create":    {fn: bdevRaidCreate, style: decodeParseCode},
	"bdev_raid_delete":    {fn: bdevRaidDelete, style: decodeParseCode},
	"bdev_raid_get_bdevs": {fn: bdevRaidGetBdevs, style: decodeParseCode},

	// nvmf target
	"nvmf_create_transport":                 {fn: nvmfCreateTransport, style: decodeInvalidParams},
	"nvmf_get_transports":                   {fn: nvmfGetTransports, style: decodeInvalidParams},
	"nvmf_create_subsystem":                 {fn: nvmfCreateSubsystem, style: decodeInvalidParams},
	"nvmf_delete_subsystem":                 {fn: nvmfDeleteSubsystem, style: decodeInvalidParams},
	"nvmf_get_subsystems":                   {fn: nvmfGetSubsystems, style: decodeInvalidParams},
	"nvmf_subsystem_add_ns":                 {fn: nvmfSubsystemAddNs, style: decodeInvalidParams},
	"nvmf_subsystem_remove_ns":              {fn: nvmfSubsystemRemoveNs, style: decodeInvalidParams},
	"nvmf_subsystem_set_ns_ana_group":       {fn: nvmfSubsystemSetNsAnaGroup, style: decodeInvalidParams},
	"nvmf_subsystem_add_listener":           {fn: nvmfSubsystemAddListener, style: decodeInvalidParams},
	"nvmf_subsystem_remove_listener":        {fn: nvmfSubsystemRemoveListener, style: decodeInvalidParams},
	"nvmf_subsystem_get_listeners":          {fn: nvmfSubsystemGetListeners, style: decodeInvalidParams},
	"nvmf_subsystem_listener_set_ana_state": {fn: nvmfSubsystemListenerSetAnaState, style: decodeInvalidParams},
	"nvmf_subsystem_add_host":               {fn: nvmfSubsystemAddHost, style: decodeInvalidParams},
	"nvmf_subsystem_remove_host":            {fn: nvmfSubsystemRemoveHost, style: decodeInvalidParams},
	"nvmf_subsystem_allow_any_host":         {fn: nvmfSubsystemAllowAnyHost, style: decodeInvalidParams},
	"nvmf_subsystem_get_controllers":        {fn: nvmfSubsystemGetControllers, style: decodeInvalidParams},
	"nvmf_subsystem_get_qpairs":             {fn: nvmfSubsystemGetQpairs, style: decodeInvalidParams},

	// bdev_nvme (initiator)
	"bdev_nvme_set_options":       {fn: bdevNvmeSetOptions, style: decodeInternal},
	"bdev_nvme_attach_controller": {fn: bdevNvmeAttachController, style: decodeInternal, selfLocking: true},
	"bdev_nvme_detach_controller": {fn: bdevNvmeDetachController, style: decodeInternal},
	"bdev_nvme_get_controllers":   {fn: bdevNvmeGetControllers, style: decodeInternal, probe: true},
	"bdev_nvme_get_io_paths":      {fn: bdevNvmeGetIoPaths, style: decodeInternal, probe: true},
}

// osFileSize is Config.FileSize on the real file system.
func osFileSize(name string) (int64, bool, error) {
	fi, err := os.Stat(name)
	if err != nil {
		return 0, false, err
	}
	if fi.Mode()&os.ModeDevice == 0 {
		return fi.Size(), false, nil
	}
	f, err := os.Open(name)
	if err != nil {
		return 0, true, err
	}
	defer f.Close()
	size, err := f.Seek(0, io.SeekEnd)
	return size, true, err
}

// Stop ends the target as the exit of its process would, for tests that
// restart an SPDK application: it stops listening (its ports become free
// for a new Target on the same Fabric), the hosts connected to its
// subsystems lose their connections, and its own NVMe-oF connections
// close. The object graph stays for inspection; a stopped Target should
// not serve requests again.
func (t *Target) Stop() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.stopInitiator()
	for _, s := range t.subsystems {
		s.disconnect(func(*nvmfCtrlr) bool { return true })
		for _, l := range s.listeners {
			key := portKey(l.trtype, l.traddr, l.trsvcid)
			t.fabric.unbind(key, t)
			t.unlistenPort(key, ListenAddr{Trtype: l.trtype, Traddr: l.traddr, Trsvcid: l.trsvcid})
		}
	}
	for _, c := range t.ctrlrs {
		for _, p := range c.paths {
			if p.link != nil {
				p.link.close()
			}
		}
	}
}
