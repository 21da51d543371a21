package store

import (
	"context"
	"fmt"

	"github.com/virtual-disk-array/vda"
)

// InsertExp creates an exporter with generation 1; it sets exp.ID,
// exp.Generation and exp.CreatedAt. The caller touches the array's cns in
// the same transaction. A taken name, or a host NQN the array already
// exports to, is ErrAlreadyExists.
func (tx *Tx) InsertExp(ctx context.Context, exp *Exp) error {
	exp.ID = vda.ExpID(newID())
	exp.Generation = 1
	exp.CreatedAt = tx.now().UTC().Truncate(1e6)
	r := expRow{
		ID: string(exp.ID), DAID: string(exp.DAID), Name: exp.Name, HostNQN: exp.HostNQN,
		Description: exp.Description, Generation: exp.Generation, CreatedAt: millis(exp.CreatedAt),
	}
	if _, err := tx.tx.NewInsert().Model(&r).Exec(ctx); err != nil {
		return wrapUnique(fmt.Errorf("insert exp %s: %w", exp.Name, err),
			"exp %s, or an exporter to host %s", exp.Name, exp.HostNQN)
	}
	return nil
}

// Exp returns the exporter named name of an array, or ErrNotFound.
func (tx *Tx) Exp(ctx context.Context, da vda.DAID, name string) (Exp, error) {
	var r expRow
	err := tx.tx.NewSelect().Model(&r).Where("da_id = ?", da).Where("name = ?", name).Scan(ctx)
	return r.exp(), notFound(err, "exp %s", name)
}

// Exps lists an array's exporters ordered by name.
func (tx *Tx) Exps(ctx context.Context, da vda.DAID, p Page) ([]Exp, error) {
	var rows []expRow
	if err := paged(tx.tx.NewSelect().Model(&rows).Where("da_id = ?", da), "name", p).Scan(ctx); err != nil {
		return nil, fmt.Errorf("list exps: %w", err)
	}
	out := make([]Exp, len(rows))
	for i := range rows {
		out[i] = rows[i].exp()
	}
	return out, nil
}

// UpdateExp writes an exporter's description if its generation is still
// exp.Generation, and increments it. ErrConflict or ErrNotFound.
func (tx *Tx) UpdateExp(ctx context.Context, exp *Exp) error {
	res, err := tx.tx.NewUpdate().Table("exp").
		Set("description = ?", exp.Description).
		Set("generation = generation + 1").
		Where("id = ?", exp.ID).Where("generation = ?", exp.Generation).
		Exec(ctx)
	if err := tx.guarded(ctx, res, err, "exp", string(exp.ID), "exp "+exp.Name); err != nil {
		return err
	}
	exp.Generation++
	return nil
}

// DeleteExp deletes an exporter if its generation is still exp.Generation.
// The caller touches the array's cns in the same transaction.
func (tx *Tx) DeleteExp(ctx context.Context, exp Exp) error {
	res, err := tx.tx.NewDelete().Table("exp").Where("id = ?", exp.ID).Where("generation = ?", exp.Generation).Exec(ctx)
	return tx.guarded(ctx, res, err, "exp", string(exp.ID), "exp "+exp.Name)
}

// CountExps counts an array's exporters.
func (tx *Tx) CountExps(ctx context.Context, da vda.DAID) (int, error) {
	n, err := tx.tx.NewSelect().Table("exp").Where("da_id = ?", da).Count(ctx)
	if err != nil {
		return 0, fmt.Errorf("count exps: %w", err)
	}
	return int(n), nil
}
