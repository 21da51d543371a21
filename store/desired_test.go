package store_test

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/virtual-disk-array/vda"
	"github.com/virtual-disk-array/vda/store"
	"github.com/virtual-disk-array/vda/store/storetest"
)

// listenerAt returns a distinct listener per address, so that a test sees
// which node's listener a read joined in.
func listenerAt(addr string) store.Listener {
	return store.Listener{TrType: "tcp", AdrFam: "ipv4", TrAddr: addr, TrSvcID: "4420"}
}

// insertDNAt inserts a dn listening on addr.
func insertDNAt(t *testing.T, db *store.DB, name, addr string) store.DN {
	t.Helper()
	dn := store.DN{NodeSpec: nodeSpec(name)}
	dn.Listener = listenerAt(addr)
	mustUpdate(t, db, func(ctx context.Context, tx *store.Tx) error { return tx.InsertDN(ctx, &dn) })
	return dn
}

// insertCNAt inserts a cn listening on addr.
func insertCNAt(t *testing.T, db *store.DB, name, addr string) store.CN {
	t.Helper()
	cn := store.CN{NodeSpec: nodeSpec(name)}
	cn.Listener = listenerAt(addr)
	mustUpdate(t, db, func(ctx context.Context, tx *store.Tx) error { return tx.InsertCN(ctx, &cn) })
	return cn
}

// insertArray inserts an array with the given children and returns it with
// the children's ids set, in the order given.
func insertArray(t *testing.T, db *store.DB, name string, vds []store.VD, cntlrs []store.Cntlr) placedDA {
	t.Helper()
	p := placedDA{da: newDA(name), vds: vds, cntlrs: cntlrs}
	mustUpdate(t, db, func(ctx context.Context, tx *store.Tx) error { return tx.InsertDA(ctx, &p.da, p.vds, p.cntlrs) })
	return p
}

func dnState(t *testing.T, db *store.DB, id vda.DNID) store.DNState {
	t.Helper()
	return view(t, db, func(ctx context.Context, tx *store.Tx) (store.DNState, error) { return tx.DNState(ctx, id) })
}

func cnState(t *testing.T, db *store.DB, id vda.CNID) store.CNState {
	t.Helper()
	return view(t, db, func(ctx context.Context, tx *store.Tx) (store.CNState, error) { return tx.CNState(ctx, id) })
}

func peerOf(c store.Cntlr, cn store.CN) store.CntlrPeer {
	return store.CntlrPeer{ID: c.ID, CNID: cn.ID, Listener: cn.Listener}
}

func pathOf(vd store.VD, dn store.DN) store.VDPath {
	return store.VDPath{ID: vd.ID, Index: vd.Index, DNID: dn.ID, Listener: dn.Listener}
}

func TestDNState(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		t.Parallel()
		dn, other := insertDNAt(t, db, "dn", "10.0.1.1"), insertDNAt(t, db, "other", "10.0.1.2")
		pdA, pdB, pdEmpty := insertPD(t, db, dn.ID, "a"), insertPD(t, db, dn.ID, "b"), insertPD(t, db, dn.ID, "empty")
		pdO := insertPD(t, db, other.ID, "o")
		c1, c2, c3 := insertCN(t, db, "c1"), insertCN(t, db, "c2"), insertCN(t, db, "c3")

		// x: one vd here, one on the other dn; its primary has index 0.
		x := insertArray(t, db, "x",
			[]store.VD{
				{Index: 1, DNID: other.ID, PDID: pdO.ID, Size: vda.GiB},
				{Index: 0, DNID: dn.ID, PDID: pdA.ID, Size: vda.GiB},
			},
			[]store.Cntlr{{Index: 0, CNID: c1.ID, Primary: true}, {Index: 1, CNID: c2.ID}})
		// y: both vds here, on both pds; its primary has index 1.
		y := insertArray(t, db, "y",
			[]store.VD{
				{Index: 0, DNID: dn.ID, PDID: pdB.ID, Size: 2 * vda.GiB},
				{Index: 1, DNID: dn.ID, PDID: pdA.ID, Size: 2 * vda.GiB},
			},
			[]store.Cntlr{{Index: 0, CNID: c2.ID}, {Index: 1, CNID: c3.ID, Primary: true}})

		want := store.DNState{DN: dn, PDs: []store.PD{pdA, pdB, pdEmpty}}
		slices.SortFunc(want.PDs, func(a, b store.PD) int { return cmp.Compare(a.ID, b.ID) })
		want.VDs = []store.VDPlace{
			{VD: x.vds[1], PrimaryCntlrID: x.cntlrs[0].ID},
			{VD: y.vds[0], PrimaryCntlrID: y.cntlrs[1].ID},
			{VD: y.vds[1], PrimaryCntlrID: y.cntlrs[1].ID},
		}
		slices.SortFunc(want.VDs, func(a, b store.VDPlace) int { return cmp.Compare(a.ID, b.ID) })

		assert.Equal(t, want, dnState(t, db, dn.ID))
		assert.Equal(t, store.DNState{
			DN:  other,
			PDs: []store.PD{pdO},
			VDs: []store.VDPlace{{VD: x.vds[0], PrimaryCntlrID: x.cntlrs[0].ID}},
		}, dnState(t, db, other.ID))
	})
}

func TestCNState(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		t.Parallel()
		d1, d2 := insertDNAt(t, db, "d1", "10.0.1.1"), insertDNAt(t, db, "d2", "10.0.1.2")
		p1, p2 := insertPD(t, db, d1.ID, "p1"), insertPD(t, db, d2.ID, "p2")
		here := insertCNAt(t, db, "here", "10.0.2.1")
		s1, s2 := insertCNAt(t, db, "s1", "10.0.2.2"), insertCNAt(t, db, "s2", "10.0.2.3")
		elsewhere := insertCNAt(t, db, "elsewhere", "10.0.2.4")

		// a: primary here, two vds on two dns, two secondaries elsewhere;
		// children given out of index order.
		a := insertArray(t, db, "a",
			[]store.VD{
				{Index: 1, DNID: d2.ID, PDID: p2.ID, Size: vda.GiB},
				{Index: 0, DNID: d1.ID, PDID: p1.ID, Size: vda.GiB},
			},
			[]store.Cntlr{
				{Index: 2, CNID: s2.ID},
				{Index: 0, CNID: here.ID, Primary: true},
				{Index: 1, CNID: s1.ID},
			})
		insertExp(t, db, a.da.ID, "zeta", "nqn.2016-06.io.example:zeta")
		insertExp(t, db, a.da.ID, "alpha", "nqn.2016-06.io.example:alpha")
		// b: a secondary here, its primary elsewhere.
		b := insertArray(t, db, "b",
			[]store.VD{{Index: 0, DNID: d1.ID, PDID: p1.ID, Size: vda.GiB}},
			[]store.Cntlr{{Index: 0, CNID: elsewhere.ID, Primary: true}, {Index: 1, CNID: here.ID}})
		insertExp(t, db, b.da.ID, "b", host1)
		// c: nothing here.
		insertArray(t, db, "c",
			[]store.VD{{Index: 0, DNID: d2.ID, PDID: p2.ID, Size: vda.GiB}},
			[]store.Cntlr{{Index: 0, CNID: s1.ID, Primary: true}})

		want := store.CNState{CN: here, Cntlrs: []store.CntlrPlace{
			{
				Cntlr:       a.cntlrs[1],
				DA:          a.da,
				Primary:     peerOf(a.cntlrs[1], here),
				Secondaries: []store.CntlrPeer{peerOf(a.cntlrs[2], s1), peerOf(a.cntlrs[0], s2)},
				VDs:         []store.VDPath{pathOf(a.vds[1], d1), pathOf(a.vds[0], d2)},
				HostNQNs:    []string{"nqn.2016-06.io.example:alpha", "nqn.2016-06.io.example:zeta"},
			},
			{
				Cntlr:    b.cntlrs[1],
				DA:       b.da,
				Primary:  peerOf(b.cntlrs[0], elsewhere),
				HostNQNs: []string{host1},
			},
		}}
		slices.SortFunc(want.Cntlrs, func(x, y store.CntlrPlace) int { return cmp.Compare(x.ID, y.ID) })
		got := cnState(t, db, here.ID)
		assert.Equal(t, want, got)
		for _, p := range got.Cntlrs {
			if !p.Cntlr.Primary {
				assert.Nil(t, p.Secondaries, "a secondary gets no secondaries")
				assert.Nil(t, p.VDs, "a secondary gets no vds")
			}
		}

		// A cn holding only secondaries sees each primary, and nothing else.
		got = cnState(t, db, s1.ID)
		require.Len(t, got.Cntlrs, 2)
		for _, p := range got.Cntlrs {
			switch p.DAID {
			case a.da.ID:
				assert.Equal(t, peerOf(a.cntlrs[1], here), p.Primary)
				assert.Nil(t, p.VDs)
			default:
				assert.True(t, p.Cntlr.Primary, "s1 is c's primary")
				assert.Equal(t, []store.VDPath{pathOf(vdsOf(t, db, p.DAID)[0], d2)}, p.VDs)
				assert.Empty(t, p.Secondaries)
				assert.Empty(t, p.HostNQNs, "c has no exporters")
			}
		}
	})
}

func TestNodeStateEmptyAndMissing(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		t.Parallel()
		dn, cn := insertDN(t, db, "dn"), insertCN(t, db, "cn")

		st := dnState(t, db, dn.ID)
		assert.Equal(t, dn, st.DN)
		assert.Empty(t, st.PDs)
		assert.Empty(t, st.VDs)
		cs := cnState(t, db, cn.ID)
		assert.Equal(t, cn, cs.CN)
		assert.Empty(t, cs.Cntlrs)

		// A dn with a pd but no vds.
		pd := insertPD(t, db, dn.ID, "pd")
		st = dnState(t, db, dn.ID)
		assert.Equal(t, []store.PD{pd}, st.PDs)
		assert.Empty(t, st.VDs)

		tests := []struct {
			name string
			read func(ctx context.Context, tx *store.Tx) error
		}{
			{"unknown dn", func(ctx context.Context, tx *store.Tx) error {
				_, err := tx.DNState(ctx, vda.DNID(missingID(1)))
				return err
			}},
			{"unknown cn", func(ctx context.Context, tx *store.Tx) error {
				_, err := tx.CNState(ctx, vda.CNID(missingID(2)))
				return err
			}},
			{"a cn's id as a dn", func(ctx context.Context, tx *store.Tx) error {
				_, err := tx.DNState(ctx, vda.DNID(cn.ID))
				return err
			}},
			{"a dn's id as a cn", func(ctx context.Context, tx *store.Tx) error {
				_, err := tx.CNState(ctx, vda.CNID(dn.ID))
				return err
			}},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				err := db.View(t.Context(), tt.read)
				require.Error(t, err)
				assert.ErrorIs(t, err, vda.ErrNotFound)
			})
		}
	})
}

// TestCNStateAtScale reads a cn holding many controllers, of as many
// arrays, in three shapes: a primary with a vd and a secondary, a bare
// primary, and a secondary; some of the arrays have an exporter. The setup
// is kept lean (one transaction, few rows per array) because it dominates
// the test's time on SQLite under -race. maxInList is not reachable from
// this package, so this checks correctness at scale, not chunking.
func TestCNStateAtScale(t *testing.T) {
	t.Parallel()
	const n = 1000
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		t.Parallel()
		dn := insertDNAt(t, db, "dn", "10.0.1.1")
		pd := insertPD(t, db, dn.ID, "pd")
		cn, peer := insertCNAt(t, db, "cn", "10.0.2.1"), insertCNAt(t, db, "peer", "10.0.2.2")

		want := store.CNState{CN: cn, Cntlrs: make([]store.CntlrPlace, 0, n)}
		setup := time.Now()
		mustUpdate(t, db, func(ctx context.Context, tx *store.Tx) error {
			want.Cntlrs = want.Cntlrs[:0] // Update may run this again
			for i := range n {
				da := newDA(fmt.Sprintf("da-%04d", i))
				var vds []store.VD
				var cntlrs []store.Cntlr
				switch i % 4 {
				case 0: // primary here, with a vd and a secondary
					vds = []store.VD{{Index: 0, DNID: dn.ID, PDID: pd.ID, Size: vda.MiB}}
					cntlrs = []store.Cntlr{{Index: 0, CNID: cn.ID, Primary: true}, {Index: 1, CNID: peer.ID}}
				case 1: // a bare primary here
					cntlrs = []store.Cntlr{{Index: 0, CNID: cn.ID, Primary: true}}
				default: // a secondary here
					cntlrs = []store.Cntlr{{Index: 0, CNID: peer.ID, Primary: true}, {Index: 1, CNID: cn.ID}}
				}
				if err := tx.InsertDA(ctx, &da, vds, cntlrs); err != nil {
					return err
				}
				p := store.CntlrPlace{DA: da}
				switch i % 4 {
				case 0:
					p.Cntlr = cntlrs[0]
					p.Primary = peerOf(cntlrs[0], cn)
					p.Secondaries = []store.CntlrPeer{peerOf(cntlrs[1], peer)}
					p.VDs = []store.VDPath{pathOf(vds[0], dn)}
				case 1:
					p.Cntlr = cntlrs[0]
					p.Primary = peerOf(cntlrs[0], cn)
					p.Secondaries, p.VDs = []store.CntlrPeer{}, []store.VDPath{}
				default:
					p.Cntlr = cntlrs[1]
					p.Primary = peerOf(cntlrs[0], peer)
				}
				if i%20 == 0 || i%20 == 3 { // some primaries' arrays, some secondaries'
					nqn := fmt.Sprintf("nqn.2016-06.io.example:host-%04d", i)
					if err := tx.InsertExp(ctx, &store.Exp{DAID: da.ID, Name: "exp", HostNQN: nqn}); err != nil {
						return err
					}
					p.HostNQNs = []string{nqn}
				}
				want.Cntlrs = append(want.Cntlrs, p)
			}
			return nil
		})
		t.Logf("setup of %d arrays: %v", n, time.Since(setup))
		slices.SortFunc(want.Cntlrs, func(x, y store.CntlrPlace) int { return cmp.Compare(x.ID, y.ID) })

		start := time.Now()
		got := cnState(t, db, cn.ID)
		t.Logf("CNState of %d controllers: %v", n, time.Since(start))
		require.Len(t, got.Cntlrs, n)
		assert.Equal(t, want, got)
	})
}
