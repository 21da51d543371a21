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

// nodeKind binds the node logic below, written once, to dns or cns: how
// to reach the store for that kind, what depends on a node, who reaches it
// at its listener, and how it looks in the API.
type nodeKind[N any, M any] struct {
	name string // "dn" or "cn"
	spec func(*N) *store.NodeSpec
	// id is the node's id as the tables that hang off node (its status,
	// its event log) key it.
	id func(*N) string
	// Store methods, receiver first: (*store.Tx).InsertDN and so on.
	insert func(*store.Tx, context.Context, *N) error
	get    func(*store.Tx, context.Context, string) (N, error)
	list   func(*store.Tx, context.Context, store.Page) ([]N, error)
	update func(*store.Tx, context.Context, *N) error
	remove func(*store.Tx, context.Context, N) error
	// dependents says what must go before the node can, "" if nothing.
	dependents func(context.Context, *store.Tx, N) (string, error)
	// mark records that the node itself changed (its generation is
	// already incremented), so that it is pushed.
	mark func(*touch, *N)
	// listenerMoved touches the nodes that reach this one at its listener.
	listenerMoved func(context.Context, *touch, N) error
	// msgs renders nodes for the API; the statuses and counts it needs are
	// read once for all of them.
	msgs func(context.Context, *store.Tx, []N) ([]M, error)
}

// create inserts a node and returns it with the touch that marks it, to be
// pushed: a new agent learns its (empty) state and sets up its transport.
func (k nodeKind[N, M]) create(ctx context.Context, db *store.DB, r nodeCreate) (M, *touch, error) {
	var out M
	var t *touch
	spec, err := newNodeSpec(r)
	if err != nil {
		return out, nil, err
	}
	err = db.Update(ctx, func(ctx context.Context, tx *store.Tx) error {
		t = newTouch(tx)
		var n N
		*k.spec(&n) = spec
		if err := k.insert(tx, ctx, &n); err != nil {
			return err
		}
		k.mark(t, &n)
		out, err = k.msg(ctx, tx, n)
		return err
	})
	return out, t, err
}

func (k nodeKind[N, M]) delete(ctx context.Context, db *store.DB, name string, gen *uint64) error {
	if err := vda.ValidateName("name", name); err != nil {
		return err
	}
	return db.Update(ctx, func(ctx context.Context, tx *store.Tx) error {
		n, err := k.get(tx, ctx, name)
		if err != nil {
			return err
		}
		if err := checkGeneration(k.name+" "+name, gen, k.spec(&n).Generation); err != nil {
			return err
		}
		what, err := k.dependents(ctx, tx, n)
		if err != nil {
			return err
		}
		if what != "" {
			return fmt.Errorf("%s %s still %s: %w", k.name, name, what, vda.ErrFailedPrecondition)
		}
		return k.remove(tx, ctx, n)
	})
}

// modify changes a node and returns it with the nodes the change touched.
func (k nodeKind[N, M]) modify(ctx context.Context, db *store.DB, r nodeModify, gen *uint64) (M, *touch, error) {
	var out M
	var t *touch
	edit, err := newNodeEdit(r)
	if err != nil {
		return out, nil, err
	}
	err = db.Update(ctx, func(ctx context.Context, tx *store.Tx) error {
		t = newTouch(tx)
		n, err := k.get(tx, ctx, r.GetName())
		if err != nil {
			return err
		}
		spec := k.spec(&n)
		if err := checkGeneration(k.name+" "+spec.Name, gen, spec.Generation); err != nil {
			return err
		}
		before := *spec
		listenerChanged := edit.apply(spec)
		if *spec != before {
			// Only a real change makes a new generation (and a re-sync).
			if err := k.update(tx, ctx, &n); err != nil {
				return err
			}
			k.mark(t, &n)
			if listenerChanged {
				if err := k.listenerMoved(ctx, t, n); err != nil {
					return err
				}
			}
		}
		out, err = k.msg(ctx, tx, n)
		return err
	})
	return out, t, err
}

func (k nodeKind[N, M]) read(ctx context.Context, db *store.DB, name string) (M, error) {
	var out M
	if err := vda.ValidateName("name", name); err != nil {
		return out, err
	}
	err := db.View(ctx, func(ctx context.Context, tx *store.Tx) error {
		n, err := k.get(tx, ctx, name)
		if err != nil {
			return err
		}
		out, err = k.msg(ctx, tx, n)
		return err
	})
	return out, err
}

func (k nodeKind[N, M]) page(ctx context.Context, db *store.DB, size uint32, token string) ([]M, string, error) {
	page, n, err := pageOf(k.name, size, token)
	if err != nil {
		return nil, "", err
	}
	var out []M
	var next string
	err = db.View(ctx, func(ctx context.Context, tx *store.Tx) error {
		nodes, err := k.list(tx, ctx, page)
		if err != nil {
			return err
		}
		nodes, next = nextToken(k.name, nodes, n, func(x N) string { return k.spec(&x).Name })
		out, err = k.msgs(ctx, tx, nodes)
		return err
	})
	return out, next, err
}

func (k nodeKind[N, M]) msg(ctx context.Context, tx *store.Tx, n N) (M, error) {
	ms, err := k.msgs(ctx, tx, []N{n})
	if err != nil {
		var zero M
		return zero, err
	}
	return ms[0], nil
}

// ---- disk nodes ----

var dns = nodeKind[store.DN, *vdav1.Dn]{
	name:   "dn",
	spec:   func(n *store.DN) *store.NodeSpec { return &n.NodeSpec },
	id:     func(n *store.DN) string { return string(n.ID) },
	insert: (*store.Tx).InsertDN,
	get:    (*store.Tx).DN,
	list:   (*store.Tx).DNs,
	update: (*store.Tx).UpdateDN,
	remove: (*store.Tx).DeleteDN,
	dependents: func(ctx context.Context, tx *store.Tx, dn store.DN) (string, error) {
		n, err := tx.CountPDs(ctx, dn.ID)
		if err != nil || n == 0 {
			return "", err
		}
		return fmt.Sprintf("has %d pd(s); delete them first", n), nil
	},
	mark: func(t *touch, n *store.DN) { t.dns[n.ID] = true },
	// Primaries reach their vds at the dn's listener.
	listenerMoved: func(ctx context.Context, t *touch, dn store.DN) error {
		tx := t.tx
		vds, err := tx.VDsOnDN(ctx, dn.ID)
		if err != nil {
			return err
		}
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
	},
	msgs: func(ctx context.Context, tx *store.Tx, nodes []store.DN) ([]*vdav1.Dn, error) {
		sts, err := tx.NodeStatuses(ctx)
		if err != nil {
			return nil, err
		}
		counts, err := tx.CountsBy(ctx, "pd")
		if err != nil {
			return nil, err
		}
		out := make([]*vdav1.Dn, len(nodes))
		for i, n := range nodes {
			out[i] = dnOf(n, sts[string(n.ID)], counts[string(n.ID)])
		}
		return out, nil
	},
}

func (s *Service) CreateDn(ctx context.Context, req *connect.Request[vdav1.CreateDnRequest]) (*connect.Response[vdav1.CreateDnResponse], error) {
	dn, t, err := dns.create(ctx, s.db, createDn{req.Msg})
	if err == nil {
		s.push(ctx, t)
	}
	return connect.NewResponse(&vdav1.CreateDnResponse{Dn: dn}), err
}

func (s *Service) DeleteDn(ctx context.Context, req *connect.Request[vdav1.DeleteDnRequest]) (*connect.Response[vdav1.DeleteDnResponse], error) {
	err := dns.delete(ctx, s.db, req.Msg.GetName(), req.Msg.Generation)
	return connect.NewResponse(&vdav1.DeleteDnResponse{}), err
}

func (s *Service) ModifyDn(ctx context.Context, req *connect.Request[vdav1.ModifyDnRequest]) (*connect.Response[vdav1.ModifyDnResponse], error) {
	dn, t, err := dns.modify(ctx, s.db, modifyDn{req.Msg}, req.Msg.Generation)
	if err == nil {
		s.push(ctx, t)
	}
	return connect.NewResponse(&vdav1.ModifyDnResponse{Dn: dn}), err
}

func (s *Service) GetDn(ctx context.Context, req *connect.Request[vdav1.GetDnRequest]) (*connect.Response[vdav1.GetDnResponse], error) {
	dn, err := dns.read(ctx, s.db, req.Msg.GetName())
	return connect.NewResponse(&vdav1.GetDnResponse{Dn: dn}), err
}

func (s *Service) ListDn(ctx context.Context, req *connect.Request[vdav1.ListDnRequest]) (*connect.Response[vdav1.ListDnResponse], error) {
	list, next, err := dns.page(ctx, s.db, req.Msg.GetPageSize(), req.Msg.GetPageToken())
	return connect.NewResponse(&vdav1.ListDnResponse{Dns: list, NextPageToken: next}), err
}

// ---- controller nodes ----

var cns = nodeKind[store.CN, *vdav1.Cn]{
	name:   "cn",
	spec:   func(n *store.CN) *store.NodeSpec { return &n.NodeSpec },
	id:     func(n *store.CN) string { return string(n.ID) },
	insert: (*store.Tx).InsertCN,
	get:    (*store.Tx).CN,
	list:   (*store.Tx).CNs,
	update: (*store.Tx).UpdateCN,
	remove: (*store.Tx).DeleteCN,
	dependents: func(ctx context.Context, tx *store.Tx, cn store.CN) (string, error) {
		cntlrs, err := tx.CntlrsOnCN(ctx, cn.ID)
		if err != nil || len(cntlrs) == 0 {
			return "", err
		}
		return fmt.Sprintf("holds %d controller(s); delete their arrays first", len(cntlrs)), nil
	},
	mark: func(t *touch, n *store.CN) { t.cns[n.ID] = true },
	// Secondaries reach their primary at the cn's listener.
	listenerMoved: func(ctx context.Context, t *touch, cn store.CN) error {
		mine, err := t.tx.CntlrsOnCN(ctx, cn.ID)
		if err != nil {
			return err
		}
		for _, m := range mine {
			if m.Primary {
				if err := t.arrayCNs(ctx, m.DAID); err != nil {
					return err
				}
			}
		}
		return nil
	},
	msgs: func(ctx context.Context, tx *store.Tx, nodes []store.CN) ([]*vdav1.Cn, error) {
		sts, err := tx.NodeStatuses(ctx)
		if err != nil {
			return nil, err
		}
		counts, err := tx.CountsBy(ctx, "cntlr")
		if err != nil {
			return nil, err
		}
		out := make([]*vdav1.Cn, len(nodes))
		for i, n := range nodes {
			out[i] = cnOf(n, sts[string(n.ID)], counts[string(n.ID)])
		}
		return out, nil
	},
}

func (s *Service) CreateCn(ctx context.Context, req *connect.Request[vdav1.CreateCnRequest]) (*connect.Response[vdav1.CreateCnResponse], error) {
	cn, t, err := cns.create(ctx, s.db, createCn{req.Msg})
	if err == nil {
		s.push(ctx, t)
	}
	return connect.NewResponse(&vdav1.CreateCnResponse{Cn: cn}), err
}

func (s *Service) DeleteCn(ctx context.Context, req *connect.Request[vdav1.DeleteCnRequest]) (*connect.Response[vdav1.DeleteCnResponse], error) {
	err := cns.delete(ctx, s.db, req.Msg.GetName(), req.Msg.Generation)
	return connect.NewResponse(&vdav1.DeleteCnResponse{}), err
}

func (s *Service) ModifyCn(ctx context.Context, req *connect.Request[vdav1.ModifyCnRequest]) (*connect.Response[vdav1.ModifyCnResponse], error) {
	cn, t, err := cns.modify(ctx, s.db, modifyCn{req.Msg}, req.Msg.Generation)
	if err == nil {
		s.push(ctx, t)
	}
	return connect.NewResponse(&vdav1.ModifyCnResponse{Cn: cn}), err
}

func (s *Service) GetCn(ctx context.Context, req *connect.Request[vdav1.GetCnRequest]) (*connect.Response[vdav1.GetCnResponse], error) {
	cn, err := cns.read(ctx, s.db, req.Msg.GetName())
	return connect.NewResponse(&vdav1.GetCnResponse{Cn: cn}), err
}

func (s *Service) ListCn(ctx context.Context, req *connect.Request[vdav1.ListCnRequest]) (*connect.Response[vdav1.ListCnResponse], error) {
	list, next, err := cns.page(ctx, s.db, req.Msg.GetPageSize(), req.Msg.GetPageToken())
	return connect.NewResponse(&vdav1.ListCnResponse{Cns: list, NextPageToken: next}), err
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

type createCn struct{ *vdav1.CreateCnRequest }

func (r createCn) HashCode() *uint32 { return r.CreateCnRequest.HashCode }

type modifyCn struct{ *vdav1.ModifyCnRequest }

func (r modifyCn) AgentAddr() *string   { return r.AgentAddress }
func (r modifyCn) Location() *string    { return r.ModifyCnRequest.Location }
func (r modifyCn) Offline() *bool       { return r.ModifyCnRequest.Offline }
func (r modifyCn) HashCode() *uint32    { return r.ModifyCnRequest.HashCode }
func (r modifyCn) Description() *string { return r.ModifyCnRequest.Description }
