package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/virtual-disk-array/vda"
)

// InsertPD creates a pd on its dn with generation 1, nothing allocated and
// an unknown status; it sets pd.ID, pd.Generation and pd.CreatedAt. The
// caller touches the dn in the same transaction. A taken name on the dn is
// ErrAlreadyExists; a missing dn ErrFailedPrecondition.
func (tx *Tx) InsertPD(ctx context.Context, pd *PD) error {
	pd.ID = vda.PDID(newID())
	pd.Generation = 1
	pd.Allocated = 0
	pd.CreatedAt = tx.now().UTC().Truncate(1e6)
	r := pdRow{
		ID: string(pd.ID), DNID: string(pd.DNID), Name: pd.Name, Kind: pd.Kind, Size: pd.Size,
		Path: pd.Path, PCIeAddr: pd.PCIeAddr, Offline: pd.Offline, Description: pd.Description,
		CapEstimate: pd.CapacityEstimate, Generation: pd.Generation, CreatedAt: millis(pd.CreatedAt),
	}
	if _, err := tx.tx.NewInsert().Model(&r).Exec(ctx); err != nil {
		return wrapUnique(fmt.Errorf("insert pd %s: %w", pd.Name, err), "pd %s", pd.Name)
	}
	st := pdStatusRow{PDID: r.ID, Health: HealthUnknown}
	if _, err := tx.tx.NewInsert().Model(&st).Exec(ctx); err != nil {
		return fmt.Errorf("insert pd %s status: %w", pd.Name, err)
	}
	return nil
}

// PD returns the pd named name on dn, or ErrNotFound.
func (tx *Tx) PD(ctx context.Context, dn vda.DNID, name string) (PD, error) {
	var r pdRow
	err := tx.tx.NewSelect().Model(&r).Where("dn_id = ?", dn).Where("name = ?", name).Scan(ctx)
	return r.pd(), notFound(err, "pd %s", name)
}

// PDByID returns the pd with id, or ErrNotFound.
func (tx *Tx) PDByID(ctx context.Context, id vda.PDID) (PD, error) {
	var r pdRow
	err := tx.tx.NewSelect().Model(&r).Where("id = ?", id).Scan(ctx)
	return r.pd(), notFound(err, "pd %s", id)
}

// PDByBackend returns the pd of dn backed by the same device: the same aio
// path or nvme PCIe address. Malloc pds never share a backend.
func (tx *Tx) PDByBackend(ctx context.Context, dn vda.DNID, kind PDKind, path, pcie string) (PD, error) {
	var r pdRow
	q := tx.tx.NewSelect().Model(&r).Where("dn_id = ?", dn).Where("kind = ?", kind)
	switch kind {
	case PDAio:
		q = q.Where("path = ?", path)
	case PDNvme:
		q = q.Where("pcie_addr = ?", pcie)
	default:
		return PD{}, fmt.Errorf("pd backend %s: %w", kind, vda.ErrNotFound)
	}
	err := q.Limit(1).Scan(ctx)
	return r.pd(), notFound(err, "pd backend")
}

// PDs lists the pds of one dn ordered by name.
func (tx *Tx) PDs(ctx context.Context, dn vda.DNID, p Page) ([]PD, error) {
	var rows []pdRow
	q := tx.tx.NewSelect().Model(&rows).Where("dn_id = ?", dn)
	if err := paged(q, "name", p).Scan(ctx); err != nil {
		return nil, fmt.Errorf("list pds: %w", err)
	}
	return pdsOf(rows), nil
}

// AllPDs returns every pd of the cluster, ordered by id.
func (tx *Tx) AllPDs(ctx context.Context) ([]PD, error) {
	var rows []pdRow
	if err := tx.tx.NewSelect().Model(&rows).Order("id").Scan(ctx); err != nil {
		return nil, fmt.Errorf("list pds: %w", err)
	}
	return pdsOf(rows), nil
}

func pdsOf(rows []pdRow) []PD {
	out := make([]PD, len(rows))
	for i := range rows {
		out[i] = rows[i].pd()
	}
	return out
}

// UpdatePD writes pd's offline flag and description if its generation is
// still pd.Generation, and increments it. ErrConflict or ErrNotFound.
func (tx *Tx) UpdatePD(ctx context.Context, pd *PD) error {
	res, err := tx.tx.NewUpdate().Table("pd").
		Set("offline = ?", pd.Offline).
		Set("description = ?", pd.Description).
		Set("generation = generation + 1").
		Where("id = ?", pd.ID).Where("generation = ?", pd.Generation).
		Exec(ctx)
	if err := tx.guarded(ctx, res, err, "pd", string(pd.ID), "pd "+pd.Name); err != nil {
		return err
	}
	pd.Generation++
	return nil
}

// Allocate changes the bytes allocated on pd by delta (negative to release),
// guarded by pd.Generation, and increments the generation; pd is updated.
// Placement and its allocation commit together, so two concurrent placements
// on one pd conflict instead of over-committing it.
func (tx *Tx) Allocate(ctx context.Context, pd *PD, delta int64) error {
	next := int64(pd.Allocated) + delta
	if next < 0 {
		return fmt.Errorf("release %d bytes from pd %s holding %d: %w", -delta, pd.Name, pd.Allocated, vda.ErrFailedPrecondition)
	}
	res, err := tx.tx.NewUpdate().Table("pd").
		Set("allocated = ?", next).
		Set("generation = generation + 1").
		Where("id = ?", pd.ID).Where("generation = ?", pd.Generation).
		Exec(ctx)
	if err := tx.guarded(ctx, res, err, "pd", string(pd.ID), "pd "+pd.Name); err != nil {
		return err
	}
	pd.Allocated = uint64(next)
	pd.Generation++
	return nil
}

// DeletePD deletes a pd and its status if its generation is still
// pd.Generation. A pd that still holds vds is ErrFailedPrecondition.
func (tx *Tx) DeletePD(ctx context.Context, pd PD) error {
	if _, err := tx.tx.NewDelete().Table("pd_status").Where("pd_id = ?", pd.ID).Exec(ctx); err != nil {
		return fmt.Errorf("delete pd %s status: %w", pd.Name, err)
	}
	res, err := tx.tx.NewDelete().Table("pd").Where("id = ?", pd.ID).Where("generation = ?", pd.Generation).Exec(ctx)
	return tx.guarded(ctx, res, err, "pd", string(pd.ID), "pd "+pd.Name)
}

// PDStatus returns a pd's reported status.
func (tx *Tx) PDStatus(ctx context.Context, id vda.PDID) (PDStatus, error) {
	var r pdStatusRow
	err := tx.tx.NewSelect().Model(&r).Where("pd_id = ?", id).Scan(ctx)
	return r.status(), notFound(err, "status of pd %s", id)
}

// PDStatuses returns the status of every pd, by id.
func (tx *Tx) PDStatuses(ctx context.Context) (map[vda.PDID]PDStatus, error) {
	var rows []pdStatusRow
	if err := tx.tx.NewSelect().Model(&rows).Scan(ctx); err != nil {
		return nil, fmt.Errorf("list pd statuses: %w", err)
	}
	out := make(map[vda.PDID]PDStatus, len(rows))
	for i := range rows {
		out[vda.PDID(rows[i].PDID)] = rows[i].status()
	}
	return out, nil
}

// PutPDStatus records a pd's reported status. It touches no desired state.
func (tx *Tx) PutPDStatus(ctx context.Context, id vda.PDID, st PDStatus) error {
	res, err := tx.tx.NewUpdate().Table("pd_status").
		Set("health = ?", st.Health).
		Set("error = ?", st.Error).
		Set("reported_at = ?", millis(st.ReportedAt)).
		Set("capacity = ?", st.Capacity).
		Set("free = ?", st.Free).
		Where("pd_id = ?", id).
		Exec(ctx)
	if err != nil {
		return fmt.Errorf("put status of pd %s: %w", id, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("status of pd %s: %w", id, vda.ErrNotFound)
	}
	return nil
}

// CountPDs counts the pds of a dn.
func (tx *Tx) CountPDs(ctx context.Context, dn vda.DNID) (int, error) {
	n, err := tx.tx.NewSelect().Table("pd").Where("dn_id = ?", dn).Count(ctx)
	if err != nil {
		return 0, fmt.Errorf("count pds: %w", err)
	}
	return int(n), nil
}

// notFound turns sql.ErrNoRows into ErrNotFound with a subject.
func notFound(err error, format string, args ...any) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, sql.ErrNoRows):
		return fmt.Errorf("%s: %w", fmt.Sprintf(format, args...), vda.ErrNotFound)
	default:
		return fmt.Errorf("get %s: %w", fmt.Sprintf(format, args...), err)
	}
}
