package portal

import (
	"context"

	"connectrpc.com/connect"
	vdav1 "github.com/virtual-disk-array/vda/proto/vda/v1"
	"github.com/virtual-disk-array/vda/store"
)

const (
	defaultEventLimit = 100
	// maxEventLimit bounds one answer; the log has no pages, so a larger
	// limit is refused rather than quietly cut, which would hide that
	// older events exist.
	maxEventLimit = 1000
)

// events reads the newest limit events of the node named name, newest
// first.
func (k nodeKind[N, M]) events(ctx context.Context, db *store.DB, name string, limit uint32) ([]*vdav1.NodeEvent, error) {
	var c checks
	c.name("name", name)
	if limit > maxEventLimit {
		c.addf("limit %d is above %d", limit, maxEventLimit)
	}
	if err := c.err(); err != nil {
		return nil, err
	}
	n := int(limit)
	if n == 0 {
		n = defaultEventLimit
	}
	var out []*vdav1.NodeEvent
	err := db.View(ctx, func(ctx context.Context, tx *store.Tx) error {
		node, err := k.get(tx, ctx, name)
		if err != nil {
			return err
		}
		evs, err := tx.NodeEvents(ctx, k.id(&node), n)
		if err != nil {
			return err
		}
		out = make([]*vdav1.NodeEvent, len(evs))
		for i, e := range evs {
			out[i] = nodeEventOf(e)
		}
		return nil
	})
	return out, err
}

// ListDnEvents returns a dn's event log, newest first.
func (s *Service) ListDnEvents(ctx context.Context, req *connect.Request[vdav1.ListNodeEventsRequest]) (*connect.Response[vdav1.ListNodeEventsResponse], error) {
	evs, err := dns.events(ctx, s.db, req.Msg.GetName(), req.Msg.GetLimit())
	return connect.NewResponse(&vdav1.ListNodeEventsResponse{Events: evs}), err
}

// ListCnEvents returns a cn's event log, newest first.
func (s *Service) ListCnEvents(ctx context.Context, req *connect.Request[vdav1.ListNodeEventsRequest]) (*connect.Response[vdav1.ListNodeEventsResponse], error) {
	evs, err := cns.events(ctx, s.db, req.Msg.GetName(), req.Msg.GetLimit())
	return connect.NewResponse(&vdav1.ListNodeEventsResponse{Events: evs}), err
}
