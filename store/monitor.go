package store

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/uptrace/bun"
	"github.com/virtual-disk-array/vda"
)

// MonitorNode is what a monitor needs of one node each round: where its
// agent is, its generation, and what was last recorded of it.
type MonitorNode struct {
	ID        string
	CN        bool // a controller node; else a disk node
	Name      string
	AgentAddr string
	HashCode  uint32
	// Generation is the node's desired-state generation.
	Generation uint64
	// Status is the last recorded status (zero Health: none yet).
	Status NodeStatus
}

// MonitorNodes lists the nodes whose hash code is in [lo, hi), with their
// status, in one query. hi == 0 means no upper bound.
func (tx *Tx) MonitorNodes(ctx context.Context, lo, hi uint64) ([]MonitorNode, error) {
	var rows []struct {
		nodeRow
		Health     *string `bun:"health"`
		Error      *string `bun:"error"`
		SGen       *uint64 `bun:"s_generation"`
		Applied    *uint64 `bun:"applied_generation"`
		ReportedAt *int64  `bun:"reported_at"`
	}
	q := tx.tx.NewSelect().TableExpr("node").ColumnExpr("node.*").
		ColumnExpr("ns.health, ns.error, ns.generation AS s_generation, ns.applied_generation, ns.reported_at").
		Join("LEFT JOIN node_status AS ns ON ns.node_id = node.id").
		Where("node.hash_code >= ?", lo)
	if hi > 0 {
		q = q.Where("node.hash_code < ?", hi)
	}
	if err := q.OrderExpr("node.id").Scan(ctx, &rows); err != nil {
		return nil, fmt.Errorf("list nodes to monitor: %w", err)
	}
	out := make([]MonitorNode, len(rows))
	for i, r := range rows {
		n := MonitorNode{ID: r.ID, CN: r.Kind == kindCN, Name: r.Name, AgentAddr: r.AgentAddr, HashCode: r.HashCode, Generation: r.Generation}
		if r.Health != nil {
			n.Status = NodeStatus{Health: Health(*r.Health), Error: deref(r.Error), Generation: deref(r.SGen),
				AppliedGeneration: deref(r.Applied), ReportedAt: fromMillis(deref(r.ReportedAt))}
		}
		out[i] = n
	}
	return out, nil
}

func deref[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}

// FailNode records that the monitor declared node id failed, unless it
// already is: it says whether this call made the change, so that of
// several monitors racing on one node exactly one carries out its
// failover. The status keeps its generations; only a report of the node's
// current generation (a node that answers again and applied what the store
// now says) makes it healthy again.
func (tx *Tx) FailNode(ctx context.Context, id, reason string, at time.Time) (bool, error) {
	res, err := tx.tx.NewUpdate().Table("node_status").
		Set("health = ?", HealthFailed).
		Set("error = ?", reason).
		Set("reported_at = ?", millis(at)).
		Where("node_id = ?", id).
		Where("health <> ?", HealthFailed).
		Exec(ctx)
	if err != nil {
		return false, classify(fmt.Errorf("fail node %s: %w", id, err))
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("fail node %s: %w", id, err)
	}
	if n == 0 {
		if _, err := tx.nodeStatus(ctx, id); err != nil {
			return false, err
		}
	}
	return n > 0, nil
}

// NodeEvent is one change of a node's state as a monitor saw it.
type NodeEvent struct {
	NodeID string
	At     time.Time
	// From and To are the detector's states (alive, suspect, failed), or
	// an action the monitor took ("failover", "resync").
	From, To string
	Reason   string
	// Monitor names the monitor that saw it.
	Monitor string
}

type nodeEventRow struct {
	bun.BaseModel `bun:"table:node_event,alias:ne"`

	ID      string `bun:"id,pk"`
	NodeID  string `bun:"node_id"`
	At      int64  `bun:"at"`
	From    string `bun:"from_state"`
	To      string `bun:"to_state"`
	Reason  string `bun:"reason"`
	Monitor string `bun:"monitor"`
}

// maxEventReason bounds a stored reason; longer ones are cut.
const maxEventReason = 1024

// AddNodeEvent appends an event to its node's log.
func (tx *Tx) AddNodeEvent(ctx context.Context, e NodeEvent) error {
	reason := e.Reason
	if len(reason) > maxEventReason {
		reason = strings.ToValidUTF8(reason[:maxEventReason], "")
	}
	r := &nodeEventRow{ID: newID(), NodeID: e.NodeID, At: millis(e.At), From: e.From, To: e.To, Reason: reason, Monitor: e.Monitor}
	if _, err := tx.tx.NewInsert().Model(r).Exec(ctx); err != nil {
		return classify(fmt.Errorf("add event of node %s: %w", e.NodeID, err))
	}
	return nil
}

// NodeEvents returns the newest limit events of node id, newest first
// (limit <= 0: 100).
func (tx *Tx) NodeEvents(ctx context.Context, id string, limit int) ([]NodeEvent, error) {
	if limit <= 0 {
		limit = 100
	}
	var rows []nodeEventRow
	if err := tx.tx.NewSelect().Model(&rows).Where("node_id = ?", id).
		OrderExpr("at DESC, id DESC").Limit(int64(limit)).Scan(ctx); err != nil {
		return nil, fmt.Errorf("list events of node %s: %w", id, err)
	}
	out := make([]NodeEvent, len(rows))
	for i, r := range rows {
		out[i] = NodeEvent{NodeID: r.NodeID, At: fromMillis(r.At), From: r.From, To: r.To, Reason: r.Reason, Monitor: r.Monitor}
	}
	return out, nil
}

// SetPrimary makes cntlr the only primary of array da.
func (tx *Tx) SetPrimary(ctx context.Context, da vda.DAID, cntlr vda.CntlrID) error {
	res, err := tx.tx.NewUpdate().Table("cntlr").
		Set("is_primary = (id = ?)", cntlr).
		Where("da_id = ?", da).
		Exec(ctx)
	if err != nil {
		return classify(fmt.Errorf("set primary of da %s: %w", da, err))
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("set primary of da %s: %w", da, vda.ErrNotFound)
	}
	return nil
}

// MoveCntlr re-homes a controller onto cn.
func (tx *Tx) MoveCntlr(ctx context.Context, id vda.CntlrID, cn vda.CNID) error {
	res, err := tx.tx.NewUpdate().Table("cntlr").Set("cn_id = ?", cn).Where("id = ?", id).Exec(ctx)
	if err != nil {
		return classify(fmt.Errorf("move cntlr %s to cn %s: %w", id, cn, err))
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("move cntlr %s: %w", id, vda.ErrNotFound)
	}
	return nil
}

// Reshape makes cntlr the primary of array da, re-homes the controllers
// in moves, and bumps da's generation. It returns the nodes whose desired
// state changed: the dns of da's vds (each vd's fence follows the
// primary) and the cns of its controllers, before and after the moves.
// The caller bumps their generations, once each however many arrays it
// reshapes, and pushes the dns before the cns, so that the old primary is
// fenced off before the new one attaches.
func (tx *Tx) Reshape(ctx context.Context, da vda.DAID, cntlr vda.CntlrID, moves map[vda.CntlrID]vda.CNID) (dns, cns []string, err error) {
	cs, err := tx.Cntlrs(ctx, da)
	if err != nil {
		return nil, nil, err
	}
	found := false
	for _, c := range cs {
		cns = append(cns, string(c.CNID))
		found = found || c.ID == cntlr
	}
	if !found {
		return nil, nil, fmt.Errorf("cntlr %s of da %s: %w", cntlr, da, vda.ErrNotFound)
	}
	if err := tx.SetPrimary(ctx, da, cntlr); err != nil {
		return nil, nil, err
	}
	for id, to := range moves {
		if err := tx.MoveCntlr(ctx, id, to); err != nil {
			return nil, nil, err
		}
		cns = append(cns, string(to))
	}
	if err := tx.BumpDA(ctx, da); err != nil {
		return nil, nil, err
	}
	vds, err := tx.VDs(ctx, da)
	if err != nil {
		return nil, nil, err
	}
	for _, vd := range vds {
		dns = append(dns, string(vd.DNID))
	}
	slices.Sort(dns)
	slices.Sort(cns)
	return slices.Compact(dns), slices.Compact(cns), nil
}

// BumpNode increments a node's generation, whatever it is: a failover
// changes what nodes hold without having read them.
func (tx *Tx) BumpNode(ctx context.Context, id string) error {
	res, err := tx.tx.NewUpdate().Table("node").Set("generation = generation + 1").Where("id = ?", id).Exec(ctx)
	if err != nil {
		return classify(fmt.Errorf("bump node %s: %w", id, err))
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("bump node %s: %w", id, vda.ErrNotFound)
	}
	return nil
}

// BumpDA increments an array's generation, so that a client holding the
// old one sees its controllers changed.
func (tx *Tx) BumpDA(ctx context.Context, id vda.DAID) error {
	res, err := tx.tx.NewUpdate().Table("da").Set("generation = generation + 1").Where("id = ?", id).Exec(ctx)
	if err != nil {
		return classify(fmt.Errorf("bump da %s: %w", id, err))
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("bump da %s: %w", id, vda.ErrNotFound)
	}
	return nil
}

// migrateMonitor adds the node event log (version 2).
func migrateMonitor(ctx context.Context, db bun.IDB, d Dialect) error {
	stmts := []string{`CREATE TABLE IF NOT EXISTS node_event (
	id VARCHAR(32) NOT NULL PRIMARY KEY,
	node_id VARCHAR(32) NOT NULL,
	at BIGINT NOT NULL,
	from_state VARCHAR(16) NOT NULL,
	to_state VARCHAR(16) NOT NULL,
	reason VARCHAR(1024) NOT NULL,
	monitor VARCHAR(255) NOT NULL` + map[bool]string{true: ",\n\tINDEX node_event_node (node_id, at)"}[d == MySQL] + `
){tail}`}
	if d != MySQL {
		stmts = append(stmts, "CREATE INDEX IF NOT EXISTS node_event_node ON node_event (node_id, at)")
	}
	return execAll(ctx, db, d, stmts)
}
