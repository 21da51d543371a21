package portal

import (
	"context"
	"errors"
	"fmt"

	"connectrpc.com/connect"
	"github.com/virtual-disk-array/vda"
	"github.com/virtual-disk-array/vda/auth"
	vdav1 "github.com/virtual-disk-array/vda/proto/vda/v1"
	"github.com/virtual-disk-array/vda/store"
)

// API tokens: the store keeps each token's public id, name, role and the
// hash of its secret; CreateToken shows the secret once. The calls that
// check tokens are in package auth; NewHandler wires them to the store.

// checkCreateToken validates a CreateToken request and returns its role.
func checkCreateToken(m *vdav1.CreateTokenRequest) (auth.Role, error) {
	var c checks
	c.name("name", m.GetName())
	role, err := auth.RoleOf(m.GetRole())
	c.add(err)
	c.description(m.GetDescription())
	return role, c.err()
}

func (s *Service) CreateToken(ctx context.Context, req *connect.Request[vdav1.CreateTokenRequest]) (*connect.Response[vdav1.CreateTokenResponse], error) {
	m := req.Msg
	role, err := checkCreateToken(m)
	if err != nil {
		return nil, err
	}
	bearer, id, hash := auth.NewToken()
	tok := store.Token{ID: id, Name: m.GetName(), Role: role.String(), Hash: hash, Description: m.GetDescription()}
	err = s.db.Update(ctx, func(ctx context.Context, tx *store.Tx) error {
		if _, err := tx.Token(ctx, tok.Name); err == nil {
			return fmt.Errorf("token %s: %w", tok.Name, vda.ErrAlreadyExists)
		} else if !isNotFound(err) {
			return err
		}
		return tx.CreateToken(ctx, &tok)
	})
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&vdav1.CreateTokenResponse{Token: tokenOf(tok), Secret: bearer}), nil
}

func (s *Service) DeleteToken(ctx context.Context, req *connect.Request[vdav1.DeleteTokenRequest]) (*connect.Response[vdav1.DeleteTokenResponse], error) {
	name := req.Msg.GetName()
	if err := vda.ValidateName("name", name); err != nil {
		return nil, err
	}
	err := s.db.Update(ctx, func(ctx context.Context, tx *store.Tx) error {
		tok, err := tx.Token(ctx, name)
		if err != nil {
			return err
		}
		if tok.Role == auth.Admin.String() {
			// Locked, so that two admins deleting each other at once
			// cannot both see the other one left.
			n, err := tx.CountTokensForUpdate(ctx, tok.Role)
			if err != nil {
				return err
			}
			if n <= 1 {
				return fmt.Errorf("token %s is the last admin token; create another first: %w", name, vda.ErrFailedPrecondition)
			}
		}
		return tx.DeleteToken(ctx, name)
	})
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&vdav1.DeleteTokenResponse{}), nil
}

func (s *Service) ListToken(ctx context.Context, req *connect.Request[vdav1.ListTokenRequest]) (*connect.Response[vdav1.ListTokenResponse], error) {
	p, n, err := pageOf("token", req.Msg.GetPageSize(), req.Msg.GetPageToken())
	if err != nil {
		return nil, err
	}
	var toks []store.Token
	if err := s.db.View(ctx, func(ctx context.Context, tx *store.Tx) error {
		toks, err = tx.ListTokens(ctx, p)
		return err
	}); err != nil {
		return nil, err
	}
	toks, next := nextToken("token", toks, n, func(t store.Token) string { return t.Name })
	out := make([]*vdav1.Token, len(toks))
	for i, t := range toks {
		out[i] = tokenOf(t)
	}
	return connect.NewResponse(&vdav1.ListTokenResponse{Tokens: out, NextPageToken: next}), nil
}

// WhoAmI answers with the caller's own token, as the auth interceptor
// put it in the context (an insecure portal's callers are all one admin
// without an id).
func (s *Service) WhoAmI(ctx context.Context, req *connect.Request[vdav1.WhoAmIRequest]) (*connect.Response[vdav1.WhoAmIResponse], error) {
	caller, ok := auth.CallerFrom(ctx)
	if !ok {
		return nil, connect.NewError(connect.CodeUnauthenticated, errors.New("the call carries no authenticated caller"))
	}
	out := &vdav1.WhoAmIResponse{Token: &vdav1.Token{Name: caller.Name, Role: caller.Role.Proto(), Id: caller.ID}}
	if caller.ID == "" {
		return connect.NewResponse(out), nil
	}
	var tok store.Token
	err := s.db.View(ctx, func(ctx context.Context, tx *store.Tx) error {
		var err error
		tok, err = tx.TokenByID(ctx, caller.ID)
		return err
	})
	switch {
	case err == nil:
		out.Token = tokenOf(tok)
	case !isNotFound(err):
		return nil, err
	}
	// A token deleted since the call was authorized: what the call knew.
	return connect.NewResponse(out), nil
}

// tokenOf describes a stored token, without its hash.
func tokenOf(t store.Token) *vdav1.Token {
	role, _ := auth.ParseRole(t.Role)
	return &vdav1.Token{Name: t.Name, Role: role.Proto(), Id: t.ID, Description: t.Description, CreatedAtMs: msOf(t.CreatedAt)}
}

// ForcePusher is a Pusher that can also set the syncup's force flag, which
// lets an agent apply a desired state that deletes more of its objects at
// once than its safety share allows; *syncup.Pusher is one. SyncupDn and
// SyncupCn need it.
type ForcePusher interface {
	PushDNForce(ctx context.Context, id vda.DNID, force bool) (*vdav1.DnReport, error)
	PushCNForce(ctx context.Context, id vda.CNID, force bool) (*vdav1.CnReport, error)
}

// forcePusher returns the service's pusher if it can force.
func (s *Service) forcePusher() (ForcePusher, error) {
	if fp, ok := s.pusher.(ForcePusher); ok {
		return fp, nil
	}
	return nil, connect.NewError(connect.CodeFailedPrecondition, errors.New("this portal does not push (--no-push)"))
}

func (s *Service) SyncupDn(ctx context.Context, req *connect.Request[vdav1.SyncupDnRequest]) (*connect.Response[vdav1.SyncupDnResponse], error) {
	rep, err := syncupNode(ctx, s, "dn", req.Msg.GetName(), req.Msg.GetForce(),
		func(ctx context.Context, tx *store.Tx, name string) (vda.DNID, error) {
			dn, err := tx.DN(ctx, name)
			return dn.ID, err
		},
		func(fp ForcePusher) func(context.Context, vda.DNID, bool) (*vdav1.DnReport, error) {
			return fp.PushDNForce
		})
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&vdav1.SyncupDnResponse{Report: rep}), nil
}

func (s *Service) SyncupCn(ctx context.Context, req *connect.Request[vdav1.SyncupCnRequest]) (*connect.Response[vdav1.SyncupCnResponse], error) {
	rep, err := syncupNode(ctx, s, "cn", req.Msg.GetName(), req.Msg.GetForce(),
		func(ctx context.Context, tx *store.Tx, name string) (vda.CNID, error) {
			cn, err := tx.CN(ctx, name)
			return cn.ID, err
		},
		func(fp ForcePusher) func(context.Context, vda.CNID, bool) (*vdav1.CnReport, error) {
			return fp.PushCNForce
		})
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&vdav1.SyncupCnResponse{Report: rep}), nil
}

// syncupNode is SyncupDn and SyncupCn: find the node by name, then push
// its desired state with the force flag and return the agent's report.
func syncupNode[ID any, R any](ctx context.Context, s *Service, kind, name string, force bool,
	lookup func(context.Context, *store.Tx, string) (ID, error),
	pushOf func(ForcePusher) func(context.Context, ID, bool) (R, error),
) (R, error) {
	var zero R
	if err := vda.ValidateName("name", name); err != nil {
		return zero, err
	}
	fp, err := s.forcePusher()
	if err != nil {
		return zero, err
	}
	var id ID
	if err := s.db.View(ctx, func(ctx context.Context, tx *store.Tx) error {
		id, err = lookup(ctx, tx, name)
		return err
	}); err != nil {
		return zero, err
	}
	s.log.InfoContext(ctx, "syncup requested", "kind", kind, "name", name, "force", force, "caller", callerName(ctx))
	rep, err := pushOf(fp)(ctx, id, force)
	if err != nil {
		return zero, pushError(kind, name, err)
	}
	return rep, nil
}

// pushError is a forced syncup's failure as the client sees it: the
// agent's (or the transport's) Connect code with its message, or the
// service's usual mapping of the root package's sentinels.
func pushError(kind, name string, err error) error {
	var ce *connect.Error
	if errors.As(err, &ce) {
		return connect.NewError(ce.Code(), fmt.Errorf("syncup %s %s: %s", kind, name, ce.Message()))
	}
	return fmt.Errorf("syncup %s %s: %w", kind, name, err)
}

// callerName names the caller for a log line.
func callerName(ctx context.Context) string {
	if c, ok := auth.CallerFrom(ctx); ok {
		return c.Name
	}
	return "anonymous"
}
