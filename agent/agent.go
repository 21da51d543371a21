package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/virtual-disk-array/vda"
	"github.com/virtual-disk-array/vda/spdk"
)

// Config configures an agent. The zero value of every field but SPDK is a
// working default.
type Config struct {
	// SPDK is the agent's SPDK application: an *spdk.Conn on its socket,
	// or the embedded data plane.
	SPDK spdk.Caller
	// Logger; nil means slog.Default().
	Logger *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// CallTimeout bounds each SPDK call; 0 means 30 s.
	CallTimeout time.Duration
	// MaxPasses bounds the observe-plan-execute passes of one reconcile;
	// 0 means 4, which a node converging normally never reaches (it takes
	// two passes, three when it creates a pd's bdev).
	MaxPasses int
	// Nvme sets the reconnect options of the NVMe-oF controllers a cn
	// attaches.
	Nvme NvmeOptions
	// RelistAfter bounds how long reconciles may rely on what the agent
	// remembers of SPDK. Between full listings a reconcile asks SPDK only
	// about the objects of resources whose desired state changed; a change
	// made behind the agent's back (an operator's rpc.py, a lost path) is
	// found by the next full listing, by a syncup of the generation already
	// applied (the monitor's repair), or when the SPDK socket is dialled
	// again. 0 means 5 minutes; negative means every reconcile lists
	// everything.
	RelistAfter time.Duration
	// DeleteGuard refuses a desired state that would delete too much of
	// the node at once, unless the syncup is forced; its zero value is the
	// default guard (DefaultDeleteShare, DefaultDeleteFloor).
	DeleteGuard DeleteGuard
}

func (c Config) withDefaults() Config {
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.CallTimeout == 0 {
		c.CallTimeout = 30 * time.Second
	}
	if c.MaxPasses == 0 {
		c.MaxPasses = 4
	}
	if c.RelistAfter == 0 {
		c.RelistAfter = 5 * time.Minute
	}
	c.DeleteGuard = c.DeleteGuard.withDefaults()
	return c
}

// Validate reports every problem of the configuration.
func (c Config) Validate() error {
	var errs []error
	if c.SPDK == nil {
		errs = append(errs, errors.New("agent: SPDK is nil"))
	}
	if c.CallTimeout < 0 {
		errs = append(errs, errors.New("agent: CallTimeout is negative"))
	}
	if c.MaxPasses < 0 {
		errs = append(errs, errors.New("agent: MaxPasses is negative"))
	}
	errs = append(errs, c.DeleteGuard.validate()...)
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("%w: %w", vda.ErrInvalidArgument, err)
	}
	return nil
}

// Report is the outcome of a reconcile: the generation it applied and the
// status of every resource of the desired state. A dn fills PDs and VDs, a
// cn Cntlrs.
type Report struct {
	Generation uint64
	// Error belongs to the node as a whole: SPDK unreachable, the
	// transport, a leftover that could not be removed.
	Error  string
	PDs    []PDReport
	VDs    []ResourceReport
	Cntlrs []ResourceReport
}

// ResourceReport is one resource's status: Error is empty when its SPDK
// objects are as desired.
type ResourceReport struct {
	ID    string
	Error string
}

// PDReport is a pd's status with its lvstore's capacity.
type PDReport struct {
	ID       vda.PDID
	Error    string
	Capacity uint64
	Free     uint64
}

// OK says whether the report carries no error at all.
func (r Report) OK() bool {
	if r.Error != "" {
		return false
	}
	for _, p := range r.PDs {
		if p.Error != "" {
			return false
		}
	}
	for _, s := range [][]ResourceReport{r.VDs, r.Cntlrs} {
		for _, x := range s {
			if x.Error != "" {
				return false
			}
		}
	}
	return true
}

// core is what both kinds of agent share: the SPDK client, the observer
// and the reconcile passes.
type core struct {
	cfg     Config
	c       *spdk.Client
	obs     *observer
	log     *slog.Logger
	started time.Time
	// mem is touched only by reconciles, which the loop runs one at a time.
	mem memory
	// alwaysScope makes every scope worth observing, so that tests of
	// small nodes exercise scoped reconciles.
	alwaysScope bool
	// reconciledEpoch is the SPDK connection's epoch when the last
	// reconcile began, for Status to tell that SPDK may have restarted.
	reconciledEpoch atomic.Uint64
}

// memory is what a reconcile leaves the next one to scope its observation
// with. Its zero value (nothing remembered) makes the next reconcile list
// everything.
type memory struct {
	// desired is the DN or CN reconciled, act what SPDK held after it.
	desired any
	act     *Actual
	// pending names the objects steps changed after act was observed.
	pending *scope
	gen     uint64
	// epoch is the SPDK connection's when act was observed; listed when
	// the last full listing was made.
	epoch  uint64
	listed time.Time
}

// epoch is the SPDK connection's epoch, 0 for a Caller that has none.
func (c *core) epoch() uint64 {
	if e, ok := c.cfg.SPDK.(spdk.Epocher); ok {
		return e.Epoch()
	}
	return 0
}

// scoped says whether a reconcile of gen may observe only sc, the objects
// of the resources that changed, and returns sc with the objects the last
// reconcile changed unobserved; nil means list everything.
func (c *core) scoped(sc *scope, gen uint64) *scope {
	m := c.mem
	switch {
	case sc == nil || m.act == nil:
		return nil
	case gen == m.gen:
		// The same generation again is a request to repair the node.
		return nil
	case c.epoch() != m.epoch:
		return nil
	case c.cfg.RelistAfter < 0 || c.cfg.Now().Sub(m.listed) >= c.cfg.RelistAfter:
		return nil
	}
	sc.merge(m.pending)
	if !c.alwaysScope && !sc.worth(m.act) {
		return nil
	}
	return sc
}

// remember keeps what a reconcile of desired at gen observed, if the node
// converged; a node that did not is listed in full next time.
func (c *core) remember(o outcome, desired any, gen, epoch uint64) {
	c.reconciledEpoch.Store(epoch)
	listed := c.mem.listed
	c.mem = memory{}
	if o.refused != nil || o.err != nil || len(o.failed) > 0 || len(o.remaining) > 0 || o.lost || o.act == nil {
		return
	}
	for _, ps := range o.plan.Problems {
		if len(ps) > 0 {
			return
		}
	}
	if o.listed {
		listed = o.at
	}
	c.mem = memory{desired: desired, act: o.act, pending: o.pending, gen: gen, epoch: epoch, listed: listed}
}

func newCore(cfg Config, cn bool) (*core, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	c := spdk.New(cfg.SPDK)
	return &core{cfg: cfg, c: c, obs: &observer{c: c, cn: cn, ana: map[string]string{}}, log: cfg.Logger, started: cfg.Now()}, nil
}

// outcome is what the passes of one reconcile leave: the last observation
// and plan, the first error of each failed resource, and the steps still
// to do if the passes ran out.
type outcome struct {
	act       *Actual
	plan      Plan
	failed    map[Ref]error
	remaining []Step
	err       error // observing SPDK failed
	calls     int
	// listed says that a full listing was made, at at; scoped counts the
	// passes that observed only a scope.
	listed bool
	at     time.Time
	scoped int
	// pending names the objects the last pass changed without observing
	// them afterwards; lost says that a step changed objects beyond any
	// scope.
	pending *scope
	lost    bool
	// refused is the guard's refusal: nothing was executed.
	refused *GuardError
}

// converge runs observe-plan-execute passes until a pass plans nothing
// left to do (every step of a failed resource is dropped), or the passes
// run out. With a scope (see core.scoped) each pass observes only the
// scope and what earlier passes changed, on top of the agent's memory;
// without one, or when SPDK turns out to have restarted, it lists
// everything. guard judges the first observation before anything is
// executed: a refusal ends the reconcile with nothing changed.
func (c *core) converge(ctx context.Context, sc *scope, plan func(*Actual, *scope) Plan, look func(Step) bool, guard func(*Actual) *GuardError) outcome {
	out := outcome{failed: map[Ref]error{}}
	base := c.mem.act
	c.mem = memory{desired: nil, listed: c.mem.listed} // until this reconcile succeeds
	for pass := 1; ; pass++ {
		var act *Actual
		var err error
		if sc != nil {
			act, err = c.obs.observeScope(ctx, base, sc)
			out.scoped++
			if errors.Is(err, errRestarted) {
				c.log.Warn("spdk lost objects it held: listing everything", "error", err)
				sc, err = nil, nil
			}
		}
		if sc == nil && err == nil {
			out.at = c.cfg.Now()
			act, err = c.obs.observe(ctx)
			out.listed = true
		}
		if err != nil {
			out.err = fmt.Errorf("observe SPDK: %w", err)
			return out
		}
		if pass == 1 {
			// Later passes only finish what the first one judged (an
			// lvstore emptied by its vds' deletes goes in the second).
			if out.refused = guard(act); out.refused != nil {
				out.act = act
				return out
			}
		}
		out.act, out.plan = act, plan(act, sc)
		steps := runnable(out.plan.Steps, out.failed)
		if len(steps) == 0 {
			return out
		}
		if pass > c.cfg.MaxPasses {
			out.remaining = steps
			return out
		}
		failures := len(out.failed)
		calls, touched, inScope := c.execute(ctx, steps, out.failed)
		out.calls += calls
		if len(out.failed) == failures && len(out.plan.Problems) == 0 && !slices.ContainsFunc(steps, look) {
			// Every step did what SPDK documents it to do, on a state just
			// observed: the result is the plan's, and observing again to
			// confirm it would double the cost of a syncup. The next
			// reconcile observes what these steps changed.
			out.plan = Plan{Problems: map[Ref][]string{}}
			out.pending, out.lost = touched, !inScope
			return out
		}
		base = act
		if sc != nil && inScope {
			sc.merge(touched)
		} else {
			sc = nil
		}
	}
}

// cnLook says whether a cn must observe again after a step succeeded to
// know its outcome: examine decides whether a new bdev carries an lvstore.
func cnLook(s Step) bool { return s.Op.Method == "bdev_wait_for_examine" }

// dnLook says the same for a dn, which also reports its pds' capacity:
// any change of lvstores or lvols changes it.
func dnLook(s Step) bool {
	return cnLook(s) || strings.HasPrefix(s.Op.Method, "bdev_lvol_")
}

// runnable drops the steps of failed resources and of those that need one.
func runnable(steps []Step, failed map[Ref]error) []Step {
	var out []Step
	for _, s := range steps {
		if failed[s.For] == nil && (s.Needs == (Ref{}) || failed[s.Needs] == nil) {
			out = append(out, s)
		}
	}
	return out
}

// execute runs steps in order. The first failure of a resource skips its
// remaining steps and those that need it. It returns the calls made and
// the scope of the objects they changed; inScope false means some changed
// more than a scope can name.
func (c *core) execute(ctx context.Context, steps []Step, failed map[Ref]error) (calls int, touched *scope, inScope bool) {
	touched, inScope = newScope(), true
	for _, s := range steps {
		if failed[s.For] != nil {
			continue
		}
		if s.Needs != (Ref{}) && failed[s.Needs] != nil {
			failed[s.For] = fmt.Errorf("%s: %w", s.Needs, failed[s.Needs])
			continue
		}
		cctx, cancel := context.WithTimeout(ctx, c.cfg.CallTimeout)
		err := c.c.Do(cctx, s.Op)
		cancel()
		calls++
		inScope = touched.addOp(s.Op) && inScope
		c.obs.learn(s.Op, err)
		if err != nil {
			c.log.Warn("reconcile step failed", "resource", s.For.String(), "method", s.Op.Method, "error", err)
			failed[s.For] = fmt.Errorf("%s: %w", s.Op.Method, err)
			continue
		}
		c.log.Debug("reconcile step", "resource", s.For.String(), "op", s.Op.String())
	}
	return calls, touched, inScope
}

// status is the error text of one resource after a reconcile.
func (o outcome) status(r Ref, parent Ref) string {
	var msgs []string
	if o.err != nil {
		return o.err.Error()
	}
	if err := o.failed[r]; err != nil {
		msgs = append(msgs, err.Error())
	} else if parent != (Ref{}) && o.failed[parent] != nil {
		msgs = append(msgs, fmt.Sprintf("%s: %v", parent, o.failed[parent]))
	}
	if parent != (Ref{}) {
		for _, p := range o.plan.Problems[parent] {
			msgs = append(msgs, fmt.Sprintf("%s: %s", parent, p))
		}
	}
	msgs = append(msgs, o.plan.Problems[r]...)
	for _, s := range o.remaining {
		if s.For == r {
			msgs = append(msgs, "not converged, next step: "+s.Op.String())
			break
		}
	}
	return strings.Join(msgs, "; ")
}

// nodeStatus is the node-wide error text: its own objects and leftovers.
func (o outcome) nodeStatus() string {
	if o.refused != nil {
		return o.refused.Error()
	}
	if o.err != nil {
		return o.err.Error()
	}
	var msgs []string
	for _, r := range []Ref{nodeRef, cleanupRef} {
		if m := o.status(r, Ref{}); m != "" {
			msgs = append(msgs, m)
		}
	}
	return strings.Join(msgs, "; ")
}

// DNAgent reconciles a disk node's SPDK application.
type DNAgent struct {
	*core
	loop *loop[request[DN], Report]
}

// NewDN returns a dn agent; Run must run for Syncup to be answered.
func NewDN(cfg Config) (*DNAgent, error) {
	c, err := newCore(cfg, false)
	if err != nil {
		return nil, err
	}
	a := &DNAgent{core: c}
	a.loop = newLoop(func(r request[DN]) uint64 { return r.d.Generation }, a.reconcile)
	a.loop.merge = mergeRequests[DN]
	return a, nil
}

// Run reconciles until ctx ends.
func (a *DNAgent) Run(ctx context.Context) error { return a.loop.run(ctx) }

// Syncup reconciles SPDK to d and reports the status of every resource.
// It fails with vda.ErrStaleGeneration if a newer generation was applied
// or is queued, and vda.ErrUnavailable once the agent stops.
//
// A d that Config.DeleteGuard refuses changes nothing in SPDK and is not
// applied (AppliedGeneration stays, the same generation is judged again
// when sent again): Syncup then returns both a report whose node Error
// says why (the text of the error, for the control plane to record) and a
// *GuardError, which matches ErrMassDelete.
func (a *DNAgent) Syncup(ctx context.Context, d DN) (Report, error) {
	return a.loop.submit(ctx, request[DN]{d: d})
}

// SyncupForce is Syncup with the guard off for this one desired state:
// what only an admin's explicit call may ask. A forced state coalesced
// with an unforced one of the same generation stays forced; a newer
// generation is judged on its own.
func (a *DNAgent) SyncupForce(ctx context.Context, d DN) (Report, error) {
	return a.loop.submit(ctx, request[DN]{d: d, force: true})
}

// AppliedGeneration is the highest generation this agent has reconciled.
func (a *DNAgent) AppliedGeneration() uint64 { return a.loop.appliedGeneration() }

func (a *DNAgent) reconcile(ctx context.Context, r request[DN]) (Report, error) {
	d := r.d
	start, epoch := a.cfg.Now(), a.epoch()
	var sc *scope
	if prev, ok := a.mem.desired.(DN); ok {
		sc = a.scoped(dnScope(prev, d), d.Generation)
	}
	guard := func(act *Actual) *GuardError { return a.judge(dnDeletes(d, act), "dn", d.Generation, r.force) }
	o := a.converge(ctx, sc, func(act *Actual, sc *scope) Plan { return planDN(d, act, sc) }, dnLook, guard)
	a.remember(o, d.clone(), d.Generation, epoch)
	rep := Report{Generation: d.Generation, Error: o.nodeStatus()}
	if o.refused != nil {
		return rep, o.refused
	}
	for _, pd := range d.PDs {
		r := Ref{RefPD, string(pd.ID)}
		pr := PDReport{ID: pd.ID, Error: o.status(r, Ref{})}
		if o.act != nil {
			if lvs, ok := o.act.Lvstores[vda.LvstoreName(pd.ID)]; ok {
				pr.Capacity, pr.Free = lvs.TotalDataClusters*lvs.ClusterSize, lvs.FreeBytes()
			} else if pr.Error == "" {
				pr.Error = "lvstore " + vda.LvstoreName(pd.ID) + " is missing"
			}
		}
		rep.PDs = append(rep.PDs, pr)
		for _, vd := range pd.VDs {
			rep.VDs = append(rep.VDs, ResourceReport{ID: string(vd.ID), Error: o.status(Ref{RefVD, string(vd.ID)}, r)})
		}
	}
	a.log.Info("dn reconciled", "generation", d.Generation, "ok", rep.OK(), "changes", o.calls, "listed", o.listed, "scoped", o.scoped, "took", a.cfg.Now().Sub(start))
	return rep, nil
}

// CNAgent reconciles a controller node's SPDK application.
type CNAgent struct {
	*core
	loop *loop[request[CN], Report]
}

// NewCN returns a cn agent; Run must run for Syncup to be answered.
func NewCN(cfg Config) (*CNAgent, error) {
	c, err := newCore(cfg, true)
	if err != nil {
		return nil, err
	}
	a := &CNAgent{core: c}
	a.loop = newLoop(func(r request[CN]) uint64 { return r.d.Generation }, a.reconcile)
	a.loop.merge = mergeRequests[CN]
	return a, nil
}

// Run reconciles until ctx ends.
func (a *CNAgent) Run(ctx context.Context) error { return a.loop.run(ctx) }

// Syncup reconciles SPDK to d; see DNAgent.Syncup.
func (a *CNAgent) Syncup(ctx context.Context, d CN) (Report, error) {
	return a.loop.submit(ctx, request[CN]{d: d})
}

// SyncupForce is Syncup with the guard off; see DNAgent.SyncupForce.
func (a *CNAgent) SyncupForce(ctx context.Context, d CN) (Report, error) {
	return a.loop.submit(ctx, request[CN]{d: d, force: true})
}

// AppliedGeneration is the highest generation this agent has reconciled.
func (a *CNAgent) AppliedGeneration() uint64 { return a.loop.appliedGeneration() }

func (a *CNAgent) reconcile(ctx context.Context, r request[CN]) (Report, error) {
	d := r.d
	start, epoch := a.cfg.Now(), a.epoch()
	var sc *scope
	if prev, ok := a.mem.desired.(CN); ok {
		sc = a.scoped(cnScope(prev, d), d.Generation)
	}
	guard := func(act *Actual) *GuardError { return a.judge(cnDeletes(d, act), "cn", d.Generation, r.force) }
	o := a.converge(ctx, sc, func(act *Actual, sc *scope) Plan { return planCN(d, act, a.cfg.Nvme, sc) }, cnLook, guard)
	a.remember(o, d.clone(), d.Generation, epoch)
	rep := Report{Generation: d.Generation, Error: o.nodeStatus()}
	if o.refused != nil {
		return rep, o.refused
	}
	for _, ct := range d.Cntlrs {
		rep.Cntlrs = append(rep.Cntlrs, ResourceReport{ID: string(ct.ID), Error: o.status(Ref{RefCntlr, string(ct.ID)}, Ref{})})
	}
	a.log.Info("cn reconciled", "generation", d.Generation, "ok", rep.OK(), "changes", o.calls, "listed", o.listed, "scoped", o.scoped, "took", a.cfg.Now().Sub(start))
	return rep, nil
}

// request is one desired state handed to the loop, with the syncup's
// force flag.
type request[D any] struct {
	d     D
	force bool
}

// mergeRequests coalesces next into a waiting prev of the same generation:
// the same state, forced if either was.
func mergeRequests[D any](prev, next request[D]) request[D] {
	next.force = next.force || prev.force
	return next
}

// judge applies the delete guard to what a desired state of generation
// gen would delete, logging a refusal, or a forced syncup that deletes.
func (c *core) judge(d *deletes, node string, gen uint64, force bool) *GuardError {
	g := c.cfg.DeleteGuard
	if err := d.check(g, node, gen, force); err != nil {
		c.log.Error("desired state refused: it deletes too much at once", "generation", gen,
			"deletes", err.Deletes, "owned", err.Owned, "share", g.Share, "floor", g.Floor, "dropped", err.Dropped)
		return err
	}
	if force && len(d.dropped) > 0 {
		c.log.Warn(fmt.Sprintf("forced syncup deletes %d of %d", len(d.dropped), len(d.owned)), "generation", gen,
			"deletes", len(d.dropped), "owned", len(d.owned), "within_guard", g.allows(len(d.dropped), len(d.owned)))
	}
	return nil
}
