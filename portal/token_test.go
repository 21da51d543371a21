package portal_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"testing"

	"connectrpc.com/connect"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/virtual-disk-array/vda"
	"github.com/virtual-disk-array/vda/auth"
	"github.com/virtual-disk-array/vda/portal"
	"github.com/virtual-disk-array/vda/portal/portaltest"
	vdav1 "github.com/virtual-disk-array/vda/proto/vda/v1"
	"github.com/virtual-disk-array/vda/proto/vda/v1/vdav1connect"
	"github.com/virtual-disk-array/vda/store"
	"github.com/virtual-disk-array/vda/store/storetest"
)

func TestTokenLifecycle(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		t.Parallel()
		srv := portaltest.Start(t, db)
		admin := srv.Client()

		created := must(t, admin.CreateToken, &vdav1.CreateTokenRequest{Name: "ops", Role: vdav1.Role_ROLE_OPERATOR, Description: "the ops team"})
		tok, secret := created.GetToken(), created.GetSecret()
		id, _, err := auth.Parse(secret)
		require.NoError(t, err, "the secret is a bearer token")
		assert.Equal(t, "ops", tok.GetName())
		assert.Equal(t, vdav1.Role_ROLE_OPERATOR, tok.GetRole())
		assert.Equal(t, id, tok.GetId())
		assert.Equal(t, "the ops team", tok.GetDescription())
		assert.NotZero(t, tok.GetCreatedAtMs())

		ops := srv.ClientWithToken(secret)
		who := must(t, ops.WhoAmI, &vdav1.WhoAmIRequest{}).GetToken()
		assert.Equal(t, tok.GetName(), who.GetName())
		assert.Equal(t, tok.GetId(), who.GetId())
		assert.Equal(t, tok.GetRole(), who.GetRole())
		assert.Equal(t, tok.GetDescription(), who.GetDescription())
		_, err = do(t, ops.CreateToken, &vdav1.CreateTokenRequest{Name: "x", Role: vdav1.Role_ROLE_ADMIN})
		requireCode(t, err, connect.CodePermissionDenied, "it needs admin")

		t.Run("invalid requests", func(t *testing.T) {
			_, err := do(t, admin.CreateToken, &vdav1.CreateTokenRequest{})
			requireCode(t, err, connect.CodeInvalidArgument, "name is empty", "role is required")
			_, err = do(t, admin.CreateToken, &vdav1.CreateTokenRequest{Name: "bad name", Role: 7})
			requireCode(t, err, connect.CodeInvalidArgument, `name "bad name"`, "role 7 is not a known role")
			_, err = do(t, admin.DeleteToken, &vdav1.DeleteTokenRequest{})
			requireCode(t, err, connect.CodeInvalidArgument, "name is empty")
			_, err = do(t, admin.ListToken, &vdav1.ListTokenRequest{PageToken: "nope"})
			requireCode(t, err, connect.CodeInvalidArgument, "page_token")
		})
		t.Run("taken name", func(t *testing.T) {
			_, err := do(t, admin.CreateToken, &vdav1.CreateTokenRequest{Name: "ops", Role: vdav1.Role_ROLE_READ_ONLY})
			requireCode(t, err, connect.CodeAlreadyExists, "token ops")
		})
		t.Run("list by pages, without secrets", func(t *testing.T) {
			for i := range 4 {
				must(t, admin.CreateToken, &vdav1.CreateTokenRequest{Name: fmt.Sprintf("r%d", i), Role: vdav1.Role_ROLE_READ_ONLY})
			}
			var got []string
			next := ""
			for {
				resp := must(t, admin.ListToken, &vdav1.ListTokenRequest{PageSize: 2, PageToken: next})
				for _, tok := range resp.GetTokens() {
					got = append(got, tok.GetName())
					assert.NotEmpty(t, tok.GetId())
					assert.NotEqual(t, vdav1.Role_ROLE_UNSPECIFIED, tok.GetRole())
				}
				if next = resp.GetNextPageToken(); next == "" {
					break
				}
			}
			who := must(t, admin.WhoAmI, &vdav1.WhoAmIRequest{}).GetToken().GetName()
			assert.Equal(t, []string{"ops", who, "r0", "r1", "r2", "r3"}, got)
		})
		t.Run("delete revokes", func(t *testing.T) {
			must(t, admin.DeleteToken, &vdav1.DeleteTokenRequest{Name: "ops"})
			_, err := do(t, ops.WhoAmI, &vdav1.WhoAmIRequest{})
			requireCode(t, err, connect.CodeUnauthenticated, "invalid API token")
			_, err = do(t, admin.DeleteToken, &vdav1.DeleteTokenRequest{Name: "ops"})
			requireCode(t, err, connect.CodeNotFound, "token ops")
		})
		t.Run("the last admin token stays", func(t *testing.T) {
			who := must(t, admin.WhoAmI, &vdav1.WhoAmIRequest{}).GetToken().GetName()
			_, err := do(t, admin.DeleteToken, &vdav1.DeleteTokenRequest{Name: who})
			requireCode(t, err, connect.CodeFailedPrecondition, "last admin token")
			second := must(t, admin.CreateToken, &vdav1.CreateTokenRequest{Name: "admin2", Role: vdav1.Role_ROLE_ADMIN}).GetSecret()
			must(t, admin.DeleteToken, &vdav1.DeleteTokenRequest{Name: who})
			_, err = do(t, srv.ClientWithToken(second).DeleteToken, &vdav1.DeleteTokenRequest{Name: "admin2"})
			requireCode(t, err, connect.CodeFailedPrecondition, "last admin token")

			// Two admins deleting each other at once: one wins, one admin
			// stays, on every store (the admin rows are locked).
			cur, curName := second, "admin2"
			for round := range 5 {
				name := fmt.Sprintf("race%d", round)
				other := must(t, srv.ClientWithToken(cur).CreateToken, &vdav1.CreateTokenRequest{Name: name, Role: vdav1.Role_ROLE_ADMIN}).GetSecret()
				var wg sync.WaitGroup
				errs := make([]error, 2)
				for i, tc := range []struct{ token, victim string }{{cur, name}, {other, curName}} {
					wg.Go(func() {
						_, errs[i] = do(t, srv.ClientWithToken(tc.token).DeleteToken, &vdav1.DeleteTokenRequest{Name: tc.victim})
					})
				}
				wg.Wait()
				ok := 0
				for _, err := range errs {
					if err == nil {
						ok++
					}
				}
				require.Equal(t, 1, ok, "round %d: exactly one delete wins: %v", round, errs)
				if errs[0] == nil { // cur deleted the new one
					continue
				}
				cur, curName = other, name
			}
			left := must(t, srv.ClientWithToken(cur).ListToken, &vdav1.ListTokenRequest{})
			admins := 0
			for _, tok := range left.GetTokens() {
				if tok.GetRole() == vdav1.Role_ROLE_ADMIN {
					admins++
				}
			}
			assert.Equal(t, 1, admins)
		})
	})
}

// forcePusher records forced pushes and answers with a fixed report or
// error.
type forcePusher struct {
	mu     sync.Mutex
	pushes []string
	err    error
}

func (p *forcePusher) record(what string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.pushes = append(p.pushes, what)
}

func (p *forcePusher) PushDN(ctx context.Context, id vda.DNID) (*vdav1.DnReport, error) {
	return p.PushDNForce(ctx, id, false)
}

func (p *forcePusher) PushCN(ctx context.Context, id vda.CNID) (*vdav1.CnReport, error) {
	return p.PushCNForce(ctx, id, false)
}

func (p *forcePusher) PushDNForce(_ context.Context, id vda.DNID, force bool) (*vdav1.DnReport, error) {
	p.record(fmt.Sprintf("dn %s force=%v", id, force))
	if p.err != nil {
		return nil, p.err
	}
	return &vdav1.DnReport{Error: "dn report"}, nil
}

func (p *forcePusher) PushCNForce(_ context.Context, id vda.CNID, force bool) (*vdav1.CnReport, error) {
	p.record(fmt.Sprintf("cn %s force=%v", id, force))
	if p.err != nil {
		return nil, p.err
	}
	return &vdav1.CnReport{Error: "cn report"}, nil
}

// plainPusher cannot force.
type plainPusher struct{}

func (plainPusher) PushDN(context.Context, vda.DNID) (*vdav1.DnReport, error) {
	return &vdav1.DnReport{}, nil
}
func (plainPusher) PushCN(context.Context, vda.CNID) (*vdav1.CnReport, error) {
	return &vdav1.CnReport{}, nil
}

// withPusher serves a portal over db with pusher and returns an admin
// client.
func withPusher(t *testing.T, db *store.DB, pusher portal.Pusher, admin string) client {
	t.Helper()
	svc, err := portal.New(portal.Config{DB: db, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Pusher: pusher})
	require.NoError(t, err)
	h, err := portal.NewHandler(svc, portal.HandlerConfig{})
	require.NoError(t, err)
	return vdav1connect.NewPortalServiceClient(http.DefaultClient, serveHandler(t, h),
		portaltest.WithToken(portaltest.AddToken(t, db, admin, auth.Admin)))
}

func TestSyncup(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		t.Parallel()
		t.Run("without a pusher", func(t *testing.T) {
			for i, p := range []portal.Pusher{nil, plainPusher{}} {
				c := withPusher(t, db, p, fmt.Sprintf("admin%d", i))
				_, err := do(t, c.SyncupDn, &vdav1.SyncupDnRequest{Name: "dn1"})
				requireCode(t, err, connect.CodeFailedPrecondition, "this portal does not push (--no-push)")
				_, err = do(t, c.SyncupCn, &vdav1.SyncupCnRequest{Name: "cn1"})
				requireCode(t, err, connect.CodeFailedPrecondition, "this portal does not push (--no-push)")
			}
		})
		p := &forcePusher{}
		c := withPusher(t, db, p, "admin")
		dn, cn := mkDn(t, c, "dn1", ""), mkCn(t, c, "cn1", "")
		p.mu.Lock()
		p.pushes = nil // the creations' own pushes
		p.mu.Unlock()

		t.Run("pushes with the force flag and returns the report", func(t *testing.T) {
			rep := must(t, c.SyncupDn, &vdav1.SyncupDnRequest{Name: "dn1", Force: true}).GetReport()
			assert.Equal(t, "dn report", rep.GetError())
			crep := must(t, c.SyncupCn, &vdav1.SyncupCnRequest{Name: "cn1"}).GetReport()
			assert.Equal(t, "cn report", crep.GetError())
			p.mu.Lock()
			defer p.mu.Unlock()
			assert.Equal(t, []string{"dn " + dn.GetId() + " force=true", "cn " + cn.GetId() + " force=false"}, p.pushes)
		})
		t.Run("bad requests", func(t *testing.T) {
			_, err := do(t, c.SyncupDn, &vdav1.SyncupDnRequest{})
			requireCode(t, err, connect.CodeInvalidArgument, "name is empty")
			_, err = do(t, c.SyncupDn, &vdav1.SyncupDnRequest{Name: "cn1"})
			requireCode(t, err, connect.CodeNotFound, "dn cn1")
			_, err = do(t, c.SyncupCn, &vdav1.SyncupCnRequest{Name: "nope"})
			requireCode(t, err, connect.CodeNotFound, "cn nope")
		})
		t.Run("the agent's code is kept", func(t *testing.T) {
			p.err = fmt.Errorf("syncup dn dn1 at x: %w", connect.NewError(connect.CodeFailedPrecondition, errors.New("would delete 9 of 10 objects; pass force")))
			_, err := do(t, c.SyncupDn, &vdav1.SyncupDnRequest{Name: "dn1"})
			requireCode(t, err, connect.CodeFailedPrecondition, "syncup dn dn1", "would delete 9 of 10 objects")
			p.err = fmt.Errorf("read cn: %w", vda.ErrStaleGeneration)
			_, err = do(t, c.SyncupCn, &vdav1.SyncupCnRequest{Name: "cn1"})
			requireCode(t, err, connect.CodeAborted, "syncup cn cn1")
		})
	})
}
