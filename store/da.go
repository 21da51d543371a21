package store

import (
	"context"
	"fmt"

	"github.com/uptrace/bun"
	"github.com/virtual-disk-array/vda"
)

// InsertDA creates an array with its vds and controllers, each with an
// unknown status. It sets the ids, the array's generation (1) and CreatedAt,
// and each child's DAID. The caller allocates the pds' capacity and touches
// the nodes in the same transaction. A taken name is ErrAlreadyExists.
func (tx *Tx) InsertDA(ctx context.Context, da *DA, vds []VD, cntlrs []Cntlr) error {
	da.ID = vda.DAID(newID())
	da.Generation = 1
	da.CreatedAt = tx.now().UTC().Truncate(1e6)
	r := daRow{
		ID: string(da.ID), Name: da.Name, Size: da.Size, RaidLevel: da.RaidLevel, VDCount: da.VDCount,
		StripSizeKB: da.StripSizeKB, CntlrCount: da.CntlrCount, Description: da.Description,
		Generation: da.Generation, CreatedAt: millis(da.CreatedAt),
	}
	if _, err := tx.tx.NewInsert().Model(&r).Exec(ctx); err != nil {
		return wrapUnique(fmt.Errorf("insert da %s: %w", da.Name, err), "da %s", da.Name)
	}
	if len(vds) > 0 {
		rows := make([]vdRow, len(vds))
		sts := make([]objStatusRow, len(vds))
		for i := range vds {
			vds[i].ID = vda.VDID(newID())
			vds[i].DAID = da.ID
			v := vds[i]
			rows[i] = vdRow{ID: string(v.ID), DAID: string(v.DAID), Index: v.Index, DNID: string(v.DNID), PDID: string(v.PDID), Size: v.Size}
			sts[i] = objStatusRow{ID: string(v.ID), Health: HealthUnknown}
		}
		if _, err := tx.tx.NewInsert().Model(&rows).Exec(ctx); err != nil {
			return classify(fmt.Errorf("insert vds of da %s: %w", da.Name, err))
		}
		if err := tx.insertObjStatuses(ctx, "vd_status", "vd_id", sts); err != nil {
			return err
		}
	}
	if len(cntlrs) > 0 {
		rows := make([]cntlrRow, len(cntlrs))
		sts := make([]objStatusRow, len(cntlrs))
		for i := range cntlrs {
			cntlrs[i].ID = vda.CntlrID(newID())
			cntlrs[i].DAID = da.ID
			c := cntlrs[i]
			rows[i] = cntlrRow{ID: string(c.ID), DAID: string(c.DAID), Index: c.Index, CNID: string(c.CNID), Primary: c.Primary}
			sts[i] = objStatusRow{ID: string(c.ID), Health: HealthUnknown}
		}
		if _, err := tx.tx.NewInsert().Model(&rows).Exec(ctx); err != nil {
			return classify(fmt.Errorf("insert controllers of da %s: %w", da.Name, err))
		}
		if err := tx.insertObjStatuses(ctx, "cntlr_status", "cntlr_id", sts); err != nil {
			return err
		}
	}
	return nil
}

func (tx *Tx) insertObjStatuses(ctx context.Context, table, key string, rows []objStatusRow) error {
	for _, r := range rows {
		_, err := tx.tx.NewRaw("INSERT INTO ? (?, health, error, reported_at) VALUES (?, ?, ?, ?)",
			bun.Ident(table), bun.Ident(key), r.ID, r.Health, r.Error, r.ReportedAt).Exec(ctx)
		if err != nil {
			return fmt.Errorf("insert %s: %w", table, err)
		}
	}
	return nil
}

// DA returns the array named name, or ErrNotFound.
func (tx *Tx) DA(ctx context.Context, name string) (DA, error) {
	var r daRow
	err := tx.tx.NewSelect().Model(&r).Where("name = ?", name).Scan(ctx)
	return r.da(), notFound(err, "da %s", name)
}

// DAByID returns the array with id, or ErrNotFound.
func (tx *Tx) DAByID(ctx context.Context, id vda.DAID) (DA, error) {
	var r daRow
	err := tx.tx.NewSelect().Model(&r).Where("id = ?", id).Scan(ctx)
	return r.da(), notFound(err, "da %s", id)
}

// DAs lists arrays ordered by name.
func (tx *Tx) DAs(ctx context.Context, p Page) ([]DA, error) {
	var rows []daRow
	if err := paged(tx.tx.NewSelect().Model(&rows), "name", p).Scan(ctx); err != nil {
		return nil, fmt.Errorf("list das: %w", err)
	}
	out := make([]DA, len(rows))
	for i := range rows {
		out[i] = rows[i].da()
	}
	return out, nil
}

// UpdateDA writes an array's description if its generation is still
// da.Generation, and increments it. ErrConflict or ErrNotFound.
func (tx *Tx) UpdateDA(ctx context.Context, da *DA) error {
	res, err := tx.tx.NewUpdate().Table("da").
		Set("description = ?", da.Description).
		Set("generation = generation + 1").
		Where("id = ?", da.ID).Where("generation = ?", da.Generation).
		Exec(ctx)
	if err := tx.guarded(ctx, res, err, "da", string(da.ID), "da "+da.Name); err != nil {
		return err
	}
	da.Generation++
	return nil
}

// DeleteDA deletes an array, its vds and controllers and their statuses, if
// its generation is still da.Generation. The caller releases the pds'
// capacity and touches the nodes in the same transaction. An array that
// still has exporters is ErrFailedPrecondition.
func (tx *Tx) DeleteDA(ctx context.Context, da DA) error {
	// Guard first, so a concurrent change aborts before anything is deleted.
	res, err := tx.tx.NewUpdate().Table("da").
		Set("generation = generation + 1").
		Where("id = ?", da.ID).Where("generation = ?", da.Generation).
		Exec(ctx)
	if err := tx.guarded(ctx, res, err, "da", string(da.ID), "da "+da.Name); err != nil {
		return err
	}
	for _, q := range []struct{ table, where string }{
		{"vd_status", "vd_id IN (SELECT id FROM vd WHERE da_id = ?)"},
		{"cntlr_status", "cntlr_id IN (SELECT id FROM cntlr WHERE da_id = ?)"},
		{"vd", "da_id = ?"},
		{"cntlr", "da_id = ?"},
		{"da", "id = ?"},
	} {
		if _, err := tx.tx.NewDelete().Table(q.table).Where(q.where, da.ID).Exec(ctx); err != nil {
			return classify(fmt.Errorf("delete da %s: %s: %w", da.Name, q.table, err))
		}
	}
	return nil
}

// VDs returns an array's vds ordered by index.
func (tx *Tx) VDs(ctx context.Context, da vda.DAID) ([]VD, error) {
	return tx.vdsWhere(ctx, "da_id = ?", da)
}

// VDsOnDN returns the vds placed on a dn, ordered by id.
func (tx *Tx) VDsOnDN(ctx context.Context, dn vda.DNID) ([]VD, error) {
	return tx.vdsWhere(ctx, "dn_id = ?", dn)
}

// VDsOnPD returns the vds placed on a pd, ordered by id.
func (tx *Tx) VDsOnPD(ctx context.Context, pd vda.PDID) ([]VD, error) {
	return tx.vdsWhere(ctx, "pd_id = ?", pd)
}

func (tx *Tx) vdsWhere(ctx context.Context, where string, arg any) ([]VD, error) {
	var rows []vdRow
	if err := tx.tx.NewSelect().Model(&rows).Where(where, arg).Order("da_id", "idx").Scan(ctx); err != nil {
		return nil, fmt.Errorf("list vds: %w", err)
	}
	out := make([]VD, len(rows))
	for i := range rows {
		out[i] = rows[i].vd()
	}
	return out, nil
}

// Cntlrs returns an array's controllers ordered by index.
func (tx *Tx) Cntlrs(ctx context.Context, da vda.DAID) ([]Cntlr, error) {
	return tx.cntlrsWhere(ctx, "da_id = ?", da)
}

// CntlrsOnCN returns the controllers placed on a cn.
func (tx *Tx) CntlrsOnCN(ctx context.Context, cn vda.CNID) ([]Cntlr, error) {
	return tx.cntlrsWhere(ctx, "cn_id = ?", cn)
}

func (tx *Tx) cntlrsWhere(ctx context.Context, where string, arg any) ([]Cntlr, error) {
	var rows []cntlrRow
	if err := tx.tx.NewSelect().Model(&rows).Where(where, arg).Order("da_id", "idx").Scan(ctx); err != nil {
		return nil, fmt.Errorf("list controllers: %w", err)
	}
	out := make([]Cntlr, len(rows))
	for i := range rows {
		out[i] = rows[i].cntlr()
	}
	return out, nil
}

// VDStatuses returns the status of each vd of an array, by id.
func (tx *Tx) VDStatuses(ctx context.Context, da vda.DAID) (map[vda.VDID]ObjStatus, error) {
	rows, err := tx.objStatuses(ctx, "vd_status", "vd_id", "vd", da)
	out := make(map[vda.VDID]ObjStatus, len(rows))
	for i := range rows {
		out[vda.VDID(rows[i].ID)] = rows[i].status()
	}
	return out, err
}

// CntlrStatuses returns the status of each controller of an array, by id.
func (tx *Tx) CntlrStatuses(ctx context.Context, da vda.DAID) (map[vda.CntlrID]ObjStatus, error) {
	rows, err := tx.objStatuses(ctx, "cntlr_status", "cntlr_id", "cntlr", da)
	out := make(map[vda.CntlrID]ObjStatus, len(rows))
	for i := range rows {
		out[vda.CntlrID(rows[i].ID)] = rows[i].status()
	}
	return out, err
}

func (tx *Tx) objStatuses(ctx context.Context, table, key, parent string, da vda.DAID) ([]objStatusRow, error) {
	var rows []objStatusRow
	err := tx.tx.NewSelect().
		TableExpr(table+" AS s").
		ColumnExpr("s."+key+" AS id").
		ColumnExpr("s.health, s.error, s.reported_at").
		Where("s."+key+" IN (SELECT id FROM "+parent+" WHERE da_id = ?)", da).
		Scan(ctx, &rows)
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", table, err)
	}
	return rows, nil
}

// PutVDStatus records a vd's reported status.
func (tx *Tx) PutVDStatus(ctx context.Context, id vda.VDID, st ObjStatus) error {
	return tx.putObjStatus(ctx, "vd_status", "vd_id", string(id), st)
}

// PutCntlrStatus records a controller's reported status.
func (tx *Tx) PutCntlrStatus(ctx context.Context, id vda.CntlrID, st ObjStatus) error {
	return tx.putObjStatus(ctx, "cntlr_status", "cntlr_id", string(id), st)
}

func (tx *Tx) putObjStatus(ctx context.Context, table, key, id string, st ObjStatus) error {
	res, err := tx.tx.NewUpdate().Table(table).
		Set("health = ?", st.Health).
		Set("error = ?", st.Error).
		Set("reported_at = ?", millis(st.ReportedAt)).
		Where(key+" = ?", id).
		Exec(ctx)
	if err != nil {
		return fmt.Errorf("put %s %s: %w", table, id, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("%s %s: %w", table, id, vda.ErrNotFound)
	}
	return nil
}

// Counts tallies the cluster's resources.
func (tx *Tx) Counts(ctx context.Context) (Counts, error) {
	var c Counts
	for _, q := range []struct {
		dst   *int
		table string
		where string
		arg   any
	}{
		{&c.DNs, "node", "kind = ?", kindDN},
		{&c.CNs, "node", "kind = ?", kindCN},
		{&c.PDs, "pd", "", nil},
		{&c.DAs, "da", "", nil},
		{&c.Exps, "exp", "", nil},
		{&c.VDs, "vd", "", nil},
		{&c.Cntlrs, "cntlr", "", nil},
	} {
		sq := tx.tx.NewSelect().Table(q.table)
		if q.where != "" {
			sq = sq.Where(q.where, q.arg)
		}
		n, err := sq.Count(ctx)
		if err != nil {
			return c, fmt.Errorf("count %s: %w", q.table, err)
		}
		*q.dst = int(n)
	}
	return c, nil
}

// CountsBy returns, per parent id, how many rows of a child kind it has:
// "pd" by dn, "vd" by pd, "cntlr" by cn, "exp" by da.
func (tx *Tx) CountsBy(ctx context.Context, child string) (map[string]int, error) {
	col, ok := map[string]string{"pd": "dn_id", "vd": "pd_id", "cntlr": "cn_id", "exp": "da_id"}[child]
	if !ok {
		return nil, vda.Invalidf("no count of %q", child)
	}
	var rows []struct {
		Parent string `bun:"parent"`
		N      int    `bun:"n"`
	}
	err := tx.tx.NewSelect().Table(child).
		ColumnExpr(col+" AS parent").ColumnExpr("COUNT(*) AS n").
		Group(col).Scan(ctx, &rows)
	if err != nil {
		return nil, fmt.Errorf("count %s by %s: %w", child, col, err)
	}
	out := make(map[string]int, len(rows))
	for _, r := range rows {
		out[r.Parent] = r.N
	}
	return out, nil
}

// VDView is a vd with what a reader of its array shows: the names of its
// dn and pd, and its status.
type VDView struct {
	VD
	DNName string
	PDName string
	Status ObjStatus
}

// VDViews returns an array's vds with their dn and pd names and statuses,
// ordered by index, in one query.
func (tx *Tx) VDViews(ctx context.Context, da vda.DAID) ([]VDView, error) {
	var rows []struct {
		vdRow
		DNName string `bun:"dn_name"`
		PDName string `bun:"pd_name"`
		Health Health `bun:"health"`
		Error  string `bun:"error"`
		Rep    int64  `bun:"reported_at"`
	}
	err := tx.tx.NewSelect().
		TableExpr("vd").
		ColumnExpr("vd.*").
		ColumnExpr("n.name AS dn_name, pd.name AS pd_name").
		ColumnExpr("s.health, s.error, s.reported_at").
		Join("JOIN node AS n ON n.id = vd.dn_id").
		Join("JOIN pd ON pd.id = vd.pd_id").
		Join("JOIN vd_status AS s ON s.vd_id = vd.id").
		Where("vd.da_id = ?", da).
		OrderExpr("vd.idx").
		Scan(ctx, &rows)
	if err != nil {
		return nil, fmt.Errorf("list vds of da %s: %w", da, err)
	}
	out := make([]VDView, len(rows))
	for i := range rows {
		r := &rows[i]
		out[i] = VDView{
			VD: r.vd(), DNName: r.DNName, PDName: r.PDName,
			Status: ObjStatus{Health: r.Health, Error: r.Error, ReportedAt: fromMillis(r.Rep)},
		}
	}
	return out, nil
}

// CntlrView is a controller with what a reader of its array shows: its
// cn's name and listener, and its status.
type CntlrView struct {
	Cntlr
	CNName     string
	CNListener Listener
	Status     ObjStatus
}

// CntlrViews returns an array's controllers with their cns and statuses,
// ordered by index, in one query.
func (tx *Tx) CntlrViews(ctx context.Context, da vda.DAID) ([]CntlrView, error) {
	var rows []struct {
		cntlrRow
		CNName  string `bun:"cn_name"`
		TrType  string `bun:"trtype"`
		AdrFam  string `bun:"adrfam"`
		TrAddr  string `bun:"traddr"`
		TrSvcID string `bun:"trsvcid"`
		Health  Health `bun:"health"`
		Error   string `bun:"error"`
		Rep     int64  `bun:"reported_at"`
	}
	err := tx.tx.NewSelect().
		TableExpr("cntlr").
		ColumnExpr("cntlr.*").
		ColumnExpr("n.name AS cn_name, n.trtype, n.adrfam, n.traddr, n.trsvcid").
		ColumnExpr("s.health, s.error, s.reported_at").
		Join("JOIN node AS n ON n.id = cntlr.cn_id").
		Join("JOIN cntlr_status AS s ON s.cntlr_id = cntlr.id").
		Where("cntlr.da_id = ?", da).
		OrderExpr("cntlr.idx").
		Scan(ctx, &rows)
	if err != nil {
		return nil, fmt.Errorf("list controllers of da %s: %w", da, err)
	}
	out := make([]CntlrView, len(rows))
	for i := range rows {
		r := &rows[i]
		out[i] = CntlrView{
			Cntlr:      r.cntlr(),
			CNName:     r.CNName,
			CNListener: Listener{TrType: r.TrType, AdrFam: r.AdrFam, TrAddr: r.TrAddr, TrSvcID: r.TrSvcID},
			Status:     ObjStatus{Health: r.Health, Error: r.Error, ReportedAt: fromMillis(r.Rep)},
		}
	}
	return out, nil
}
