package model

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"
)

// The NVMe-oF initiator (bdev_nvme): named controllers, each with one or
// more paths to a remote subsystem reached through the Fabric, and one
// bdev "<name>n<nsid>" per remote namespace.

// nvmeOptions are the defaults bdev_nvme_set_options sets for attaches.
type nvmeOptions struct {
	ctrlrLossTimeoutSec  int
	reconnectDelaySec    int
	fastIOFailTimeoutSec int
}

func defaultNvmeOptions() nvmeOptions { return nvmeOptions{} }

// validResiliency is bdev_nvme_check_io_error_resiliency_params.
func (o nvmeOptions) valid() bool {
	loss, delay, fail := o.ctrlrLossTimeoutSec, o.reconnectDelaySec, o.fastIOFailTimeoutSec
	switch {
	case loss < -1:
		return false
	case loss == -1:
		return delay != 0 && (fail == 0 || fail >= delay)
	case loss != 0:
		return delay != 0 && delay <= loss && (fail == 0 || (fail >= delay && fail <= loss))
	default:
		return delay == 0 && fail == 0
	}
}

// nvmeCtrlr is one named controller (an nvme_bdev_ctrlr) with its paths.
type nvmeCtrlr struct {
	name  string
	paths []*nvmePath
	bdevs []*bdev // by nsid
}

// nvmeTrid is a path's transport id, in SPDK's spelling.
type nvmeTrid struct {
	Trtype  string `json:"trtype"`
	Adrfam  string `json:"adrfam"`
	Traddr  string `json:"traddr"`
	Trsvcid string `json:"trsvcid"`
	Subnqn  string `json:"subnqn"`
}

// nvmePath is one connection (an spdk_nvme_ctrlr) of a controller.
type nvmePath struct {
	trid    nvmeTrid
	hostnqn string
	opts    nvmeOptions
	// link is the live connection, nil while the path is lost.
	link *link
	// view is the last state the remote reported, seen the link's version
	// it came with; synced says view was taken from link at all.
	view   remoteView
	seen   uint64
	synced bool
	// lostAt and nextAttempt drive reconnects while lost.
	lostAt      time.Time
	nextAttempt time.Time
	// hdgst, ddgst and ioQueues are the attach's, for Config.Dial;
	// redialing says a reconnect goroutine (Config.Dial) owns the path.
	hdgst, ddgst bool
	ioQueues     int
	redialing    bool
}

// req is the connect request of the path.
func (p *nvmePath) req(t *Target) connectRequest {
	r := t.connectRequest(p.trid, p.hostnqn)
	r.hdgst, r.ddgst, r.ioQueues = p.hdgst, p.ddgst, p.ioQueues
	return r
}

func (p *nvmePath) state() string {
	if p.link != nil {
		return "enabled"
	}
	return "reconnect_is_delayed"
}

func (t *Target) nvmeCtrlr(name string) *nvmeCtrlr {
	for _, c := range t.ctrlrs {
		if c.name == name {
			return c
		}
	}
	return nil
}

// poll brings the controllers up to date with their links: a cut link
// makes its path lost; a path lost longer than ctrlr_loss_timeout_sec
// (at once with the default 0) is deleted, and a controller without paths
// with its bdevs; namespaces that appeared or went away on a live path are
// added or removed. Every handler runs it first, with t.mu held.
func (t *Target) poll() {
	now := t.now()
	for _, c := range slices.Clone(t.ctrlrs) {
		// changed says a path's view changed, or a path went away: only
		// then can the controller's namespaces have changed.
		changed := false
		for i := 0; i < len(c.paths); {
			p := c.paths[i]
			if p.link != nil {
				view, up, version := p.link.snapshot()
				if !p.synced || version != p.seen {
					p.view, p.seen, p.synced, changed = view, version, true, true
				}
				if !up {
					p.link = nil
					p.lostAt = now
					p.nextAttempt = now.Add(time.Duration(p.opts.reconnectDelaySec) * time.Second)
					if t.dial != nil && p.opts.ctrlrLossTimeoutSec != 0 && p.opts.reconnectDelaySec > 0 &&
						!p.redialing && !t.stopped {
						p.redialing = true
						go t.redial(c, p)
					}
				}
			}
			if p.link == nil {
				loss := p.opts.ctrlrLossTimeoutSec
				if loss == 0 || (loss > 0 && !now.Before(p.lostAt.Add(time.Duration(loss)*time.Second))) {
					c.paths = slices.Delete(c.paths, i, i+1)
					changed = true
					continue
				}
			}
			i++
		}
		if len(c.paths) == 0 {
			t.destroyNvmeCtrlr(c)
			continue
		}
		if changed {
			t.syncNamespaces(c)
		}
	}
}

// syncNamespaces makes c's bdevs match the namespaces its live paths see
// (while no path is live, the bdevs stay as they were).
func (t *Target) syncNamespaces(c *nvmeCtrlr) {
	var live []*nvmePath
	for _, p := range c.paths {
		if p.link != nil {
			live = append(live, p)
		}
	}
	if len(live) == 0 {
		return
	}
	seen := map[uint32]remoteNamespace{}
	for _, p := range live {
		for _, ns := range p.view.namespaces {
			if _, ok := seen[ns.nsid]; !ok {
				seen[ns.nsid] = ns
			}
		}
	}
	for _, b := range slices.Clone(c.bdevs) {
		m := b.module.(*nvmeNs)
		ns, ok := seen[m.nsid]
		if !ok {
			c.bdevs = slices.DeleteFunc(c.bdevs, func(x *bdev) bool { return x == b })
			t.unregister(b)
			continue
		}
		if b.numBlocks != ns.numBlocks {
			b.numBlocks = ns.numBlocks
		}
	}
	nsids := make([]uint32, 0, len(seen))
	for id := range seen {
		nsids = append(nsids, id)
	}
	slices.Sort(nsids)
	for _, id := range nsids {
		if slices.ContainsFunc(c.bdevs, func(b *bdev) bool { return b.module.(*nvmeNs).nsid == id }) {
			continue
		}
		ns := seen[id]
		u := uuidOfNGUID(ns.nguid)
		b := &bdev{name: fmt.Sprintf("%sn%d", c.name, id), aliases: []string{u}, uuid: u,
			blockSize: ns.blockSize, numBlocks: ns.numBlocks, module: &nvmeNs{ctrlr: c, nsid: id}}
		if t.register(b) != nil {
			// A bdev with this name or uuid exists already: SPDK logs the
			// failure and leaves the namespace without a bdev.
			continue
		}
		i, _ := slices.BinarySearchFunc(c.bdevs, id, func(x *bdev, id uint32) int {
			return int(x.module.(*nvmeNs).nsid) - int(id)
		})
		c.bdevs = slices.Insert(c.bdevs, i, b)
	}
}

func (t *Target) destroyNvmeCtrlr(c *nvmeCtrlr) {
	for _, p := range c.paths {
		if p.link != nil {
			p.link.close()
		}
	}
	c.paths = nil
	for _, b := range c.bdevs {
		t.unregister(b)
	}
	c.bdevs = nil
	t.ctrlrs = slices.DeleteFunc(t.ctrlrs, func(x *nvmeCtrlr) bool { return x == c })
}

// reconnect tries again the lost paths whose reconnect delay has passed.
// It connects without holding t.mu, as the remote may be this target.
// With Config.Dial, each lost path has its own goroutine instead (redial).
func (t *Target) reconnect() {
	if t.dial != nil {
		return
	}
	type attempt struct {
		c    *nvmeCtrlr
		p    *nvmePath
		req  connectRequest
		link *link
	}
	now := t.now()
	var due []*attempt
	t.mu.Lock()
	for _, c := range t.ctrlrs {
		for _, p := range c.paths {
			if p.link == nil && p.opts.reconnectDelaySec > 0 && !now.Before(p.nextAttempt) {
				due = append(due, &attempt{c: c, p: p, req: t.connectRequest(p.trid, p.hostnqn)})
			}
		}
	}
	t.mu.Unlock()
	if len(due) == 0 {
		return
	}
	for _, a := range due {
		a.link, _ = t.fabric.connect(a.req)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, a := range due {
		if !slices.Contains(t.ctrlrs, a.c) || !slices.Contains(a.c.paths, a.p) || a.p.link != nil {
			if a.link != nil {
				a.link.close()
			}
			continue
		}
		if a.link == nil {
			a.p.nextAttempt = now.Add(time.Duration(a.p.opts.reconnectDelaySec) * time.Second)
			continue
		}
		a.p.link = a.link
		a.p.view, _, a.p.seen = a.link.snapshot()
		a.p.synced = false
	}
}

func (t *Target) connectRequest(trid nvmeTrid, hostnqn string) connectRequest {
	return connectRequest{trtype: trid.Trtype, adrfam: trid.Adrfam, traddr: trid.Traddr, trsvcid: trid.Trsvcid,
		subnqn: trid.Subnqn, hostnqn: hostnqn, hostid: t.hostID}
}

// nvmeNs is the module of a namespace bdev.
type nvmeNs struct {
	ctrlr *nvmeCtrlr
	nsid  uint32
}

func (n *nvmeNs) moduleName() string  { return "nvme" }
func (n *nvmeNs) productName() string { return "NVMe disk" }
func (n *nvmeNs) hasNuma() bool       { return true }
func (n *nvmeNs) ioTypes() ioTypes {
	return ioTypes{Read: true, Write: true, Unmap: true, Flush: true, Reset: true, NvmeAdmin: true, NvmeIO: true,
		WriteZeroes: true, Compare: true, CompareAndWrite: true, Abort: true, Copy: true}
}
func (n *nvmeNs) memoryDomains() []string { return []string{"DMA"} }
func (n *nvmeNs) baseDomains() []string   { return []string{"DMA"} }

// writeHints: NVMe namespaces report their atomic write unit (1 block) and
// the controller's maximum transfer (the transport's 128 KiB) as the
// optimal write size.
func (n *nvmeNs) writeHints(b *bdev) (uint32, uint32, uint32, uint32, uint32) {
	return 1, 1, 131072 / b.blockSize, 1, 1
}

type nvmeNsPathJSON struct {
	Trid      nvmeTrid `json:"trid"`
	CtrlrData struct {
		Cntlid           int    `json:"cntlid"`
		VendorID         string `json:"vendor_id"`
		ModelNumber      string `json:"model_number"`
		SerialNumber     string `json:"serial_number"`
		FirmwareRevision string `json:"firmware_revision"`
		Subnqn           string `json:"subnqn"`
		Oacs             struct {
			Security int `json:"security"`
			Format   int `json:"format"`
			Firmware int `json:"firmware"`
			NsManage int `json:"ns_manage"`
		} `json:"oacs"`
		MultiCtrlr   bool `json:"multi_ctrlr"`
		AnaReporting bool `json:"ana_reporting"`
	} `json:"ctrlr_data"`
	Vs struct {
		NvmeVersion string `json:"nvme_version"`
	} `json:"vs"`
	NsData struct {
		ID       uint32 `json:"id"`
		AnaState string `json:"ana_state,omitempty"`
		CanShare bool   `json:"can_share"`
	} `json:"ns_data"`
}

func (n *nvmeNs) driverSpecific(*Target) any {
	paths := []nvmeNsPathJSON{}
	for _, p := range n.ctrlr.paths {
		i := slices.IndexFunc(p.view.namespaces, func(ns remoteNamespace) bool { return ns.nsid == n.nsid })
		if i < 0 {
			continue
		}
		var j nvmeNsPathJSON
		j.Trid = p.trid
		d := &j.CtrlrData
		d.Cntlid, d.VendorID, d.ModelNumber, d.SerialNumber = p.view.cntlid, "0x8086", p.view.model, p.view.serial
		d.FirmwareRevision, d.Subnqn, d.MultiCtrlr, d.AnaReporting = "26.05", p.view.subnqn, true, p.view.anaReporting
		j.Vs.NvmeVersion = "2.0"
		j.NsData.ID, j.NsData.AnaState, j.NsData.CanShare = n.nsid, p.view.namespaces[i].anaState, true
		paths = append(paths, j)
	}
	return struct {
		Nvme     []nvmeNsPathJSON `json:"nvme"`
		MpPolicy string           `json:"mp_policy"`
	}{paths, "active_passive"}
}

// bdevNvmeSetOptions: bdev_nvme_set_options {...}; allowed only before any
// controller exists.
func bdevNvmeSetOptions(_ context.Context, t *Target, r *request) (any, error) {
	p := struct {
		ActionOnTimeout        string   `json:"action_on_timeout"`
		TimeoutUs              uint64   `json:"timeout_us"`
		TimeoutAdminUs         uint64   `json:"timeout_admin_us"`
		KeepAliveTimeoutMs     uint32   `json:"keep_alive_timeout_ms"`
		ArbitrationBurst       uint32   `json:"arbitration_burst"`
		LowPriorityWeight      uint32   `json:"low_priority_weight"`
		MediumPriorityWeight   uint32   `json:"medium_priority_weight"`
		HighPriorityWeight     uint32   `json:"high_priority_weight"`
		NvmeAdminqPollPeriodUs uint64   `json:"nvme_adminq_poll_period_us"`
		NvmeIoqPollPeriodUs    uint64   `json:"nvme_ioq_poll_period_us"`
		IOQueueRequests        uint32   `json:"io_queue_requests"`
		DelayCmdSubmit         bool     `json:"delay_cmd_submit"`
		TransportRetryCount    uint32   `json:"transport_retry_count"`
		BdevRetryCount         int32    `json:"bdev_retry_count"`
		TransportAckTimeout    uint8    `json:"transport_ack_timeout"`
		CtrlrLossTimeoutSec    int32    `json:"ctrlr_loss_timeout_sec"`
		ReconnectDelaySec      uint32   `json:"reconnect_delay_sec"`
		FastIOFailTimeoutSec   uint32   `json:"fast_io_fail_timeout_sec"`
		DisableAutoFailback    bool     `json:"disable_auto_failback"`
		GenerateUUIDs          bool     `json:"generate_uuids"`
		TransportTos           uint8    `json:"transport_tos"`
		NvmeErrorStat          bool     `json:"nvme_error_stat"`
		RdmaSrqSize            uint32   `json:"rdma_srq_size"`
		IOPathStat             bool     `json:"io_path_stat"`
		AllowAccelSequence     bool     `json:"allow_accel_sequence"`
		RdmaMaxCqSize          uint32   `json:"rdma_max_cq_size"`
		RdmaCmEventTimeoutMs   uint16   `json:"rdma_cm_event_timeout_ms"`
		DhchapDigests          []string `json:"dhchap_digests"`
		DhchapDhgroups         []string `json:"dhchap_dhgroups"`
		RdmaUmrPerIO           bool     `json:"rdma_umr_per_io"`
		TCPConnectTimeoutMs    uint32   `json:"tcp_connect_timeout_ms"`
		EnableFlush            bool     `json:"enable_flush"`
	}{
		CtrlrLossTimeoutSec:  int32(t.nvmeOpts.ctrlrLossTimeoutSec),
		ReconnectDelaySec:    uint32(t.nvmeOpts.reconnectDelaySec),
		FastIOFailTimeoutSec: uint32(t.nvmeOpts.fastIOFailTimeoutSec),
	}
	if err := r.decode(&p); err != nil {
		return nil, err
	}
	if len(t.ctrlrs) > 0 {
		return nil, r.err(ePERM, "RPC not permitted with nvme controllers already attached")
	}
	o := nvmeOptions{ctrlrLossTimeoutSec: int(p.CtrlrLossTimeoutSec), reconnectDelaySec: int(p.ReconnectDelaySec),
		fastIOFailTimeoutSec: int(p.FastIOFailTimeoutSec)}
	if !o.valid() {
		return nil, r.errno(eINVAL)
	}
	t.nvmeOpts = o
	return true, nil
}

type attachParams struct {
	Name                    string `json:"name"`
	Trtype                  string `json:"trtype"`
	Traddr                  string `json:"traddr"`
	Adrfam                  string `json:"adrfam"`
	Trsvcid                 string `json:"trsvcid"`
	Priority                string `json:"priority"`
	Subnqn                  string `json:"subnqn"`
	Hostnqn                 string `json:"hostnqn"`
	Hostaddr                string `json:"hostaddr"`
	Hostsvcid               string `json:"hostsvcid"`
	PrchkReftag             bool   `json:"prchk_reftag"`
	PrchkGuard              bool   `json:"prchk_guard"`
	Hdgst                   bool   `json:"hdgst"`
	Ddgst                   bool   `json:"ddgst"`
	FabricsConnectTimeoutUs uint64 `json:"fabrics_connect_timeout_us"`
	Multipath               string `json:"multipath"`
	NumIOQueues             uint32 `json:"num_io_queues"`
	CtrlrLossTimeoutSec     *int32 `json:"ctrlr_loss_timeout_sec"`
	ReconnectDelaySec       *int32 `json:"reconnect_delay_sec"`
	FastIOFailTimeoutSec    *int32 `json:"fast_io_fail_timeout_sec"`
	Psk                     string `json:"psk"`
	MaxBdevs                uint32 `json:"max_bdevs"`
	DhchapKey               string `json:"dhchap_key"`
	DhchapCtrlrKey          string `json:"dhchap_ctrlr_key"`
	AllowUnrecognizedCsi    bool   `json:"allow_unrecognized_csi"`
}

// attachError is the check of a new path against the controller of the
// same name, in SPDK's order.
func attachConflict(r *request, c *nvmeCtrlr, p *attachParams, trid nvmeTrid, hostnqn string) error {
	if p.Multipath == "disable" {
		return r.errf(eALREADY, "A controller named %s already exists and multipath is disabled", p.Name)
	}
	for _, path := range c.paths {
		if path.trid.Traddr == trid.Traddr && path.trid.Trsvcid == trid.Trsvcid {
			return r.errf(eALREADY, "A controller named %s already exists with the specified network path", p.Name)
		}
	}
	first := c.paths[0]
	if first.trid.Subnqn != trid.Subnqn {
		return r.errf(eINVAL, "A controller named %s already exists, but uses a different subnqn (%s)",
			p.Name, first.trid.Subnqn)
	}
	if first.hostnqn != hostnqn {
		return r.errf(eINVAL, "A controller named %s already exists, but uses a different hostnqn (%s)",
			p.Name, first.hostnqn)
	}
	return nil
}

// bdevNvmeAttachController: bdev_nvme_attach_controller {name, trtype,
// traddr, adrfam?, trsvcid?, subnqn?, hostnqn?, multipath?, timeouts?,
// ...}. The result is the names of the controller's bdevs. It connects
// (through the Fabric or Config.Dial) without holding t.mu.
func bdevNvmeAttachController(ctx context.Context, t *Target, r *request) (any, error) {
	var p attachParams
	if err := r.decode(&p, "name", "trtype", "traddr"); err != nil {
		return nil, err
	}
	switch p.Multipath {
	case "", "failover", "multipath", "disable":
	default:
		return nil, r.decodeErr()
	}
	t.mu.Lock()
	t.poll()
	trid, hostnqn, opts, err := t.attachCheck(r, &p)
	t.mu.Unlock()
	if err != nil {
		return nil, err
	}
	path := &nvmePath{trid: trid, hostnqn: hostnqn, opts: opts, hdgst: p.Hdgst, ddgst: p.Ddgst,
		ioQueues: int(p.NumIOQueues)}
	l, ok := t.dialPath(ctx, path.req(t))
	if !ok {
		return nil, r.errno(eIO)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.poll()
	c := t.nvmeCtrlr(p.Name)
	if c != nil {
		if err := attachConflict(r, c, &p, trid, hostnqn); err != nil {
			l.close()
			return nil, err
		}
	} else {
		c = &nvmeCtrlr{name: p.Name}
		t.ctrlrs = append(t.ctrlrs, c)
	}
	path.link = l
	path.view, _, path.seen = l.snapshot()
	c.paths = append(c.paths, path)
	t.syncNamespaces(c)
	names := []string{}
	for _, b := range c.bdevs {
		names = append(names, b.name)
	}
	return names, nil
}

// attachCheck validates an attach before connecting; t.mu is held.
func (t *Target) attachCheck(r *request, p *attachParams) (nvmeTrid, string, nvmeOptions, error) {
	trid := nvmeTrid{Trtype: canonicalTrtype(p.Trtype), Adrfam: "IPv4", Traddr: p.Traddr, Trsvcid: p.Trsvcid,
		Subnqn: p.Subnqn}
	if trid.Trtype != "TCP" {
		// Unknown types and types not built here ("not available").
		return trid, "", nvmeOptions{}, r.errno(eNODEV)
	}
	if p.Adrfam != "" {
		if trid.Adrfam = canonicalAdrfam(p.Adrfam); trid.Adrfam == "" {
			return trid, "", nvmeOptions{}, r.errno(eINVAL)
		}
	}
	if trid.Subnqn == "" {
		trid.Subnqn = discoveryNQN
	}
	opts := t.nvmeOpts
	if p.CtrlrLossTimeoutSec != nil {
		opts.ctrlrLossTimeoutSec = int(*p.CtrlrLossTimeoutSec)
	}
	if p.ReconnectDelaySec != nil {
		opts.reconnectDelaySec = int(*p.ReconnectDelaySec)
	}
	if p.FastIOFailTimeoutSec != nil {
		opts.fastIOFailTimeoutSec = int(*p.FastIOFailTimeoutSec)
	}
	if !opts.valid() {
		return trid, "", opts, r.errno(eINVAL)
	}
	hostnqn := p.Hostnqn
	if hostnqn == "" {
		hostnqn = t.hostNQN
	}
	if c := t.nvmeCtrlr(p.Name); c != nil {
		if err := attachConflict(r, c, p, trid, hostnqn); err != nil {
			return trid, "", opts, err
		}
	}
	return trid, hostnqn, opts, nil
}

// bdevNvmeDetachController: bdev_nvme_detach_controller {name, trtype?,
// traddr?, adrfam?, trsvcid?, subnqn?, hostaddr?, hostsvcid?}. With trid
// fields only the matching paths go.
func bdevNvmeDetachController(_ context.Context, t *Target, r *request) (any, error) {
	var p struct {
		Name      string `json:"name"`
		Trtype    string `json:"trtype"`
		Traddr    string `json:"traddr"`
		Adrfam    string `json:"adrfam"`
		Trsvcid   string `json:"trsvcid"`
		Subnqn    string `json:"subnqn"`
		Hostaddr  string `json:"hostaddr"`
		Hostsvcid string `json:"hostsvcid"`
	}
	if err := r.decode(&p, "name"); err != nil {
		return nil, err
	}
	c := t.nvmeCtrlr(p.Name)
	if c == nil {
		return nil, r.errno(eNODEV)
	}
	match := func(path *nvmePath) bool {
		eq := func(want, have string) bool { return want == "" || strings.EqualFold(want, have) }
		return eq(p.Trtype, path.trid.Trtype) && eq(p.Adrfam, path.trid.Adrfam) && eq(p.Traddr, path.trid.Traddr) &&
			eq(p.Trsvcid, path.trid.Trsvcid) && eq(p.Subnqn, path.trid.Subnqn)
	}
	var drop []*nvmePath
	for _, path := range c.paths {
		if match(path) {
			drop = append(drop, path)
		}
	}
	if len(drop) == 0 {
		return nil, r.errno(eNXIO)
	}
	if len(drop) == len(c.paths) {
		t.destroyNvmeCtrlr(c)
		return true, nil
	}
	for _, path := range drop {
		if path.link != nil {
			path.link.close()
		}
	}
	c.paths = slices.DeleteFunc(c.paths, func(x *nvmePath) bool { return slices.Contains(drop, x) })
	return true, nil
}

type nvmeCtrlrJSON struct {
	Name   string         `json:"name"`
	Ctrlrs []nvmePathJSON `json:"ctrlrs"`
}

type nvmePathJSON struct {
	State  string   `json:"state"`
	Trid   nvmeTrid `json:"trid"`
	Cntlid int      `json:"cntlid"`
	Host   struct {
		NQN               string `json:"nqn"`
		Addr              string `json:"addr"`
		Svcid             string `json:"svcid"`
		NoShnNotification bool   `json:"no_shn_notification"`
	} `json:"host"`
}

// bdevNvmeGetControllers: bdev_nvme_get_controllers {name?}. An unknown
// name is -22 "Controller X does not exist".
func bdevNvmeGetControllers(_ context.Context, t *Target, r *request) (any, error) {
	var p struct {
		Name string `json:"name"`
	}
	if err := r.decode(&p); err != nil {
		return nil, err
	}
	sel := t.ctrlrs
	if p.Name != "" {
		c := t.nvmeCtrlr(p.Name)
		if c == nil {
			return nil, r.errf(eINVAL, "Controller %s does not exist", p.Name)
		}
		sel = []*nvmeCtrlr{c}
	}
	out := []nvmeCtrlrJSON{}
	for _, c := range sel {
		j := nvmeCtrlrJSON{Name: c.name, Ctrlrs: []nvmePathJSON{}}
		for _, path := range c.paths {
			pj := nvmePathJSON{State: path.state(), Trid: path.trid, Cntlid: path.view.cntlid}
			pj.Host.NQN = path.hostnqn
			j.Ctrlrs = append(j.Ctrlrs, pj)
		}
		out = append(out, j)
	}
	return out, nil
}

// bdevNvmeGetIoPaths: bdev_nvme_get_io_paths {name?}. The model opens no
// I/O channels, so there are no poll groups.
func bdevNvmeGetIoPaths(_ context.Context, _ *Target, r *request) (any, error) {
	var p struct {
		Name string `json:"name"`
	}
	if err := r.decode(&p); err != nil {
		return nil, err
	}
	return struct {
		PollGroups []any `json:"poll_groups"`
	}{[]any{}}, nil
}
