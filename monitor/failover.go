package monitor

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/virtual-disk-array/vda"
	"github.com/virtual-disk-array/vda/failover"
	"github.com/virtual-disk-array/vda/store"
	"github.com/virtual-disk-array/vda/syncup"
)

// fail records that node n failed and, for a cn, fails over the arrays
// whose primary lived there.
func (m *Monitor) fail(ctx context.Context, n store.MonitorNode, reason string) {
	start := time.Now()
	var fo failoverTx
	err := m.cfg.DB.Update(ctx, func(ctx context.Context, tx *store.Tx) error {
		fo = failoverTx{m: m, tx: tx, cn: n}
		return fo.run(ctx, reason)
	})
	since(m.met.storeTime.WithLabelValues("failover"), start)
	if err != nil {
		if ctx.Err() == nil {
			m.cfg.Logger.Error("failover failed; the next heartbeat tries again", "node", n.Name, "error", err)
			m.mu.Lock()
			if st := m.nodes[n.ID]; st != nil {
				// Let the detector fail it again at its next miss.
				st.det = failover.Seed(false, 0)
			}
			m.mu.Unlock()
		}
		return
	}
	if !fo.changed {
		return // another monitor failed it first, and failed it over
	}
	for _, d := range fo.decisions {
		m.met.failovers.WithLabelValues(d.result).Inc()
		m.event(ctx, n, "failed", "failover", d.reason)
		m.cfg.Logger.Warn("array failed over", "cn", n.Name, "da", d.da, "result", d.result, "reason", d.reason)
	}
	if len(fo.dns)+len(fo.cns) == 0 {
		return
	}
	// The dns first: once they apply, every vd's fence names the new
	// primary and the old one can no longer write, wherever it is. Then the
	// cns, so the new primary attaches what it may now reach.
	m.pushAll(ctx, false, fo.dns)
	m.pushAll(ctx, true, slices.DeleteFunc(fo.cns, func(id string) bool { return id == n.ID }))
}

// pushAll pushes the nodes at once and waits for them all; a node that
// fails is left to the rounds, which retry it.
func (m *Monitor) pushAll(ctx context.Context, cn bool, ids []string) {
	var wg sync.WaitGroup
	for _, id := range ids {
		wg.Go(func() {
			start := time.Now()
			res, err := m.cfg.Pusher.Push(ctx, cn, id)
			since(m.met.syncupTime.WithLabelValues(kindOf(cn)), start)
			switch {
			case err != nil && syncup.IsStale(err):
				m.met.syncups.WithLabelValues(kindOf(cn), "stale").Inc()
			case err != nil:
				m.met.syncups.WithLabelValues(kindOf(cn), "failed").Inc()
				m.cfg.Logger.Warn("failover push failed; the rounds retry it", "kind", kindOf(cn), "id", id, "error", err)
			case !res.OK():
				m.met.syncups.WithLabelValues(kindOf(cn), "error").Inc()
			default:
				m.met.syncups.WithLabelValues(kindOf(cn), "ok").Inc()
				m.mu.Lock()
				if st := m.nodes[id]; st != nil {
					st.okGen = max(st.okGen, res.Generation)
				}
				m.mu.Unlock()
			}
		})
	}
	wg.Wait()
}

// failoverTx is one attempt of the failover transaction of a failed node.
type failoverTx struct {
	m  *Monitor
	tx *store.Tx
	cn store.MonitorNode

	changed   bool     // this attempt failed the node
	dns, cns  []string // nodes whose desired state changed
	decisions []decision
}

type decision struct {
	da     vda.DAID
	result string // ok, no_primary
	reason string
}

// run marks the node failed, unless it already is (then another monitor
// did all of this), and for a cn moves the primary of every array whose
// primary lived there, in the same transaction: the new primary, the
// re-homed controllers, and the generation of every node whose desired
// state follows (the dns of the arrays' vds, whose fences move with the
// primary, and the cns of all their controllers, which re-point to it).
func (f *failoverTx) run(ctx context.Context, reason string) error {
	// First, before any read: re-homing controllers is a placement
	// (serialised with the portal's, which read the same loads), and a
	// manual change of primary takes the same lock, so neither interleaves
	// with a failover.
	if err := f.tx.LockPlacement(ctx); err != nil {
		return err
	}
	changed, err := f.tx.FailNode(ctx, f.cn.ID, reason, f.m.cfg.Now())
	if err != nil || !changed {
		return err
	}
	f.changed = true
	if !f.cn.CN {
		return nil // a dn's vds have no other copy to fail over to (RAID0)
	}
	here, err := f.tx.CntlrsOnCN(ctx, vda.CNID(f.cn.ID))
	if err != nil {
		return err
	}
	here = slices.DeleteFunc(here, func(c store.Cntlr) bool { return !c.Primary })
	if len(here) == 0 {
		return nil
	}
	cands, err := f.tx.CNCandidates(ctx)
	if err != nil {
		return err
	}
	cns := make([]failover.CN, len(cands))
	for i, c := range cands {
		cns[i] = failover.CN{ID: c.CN.ID, Location: c.CN.Location, Load: c.Load,
			Usable: !c.CN.Offline && c.Health != store.HealthFailed && string(c.CN.ID) != f.cn.ID}
	}
	dns, touched := map[string]bool{}, map[string]bool{}
	for _, p := range here {
		d, err := f.array(ctx, p.DAID, cns, dns, touched)
		if err != nil {
			return err
		}
		f.decisions = append(f.decisions, d)
	}
	for _, set := range []struct {
		ids map[string]bool
		out *[]string
	}{{dns, &f.dns}, {touched, &f.cns}} {
		for id := range set.ids {
			if err := f.tx.BumpNode(ctx, id); err != nil {
				return err
			}
			*set.out = append(*set.out, id)
		}
		slices.Sort(*set.out)
	}
	return nil
}

// array fails over one array, adding the moves to the cns' loads and the
// nodes to bump to dns and cns.
func (f *failoverTx) array(ctx context.Context, da vda.DAID, cns []failover.CN, dns, touched map[string]bool) (decision, error) {
	cs, err := f.tx.Cntlrs(ctx, da)
	if err != nil {
		return decision{}, err
	}
	in := make([]failover.Cntlr, len(cs))
	for i, c := range cs {
		in[i] = failover.Cntlr{ID: c.ID, CN: c.CNID, Index: c.Index, Primary: c.Primary}
	}
	plan, err := failover.Decide(in, cns)
	if errors.Is(err, failover.ErrNoPrimary) {
		// The array stays down until a cn comes back or is added; the vds'
		// fences stay where they are.
		return decision{da: da, result: "no_primary", reason: fmt.Sprintf("da %s: %v", da, err)}, nil
	}
	if err != nil {
		return decision{}, fmt.Errorf("fail over da %s: %w", da, err)
	}
	tdns, tcns, err := f.tx.Reshape(ctx, da, plan.Primary, plan.Moves)
	if err != nil {
		return decision{}, err
	}
	for _, id := range tdns {
		dns[id] = true
	}
	for _, id := range tcns {
		touched[id] = true
	}
	for _, to := range plan.Moves {
		for i := range cns {
			if cns[i].ID == to {
				cns[i].Load++
			}
		}
	}
	return decision{da: da, result: "ok", reason: fmt.Sprintf("da %s: %s", da, plan.Reason)}, nil
}
