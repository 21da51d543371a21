package portal_test

import (
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"

	"github.com/virtual-disk-array/vda"
	vdav1 "github.com/virtual-disk-array/vda/proto/vda/v1"
	"github.com/virtual-disk-array/vda/store"
	"github.com/virtual-disk-array/vda/store/storetest"
)

func malloc(size uint64) *vdav1.CreatePdRequest_Malloc {
	return &vdav1.CreatePdRequest_Malloc{Malloc: &vdav1.PdMalloc{Size: size}}
}

func aio(path string) *vdav1.CreatePdRequest_Aio {
	return &vdav1.CreatePdRequest_Aio{Aio: &vdav1.PdAio{Path: path}}
}

func nvme(addr string) *vdav1.CreatePdRequest_Nvme {
	return &vdav1.CreatePdRequest_Nvme{Nvme: &vdav1.PdNvme{PcieAddr: addr}}
}

func TestCreatePd(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		c := start(t, db)
		mkDn(t, c, "d1", "")
		before := time.Now().Add(-time.Second).UnixMilli()

		tests := []struct {
			name         string
			req          *vdav1.CreatePdRequest
			wantBackend  proto.Message
			wantCapacity uint64
		}{
			{
				name:         "malloc",
				req:          &vdav1.CreatePdRequest{DnName: "d1", Name: "m1", Backend: malloc(1 << 30), Description: "ram"},
				wantBackend:  &vdav1.PdMalloc{Size: 1 << 30},
				wantCapacity: vda.EstimatedLvstoreCapacity(1 << 30),
			},
			{
				name:         "smallest malloc",
				req:          &vdav1.CreatePdRequest{DnName: "d1", Name: "m2", Backend: malloc(8 << 20)},
				wantBackend:  &vdav1.PdMalloc{Size: 8 << 20},
				wantCapacity: 4 << 20,
			},
			{
				name:        "aio, offline",
				req:         &vdav1.CreatePdRequest{DnName: "d1", Name: "a1", Backend: aio("/dev/sdb"), Offline: true},
				wantBackend: &vdav1.PdAio{Path: "/dev/sdb"},
			},
			{
				name:        "nvme, address lowercased",
				req:         &vdav1.CreatePdRequest{DnName: "d1", Name: "n1", Backend: nvme("0000:3B:00.0")},
				wantBackend: &vdav1.PdNvme{PcieAddr: "0000:3b:00.0"},
			},
		}
		for i, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				dnGen := getDn(t, c, "d1").GetGeneration()
				got := must(t, c.CreatePd, tt.req).GetPd()
				assert.Regexp(t, idRE, got.GetId())
				assert.Equal(t, "d1", got.GetDnName())
				assert.Equal(t, tt.req.GetName(), got.GetName())
				var backend proto.Message
				switch b := got.GetBackend().(type) {
				case *vdav1.Pd_Malloc:
					backend = b.Malloc
				case *vdav1.Pd_Aio:
					backend = b.Aio
				case *vdav1.Pd_Nvme:
					backend = b.Nvme
				}
				assert.True(t, proto.Equal(tt.wantBackend, backend), "backend %v, want %v", backend, tt.wantBackend)
				assert.Equal(t, tt.req.GetOffline(), got.GetOffline())
				assert.Equal(t, tt.req.GetDescription(), got.GetDescription())
				assert.Equal(t, uint64(1), got.GetGeneration())
				assert.Equal(t, tt.wantCapacity, got.GetCapacity(), "unreported: estimated for malloc, 0 otherwise")
				assert.Zero(t, got.GetAllocated())
				assert.Equal(t, vdav1.Health_HEALTH_UNKNOWN, got.GetStatus().GetHealth())
				assert.Zero(t, got.GetStatus().GetCapacity())
				assert.GreaterOrEqual(t, got.GetCreatedAtMs(), before)
				assert.Zero(t, got.GetVdCount())
				assert.True(t, proto.Equal(got, getPd(t, c, "d1", tt.req.GetName())), "GetPd differs from CreatePd")

				dn := getDn(t, c, "d1")
				assert.Equal(t, dnGen+1, dn.GetGeneration(), "CreatePd bumps the dn")
				assert.Equal(t, uint32(i+1), dn.GetPdCount())
			})
		}
	})
}

func TestCreatePdInvalid(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		c := start(t, db)
		mkDn(t, c, "d1", "")
		tests := []struct {
			name string
			req  *vdav1.CreatePdRequest
			want []string
		}{
			{"empty dn_name", &vdav1.CreatePdRequest{Name: "p", Backend: malloc(1 << 30)}, []string{"dn_name is empty"}},
			{"bad dn_name", &vdav1.CreatePdRequest{DnName: "d 1", Name: "p", Backend: malloc(1 << 30)}, []string{`dn_name "d 1"`}},
			{"empty name", &vdav1.CreatePdRequest{DnName: "d1", Backend: malloc(1 << 30)}, []string{"name is empty"}},
			{"long name", &vdav1.CreatePdRequest{DnName: "d1", Name: strings.Repeat("p", 65), Backend: malloc(1 << 30)}, []string{"longer than 64"}},
			{"unicode name", &vdav1.CreatePdRequest{DnName: "d1", Name: "ü", Backend: malloc(1 << 30)}, []string{`name "ü"`}},
			{"no backend", &vdav1.CreatePdRequest{DnName: "d1", Name: "p"}, []string{"a backend is required: malloc, aio or nvme"}},
			{"malloc size 0", &vdav1.CreatePdRequest{DnName: "d1", Name: "p", Backend: malloc(0)}, []string{"malloc size is 0"}},
			{"malloc without a size", &vdav1.CreatePdRequest{DnName: "d1", Name: "p", Backend: &vdav1.CreatePdRequest_Malloc{}}, []string{"malloc size is 0"}},
			{"malloc size not a MiB multiple", &vdav1.CreatePdRequest{DnName: "d1", Name: "p", Backend: malloc(1<<30 + 4096)},
				[]string{"malloc size 1073745920 is not a multiple of 1 MiB"}},
			{"malloc too small for an lvstore", &vdav1.CreatePdRequest{DnName: "d1", Name: "p", Backend: malloc(4 << 20)},
				[]string{"malloc size 4.0 MiB leaves no room for an lvstore (at least 8.0 MiB)"}},
			{"malloc above 1 PiB", &vdav1.CreatePdRequest{DnName: "d1", Name: "p", Backend: malloc(1<<50 + 1<<20)}, []string{"is above 1125899906842624"}},
			{"aio empty path", &vdav1.CreatePdRequest{DnName: "d1", Name: "p", Backend: aio("")}, []string{"aio path is empty"}},
			{"aio relative path", &vdav1.CreatePdRequest{DnName: "d1", Name: "p", Backend: aio("x")}, []string{`aio path "x": want a clean absolute path`}},
			{"aio unclean path", &vdav1.CreatePdRequest{DnName: "d1", Name: "p", Backend: aio("/a/../b")}, []string{`aio path "/a/../b": want a clean absolute path`}},
			{"aio trailing slash", &vdav1.CreatePdRequest{DnName: "d1", Name: "p", Backend: aio("/dev/")}, []string{`aio path "/dev/"`}},
			{"aio newline", &vdav1.CreatePdRequest{DnName: "d1", Name: "p", Backend: aio("/dev/sd\nb")}, []string{"aio path has a NUL or newline"}},
			{"aio path too long", &vdav1.CreatePdRequest{DnName: "d1", Name: "p", Backend: aio("/" + strings.Repeat("a", 4096))}, []string{"aio path is longer than 4096 bytes"}},
			{"nvme xyz", &vdav1.CreatePdRequest{DnName: "d1", Name: "p", Backend: nvme("xyz")}, []string{`nvme pcie_addr "xyz": want dddd:bb:dd.f`}},
			{"nvme empty", &vdav1.CreatePdRequest{DnName: "d1", Name: "p", Backend: nvme("")}, []string{`nvme pcie_addr ""`}},
			{"nvme function 8", &vdav1.CreatePdRequest{DnName: "d1", Name: "p", Backend: nvme("0000:3b:00.8")}, []string{`nvme pcie_addr "0000:3b:00.8"`}},
			{"description too long", &vdav1.CreatePdRequest{DnName: "d1", Name: "p", Backend: malloc(1 << 30), Description: strings.Repeat("d", 1025)},
				[]string{"description is longer than 1024 bytes"}},
			{"several problems at once", &vdav1.CreatePdRequest{Backend: aio("rel"), Description: strings.Repeat("d", 2000)},
				[]string{"dn_name is empty", "name is empty", `aio path "rel"`, "description is longer"}},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				_, err := do(t, c.CreatePd, tt.req)
				requireCode(t, err, connect.CodeInvalidArgument, tt.want...)
			})
		}
		t.Run("nothing was created", func(t *testing.T) {
			dn := getDn(t, c, "d1")
			assert.Zero(t, dn.GetPdCount())
			assert.Equal(t, uint64(1), dn.GetGeneration())
		})
	})
}

func TestPdNotFound(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		c := start(t, db)
		mkDn(t, c, "d1", "")
		mkDn(t, c, "d2", "")
		mkPd(t, c, "d2", "p1", 64<<20)
		tests := []struct {
			name string
			call func() error
			want string
		}{
			{"create on a missing dn", func() error {
				_, err := do(t, c.CreatePd, &vdav1.CreatePdRequest{DnName: "nope", Name: "p1", Backend: malloc(1 << 30)})
				return err
			}, "dn nope"},
			{"get", func() error { _, err := do(t, c.GetPd, &vdav1.GetPdRequest{DnName: "d1", Name: "p1"}); return err }, "dn d1: pd p1"},
			{"get on a missing dn", func() error { _, err := do(t, c.GetPd, &vdav1.GetPdRequest{DnName: "nope", Name: "p1"}); return err }, "dn nope"},
			{"modify", func() error {
				_, err := do(t, c.ModifyPd, &vdav1.ModifyPdRequest{DnName: "d1", Name: "p1", Offline: ptr(true)})
				return err
			}, "dn d1: pd p1"},
			{"delete", func() error {
				_, err := do(t, c.DeletePd, &vdav1.DeletePdRequest{DnName: "d1", Name: "p1"})
				return err
			}, "dn d1: pd p1"},
			{"list on a missing dn", func() error { _, err := do(t, c.ListPd, &vdav1.ListPdRequest{DnName: "nope"}); return err }, "dn nope"},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				requireCode(t, tt.call(), connect.CodeNotFound, tt.want)
			})
		}
		t.Run("invalid references", func(t *testing.T) {
			_, err := do(t, c.GetPd, &vdav1.GetPdRequest{DnName: "", Name: "a/b"})
			requireCode(t, err, connect.CodeInvalidArgument, "dn_name is empty", `name "a/b"`)
			_, err = do(t, c.DeletePd, &vdav1.DeletePdRequest{DnName: "d1"})
			requireCode(t, err, connect.CodeInvalidArgument, "name is empty")
			_, err = do(t, c.ListPd, &vdav1.ListPdRequest{})
			requireCode(t, err, connect.CodeInvalidArgument, "dn_name is empty")
		})
		assert.Equal(t, uint64(1), getDn(t, c, "d1").GetGeneration(), "nothing touched d1")
	})
}

func TestPdAlreadyExists(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		c := start(t, db)
		mkDn(t, c, "d1", "")
		mkDn(t, c, "d2", "")
		for _, r := range []*vdav1.CreatePdRequest{
			{DnName: "d1", Name: "p1", Backend: malloc(64 << 20)},
			{DnName: "d1", Name: "a1", Backend: aio("/dev/sdb")},
			{DnName: "d1", Name: "n1", Backend: nvme("0000:3b:00.0")},
		} {
			must(t, c.CreatePd, r)
		}
		tests := []struct {
			name string
			req  *vdav1.CreatePdRequest
			want []string // empty: the request succeeds
		}{
			{"same name", &vdav1.CreatePdRequest{DnName: "d1", Name: "p1", Backend: malloc(64 << 20)}, []string{"dn d1: pd p1"}},
			{"same name, other backend", &vdav1.CreatePdRequest{DnName: "d1", Name: "a1", Backend: aio("/dev/sdc")}, []string{"pd a1"}},
			{"same aio path", &vdav1.CreatePdRequest{DnName: "d1", Name: "a2", Backend: aio("/dev/sdb")}, []string{"dn d1: pd a1 already uses /dev/sdb"}},
			{"same nvme address", &vdav1.CreatePdRequest{DnName: "d1", Name: "n2", Backend: nvme("0000:3b:00.0")}, []string{"dn d1: pd n1 already uses 0000:3b:00.0"}},
			{"same nvme address in upper case", &vdav1.CreatePdRequest{DnName: "d1", Name: "n3", Backend: nvme("0000:3B:00.0")}, []string{"pd n1 already uses 0000:3b:00.0"}},
			{"malloc pds never share", &vdav1.CreatePdRequest{DnName: "d1", Name: "p2", Backend: malloc(64 << 20)}, nil},
			{"same name on another dn", &vdav1.CreatePdRequest{DnName: "d2", Name: "p1", Backend: malloc(64 << 20)}, nil},
			{"same aio path on another dn", &vdav1.CreatePdRequest{DnName: "d2", Name: "a1", Backend: aio("/dev/sdb")}, nil},
			{"same nvme address on another dn", &vdav1.CreatePdRequest{DnName: "d2", Name: "n1", Backend: nvme("0000:3b:00.0")}, nil},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				_, err := do(t, c.CreatePd, tt.req)
				if tt.want == nil {
					require.NoError(t, err)
					return
				}
				requireCode(t, err, connect.CodeAlreadyExists, tt.want...)
			})
		}
		assert.Equal(t, uint32(4), getDn(t, c, "d1").GetPdCount())
		assert.Equal(t, uint32(3), getDn(t, c, "d2").GetPdCount())
		assert.Equal(t, "/dev/sdb", getPd(t, c, "d1", "a1").GetAio().GetPath(), "a1 is untouched")
	})
}

func TestModifyPd(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		c := start(t, db)
		mkDn(t, c, "d1", "")
		orig := must(t, c.CreatePd, &vdav1.CreatePdRequest{DnName: "d1", Name: "p1", Backend: malloc(1 << 30), Description: "x"}).GetPd()

		t.Run("offline; description kept", func(t *testing.T) {
			dnGen := getDn(t, c, "d1").GetGeneration()
			got := must(t, c.ModifyPd, &vdav1.ModifyPdRequest{DnName: "d1", Name: "p1", Generation: ptr[uint64](1), Offline: ptr(true)}).GetPd()
			want := proto.Clone(orig).(*vdav1.Pd)
			want.Offline = true
			want.Generation = 2
			assert.True(t, proto.Equal(want, got), "got %v\nwant %v", got, want)
			assert.True(t, proto.Equal(want, getPd(t, c, "d1", "p1")))
			assert.Equal(t, dnGen+1, getDn(t, c, "d1").GetGeneration(), "ModifyPd bumps the dn")
		})
		t.Run("description; offline kept", func(t *testing.T) {
			got := must(t, c.ModifyPd, &vdav1.ModifyPdRequest{DnName: "d1", Name: "p1", Description: ptr("y")}).GetPd()
			assert.Equal(t, "y", got.GetDescription())
			assert.True(t, got.GetOffline())
			assert.Equal(t, uint64(3), got.GetGeneration())
		})
		t.Run("wrong generation", func(t *testing.T) {
			before, dnBefore := getPd(t, c, "d1", "p1"), getDn(t, c, "d1")
			_, err := do(t, c.ModifyPd, &vdav1.ModifyPdRequest{DnName: "d1", Name: "p1", Generation: ptr[uint64](1), Offline: ptr(false)})
			requireCode(t, err, connect.CodeAborted, "pd p1 is at generation 3, not 1")
			assert.True(t, proto.Equal(before, getPd(t, c, "d1", "p1")), "nothing changed")
			assert.True(t, proto.Equal(dnBefore, getDn(t, c, "d1")), "the dn is untouched")
		})
		t.Run("invalid", func(t *testing.T) {
			_, err := do(t, c.ModifyPd, &vdav1.ModifyPdRequest{DnName: "d1", Name: "p1", Description: ptr(strings.Repeat("d", 1025))})
			requireCode(t, err, connect.CodeInvalidArgument, "description is longer than 1024 bytes")
			_, err = do(t, c.ModifyPd, &vdav1.ModifyPdRequest{DnName: "d/1", Name: ""})
			requireCode(t, err, connect.CodeInvalidArgument, `dn_name "d/1"`, "name is empty")
			assert.Equal(t, "y", getPd(t, c, "d1", "p1").GetDescription())
		})
	})
}

func TestDeletePd(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		c := start(t, db)
		mkDn(t, c, "d1", "")
		mkCn(t, c, "c1", "")
		mkPd(t, c, "d1", "p1", 1<<30)
		mkDa(t, c, "a1", 64<<20, 1, 1)
		mkPd(t, c, "d1", "p2", 1<<30)

		t.Run("a pd with vds", func(t *testing.T) {
			_, err := do(t, c.DeletePd, &vdav1.DeletePdRequest{DnName: "d1", Name: "p1"})
			requireCode(t, err, connect.CodeFailedPrecondition, "pd p1 on dn d1 holds 1 vd(s) of array(s) a1;", "delete those arrays first")
			assert.Equal(t, uint32(1), getPd(t, c, "d1", "p1").GetVdCount())
		})
		t.Run("wrong generation", func(t *testing.T) {
			_, err := do(t, c.DeletePd, &vdav1.DeletePdRequest{DnName: "d1", Name: "p2", Generation: ptr[uint64](2)})
			requireCode(t, err, connect.CodeAborted, "pd p2 is at generation 1, not 2")
			getPd(t, c, "d1", "p2")
		})
		t.Run("ok", func(t *testing.T) {
			dnGen := getDn(t, c, "d1").GetGeneration()
			must(t, c.DeletePd, &vdav1.DeletePdRequest{DnName: "d1", Name: "p2", Generation: ptr[uint64](1)})
			_, err := do(t, c.GetPd, &vdav1.GetPdRequest{DnName: "d1", Name: "p2"})
			requireCode(t, err, connect.CodeNotFound, "dn d1: pd p2")
			dn := getDn(t, c, "d1")
			assert.Equal(t, dnGen+1, dn.GetGeneration(), "DeletePd bumps the dn")
			assert.Equal(t, uint32(1), dn.GetPdCount())
		})
		t.Run("after its array is gone", func(t *testing.T) {
			must(t, c.DeleteDa, &vdav1.DeleteDaRequest{Name: "a1"})
			must(t, c.DeletePd, &vdav1.DeletePdRequest{DnName: "d1", Name: "p1"})
			assert.Empty(t, must(t, c.ListPd, &vdav1.ListPdRequest{DnName: "d1"}).GetPds())
		})
	})
}

func TestListPd(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		c := start(t, db)
		mkDn(t, c, "d1", "")
		mkDn(t, c, "d2", "")
		for _, n := range pageNames {
			mkPd(t, c, "d1", n, 64<<20)
			mkPd(t, c, "d2", n, 64<<20)
		}
		mkPd(t, c, "d2", "zz", 64<<20) // d2's list differs from d1's
		otherDn := must(t, c.ListPd, &vdav1.ListPdRequest{DnName: "d2", PageSize: 1}).GetNextPageToken()
		testPagination(t, pageNames, func(size uint32, token string) ([]string, string, error) {
			resp, err := do(t, c.ListPd, &vdav1.ListPdRequest{DnName: "d1", PageSize: size, PageToken: token})
			for _, pd := range resp.GetPds() {
				assert.Equal(t, "d1", pd.GetDnName())
			}
			return names(resp.GetPds()), resp.GetNextPageToken(), err
		}, otherDn)
		t.Run("a dn's token in the pd list", func(t *testing.T) {
			tok := must(t, c.ListDn, &vdav1.ListDnRequest{PageSize: 1}).GetNextPageToken()
			_, err := do(t, c.ListPd, &vdav1.ListPdRequest{DnName: "d1", PageToken: tok})
			requireCode(t, err, connect.CodeInvalidArgument, "page_token")
		})
	})
}
