// Package syncup delivers desired state to agents: it reads a node's whole
// desired state from the store, sends it to the node's agent (Syncup) and
// records the report as status, guarded by the node's generation so that a
// late answer never overwrites newer state.
//
// The portal pushes right after a change commits, best effort; the monitor
// pushes until a node has applied its generation. Both go through a
// Pusher.
package syncup

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"connectrpc.com/connect"
	"github.com/virtual-disk-array/vda"
	"github.com/virtual-disk-array/vda/pki"
	vdav1 "github.com/virtual-disk-array/vda/proto/vda/v1"
	"github.com/virtual-disk-array/vda/proto/vda/v1/vdav1connect"
	"github.com/virtual-disk-array/vda/store"
)

// Config configures a Pusher.
type Config struct {
	// DB is the cluster's store. Required.
	DB *store.DB
	// HTTPClient reaches the agents; nil means a client of its own, over
	// mutual TLS with Certs when set, else over plaintext HTTP/1.1.
	HTTPClient connect.HTTPClient
	// Certs is the control plane's side of mutual TLS: a certificate with
	// the control-plane identity, presented to the agents, and the CA
	// bundle their certificates must chain to, for the address dialled
	// (each dial takes the files as they are: pki.Source.DialTLSContext).
	// Agents' addresses are then dialled as https. Nil means plaintext,
	// for clusters run with --insecure.
	Certs *pki.Source
	// Timeout bounds one push: reading the state, the agent's reconcile and
	// recording the report. 0 means 60 s.
	Timeout time.Duration
	// Logger; nil means slog.Default().
	Logger *slog.Logger
	// Now is the clock of the reports' times; nil means time.Now.
	Now func() time.Time
	// ClientOptions are passed to the agents' Connect clients.
	ClientOptions []connect.ClientOption
	// Recycle is how often the pusher's own TLS client closes its idle
	// connections to the agents, so that a rotated certificate or CA
	// bundle is used within that time: the connections that heartbeats
	// keep alive would otherwise keep their first handshake for ever.
	// 0 means a minute; it does nothing with a given HTTPClient.
	Recycle time.Duration
}

// Pusher pushes nodes' desired states to their agents. It is safe for
// concurrent use.
type Pusher struct {
	db      *store.DB
	http    connect.HTTPClient
	scheme  string
	timeout time.Duration
	log     *slog.Logger
	now     func() time.Time
	opts    []connect.ClientOption

	// closeIdle closes the idle connections of the pusher's own client;
	// lastRecycle is when it last did, in UnixNano.
	closeIdle   func()
	recycle     time.Duration
	lastRecycle atomic.Int64

	mu  sync.Mutex
	dns map[string]vdav1connect.DnAgentServiceClient
	cns map[string]vdav1connect.CnAgentServiceClient
}

// New returns a Pusher.
func New(cfg Config) (*Pusher, error) {
	if cfg.DB == nil {
		return nil, vda.Invalidf("syncup: DB is required")
	}
	p := &Pusher{
		db: cfg.DB, http: cfg.HTTPClient, timeout: cmp.Or(cfg.Timeout, 60*time.Second),
		log: cfg.Logger, now: cfg.Now, opts: cfg.ClientOptions,
		dns: map[string]vdav1connect.DnAgentServiceClient{}, cns: map[string]vdav1connect.CnAgentServiceClient{},
	}
	p.scheme = "http://"
	if cfg.Certs != nil {
		p.scheme = "https://"
	}
	if p.http == nil {
		hc := newHTTPClient(cfg.Certs)
		p.http = hc
		if cfg.Certs != nil {
			p.closeIdle = hc.CloseIdleConnections
			p.recycle = cmp.Or(cfg.Recycle, time.Minute)
			p.lastRecycle.Store(time.Now().UnixNano())
		}
	}
	if p.log == nil {
		p.log = slog.Default()
	}
	if p.now == nil {
		p.now = time.Now
	}
	return p, nil
}

// newHTTPClient reaches the agents over mutual TLS (HTTP/2 where the
// agent offers it) when certs is set, else over plaintext HTTP/1.1.
func newHTTPClient(certs *pki.Source) *http.Client {
	if certs == nil {
		return &http.Client{}
	}
	return &http.Client{Transport: &http.Transport{
		DialTLSContext:      certs.DialTLSContext,
		ForceAttemptHTTP2:   true,
		MaxIdleConnsPerHost: 4,
		IdleConnTimeout:     90 * time.Second,
		TLSHandshakeTimeout: 10 * time.Second,
	}}
}

// baseURL turns an agent address (host:port) into the URL of its API.
func (p *Pusher) baseURL(addr string) string {
	if strings.Contains(addr, "://") {
		return addr
	}
	return p.scheme + addr
}

// recycleConns closes the idle TLS connections once every Recycle; the
// call that follows dials, and shakes hands with the files as they are.
func (p *Pusher) recycleConns() {
	if p.closeIdle == nil {
		return
	}
	now, last := time.Now().UnixNano(), p.lastRecycle.Load()
	if now-last >= int64(p.recycle) && p.lastRecycle.CompareAndSwap(last, now) {
		p.closeIdle()
	}
}

func (p *Pusher) dnClient(addr string) vdav1connect.DnAgentServiceClient {
	p.recycleConns()
	p.mu.Lock()
	defer p.mu.Unlock()
	c, ok := p.dns[addr]
	if !ok {
		c = vdav1connect.NewDnAgentServiceClient(p.http, p.baseURL(addr), p.opts...)
		p.dns[addr] = c
	}
	return c
}

func (p *Pusher) cnClient(addr string) vdav1connect.CnAgentServiceClient {
	p.recycleConns()
	p.mu.Lock()
	defer p.mu.Unlock()
	c, ok := p.cns[addr]
	if !ok {
		c = vdav1connect.NewCnAgentServiceClient(p.http, p.baseURL(addr), p.opts...)
		p.cns[addr] = c
	}
	return c
}

// PushDN sends dn id its desired state and records the report. It returns
// the report, or an error: the store's, the agent's (Connect codes: a
// FAILED_PRECONDITION is a stale generation, the agent having applied a
// newer one), or vda.ErrStaleGeneration when the dn's generation moved on
// before the report could be recorded (nothing is recorded then; whoever
// changed it pushes again).
func (p *Pusher) PushDN(ctx context.Context, id vda.DNID) (*vdav1.DnReport, error) {
	return p.PushDNForce(ctx, id, false)
}

// PushDNForce is PushDN with the syncup's force flag: with force, the agent
// applies a desired state that deletes more of its objects at once than
// its safety share allows. Only an admin's explicit call may set it.
func (p *Pusher) PushDNForce(ctx context.Context, id vda.DNID, force bool) (*vdav1.DnReport, error) {
	ctx, cancel := context.WithTimeout(ctx, p.timeout)
	defer cancel()
	var st store.DNState
	if err := p.db.View(ctx, func(ctx context.Context, tx *store.Tx) (err error) {
		st, err = tx.DNState(ctx, id)
		return err
	}); err != nil {
		return nil, err
	}
	resp, err := p.dnClient(st.DN.AgentAddr).Syncup(ctx, connect.NewRequest(&vdav1.DnSyncupRequest{Desired: DNDesired(st), Force: force}))
	if err != nil {
		return nil, fmt.Errorf("syncup dn %s at %s: %w", st.DN.Name, st.DN.AgentAddr, err)
	}
	rep := resp.Msg.GetReport()
	return rep, p.recordDN(ctx, id, rep)
}

// PushCN sends cn id its desired state and records the report; see PushDN.
func (p *Pusher) PushCN(ctx context.Context, id vda.CNID) (*vdav1.CnReport, error) {
	return p.PushCNForce(ctx, id, false)
}

// PushCNForce is PushCN with the syncup's force flag; see PushDNForce.
func (p *Pusher) PushCNForce(ctx context.Context, id vda.CNID, force bool) (*vdav1.CnReport, error) {
	ctx, cancel := context.WithTimeout(ctx, p.timeout)
	defer cancel()
	var st store.CNState
	if err := p.db.View(ctx, func(ctx context.Context, tx *store.Tx) (err error) {
		st, err = tx.CNState(ctx, id)
		return err
	}); err != nil {
		return nil, err
	}
	resp, err := p.cnClient(st.CN.AgentAddr).Syncup(ctx, connect.NewRequest(&vdav1.CnSyncupRequest{Desired: CNDesired(st), Force: force}))
	if err != nil {
		return nil, fmt.Errorf("syncup cn %s at %s: %w", st.CN.Name, st.CN.AgentAddr, err)
	}
	rep := resp.Msg.GetReport()
	return rep, p.recordCN(ctx, id, rep)
}

// Result sums up a node's report for a monitor.
type Result struct {
	// Generation is the generation the node reconciled.
	Generation uint64
	// Error is the node-wide error; Failed counts the resources in error.
	Error  string
	Failed int
}

// OK says whether the node reported no error at all.
func (r Result) OK() bool { return r.Error == "" && r.Failed == 0 }

// Push pushes node id, a cn's if cn, and sums up its report; see PushDN.
func (p *Pusher) Push(ctx context.Context, cn bool, id string) (Result, error) {
	if cn {
		rep, err := p.PushCN(ctx, vda.CNID(id))
		if err != nil {
			return Result{}, err
		}
		return Result{rep.GetGeneration(), rep.GetError(), countFailed(rep.GetCntlrs())}, nil
	}
	rep, err := p.PushDN(ctx, vda.DNID(id))
	if err != nil {
		return Result{}, err
	}
	return Result{rep.GetGeneration(), rep.GetError(), countFailed(rep.GetPds()) + countFailed(rep.GetVds())}, nil
}

// countFailed counts the resources of a report that carry an error.
func countFailed[T interface{ GetError() string }](rs []T) int {
	n := 0
	for _, r := range rs {
		if r.GetError() != "" {
			n++
		}
	}
	return n
}

// Status asks the agent at addr (a cn's if cn) for its heartbeat. ctx
// alone bounds the call: a heartbeat must fail fast, a push may not.
func (p *Pusher) Status(ctx context.Context, cn bool, addr string) (*vdav1.AgentStatusResponse, error) {
	req := connect.NewRequest(&vdav1.AgentStatusRequest{})
	var resp *connect.Response[vdav1.AgentStatusResponse]
	var err error
	if cn {
		resp, err = p.cnClient(addr).Status(ctx, req)
	} else {
		resp, err = p.dnClient(addr).Status(ctx, req)
	}
	if err != nil {
		return nil, fmt.Errorf("status of agent at %s: %w", addr, err)
	}
	return resp.Msg, nil
}

// nodeStatus sums a report up for the node's row: OK only if nothing in
// it failed; the error names the node-wide error, or how many resources
// failed.
func (p *Pusher) nodeStatus(gen uint64, nodeErr string, failed int) store.NodeStatus {
	st := store.NodeStatus{Health: store.HealthOK, Generation: gen, AppliedGeneration: gen, ReportedAt: p.now()}
	switch {
	case nodeErr != "":
		st.Health, st.Error = store.HealthError, nodeErr
	case failed > 0:
		st.Health, st.Error = store.HealthError, fmt.Sprintf("%d resources in error", failed)
	}
	return st
}

func objStatus(msg string, at time.Time) store.ObjStatus {
	if msg != "" {
		return store.ObjStatus{Health: store.HealthError, Error: msg, ReportedAt: at}
	}
	return store.ObjStatus{Health: store.HealthOK, ReportedAt: at}
}

func (p *Pusher) recordDN(ctx context.Context, id vda.DNID, rep *vdav1.DnReport) error {
	ns := p.nodeStatus(rep.GetGeneration(), rep.GetError(), countFailed(rep.GetPds())+countFailed(rep.GetVds()))
	return p.db.Update(ctx, func(ctx context.Context, tx *store.Tx) error {
		// The node's row first: it fails if the generation moved on, and
		// then nothing of this report is written.
		if err := tx.PutDNStatus(ctx, id, ns); err != nil {
			return err
		}
		for _, x := range rep.GetPds() {
			st := store.PDStatus{Health: store.HealthOK, Error: x.GetError(), ReportedAt: ns.ReportedAt, Capacity: x.GetCapacity(), Free: x.GetFree()}
			if x.GetError() != "" {
				st.Health = store.HealthError
			}
			if err := tx.PutPDStatus(ctx, vda.PDID(x.GetId()), st); err != nil {
				return err
			}
		}
		for _, x := range rep.GetVds() {
			if err := tx.PutVDStatus(ctx, vda.VDID(x.GetId()), objStatus(x.GetError(), ns.ReportedAt)); err != nil {
				return err
			}
		}
		return nil
	})
}

func (p *Pusher) recordCN(ctx context.Context, id vda.CNID, rep *vdav1.CnReport) error {
	ns := p.nodeStatus(rep.GetGeneration(), rep.GetError(), countFailed(rep.GetCntlrs()))
	return p.db.Update(ctx, func(ctx context.Context, tx *store.Tx) error {
		if err := tx.PutCNStatus(ctx, id, ns); err != nil {
			return err
		}
		for _, x := range rep.GetCntlrs() {
			if err := tx.PutCntlrStatus(ctx, vda.CntlrID(x.GetId()), objStatus(x.GetError(), ns.ReportedAt)); err != nil {
				return err
			}
		}
		return nil
	})
}

// IsStale says whether a push failed only because something newer exists:
// the agent applied a newer generation, or the store's moved on before the
// report was recorded. Whoever made the newer change pushes it.
func IsStale(err error) bool {
	return errors.Is(err, vda.ErrStaleGeneration) || connect.CodeOf(err) == connect.CodeFailedPrecondition
}
