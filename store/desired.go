package store

import (
	"context"
	"database/sql"
	"fmt"
	"reflect"
	"slices"
	"strings"

	"github.com/uptrace/bun"
	"github.com/virtual-disk-array/vda"
)

// A node's agent is handed its whole desired state at once, so these reads
// fetch everything a node holds in a fixed number of statements, however
// much that is: the node, then one joined query per kind of child, batched
// over the node's arrays with IN (...) lists. A per-controller or per-array
// query would make a cn with a thousand controllers cost a thousand round
// trips inside one transaction, on every sync.

// maxInList bounds the elements of one IN (...) list; longer lists are cut
// into chunks of this size, one statement each. bun writes the values into
// the statement text, and a statement far larger than this is where the
// databases stop being predictable: MySQL refuses statements over
// max_allowed_packet, and planners cost very long lists poorly. 10,000 ids
// are about 200 KB of SQL, and no realistic node needs a second chunk.
const maxInList = 10000

// inChunks calls fn with consecutive chunks of ids, each at most maxInList
// long, and stops at the first error. It does not call fn for no ids: an
// empty IN list is not valid SQL everywhere.
func inChunks[T any](ids []T, fn func(chunk []T) error) error {
	for len(ids) > 0 {
		n := min(len(ids), maxInList)
		if err := fn(ids[:n]); err != nil {
			return err
		}
		ids = ids[n:]
	}
	return nil
}

// DNState is everything one disk node holds, as the store says, read in one
// transaction: the agent's desired state before it is put on the wire.
type DNState struct {
	DN  DN
	PDs []PD      // every pd of the dn, ordered by id
	VDs []VDPlace // every vd placed on the dn's pds, ordered by id
}

// VDPlace is a vd with the id of its array's current primary controller
// (empty if the array has none, which the portal never leaves it).
type VDPlace struct {
	VD
	PrimaryCntlrID vda.CntlrID
}

// DNState reads what dn id holds. ErrNotFound (wrapped) if the dn does not exist.
//
// It takes three statements: the dn, its pds, and its vds each joined with
// its array's primary controller, which the dn needs to let only that
// controller connect to the vd.
func (tx *Tx) DNState(ctx context.Context, id vda.DNID) (DNState, error) {
	nr, err := tx.node(ctx, kindDN, "id", string(id))
	if err != nil {
		return DNState{}, err
	}
	st := DNState{DN: DN{ID: id, NodeSpec: nr.spec()}}

	var pds []pdRow
	if err := tx.tx.NewSelect().Model(&pds).Where("dn_id = ?", id).OrderExpr("id").Scan(ctx); err != nil {
		return DNState{}, fmt.Errorf("list pds of dn %s: %w", id, err)
	}
	st.PDs = pdsOf(pds)

	// The vds are found through their pds, not vd.dn_id, so that every vd
	// returned names a pd in st.PDs: the agent builds a vd's lvol on its pd.
	// The join is a LEFT JOIN so that a vd of an array without a primary
	// (never left so by the portal) is still returned, with no primary.
	var vds []struct {
		vdRow
		Primary sql.NullString `bun:"primary_cntlr_id"`
	}
	err = tx.tx.NewSelect().
		TableExpr("vd").
		ColumnExpr("vd.*").
		ColumnExpr("p.id AS primary_cntlr_id").
		Join("JOIN pd ON pd.id = vd.pd_id").
		Join("LEFT JOIN cntlr AS p ON p.da_id = vd.da_id AND p.is_primary = ?", true).
		Where("pd.dn_id = ?", id).
		OrderExpr("vd.id, p.id").
		Scan(ctx, &vds)
	if err != nil {
		return DNState{}, fmt.Errorf("list vds of dn %s: %w", id, err)
	}
	st.VDs = make([]VDPlace, 0, len(vds))
	for i := range vds {
		r := &vds[i]
		// An array with two primaries (never left so by the portal) would
		// repeat its vds; keep each vd once, with the lowest primary id, so
		// the agent never sees a vd twice.
		if n := len(st.VDs); n > 0 && st.VDs[n-1].ID == vda.VDID(r.ID) {
			continue
		}
		st.VDs = append(st.VDs, VDPlace{VD: r.vd(), PrimaryCntlrID: vda.CntlrID(r.Primary.String)})
	}
	return st, nil
}

// CNState is everything one controller node holds.
type CNState struct {
	CN     CN
	Cntlrs []CntlrPlace // the controllers on this cn, ordered by id, each with its array
}

// CntlrPlace is one controller on the cn with what it needs to build its part of the array.
type CntlrPlace struct {
	Cntlr
	DA DA
	// Primary is the array's primary controller with its cn's listener
	// (for a primary controller it is itself).
	Primary CntlrPeer
	// Secondaries are the array's other controllers, ordered by index (filled for a
	// primary controller only; nil for a secondary).
	Secondaries []CntlrPeer
	// VDs are the array's vds ordered by index, each with its dn's listener (filled for
	// a primary controller only; nil for a secondary).
	VDs []VDPath
	// HostNQNs are the host NQNs of the array's exporters, sorted, without duplicates.
	HostNQNs []string
}

// CntlrPeer is a controller and the listener of its cn.
type CntlrPeer struct {
	ID       vda.CntlrID
	CNID     vda.CNID
	Listener Listener
}

// VDPath is a vd and the listener of its dn.
type VDPath struct {
	ID       vda.VDID
	Index    uint32
	DNID     vda.DNID
	Listener Listener
}

// CNState reads what cn id holds. ErrNotFound (wrapped) if the cn does not exist.
//
// It takes five statements (more only past maxInList arrays): the cn; its
// controllers joined with their arrays; then, for those arrays, every
// controller joined with its cn's listener (a secondary connects to its
// primary, a primary to its secondaries); the vds of the arrays whose
// primary is here joined with their dn's listener (only a primary connects
// to the vds); and the arrays' exporters (every controller admits the
// hosts, for multipath). A primary's Secondaries and VDs are never nil, even
// when empty, so that nil always marks a secondary's place.
func (tx *Tx) CNState(ctx context.Context, id vda.CNID) (CNState, error) {
	nr, err := tx.node(ctx, kindCN, "id", string(id))
	if err != nil {
		return CNState{}, err
	}
	st := CNState{CN: CN{ID: id, NodeSpec: nr.spec()}}

	var own []struct {
		cntlrRow
		DA daRow `bun:"embed:da__"`
	}
	err = tx.tx.NewSelect().
		TableExpr("cntlr").
		ColumnExpr("cntlr.*").
		ColumnExpr(tx.embedColumns("da", "da__", daRow{})).
		Join("JOIN da ON da.id = cntlr.da_id").
		Where("cntlr.cn_id = ?", id).
		OrderExpr("cntlr.id").
		Scan(ctx, &own)
	if err != nil {
		return CNState{}, fmt.Errorf("list controllers of cn %s: %w", id, err)
	}

	// The arrays, each once, and those of them whose primary is here.
	var das, primaryDAs []string
	seen := make(map[string]bool, len(own))
	isPrimaryDA := map[string]bool{}
	for i := range own {
		r := &own[i]
		if !seen[r.DAID] {
			seen[r.DAID] = true
			das = append(das, r.DAID)
		}
		if r.Primary && !isPrimaryDA[r.DAID] {
			isPrimaryDA[r.DAID] = true
			primaryDAs = append(primaryDAs, r.DAID)
		}
	}

	peers, err := tx.cntlrPeers(ctx, das)
	if err != nil {
		return CNState{}, fmt.Errorf("read cn %s: %w", id, err)
	}
	paths, err := tx.vdPaths(ctx, primaryDAs)
	if err != nil {
		return CNState{}, fmt.Errorf("read cn %s: %w", id, err)
	}
	nqns, err := tx.hostNQNs(ctx, das)
	if err != nil {
		return CNState{}, fmt.Errorf("read cn %s: %w", id, err)
	}

	st.Cntlrs = make([]CntlrPlace, len(own))
	for i := range own {
		r := &own[i]
		p := CntlrPlace{Cntlr: r.cntlr(), DA: r.DA.da(), HostNQNs: slices.Clone(nqns[r.DAID])}
		arr := peers[r.DAID]
		if r.Primary {
			// A primary is the primary of its own place even if the array
			// (wrongly) had another; every other controller is a secondary.
			p.Secondaries = make([]CntlrPeer, 0, len(arr))
			for _, c := range arr {
				if c.ID == p.ID {
					p.Primary = c.CntlrPeer
				} else {
					p.Secondaries = append(p.Secondaries, c.CntlrPeer)
				}
			}
			p.VDs = slices.Clone(paths[r.DAID])
			if p.VDs == nil {
				p.VDs = []VDPath{}
			}
		} else {
			// The array's primary, the first by index should there be two.
			for _, c := range arr {
				if c.primary {
					p.Primary = c.CntlrPeer
					break
				}
			}
		}
		st.Cntlrs[i] = p
	}
	return st, nil
}

// peer is a CntlrPeer and whether it is its array's primary, which decides
// the peer's role in every CntlrPlace of the array.
type peer struct {
	CntlrPeer
	primary bool
}

// cntlrPeers returns every controller of the arrays das with its cn's
// listener, by array, each array's ordered by index.
func (tx *Tx) cntlrPeers(ctx context.Context, das []string) (map[string][]peer, error) {
	out := make(map[string][]peer, len(das))
	err := inChunks(das, func(chunk []string) error {
		var rows []struct {
			cntlrRow
			TrType  string `bun:"trtype"`
			AdrFam  string `bun:"adrfam"`
			TrAddr  string `bun:"traddr"`
			TrSvcID string `bun:"trsvcid"`
		}
		// Every controller of an array is in the chunk of its array, so
		// ordering within the statement orders each array's list.
		err := tx.tx.NewSelect().
			TableExpr("cntlr").
			ColumnExpr("cntlr.*").
			ColumnExpr("n.trtype, n.adrfam, n.traddr, n.trsvcid").
			Join("JOIN node AS n ON n.id = cntlr.cn_id").
			Where("cntlr.da_id IN (?)", bun.List(chunk)).
			OrderExpr("cntlr.da_id, cntlr.idx").
			Scan(ctx, &rows)
		if err != nil {
			return fmt.Errorf("list controllers of %d arrays: %w", len(chunk), err)
		}
		for i := range rows {
			r := &rows[i]
			out[r.DAID] = append(out[r.DAID], peer{
				CntlrPeer: CntlrPeer{
					ID:       vda.CntlrID(r.ID),
					CNID:     vda.CNID(r.CNID),
					Listener: Listener{TrType: r.TrType, AdrFam: r.AdrFam, TrAddr: r.TrAddr, TrSvcID: r.TrSvcID},
				},
				primary: r.Primary,
			})
		}
		return nil
	})
	return out, err
}

// vdPaths returns the vds of the arrays das with their dn's listener, by
// array, each array's ordered by index.
func (tx *Tx) vdPaths(ctx context.Context, das []string) (map[string][]VDPath, error) {
	out := make(map[string][]VDPath, len(das))
	err := inChunks(das, func(chunk []string) error {
		var rows []struct {
			ID      string `bun:"id"`
			DAID    string `bun:"da_id"`
			Index   uint32 `bun:"idx"`
			DNID    string `bun:"dn_id"`
			TrType  string `bun:"trtype"`
			AdrFam  string `bun:"adrfam"`
			TrAddr  string `bun:"traddr"`
			TrSvcID string `bun:"trsvcid"`
		}
		err := tx.tx.NewSelect().
			TableExpr("vd").
			ColumnExpr("vd.id, vd.da_id, vd.idx, vd.dn_id").
			ColumnExpr("n.trtype, n.adrfam, n.traddr, n.trsvcid").
			Join("JOIN node AS n ON n.id = vd.dn_id").
			Where("vd.da_id IN (?)", bun.List(chunk)).
			OrderExpr("vd.da_id, vd.idx").
			Scan(ctx, &rows)
		if err != nil {
			return fmt.Errorf("list vds of %d arrays: %w", len(chunk), err)
		}
		for i := range rows {
			r := &rows[i]
			out[r.DAID] = append(out[r.DAID], VDPath{
				ID:       vda.VDID(r.ID),
				Index:    r.Index,
				DNID:     vda.DNID(r.DNID),
				Listener: Listener{TrType: r.TrType, AdrFam: r.AdrFam, TrAddr: r.TrAddr, TrSvcID: r.TrSvcID},
			})
		}
		return nil
	})
	return out, err
}

// hostNQNs returns the host NQNs of the arrays das' exporters, by array,
// sorted and without duplicates. They are sorted here, not in SQL: the
// column's collation differs between databases, and agents compare the
// list byte for byte.
func (tx *Tx) hostNQNs(ctx context.Context, das []string) (map[string][]string, error) {
	out := make(map[string][]string, len(das))
	err := inChunks(das, func(chunk []string) error {
		var rows []struct {
			DAID    string `bun:"da_id"`
			HostNQN string `bun:"host_nqn"`
		}
		err := tx.tx.NewSelect().
			TableExpr("exp").
			ColumnExpr("exp.da_id, exp.host_nqn").
			Where("exp.da_id IN (?)", bun.List(chunk)).
			Scan(ctx, &rows)
		if err != nil {
			return fmt.Errorf("list exporters of %d arrays: %w", len(chunk), err)
		}
		for _, r := range rows {
			out[r.DAID] = append(out[r.DAID], r.HostNQN)
		}
		return nil
	})
	for da, nqns := range out {
		slices.Sort(nqns)
		out[da] = slices.Compact(nqns)
	}
	return out, err
}

// embedColumns selects every column of model's table, from the table
// aliased alias, named with prefix, for a struct field tagged
// bun:"embed:<prefix>". The list comes from the row type, so a column added
// to it is read without touching the query.
func (tx *Tx) embedColumns(alias, prefix string, model any) string {
	t := tx.tx.Dialect().Tables().Get(reflect.TypeOf(model))
	cols := make([]string, len(t.Fields))
	for i, f := range t.Fields {
		cols[i] = alias + "." + string(f.SQLName) + " AS " + prefix + f.Name
	}
	return strings.Join(cols, ", ")
}
