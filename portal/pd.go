package portal

import (
	"context"
	"fmt"
	"strings"

	"connectrpc.com/connect"
	"github.com/virtual-disk-array/vda"
	vdav1 "github.com/virtual-disk-array/vda/proto/vda/v1"
	"github.com/virtual-disk-array/vda/store"
)

// checkCreatePd validates a CreatePd request and returns its backend as
// the store spells it.
func checkCreatePd(m *vdav1.CreatePdRequest) (kind store.PDKind, size uint64, path, pcie string, err error) {
	var c checks
	c.name("dn_name", m.GetDnName())
	c.name("name", m.GetName())
	c.description(m.GetDescription())
	kind, size, path, pcie = c.pdBackend(m.GetMalloc(), m.GetAio(), m.GetNvme())
	return kind, size, path, pcie, c.err()
}

func (s *Service) CreatePd(ctx context.Context, req *connect.Request[vdav1.CreatePdRequest]) (*connect.Response[vdav1.CreatePdResponse], error) {
	m := req.Msg
	kind, size, path, pcie, err := checkCreatePd(m)
	if err != nil {
		return nil, err
	}
	var out *vdav1.Pd
	var t *touch
	err = s.db.Update(ctx, func(ctx context.Context, tx *store.Tx) error {
		t = newTouch(tx)
		dn, err := tx.DN(ctx, m.GetDnName())
		if err != nil {
			return err
		}
		if kind != store.PDMalloc {
			other, err := tx.PDByBackend(ctx, dn.ID, kind, path, pcie)
			if err == nil {
				return fmt.Errorf("dn %s: pd %s already uses %s%s: %w", dn.Name, other.Name, path, pcie, vda.ErrAlreadyExists)
			}
			if !isNotFound(err) {
				return err
			}
		}
		pd := store.PD{
			DNID: dn.ID, Name: m.GetName(), Kind: kind, Size: size, Path: path, PCIeAddr: pcie,
			Offline: m.GetOffline(), Description: m.GetDescription(),
		}
		if kind == store.PDMalloc {
			pd.CapacityEstimate = vda.EstimatedLvstoreCapacity(size)
		}
		// A dn deleted since it was read fails the insert.
		if err := tx.InsertPD(ctx, &pd); err != nil {
			return fmt.Errorf("dn %s: %w", dn.Name, err)
		}
		if err := t.dnAt(ctx, dn.ID, dn.Generation); err != nil {
			return err
		}
		out = pdOf(dn.Name, pd, store.PDStatus{Health: store.HealthUnknown}, 0)
		return nil
	})
	if err != nil {
		return nil, err
	}
	s.push(ctx, t)
	return connect.NewResponse(&vdav1.CreatePdResponse{Pd: out}), nil
}

// pdOfDN reads a dn and one of its pds by name.
func pdOfDN(ctx context.Context, tx *store.Tx, dnName, pdName string) (store.DN, store.PD, error) {
	dn, err := tx.DN(ctx, dnName)
	if err != nil {
		return dn, store.PD{}, err
	}
	pd, err := tx.PD(ctx, dn.ID, pdName)
	if err != nil {
		return dn, pd, fmt.Errorf("dn %s: %w", dn.Name, err)
	}
	return dn, pd, nil
}

func checkPdRef(dnName, name string) error {
	var c checks
	c.name("dn_name", dnName)
	c.name("name", name)
	return c.err()
}

func (s *Service) DeletePd(ctx context.Context, req *connect.Request[vdav1.DeletePdRequest]) (*connect.Response[vdav1.DeletePdResponse], error) {
	m := req.Msg
	if err := checkPdRef(m.GetDnName(), m.GetName()); err != nil {
		return nil, err
	}
	var t *touch
	err := s.db.Update(ctx, func(ctx context.Context, tx *store.Tx) error {
		t = newTouch(tx)
		dn, pd, err := pdOfDN(ctx, tx, m.GetDnName(), m.GetName())
		if err != nil {
			return err
		}
		if err := checkGeneration("pd "+pd.Name, m.Generation, pd.Generation); err != nil {
			return err
		}
		vds, err := tx.VDsOnPD(ctx, pd.ID)
		if err != nil {
			return err
		}
		if len(vds) > 0 {
			names, err := arrayNames(ctx, tx, vds, 3)
			if err != nil {
				return err
			}
			return fmt.Errorf("pd %s on dn %s holds %d vd(s) of array(s) %s; delete those arrays first: %w",
				pd.Name, dn.Name, len(vds), names, vda.ErrFailedPrecondition)
		}
		if err := tx.DeletePD(ctx, pd); err != nil {
			return err
		}
		return t.dnAt(ctx, dn.ID, dn.Generation)
	})
	if err != nil {
		return nil, err
	}
	s.push(ctx, t)
	return connect.NewResponse(&vdav1.DeletePdResponse{}), nil
}

// arrayNames names the arrays of vds for a message: "da0, da1 and 2 more".
func arrayNames(ctx context.Context, tx *store.Tx, vds []store.VD, most int) (string, error) {
	var ids []vda.DAID
	seen := map[vda.DAID]bool{}
	for _, vd := range vds {
		if !seen[vd.DAID] {
			seen[vd.DAID] = true
			ids = append(ids, vd.DAID)
		}
	}
	var names []string
	for _, id := range ids[:min(len(ids), most)] {
		da, err := tx.DAByID(ctx, id)
		if err != nil {
			return "", err
		}
		names = append(names, da.Name)
	}
	out := strings.Join(names, ", ")
	if rest := len(ids) - len(names); rest > 0 {
		out += fmt.Sprintf(" and %d more", rest)
	}
	return out, nil
}

func (s *Service) ModifyPd(ctx context.Context, req *connect.Request[vdav1.ModifyPdRequest]) (*connect.Response[vdav1.ModifyPdResponse], error) {
	m := req.Msg
	var c checks
	c.name("dn_name", m.GetDnName())
	c.name("name", m.GetName())
	if m.Description != nil {
		c.description(*m.Description)
	}
	if err := c.err(); err != nil {
		return nil, err
	}
	var out *vdav1.Pd
	var t *touch
	err := s.db.Update(ctx, func(ctx context.Context, tx *store.Tx) error {
		t = newTouch(tx)
		dn, pd, err := pdOfDN(ctx, tx, m.GetDnName(), m.GetName())
		if err != nil {
			return err
		}
		if err := checkGeneration("pd "+pd.Name, m.Generation, pd.Generation); err != nil {
			return err
		}
		before := pd
		if m.Offline != nil {
			pd.Offline = *m.Offline
		}
		if m.Description != nil {
			pd.Description = *m.Description
		}
		if pd == before {
			out, err = pdMsg(ctx, tx, dn.Name, pd)
			return err
		}
		if err := tx.UpdatePD(ctx, &pd); err != nil {
			return err
		}
		if err := t.dnAt(ctx, dn.ID, dn.Generation); err != nil {
			return err
		}
		out, err = pdMsg(ctx, tx, dn.Name, pd)
		return err
	})
	if err != nil {
		return nil, err
	}
	s.push(ctx, t)
	return connect.NewResponse(&vdav1.ModifyPdResponse{Pd: out}), nil
}

func pdMsg(ctx context.Context, tx *store.Tx, dnName string, pd store.PD) (*vdav1.Pd, error) {
	st, err := tx.PDStatus(ctx, pd.ID)
	if err != nil {
		return nil, err
	}
	vds, err := tx.VDsOnPD(ctx, pd.ID)
	if err != nil {
		return nil, err
	}
	return pdOf(dnName, pd, st, len(vds)), nil
}

func (s *Service) GetPd(ctx context.Context, req *connect.Request[vdav1.GetPdRequest]) (*connect.Response[vdav1.GetPdResponse], error) {
	m := req.Msg
	if err := checkPdRef(m.GetDnName(), m.GetName()); err != nil {
		return nil, err
	}
	var out *vdav1.Pd
	err := s.db.View(ctx, func(ctx context.Context, tx *store.Tx) error {
		dn, pd, err := pdOfDN(ctx, tx, m.GetDnName(), m.GetName())
		if err != nil {
			return err
		}
		out, err = pdMsg(ctx, tx, dn.Name, pd)
		return err
	})
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&vdav1.GetPdResponse{Pd: out}), nil
}

func (s *Service) ListPd(ctx context.Context, req *connect.Request[vdav1.ListPdRequest]) (*connect.Response[vdav1.ListPdResponse], error) {
	m := req.Msg
	if err := vda.ValidateName("dn_name", m.GetDnName()); err != nil {
		return nil, err
	}
	list := "pd/" + m.GetDnName()
	page, n, err := pageOf(list, m.GetPageSize(), m.GetPageToken())
	if err != nil {
		return nil, err
	}
	resp := &vdav1.ListPdResponse{}
	err = s.db.View(ctx, func(ctx context.Context, tx *store.Tx) error {
		dn, err := tx.DN(ctx, m.GetDnName())
		if err != nil {
			return err
		}
		pds, err := tx.PDs(ctx, dn.ID, page)
		if err != nil {
			return err
		}
		pds, resp.NextPageToken = nextToken(list, pds, n, func(p store.PD) string { return p.Name })
		for _, pd := range pds {
			msg, err := pdMsg(ctx, tx, dn.Name, pd)
			if err != nil {
				return err
			}
			resp.Pds = append(resp.Pds, msg)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(resp), nil
}
