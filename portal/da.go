package portal

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"connectrpc.com/connect"
	"github.com/virtual-disk-array/vda"
	"github.com/virtual-disk-array/vda/allocator"
	vdav1 "github.com/virtual-disk-array/vda/proto/vda/v1"
	"github.com/virtual-disk-array/vda/store"
)

// checkCreateDa validates a CreateDa request and returns the array it
// asks for, defaults applied.
func checkCreateDa(m *vdav1.CreateDaRequest) (store.DA, error) {
	var c checks
	c.name("name", m.GetName())
	c.arraySize(m.GetSize())
	vdCount, stripKB := c.raid0(m.GetRaid0())
	cntlrCount := c.cntlrCount(m.GetCntlrCount())
	c.description(m.GetDescription())
	return store.DA{
		Name: m.GetName(), Size: m.GetSize(), RaidLevel: store.Raid0, VDCount: vdCount,
		StripSizeKB: stripKB, CntlrCount: cntlrCount, Description: m.GetDescription(),
	}, c.err()
}

func (s *Service) CreateDa(ctx context.Context, req *connect.Request[vdav1.CreateDaRequest]) (*connect.Response[vdav1.CreateDaResponse], error) {
	da, err := checkCreateDa(req.Msg)
	if err != nil {
		return nil, err
	}
	vdCount, cntlrCount := da.VDCount, da.CntlrCount
	vdSize := vda.VDSize(da.Size, vdCount)
	var out *vdav1.Da
	var t *touch
	err = s.db.Update(ctx, func(ctx context.Context, tx *store.Tx) error {
		t = newTouch(tx)
		if err := tx.LockPlacement(ctx); err != nil {
			return err
		}
		// A taken name is the answer even when nothing would fit.
		if _, err := tx.DA(ctx, da.Name); err == nil {
			return fmt.Errorf("da %s: %w", da.Name, vda.ErrAlreadyExists)
		} else if !isNotFound(err) {
			return err
		}
		pds, inv, err := placeVDs(ctx, tx, int(vdCount), vdSize)
		if err != nil {
			return fmt.Errorf("place da %s: %w", da.Name, err)
		}
		cns, err := allocator.PlaceCntlrs(inv.cnCandidates(), int(cntlrCount))
		if err != nil {
			return fmt.Errorf("place da %s: %w", da.Name, err)
		}
		vds := make([]store.VD, len(pds))
		for i, p := range pds {
			pd := inv.pds[p.ID].PD
			// Guarded by the generation the allocator saw: a concurrent
			// placement on this pd makes the transaction run again.
			if err := tx.Allocate(ctx, &pd, int64(vdSize)); err != nil {
				return err
			}
			if err := t.dnAt(ctx, p.DN, inv.pds[p.ID].DNGeneration); err != nil {
				return err
			}
			vds[i] = store.VD{Index: uint32(i), DNID: p.DN, PDID: p.ID, Size: vdSize}
		}
		cntlrs := make([]store.Cntlr, len(cns))
		for i, cn := range cns {
			if err := t.cnAt(ctx, cn.ID, inv.cns[cn.ID].CN.Generation); err != nil {
				return err
			}
			cntlrs[i] = store.Cntlr{Index: uint32(i), CNID: cn.ID, Primary: i == 0}
		}
		if err := tx.InsertDA(ctx, &da, vds, cntlrs); err != nil {
			return err
		}
		out, err = daMsg(ctx, tx, da)
		return err
	})
	if err != nil {
		return nil, err
	}
	if s.push(ctx, t) {
		// The agents answered in time: show what they reported.
		if fresh, err := s.readDa(ctx, da.Name); err == nil {
			out = fresh
		}
	}
	return connect.NewResponse(&vdav1.CreateDaResponse{Da: out}), nil
}

// inventory is what placement reads: pds with their dn's facts, and cns
// with their load.
type inventory struct {
	pds map[vda.PDID]store.PDCandidate
	cns map[vda.CNID]store.CNCandidate
}

// readInventory reads the placement candidates: with count > 0 only those
// a placement of count vds of size bytes can choose from (which keeps
// CreateDa cheap in a large cluster), with 0 every pd (to explain a failure).
func readInventory(ctx context.Context, tx *store.Tx, count int, size uint64) (*inventory, error) {
	pds, err := tx.PDCandidates(ctx, count, size)
	if err != nil {
		return nil, err
	}
	cns, err := tx.CNCandidates(ctx)
	if err != nil {
		return nil, err
	}
	inv := &inventory{pds: make(map[vda.PDID]store.PDCandidate, len(pds)), cns: make(map[vda.CNID]store.CNCandidate, len(cns))}
	for _, p := range pds {
		inv.pds[p.PD.ID] = p
	}
	for _, c := range cns {
		inv.cns[c.CN.ID] = c
	}
	return inv, nil
}

// placeVDs places count vds of size bytes, reading only the pds that may
// fit; when none fits it reads them all so the reason counts every pd.
func placeVDs(ctx context.Context, tx *store.Tx, count int, size uint64) ([]allocator.PD, *inventory, error) {
	inv, err := readInventory(ctx, tx, count, size)
	if err != nil {
		return nil, nil, err
	}
	pds, err := allocator.PlaceVDs(inv.pdCandidates(), count, size)
	if err == nil || !errors.Is(err, vda.ErrNoCapacity) {
		return pds, inv, err
	}
	all, rerr := readInventory(ctx, tx, 0, 0)
	if rerr != nil {
		return nil, nil, rerr
	}
	pds, err = allocator.PlaceVDs(all.pdCandidates(), count, size)
	return pds, all, err
}

// nodeUsable says whether placement may use a node: not offline by an
// administrator and not declared failed by the monitor. A node never heard
// from (unknown) is usable, so that a cluster can be set up before its
// agents run.
func nodeUsable(offline bool, h store.Health) bool {
	return !offline && h != store.HealthFailed
}

// free is what placement may still put on a pd.
func free(p store.PDCandidate) uint64 {
	capacity := pdCapacity(p.PD, store.PDStatus{Capacity: p.ReportedCapacity})
	if capacity > p.PD.Allocated {
		return capacity - p.PD.Allocated
	}
	return 0
}

func (inv *inventory) pdCandidates() []allocator.PD {
	out := make([]allocator.PD, 0, len(inv.pds))
	for _, p := range inv.pds {
		out = append(out, allocator.PD{
			ID:       p.PD.ID,
			DN:       p.PD.DNID,
			Location: p.DNLocation,
			Online:   !p.PD.Offline && nodeUsable(p.DNOffline, p.DNHealth),
			Free:     free(p),
		})
	}
	return out
}

func (inv *inventory) cnCandidates() []allocator.CN {
	out := make([]allocator.CN, 0, len(inv.cns))
	for _, c := range inv.cns {
		out = append(out, allocator.CN{
			ID:       c.CN.ID,
			Location: c.CN.Location,
			Online:   nodeUsable(c.CN.Offline, c.Health),
			Load:     c.Load,
		})
	}
	return out
}

func (s *Service) DeleteDa(ctx context.Context, req *connect.Request[vdav1.DeleteDaRequest]) (*connect.Response[vdav1.DeleteDaResponse], error) {
	m := req.Msg
	if err := vda.ValidateName("name", m.GetName()); err != nil {
		return nil, err
	}
	var t *touch
	err := s.db.Update(ctx, func(ctx context.Context, tx *store.Tx) error {
		t = newTouch(tx)
		da, err := tx.DA(ctx, m.GetName())
		if err != nil {
			return err
		}
		if err := checkGeneration("da "+da.Name, m.Generation, da.Generation); err != nil {
			return err
		}
		n, err := tx.CountExps(ctx, da.ID)
		if err != nil {
			return err
		}
		if n > 0 {
			return fmt.Errorf("da %s still has %d exporter(s); delete them first: %w", da.Name, n, vda.ErrFailedPrecondition)
		}
		vds, err := tx.VDs(ctx, da.ID)
		if err != nil {
			return err
		}
		for _, vd := range vds {
			pd, err := tx.PDByID(ctx, vd.PDID)
			if err != nil {
				return err
			}
			if err := tx.Allocate(ctx, &pd, -int64(vd.Size)); err != nil {
				return err
			}
			if err := t.dn(ctx, vd.DNID); err != nil {
				return err
			}
		}
		if err := t.arrayCNs(ctx, da.ID); err != nil {
			return err
		}
		// An exporter created since CountExps fails the delete.
		return tx.DeleteDA(ctx, da)
	})
	if err != nil {
		return nil, err
	}
	s.push(ctx, t)
	return connect.NewResponse(&vdav1.DeleteDaResponse{}), nil
}

// ModifyDa changes an array's description and, with primary_cntlr_id,
// which of its controllers is the primary.
func (s *Service) ModifyDa(ctx context.Context, req *connect.Request[vdav1.ModifyDaRequest]) (*connect.Response[vdav1.ModifyDaResponse], error) {
	m := req.Msg
	var c checks
	c.name("name", m.GetName())
	if m.Description != nil {
		c.description(*m.Description)
	}
	if m.PrimaryCntlrId != nil {
		c.cntlrID("primary_cntlr_id", *m.PrimaryCntlrId)
	}
	if err := c.err(); err != nil {
		return nil, err
	}
	var out *vdav1.Da
	var t *touch
	err := s.db.Update(ctx, func(ctx context.Context, tx *store.Tx) error {
		t = newTouch(tx)
		if m.PrimaryCntlrId != nil {
			// A failover moves primaries under the same lock, taken first
			// in its transaction too: the two never interleave, so the
			// monitor cannot fail the new primary's cn between the check
			// of its status below and the commit without seeing the new
			// primary. Taken before any read, so that the reads (a
			// snapshot, on MySQL) see what a failover committed.
			if err := tx.LockPlacement(ctx); err != nil {
				return err
			}
		}
		da, err := tx.DA(ctx, m.GetName())
		if err != nil {
			return err
		}
		if err := checkGeneration("da "+da.Name, m.Generation, da.Generation); err != nil {
			return err
		}
		if m.Description != nil && *m.Description != da.Description {
			da.Description = *m.Description
			if err := tx.UpdateDA(ctx, &da); err != nil {
				return err
			}
		}
		if m.PrimaryCntlrId != nil {
			if err := changePrimary(ctx, t, &da, vda.CntlrID(*m.PrimaryCntlrId)); err != nil {
				return err
			}
		}
		out, err = daMsg(ctx, tx, da)
		return err
	})
	if err != nil {
		return nil, err
	}
	if s.push(ctx, t) {
		// The agents answered in time: show what they reported.
		if fresh, err := s.readDa(ctx, m.GetName()); err == nil {
			out = fresh
		}
	}
	return connect.NewResponse(&vdav1.ModifyDaResponse{Da: out}), nil
}

// changePrimary makes controller id the primary of da the way a failover
// does (store.Tx.Reshape), and touches every node whose desired state
// follows: the dns of the vds, whose fences move to the new primary, and
// the cns of the controllers, which re-point to it. Naming the current
// primary changes nothing. da's generation is updated.
func changePrimary(ctx context.Context, t *touch, da *store.DA, id vda.CntlrID) error {
	tx := t.tx
	cntlrs, err := tx.Cntlrs(ctx, da.ID)
	if err != nil {
		return err
	}
	i := slices.IndexFunc(cntlrs, func(c store.Cntlr) bool { return c.ID == id })
	if i < 0 {
		// Like a parent named in a request, a controller named that does
		// not exist is not found; the form of the id was checked before.
		return fmt.Errorf("da %s has no controller %q: %w", da.Name, id, vda.ErrNotFound)
	}
	if cntlrs[i].Primary {
		// On PostgreSQL each statement sees what committed before it, so
		// the controllers may be newer than the array read first: "nothing
		// to do" must be about the generation the caller checked.
		return stillAt(ctx, tx, da, da.Generation)
	}
	cn, err := tx.CNByID(ctx, cntlrs[i].CNID)
	if err != nil {
		return err
	}
	st, err := tx.CNStatus(ctx, cn.ID)
	if err != nil {
		return err
	}
	// The rule is placement's (nodeUsable): an administrator's offline and
	// the monitor's failed exclude a cn, an error or no report yet do not.
	switch {
	case cn.Offline:
		return fmt.Errorf("cntlr %s of da %s is on cn %s, which is offline: %w", id, da.Name, cn.Name, vda.ErrFailedPrecondition)
	case st.Health == store.HealthFailed:
		return fmt.Errorf("cntlr %s of da %s is on cn %s, which has failed: %w", id, da.Name, cn.Name, vda.ErrFailedPrecondition)
	}
	dnIDs, cnIDs, err := tx.Reshape(ctx, da.ID, id, nil)
	if err != nil {
		return err
	}
	// Reshape bumps the array's generation whatever it is, as a failover
	// must; a change here is guarded by the generation read above, like
	// UpdateDA.
	if err := stillAt(ctx, tx, da, da.Generation+1); err != nil {
		return err
	}
	for _, dn := range dnIDs {
		if err := t.dn(ctx, vda.DNID(dn)); err != nil {
			return err
		}
	}
	for _, cn := range cnIDs {
		if err := t.cn(ctx, vda.CNID(cn)); err != nil {
			return err
		}
	}
	return nil
}

// stillAt reads da again and says whether its generation is gen, which is
// what this transaction's own writes make of the generation it read. If
// anything else moved the array meanwhile (a failover, another change of
// primary) the transaction runs again, on what is true now. da is updated.
func stillAt(ctx context.Context, tx *store.Tx, da *store.DA, gen uint64) error {
	now, err := tx.DAByID(ctx, da.ID)
	if err != nil {
		return err
	}
	if now.Generation != gen {
		return fmt.Errorf("da %s changed meanwhile: %w", da.Name, store.ErrConflict)
	}
	*da = now
	return nil
}

func (s *Service) GetDa(ctx context.Context, req *connect.Request[vdav1.GetDaRequest]) (*connect.Response[vdav1.GetDaResponse], error) {
	if err := vda.ValidateName("name", req.Msg.GetName()); err != nil {
		return nil, err
	}
	out, err := s.readDa(ctx, req.Msg.GetName())
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&vdav1.GetDaResponse{Da: out}), nil
}

func (s *Service) readDa(ctx context.Context, name string) (*vdav1.Da, error) {
	var out *vdav1.Da
	err := s.db.View(ctx, func(ctx context.Context, tx *store.Tx) error {
		da, err := tx.DA(ctx, name)
		if err != nil {
			return err
		}
		out, err = daMsg(ctx, tx, da)
		return err
	})
	return out, err
}

// daMsg builds the full view of an array: every vd and controller with its
// placement and observed status, and the array's summed health.
func daMsg(ctx context.Context, tx *store.Tx, da store.DA) (*vdav1.Da, error) {
	out := daOf(da)
	vds, err := tx.VDViews(ctx, da.ID)
	if err != nil {
		return nil, err
	}
	health := vdav1.Health_HEALTH_OK
	worse := func(h vdav1.Health) {
		if healthRank[h] > healthRank[health] {
			health = h
		}
	}
	for _, vd := range vds {
		st := objStatusOf(vd.Status)
		worse(st.Health)
		out.Vds = append(out.Vds, &vdav1.Vd{Id: string(vd.ID), Index: vd.Index, DnName: vd.DNName, PdName: vd.PDName, Size: vd.Size, Status: st})
	}
	paths, err := cntlrPaths(ctx, tx, da.ID)
	if err != nil {
		return nil, err
	}
	for _, p := range paths {
		st := objStatusOf(p.Status)
		worse(st.Health)
		out.Cntlrs = append(out.Cntlrs, &vdav1.Cntlr{
			Id: string(p.ID), Index: p.Index, CnName: p.CNName, Role: roleOf(p.Primary),
			Listener: listenerOf(p.CNListener), Status: st,
		})
	}
	out.Health = health
	return out, nil
}

// healthRank orders health for summing: OK only if all parts are OK, and
// FAILED beats ERROR beats UNKNOWN.
var healthRank = map[vdav1.Health]int{
	vdav1.Health_HEALTH_OK: 0, vdav1.Health_HEALTH_UNKNOWN: 1, vdav1.Health_HEALTH_ERROR: 2, vdav1.Health_HEALTH_FAILED: 3,
}

// cntlrPaths returns an array's controllers, the primary first.
func cntlrPaths(ctx context.Context, tx *store.Tx, da vda.DAID) ([]store.CntlrView, error) {
	cntlrs, err := tx.CntlrViews(ctx, da)
	if err != nil {
		return nil, err
	}
	slices.SortStableFunc(cntlrs, func(a, b store.CntlrView) int {
		switch {
		case a.Primary == b.Primary:
			return 0
		case a.Primary:
			return -1
		}
		return 1
	})
	return cntlrs, nil
}

func (s *Service) ListDa(ctx context.Context, req *connect.Request[vdav1.ListDaRequest]) (*connect.Response[vdav1.ListDaResponse], error) {
	page, n, err := pageOf("da", req.Msg.GetPageSize(), req.Msg.GetPageToken())
	if err != nil {
		return nil, err
	}
	resp := &vdav1.ListDaResponse{}
	err = s.db.View(ctx, func(ctx context.Context, tx *store.Tx) error {
		das, err := tx.DAs(ctx, page)
		if err != nil {
			return err
		}
		das, resp.NextPageToken = nextToken("da", das, n, func(d store.DA) string { return d.Name })
		for _, da := range das {
			resp.Das = append(resp.Das, daOf(da))
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(resp), nil
}
