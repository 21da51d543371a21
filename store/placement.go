package store

import (
	"context"
	"fmt"

	"github.com/virtual-disk-array/vda"
)

// PDCandidate is a pd as placement sees it: the pd, what its agent reported
// of its capacity, and the facts of its dn.
type PDCandidate struct {
	PD PD
	// ReportedCapacity is the lvstore capacity the agent reported, 0 if none.
	ReportedCapacity uint64
	DNLocation       string
	DNOffline        bool
	DNGeneration     uint64
	DNHealth         Health
}

// CNCandidate is a cn as placement sees it.
type CNCandidate struct {
	CN     CN
	Health Health
	// Load is the number of controllers on the cn.
	Load int
}

// LockPlacement serialises placements across every process sharing the
// store, until the transaction ends. Placements read the same inventory
// and, being deterministic, pick the same pds; run concurrently they would
// conflict on those pds' generations and retry (and on PostgreSQL wait out
// deadlock detection), so a placement takes this lock first and then reads
// an inventory no other placement is changing. Call it before the reads.
func (tx *Tx) LockPlacement(ctx context.Context) error {
	res, err := tx.tx.NewRaw("UPDATE placement_lock SET placements = placements + 1 WHERE id = 1").Exec(ctx)
	if err != nil {
		return classify(fmt.Errorf("take the placement lock: %w", err))
	}
	if n, _ := res.RowsAffected(); n != 1 {
		return fmt.Errorf("take the placement lock: the lock row is missing")
	}
	return nil
}

// PDCandidates returns pds for placement, ordered by pd id.
//
// With count 0 it returns every pd, to explain a failed placement.
//
// With count > 0 it returns only what a placement of count vds of minFree
// bytes each can choose from, computed in the database so that a large
// cluster does not ship every pd to the portal: pds online on online,
// non-failed dns with at least minFree bytes free; of those, each dn's best
// pd (most free, then lowest id); of those, the count best per location
// (most free, then pd id, then dn id). A placement that picks dns by the
// least-used location and then by most free space - the allocator's rule -
// never looks past the count best dns of a location, so it chooses the same
// from this subset as from every pd.
func (tx *Tx) PDCandidates(ctx context.Context, count int, minFree uint64) ([]PDCandidate, error) {
	const freeExpr = "(CASE WHEN s.capacity > 0 THEN s.capacity ELSE pd.capacity_estimate END) - pd.allocated"
	var rows []pdCandidateRow
	q := tx.tx.NewSelect().
		TableExpr("pd").
		ColumnExpr("pd.*").
		ColumnExpr("s.capacity AS reported_capacity").
		ColumnExpr("n.location AS dn_location, n.offline AS dn_offline, n.generation AS dn_generation").
		ColumnExpr("ns.health AS dn_health").
		Join("JOIN pd_status AS s ON s.pd_id = pd.id").
		Join("JOIN node AS n ON n.id = pd.dn_id").
		Join("JOIN node_status AS ns ON ns.node_id = n.id").
		OrderExpr("pd.id")
	if count > 0 {
		// Rank narrow rows (a pd row is wide: its path alone may be 4 KiB),
		// then fetch the full rows of the few that win.
		usable := tx.tx.NewSelect().
			TableExpr("pd").
			ColumnExpr("pd.id, pd.dn_id, n.location AS loc").
			ColumnExpr(freeExpr+" AS free").
			ColumnExpr("ROW_NUMBER() OVER (PARTITION BY pd.dn_id ORDER BY "+freeExpr+" DESC, pd.id ASC) AS dn_rank").
			Join("JOIN pd_status AS s ON s.pd_id = pd.id").
			Join("JOIN node AS n ON n.id = pd.dn_id").
			Join("JOIN node_status AS ns ON ns.node_id = n.id").
			Where("pd.offline = ?", false).
			Where("n.offline = ?", false).
			Where("ns.health <> ?", HealthFailed).
			Where("(CASE WHEN s.capacity > 0 THEN s.capacity ELSE pd.capacity_estimate END) >= pd.allocated + ?", minFree)
		ranked := tx.tx.NewSelect().
			TableExpr("(?) AS b", usable).
			ColumnExpr("b.id").
			ColumnExpr("ROW_NUMBER() OVER (PARTITION BY b.loc ORDER BY b.free DESC, b.id ASC, b.dn_id ASC) AS loc_rank").
			Where("b.dn_rank = 1")
		winners := tx.tx.NewSelect().
			TableExpr("(?) AS c", ranked).
			ColumnExpr("c.id").
			Where("c.loc_rank <= ?", count)
		q = q.Join("JOIN (?) AS w ON w.id = pd.id", winners)
	}
	if err := q.Scan(ctx, &rows); err != nil {
		return nil, fmt.Errorf("list placement candidates: %w", err)
	}
	out := make([]PDCandidate, len(rows))
	for i := range rows {
		r := &rows[i]
		out[i] = PDCandidate{
			PD: r.pd(), ReportedCapacity: r.ReportedCapacity,
			DNLocation: r.DNLocation, DNOffline: r.DNOffline, DNGeneration: r.DNGeneration, DNHealth: r.DNHealth,
		}
	}
	return out, nil
}

type pdCandidateRow struct {
	pdRow
	ReportedCapacity uint64 `bun:"reported_capacity"`
	DNLocation       string `bun:"dn_location"`
	DNOffline        bool   `bun:"dn_offline"`
	DNGeneration     uint64 `bun:"dn_generation"`
	DNHealth         Health `bun:"dn_health"`
}

// CNCandidates returns every cn with its health and load, ordered by id.
func (tx *Tx) CNCandidates(ctx context.Context) ([]CNCandidate, error) {
	var rows []struct {
		nodeRow
		Health Health `bun:"health"`
		Load   int    `bun:"cntlr_load"`
	}
	err := tx.tx.NewSelect().
		TableExpr("node").
		ColumnExpr("node.*").
		ColumnExpr("ns.health AS health").
		ColumnExpr("COALESCE(l.n, 0) AS cntlr_load").
		Join("JOIN node_status AS ns ON ns.node_id = node.id").
		Join("LEFT JOIN (SELECT cn_id, COUNT(*) AS n FROM cntlr GROUP BY cn_id) AS l ON l.cn_id = node.id").
		Where("node.kind = ?", kindCN).
		OrderExpr("node.id").
		Scan(ctx, &rows)
	if err != nil {
		return nil, fmt.Errorf("list cn candidates: %w", err)
	}
	out := make([]CNCandidate, len(rows))
	for i := range rows {
		r := &rows[i]
		out[i] = CNCandidate{CN: CN{ID: vda.CNID(r.ID), NodeSpec: r.spec()}, Health: r.Health, Load: r.Load}
	}
	return out, nil
}
