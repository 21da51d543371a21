package model

import (
	"context"
	"fmt"
	"slices"
	"strings"
)

// The NVMe-oF target: transports, subsystems with their namespaces,
// listeners and allowed hosts, and the controllers hosts have connected.
// Most failures are a generic -32602 "Invalid parameters" or -32603
// "Internal error", as SPDK's nvmf RPCs report them.

// transport is one NVMe-oF transport (only TCP is built).
type transport struct {
	opts transportJSON
}

type transportJSON struct {
	Trtype                 string `json:"trtype"`
	MaxQueueDepth          uint32 `json:"max_queue_depth"`
	MaxIOQpairsPerCtrlr    uint32 `json:"max_io_qpairs_per_ctrlr"`
	InCapsuleDataSize      uint32 `json:"in_capsule_data_size"`
	MaxIOSize              uint32 `json:"max_io_size"`
	MaxAqDepth             uint32 `json:"max_aq_depth"`
	IobufSmallCacheSize    uint32 `json:"iobuf_small_cache_size"`
	IobufLargeCacheSize    uint32 `json:"iobuf_large_cache_size"`
	DifInsertOrStrip       bool   `json:"dif_insert_or_strip"`
	Zcopy                  bool   `json:"zcopy"`
	C2HSuccess             bool   `json:"c2h_success"`
	SockPriority           uint32 `json:"sock_priority"`
	AbortTimeoutSec        uint32 `json:"abort_timeout_sec"`
	AckTimeout             uint32 `json:"ack_timeout"`
	DataWrPoolSize         uint32 `json:"data_wr_pool_size"`
	DisableCommandPassthru bool   `json:"disable_command_passthru"`
	Kas                    uint32 `json:"kas"`
	MinKato                uint32 `json:"min_kato"`
}

func defaultTCPTransport() transportJSON {
	return transportJSON{Trtype: "TCP", MaxQueueDepth: 128, MaxIOQpairsPerCtrlr: 127, InCapsuleDataSize: 4096,
		MaxIOSize: 131072, MaxAqDepth: 128, IobufSmallCacheSize: 4294967295, IobufLargeCacheSize: 4294967295,
		C2HSuccess: true, AbortTimeoutSec: 1, Kas: 100, MinKato: 10000}
}

// canonicalTrtype returns SPDK's spelling of a transport type, "" if the
// type is unknown.
func canonicalTrtype(s string) string {
	switch strings.ToUpper(s) {
	case "TCP":
		return "TCP"
	case "RDMA":
		return "RDMA"
	case "PCIE":
		return "PCIe"
	case "FC":
		return "FC"
	case "VFIOUSER":
		return "VFIOUSER"
	}
	return ""
}

// canonicalAdrfam returns SPDK's spelling of an address family, "" if
// unknown.
func canonicalAdrfam(s string) string {
	switch strings.ToUpper(s) {
	case "IPV4":
		return "IPv4"
	case "IPV6":
		return "IPv6"
	case "IB":
		return "IB"
	case "FC":
		return "FC"
	case "INTRA_HOST":
		return "INTRA_HOST"
	}
	return ""
}

func (t *Target) transport(trtype string) *transport {
	for _, tr := range t.transports {
		if strings.EqualFold(tr.opts.Trtype, trtype) {
			return tr
		}
	}
	return nil
}

// nvmfCreateTransport: nvmf_create_transport {trtype, ...options}. Unknown
// options are ignored (relaxed decoding).
func nvmfCreateTransport(_ context.Context, t *Target, r *request) (any, error) {
	var p struct {
		Trtype  string `json:"trtype"`
		TgtName string `json:"tgt_name"`
		transportOptions
	}
	if err := r.decodeRelaxed(&p, "trtype"); err != nil {
		return nil, err
	}
	if err := r.decodeRelaxed(&p.transportOptions); err != nil {
		return nil, err
	}
	if t.transport(p.Trtype) != nil {
		return nil, r.errf(-32603, "Transport type '%s' already exists", p.Trtype)
	}
	if canonicalTrtype(p.Trtype) != "TCP" {
		return nil, r.errf(-32602, "Invalid transport type '%s'", p.Trtype)
	}
	opts := defaultTCPTransport()
	p.transportOptions.apply(&opts)
	t.transports = append(t.transports, &transport{opts: opts})
	return true, nil
}

// transportOptions are the TCP options the model keeps; other options are
// accepted and ignored.
type transportOptions struct {
	MaxQueueDepth          *uint32 `json:"max_queue_depth"`
	MaxIOQpairsPerCtrlr    *uint32 `json:"max_io_qpairs_per_ctrlr"`
	InCapsuleDataSize      *uint32 `json:"in_capsule_data_size"`
	MaxIOSize              *uint32 `json:"max_io_size"`
	MaxAqDepth             *uint32 `json:"max_aq_depth"`
	DifInsertOrStrip       *bool   `json:"dif_insert_or_strip"`
	Zcopy                  *bool   `json:"zcopy"`
	C2HSuccess             *bool   `json:"c2h_success"`
	SockPriority           *uint32 `json:"sock_priority"`
	AbortTimeoutSec        *uint32 `json:"abort_timeout_sec"`
	AckTimeout             *uint32 `json:"ack_timeout"`
	DataWrPoolSize         *uint32 `json:"data_wr_pool_size"`
	DisableCommandPassthru *bool   `json:"disable_command_passthru"`
	Kas                    *uint32 `json:"kas"`
	MinKato                *uint32 `json:"min_kato"`
}

func (o transportOptions) apply(j *transportJSON) {
	set := func(dst *uint32, v *uint32) {
		if v != nil {
			*dst = *v
		}
	}
	setb := func(dst *bool, v *bool) {
		if v != nil {
			*dst = *v
		}
	}
	set(&j.MaxQueueDepth, o.MaxQueueDepth)
	set(&j.MaxIOQpairsPerCtrlr, o.MaxIOQpairsPerCtrlr)
	set(&j.InCapsuleDataSize, o.InCapsuleDataSize)
	set(&j.MaxIOSize, o.MaxIOSize)
	set(&j.MaxAqDepth, o.MaxAqDepth)
	setb(&j.DifInsertOrStrip, o.DifInsertOrStrip)
	setb(&j.Zcopy, o.Zcopy)
	setb(&j.C2HSuccess, o.C2HSuccess)
	set(&j.SockPriority, o.SockPriority)
	set(&j.AbortTimeoutSec, o.AbortTimeoutSec)
	set(&j.AckTimeout, o.AckTimeout)
	set(&j.DataWrPoolSize, o.DataWrPoolSize)
	setb(&j.DisableCommandPassthru, o.DisableCommandPassthru)
	set(&j.Kas, o.Kas)
	set(&j.MinKato, o.MinKato)
}

// nvmfGetTransports: nvmf_get_transports {trtype?, tgt_name?}.
func nvmfGetTransports(_ context.Context, t *Target, r *request) (any, error) {
	var p struct {
		Trtype  string `json:"trtype"`
		TgtName string `json:"tgt_name"`
	}
	if err := r.decode(&p); err != nil {
		return nil, err
	}
	out := []transportJSON{}
	if p.Trtype != "" {
		tr := t.transport(p.Trtype)
		if tr == nil {
			return nil, r.errno(eNODEV)
		}
		return append(out, tr.opts), nil
	}
	for _, tr := range t.transports {
		out = append(out, tr.opts)
	}
	return out, nil
}

// subsystem is one NVMe-oF subsystem (or the discovery subsystem).
type subsystem struct {
	nqn          string
	discovery    bool
	serial       string
	model        string
	allowAnyHost bool
	anaReporting bool
	maxNS        uint32
	minCntlid    int
	maxCntlid    int
	hosts        []string
	listeners    []*listener  // oldest first
	namespaces   []*namespace // by nsid
	ctrlrs       []*nvmfCtrlr
	nextCntlid   int
	// instance tells it apart from an earlier subsystem of the same NQN.
	instance uint64
}

// listener is one listen address of a subsystem, with the ANA state of
// each ANA group (1..maxNS) as seen through it.
type listener struct {
	trtype, adrfam, traddr, trsvcid string
	ana                             []string
}

// namespace exposes a bdev, which it claims exclusive_write.
type namespace struct {
	sub      *subsystem
	nsid     uint32
	b        *bdev
	uuid     string
	nguid    string
	eui64    string
	anagrpid uint32
}

// nvmfCtrlr is a host's controller on a subsystem, one per connection.
type nvmfCtrlr struct {
	cntlid   int
	hostnqn  string
	hostid   string
	listener *listener
	link     *link
	peerPort int
}

func newDiscoverySubsystem() *subsystem {
	return &subsystem{nqn: discoveryNQN, discovery: true, allowAnyHost: true}
}

func (t *Target) subsystem(nqn string) *subsystem {
	for _, s := range t.subsystems {
		if s.nqn == nqn {
			return s
		}
	}
	return nil
}

func (s *subsystem) namespace(nsid uint32) *namespace {
	for _, ns := range s.namespaces {
		if ns.nsid == nsid {
			return ns
		}
	}
	return nil
}

// hostAllowed is the check a CONNECT goes through.
func (s *subsystem) hostAllowed(hostnqn string) bool {
	return s.allowAnyHost || slices.Contains(s.hosts, hostnqn)
}

// hotRemove: the namespace's bdev was deleted, so the namespace goes.
func (ns *namespace) hotRemove(t *Target, _ *bdev) {
	s := ns.sub
	s.namespaces = slices.DeleteFunc(s.namespaces, func(x *namespace) bool { return x == ns })
	s.refreshLinks()
	t.changedHook(s)
}

// viewFor is what a controller connected through l sees.
func (s *subsystem) viewFor(c *nvmfCtrlr) remoteView {
	v := remoteView{cntlid: c.cntlid, subnqn: s.nqn, model: s.model, serial: s.serial, anaReporting: s.anaReporting}
	for _, ns := range s.namespaces {
		rn := remoteNamespace{nsid: ns.nsid, nguid: ns.nguid, uuid: ns.uuid, blockSize: ns.b.blockSize,
			numBlocks: ns.b.numBlocks}
		if dp := ns.b.dataPath(); dp != nil {
			rn.dev = &Dev{b: ns.b, dp: dp}
		}
		if s.anaReporting && int(ns.anagrpid) <= len(c.listener.ana) {
			rn.anaState = c.listener.ana[ns.anagrpid-1]
		}
		v.namespaces = append(v.namespaces, rn)
	}
	return v
}

// refreshLinks pushes the subsystem's current state to every connected
// controller, as the target's asynchronous events would.
func (s *subsystem) refreshLinks() {
	for _, c := range s.ctrlrs {
		c.link.setView(s.viewFor(c))
	}
}

// liveCtrlrs drops the controllers whose host has disconnected.
func (s *subsystem) liveCtrlrs() []*nvmfCtrlr {
	s.ctrlrs = slices.DeleteFunc(s.ctrlrs, func(c *nvmfCtrlr) bool { return c.link.isClosed() })
	return s.ctrlrs
}

// disconnect cuts the controllers for which drop is true.
func (s *subsystem) disconnect(drop func(c *nvmfCtrlr) bool) {
	s.ctrlrs = slices.DeleteFunc(s.ctrlrs, func(c *nvmfCtrlr) bool {
		if drop(c) {
			c.link.close()
			return true
		}
		return false
	})
}

// acceptConnect serves a CONNECT from the Fabric.
func (t *Target) acceptConnect(req connectRequest) (*link, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	s := t.subsystem(req.subnqn)
	if s == nil || s.discovery {
		return nil, false // INVALID PARAM (01/82)
	}
	i := slices.IndexFunc(s.listeners, func(l *listener) bool {
		return strings.EqualFold(l.trtype, req.trtype) && l.traddr == req.traddr && l.trsvcid == req.trsvcid
	})
	if i < 0 {
		return nil, false
	}
	if !s.hostAllowed(req.hostnqn) {
		return nil, false // INVALID HOST (01/84)
	}
	if s.nextCntlid < s.minCntlid || s.nextCntlid > s.maxCntlid {
		s.nextCntlid = s.minCntlid
	}
	c := &nvmfCtrlr{cntlid: s.nextCntlid, hostnqn: req.hostnqn, hostid: req.hostid, listener: s.listeners[i],
		link: &link{}}
	s.nextCntlid++
	t.seq++
	c.peerPort = 32768 + int(t.seq%28000)
	c.link.view = s.viewFor(c)
	s.ctrlrs = append(s.ctrlrs, c)
	return c.link, true
}

// nvmfCreateSubsystem: nvmf_create_subsystem {nqn, serial_number?,
// model_number?, allow_any_host?, ana_reporting?, max_namespaces?,
// min_cntlid?, max_cntlid?, ...}.
func nvmfCreateSubsystem(_ context.Context, t *Target, r *request) (any, error) {
	p := struct {
		NQN                   string `json:"nqn"`
		TgtName               string `json:"tgt_name"`
		SerialNumber          string `json:"serial_number"`
		ModelNumber           string `json:"model_number"`
		AllowAnyHost          bool   `json:"allow_any_host"`
		AnaReporting          bool   `json:"ana_reporting"`
		MaxNamespaces         uint32 `json:"max_namespaces"`
		MinCntlid             uint16 `json:"min_cntlid"`
		MaxCntlid             uint16 `json:"max_cntlid"`
		MaxDiscardSizeKiB     uint64 `json:"max_discard_size_kib"`
		MaxWriteZeroesSizeKiB uint64 `json:"max_write_zeroes_size_kib"`
		Passthrough           bool   `json:"passthrough"`
		EnableNssr            bool   `json:"enable_nssr"`
	}{MinCntlid: 1, MaxCntlid: 65519}
	if err := r.decode(&p, "nqn"); err != nil {
		return nil, err
	}
	if len(p.SerialNumber) > 20 || len(p.ModelNumber) > 40 {
		return nil, r.err(-32602, "Invalid parameters")
	}
	if !validNQN(p.NQN) || t.subsystem(p.NQN) != nil || p.NQN == discoveryNQN {
		return nil, r.errf(-32603, "Unable to create subsystem %s", p.NQN)
	}
	if p.MinCntlid < 1 || p.MaxCntlid > 65519 || p.MinCntlid > p.MaxCntlid {
		return nil, r.err(-32602, "Invalid parameters")
	}
	s := &subsystem{nqn: p.NQN, serial: p.SerialNumber, model: p.ModelNumber, allowAnyHost: p.AllowAnyHost,
		anaReporting: p.AnaReporting, maxNS: p.MaxNamespaces, minCntlid: int(p.MinCntlid),
		maxCntlid: int(p.MaxCntlid), nextCntlid: int(p.MinCntlid)}
	if s.serial == "" {
		s.serial = "00000000000000000000"
	}
	if s.model == "" {
		s.model = "SPDK bdev Controller"
	}
	if s.maxNS == 0 {
		s.maxNS = 32
	}
	t.instances++
	s.instance = t.instances
	t.subsystems = append(t.subsystems, s)
	return true, nil
}

// nvmfDeleteSubsystem: nvmf_delete_subsystem {nqn, tgt_name?}. Connected
// hosts are cut off; the discovery subsystem can be deleted too.
func nvmfDeleteSubsystem(_ context.Context, t *Target, r *request) (any, error) {
	var p struct {
		NQN     string `json:"nqn"`
		TgtName string `json:"tgt_name"`
	}
	if err := r.decode(&p, "nqn"); err != nil {
		return nil, err
	}
	s := t.subsystem(p.NQN)
	if s == nil {
		return nil, r.err(-32602, "Invalid parameters")
	}
	s.disconnect(func(*nvmfCtrlr) bool { return true })
	t.disconnectHook(s, ListenAddr{}, "")
	for _, ns := range s.namespaces {
		ns.b.release(ns)
	}
	s.namespaces = nil
	for _, l := range slices.Clone(s.listeners) {
		t.removeListener(s, l)
	}
	t.subsystems = slices.DeleteFunc(t.subsystems, func(x *subsystem) bool { return x == s })
	t.changedHook(s)
	return true, nil
}

type listenAddressJSON struct {
	Trtype  string `json:"trtype"`
	Adrfam  string `json:"adrfam"`
	Traddr  string `json:"traddr"`
	Trsvcid string `json:"trsvcid"`
}

func (l *listener) address() listenAddressJSON {
	return listenAddressJSON{Trtype: l.trtype, Adrfam: l.adrfam, Traddr: l.traddr, Trsvcid: l.trsvcid}
}

type hostJSON struct {
	NQN string `json:"nqn"`
}

type discoverySubsystemJSON struct {
	NQN             string              `json:"nqn"`
	Subtype         string              `json:"subtype"`
	ListenAddresses []listenAddressJSON `json:"listen_addresses"`
	AllowAnyHost    bool                `json:"allow_any_host"`
	Hosts           []hostJSON          `json:"hosts"`
}

type subsystemJSON struct {
	NQN             string              `json:"nqn"`
	Subtype         string              `json:"subtype"`
	ListenAddresses []listenAddressJSON `json:"listen_addresses"`
	AllowAnyHost    bool                `json:"allow_any_host"`
	Hosts           []hostJSON          `json:"hosts"`
	SerialNumber    string              `json:"serial_number"`
	ModelNumber     string              `json:"model_number"`
	MaxNamespaces   uint32              `json:"max_namespaces"`
	Passthrough     bool                `json:"passthrough"`
	MinCntlid       int                 `json:"min_cntlid"`
	MaxCntlid       int                 `json:"max_cntlid"`
	Dmrsl           uint32              `json:"dmrsl"`
	Wzsl            uint32              `json:"wzsl"`
	Namespaces      []namespaceJSON     `json:"namespaces"`
}

type namespaceJSON struct {
	NSID     uint32  `json:"nsid"`
	BdevName string  `json:"bdev_name"`
	Name     string  `json:"name"`
	NGUID    string  `json:"nguid"`
	EUI64    string  `json:"eui64,omitempty"`
	UUID     string  `json:"uuid"`
	AnaGrpID *uint32 `json:"anagrpid,omitempty"`
}

func (s *subsystem) json() any {
	addrs := []listenAddressJSON{}
	for i := len(s.listeners) - 1; i >= 0; i-- { // newest first
		addrs = append(addrs, s.listeners[i].address())
	}
	hosts := []hostJSON{}
	for _, h := range s.hosts {
		hosts = append(hosts, hostJSON{NQN: h})
	}
	if s.discovery {
		return discoverySubsystemJSON{NQN: s.nqn, Subtype: "Discovery", ListenAddresses: addrs,
			AllowAnyHost: s.allowAnyHost, Hosts: hosts}
	}
	j := subsystemJSON{NQN: s.nqn, Subtype: "NVMe", ListenAddresses: addrs, AllowAnyHost: s.allowAnyHost,
		Hosts: hosts, SerialNumber: s.serial, ModelNumber: s.model, MaxNamespaces: s.maxNS,
		MinCntlid: s.minCntlid, MaxCntlid: s.maxCntlid, Dmrsl: 2097152, Wzsl: 12, Namespaces: []namespaceJSON{}}
	for _, ns := range s.namespaces {
		nj := namespaceJSON{NSID: ns.nsid, BdevName: ns.b.name, Name: ns.b.name, NGUID: ns.nguid,
			EUI64: ns.eui64, UUID: ns.uuid}
		if s.anaReporting {
			g := ns.anagrpid
			nj.AnaGrpID = &g
		}
		j.Namespaces = append(j.Namespaces, nj)
	}
	return j
}

// nvmfGetSubsystems: nvmf_get_subsystems {nqn?, tgt_name?}.
func nvmfGetSubsystems(_ context.Context, t *Target, r *request) (any, error) {
	var p struct {
		NQN     string `json:"nqn"`
		TgtName string `json:"tgt_name"`
	}
	if err := r.decode(&p); err != nil {
		return nil, err
	}
	out := []any{}
	for _, s := range t.subsystems {
		if p.NQN == "" || s.nqn == p.NQN {
			out = append(out, s.json())
		}
	}
	if p.NQN != "" && len(out) == 0 {
		return nil, r.errno(eNODEV)
	}
	return out, nil
}

// invalidParams is the nvmf methods' catch-all error.
func (r *request) invalidParams() error { return r.err(-32602, "Invalid parameters") }

// nvmfSubsystemAddNs: nvmf_subsystem_add_ns {nqn, namespace:{bdev_name,
// nsid?, uuid?, nguid?, eui64?, anagrpid?, ...}, tgt_name?}.
func nvmfSubsystemAddNs(_ context.Context, t *Target, r *request) (any, error) {
	var p struct {
		NQN       string `json:"nqn"`
		TgtName   string `json:"tgt_name"`
		Namespace struct {
			BdevName      string `json:"bdev_name"`
			NSID          uint32 `json:"nsid"`
			UUID          string `json:"uuid"`
			NGUID         string `json:"nguid"`
			EUI64         string `json:"eui64"`
			AnaGrpID      uint32 `json:"anagrpid"`
			PtplFile      string `json:"ptpl_file"`
			NoAutoVisible bool   `json:"no_auto_visible"`
			HideMetadata  bool   `json:"hide_metadata"`
		} `json:"namespace"`
	}
	if err := r.decode(&p, "nqn", "namespace"); err != nil {
		return nil, err
	}
	o := p.Namespace
	if o.BdevName == "" {
		return nil, r.invalidParams()
	}
	var nsUUID, nguid string
	if o.UUID != "" {
		var ok bool
		if nsUUID, ok = canonicalUUID(o.UUID); !ok {
			return nil, r.invalidParams()
		}
	}
	if o.NGUID != "" {
		b, ok := parseNGUID(o.NGUID)
		if !ok {
			return nil, r.invalidParams()
		}
		nguid = nguidOfUUID(formatUUID(b))
	}
	if o.EUI64 != "" && len(strings.ReplaceAll(o.EUI64, "-", "")) != 16 {
		return nil, r.invalidParams()
	}
	s := t.subsystem(p.NQN)
	if s == nil || s.discovery {
		return nil, r.invalidParams()
	}
	b := t.lookup(o.BdevName)
	if b == nil {
		return nil, r.invalidParams()
	}
	nsid := o.NSID
	if nsid == 0 {
		for nsid = 1; s.namespace(nsid) != nil; nsid++ {
		}
	}
	if nsid > s.maxNS || s.namespace(nsid) != nil {
		return nil, r.invalidParams()
	}
	grp := o.AnaGrpID
	if grp == 0 {
		grp = nsid
	}
	if grp > s.maxNS {
		return nil, r.invalidParams()
	}
	ns := &namespace{sub: s, nsid: nsid, b: b, uuid: nsUUID, nguid: nguid, eui64: o.EUI64, anagrpid: grp}
	if ns.uuid == "" {
		ns.uuid = b.uuid
	}
	if ns.nguid == "" {
		ns.nguid = nguidOfUUID(b.uuid)
	}
	if !t.claimBdev(b, claimExclusiveWrite, ns) {
		return nil, r.invalidParams()
	}
	i, _ := slices.BinarySearchFunc(s.namespaces, nsid, func(x *namespace, id uint32) int { return int(x.nsid) - int(id) })
	s.namespaces = slices.Insert(s.namespaces, i, ns)
	s.refreshLinks()
	t.changedHook(s)
	return nsid, nil
}

// nvmfSubsystemRemoveNs: nvmf_subsystem_remove_ns {nqn, nsid, tgt_name?}.
func nvmfSubsystemRemoveNs(_ context.Context, t *Target, r *request) (any, error) {
	var p struct {
		NQN     string `json:"nqn"`
		NSID    uint32 `json:"nsid"`
		TgtName string `json:"tgt_name"`
	}
	if err := r.decode(&p, "nqn", "nsid"); err != nil {
		return nil, err
	}
	s := t.subsystem(p.NQN)
	if s == nil {
		return nil, r.invalidParams()
	}
	ns := s.namespace(p.NSID)
	if ns == nil {
		return nil, r.invalidParams()
	}
	ns.b.release(ns)
	s.namespaces = slices.DeleteFunc(s.namespaces, func(x *namespace) bool { return x == ns })
	s.refreshLinks()
	t.changedHook(s)
	return true, nil
}

// nvmfSubsystemSetNsAnaGroup: nvmf_subsystem_set_ns_ana_group {nqn, nsid,
// anagrpid, tgt_name?}.
func nvmfSubsystemSetNsAnaGroup(_ context.Context, t *Target, r *request) (any, error) {
	var p struct {
		NQN      string `json:"nqn"`
		NSID     uint32 `json:"nsid"`
		AnaGrpID uint32 `json:"anagrpid"`
		TgtName  string `json:"tgt_name"`
	}
	if err := r.decode(&p, "nqn", "nsid", "anagrpid"); err != nil {
		return nil, err
	}
	s := t.subsystem(p.NQN)
	if s == nil {
		return nil, r.invalidParams()
	}
	ns := s.namespace(p.NSID)
	if ns == nil || p.AnaGrpID == 0 || p.AnaGrpID > s.maxNS {
		return nil, r.err(-32603, "Internal error")
	}
	ns.anagrpid = p.AnaGrpID
	s.refreshLinks()
	t.changedHook(s)
	return true, nil
}

// listenAddressParams is a listen_address object; its members are decoded
// strictly even where the enclosing object is relaxed.
type listenAddressParams struct {
	Trtype  string `json:"trtype"`
	Adrfam  string `json:"adrfam"`
	Traddr  string `json:"traddr"`
	Trsvcid string `json:"trsvcid"`
	TgtName string `json:"tgt_name"`
}

// listenerOf checks a listen_address and returns it in SPDK's spelling.
func (a listenAddressParams) listener() (listener, bool) {
	l := listener{trtype: canonicalTrtype(a.Trtype), adrfam: "IPv4", traddr: a.Traddr, trsvcid: a.Trsvcid}
	if a.Adrfam != "" {
		l.adrfam = canonicalAdrfam(a.Adrfam)
	}
	if l.trtype == "" || l.adrfam == "" || l.traddr == "" {
		return l, false
	}
	if (l.trtype == "TCP" || l.trtype == "RDMA") && l.trsvcid == "" {
		return l, false // "Service id is required"
	}
	return l, true
}

func (l *listener) same(o listener) bool {
	return strings.EqualFold(l.trtype, o.trtype) && strings.EqualFold(l.adrfam, o.adrfam) &&
		strings.EqualFold(l.traddr, o.traddr) && strings.EqualFold(l.trsvcid, o.trsvcid)
}

func (s *subsystem) listener(o listener) *listener {
	for _, l := range s.listeners {
		if l.same(o) {
			return l
		}
	}
	return nil
}

// decodeAnaState checks an ana_state value; a bad one is a decode error.
func decodeAnaState(s string) bool {
	return s == "optimized" || s == "non_optimized" || s == "inaccessible"
}

// portUsers counts this target's listeners on a port, across subsystems.
func (t *Target) portUsers(key string) int {
	n := 0
	for _, s := range t.subsystems {
		for _, l := range s.listeners {
			if portKey(l.trtype, l.traddr, l.trsvcid) == key {
				n++
			}
		}
	}
	return n
}

// nvmfSubsystemAddListener: nvmf_subsystem_add_listener {nqn,
// listen_address, ana_state?, secure_channel?, sock_impl?, ...}. Unknown
// top-level members are ignored; unknown listen_address members are not.
func nvmfSubsystemAddListener(_ context.Context, t *Target, r *request) (any, error) {
	var p struct {
		NQN           string              `json:"nqn"`
		ListenAddress listenAddressParams `json:"listen_address"`
		TgtName       string              `json:"tgt_name"`
		AnaState      string              `json:"ana_state"`
		SecureChannel bool                `json:"secure_channel"`
		SockImpl      string              `json:"sock_impl"`
	}
	if err := r.decodeRelaxed(&p, "nqn", "listen_address"); err != nil {
		return nil, err
	}
	if p.AnaState != "" && !decodeAnaState(p.AnaState) {
		return nil, r.invalidParams()
	}
	s := t.subsystem(p.NQN)
	if s == nil {
		return nil, r.invalidParams()
	}
	l, ok := p.ListenAddress.listener()
	if !ok || t.transport(l.trtype) == nil || !t.addresses[l.traddr] || s.listener(l) != nil {
		return nil, r.invalidParams()
	}
	key := portKey(l.trtype, l.traddr, l.trsvcid)
	if !t.fabric.bind(key, t) {
		return nil, r.invalidParams() // address in use by another application
	}
	if err := t.listenPort(key, ListenAddr{Trtype: l.trtype, Traddr: l.traddr, Trsvcid: l.trsvcid}); err != nil {
		if t.portUsers(key) == 0 {
			t.fabric.unbind(key, t)
		}
		return nil, r.invalidParams() // SPDK's answer when spdk_nvmf_tgt_listen_ext fails
	}
	state := p.AnaState
	if state == "" {
		state = "optimized"
	}
	l.ana = make([]string, s.maxNS)
	for i := range l.ana {
		l.ana[i] = state
	}
	s.listeners = append(s.listeners, &l)
	t.changedHook(s)
	return true, nil
}

// removeListener drops l from s, cutting the controllers connected
// through it, and stops listening on its port if nothing else uses it.
func (t *Target) removeListener(s *subsystem, l *listener) {
	s.disconnect(func(c *nvmfCtrlr) bool { return c.listener == l })
	s.listeners = slices.DeleteFunc(s.listeners, func(x *listener) bool { return x == l })
	t.disconnectHook(s, ListenAddr{Trtype: l.trtype, Traddr: l.traddr, Trsvcid: l.trsvcid}, "")
	key := portKey(l.trtype, l.traddr, l.trsvcid)
	if t.portUsers(key) == 0 {
		t.fabric.unbind(key, t)
		t.unlistenPort(key, ListenAddr{Trtype: l.trtype, Traddr: l.traddr, Trsvcid: l.trsvcid})
	}
	t.changedHook(s)
}

// nvmfSubsystemRemoveListener: nvmf_subsystem_remove_listener {nqn,
// listen_address, tgt_name?}.
func nvmfSubsystemRemoveListener(_ context.Context, t *Target, r *request) (any, error) {
	var p struct {
		NQN           string              `json:"nqn"`
		ListenAddress listenAddressParams `json:"listen_address"`
		TgtName       string              `json:"tgt_name"`
	}
	if err := r.decode(&p, "nqn", "listen_address"); err != nil {
		return nil, err
	}
	s := t.subsystem(p.NQN)
	if s == nil {
		return nil, r.invalidParams()
	}
	want, ok := p.ListenAddress.listener()
	if !ok {
		return nil, r.invalidParams()
	}
	l := s.listener(want)
	if l == nil {
		return nil, r.invalidParams()
	}
	t.removeListener(s, l)
	return true, nil
}

type anaStateJSON struct {
	AnaGroup uint32 `json:"ana_group"`
	AnaState string `json:"ana_state"`
}

type listenerJSON struct {
	Address   listenAddressJSON `json:"address"`
	AnaStates []anaStateJSON    `json:"ana_states,omitempty"`
}

// nvmfSubsystemGetListeners: nvmf_subsystem_get_listeners {nqn,
// tgt_name?}, newest first; ana_states only with ANA reporting.
func nvmfSubsystemGetListeners(_ context.Context, t *Target, r *request) (any, error) {
	var p struct {
		NQN     string `json:"nqn"`
		TgtName string `json:"tgt_name"`
	}
	if err := r.decode(&p, "nqn"); err != nil {
		return nil, err
	}
	s := t.subsystem(p.NQN)
	if s == nil {
		return nil, r.invalidParams()
	}
	out := []listenerJSON{}
	for i := len(s.listeners) - 1; i >= 0; i-- {
		l := s.listeners[i]
		j := listenerJSON{Address: l.address()}
		if s.anaReporting {
			for g, st := range l.ana {
				j.AnaStates = append(j.AnaStates, anaStateJSON{AnaGroup: uint32(g + 1), AnaState: st})
			}
		}
		out = append(out, j)
	}
	return out, nil
}

// nvmfSubsystemListenerSetAnaState: nvmf_subsystem_listener_set_ana_state
// {nqn, listen_address, ana_state, anagrpid?, tgt_name?}. Without anagrpid
// (or with 0) every group of the listener changes.
func nvmfSubsystemListenerSetAnaState(_ context.Context, t *Target, r *request) (any, error) {
	var p struct {
		NQN           string              `json:"nqn"`
		ListenAddress listenAddressParams `json:"listen_address"`
		AnaState      string              `json:"ana_state"`
		AnaGrpID      uint32              `json:"anagrpid"`
		TgtName       string              `json:"tgt_name"`
	}
	if err := r.decode(&p, "nqn", "listen_address", "ana_state"); err != nil {
		return nil, err
	}
	if !decodeAnaState(p.AnaState) {
		return nil, r.invalidParams()
	}
	s := t.subsystem(p.NQN)
	if s == nil {
		return nil, r.invalidParams()
	}
	fail := r.err(-32603, fmt.Sprintf("error setting ANA state: %d", eINVAL))
	want, ok := p.ListenAddress.listener()
	if !ok {
		return nil, r.invalidParams()
	}
	if !s.anaReporting || p.AnaGrpID > s.maxNS {
		return nil, fail
	}
	l := s.listener(want)
	if l == nil {
		return nil, fail
	}
	for i := range l.ana {
		if p.AnaGrpID == 0 || uint32(i+1) == p.AnaGrpID {
			l.ana[i] = p.AnaState
		}
	}
	s.refreshLinks()
	t.changedHook(s)
	return true, nil
}

type hostParams struct {
	NQN            string `json:"nqn"`
	Host           string `json:"host"`
	TgtName        string `json:"tgt_name"`
	Psk            string `json:"psk"`
	DhchapKey      string `json:"dhchap_key"`
	DhchapCtrlrKey string `json:"dhchap_ctrlr_key"`
}

// nvmfSubsystemAddHost: nvmf_subsystem_add_host {nqn, host, ...}. A
// duplicate or invalid host NQN is -32603 "Internal error".
func nvmfSubsystemAddHost(_ context.Context, t *Target, r *request) (any, error) {
	var p hostParams
	if err := r.decode(&p, "nqn", "host"); err != nil {
		return nil, err
	}
	s := t.subsystem(p.NQN)
	if s == nil {
		return nil, r.invalidParams()
	}
	if !validNQN(p.Host) || slices.Contains(s.hosts, p.Host) {
		return nil, r.err(-32603, "Internal error")
	}
	s.hosts = append(s.hosts, p.Host)
	t.changedHook(s)
	return true, nil
}

// nvmfSubsystemRemoveHost: nvmf_subsystem_remove_host {nqn, host, ...}.
// The host's controllers are disconnected, which is what fences it.
func nvmfSubsystemRemoveHost(_ context.Context, t *Target, r *request) (any, error) {
	var p hostParams
	if err := r.decode(&p, "nqn", "host"); err != nil {
		return nil, err
	}
	s := t.subsystem(p.NQN)
	if s == nil {
		return nil, r.invalidParams()
	}
	i := slices.Index(s.hosts, p.Host)
	if i < 0 {
		return nil, r.err(-32603, "Internal error")
	}
	s.hosts = slices.Delete(s.hosts, i, i+1)
	s.disconnect(func(c *nvmfCtrlr) bool { return c.hostnqn == p.Host })
	t.disconnectHook(s, ListenAddr{}, p.Host)
	t.changedHook(s)
	return true, nil
}

// nvmfSubsystemAllowAnyHost: nvmf_subsystem_allow_any_host {nqn,
// allow_any_host, tgt_name?}. Turning it off leaves connected hosts
// connected.
func nvmfSubsystemAllowAnyHost(_ context.Context, t *Target, r *request) (any, error) {
	var p struct {
		NQN          string `json:"nqn"`
		AllowAnyHost bool   `json:"allow_any_host"`
		TgtName      string `json:"tgt_name"`
	}
	if err := r.decode(&p, "nqn", "allow_any_host"); err != nil {
		return nil, err
	}
	s := t.subsystem(p.NQN)
	if s == nil {
		return nil, r.invalidParams()
	}
	s.allowAnyHost = p.AllowAnyHost
	t.changedHook(s)
	return true, nil
}

type nvmfCtrlrJSON struct {
	Cntlid      int    `json:"cntlid"`
	Cntrltype   string `json:"cntrltype"`
	Hostnqn     string `json:"hostnqn"`
	Hostid      string `json:"hostid"`
	NumIOQpairs int    `json:"num_io_qpairs"`
}

func (t *Target) querySubsystem(r *request) (*subsystem, error) {
	var p struct {
		NQN     string `json:"nqn"`
		TgtName string `json:"tgt_name"`
	}
	if err := r.decode(&p, "nqn"); err != nil {
		return nil, err
	}
	s := t.subsystem(p.NQN)
	if s == nil {
		return nil, r.invalidParams()
	}
	return s, nil
}

// nvmfSubsystemGetControllers: nvmf_subsystem_get_controllers {nqn}.
func nvmfSubsystemGetControllers(_ context.Context, t *Target, r *request) (any, error) {
	s, err := t.querySubsystem(r)
	if err != nil {
		return nil, err
	}
	out := []nvmfCtrlrJSON{}
	if t.ctrlInfo != nil {
		if !s.discovery {
			for _, c := range t.ctrlInfo(s.nqn) {
				out = append(out, nvmfCtrlrJSON{Cntlid: c.CNTLID, Cntrltype: "io", Hostnqn: c.HostNQN,
					Hostid: c.HostID, NumIOQpairs: len(c.Qpairs)})
			}
		}
		return out, nil
	}
	for _, c := range s.liveCtrlrs() {
		out = append(out, nvmfCtrlrJSON{Cntlid: c.cntlid, Cntrltype: "io", Hostnqn: c.hostnqn, Hostid: c.hostid,
			NumIOQpairs: 1})
	}
	return out, nil
}

type qpairJSON struct {
	Cntlid        int               `json:"cntlid"`
	QID           int               `json:"qid"`
	State         string            `json:"state"`
	Thread        string            `json:"thread"`
	Hostnqn       string            `json:"hostnqn"`
	ListenAddress listenAddressJSON `json:"listen_address"`
	PeerAddress   listenAddressJSON `json:"peer_address"`
}

// nvmfSubsystemGetQpairs: nvmf_subsystem_get_qpairs {nqn}; the admin queue
// of each controller.
func nvmfSubsystemGetQpairs(_ context.Context, t *Target, r *request) (any, error) {
	s, err := t.querySubsystem(r)
	if err != nil {
		return nil, err
	}
	out := []qpairJSON{}
	if t.ctrlInfo != nil {
		if !s.discovery {
			for _, c := range t.ctrlInfo(s.nqn) {
				for _, q := range c.Qpairs {
					out = append(out, qpairJSON{Cntlid: c.CNTLID, QID: q.QID, State: q.State,
						Thread: "nvmf_tgt_poll_group_000", Hostnqn: c.HostNQN, ListenAddress: q.Local.json(),
						PeerAddress: q.Peer.json()})
				}
			}
		}
		return out, nil
	}
	for _, c := range s.liveCtrlrs() {
		la := c.listener.address()
		peer := la
		peer.Trsvcid = fmt.Sprint(c.peerPort)
		out = append(out, qpairJSON{Cntlid: c.cntlid, State: "enabled", Thread: "nvmf_tgt_poll_group_000",
			Hostnqn: c.hostnqn, ListenAddress: la, PeerAddress: peer})
	}
	return out, nil
}
