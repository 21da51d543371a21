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

// expCluster is two dns, four cns and array a1 with two vds and three
// controllers; a2 with one of each.
func expCluster(t *testing.T, c client) (a1, a2 *vdav1.Da) {
	t.Helper()
	mkDn(t, c, "d1", "")
	mkDn(t, c, "d2", "")
	mkPd(t, c, "d1", "p1", 1<<30)
	mkPd(t, c, "d2", "p1", 1<<30)
	for _, cn := range []string{"c1", "c2", "c3", "c4"} {
		mkCn(t, c, cn, "")
	}
	return mkDa(t, c, "a1", 64<<20, 2, 3), mkDa(t, c, "a2", 4096, 1, 1)
}

func TestCreateExp(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		c := start(t, db)
		a1, _ := expCluster(t, c)
		gens := readGenerations(t, c)
		before := time.Now().Add(-time.Second).UnixMilli()
		uuidNQN := "nqn.2014-08.org.nvmexpress:uuid:0c9d3b8e-2a4f-4b1c-9e7d-5f6a7b8c9d0e"
		exp := must(t, c.CreateExp, &vdav1.CreateExpRequest{DaName: "a1", Name: "e1", HostNqn: uuidNQN, Description: "host one"}).GetExp()

		t.Run("fields", func(t *testing.T) {
			assert.Regexp(t, idRE, exp.GetId())
			assert.Equal(t, "a1", exp.GetDaName())
			assert.Equal(t, "e1", exp.GetName())
			assert.Equal(t, uuidNQN, exp.GetHostNqn())
			assert.Equal(t, "host one", exp.GetDescription())
			assert.Equal(t, uint64(1), exp.GetGeneration())
			assert.GreaterOrEqual(t, exp.GetCreatedAtMs(), before)
			assert.Equal(t, a1.GetNqn(), exp.GetTargetNqn())
		})
		t.Run("one path per controller, primary first", func(t *testing.T) {
			require.Len(t, exp.GetPaths(), 3)
			for i, p := range exp.GetPaths() {
				cn := a1.GetCntlrs()[i]
				assert.Equal(t, cn.GetCnName(), p.GetCnName())
				assert.Equal(t, cn.GetRole(), p.GetRole())
				assert.True(t, proto.Equal(cn.GetListener(), p.GetListener()))
				assert.Equal(t, vdav1.Health_HEALTH_UNKNOWN, p.GetStatus().GetHealth())
			}
			assert.Equal(t, vdav1.CntlrRole_CNTLR_ROLE_PRIMARY, exp.GetPaths()[0].GetRole())
			assert.Equal(t, vdav1.CntlrRole_CNTLR_ROLE_SECONDARY, exp.GetPaths()[1].GetRole())
			assert.Equal(t, vdav1.CntlrRole_CNTLR_ROLE_SECONDARY, exp.GetPaths()[2].GetRole())
		})
		t.Run("bumps every cn of the array, and nothing else", func(t *testing.T) {
			dns, cns := gens.bumped(readGenerations(t, c))
			want := map[string]uint64{}
			for _, cn := range a1.GetCntlrs() {
				want[cn.GetCnName()] = 1
			}
			assertBumped(t, dns, nil)
			assertBumped(t, cns, want)
			assert.Equal(t, uint64(1), getDa(t, c, "a1").GetGeneration(), "the array itself is unchanged")
		})
		t.Run("Get and List", func(t *testing.T) {
			assert.True(t, proto.Equal(exp, getExp(t, c, "a1", "e1")), "GetExp differs from CreateExp")
			list := must(t, c.ListExp, &vdav1.ListExpRequest{DaName: "a1"}).GetExps()
			require.Len(t, list, 1)
			want := proto.Clone(exp).(*vdav1.Exp)
			want.Paths = nil
			assert.True(t, proto.Equal(want, list[0]), "ListExp shows the exporter without paths:\n%v", list[0])
			assert.Empty(t, must(t, c.ListExp, &vdav1.ListExpRequest{DaName: "a2"}).GetExps())
		})
		t.Run("longest NQN", func(t *testing.T) {
			prefix := "nqn.2014-08.com.example:"
			long := prefix + strings.Repeat("h", vda.MaxNQNLen-len(prefix))
			require.Len(t, long, 223)
			assert.Equal(t, long, mkExp(t, c, "a1", "long", long).GetHostNqn())
		})
	})
}

func TestCreateExpInvalid(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		c := start(t, db)
		expCluster(t, c)
		prefix := "nqn.2014-08.com.example:"
		tooLong := prefix + strings.Repeat("h", 224-len(prefix))
		tests := []struct {
			name string
			req  *vdav1.CreateExpRequest
			want []string
		}{
			{"empty da_name", &vdav1.CreateExpRequest{Name: "e", HostNqn: hostNQN(1)}, []string{"da_name is empty"}},
			{"bad name", &vdav1.CreateExpRequest{DaName: "a1", Name: "a/b", HostNqn: hostNQN(1)}, []string{`name "a/b"`}},
			{"empty host_nqn", &vdav1.CreateExpRequest{DaName: "a1", Name: "e"}, []string{"host_nqn is empty"}},
			{"host_nqn foo", &vdav1.CreateExpRequest{DaName: "a1", Name: "e", HostNqn: "foo"},
				[]string{`host_nqn "foo" is not an NQN (nqn.yyyy-mm.reverse.domain:name)`}},
			{"host_nqn of 224 bytes", &vdav1.CreateExpRequest{DaName: "a1", Name: "e", HostNqn: tooLong},
				[]string{"host_nqn is 224 bytes, longer than NVMe's 223"}},
			{"the discovery NQN", &vdav1.CreateExpRequest{DaName: "a1", Name: "e", HostNqn: "nqn.2014-08.org.nvmexpress.discovery"},
				[]string{`host_nqn "nqn.2014-08.org.nvmexpress.discovery" is the discovery NQN`}},
			{"malformed UUID NQN", &vdav1.CreateExpRequest{DaName: "a1", Name: "e", HostNqn: "nqn.2014-08.org.nvmexpress:uuid:1234"},
				[]string{"malformed UUID NQN"}},
			{"month 13", &vdav1.CreateExpRequest{DaName: "a1", Name: "e", HostNqn: "nqn.2014-13.com.example:h"}, []string{"is not an NQN"}},
			{"a space in the name part", &vdav1.CreateExpRequest{DaName: "a1", Name: "e", HostNqn: "nqn.2014-08.com.example:a b"}, []string{"is not an NQN"}},
			{"long description", &vdav1.CreateExpRequest{DaName: "a1", Name: "e", HostNqn: hostNQN(1), Description: strings.Repeat("d", 1025)},
				[]string{"description is longer than 1024 bytes"}},
			{"several problems at once", &vdav1.CreateExpRequest{DaName: "", Name: "", HostNqn: "foo"},
				[]string{"da_name is empty", "name is empty", `host_nqn "foo"`}},
		}
		gens := readGenerations(t, c)
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				_, err := do(t, c.CreateExp, tt.req)
				requireCode(t, err, connect.CodeInvalidArgument, tt.want...)
			})
		}
		t.Run("nothing was created", func(t *testing.T) {
			assert.Zero(t, summary(t, c).GetExpCount())
			dns, cns := gens.bumped(readGenerations(t, c))
			assertBumped(t, dns, nil)
			assertBumped(t, cns, nil)
		})
	})
}

func TestExpNotFound(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		c := start(t, db)
		expCluster(t, c)
		mkExp(t, c, "a2", "e1", hostNQN(1))
		tests := []struct {
			name string
			call func() error
			want string
		}{
			{"create on a missing da", func() error {
				_, err := do(t, c.CreateExp, &vdav1.CreateExpRequest{DaName: "nope", Name: "e1", HostNqn: hostNQN(1)})
				return err
			}, "da nope"},
			{"get", func() error { _, err := do(t, c.GetExp, &vdav1.GetExpRequest{DaName: "a1", Name: "e1"}); return err }, "da a1: exp e1"},
			{"get on a missing da", func() error { _, err := do(t, c.GetExp, &vdav1.GetExpRequest{DaName: "nope", Name: "e1"}); return err }, "da nope"},
			{"modify", func() error {
				_, err := do(t, c.ModifyExp, &vdav1.ModifyExpRequest{DaName: "a1", Name: "e1", Description: ptr("x")})
				return err
			}, "da a1: exp e1"},
			{"delete", func() error {
				_, err := do(t, c.DeleteExp, &vdav1.DeleteExpRequest{DaName: "a1", Name: "e1"})
				return err
			}, "da a1: exp e1"},
			{"list on a missing da", func() error { _, err := do(t, c.ListExp, &vdav1.ListExpRequest{DaName: "nope"}); return err }, "da nope"},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				requireCode(t, tt.call(), connect.CodeNotFound, tt.want)
			})
		}
		t.Run("invalid references", func(t *testing.T) {
			_, err := do(t, c.GetExp, &vdav1.GetExpRequest{DaName: "a 1", Name: ""})
			requireCode(t, err, connect.CodeInvalidArgument, `da_name "a 1"`, "name is empty")
			_, err = do(t, c.DeleteExp, &vdav1.DeleteExpRequest{DaName: "a1"})
			requireCode(t, err, connect.CodeInvalidArgument, "name is empty")
			_, err = do(t, c.ListExp, &vdav1.ListExpRequest{})
			requireCode(t, err, connect.CodeInvalidArgument, "da_name is empty")
		})
		assert.Equal(t, uint32(1), summary(t, c).GetExpCount())
	})
}

func TestExpAlreadyExists(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		c := start(t, db)
		expCluster(t, c)
		first := mkExp(t, c, "a1", "e1", hostNQN(1))
		tests := []struct {
			name string
			req  *vdav1.CreateExpRequest
			want []string // nil: the request succeeds
		}{
			{"same name", &vdav1.CreateExpRequest{DaName: "a1", Name: "e1", HostNqn: hostNQN(2)}, []string{"da a1: exp e1"}},
			{"same host NQN", &vdav1.CreateExpRequest{DaName: "a1", Name: "e2", HostNqn: hostNQN(1)}, []string{"da a1 already has an exporter for host " + hostNQN(1)}},
			{"same name on another da", &vdav1.CreateExpRequest{DaName: "a2", Name: "e1", HostNqn: hostNQN(3)}, nil},
			{"same host NQN on another da", &vdav1.CreateExpRequest{DaName: "a2", Name: "e2", HostNqn: hostNQN(1)}, nil},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				gens := readGenerations(t, c)
				_, err := do(t, c.CreateExp, tt.req)
				if tt.want == nil {
					require.NoError(t, err)
					return
				}
				requireCode(t, err, connect.CodeAlreadyExists, tt.want...)
				dns, cns := gens.bumped(readGenerations(t, c))
				assertBumped(t, dns, nil)
				assertBumped(t, cns, nil)
			})
		}
		assert.True(t, proto.Equal(first, getExp(t, c, "a1", "e1")), "the first exporter is untouched")
		assert.Equal(t, uint32(3), summary(t, c).GetExpCount())
	})
}

func TestModifyExp(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		c := start(t, db)
		expCluster(t, c)
		orig := mkExp(t, c, "a1", "e1", hostNQN(1))

		t.Run("description", func(t *testing.T) {
			gens := readGenerations(t, c)
			got := must(t, c.ModifyExp, &vdav1.ModifyExpRequest{DaName: "a1", Name: "e1", Generation: ptr[uint64](1), Description: ptr("new")}).GetExp()
			want := proto.Clone(orig).(*vdav1.Exp)
			want.Description, want.Generation = "new", 2
			assert.True(t, proto.Equal(want, got), "got %v\nwant %v", got, want)
			assert.True(t, proto.Equal(want, getExp(t, c, "a1", "e1")))
			dns, cns := gens.bumped(readGenerations(t, c))
			assertBumped(t, dns, nil)
			assertBumped(t, cns, nil)
		})
		t.Run("absent description kept", func(t *testing.T) {
			got := must(t, c.ModifyExp, &vdav1.ModifyExpRequest{DaName: "a1", Name: "e1"}).GetExp()
			assert.Equal(t, "new", got.GetDescription())
			assert.Equal(t, uint64(2), got.GetGeneration(), "nothing changed, no new generation")
		})
		t.Run("wrong generation", func(t *testing.T) {
			before := getExp(t, c, "a1", "e1")
			_, err := do(t, c.ModifyExp, &vdav1.ModifyExpRequest{DaName: "a1", Name: "e1", Generation: ptr[uint64](1), Description: ptr("lost")})
			requireCode(t, err, connect.CodeAborted, "exp e1 is at generation 2, not 1")
			assert.True(t, proto.Equal(before, getExp(t, c, "a1", "e1")), "nothing changed")
		})
		t.Run("invalid", func(t *testing.T) {
			_, err := do(t, c.ModifyExp, &vdav1.ModifyExpRequest{DaName: "a1", Name: "e1", Description: ptr(strings.Repeat("x", 1025))})
			requireCode(t, err, connect.CodeInvalidArgument, "description is longer than 1024 bytes")
			_, err = do(t, c.ModifyExp, &vdav1.ModifyExpRequest{Name: "e/1"})
			requireCode(t, err, connect.CodeInvalidArgument, "da_name is empty", `name "e/1"`)
		})
	})
}

func TestDeleteExp(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		c := start(t, db)
		a1, _ := expCluster(t, c)
		mkExp(t, c, "a1", "e1", hostNQN(1))
		mkExp(t, c, "a1", "e2", hostNQN(2))

		t.Run("wrong generation", func(t *testing.T) {
			gens := readGenerations(t, c)
			_, err := do(t, c.DeleteExp, &vdav1.DeleteExpRequest{DaName: "a1", Name: "e1", Generation: ptr[uint64](5)})
			requireCode(t, err, connect.CodeAborted, "exp e1 is at generation 1, not 5")
			getExp(t, c, "a1", "e1")
			dns, cns := gens.bumped(readGenerations(t, c))
			assertBumped(t, dns, nil)
			assertBumped(t, cns, nil)
		})
		t.Run("bumps every cn of the array", func(t *testing.T) {
			gens := readGenerations(t, c)
			must(t, c.DeleteExp, &vdav1.DeleteExpRequest{DaName: "a1", Name: "e1", Generation: ptr[uint64](1)})
			_, err := do(t, c.GetExp, &vdav1.GetExpRequest{DaName: "a1", Name: "e1"})
			requireCode(t, err, connect.CodeNotFound, "da a1: exp e1")
			dns, cns := gens.bumped(readGenerations(t, c))
			want := map[string]uint64{}
			for _, cn := range a1.GetCntlrs() {
				want[cn.GetCnName()] = 1
			}
			assertBumped(t, dns, nil)
			assertBumped(t, cns, want)
			assert.Equal(t, []string{"e2"}, names(must(t, c.ListExp, &vdav1.ListExpRequest{DaName: "a1"}).GetExps()))
		})
		t.Run("the host can be admitted again", func(t *testing.T) {
			mkExp(t, c, "a1", "e3", hostNQN(1))
		})
	})
}

func TestListExp(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		c := start(t, db)
		expCluster(t, c)
		for i, n := range pageNames {
			mkExp(t, c, "a1", n, hostNQN(i))
			mkExp(t, c, "a2", n, hostNQN(i))
		}
		mkExp(t, c, "a2", "zz", hostNQN(99))
		otherDa := must(t, c.ListExp, &vdav1.ListExpRequest{DaName: "a2", PageSize: 1}).GetNextPageToken()
		testPagination(t, pageNames, func(size uint32, token string) ([]string, string, error) {
			resp, err := do(t, c.ListExp, &vdav1.ListExpRequest{DaName: "a1", PageSize: size, PageToken: token})
			for _, e := range resp.GetExps() {
				assert.Equal(t, "a1", e.GetDaName())
				assert.Empty(t, e.GetPaths())
			}
			return names(resp.GetExps()), resp.GetNextPageToken(), err
		}, otherDa)
		t.Run("a da's token in the exp list", func(t *testing.T) {
			tok := must(t, c.ListDa, &vdav1.ListDaRequest{PageSize: 1}).GetNextPageToken()
			_, err := do(t, c.ListExp, &vdav1.ListExpRequest{DaName: "a1", PageToken: tok})
			requireCode(t, err, connect.CodeInvalidArgument, "page_token")
		})
	})
}
