package portal

import (
	"context"
	"fmt"

	"connectrpc.com/connect"
	"github.com/virtual-disk-array/vda"
	vdav1 "github.com/virtual-disk-array/vda/proto/vda/v1"
	"github.com/virtual-disk-array/vda/store"
)

// ---- controller nodes ----

func (s *Service) CreateCn(ctx context.Context, req *connect.Request[vdav1.CreateCnRequest]) (*connect.Response[vdav1.CreateCnResponse], error) {
	spec, err := newNodeSpec(createCn{req.Msg})
	if err != nil {
		return nil, err
	}
	cn := store.CN{NodeSpec: spec}
	err = s.db.Update(ctx, func(ctx context.Context, tx *store.Tx) error {
		return tx.InsertCN(ctx, &cn)
	})
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&vdav1.CreateCnResponse{Cn: cnOf(cn, store.NodeStatus{Health: store.HealthUnknown}, 0)}), nil
}

func (s *Service) DeleteCn(ctx context.Context, req *connect.Request[vdav1.DeleteCnRequest]) (*connect.Response[vdav1.DeleteCnResponse], error) {
	if err := vda.ValidateName("name", req.Msg.GetName()); err != nil {
		return nil, err
	}
	err := s.db.Update(ctx, func(ctx context.Context, tx *store.Tx) error {
		cn, err := tx.CN(ctx, req.Msg.GetName())
		if err != nil {
			return err
		}
		if err := checkGeneration("cn "+cn.Name, req.Msg.Generation, cn.Generation); err != nil {
			return err
		}
		cntlrs, err := tx.CntlrsOnCN(ctx, cn.ID)
		if err != nil {
			return err
		}
		if len(cntlrs) > 0 {
			return fmt.Errorf("cn %s still holds %d controller(s); delete their arrays first: %w", cn.Name, len(cntlrs), vda.ErrFailedPrecondition)
		}
		return tx.DeleteCN(ctx, cn)
	})
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&vdav1.DeleteCnResponse{}), nil
}

func (s *Service) ModifyCn(ctx context.Context, req *connect.Request[vdav1.ModifyCnRequest]) (*connect.Response[vdav1.ModifyCnResponse], error) {
	edit, err := newNodeEdit(modifyCn{req.Msg})
	if err != nil {
		return nil, err
	}
	var out *vdav1.Cn
	err = s.db.Update(ctx, func(ctx context.Context, tx *store.Tx) error {
		cn, err := tx.CN(ctx, req.Msg.GetName())
		if err != nil {
			return err
		}
		if err := checkGeneration("cn "+cn.Name, req.Msg.Generation, cn.Generation); err != nil {
			return err
		}
		before := cn.NodeSpec
		listenerChanged := edit.apply(&cn.NodeSpec)
		if cn.NodeSpec == before {
			// Nothing to change: no new generation, no re-sync of the node.
			out, err = s.cnMsg(ctx, tx, cn)
			return err
		}
		if err := tx.UpdateCN(ctx, &cn); err != nil {
			return err
		}
		if listenerChanged {
			// Secondaries reach their primary at the cn's listener.
			if err := touchSecondariesOfCN(ctx, tx, cn.ID); err != nil {
				return err
			}
		}
		out, err = s.cnMsg(ctx, tx, cn)
		return err
	})
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&vdav1.ModifyCnResponse{Cn: out}), nil
}

func touchSecondariesOfCN(ctx context.Context, tx *store.Tx, cn vda.CNID) error {
	mine, err := tx.CntlrsOnCN(ctx, cn)
	if err != nil {
		return err
	}
	t := newTouch(tx)
	t.cns[cn] = true // already incremented by UpdateCN
	for _, m := range mine {
		if !m.Primary {
			continue
		}
		if err := t.arrayCNs(ctx, m.DAID); err != nil {
			return err
		}
	}
	return nil
}

func (s *Service) GetCn(ctx context.Context, req *connect.Request[vdav1.GetCnRequest]) (*connect.Response[vdav1.GetCnResponse], error) {
	if err := vda.ValidateName("name", req.Msg.GetName()); err != nil {
		return nil, err
	}
	var out *vdav1.Cn
	err := s.db.View(ctx, func(ctx context.Context, tx *store.Tx) error {
		cn, err := tx.CN(ctx, req.Msg.GetName())
		if err != nil {
			return err
		}
		out, err = s.cnMsg(ctx, tx, cn)
		return err
	})
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&vdav1.GetCnResponse{Cn: out}), nil
}

func (s *Service) cnMsg(ctx context.Context, tx *store.Tx, cn store.CN) (*vdav1.Cn, error) {
	st, err := tx.CNStatus(ctx, cn.ID)
	if err != nil {
		return nil, err
	}
	cntlrs, err := tx.CntlrsOnCN(ctx, cn.ID)
	if err != nil {
		return nil, err
	}
	return cnOf(cn, st, len(cntlrs)), nil
}

func (s *Service) ListCn(ctx context.Context, req *connect.Request[vdav1.ListCnRequest]) (*connect.Response[vdav1.ListCnResponse], error) {
	page, n, err := pageOf("cn", req.Msg.GetPageSize(), req.Msg.GetPageToken())
	if err != nil {
		return nil, err
	}
	resp := &vdav1.ListCnResponse{}
	err = s.db.View(ctx, func(ctx context.Context, tx *store.Tx) error {
		cns, err := tx.CNs(ctx, page)
		if err != nil {
			return err
		}
		cns, resp.NextPageToken = nextToken("cn", cns, n, func(d store.CN) string { return d.Name })
		sts, err := tx.NodeStatuses(ctx)
		if err != nil {
			return err
		}
		counts, err := tx.CountsBy(ctx, "cntlr")
		if err != nil {
			return err
		}
		for _, cn := range cns {
			resp.Cns = append(resp.Cns, cnOf(cn, sts[string(cn.ID)], counts[string(cn.ID)]))
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(resp), nil
}

type createCn struct{ *vdav1.CreateCnRequest }

func (r createCn) HashCode() *uint32 { return r.CreateCnRequest.HashCode }

type modifyCn struct{ *vdav1.ModifyCnRequest }

func (r modifyCn) AgentAddr() *string   { return r.AgentAddress }
func (r modifyCn) Location() *string    { return r.ModifyCnRequest.Location }
func (r modifyCn) Offline() *bool       { return r.ModifyCnRequest.Offline }
func (r modifyCn) HashCode() *uint32    { return r.ModifyCnRequest.HashCode }
func (r modifyCn) Description() *string { return r.ModifyCnRequest.Description }
