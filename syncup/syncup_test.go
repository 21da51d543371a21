package syncup_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"connectrpc.com/connect"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/virtual-disk-array/vda"
	vdav1 "github.com/virtual-disk-array/vda/proto/vda/v1"
	"github.com/virtual-disk-array/vda/proto/vda/v1/vdav1connect"
	"github.com/virtual-disk-array/vda/store"
	"github.com/virtual-disk-array/vda/store/storetest"
	"github.com/virtual-disk-array/vda/syncup"
)

// stubDN is an agent that answers every syncup OK for the generation it
// was sent, after running during(): what a slow agent looks like.
type stubDN struct {
	vdav1connect.UnimplementedDnAgentServiceHandler
	during func()
	got    []*vdav1.DnDesired
}

func (s *stubDN) Syncup(_ context.Context, req *connect.Request[vdav1.DnSyncupRequest]) (*connect.Response[vdav1.DnSyncupResponse], error) {
	s.got = append(s.got, req.Msg.GetDesired())
	if s.during != nil {
		s.during()
	}
	d := req.Msg.GetDesired()
	rep := &vdav1.DnReport{Generation: d.GetGeneration()}
	for _, pd := range d.GetPds() {
		rep.Pds = append(rep.Pds, &vdav1.PdReport{Id: pd.GetId(), Capacity: 100 << 20, Free: 90 << 20})
	}
	return connect.NewResponse(&vdav1.DnSyncupResponse{Report: rep}), nil
}

func TestPushRecordsOnlyCurrentGeneration(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		stub := &stubDN{}
		mux := http.NewServeMux()
		mux.Handle(vdav1connect.NewDnAgentServiceHandler(stub))
		srv := httptest.NewServer(mux)
		t.Cleanup(srv.Close)
		dn := store.DN{NodeSpec: store.NodeSpec{Name: "dn1", AgentAddr: strings.TrimPrefix(srv.URL, "http://"),
			Listener: store.Listener{TrType: "tcp", AdrFam: "ipv4", TrAddr: "127.0.0.1", TrSvcID: "4420"}}}
		require.NoError(t, db.Update(ctx, func(ctx context.Context, tx *store.Tx) error {
			if err := tx.InsertDN(ctx, &dn); err != nil {
				return err
			}
			return tx.InsertPD(ctx, &store.PD{DNID: dn.ID, Name: "pd1", Kind: store.PDMalloc, Size: 128 << 20})
		}))
		p, err := syncup.New(syncup.Config{DB: db, Logger: quiet()})
		require.NoError(t, err)

		rep, err := p.PushDN(ctx, dn.ID)
		require.NoError(t, err)
		require.Len(t, stub.got, 1)
		assert.Equal(t, string(dn.ID), stub.got[0].GetDnId())
		assert.Len(t, stub.got[0].GetPds(), 1)
		status := func() (store.NodeStatus, store.PDStatus) {
			var ns store.NodeStatus
			var ps store.PDStatus
			require.NoError(t, db.View(ctx, func(ctx context.Context, tx *store.Tx) (err error) {
				if ns, err = tx.DNStatus(ctx, dn.ID); err != nil {
					return err
				}
				pds, err := tx.PDs(ctx, dn.ID, store.Page{})
				if err != nil {
					return err
				}
				ps, err = tx.PDStatus(ctx, pds[0].ID)
				return err
			}))
			return ns, ps
		}
		ns, ps := status()
		assert.Equal(t, store.HealthOK, ns.Health)
		assert.Equal(t, rep.GetGeneration(), ns.AppliedGeneration)
		assert.EqualValues(t, 100<<20, ps.Capacity)

		// The dn changes while the agent works on the old state: its late
		// answer must not be recorded.
		stub.during = func() {
			require.NoError(t, db.Update(ctx, func(ctx context.Context, tx *store.Tx) error {
				d, err := tx.DN(ctx, "dn1")
				if err != nil {
					return err
				}
				_, err = tx.TouchDN(ctx, d.ID, d.Generation)
				return err
			}))
		}
		_, err = p.PushDN(ctx, dn.ID)
		require.ErrorIs(t, err, vda.ErrStaleGeneration)
		assert.True(t, syncup.IsStale(err))
		after, _ := status()
		assert.Equal(t, ns, after, "nothing of the stale report was written")
	})
}

func TestPushUnreachableAgent(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		cn := store.CN{NodeSpec: store.NodeSpec{Name: "cn1", AgentAddr: "127.0.0.1:1",
			Listener: store.Listener{TrType: "tcp", AdrFam: "ipv4", TrAddr: "127.0.0.1", TrSvcID: "4430"}}}
		require.NoError(t, db.Update(ctx, func(ctx context.Context, tx *store.Tx) error { return tx.InsertCN(ctx, &cn) }))
		p, err := syncup.New(syncup.Config{DB: db, Logger: quiet()})
		require.NoError(t, err)
		_, err = p.PushCN(ctx, cn.ID)
		require.Error(t, err)
		assert.Equal(t, connect.CodeUnavailable, connect.CodeOf(err))
		assert.False(t, syncup.IsStale(err))
		_, err = p.PushCN(ctx, "nope")
		require.ErrorIs(t, err, vda.ErrNotFound)
	})
}
