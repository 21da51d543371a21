package portal

import (
	"context"
	"errors"
	"fmt"

	"connectrpc.com/connect"
	"github.com/virtual-disk-array/vda"
	vdav1 "github.com/virtual-disk-array/vda/proto/vda/v1"
	"github.com/virtual-disk-array/vda/store"
)

// checkCreateExp validates a CreateExp request.
func checkCreateExp(m *vdav1.CreateExpRequest) error {
	var c checks
	c.name("da_name", m.GetDaName())
	c.name("name", m.GetName())
	c.add(vda.ValidateNQN("host_nqn", m.GetHostNqn()))
	c.description(m.GetDescription())
	return c.err()
}

func (s *Service) CreateExp(ctx context.Context, req *connect.Request[vdav1.CreateExpRequest]) (*connect.Response[vdav1.CreateExpResponse], error) {
	m := req.Msg
	if err := checkCreateExp(m); err != nil {
		return nil, err
	}
	var out *vdav1.Exp
	var t *touch
	err := s.db.Update(ctx, func(ctx context.Context, tx *store.Tx) error {
		t = newTouch(tx)
		da, err := tx.DA(ctx, m.GetDaName())
		if err != nil {
			return err
		}
		if _, err := tx.Exp(ctx, da.ID, m.GetName()); err == nil {
			return fmt.Errorf("da %s: exp %s: %w", da.Name, m.GetName(), vda.ErrAlreadyExists)
		} else if !isNotFound(err) {
			return err
		}
		exp := store.Exp{DAID: da.ID, Name: m.GetName(), HostNQN: m.GetHostNqn(), Description: m.GetDescription()}
		if err := tx.InsertExp(ctx, &exp); err != nil {
			if errors.Is(err, vda.ErrAlreadyExists) {
				// The name is free (checked above), so the host is taken.
				return fmt.Errorf("da %s already has an exporter for host %s: %w", da.Name, exp.HostNQN, vda.ErrAlreadyExists)
			}
			return fmt.Errorf("da %s: %w", da.Name, err)
		}
		// Every controller of the array admits the host.
		if err := t.arrayCNs(ctx, da.ID); err != nil {
			return err
		}
		out, err = expMsg(ctx, tx, da, exp)
		return err
	})
	if err != nil {
		return nil, err
	}
	s.push(ctx, t)
	return connect.NewResponse(&vdav1.CreateExpResponse{Exp: out}), nil
}

// expOfDA reads an array and one of its exporters by name.
func expOfDA(ctx context.Context, tx *store.Tx, daName, name string) (store.DA, store.Exp, error) {
	da, err := tx.DA(ctx, daName)
	if err != nil {
		return da, store.Exp{}, err
	}
	exp, err := tx.Exp(ctx, da.ID, name)
	if err != nil {
		return da, exp, fmt.Errorf("da %s: %w", da.Name, err)
	}
	return da, exp, nil
}

func checkExpRef(daName, name string) error {
	var c checks
	c.name("da_name", daName)
	c.name("name", name)
	return c.err()
}

func (s *Service) DeleteExp(ctx context.Context, req *connect.Request[vdav1.DeleteExpRequest]) (*connect.Response[vdav1.DeleteExpResponse], error) {
	m := req.Msg
	if err := checkExpRef(m.GetDaName(), m.GetName()); err != nil {
		return nil, err
	}
	var t *touch
	err := s.db.Update(ctx, func(ctx context.Context, tx *store.Tx) error {
		t = newTouch(tx)
		da, exp, err := expOfDA(ctx, tx, m.GetDaName(), m.GetName())
		if err != nil {
			return err
		}
		if err := checkGeneration("exp "+exp.Name, m.Generation, exp.Generation); err != nil {
			return err
		}
		if err := tx.DeleteExp(ctx, exp); err != nil {
			return err
		}
		return t.arrayCNs(ctx, da.ID)
	})
	if err != nil {
		return nil, err
	}
	s.push(ctx, t)
	return connect.NewResponse(&vdav1.DeleteExpResponse{}), nil
}

func (s *Service) ModifyExp(ctx context.Context, req *connect.Request[vdav1.ModifyExpRequest]) (*connect.Response[vdav1.ModifyExpResponse], error) {
	m := req.Msg
	var c checks
	c.name("da_name", m.GetDaName())
	c.name("name", m.GetName())
	if m.Description != nil {
		c.description(*m.Description)
	}
	if err := c.err(); err != nil {
		return nil, err
	}
	var out *vdav1.Exp
	err := s.db.Update(ctx, func(ctx context.Context, tx *store.Tx) error {
		da, exp, err := expOfDA(ctx, tx, m.GetDaName(), m.GetName())
		if err != nil {
			return err
		}
		if err := checkGeneration("exp "+exp.Name, m.Generation, exp.Generation); err != nil {
			return err
		}
		if m.Description != nil && *m.Description != exp.Description {
			exp.Description = *m.Description
			if err := tx.UpdateExp(ctx, &exp); err != nil {
				return err
			}
		}
		out, err = expMsg(ctx, tx, da, exp)
		return err
	})
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&vdav1.ModifyExpResponse{Exp: out}), nil
}

// expMsg builds the full view of an exporter: one path per controller, the
// primary first.
func expMsg(ctx context.Context, tx *store.Tx, da store.DA, exp store.Exp) (*vdav1.Exp, error) {
	out := expOf(da.Name, da, exp)
	paths, err := cntlrPaths(ctx, tx, da.ID)
	if err != nil {
		return nil, err
	}
	for _, p := range paths {
		out.Paths = append(out.Paths, &vdav1.ExpPath{
			CnName: p.CNName, Role: roleOf(p.Primary), Listener: listenerOf(p.CNListener), Status: objStatusOf(p.Status),
		})
	}
	return out, nil
}

func (s *Service) GetExp(ctx context.Context, req *connect.Request[vdav1.GetExpRequest]) (*connect.Response[vdav1.GetExpResponse], error) {
	m := req.Msg
	if err := checkExpRef(m.GetDaName(), m.GetName()); err != nil {
		return nil, err
	}
	var out *vdav1.Exp
	err := s.db.View(ctx, func(ctx context.Context, tx *store.Tx) error {
		da, exp, err := expOfDA(ctx, tx, m.GetDaName(), m.GetName())
		if err != nil {
			return err
		}
		out, err = expMsg(ctx, tx, da, exp)
		return err
	})
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&vdav1.GetExpResponse{Exp: out}), nil
}

func (s *Service) ListExp(ctx context.Context, req *connect.Request[vdav1.ListExpRequest]) (*connect.Response[vdav1.ListExpResponse], error) {
	m := req.Msg
	if err := vda.ValidateName("da_name", m.GetDaName()); err != nil {
		return nil, err
	}
	list := "exp/" + m.GetDaName()
	page, n, err := pageOf(list, m.GetPageSize(), m.GetPageToken())
	if err != nil {
		return nil, err
	}
	resp := &vdav1.ListExpResponse{}
	err = s.db.View(ctx, func(ctx context.Context, tx *store.Tx) error {
		da, err := tx.DA(ctx, m.GetDaName())
		if err != nil {
			return err
		}
		exps, err := tx.Exps(ctx, da.ID, page)
		if err != nil {
			return err
		}
		exps, resp.NextPageToken = nextToken(list, exps, n, func(e store.Exp) string { return e.Name })
		for _, exp := range exps {
			resp.Exps = append(resp.Exps, expOf(da.Name, da, exp))
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(resp), nil
}
