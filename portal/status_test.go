package portal_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/virtual-disk-array/vda"
	vdav1 "github.com/virtual-disk-array/vda/proto/vda/v1"
	"github.com/virtual-disk-array/vda/store"
	"github.com/virtual-disk-array/vda/store/storetest"
)

// TestObservedStatus checks that what agents report about vds and
// controllers reaches GetDa and GetExp, and that an array's health is OK
// only when every part is, with the worst part winning otherwise.
func TestObservedStatus(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		c := start(t, db)
		a1, _ := expCluster(t, c)
		mkExp(t, c, "a1", "e1", hostNQN(1))
		require.Equal(t, vdav1.Health_HEALTH_UNKNOWN, a1.GetHealth(), "nothing reported yet")

		at := time.UnixMilli(1_800_000_000_000).UTC()
		put := func(fn func(ctx context.Context, tx *store.Tx) error) {
			require.NoError(t, db.Update(context.Background(), fn))
		}
		setAll := func(h store.Health) {
			put(func(ctx context.Context, tx *store.Tx) error {
				for _, vd := range a1.GetVds() {
					if err := tx.PutVDStatus(ctx, vda.VDID(vd.GetId()), store.ObjStatus{Health: h, ReportedAt: at}); err != nil {
						return err
					}
				}
				for _, cn := range a1.GetCntlrs() {
					if err := tx.PutCntlrStatus(ctx, vda.CntlrID(cn.GetId()), store.ObjStatus{Health: h, ReportedAt: at}); err != nil {
						return err
					}
				}
				return nil
			})
		}
		setAll(store.HealthOK)
		da := getDa(t, c, "a1")
		assert.Equal(t, vdav1.Health_HEALTH_OK, da.GetHealth())
		for _, vd := range da.GetVds() {
			assert.Equal(t, vdav1.Health_HEALTH_OK, vd.GetStatus().GetHealth())
			assert.Equal(t, at.UnixMilli(), vd.GetStatus().GetReportedAtMs())
		}

		// One broken vd and one failed controller: each reported on its own
		// part, and the worst decides the array's health.
		vd0, cn1 := a1.GetVds()[0], a1.GetCntlrs()[len(a1.GetCntlrs())-1]
		put(func(ctx context.Context, tx *store.Tx) error {
			return tx.PutVDStatus(ctx, vda.VDID(vd0.GetId()), store.ObjStatus{Health: store.HealthError, Error: "lvol missing", ReportedAt: at})
		})
		da = getDa(t, c, "a1")
		assert.Equal(t, vdav1.Health_HEALTH_ERROR, da.GetHealth())
		for _, vd := range da.GetVds() {
			if vd.GetId() == vd0.GetId() {
				assert.Equal(t, "lvol missing", vd.GetStatus().GetError())
			} else {
				assert.Equal(t, vdav1.Health_HEALTH_OK, vd.GetStatus().GetHealth(), "the other vds keep their own status")
			}
		}
		put(func(ctx context.Context, tx *store.Tx) error {
			return tx.PutCntlrStatus(ctx, vda.CntlrID(cn1.GetId()), store.ObjStatus{Health: store.HealthFailed, Error: "cn unreachable", ReportedAt: at})
		})
		da = getDa(t, c, "a1")
		assert.Equal(t, vdav1.Health_HEALTH_FAILED, da.GetHealth())

		exp := getExp(t, c, "a1", "e1")
		require.Len(t, exp.GetPaths(), len(a1.GetCntlrs()))
		assert.Equal(t, vdav1.CntlrRole_CNTLR_ROLE_PRIMARY, exp.GetPaths()[0].GetRole(), "the primary first")
		for _, p := range exp.GetPaths() {
			if p.GetCnName() == cn1.GetCnName() {
				assert.Equal(t, vdav1.Health_HEALTH_FAILED, p.GetStatus().GetHealth())
				assert.Equal(t, "cn unreachable", p.GetStatus().GetError())
			} else {
				assert.Equal(t, vdav1.Health_HEALTH_OK, p.GetStatus().GetHealth())
			}
		}
	})
}
