package monitor

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/virtual-disk-array/vda"
	"github.com/virtual-disk-array/vda/failover"
	"github.com/virtual-disk-array/vda/store"
	"github.com/virtual-disk-array/vda/syncup"
)

// Config configures a Monitor. DB and Pusher are required; every other
// zero field is a working default.
type Config struct {
	DB     *store.DB
	Pusher *syncup.Pusher
	// Logger; nil means slog.Default().
	Logger *slog.Logger
	// Now is the clock of heartbeats and events; nil means time.Now.
	Now func() time.Time
	// Name identifies this monitor in the event log; "" means
	// "<hostname>-<pid>".
	Name string
	// Period is how often every node gets a heartbeat; 0 means 1 s.
	Period time.Duration
	// StatusTimeout bounds one heartbeat; 0 means Period.
	StatusTimeout time.Duration
	// Detector says when missed heartbeats fail a node.
	Detector failover.Config
	// Concurrency bounds the heartbeats, and separately the syncups, in
	// flight at once; 0 means 64.
	Concurrency int
	// RetryMin and RetryMax bound the backoff between syncups of a node
	// that did not converge; 0 means 250 ms and 30 s.
	RetryMin, RetryMax time.Duration
	// Registerer receives the monitor's metrics; nil registers none.
	Registerer prometheus.Registerer
	// Leases, if not nil, makes this monitor one of several sharing the
	// nodes (see LeaseConfig); Name must then be unique among them. Nil
	// means this monitor covers every node: the only one.
	Leases *LeaseConfig
}

func (c Config) withDefaults() Config {
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Name == "" {
		host, _ := os.Hostname()
		c.Name = fmt.Sprintf("%s-%d", cmp.Or(host, "monitor"), os.Getpid())
	}
	c.Period = cmp.Or(c.Period, time.Second)
	c.StatusTimeout = cmp.Or(c.StatusTimeout, c.Period)
	c.Concurrency = cmp.Or(c.Concurrency, 64)
	c.RetryMin = cmp.Or(c.RetryMin, 250*time.Millisecond)
	c.RetryMax = cmp.Or(c.RetryMax, 30*time.Second)
	return c
}

// Validate reports every problem of the configuration.
func (c Config) Validate() error {
	var errs []error
	if c.DB == nil {
		errs = append(errs, errors.New("monitor: DB is required"))
	}
	if c.Pusher == nil {
		errs = append(errs, errors.New("monitor: Pusher is required"))
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"Period", c.Period}, {"StatusTimeout", c.StatusTimeout}, {"RetryMin", c.RetryMin}, {"RetryMax", c.RetryMax}} {
		if d.v < 0 {
			errs = append(errs, fmt.Errorf("monitor: %s is negative", d.name))
		}
	}
	if c.Concurrency < 0 {
		errs = append(errs, errors.New("monitor: Concurrency is negative"))
	}
	if c.RetryMax > 0 && c.RetryMin > c.RetryMax {
		errs = append(errs, errors.New("monitor: RetryMin is above RetryMax"))
	}
	if err := c.Detector.Validate(); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("%w: %w", vda.ErrInvalidArgument, err)
	}
	return nil
}

// Monitor keeps the nodes it covers converged and alive: every Period it
// sends each a heartbeat, pushes the whole desired state to each whose
// applied generation is behind the store's or whose last syncup reported
// an error (with backoff, until it converges), and fails over the
// controllers of a cn the detector declares failed.
//
// Nothing waits for a whole round: each node's heartbeat and syncup run on
// their own, bounded by Concurrency and by their own timeouts (StatusTimeout,
// the Pusher's Timeout), so a large or slow node delays no other.
type Monitor struct {
	cfg   Config
	det   failover.Detector
	met   *metrics
	beats chan struct{} // semaphores
	syncs chan struct{}
	wg    sync.WaitGroup

	shares *shares // nil: every node is this monitor's

	mu    sync.Mutex
	nodes map[string]*node
}

// node is what a monitor keeps of one node between rounds.
type node struct {
	n       store.MonitorNode // as of the last round
	det     failover.Node
	beating bool
	pushing bool
	// answering says the last heartbeat was answered.
	answering bool
	// resync asks for a push even of the generation already applied.
	resync bool
	// okGen is the generation the last push converged, so that a round
	// that read the store before the push recorded it does not push again.
	okGen    uint64
	backoff  time.Duration
	nextPush time.Time
	// reported is the error the node last reported ("" while it
	// converges): a new one is logged at warn once, not at every retry.
	reported string
}

// New returns a monitor; Run runs it.
func New(cfg Config) (*Monitor, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	det, err := failover.NewDetector(cfg.Detector)
	if err != nil {
		return nil, err
	}
	m := &Monitor{
		cfg: cfg, det: det, met: newMetrics(cfg.Registerer),
		beats: make(chan struct{}, cfg.Concurrency), syncs: make(chan struct{}, cfg.Concurrency),
		nodes: map[string]*node{},
	}
	if cfg.Leases != nil {
		m.shares = newShares(m, *cfg.Leases)
	}
	return m, nil
}

// Run monitors until ctx ends, then waits for the calls in flight (which
// ctx cancels), gives up its leases, and returns nil.
func (m *Monitor) Run(ctx context.Context) error {
	if m.shares != nil {
		// Last, once the calls in flight ended: hand the shards over at
		// once rather than when their leases expire.
		defer m.shares.release()
	}
	defer m.wg.Wait()
	t := time.NewTicker(m.cfg.Period)
	defer t.Stop()
	for {
		m.round(ctx)
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// round starts a heartbeat of every covered node that has none in flight,
// and a syncup of every one that needs it.
func (m *Monitor) round(ctx context.Context) {
	m.met.rounds.Inc()
	ranges := []Range{{}}
	if m.shares != nil {
		ranges = m.shares.renew(ctx)
	}
	var nodes []store.MonitorNode
	if len(ranges) > 0 {
		start := time.Now()
		err := m.cfg.DB.View(ctx, func(ctx context.Context, tx *store.Tx) error {
			nodes = nodes[:0]
			for _, r := range ranges {
				ns, err := tx.MonitorNodes(ctx, r.Lo, r.Hi)
				if err != nil {
					return err
				}
				nodes = append(nodes, ns...)
			}
			return nil
		})
		since(m.met.storeTime.WithLabelValues("list_nodes"), start)
		if err != nil {
			if ctx.Err() == nil {
				m.cfg.Logger.Warn("monitor round skipped: cannot list nodes", "error", err)
			}
			return
		}
	}
	now := m.cfg.Now()
	m.mu.Lock()
	defer m.mu.Unlock()
	seen := make(map[string]bool, len(nodes))
	for _, n := range nodes {
		seen[n.ID] = true
		st := m.nodes[n.ID]
		if st == nil {
			st = &node{det: failover.Seed(n.Status.Health == store.HealthFailed, n.Status.AppliedGeneration)}
			m.nodes[n.ID] = st
		}
		st.n = n
		if !st.beating {
			st.beating = true
			m.spawn(ctx, m.beats, func() { m.heartbeat(ctx, st) })
		}
		if !st.pushing && m.needsPush(st, now) {
			st.pushing = true
			m.spawn(ctx, m.syncs, func() { m.push(ctx, st) })
		}
	}
	for id := range m.nodes {
		if !seen[id] {
			delete(m.nodes, id) // deleted, or another monitor's now
		}
	}
	m.met.nodes.Reset()
	for _, st := range m.nodes {
		m.met.nodes.WithLabelValues(kindOf(st.n.CN), string(st.det.State)).Inc()
	}
}

// Covered lists, sorted, the ids of the nodes this monitor covers now:
// the nodes of its last round, less those whose shard's lease it no longer
// holds.
func (m *Monitor) Covered() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.cfg.Now()
	var out []string
	for id, st := range m.nodes {
		if m.shares == nil || m.shares.covers(st.n.HashCode, now) {
			out = append(out, id)
		}
	}
	slices.Sort(out)
	return out
}

// Shards is how many shards of the node hash space this monitor holds
// leases on now: store.LeaseShards for a monitor without leases.
func (m *Monitor) Shards() int {
	if m.shares == nil {
		return store.LeaseShards
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.cfg.Now()
	n := 0
	for _, until := range m.shares.held {
		if until.Add(-m.shares.cfg.Skew).After(now) {
			n++
		}
	}
	return n
}

// spawn runs f on its own goroutine once sem has room.
func (m *Monitor) spawn(ctx context.Context, sem chan struct{}, f func()) {
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
		}
		defer func() {
			select {
			case <-sem:
			default:
			}
		}()
		f()
	}()
}

// needsPush says whether node st must get its desired state now; m.mu is
// held.
func (m *Monitor) needsPush(st *node, now time.Time) bool {
	n := st.n
	switch {
	case st.det.State == failover.Failed && !st.answering:
		// Dead: its heartbeats say when it is back.
		return false
	case now.Before(st.nextPush):
		return false
	case st.resync:
		return true
	case st.okGen >= n.Generation:
		return false
	}
	s := n.Status
	return s.Health != store.HealthOK || s.Generation < n.Generation || s.AppliedGeneration < n.Generation
}

// heartbeat asks one node for its status and folds the answer into its
// detector state, acting on what changed.
func (m *Monitor) heartbeat(ctx context.Context, st *node) {
	defer func() {
		m.mu.Lock()
		st.beating = false
		m.mu.Unlock()
	}()
	if ctx.Err() != nil {
		return
	}
	m.mu.Lock()
	n := st.n
	m.mu.Unlock()
	cctx, cancel := context.WithTimeout(ctx, m.cfg.StatusTimeout)
	resp, err := m.cfg.Pusher.Status(cctx, n.CN, n.AgentAddr)
	cancel()
	if ctx.Err() != nil {
		return // shutting down: no verdict
	}
	b := failover.Beat{At: m.cfg.Now(), Generation: n.Generation}
	switch {
	case err != nil:
		b.Why = err.Error()
	case !resp.GetSpdkReachable():
		b.Why = "spdk unreachable: " + resp.GetSpdkError()
	default:
		b.Answered, b.Applied, b.Missing = true, resp.GetAppliedGeneration(), resp.GetResyncNeeded()
	}
	m.met.heartbeats.WithLabelValues(kindOf(n.CN), map[bool]string{true: "ok", false: "miss"}[b.Answered]).Inc()

	m.mu.Lock()
	v := m.det.Observe(&st.det, b)
	st.answering = b.Answered
	if v.Resync {
		st.resync, st.nextPush, st.okGen = true, time.Time{}, 0
	}
	m.mu.Unlock()

	if v.Resync {
		m.event(ctx, n, string(v.From), "resync", resyncWhy(b))
	}
	if !v.Changed() {
		return
	}
	log := m.cfg.Logger.With("node", n.Name, "kind", kindOf(n.CN))
	if v.To == failover.Failed {
		log.Warn("node failed", "reason", v.Reason)
	} else {
		log.Info("node state changed", "from", v.From, "to", v.To, "reason", v.Reason)
	}
	if v.From != failover.Unknown || v.To != failover.Alive {
		// Every node a monitor starts with goes unknown → alive: not news.
		m.event(ctx, n, string(v.From), string(v.To), v.Reason)
	}
	if v.To == failover.Failed {
		m.fail(ctx, n, v.Reason)
	}
}

func resyncWhy(b failover.Beat) string {
	if b.Missing {
		return "the agent's SPDK was reconnected: objects may be gone"
	}
	return fmt.Sprintf("the agent reports generation %d applied, less than before: it restarted", b.Applied)
}

// event appends to a node's event log; a store error is logged, not
// fatal: the log is for people.
func (m *Monitor) event(ctx context.Context, n store.MonitorNode, from, to, reason string) {
	start := time.Now()
	err := m.cfg.DB.Update(ctx, func(ctx context.Context, tx *store.Tx) error {
		return tx.AddNodeEvent(ctx, store.NodeEvent{NodeID: n.ID, At: m.cfg.Now(), From: from, To: to, Reason: reason, Monitor: m.cfg.Name})
	})
	since(m.met.storeTime.WithLabelValues("add_event"), start)
	if err != nil && ctx.Err() == nil {
		m.cfg.Logger.Warn("cannot record node event", "node", n.Name, "to", to, "error", err)
	}
}

// push sends one node its desired state and schedules the next attempt.
func (m *Monitor) push(ctx context.Context, st *node) {
	m.mu.Lock()
	n := st.n
	m.mu.Unlock()
	start := time.Now()
	res, err := m.cfg.Pusher.Push(ctx, n.CN, n.ID)
	since(m.met.syncupTime.WithLabelValues(kindOf(n.CN)), start)
	result := "ok"
	switch {
	case err != nil && syncup.IsStale(err):
		result = "stale"
	case err != nil:
		result = "failed"
	case !res.OK():
		result = "error"
	}
	m.met.syncups.WithLabelValues(kindOf(n.CN), result).Inc()

	m.mu.Lock()
	defer m.mu.Unlock()
	st.pushing = false
	switch result {
	case "ok":
		st.okGen, st.resync, st.backoff, st.nextPush = res.Generation, false, 0, time.Time{}
		if st.reported != "" {
			m.cfg.Logger.Info("node converged again", "node", n.Name, "generation", res.Generation)
			st.reported = ""
		}
	case "stale":
		// Something newer exists; the next round reads it.
		st.resync, st.nextPush = false, time.Time{}
	default:
		if ctx.Err() != nil {
			return
		}
		st.backoff = min(max(2*st.backoff, m.cfg.RetryMin), m.cfg.RetryMax)
		// Jitter spreads the retries of nodes that failed together.
		wait := st.backoff/2 + rand.N(st.backoff/2+1)
		st.nextPush = m.cfg.Now().Add(wait)
		m.cfg.Logger.Debug("syncup did not converge; retrying", "node", n.Name, "in", wait, "error", err, "node_error", res.Error, "failed", res.Failed)
		// What the node itself reports (a refused desired state, pds or
		// resources in error) is for the operator: once per change.
		if result == "error" {
			if what := fmt.Sprintf("%s (%d resources in error)", res.Error, res.Failed); what != st.reported {
				st.reported = what
				m.cfg.Logger.Warn("node reports errors; retrying with backoff", "node", n.Name, "generation", res.Generation,
					"node_error", res.Error, "failed", res.Failed)
			}
		}
	}
}
