package portal_test

import (
	"context"
	"fmt"
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

// pdsByDn reads every pd of the named dns, by "dn/pd".
func pdsByDn(t *testing.T, c client, dns ...string) map[string]*vdav1.Pd {
	t.Helper()
	out := map[string]*vdav1.Pd{}
	for _, dn := range dns {
		for _, pd := range must(t, c.ListPd, &vdav1.ListPdRequest{DnName: dn}).GetPds() {
			out[dn+"/"+pd.GetName()] = pd
		}
	}
	return out
}

func TestCreateDa(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		c := start(t, db)
		dnLoc := map[string]string{"d1": "a", "d2": "a", "d3": "b", "d4": "b"}
		for _, dn := range []string{"d1", "d2", "d3", "d4"} {
			mkDn(t, c, dn, dnLoc[dn])
			mkPd(t, c, dn, "p1", 1<<30)
		}
		cnLoc := map[string]string{"c1": "x", "c2": "x", "c3": "y"}
		cnListener := map[string]*vdav1.NvmfListener{}
		for _, cn := range []string{"c1", "c2", "c3"} {
			cnListener[cn] = mkCn(t, c, cn, cnLoc[cn]).GetListener()
		}
		gens := readGenerations(t, c)
		before := time.Now().Add(-time.Second).UnixMilli()

		const size = 100<<20 + 4096
		wantVd := vdSize(size, 2)
		require.Equal(t, uint64(52<<20), wantVd, "50 MiB + 2 KiB rounds up to 13 clusters")
		da := must(t, c.CreateDa, &vdav1.CreateDaRequest{
			Name: "a1", Size: size, CntlrCount: 2, Description: "first",
			Raid: &vdav1.CreateDaRequest_Raid0{Raid0: &vdav1.Raid0{VdCount: 2, StripSizeKb: 128}},
		}).GetDa()

		t.Run("fields", func(t *testing.T) {
			assert.Regexp(t, idRE, da.GetId())
			assert.Equal(t, "a1", da.GetName())
			assert.Equal(t, uint64(size), da.GetSize())
			assert.True(t, proto.Equal(&vdav1.Raid0{VdCount: 2, StripSizeKb: 128}, da.GetRaid0()))
			assert.Equal(t, uint32(2), da.GetCntlrCount())
			assert.Equal(t, "first", da.GetDescription())
			assert.Equal(t, uint64(1), da.GetGeneration())
			assert.GreaterOrEqual(t, da.GetCreatedAtMs(), before)
			assert.Equal(t, vda.ArrayNQN(vda.DAID(da.GetId())), da.GetNqn())
			assert.True(t, strings.HasPrefix(da.GetNqn(), vda.NQNPrefix+":"), da.GetNqn())
			assert.NoError(t, vda.ValidateNQN("nqn", da.GetNqn()))
			assert.Equal(t, vdav1.Health_HEALTH_UNKNOWN, da.GetHealth())
		})
		t.Run("vds on distinct dns, spread over locations", func(t *testing.T) {
			require.Len(t, da.GetVds(), 2)
			locs := map[string]int{}
			for i, vd := range da.GetVds() {
				assert.Regexp(t, idRE, vd.GetId())
				assert.Equal(t, uint32(i), vd.GetIndex())
				assert.Equal(t, "p1", vd.GetPdName())
				assert.Equal(t, wantVd, vd.GetSize())
				assert.Equal(t, vdav1.Health_HEALTH_UNKNOWN, vd.GetStatus().GetHealth())
				locs[dnLoc[vd.GetDnName()]]++
			}
			assert.NotEqual(t, da.GetVds()[0].GetDnName(), da.GetVds()[1].GetDnName())
			assert.Equal(t, map[string]int{"a": 1, "b": 1}, locs)
		})
		t.Run("controllers on distinct cns, spread over locations, primary first", func(t *testing.T) {
			require.Len(t, da.GetCntlrs(), 2)
			c0, c1 := da.GetCntlrs()[0], da.GetCntlrs()[1]
			assert.Equal(t, vdav1.CntlrRole_CNTLR_ROLE_PRIMARY, c0.GetRole())
			assert.Equal(t, vdav1.CntlrRole_CNTLR_ROLE_SECONDARY, c1.GetRole())
			assert.Equal(t, []uint32{0, 1}, []uint32{c0.GetIndex(), c1.GetIndex()})
			assert.NotEqual(t, cnLoc[c0.GetCnName()], cnLoc[c1.GetCnName()])
			for _, cn := range da.GetCntlrs() {
				assert.Regexp(t, idRE, cn.GetId())
				assert.True(t, proto.Equal(cnListener[cn.GetCnName()], cn.GetListener()), "listener of %s", cn.GetCnName())
				assert.Equal(t, uint32(1), getCn(t, c, cn.GetCnName()).GetCntlrCount())
			}
		})
		t.Run("Get and List", func(t *testing.T) {
			assert.True(t, proto.Equal(da, getDa(t, c, "a1")), "GetDa differs from CreateDa:\n%v\n%v", da, getDa(t, c, "a1"))
			list := must(t, c.ListDa, &vdav1.ListDaRequest{}).GetDas()
			require.Len(t, list, 1)
			want := proto.Clone(da).(*vdav1.Da)
			want.Vds, want.Cntlrs, want.Health = nil, nil, vdav1.Health_HEALTH_UNSPECIFIED
			assert.True(t, proto.Equal(want, list[0]), "ListDa shows the array without vds and controllers:\n%v", list[0])
		})
		t.Run("capacity", func(t *testing.T) {
			used := map[string]bool{}
			for _, vd := range da.GetVds() {
				used[vd.GetDnName()+"/"+vd.GetPdName()] = true
			}
			for key, pd := range pdsByDn(t, c, "d1", "d2", "d3", "d4") {
				if used[key] {
					assert.Equal(t, wantVd, pd.GetAllocated(), key)
					assert.Equal(t, uint32(1), pd.GetVdCount(), key)
				} else {
					assert.Zero(t, pd.GetAllocated(), key)
					assert.Zero(t, pd.GetVdCount(), key)
				}
				assert.Equal(t, vda.EstimatedLvstoreCapacity(1<<30), pd.GetCapacity(), "capacity does not change")
			}
		})
		t.Run("generations", func(t *testing.T) {
			dns, cns := gens.bumped(readGenerations(t, c))
			wantDns, wantCns := map[string]uint64{}, map[string]uint64{}
			for _, vd := range da.GetVds() {
				wantDns[vd.GetDnName()] = 1
			}
			for _, cn := range da.GetCntlrs() {
				wantCns[cn.GetCnName()] = 1
			}
			assertBumped(t, dns, wantDns)
			assertBumped(t, cns, wantCns)
		})
		t.Run("the next array balances free space", func(t *testing.T) {
			// Two dns hold nothing yet: a 2-vd array goes there.
			a2 := mkDa(t, c, "a2", 8<<20, 2, 1)
			for _, vd := range a2.GetVds() {
				for _, old := range da.GetVds() {
					assert.NotEqual(t, old.GetDnName(), vd.GetDnName())
				}
			}
			// A 4-vd array needs every dn.
			a3 := mkDa(t, c, "a3", 16<<20, 4, 3)
			seen := map[string]bool{}
			for _, vd := range a3.GetVds() {
				seen[vd.GetDnName()] = true
			}
			assert.Len(t, seen, 4)
			seenCn := map[string]bool{}
			for _, cn := range a3.GetCntlrs() {
				seenCn[cn.GetCnName()] = true
			}
			assert.Len(t, seenCn, 3)
			s := summary(t, c)
			assert.Equal(t, uint32(3), s.GetDaCount())
			assert.Equal(t, uint32(8), s.GetVdCount())
			assert.Equal(t, uint32(6), s.GetCntlrCount())
			assert.Equal(t, 2*wantVd+2*(4<<20)+4*(4<<20), s.GetAllocated())
		})
	})
}

func TestCreateDaDefaults(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		c := start(t, db)
		mkDn(t, c, "d1", "")
		mkDn(t, c, "d2", "")
		mkPd(t, c, "d1", "p1", 1<<30)
		mkPd(t, c, "d2", "p1", 1<<30)
		mkCn(t, c, "c1", "")
		tests := []struct {
			name       string
			req        *vdav1.CreateDaRequest
			wantRaid   *vdav1.Raid0
			wantVdSize uint64
		}{
			{"no raid, no cntlr_count", &vdav1.CreateDaRequest{Name: "a1", Size: 4096}, &vdav1.Raid0{VdCount: 1, StripSizeKb: 64}, 4 << 20},
			{"raid0 with zeros", &vdav1.CreateDaRequest{Name: "a2", Size: 4 << 20, Raid: &vdav1.CreateDaRequest_Raid0{Raid0: &vdav1.Raid0{}}},
				&vdav1.Raid0{VdCount: 1, StripSizeKb: 64}, 4 << 20},
			{"smallest and largest strip", &vdav1.CreateDaRequest{Name: "a3", Size: 12 << 20, Raid: &vdav1.CreateDaRequest_Raid0{Raid0: &vdav1.Raid0{VdCount: 2, StripSizeKb: 4}}},
				&vdav1.Raid0{VdCount: 2, StripSizeKb: 4}, 8 << 20},
			{"largest strip", &vdav1.CreateDaRequest{Name: "a4", Size: 8 << 20, Raid: &vdav1.CreateDaRequest_Raid0{Raid0: &vdav1.Raid0{VdCount: 1, StripSizeKb: 1024}}},
				&vdav1.Raid0{VdCount: 1, StripSizeKb: 1024}, 8 << 20},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				da := must(t, c.CreateDa, tt.req).GetDa()
				assert.True(t, proto.Equal(tt.wantRaid, da.GetRaid0()), "raid %v", da.GetRaid0())
				assert.Equal(t, uint32(1), da.GetCntlrCount())
				require.Len(t, da.GetCntlrs(), 1)
				assert.Equal(t, vdav1.CntlrRole_CNTLR_ROLE_PRIMARY, da.GetCntlrs()[0].GetRole())
				require.Len(t, da.GetVds(), int(tt.wantRaid.GetVdCount()))
				for _, vd := range da.GetVds() {
					assert.Equal(t, tt.wantVdSize, vd.GetSize())
				}
				assert.Equal(t, tt.req.GetSize(), da.GetSize(), "the size asked for is kept")
			})
		}
	})
}

func TestCreateDaInvalid(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		c := start(t, db)
		mkDn(t, c, "d1", "")
		mkPd(t, c, "d1", "p1", 1<<30)
		mkCn(t, c, "c1", "")
		raid := func(vds, strip uint32) *vdav1.CreateDaRequest_Raid0 {
			return &vdav1.CreateDaRequest_Raid0{Raid0: &vdav1.Raid0{VdCount: vds, StripSizeKb: strip}}
		}
		tests := []struct {
			name string
			req  *vdav1.CreateDaRequest
			want []string
		}{
			{"empty name", &vdav1.CreateDaRequest{Size: 4096}, []string{"name is empty"}},
			{"long name", &vdav1.CreateDaRequest{Name: strings.Repeat("a", 65), Size: 4096}, []string{"is longer than 64 characters"}},
			{"name with a slash", &vdav1.CreateDaRequest{Name: "a/b", Size: 4096}, []string{`name "a/b"`}},
			{"size 0", &vdav1.CreateDaRequest{Name: "a"}, []string{"size is 0"}},
			{"size not 4096-aligned", &vdav1.CreateDaRequest{Name: "a", Size: 4097}, []string{"size 4097 is not a multiple of 4096"}},
			{"size 512", &vdav1.CreateDaRequest{Name: "a", Size: 512}, []string{"size 512 is not a multiple of 4096"}},
			{"size above 1 PiB", &vdav1.CreateDaRequest{Name: "a", Size: 1<<50 + 4096}, []string{"size 1125899906846720 is above the 1 PiB limit"}},
			{"vd_count 65", &vdav1.CreateDaRequest{Name: "a", Size: 4096, Raid: raid(65, 0)}, []string{"raid0 vd_count 65 is above 64"}},
			{"strip 3", &vdav1.CreateDaRequest{Name: "a", Size: 4096, Raid: raid(1, 3)}, []string{"raid0 strip_size_kb 3: want a power of two from 4 to 1024"}},
			{"strip 2", &vdav1.CreateDaRequest{Name: "a", Size: 4096, Raid: raid(1, 2)}, []string{"raid0 strip_size_kb 2"}},
			{"strip 96", &vdav1.CreateDaRequest{Name: "a", Size: 4096, Raid: raid(1, 96)}, []string{"raid0 strip_size_kb 96"}},
			{"strip 2048", &vdav1.CreateDaRequest{Name: "a", Size: 4096, Raid: raid(1, 2048)}, []string{"raid0 strip_size_kb 2048"}},
			{"cntlr_count 9", &vdav1.CreateDaRequest{Name: "a", Size: 4096, CntlrCount: 9}, []string{"cntlr_count 9 is above 8"}},
			{"long description", &vdav1.CreateDaRequest{Name: "a", Size: 4096, Description: strings.Repeat("d", 1025)}, []string{"description is longer than 1024 bytes"}},
			{"several problems at once", &vdav1.CreateDaRequest{Name: "-a", Size: 4097, CntlrCount: 100, Raid: raid(100, 3)},
				[]string{`name "-a"`, "size 4097", "raid0 vd_count 100", "strip_size_kb 3", "cntlr_count 100"}},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				_, err := do(t, c.CreateDa, tt.req)
				requireCode(t, err, connect.CodeInvalidArgument, tt.want...)
			})
		}
		t.Run("nothing was placed", func(t *testing.T) {
			s := summary(t, c)
			assert.Zero(t, s.GetDaCount())
			assert.Zero(t, s.GetAllocated())
			assert.Equal(t, uint64(2), getDn(t, c, "d1").GetGeneration())
		})
	})
}

func TestCreateDaExhausted(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		c := start(t, db)
		mkDn(t, c, "d1", "")
		mkDn(t, c, "d2", "")
		mkPd(t, c, "d1", "p1", 1<<30)
		mkPd(t, c, "d2", "p1", 1<<30)
		mkCn(t, c, "c1", "")
		capacity := vda.EstimatedLvstoreCapacity(1 << 30) // 1008 MiB

		// setStatus records a monitor's verdict on a node, as the monitor
		// would, through the store.
		setStatus := func(t *testing.T, kind, name string, h store.Health) {
			t.Helper()
			require.NoError(t, db.Update(t.Context(), func(ctx context.Context, tx *store.Tx) error {
				now := time.Now()
				if kind == "dn" {
					dn, err := tx.DN(ctx, name)
					if err != nil {
						return err
					}
					return tx.PutDNStatus(ctx, dn.ID, store.NodeStatus{Health: h, Generation: dn.Generation, ReportedAt: now})
				}
				cn, err := tx.CN(ctx, name)
				if err != nil {
					return err
				}
				return tx.PutCNStatus(ctx, cn.ID, store.NodeStatus{Health: h, Generation: cn.Generation, ReportedAt: now})
			}))
		}

		tests := []struct {
			name    string
			setup   func(t *testing.T)
			undo    func(t *testing.T)
			req     *vdav1.CreateDaRequest
			want    []string
			succeed bool
		}{
			{
				name: "larger than any pd",
				req:  daReq("x", 2<<30, 1, 1),
				want: []string{"need 1 vd of 2.0 GiB on distinct dns, found 0 eligible dns (2 pds: 2 with less than 2.0 GiB free)"},
			},
			{
				name: "just larger than a pd",
				req:  daReq("x", capacity+4096, 1, 1),
				want: []string{"found 0 eligible dns", "2 with less than"},
			},
			{
				name: "more vds than dns",
				req:  daReq("x", 12<<20, 3, 1),
				want: []string{"need 3 vds of 4.0 MiB on distinct dns, found 2 eligible dns (2 pds, all eligible)"},
			},
			{
				name: "more controllers than cns",
				req:  daReq("x", 4096, 1, 2),
				want: []string{"need 2 controllers on distinct cns, found 1 online cn"},
			},
			{
				name:  "a dn offline",
				setup: func(t *testing.T) { must(t, c.ModifyDn, &vdav1.ModifyDnRequest{Name: "d1", Offline: ptr(true)}) },
				undo:  func(t *testing.T) { must(t, c.ModifyDn, &vdav1.ModifyDnRequest{Name: "d1", Offline: ptr(false)}) },
				req:   daReq("x", 8<<20, 2, 1),
				want:  []string{"need 2 vds", "found 1 eligible dn (2 pds: 1 offline)"},
			},
			{
				name: "a pd offline",
				setup: func(t *testing.T) {
					must(t, c.ModifyPd, &vdav1.ModifyPdRequest{DnName: "d2", Name: "p1", Offline: ptr(true)})
				},
				undo: func(t *testing.T) {
					must(t, c.ModifyPd, &vdav1.ModifyPdRequest{DnName: "d2", Name: "p1", Offline: ptr(false)})
				},
				req:  daReq("x", 8<<20, 2, 1),
				want: []string{"found 1 eligible dn (2 pds: 1 offline)"},
			},
			{
				name:  "a dn failed",
				setup: func(t *testing.T) { setStatus(t, "dn", "d2", store.HealthFailed) },
				undo:  func(t *testing.T) { setStatus(t, "dn", "d2", store.HealthOK) },
				req:   daReq("x", 8<<20, 2, 1),
				want:  []string{"found 1 eligible dn (2 pds: 1 offline)"},
			},
			{
				name:    "a dn in error is still usable",
				setup:   func(t *testing.T) { setStatus(t, "dn", "d2", store.HealthError) },
				undo:    func(t *testing.T) { setStatus(t, "dn", "d2", store.HealthOK) },
				req:     daReq("ok", 8<<20, 2, 1),
				succeed: true,
			},
			{
				name: "every dn offline",
				setup: func(t *testing.T) {
					must(t, c.ModifyDn, &vdav1.ModifyDnRequest{Name: "d1", Offline: ptr(true)})
					must(t, c.ModifyDn, &vdav1.ModifyDnRequest{Name: "d2", Offline: ptr(true)})
				},
				undo: func(t *testing.T) {
					must(t, c.ModifyDn, &vdav1.ModifyDnRequest{Name: "d1", Offline: ptr(false)})
					must(t, c.ModifyDn, &vdav1.ModifyDnRequest{Name: "d2", Offline: ptr(false)})
				},
				req:  daReq("x", 4096, 1, 1),
				want: []string{"found 0 eligible dns (2 pds: 2 offline)"},
			},
			{
				name:  "the cn offline",
				setup: func(t *testing.T) { must(t, c.ModifyCn, &vdav1.ModifyCnRequest{Name: "c1", Offline: ptr(true)}) },
				undo:  func(t *testing.T) { must(t, c.ModifyCn, &vdav1.ModifyCnRequest{Name: "c1", Offline: ptr(false)}) },
				req:   daReq("x", 4096, 1, 1),
				want:  []string{"need 1 controller on distinct cns, found 0 online cns (1 cn: 1 offline)"},
			},
			{
				name:  "the cn failed",
				setup: func(t *testing.T) { setStatus(t, "cn", "c1", store.HealthFailed) },
				undo:  func(t *testing.T) { setStatus(t, "cn", "c1", store.HealthOK) },
				req:   daReq("x", 4096, 1, 1),
				want:  []string{"found 0 online cns (1 cn: 1 offline)"},
			},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				if tt.setup != nil {
					tt.setup(t)
				}
				if tt.undo != nil {
					defer tt.undo(t)
				}
				before := readGenerations(t, c)
				pdsBefore := pdsByDn(t, c, "d1", "d2")
				_, err := do(t, c.CreateDa, tt.req)
				if tt.succeed {
					require.NoError(t, err)
					must(t, c.DeleteDa, &vdav1.DeleteDaRequest{Name: tt.req.GetName()})
					return
				}
				requireCode(t, err, connect.CodeResourceExhausted, append([]string{"place da x: "}, tt.want...)...)
				dns, cns := before.bumped(readGenerations(t, c))
				assertBumped(t, dns, nil)
				assertBumped(t, cns, nil)
				for key, pd := range pdsByDn(t, c, "d1", "d2") {
					assert.True(t, proto.Equal(pdsBefore[key], pd), "pd %s changed", key)
				}
				_, err = do(t, c.GetDa, &vdav1.GetDaRequest{Name: "x"})
				requireCode(t, err, connect.CodeNotFound)
			})
		}

		t.Run("exactly full", func(t *testing.T) {
			require.Equal(t, capacity, vdSize(capacity, 1))
			a1 := mkDa(t, c, "full1", capacity, 1, 1)
			mkDa(t, c, "full2", capacity, 1, 1)
			s := summary(t, c)
			assert.Equal(t, 2*capacity, s.GetAllocated())
			assert.Zero(t, s.GetFree())
			_, err := do(t, c.CreateDa, daReq("x", 4096, 1, 1))
			requireCode(t, err, connect.CodeResourceExhausted, "2 with less than 4.0 MiB free")
			must(t, c.DeleteDa, &vdav1.DeleteDaRequest{Name: "full1"})
			pd := getPd(t, c, a1.GetVds()[0].GetDnName(), "p1")
			assert.Zero(t, pd.GetAllocated())
			mkDa(t, c, "x", 4096, 1, 1)
		})
	})
}

func TestDaAlreadyExists(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		c := start(t, db)
		mkDn(t, c, "d1", "")
		mkPd(t, c, "d1", "p1", 1<<30)
		mkCn(t, c, "c1", "")
		first := mkDa(t, c, "a1", 64<<20, 1, 1)
		gens := readGenerations(t, c)
		_, err := do(t, c.CreateDa, daReq("a1", 128<<20, 1, 1))
		requireCode(t, err, connect.CodeAlreadyExists, "da a1")
		assert.True(t, proto.Equal(first, getDa(t, c, "a1")), "the first array is untouched")
		assert.Equal(t, uint64(64<<20), getPd(t, c, "d1", "p1").GetAllocated(), "the failed placement allocated nothing")
		dns, cns := gens.bumped(readGenerations(t, c))
		assertBumped(t, dns, nil)
		assertBumped(t, cns, nil)
		// A taken name is the answer even when the array would not fit.
		_, err = do(t, c.CreateDa, daReq("a1", 1<<40, 1, 1))
		requireCode(t, err, connect.CodeAlreadyExists, "da a1")
	})
}

func TestDaNotFound(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		c := start(t, db)
		_, err := do(t, c.GetDa, &vdav1.GetDaRequest{Name: "nope"})
		requireCode(t, err, connect.CodeNotFound, "da nope")
		_, err = do(t, c.ModifyDa, &vdav1.ModifyDaRequest{Name: "nope", Description: ptr("x")})
		requireCode(t, err, connect.CodeNotFound, "da nope")
		_, err = do(t, c.DeleteDa, &vdav1.DeleteDaRequest{Name: "nope"})
		requireCode(t, err, connect.CodeNotFound, "da nope")
		_, err = do(t, c.GetDa, &vdav1.GetDaRequest{Name: "no pe"})
		requireCode(t, err, connect.CodeInvalidArgument, `name "no pe"`)
		_, err = do(t, c.DeleteDa, &vdav1.DeleteDaRequest{})
		requireCode(t, err, connect.CodeInvalidArgument, "name is empty")
	})
}

func TestModifyDa(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		c := start(t, db)
		mkDn(t, c, "d1", "")
		mkPd(t, c, "d1", "p1", 1<<30)
		mkCn(t, c, "c1", "")
		orig := mkDa(t, c, "a1", 64<<20, 1, 1)

		t.Run("description bumps the array, no node", func(t *testing.T) {
			gens := readGenerations(t, c)
			got := must(t, c.ModifyDa, &vdav1.ModifyDaRequest{Name: "a1", Generation: ptr[uint64](1), Description: ptr("new")}).GetDa()
			want := proto.Clone(orig).(*vdav1.Da)
			want.Description, want.Generation = "new", 2
			assert.True(t, proto.Equal(want, got), "got %v\nwant %v", got, want)
			assert.True(t, proto.Equal(want, getDa(t, c, "a1")))
			dns, cns := gens.bumped(readGenerations(t, c))
			assertBumped(t, dns, nil)
			assertBumped(t, cns, nil)
		})
		t.Run("absent description kept", func(t *testing.T) {
			got := must(t, c.ModifyDa, &vdav1.ModifyDaRequest{Name: "a1"}).GetDa()
			assert.Equal(t, "new", got.GetDescription())
			assert.Equal(t, uint64(2), got.GetGeneration(), "nothing changed, no new generation")
		})
		t.Run("wrong generation", func(t *testing.T) {
			before := getDa(t, c, "a1")
			_, err := do(t, c.ModifyDa, &vdav1.ModifyDaRequest{Name: "a1", Generation: ptr[uint64](1), Description: ptr("lost")})
			requireCode(t, err, connect.CodeAborted, "da a1 is at generation 2, not 1")
			assert.True(t, proto.Equal(before, getDa(t, c, "a1")), "nothing changed")
		})
		t.Run("invalid", func(t *testing.T) {
			_, err := do(t, c.ModifyDa, &vdav1.ModifyDaRequest{Name: "a 1", Description: ptr(strings.Repeat("x", 1025))})
			requireCode(t, err, connect.CodeInvalidArgument, `name "a 1"`, "description is longer than 1024 bytes")
			_, err = do(t, c.ModifyDa, &vdav1.ModifyDaRequest{Name: "a1", Description: ptr("nul\x00")})
			requireCode(t, err, connect.CodeInvalidArgument, "NUL")
			assert.Equal(t, "new", getDa(t, c, "a1").GetDescription())
		})
	})
}

func TestDeleteDa(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		c := start(t, db)
		for i := range 3 {
			mkDn(t, c, fmt.Sprintf("d%d", i), "")
			mkPd(t, c, fmt.Sprintf("d%d", i), "p1", 1<<30)
			mkPd(t, c, fmt.Sprintf("d%d", i), "p2", 512<<20)
			mkCn(t, c, fmt.Sprintf("c%d", i), "")
		}
		keep := mkDa(t, c, "keep", 30<<20+4096, 3, 1)
		allBefore := pdsByDn(t, c, "d0", "d1", "d2")
		a1 := mkDa(t, c, "a1", 300<<20, 2, 2)
		mkExp(t, c, "a1", "e1", hostNQN(1))

		t.Run("an array with exporters", func(t *testing.T) {
			_, err := do(t, c.DeleteDa, &vdav1.DeleteDaRequest{Name: "a1"})
			requireCode(t, err, connect.CodeFailedPrecondition, "da a1 still has 1 exporter(s); delete them first")
			getDa(t, c, "a1")
			must(t, c.DeleteExp, &vdav1.DeleteExpRequest{DaName: "a1", Name: "e1"})
		})
		t.Run("wrong generation", func(t *testing.T) {
			gens, pds := readGenerations(t, c), pdsByDn(t, c, "d0", "d1", "d2")
			_, err := do(t, c.DeleteDa, &vdav1.DeleteDaRequest{Name: "a1", Generation: ptr[uint64](2)})
			requireCode(t, err, connect.CodeAborted, "da a1 is at generation 1, not 2")
			assert.True(t, proto.Equal(a1, getDa(t, c, "a1")), "the array is untouched")
			for key, pd := range pdsByDn(t, c, "d0", "d1", "d2") {
				assert.True(t, proto.Equal(pds[key], pd), "pd %s changed", key)
			}
			dns, cns := gens.bumped(readGenerations(t, c))
			assertBumped(t, dns, nil)
			assertBumped(t, cns, nil)
		})
		t.Run("releases exactly what it took", func(t *testing.T) {
			gens := readGenerations(t, c)
			must(t, c.DeleteDa, &vdav1.DeleteDaRequest{Name: "a1", Generation: ptr[uint64](1)})
			for key, pd := range pdsByDn(t, c, "d0", "d1", "d2") {
				assert.Equal(t, allBefore[key].GetAllocated(), pd.GetAllocated(), key)
				assert.Equal(t, allBefore[key].GetVdCount(), pd.GetVdCount(), key)
			}
			dns, cns := gens.bumped(readGenerations(t, c))
			wantDns, wantCns := map[string]uint64{}, map[string]uint64{}
			for _, vd := range a1.GetVds() {
				wantDns[vd.GetDnName()] = 1
			}
			for _, cn := range a1.GetCntlrs() {
				wantCns[cn.GetCnName()] = 1
			}
			for _, cn := range must(t, c.ListCn, &vdav1.ListCnRequest{}).GetCns() {
				want := uint32(0)
				if cn.GetName() == keep.GetCntlrs()[0].GetCnName() {
					want = 1
				}
				assert.Equal(t, want, cn.GetCntlrCount(), cn.GetName())
			}
			assertBumped(t, dns, wantDns)
			assertBumped(t, cns, wantCns)
			_, err := do(t, c.GetDa, &vdav1.GetDaRequest{Name: "a1"})
			requireCode(t, err, connect.CodeNotFound, "da a1")
			s := summary(t, c)
			assert.Equal(t, uint32(1), s.GetDaCount())
			assert.Equal(t, uint32(3), s.GetVdCount())
			assert.Equal(t, uint32(1), s.GetCntlrCount())
			assert.Equal(t, 3*vdSize(30<<20+4096, 3), s.GetAllocated())
		})
		t.Run("the name can be used again", func(t *testing.T) {
			again := mkDa(t, c, "a1", 4096, 1, 1)
			assert.NotEqual(t, a1.GetId(), again.GetId())
			assert.NotEqual(t, a1.GetNqn(), again.GetNqn(), "a new array gets a new NQN")
		})
	})
}

func TestListDa(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		c := start(t, db)
		mkDn(t, c, "d1", "")
		mkPd(t, c, "d1", "p1", 1<<30)
		mkCn(t, c, "c1", "")
		mkCn(t, c, "c2", "")
		for _, n := range pageNames {
			mkDa(t, c, n, 4096, 1, 1)
		}
		cnToken := must(t, c.ListCn, &vdav1.ListCnRequest{PageSize: 1}).GetNextPageToken()
		testPagination(t, pageNames, func(size uint32, token string) ([]string, string, error) {
			resp, err := do(t, c.ListDa, &vdav1.ListDaRequest{PageSize: size, PageToken: token})
			for _, da := range resp.GetDas() {
				assert.Empty(t, da.GetVds())
				assert.Empty(t, da.GetCntlrs())
				assert.NotEmpty(t, da.GetNqn())
			}
			return names(resp.GetDas()), resp.GetNextPageToken(), err
		}, cnToken)
	})
}
