package portal_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"

	vdav1 "github.com/virtual-disk-array/vda/proto/vda/v1"
	"github.com/virtual-disk-array/vda/store"
	"github.com/virtual-disk-array/vda/store/storetest"
)

func TestListNodeEvents(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		c := start(t, db)
		dn := mkDn(t, c, "d1", "")
		cn := mkCn(t, c, "c1", "")
		mkDn(t, c, "quiet", "")

		// Events are added out of time order, as several monitors might;
		// the log answers in time order all the same.
		base := time.UnixMilli(1_700_000_000_000)
		add := func(id string, minute int, from, to string) {
			require.NoError(t, db.Update(t.Context(), func(ctx context.Context, tx *store.Tx) error {
				return tx.AddNodeEvent(ctx, store.NodeEvent{
					NodeID: id, At: base.Add(time.Duration(minute) * time.Minute), From: from, To: to,
					Reason: fmt.Sprintf("reason at minute %d", minute), Monitor: "mon-a",
				})
			}))
		}
		ev := func(minute int, from, to string) *vdav1.NodeEvent {
			return &vdav1.NodeEvent{
				AtMs: base.Add(time.Duration(minute) * time.Minute).UnixMilli(), From: from, To: to,
				Reason: fmt.Sprintf("reason at minute %d", minute), Monitor: "mon-a",
			}
		}
		add(dn.GetId(), 2, "suspect", "failed")
		add(dn.GetId(), 0, "unknown", "alive")
		add(dn.GetId(), 3, "failed", "alive")
		add(dn.GetId(), 1, "alive", "suspect")
		add(cn.GetId(), 5, "failed", "failover")
		dnAll := []*vdav1.NodeEvent{ev(3, "failed", "alive"), ev(2, "suspect", "failed"), ev(1, "alive", "suspect"), ev(0, "unknown", "alive")}

		type list func(context.Context, *connect.Request[vdav1.ListNodeEventsRequest]) (*connect.Response[vdav1.ListNodeEventsResponse], error)
		tests := []struct {
			name string
			list list
			req  *vdav1.ListNodeEventsRequest
			want []*vdav1.NodeEvent
			code connect.Code
			msgs []string
		}{
			{name: "dn, newest first", list: c.ListDnEvents, req: &vdav1.ListNodeEventsRequest{Name: "d1"}, want: dnAll},
			{name: "limit", list: c.ListDnEvents, req: &vdav1.ListNodeEventsRequest{Name: "d1", Limit: 2}, want: dnAll[:2]},
			{name: "limit above the count", list: c.ListDnEvents, req: &vdav1.ListNodeEventsRequest{Name: "d1", Limit: 1000}, want: dnAll},
			{name: "cn", list: c.ListCnEvents, req: &vdav1.ListNodeEventsRequest{Name: "c1"}, want: []*vdav1.NodeEvent{ev(5, "failed", "failover")}},
			{name: "no events", list: c.ListDnEvents, req: &vdav1.ListNodeEventsRequest{Name: "quiet"}, want: nil},
			{name: "unknown dn", list: c.ListDnEvents, req: &vdav1.ListNodeEventsRequest{Name: "nope"},
				code: connect.CodeNotFound, msgs: []string{"dn nope"}},
			{name: "a cn is no dn", list: c.ListDnEvents, req: &vdav1.ListNodeEventsRequest{Name: "c1"},
				code: connect.CodeNotFound, msgs: []string{"dn c1"}},
			{name: "unknown cn", list: c.ListCnEvents, req: &vdav1.ListNodeEventsRequest{Name: "d1"},
				code: connect.CodeNotFound, msgs: []string{"cn d1"}},
			{name: "limit above 1000", list: c.ListDnEvents, req: &vdav1.ListNodeEventsRequest{Name: "d1", Limit: 1001},
				code: connect.CodeInvalidArgument, msgs: []string{"limit 1001 is above 1000"}},
			{name: "every problem at once", list: c.ListCnEvents, req: &vdav1.ListNodeEventsRequest{Name: "c 1", Limit: 5000},
				code: connect.CodeInvalidArgument, msgs: []string{`name "c 1"`, "limit 5000 is above 1000"}},
			{name: "no name", list: c.ListCnEvents, req: &vdav1.ListNodeEventsRequest{},
				code: connect.CodeInvalidArgument, msgs: []string{"name is empty"}},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				resp, err := do(t, tt.list, tt.req)
				if tt.code != 0 {
					requireCode(t, err, tt.code, tt.msgs...)
					return
				}
				require.NoError(t, err)
				got := resp.GetEvents()
				require.Len(t, got, len(tt.want))
				for i := range tt.want {
					assert.True(t, proto.Equal(tt.want[i], got[i]), "event %d: got %v, want %v", i, got[i], tt.want[i])
				}
			})
		}

		t.Run("limit 0 means 100", func(t *testing.T) {
			for i := range 105 {
				add(cn.GetId(), 10+i, "alive", "suspect")
			}
			got := must(t, c.ListCnEvents, &vdav1.ListNodeEventsRequest{Name: "c1"}).GetEvents()
			require.Len(t, got, 100)
			assert.Equal(t, base.Add(114*time.Minute).UnixMilli(), got[0].GetAtMs(), "the newest first")
			assert.Equal(t, base.Add(15*time.Minute).UnixMilli(), got[99].GetAtMs())
			assert.Len(t, must(t, c.ListCnEvents, &vdav1.ListNodeEventsRequest{Name: "c1", Limit: 1000}).GetEvents(), 106)
		})
	})
}
