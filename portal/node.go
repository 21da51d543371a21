package portal

import (
	"context"
	"fmt"

	"connectrpc.com/connect"
	"github.com/virtual-disk-array/vda"
	vdav1 "github.com/virtual-disk-array/vda/proto/vda/v1"
	"github.com/virtual-disk-array/vda/store"
)

// Disk nodes and controller nodes take the same fields; nodeCreate and
// nodeModify validate them once for both.

type nodeCreate interface {
	GetName() string
	GetAgentAddress() string
	GetListener() *vdav1.NvmfListener
	GetLocation() string
	GetOffline() bool
	HashCode() *uint32
	GetDescription() string
}

func newNodeSpec(r nodeCreate) (store.NodeSpec, error) {
	var c checks
	c.name("name", r.GetName())
	c.hostPort("agent_address", r.GetAgentAddress())
	l := c.listener(r.GetListener())
	c.location(r.GetLocation())
	c.description(r.GetDescription())
	hash := defaultHashCode(r.GetName())
	if h := r.HashCode(); h != nil {
		c.hashCode(*h)
		hash = *h
	}
	return store.NodeSpec{
		Name: r.GetName(), AgentAddr: r.GetAgentAddress(), Listener: l, Location: r.GetLocation(),
		Offline: r.GetOffline(), HashCode: hash, Description: r.GetDescription(),
	}, c.err()
}

type nodeModify interface {
	GetName() string
	AgentAddr() *string
	GetListener() *vdav1.NvmfListener
	Location() *string
	Offline() *bool
	HashCode() *uint32
	Description() *string
}

// nodeEdit is a validated modification, applied to a spec read inside the
// transaction.
type nodeEdit struct {
	agentAddr, location, description *string
	listener                         *store.Listener
	offline                          *bool
	hashCode                         *uint32
}

func newNodeEdit(r nodeModify) (nodeEdit, error) {
	var c checks
	c.name("name", r.GetName())
	e := nodeEdit{agentAddr: r.AgentAddr(), location: r.Location(), description: r.Description(), offline: r.Offline(), hashCode: r.HashCode()}
	if e.agentAddr != nil {
		c.hostPort("agent_address", *e.agentAddr)
	}
	if r.GetListener() != nil {
		l := c.listener(r.GetListener())
		e.listener = &l
	}
	if e.location != nil {
		c.location(*e.location)
	}
	if e.description != nil {
		c.description(*e.description)
	}
	if e.hashCode != nil {
		c.hashCode(*e.hashCode)
	}
	return e, c.err()
}

// apply edits s and says whether the data path (the listener) changed.
func (e nodeEdit) apply(s *store.NodeSpec) (listenerChanged bool) {
	if e.agentAddr != nil {
		s.AgentAddr = *e.agentAddr
	}
	if e.listener != nil {
		listenerChanged = *e.listener != s.Listener
		s.Listener = *e.listener
	}
	if e.location != nil {
		s.Location = *e.location
	}
	if e.offline != nil {
		s.Offline = *e.offline
	}
	if e.hashCode != nil {
		s.HashCode = *e.hashCode
	}
	if e.description != nil {
		s.Description = *e.description
	}
	return listenerChanged
}

// touch increments node generations within one transaction, each node once,
// guarded by the generation read first.
type touch struct {
	tx  *store.Tx
	dns map[vda.DNID]bool
	cns map[vda.CNID]bool
}

func newTouch(tx *store.Tx) *touch {
	return &touch{tx: tx, dns: map[vda.DNID]bool{}, cns: map[vda.CNID]bool{}}
}

func (t *touch) dn(ctx context.Context, id vda.DNID) error {
	if t.dns[id] {
		return nil
	}
	dn, err := t.tx.DNByID(ctx, id)
	if err != nil {
		return err
	}
	return t.dnAt(ctx, id, dn.Generation)
}

func (t *touch) dnAt(ctx context.Context, id vda.DNID, gen uint64) error {
	if t.dns[id] {
		return nil
	}
	if _, err := t.tx.TouchDN(ctx, id, gen); err != nil {
		return err
	}
	t.dns[id] = true
	return nil
}

func (t *touch) cn(ctx context.Context, id vda.CNID) error {
	if t.cns[id] {
		return nil
	}
	cn, err := t.tx.CNByID(ctx, id)
	if err != nil {
		return err
	}
	return t.cnAt(ctx, id, cn.Generation)
}

func (t *touch) cnAt(ctx context.Context, id vda.CNID, gen uint64) error {
	if t.cns[id] {
		return nil
	}
	if _, err := t.tx.TouchCN(ctx, id, gen); err != nil {
		return err
	}
	t.cns[id] = true
	return nil
}

// arrayCNs touches every cn holding a controller of da: they export it, so
// its exporters and its primary concern all of them.
func (t *touch) arrayCNs(ctx context.Context, da vda.DAID) error {
	cntlrs, err := t.tx.Cntlrs(ctx, da)
	if err != nil {
		return err
	}
	for _, c := range cntlrs {
		if err := t.cn(ctx, c.CNID); err != nil {
			return err
		}
	}
	return nil
}

// ---- disk nodes ----

func (s *Service) CreateDn(ctx context.Context, req *connect.Request[vdav1.CreateDnRequest]) (*connect.Response[vdav1.CreateDnResponse], error) {
	spec, err := newNodeSpec(createDn{req.Msg})
	if err != nil {
		return nil, err
	}
	dn := store.DN{NodeSpec: spec}
	err = s.db.Update(ctx, func(ctx context.Context, tx *store.Tx) error {
		return tx.InsertDN(ctx, &dn)
	})
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&vdav1.CreateDnResponse{Dn: dnOf(dn, store.NodeStatus{Health: store.HealthUnknown}, 0)}), nil
}

func (s *Service) DeleteDn(ctx context.Context, req *connect.Request[vdav1.DeleteDnRequest]) (*connect.Response[vdav1.DeleteDnResponse], error) {
	if err := vda.ValidateName("name", req.Msg.GetName()); err != nil {
		return nil, err
	}
	err := s.db.Update(ctx, func(ctx context.Context, tx *store.Tx) error {
		dn, err := tx.DN(ctx, req.Msg.GetName())
		if err != nil {
			return err
		}
		if err := checkGeneration("dn "+dn.Name, req.Msg.Generation, dn.Generation); err != nil {
			return err
		}
		n, err := tx.CountPDs(ctx, dn.ID)
		if err != nil {
			return err
		}
		if n > 0 {
			return fmt.Errorf("dn %s still has %d pd(s); delete them first: %w", dn.Name, n, vda.ErrFailedPrecondition)
		}
		return tx.DeleteDN(ctx, dn)
	})
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&vdav1.DeleteDnResponse{}), nil
}

func (s *Service) ModifyDn(ctx context.Context, req *connect.Request[vdav1.ModifyDnRequest]) (*connect.Response[vdav1.ModifyDnResponse], error) {
	edit, err := newNodeEdit(modifyDn{req.Msg})
	if err != nil {
		return nil, err
	}
	var out *vdav1.Dn
	err = s.db.Update(ctx, func(ctx context.Context, tx *store.Tx) error {
		dn, err := tx.DN(ctx, req.Msg.GetName())
		if err != nil {
			return err
		}
		if err := checkGeneration("dn "+dn.Name, req.Msg.Generation, dn.Generation); err != nil {
			return err
		}
		before := dn.NodeSpec
		listenerChanged := edit.apply(&dn.NodeSpec)
		if dn.NodeSpec == before {
			// Nothing to change: no new generation, no re-sync of the node.
			out, err = s.dnMsg(ctx, tx, dn)
			return err
		}
		if err := tx.UpdateDN(ctx, &dn); err != nil {
			return err
		}
		if listenerChanged {
			// Primaries reach their vds at the dn's listener.
			if err := touchPrimariesOfDN(ctx, tx, dn.ID); err != nil {
				return err
			}
		}
		out, err = s.dnMsg(ctx, tx, dn)
		return err
	})
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&vdav1.ModifyDnResponse{Dn: out}), nil
}

func touchPrimariesOfDN(ctx context.Context, tx *store.Tx, dn vda.DNID) error {
	vds, err := tx.VDsOnDN(ctx, dn)
	if err != nil {
		return err
	}
	t := newTouch(tx)
	for _, vd := range vds {
		cntlrs, err := tx.Cntlrs(ctx, vd.DAID)
		if err != nil {
			return err
		}
		for _, c := range cntlrs {
			if c.Primary {
				if err := t.cn(ctx, c.CNID); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

func (s *Service) GetDn(ctx context.Context, req *connect.Request[vdav1.GetDnRequest]) (*connect.Response[vdav1.GetDnResponse], error) {
	if err := vda.ValidateName("name", req.Msg.GetName()); err != nil {
		return nil, err
	}
	var out *vdav1.Dn
	err := s.db.View(ctx, func(ctx context.Context, tx *store.Tx) error {
		dn, err := tx.DN(ctx, req.Msg.GetName())
		if err != nil {
			return err
		}
		out, err = s.dnMsg(ctx, tx, dn)
		return err
	})
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&vdav1.GetDnResponse{Dn: out}), nil
}

func (s *Service) dnMsg(ctx context.Context, tx *store.Tx, dn store.DN) (*vdav1.Dn, error) {
	st, err := tx.DNStatus(ctx, dn.ID)
	if err != nil {
		return nil, err
	}
	n, err := tx.CountPDs(ctx, dn.ID)
	if err != nil {
		return nil, err
	}
	return dnOf(dn, st, n), nil
}

func (s *Service) ListDn(ctx context.Context, req *connect.Request[vdav1.ListDnRequest]) (*connect.Response[vdav1.ListDnResponse], error) {
	page, n, err := pageOf("dn", req.Msg.GetPageSize(), req.Msg.GetPageToken())
	if err != nil {
		return nil, err
	}
	resp := &vdav1.ListDnResponse{}
	err = s.db.View(ctx, func(ctx context.Context, tx *store.Tx) error {
		dns, err := tx.DNs(ctx, page)
		if err != nil {
			return err
		}
		dns, resp.NextPageToken = nextToken("dn", dns, n, func(d store.DN) string { return d.Name })
		sts, err := tx.NodeStatuses(ctx)
		if err != nil {
			return err
		}
		counts, err := tx.CountsBy(ctx, "pd")
		if err != nil {
			return err
		}
		for _, dn := range dns {
			resp.Dns = append(resp.Dns, dnOf(dn, sts[string(dn.ID)], counts[string(dn.ID)]))
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(resp), nil
}

// Adapters give the generated messages the accessor names nodeCreate and
// nodeModify share (the generated getters of optional fields return values,
// not presence).

type createDn struct{ *vdav1.CreateDnRequest }

func (r createDn) HashCode() *uint32 { return r.CreateDnRequest.HashCode }

type modifyDn struct{ *vdav1.ModifyDnRequest }

func (r modifyDn) AgentAddr() *string   { return r.AgentAddress }
func (r modifyDn) Location() *string    { return r.ModifyDnRequest.Location }
func (r modifyDn) Offline() *bool       { return r.ModifyDnRequest.Offline }
func (r modifyDn) HashCode() *uint32    { return r.ModifyDnRequest.HashCode }
func (r modifyDn) Description() *string { return r.ModifyDnRequest.Description }
