package portal_test

import (
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

func TestCreateCn(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		c := start(t, db)
		before := time.Now().Add(-time.Second).UnixMilli()
		req := cnCreate(validNode())
		req.HashCode = ptr[uint32](12)
		got := must(t, c.CreateCn, req).GetCn()
		after := time.Now().Add(time.Second).UnixMilli()

		assert.Regexp(t, idRE, got.GetId())
		assert.Equal(t, "n1", got.GetName())
		assert.Equal(t, "node1.example.com:9720", got.GetAgentAddress())
		assert.True(t, proto.Equal(tcp("192.168.1.10", 4420), got.GetListener()), "listener %v", got.GetListener())
		assert.Equal(t, "rack-1", got.GetLocation())
		assert.False(t, got.GetOffline())
		assert.Equal(t, uint32(12), got.GetHashCode())
		assert.Equal(t, "first node", got.GetDescription())
		assert.Equal(t, uint64(1), got.GetGeneration())
		assert.Equal(t, vdav1.Health_HEALTH_UNKNOWN, got.GetStatus().GetHealth())
		assert.GreaterOrEqual(t, got.GetCreatedAtMs(), before)
		assert.LessOrEqual(t, got.GetCreatedAtMs(), after)
		assert.Zero(t, got.GetCntlrCount())

		assert.True(t, proto.Equal(got, getCn(t, c, "n1")), "GetCn differs from CreateCn")
		list := must(t, c.ListCn, &vdav1.ListCnRequest{}).GetCns()
		require.Len(t, list, 1)
		assert.True(t, proto.Equal(got, list[0]), "ListCn differs from CreateCn")
		assert.Empty(t, must(t, c.ListDn, &vdav1.ListDnRequest{}).GetDns(), "a cn is not a dn")

		t.Run("ipv6 listener", func(t *testing.T) {
			r := cnCreate(validNode())
			r.Name = "v6"
			r.Listener = &vdav1.NvmfListener{Traddr: "::1", Trsvcid: "1"}
			got := must(t, c.CreateCn, r).GetCn()
			assert.True(t, proto.Equal(&vdav1.NvmfListener{Trtype: "tcp", Adrfam: "ipv6", Traddr: "::1", Trsvcid: "1"}, got.GetListener()))
		})
	})
}

func TestCreateCnInvalid(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		c := start(t, db)
		for _, tt := range nodeCreateInvalid {
			t.Run(tt.name, func(t *testing.T) {
				r := validNode()
				r.Listener = proto.Clone(r.Listener).(*vdav1.NvmfListener)
				tt.spoil(r)
				_, err := do(t, c.CreateCn, cnCreate(r))
				requireCode(t, err, connect.CodeInvalidArgument, tt.want...)
			})
		}
		t.Run("nothing was created", func(t *testing.T) {
			assert.Empty(t, must(t, c.ListCn, &vdav1.ListCnRequest{}).GetCns())
		})
	})
}

func TestCnAlreadyExists(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		c := start(t, db)
		first := mkCn(t, c, "c1", "")
		_, err := do(t, c.CreateCn, &vdav1.CreateCnRequest{Name: "c1", AgentAddress: "x:1", Listener: tcp("10.9.9.9", 1)})
		requireCode(t, err, connect.CodeAlreadyExists, "cn c1")
		assert.True(t, proto.Equal(first, getCn(t, c, "c1")), "the first cn is untouched")
		mkDn(t, c, "c1", "") // names are per kind
	})
}

func TestCnNotFound(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		c := start(t, db)
		mkDn(t, c, "nope", "") // a dn of that name is not a cn
		_, err := do(t, c.GetCn, &vdav1.GetCnRequest{Name: "nope"})
		requireCode(t, err, connect.CodeNotFound, "cn nope")
		_, err = do(t, c.ModifyCn, &vdav1.ModifyCnRequest{Name: "nope", Offline: ptr(true)})
		requireCode(t, err, connect.CodeNotFound, "cn nope")
		_, err = do(t, c.DeleteCn, &vdav1.DeleteCnRequest{Name: "nope"})
		requireCode(t, err, connect.CodeNotFound, "cn nope")
		_, err = do(t, c.GetCn, &vdav1.GetCnRequest{Name: "-x"})
		requireCode(t, err, connect.CodeInvalidArgument, `name "-x"`)
		_, err = do(t, c.DeleteCn, &vdav1.DeleteCnRequest{Name: ""})
		requireCode(t, err, connect.CodeInvalidArgument, "name is empty")
		assert.False(t, getDn(t, c, "nope").GetOffline(), "the dn is untouched")
	})
}

func TestModifyCn(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		c := start(t, db)
		orig := must(t, c.CreateCn, cnCreate(validNode())).GetCn()

		t.Run("absent fields keep their values", func(t *testing.T) {
			got := must(t, c.ModifyCn, &vdav1.ModifyCnRequest{Name: "n1", Location: ptr("rack-9")}).GetCn()
			want := proto.Clone(orig).(*vdav1.Cn)
			want.Location = "rack-9"
			want.Generation = 2
			assert.True(t, proto.Equal(want, got), "got %v\nwant %v", got, want)
			assert.True(t, proto.Equal(want, getCn(t, c, "n1")))
		})
		t.Run("every field", func(t *testing.T) {
			got := must(t, c.ModifyCn, &vdav1.ModifyCnRequest{
				Name: "n1", Generation: ptr[uint64](2), AgentAddress: ptr("cn1:1"), Listener: tcp("10.5.5.5", 4500),
				Location: ptr(""), Offline: ptr(true), HashCode: ptr[uint32](65535), Description: ptr("d"),
			}).GetCn()
			assert.Equal(t, "cn1:1", got.GetAgentAddress())
			assert.True(t, proto.Equal(tcp("10.5.5.5", 4500), got.GetListener()))
			assert.Empty(t, got.GetLocation())
			assert.True(t, got.GetOffline())
			assert.Equal(t, uint32(65535), got.GetHashCode())
			assert.Equal(t, "d", got.GetDescription())
			assert.Equal(t, uint64(3), got.GetGeneration())
			assert.True(t, proto.Equal(got, getCn(t, c, "n1")))
		})
		t.Run("wrong generation", func(t *testing.T) {
			before := getCn(t, c, "n1")
			_, err := do(t, c.ModifyCn, &vdav1.ModifyCnRequest{Name: "n1", Generation: ptr[uint64](99), Offline: ptr(false)})
			requireCode(t, err, connect.CodeAborted, "cn n1 is at generation 3, not 99")
			assert.True(t, proto.Equal(before, getCn(t, c, "n1")), "nothing changed")
		})
		for _, tt := range nodeModifyInvalid {
			t.Run(tt.name, func(t *testing.T) {
				before := getCn(t, c, "n1")
				_, err := do(t, c.ModifyCn, cnModify(tt.req))
				requireCode(t, err, connect.CodeInvalidArgument, tt.want...)
				assert.True(t, proto.Equal(before, getCn(t, c, "n1")), "nothing changed")
			})
		}
	})
}

func TestDeleteCn(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		c := start(t, db)
		mkCn(t, c, "c1", "")
		mkDn(t, c, "d1", "")
		mkPd(t, c, "d1", "p1", 1<<30)
		mkDa(t, c, "a1", 64<<20, 1, 1)
		mkCn(t, c, "c2", "")
		assert.Equal(t, uint32(1), getCn(t, c, "c1").GetCntlrCount())

		t.Run("a cn with controllers", func(t *testing.T) {
			_, err := do(t, c.DeleteCn, &vdav1.DeleteCnRequest{Name: "c1"})
			requireCode(t, err, connect.CodeFailedPrecondition, "cn c1 still holds 1 controller(s); delete their arrays first")
			getCn(t, c, "c1")
		})
		t.Run("wrong generation", func(t *testing.T) {
			_, err := do(t, c.DeleteCn, &vdav1.DeleteCnRequest{Name: "c2", Generation: ptr[uint64](7)})
			requireCode(t, err, connect.CodeAborted, "cn c2 is at generation 1, not 7")
			getCn(t, c, "c2")
		})
		t.Run("ok", func(t *testing.T) {
			must(t, c.DeleteCn, &vdav1.DeleteCnRequest{Name: "c2", Generation: ptr[uint64](1)})
			_, err := do(t, c.GetCn, &vdav1.GetCnRequest{Name: "c2"})
			requireCode(t, err, connect.CodeNotFound, "cn c2")
		})
		t.Run("after its arrays are gone", func(t *testing.T) {
			must(t, c.DeleteDa, &vdav1.DeleteDaRequest{Name: "a1"})
			assert.Zero(t, getCn(t, c, "c1").GetCntlrCount())
			must(t, c.DeleteCn, &vdav1.DeleteCnRequest{Name: "c1"})
			assert.Empty(t, must(t, c.ListCn, &vdav1.ListCnRequest{}).GetCns())
		})
	})
}

// TestModifyCnListener: secondaries connect to their primary's cn, so
// changing a cn's listener bumps the cns holding the secondaries of arrays
// whose primary is on it; changing a secondary's cn bumps only that cn.
func TestModifyCnListener(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		c := start(t, db)
		mkDn(t, c, "d1", "")
		mkPd(t, c, "d1", "p1", 1<<30)
		for _, cn := range []string{"c1", "c2", "c3", "c4"} {
			mkCn(t, c, cn, "")
		}
		a1 := mkDa(t, c, "a1", 64<<20, 1, 3)
		var roles []vdav1.CntlrRole
		for _, cn := range a1.GetCntlrs() {
			roles = append(roles, cn.GetRole())
		}
		require.Equal(t, []vdav1.CntlrRole{vdav1.CntlrRole_CNTLR_ROLE_PRIMARY, vdav1.CntlrRole_CNTLR_ROLE_SECONDARY, vdav1.CntlrRole_CNTLR_ROLE_SECONDARY}, roles)
		primary, sec1, sec2 := a1.GetCntlrs()[0].GetCnName(), a1.GetCntlrs()[1].GetCnName(), a1.GetCntlrs()[2].GetCnName()

		tests := []struct {
			name    string
			req     *vdav1.ModifyCnRequest
			wantCns map[string]uint64
		}{
			{"description of the primary's cn", &vdav1.ModifyCnRequest{Name: primary, Description: ptr("x")}, map[string]uint64{primary: 1}},
			{"same listener", &vdav1.ModifyCnRequest{Name: primary, Listener: tcp("10.0.1.1", 4430)}, nil},
			{"new listener of the primary's cn", &vdav1.ModifyCnRequest{Name: primary, Listener: tcp("10.0.1.2", 4430)},
				map[string]uint64{primary: 1, sec1: 1, sec2: 1}},
			{"new listener of a secondary's cn", &vdav1.ModifyCnRequest{Name: sec1, Listener: tcp("10.0.1.3", 4430)}, map[string]uint64{sec1: 1}},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				before := readGenerations(t, c)
				must(t, c.ModifyCn, tt.req)
				dns, cns := before.bumped(readGenerations(t, c))
				assertBumped(t, dns, nil)
				assertBumped(t, cns, tt.wantCns)
			})
		}
		t.Run("controllers show the new listener", func(t *testing.T) {
			got := getDa(t, c, "a1").GetCntlrs()
			assert.True(t, proto.Equal(tcp("10.0.1.2", 4430), got[0].GetListener()), "%v", got[0].GetListener())
			assert.True(t, proto.Equal(tcp("10.0.1.3", 4430), got[1].GetListener()), "%v", got[1].GetListener())
		})
	})
}

func TestListCn(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		c := start(t, db)
		for _, n := range pageNames {
			mkCn(t, c, n, "")
			mkDn(t, c, n, "")
		}
		dnToken := must(t, c.ListDn, &vdav1.ListDnRequest{PageSize: 1}).GetNextPageToken()
		testPagination(t, pageNames, func(size uint32, token string) ([]string, string, error) {
			resp, err := do(t, c.ListCn, &vdav1.ListCnRequest{PageSize: size, PageToken: token})
			return names(resp.GetCns()), resp.GetNextPageToken(), err
		}, dnToken)
	})
}
