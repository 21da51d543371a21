package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/uptrace/bun"
	"github.com/virtual-disk-array/vda"
)

// Disk nodes and controller nodes share one table (node, told apart by kind)
// and one implementation; DN and CN methods are typed doors into it.

// InsertDN creates a dn with generation 1 and an unknown status. It sets
// dn.ID, dn.Generation and dn.CreatedAt. A taken name is ErrAlreadyExists.
func (tx *Tx) InsertDN(ctx context.Context, dn *DN) error {
	id, err := tx.insertNode(ctx, kindDN, &dn.NodeSpec)
	dn.ID = vda.DNID(id)
	return err
}

// InsertCN creates a cn; see InsertDN.
func (tx *Tx) InsertCN(ctx context.Context, cn *CN) error {
	id, err := tx.insertNode(ctx, kindCN, &cn.NodeSpec)
	cn.ID = vda.CNID(id)
	return err
}

// DN returns the dn named name, or ErrNotFound.
func (tx *Tx) DN(ctx context.Context, name string) (DN, error) {
	r, err := tx.node(ctx, kindDN, "name", name)
	return DN{ID: vda.DNID(r.ID), NodeSpec: r.spec()}, err
}

// CN returns the cn named name, or ErrNotFound.
func (tx *Tx) CN(ctx context.Context, name string) (CN, error) {
	r, err := tx.node(ctx, kindCN, "name", name)
	return CN{ID: vda.CNID(r.ID), NodeSpec: r.spec()}, err
}

// DNByID returns the dn with id, or ErrNotFound.
func (tx *Tx) DNByID(ctx context.Context, id vda.DNID) (DN, error) {
	r, err := tx.node(ctx, kindDN, "id", string(id))
	return DN{ID: id, NodeSpec: r.spec()}, err
}

// CNByID returns the cn with id, or ErrNotFound.
func (tx *Tx) CNByID(ctx context.Context, id vda.CNID) (CN, error) {
	r, err := tx.node(ctx, kindCN, "id", string(id))
	return CN{ID: id, NodeSpec: r.spec()}, err
}

// DNs lists dns ordered by name.
func (tx *Tx) DNs(ctx context.Context, p Page) ([]DN, error) {
	rows, err := tx.nodes(ctx, kindDN, p)
	out := make([]DN, len(rows))
	for i := range rows {
		out[i] = DN{ID: vda.DNID(rows[i].ID), NodeSpec: rows[i].spec()}
	}
	return out, err
}

// CNs lists cns ordered by name.
func (tx *Tx) CNs(ctx context.Context, p Page) ([]CN, error) {
	rows, err := tx.nodes(ctx, kindCN, p)
	out := make([]CN, len(rows))
	for i := range rows {
		out[i] = CN{ID: vda.CNID(rows[i].ID), NodeSpec: rows[i].spec()}
	}
	return out, err
}

// UpdateDN writes dn's desired state if its generation is still
// dn.Generation, and increments the generation (dn.Generation is updated).
// A concurrent change gives ErrConflict, a vanished dn ErrNotFound.
func (tx *Tx) UpdateDN(ctx context.Context, dn *DN) error {
	return tx.updateNode(ctx, kindDN, string(dn.ID), &dn.NodeSpec)
}

// UpdateCN writes cn's desired state; see UpdateDN.
func (tx *Tx) UpdateCN(ctx context.Context, cn *CN) error {
	return tx.updateNode(ctx, kindCN, string(cn.ID), &cn.NodeSpec)
}

// TouchDN increments a dn's generation because something it holds changed.
// It is guarded like UpdateDN: gen is the generation the caller read, and
// the new generation is returned.
func (tx *Tx) TouchDN(ctx context.Context, id vda.DNID, gen uint64) (uint64, error) {
	return tx.touchNode(ctx, kindDN, string(id), gen)
}

// TouchCN increments a cn's generation; see TouchDN.
func (tx *Tx) TouchCN(ctx context.Context, id vda.CNID, gen uint64) (uint64, error) {
	return tx.touchNode(ctx, kindCN, string(id), gen)
}

// DeleteDN deletes a dn and its status if its generation is still
// dn.Generation. A dn that still has pds is ErrFailedPrecondition (the
// caller should check first for a better message).
func (tx *Tx) DeleteDN(ctx context.Context, dn DN) error {
	return tx.deleteNode(ctx, kindDN, string(dn.ID), dn.Generation)
}

// DeleteCN deletes a cn; see DeleteDN.
func (tx *Tx) DeleteCN(ctx context.Context, cn CN) error {
	return tx.deleteNode(ctx, kindCN, string(cn.ID), cn.Generation)
}

// DNStatus returns a dn's reported status.
func (tx *Tx) DNStatus(ctx context.Context, id vda.DNID) (NodeStatus, error) {
	return tx.nodeStatus(ctx, string(id))
}

// CNStatus returns a cn's reported status.
func (tx *Tx) CNStatus(ctx context.Context, id vda.CNID) (NodeStatus, error) {
	return tx.nodeStatus(ctx, string(id))
}

// NodeStatuses returns the status of every node, dn and cn, by id.
func (tx *Tx) NodeStatuses(ctx context.Context) (map[string]NodeStatus, error) {
	var rows []nodeStatusRow
	if err := tx.tx.NewSelect().Model(&rows).Scan(ctx); err != nil {
		return nil, fmt.Errorf("list node statuses: %w", err)
	}
	out := make(map[string]NodeStatus, len(rows))
	for i := range rows {
		out[rows[i].NodeID] = rows[i].status()
	}
	return out, nil
}

// PutDNStatus records a dn's report about generation st.Generation. It is
// written only while the dn's desired generation is still st.Generation and
// the stored report is not about a later one, so a late answer never
// overwrites a newer one; otherwise it returns ErrStaleGeneration and writes
// nothing. It never changes the dn's desired state or generation.
func (tx *Tx) PutDNStatus(ctx context.Context, id vda.DNID, st NodeStatus) error {
	return tx.putNodeStatus(ctx, kindDN, string(id), st)
}

// PutCNStatus records a cn's report; see PutDNStatus.
func (tx *Tx) PutCNStatus(ctx context.Context, id vda.CNID, st NodeStatus) error {
	return tx.putNodeStatus(ctx, kindCN, string(id), st)
}

func (tx *Tx) insertNode(ctx context.Context, kind nodeKind, s *NodeSpec) (string, error) {
	id := newID()
	s.Generation = 1
	s.CreatedAt = tx.now().UTC().Truncate(1e6)
	if _, err := tx.tx.NewInsert().Model(newNodeRow(kind, id, *s)).Exec(ctx); err != nil {
		return "", wrapUnique(fmt.Errorf("insert %s %s: %w", kind, s.Name, err), "%s %s", kind, s.Name)
	}
	st := &nodeStatusRow{NodeID: id, Health: HealthUnknown}
	if _, err := tx.tx.NewInsert().Model(st).Exec(ctx); err != nil {
		return "", fmt.Errorf("insert %s %s status: %w", kind, s.Name, err)
	}
	return id, nil
}

func (tx *Tx) node(ctx context.Context, kind nodeKind, col, val string) (nodeRow, error) {
	var r nodeRow
	err := tx.tx.NewSelect().Model(&r).Where("kind = ?", kind).Where("? = ?", bun.Ident(col), val).Scan(ctx)
	if errors.Is(err, sql.ErrNoRows) {
		return r, fmt.Errorf("%s %s: %w", kind, val, vda.ErrNotFound)
	}
	if err != nil {
		return r, fmt.Errorf("get %s %s: %w", kind, val, err)
	}
	return r, nil
}

func (tx *Tx) nodes(ctx context.Context, kind nodeKind, p Page) ([]nodeRow, error) {
	var rows []nodeRow
	q := tx.tx.NewSelect().Model(&rows).Where("kind = ?", kind)
	if err := paged(q, "name", p).Scan(ctx); err != nil {
		return nil, fmt.Errorf("list %ss: %w", kind, err)
	}
	return rows, nil
}

func (tx *Tx) updateNode(ctx context.Context, kind nodeKind, id string, s *NodeSpec) error {
	res, err := tx.tx.NewUpdate().Table("node").
		Set("agent_addr = ?", s.AgentAddr).
		Set("trtype = ?", s.Listener.TrType).
		Set("adrfam = ?", s.Listener.AdrFam).
		Set("traddr = ?", s.Listener.TrAddr).
		Set("trsvcid = ?", s.Listener.TrSvcID).
		Set("location = ?", s.Location).
		Set("offline = ?", s.Offline).
		Set("hash_code = ?", s.HashCode).
		Set("description = ?", s.Description).
		Set("generation = generation + 1").
		Where("id = ?", id).Where("kind = ?", kind).Where("generation = ?", s.Generation).
		Exec(ctx)
	if err := tx.guardedNode(ctx, res, err, kind, id, fmt.Sprintf("%s %s", kind, s.Name)); err != nil {
		return err
	}
	s.Generation++
	return nil
}

func (tx *Tx) touchNode(ctx context.Context, kind nodeKind, id string, gen uint64) (uint64, error) {
	res, err := tx.tx.NewUpdate().Table("node").
		Set("generation = generation + 1").
		Where("id = ?", id).Where("kind = ?", kind).Where("generation = ?", gen).
		Exec(ctx)
	if err := tx.guardedNode(ctx, res, err, kind, id, fmt.Sprintf("%s %s", kind, id)); err != nil {
		return 0, err
	}
	return gen + 1, nil
}

func (tx *Tx) deleteNode(ctx context.Context, kind nodeKind, id string, gen uint64) error {
	if _, err := tx.tx.NewDelete().Table("node_status").Where("node_id = ?", id).Exec(ctx); err != nil {
		return fmt.Errorf("delete %s %s status: %w", kind, id, err)
	}
	if _, err := tx.tx.NewDelete().Table("node_event").Where("node_id = ?", id).Exec(ctx); err != nil {
		return fmt.Errorf("delete %s %s events: %w", kind, id, err)
	}
	res, err := tx.tx.NewDelete().Table("node").
		Where("id = ?", id).Where("kind = ?", kind).Where("generation = ?", gen).
		Exec(ctx)
	return tx.guardedNode(ctx, res, err, kind, id, fmt.Sprintf("%s %s", kind, id))
}

func (tx *Tx) nodeStatus(ctx context.Context, id string) (NodeStatus, error) {
	var r nodeStatusRow
	err := tx.tx.NewSelect().Model(&r).Where("node_id = ?", id).Scan(ctx)
	if errors.Is(err, sql.ErrNoRows) {
		return NodeStatus{}, fmt.Errorf("status of node %s: %w", id, vda.ErrNotFound)
	}
	if err != nil {
		return NodeStatus{}, fmt.Errorf("get status of node %s: %w", id, err)
	}
	return r.status(), nil
}

func (tx *Tx) putNodeStatus(ctx context.Context, kind nodeKind, id string, st NodeStatus) error {
	// The guard reads the node's generation in the same statement, so a
	// desired-state change committed before this write makes it a no-op.
	res, err := tx.tx.NewUpdate().Table("node_status").
		Set("health = ?", st.Health).
		Set("error = ?", st.Error).
		Set("generation = ?", st.Generation).
		Set("applied_generation = ?", st.AppliedGeneration).
		Set("reported_at = ?", millis(st.ReportedAt)).
		Where("node_id = ?", id).
		Where("generation <= ?", st.Generation).
		Where("? = (SELECT n.generation FROM node AS n WHERE n.id = ? AND n.kind = ?)", st.Generation, id, kind).
		Exec(ctx)
	if err != nil {
		return fmt.Errorf("put status of node %s: %w", id, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		if _, err := tx.nodeStatus(ctx, id); err != nil {
			return err
		}
		return fmt.Errorf("status of node %s for generation %d: %w", id, st.Generation, vda.ErrStaleGeneration)
	}
	return nil
}

// guarded interprets a generation-guarded UPDATE or DELETE. No row matched
// means the transaction's read is stale: the row changed since, or it is
// gone. Both are ErrConflict, so Update runs the transaction again and the
// fresh read reports what is true now (a gone row: ErrNotFound, with the
// caller's own words). A gone row also wraps vda.ErrNotFound, which is what
// the caller sees if it keeps failing (an id that never existed).
func (tx *Tx) guarded(ctx context.Context, res sql.Result, err error, table, id, what string) error {
	return tx.guardedWhere(ctx, res, err, what, tx.tx.NewSelect().Table(table).Where("id = ?", id))
}

// guardedNode is guarded for the node table, where a node of the other kind
// counts as gone.
func (tx *Tx) guardedNode(ctx context.Context, res sql.Result, err error, kind nodeKind, id, what string) error {
	return tx.guardedWhere(ctx, res, err, what, tx.tx.NewSelect().Table("node").Where("id = ?", id).Where("kind = ?", kind))
}

func (tx *Tx) guardedWhere(ctx context.Context, res sql.Result, err error, what string, row *bun.SelectQuery) error {
	if err != nil {
		return classify(fmt.Errorf("write %s: %w", what, err))
	}
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("write %s: %w", what, err)
	}
	if n > 0 {
		return nil
	}
	exists, err := row.Exists(ctx)
	if err != nil {
		return fmt.Errorf("write %s: %w", what, err)
	}
	if !exists {
		return fmt.Errorf("%s: %w (deleted meanwhile: %w)", what, vda.ErrNotFound, ErrConflict)
	}
	return fmt.Errorf("%s: %w", what, ErrConflict)
}

// paged orders q by col and applies p.
func paged(q *bun.SelectQuery, col string, p Page) *bun.SelectQuery {
	if p.After != "" {
		q = q.Where("? > ?", bun.Ident(col), p.After)
	}
	q = q.OrderExpr("? ASC", bun.Ident(col))
	if p.Limit > 0 {
		q = q.Limit(int64(p.Limit))
	}
	return q
}

// wrapUnique classifies an insert's error, and rewrites a unique violation
// into a clear ErrAlreadyExists about the subject.
func wrapUnique(err error, format string, args ...any) error {
	if err == nil {
		return nil
	}
	c := classify(err)
	if errors.Is(c, vda.ErrAlreadyExists) {
		return fmt.Errorf("%s: %w", fmt.Sprintf(format, args...), vda.ErrAlreadyExists)
	}
	return c
}
