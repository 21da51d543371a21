package portal_test

import (
	"context"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"

	"github.com/virtual-disk-array/vda"
	"github.com/virtual-disk-array/vda/portal"
	vdav1 "github.com/virtual-disk-array/vda/proto/vda/v1"
	"github.com/virtual-disk-array/vda/store"
	"github.com/virtual-disk-array/vda/store/storetest"
)

// setCnHealth records a cn's health as the monitor would: failed through
// FailNode, anything else as a report of its current generation.
func setCnHealth(t *testing.T, db *store.DB, name string, h store.Health) {
	t.Helper()
	require.NoError(t, db.Update(t.Context(), func(ctx context.Context, tx *store.Tx) error {
		cn, err := tx.CN(ctx, name)
		if err != nil {
			return err
		}
		if h == store.HealthFailed {
			_, err := tx.FailNode(ctx, string(cn.ID), "missed 3 heartbeats", time.Now())
			return err
		}
		return tx.PutCNStatus(ctx, cn.ID, store.NodeStatus{Health: h, Generation: cn.Generation, ReportedAt: time.Now()})
	}))
}

// roles maps each controller of da to its role, by cn name.
func roles(da *vdav1.Da) map[string]vdav1.CntlrRole {
	out := map[string]vdav1.CntlrRole{}
	for _, c := range da.GetCntlrs() {
		out[c.GetCnName()] = c.GetRole()
	}
	return out
}

// secondary returns da's first secondary controller.
func secondary(t *testing.T, da *vdav1.Da) *vdav1.Cntlr {
	t.Helper()
	for _, c := range da.GetCntlrs() {
		if c.GetRole() == vdav1.CntlrRole_CNTLR_ROLE_SECONDARY {
			return c
		}
	}
	t.Fatalf("da %s has no secondary", da.GetName())
	return nil
}

// arrayNodes are the nodes a change of da's primary bumps: the dns of its
// vds and the cns of its controllers, once each.
func arrayNodes(da *vdav1.Da) (dns, cns map[string]uint64) {
	dns, cns = map[string]uint64{}, map[string]uint64{}
	for _, vd := range da.GetVds() {
		dns[vd.GetDnName()] = 1
	}
	for _, c := range da.GetCntlrs() {
		cns[c.GetCnName()] = 1
	}
	return dns, cns
}

func TestChangePrimary(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		c := start(t, db)
		for _, dn := range []string{"d1", "d2", "d3"} {
			mkDn(t, c, dn, "")
			mkPd(t, c, dn, "p1", 1<<30)
		}
		for _, cn := range []string{"c1", "c2", "c3", "c4"} {
			mkCn(t, c, cn, "")
		}
		mkDa(t, c, "a1", 8<<20, 2, 2)
		a2 := mkDa(t, c, "a2", 4<<20, 1, 2)

		t.Run("a secondary becomes the primary", func(t *testing.T) {
			gens := readGenerations(t, c)
			before := getDa(t, c, "a1")
			oldPrimary, next := before.GetCntlrs()[0], secondary(t, before)
			require.Equal(t, vdav1.CntlrRole_CNTLR_ROLE_PRIMARY, oldPrimary.GetRole())

			got := must(t, c.ModifyDa, &vdav1.ModifyDaRequest{
				Name: "a1", Generation: ptr(before.GetGeneration()), PrimaryCntlrId: ptr(next.GetId()),
			}).GetDa()
			assert.Equal(t, map[string]vdav1.CntlrRole{
				next.GetCnName():       vdav1.CntlrRole_CNTLR_ROLE_PRIMARY,
				oldPrimary.GetCnName(): vdav1.CntlrRole_CNTLR_ROLE_SECONDARY,
			}, roles(got))
			assert.Equal(t, next.GetId(), got.GetCntlrs()[0].GetId(), "the primary comes first")
			assert.Equal(t, before.GetGeneration()+1, got.GetGeneration())
			assert.True(t, proto.Equal(got, getDa(t, c, "a1")), "GetDa shows what ModifyDa answered")

			dns, cns := gens.bumped(readGenerations(t, c))
			wantDns, wantCns := arrayNodes(before)
			assert.Len(t, wantDns, 2)
			assert.Len(t, wantCns, 2)
			assertBumped(t, dns, wantDns)
			assertBumped(t, cns, wantCns)
		})
		t.Run("the primary already: nothing changes", func(t *testing.T) {
			gens := readGenerations(t, c)
			before := getDa(t, c, "a1")
			got := must(t, c.ModifyDa, &vdav1.ModifyDaRequest{
				Name: "a1", Generation: ptr(before.GetGeneration()), PrimaryCntlrId: ptr(before.GetCntlrs()[0].GetId()),
			}).GetDa()
			assert.True(t, proto.Equal(before, got), "got %v\nwant %v", got, before)
			dns, cns := gens.bumped(readGenerations(t, c))
			assertBumped(t, dns, nil)
			assertBumped(t, cns, nil)
		})
		t.Run("back again, with a description", func(t *testing.T) {
			gens := readGenerations(t, c)
			before := getDa(t, c, "a1")
			next := secondary(t, before)
			got := must(t, c.ModifyDa, &vdav1.ModifyDaRequest{
				Name: "a1", PrimaryCntlrId: ptr(next.GetId()), Description: ptr("moved back"),
			}).GetDa()
			assert.Equal(t, vdav1.CntlrRole_CNTLR_ROLE_PRIMARY, roles(got)[next.GetCnName()])
			assert.Equal(t, "moved back", got.GetDescription())
			assert.Equal(t, before.GetGeneration()+2, got.GetGeneration(), "one generation per change")
			dns, cns := gens.bumped(readGenerations(t, c))
			wantDns, wantCns := arrayNodes(before)
			assertBumped(t, dns, wantDns)
			assertBumped(t, cns, wantCns)
		})
		t.Run("away from a failed cn", func(t *testing.T) {
			before := getDa(t, c, "a1")
			failed := before.GetCntlrs()[0].GetCnName()
			setCnHealth(t, db, failed, store.HealthFailed)
			defer setCnHealth(t, db, failed, store.HealthOK)
			next := secondary(t, before)
			got := must(t, c.ModifyDa, &vdav1.ModifyDaRequest{Name: "a1", PrimaryCntlrId: ptr(next.GetId())}).GetDa()
			assert.Equal(t, vdav1.CntlrRole_CNTLR_ROLE_PRIMARY, roles(got)[next.GetCnName()])
			assert.Equal(t, vdav1.CntlrRole_CNTLR_ROLE_SECONDARY, roles(got)[failed])
		})

		refusals := []struct {
			name  string
			setup func(t *testing.T, da *vdav1.Da) (req *vdav1.ModifyDaRequest, undo func())
			code  connect.Code
			want  []string
		}{
			{
				name: "unknown controller id",
				setup: func(t *testing.T, da *vdav1.Da) (*vdav1.ModifyDaRequest, func()) {
					return &vdav1.ModifyDaRequest{Name: "a1", PrimaryCntlrId: ptr("0123456789abcdef")}, nil
				},
				code: connect.CodeNotFound,
				want: []string{`da a1 has no controller "0123456789abcdef"`},
			},
			{
				name: "a controller of another array",
				setup: func(t *testing.T, da *vdav1.Da) (*vdav1.ModifyDaRequest, func()) {
					return &vdav1.ModifyDaRequest{Name: "a1", PrimaryCntlrId: ptr(secondary(t, getDa(t, c, "a2")).GetId())}, nil
				},
				code: connect.CodeNotFound,
				want: []string{"da a1 has no controller"},
			},
			{
				name: "empty id",
				setup: func(t *testing.T, da *vdav1.Da) (*vdav1.ModifyDaRequest, func()) {
					return &vdav1.ModifyDaRequest{Name: "a1", PrimaryCntlrId: ptr("")}, nil
				},
				code: connect.CodeInvalidArgument,
				want: []string{"primary_cntlr_id is empty"},
			},
			{
				name: "malformed id, with every other problem",
				setup: func(t *testing.T, da *vdav1.Da) (*vdav1.ModifyDaRequest, func()) {
					return &vdav1.ModifyDaRequest{Name: "a 1", PrimaryCntlrId: ptr("a b"), Description: ptr("nul\x00")}, nil
				},
				code: connect.CodeInvalidArgument,
				want: []string{`name "a 1"`, `primary_cntlr_id "a b" has a space or control character`, "NUL"},
			},
			{
				name: "unknown array",
				setup: func(t *testing.T, da *vdav1.Da) (*vdav1.ModifyDaRequest, func()) {
					return &vdav1.ModifyDaRequest{Name: "nope", PrimaryCntlrId: ptr(secondary(t, da).GetId())}, nil
				},
				code: connect.CodeNotFound,
				want: []string{"da nope"},
			},
			{
				name: "stale generation",
				setup: func(t *testing.T, da *vdav1.Da) (*vdav1.ModifyDaRequest, func()) {
					return &vdav1.ModifyDaRequest{
						Name: "a1", Generation: ptr(da.GetGeneration() - 1), PrimaryCntlrId: ptr(secondary(t, da).GetId()),
					}, nil
				},
				code: connect.CodeAborted,
				want: []string{"da a1 is at generation"},
			},
			{
				name: "the controller's cn failed",
				setup: func(t *testing.T, da *vdav1.Da) (*vdav1.ModifyDaRequest, func()) {
					next := secondary(t, da)
					setCnHealth(t, db, next.GetCnName(), store.HealthFailed)
					return &vdav1.ModifyDaRequest{Name: "a1", PrimaryCntlrId: ptr(next.GetId())},
						func() { setCnHealth(t, db, next.GetCnName(), store.HealthOK) }
				},
				code: connect.CodeFailedPrecondition,
				want: []string{"of da a1 is on cn c", "which has failed"},
			},
			{
				name: "the controller's cn offline",
				setup: func(t *testing.T, da *vdav1.Da) (*vdav1.ModifyDaRequest, func()) {
					next := secondary(t, da)
					must(t, c.ModifyCn, &vdav1.ModifyCnRequest{Name: next.GetCnName(), Offline: ptr(true)})
					return &vdav1.ModifyDaRequest{Name: "a1", PrimaryCntlrId: ptr(next.GetId())},
						func() { must(t, c.ModifyCn, &vdav1.ModifyCnRequest{Name: next.GetCnName(), Offline: ptr(false)}) }
				},
				code: connect.CodeFailedPrecondition,
				want: []string{"of da a1 is on cn c", "which is offline"},
			},
		}
		for _, tt := range refusals {
			t.Run(tt.name, func(t *testing.T) {
				before := getDa(t, c, "a1")
				req, undo := tt.setup(t, before)
				if undo != nil {
					defer undo()
				}
				gens := readGenerations(t, c)
				_, err := do(t, c.ModifyDa, req)
				requireCode(t, err, tt.code, tt.want...)
				assert.True(t, proto.Equal(before, getDa(t, c, "a1")), "a1 is untouched")
				dns, cns := gens.bumped(readGenerations(t, c))
				assertBumped(t, dns, nil)
				assertBumped(t, cns, nil)
			})
		}
		t.Run("the other array never moved", func(t *testing.T) {
			assert.True(t, proto.Equal(a2, getDa(t, c, "a2")))
		})
	})
}

// orderPusher records the order of pushes.
type orderPusher struct {
	mu     sync.Mutex
	pushed []string
}

func (p *orderPusher) add(what string) {
	p.mu.Lock()
	p.pushed = append(p.pushed, what)
	p.mu.Unlock()
}

func (p *orderPusher) take() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := p.pushed
	p.pushed = nil
	return out
}

func (p *orderPusher) PushDN(_ context.Context, id vda.DNID) (*vdav1.DnReport, error) {
	p.add("dn " + string(id))
	return &vdav1.DnReport{}, nil
}

func (p *orderPusher) PushCN(_ context.Context, id vda.CNID) (*vdav1.CnReport, error) {
	p.add("cn " + string(id))
	return &vdav1.CnReport{}, nil
}

// TestChangePrimaryPushOrder: after a change of primary the portal pushes
// every dn of the array's vds, and only then every cn of its controllers,
// so that the vds' fences move before the new primary attaches.
func TestChangePrimaryPushOrder(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		p := &orderPusher{}
		svc, err := portal.New(portal.Config{DB: db, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
			Pusher: p, PushWait: time.Minute})
		require.NoError(t, err)
		call := func(req *vdav1.ModifyDaRequest) *vdav1.Da {
			t.Helper()
			resp, err := svc.ModifyDa(t.Context(), connect.NewRequest(req))
			require.NoError(t, err)
			return resp.Msg.GetDa()
		}
		for _, n := range []string{"d1", "d2", "d3"} {
			_, err := svc.CreateDn(t.Context(), connect.NewRequest(&vdav1.CreateDnRequest{
				Name: n, AgentAddress: n + ":9720", Listener: tcp("10.0.0.1", 4420)}))
			require.NoError(t, err)
			_, err = svc.CreatePd(t.Context(), connect.NewRequest(&vdav1.CreatePdRequest{
				DnName: n, Name: "p1", Backend: &vdav1.CreatePdRequest_Malloc{Malloc: &vdav1.PdMalloc{Size: 1 << 30}}}))
			require.NoError(t, err)
		}
		for _, n := range []string{"c1", "c2", "c3"} {
			_, err := svc.CreateCn(t.Context(), connect.NewRequest(&vdav1.CreateCnRequest{
				Name: n, AgentAddress: n + ":9820", Listener: tcp("10.0.1.1", 4430)}))
			require.NoError(t, err)
		}
		resp, err := svc.CreateDa(t.Context(), connect.NewRequest(daReq("a1", 12<<20, 3, 3)))
		require.NoError(t, err)
		da := resp.Msg.GetDa()
		p.take()

		call(&vdav1.ModifyDaRequest{Name: "a1", PrimaryCntlrId: ptr(da.GetCntlrs()[2].GetId())})
		svc.Close()
		got := p.take()
		var wantDns, wantCns []string
		for _, vd := range da.GetVds() {
			dn, err := svc.GetDn(t.Context(), connect.NewRequest(&vdav1.GetDnRequest{Name: vd.GetDnName()}))
			require.NoError(t, err)
			wantDns = append(wantDns, "dn "+dn.Msg.GetDn().GetId())
		}
		for _, c := range da.GetCntlrs() {
			cn, err := svc.GetCn(t.Context(), connect.NewRequest(&vdav1.GetCnRequest{Name: c.GetCnName()}))
			require.NoError(t, err)
			wantCns = append(wantCns, "cn "+cn.Msg.GetCn().GetId())
		}
		require.Len(t, got, len(wantDns)+len(wantCns), "each node pushed once: %v", got)
		assert.ElementsMatch(t, wantDns, got[:len(wantDns)], "the dns first")
		assert.ElementsMatch(t, wantCns, got[len(wantDns):], "then the cns")

		// Nothing to change, nothing to push.
		call(&vdav1.ModifyDaRequest{Name: "a1", PrimaryCntlrId: ptr(da.GetCntlrs()[2].GetId())})
		svc.Close()
		assert.Empty(t, p.take())
	})
}

// TestChangePrimaryRace: calls that race to move the primary, each with
// the generation it read, behave as if they ran one after the other: one
// wins, the others see the array moved on, and every node is bumped once.
func TestChangePrimaryRace(t *testing.T) {
	t.Parallel()
	for _, b := range storetest.Backends() {
		t.Run(string(b.Dialect), func(t *testing.T) {
			t.Parallel()
			pa, pb := twoPortals(t, b)
			for _, n := range []string{"d1", "d2"} {
				mkDn(t, pa, n, "")
				mkPd(t, pa, n, "p1", 1<<30)
			}
			for _, n := range []string{"c1", "c2", "c3", "c4"} {
				mkCn(t, pa, n, "")
			}
			mkDa(t, pa, "a1", 8<<20, 2, 4)
			for round := range 5 {
				before := getDa(t, pa, "a1")
				gens := readGenerations(t, pa)
				secondaries := before.GetCntlrs()[1:]
				errs := race(2*len(secondaries), func(i int) error {
					p := []client{pa, pb}[i%2]
					_, err := do(t, p.ModifyDa, &vdav1.ModifyDaRequest{
						Name: "a1", Generation: ptr(before.GetGeneration()), PrimaryCntlrId: ptr(secondaries[i/2].GetId()),
					})
					return err
				})
				count, msg := codes(errs)
				assert.Equal(t, map[string]int{"ok": 1, "aborted": 2*len(secondaries) - 1}, count, "round %d: %v", round, msg)
				after := getDa(t, pa, "a1")
				assert.Equal(t, before.GetGeneration()+1, after.GetGeneration(), "round %d", round)
				primaries := 0
				for _, c := range after.GetCntlrs() {
					if c.GetRole() == vdav1.CntlrRole_CNTLR_ROLE_PRIMARY {
						primaries++
					}
				}
				assert.Equal(t, 1, primaries, "round %d", round)
				dns, cns := gens.bumped(readGenerations(t, pa))
				wantDns, wantCns := arrayNodes(before)
				assertBumped(t, dns, wantDns)
				assertBumped(t, cns, wantCns)
			}
		})
	}
}
