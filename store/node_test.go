package store_test

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/virtual-disk-array/vda"
	"github.com/virtual-disk-array/vda/store"
	"github.com/virtual-disk-array/vda/store/storetest"
)

// node is a dn or cn seen through the kind-independent part of its API.
type node struct {
	id string
	store.NodeSpec
}

// nodeAPI is the DN or CN half of the node API, so that one table of tests
// covers both.
type nodeAPI struct {
	kind   string
	insert func(ctx context.Context, tx *store.Tx, s *store.NodeSpec) (string, error)
	get    func(ctx context.Context, tx *store.Tx, name string) (node, error)
	byID   func(ctx context.Context, tx *store.Tx, id string) (node, error)
	list   func(ctx context.Context, tx *store.Tx, p store.Page) ([]node, error)
	update func(ctx context.Context, tx *store.Tx, n *node) error
	touch  func(ctx context.Context, tx *store.Tx, id string, gen uint64) (uint64, error)
	delete func(ctx context.Context, tx *store.Tx, n node) error
	status func(ctx context.Context, tx *store.Tx, id string) (store.NodeStatus, error)
	put    func(ctx context.Context, tx *store.Tx, id string, st store.NodeStatus) error
}

var dnAPI = nodeAPI{
	kind: "dn",
	insert: func(ctx context.Context, tx *store.Tx, s *store.NodeSpec) (string, error) {
		dn := store.DN{NodeSpec: *s}
		err := tx.InsertDN(ctx, &dn)
		*s = dn.NodeSpec
		return string(dn.ID), err
	},
	get: func(ctx context.Context, tx *store.Tx, name string) (node, error) {
		dn, err := tx.DN(ctx, name)
		return node{string(dn.ID), dn.NodeSpec}, err
	},
	byID: func(ctx context.Context, tx *store.Tx, id string) (node, error) {
		dn, err := tx.DNByID(ctx, vda.DNID(id))
		return node{string(dn.ID), dn.NodeSpec}, err
	},
	list: func(ctx context.Context, tx *store.Tx, p store.Page) ([]node, error) {
		dns, err := tx.DNs(ctx, p)
		out := make([]node, len(dns))
		for i, dn := range dns {
			out[i] = node{string(dn.ID), dn.NodeSpec}
		}
		return out, err
	},
	update: func(ctx context.Context, tx *store.Tx, n *node) error {
		dn := store.DN{ID: vda.DNID(n.id), NodeSpec: n.NodeSpec}
		err := tx.UpdateDN(ctx, &dn)
		n.NodeSpec = dn.NodeSpec
		return err
	},
	touch: func(ctx context.Context, tx *store.Tx, id string, gen uint64) (uint64, error) {
		return tx.TouchDN(ctx, vda.DNID(id), gen)
	},
	delete: func(ctx context.Context, tx *store.Tx, n node) error {
		return tx.DeleteDN(ctx, store.DN{ID: vda.DNID(n.id), NodeSpec: n.NodeSpec})
	},
	status: func(ctx context.Context, tx *store.Tx, id string) (store.NodeStatus, error) {
		return tx.DNStatus(ctx, vda.DNID(id))
	},
	put: func(ctx context.Context, tx *store.Tx, id string, st store.NodeStatus) error {
		return tx.PutDNStatus(ctx, vda.DNID(id), st)
	},
}

var cnAPI = nodeAPI{
	kind: "cn",
	insert: func(ctx context.Context, tx *store.Tx, s *store.NodeSpec) (string, error) {
		cn := store.CN{NodeSpec: *s}
		err := tx.InsertCN(ctx, &cn)
		*s = cn.NodeSpec
		return string(cn.ID), err
	},
	get: func(ctx context.Context, tx *store.Tx, name string) (node, error) {
		cn, err := tx.CN(ctx, name)
		return node{string(cn.ID), cn.NodeSpec}, err
	},
	byID: func(ctx context.Context, tx *store.Tx, id string) (node, error) {
		cn, err := tx.CNByID(ctx, vda.CNID(id))
		return node{string(cn.ID), cn.NodeSpec}, err
	},
	list: func(ctx context.Context, tx *store.Tx, p store.Page) ([]node, error) {
		cns, err := tx.CNs(ctx, p)
		out := make([]node, len(cns))
		for i, cn := range cns {
			out[i] = node{string(cn.ID), cn.NodeSpec}
		}
		return out, err
	},
	update: func(ctx context.Context, tx *store.Tx, n *node) error {
		cn := store.CN{ID: vda.CNID(n.id), NodeSpec: n.NodeSpec}
		err := tx.UpdateCN(ctx, &cn)
		n.NodeSpec = cn.NodeSpec
		return err
	},
	touch: func(ctx context.Context, tx *store.Tx, id string, gen uint64) (uint64, error) {
		return tx.TouchCN(ctx, vda.CNID(id), gen)
	},
	delete: func(ctx context.Context, tx *store.Tx, n node) error {
		return tx.DeleteCN(ctx, store.CN{ID: vda.CNID(n.id), NodeSpec: n.NodeSpec})
	},
	status: func(ctx context.Context, tx *store.Tx, id string) (store.NodeStatus, error) {
		return tx.CNStatus(ctx, vda.CNID(id))
	},
	put: func(ctx context.Context, tx *store.Tx, id string, st store.NodeStatus) error {
		return tx.PutCNStatus(ctx, vda.CNID(id), st)
	},
}

var nodeAPIs = []nodeAPI{dnAPI, cnAPI}

// eachNodeKind runs fn per backend, on one fresh store, for each node kind
// in turn: dns and cns are apart, so the kinds share the store.
func eachNodeKind(t *testing.T, fn func(t *testing.T, db *store.DB, api nodeAPI)) {
	t.Helper()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		t.Parallel()
		for _, api := range nodeAPIs {
			t.Run(api.kind, func(t *testing.T) { fn(t, db, api) })
		}
	})
}

// otherKind returns the API of the other node kind.
func (api nodeAPI) other() nodeAPI {
	if api.kind == "dn" {
		return cnAPI
	}
	return dnAPI
}

func (api nodeAPI) mustInsert(t *testing.T, db *store.DB, s store.NodeSpec) node {
	t.Helper()
	n := node{NodeSpec: s}
	mustUpdate(t, db, func(ctx context.Context, tx *store.Tx) error {
		var err error
		n.id, err = api.insert(ctx, tx, &n.NodeSpec)
		return err
	})
	return n
}

func (api nodeAPI) mustGet(t *testing.T, db *store.DB, id string) node {
	t.Helper()
	return view(t, db, func(ctx context.Context, tx *store.Tx) (node, error) { return api.byID(ctx, tx, id) })
}

func TestNodeInsertAndGet(t *testing.T) {
	t.Parallel()
	eachNodeKind(t, func(t *testing.T, db *store.DB, api nodeAPI) {
		before := time.Now()
		spec := nodeSpec("node-1")
		spec.Generation = 42 // ignored: a new node starts at 1
		n := api.mustInsert(t, db, spec)

		assert.Regexp(t, "^[0-9a-f]{16}$", n.id)
		assert.Equal(t, uint64(1), n.Generation)
		requireRecent(t, before, n.CreatedAt)

		byName := view(t, db, func(ctx context.Context, tx *store.Tx) (node, error) { return api.get(ctx, tx, "node-1") })
		assert.Equal(t, n, byName, "by name")
		assert.Equal(t, n, api.mustGet(t, db, n.id), "by id")
		assert.Equal(t, nodeSpec("node-1").Description, byName.Description, "UTF-8 description round-trips")

		st := view(t, db, func(ctx context.Context, tx *store.Tx) (store.NodeStatus, error) { return api.status(ctx, tx, n.id) })
		assert.Equal(t, store.NodeStatus{Health: store.HealthUnknown}, st, "a new node's status")

		t.Run("duplicate name", func(t *testing.T) {
			dup := nodeSpec("node-1")
			dup.Location = "elsewhere"
			err := db.Update(t.Context(), func(ctx context.Context, tx *store.Tx) error {
				_, err := api.insert(ctx, tx, &dup)
				return err
			})
			require.Error(t, err)
			assert.ErrorIs(t, err, vda.ErrAlreadyExists)
			assert.Equal(t, n, api.mustGet(t, db, n.id), "the first node is untouched")
			all := view(t, db, func(ctx context.Context, tx *store.Tx) ([]node, error) { return api.list(ctx, tx, store.Page{}) })
			assert.Equal(t, []node{n}, all, "and alone")
		})

		limits := []struct {
			name   string
			modify func(s *store.NodeSpec)
		}{
			{"zero values", func(s *store.NodeSpec) { *s = store.NodeSpec{Name: s.Name} }},
			{"largest hash code", func(s *store.NodeSpec) { s.HashCode = math.MaxUint32 }},
			{"hash code above int32", func(s *store.NodeSpec) { s.HashCode = 1 << 31 }},
			{"longest name", func(s *store.NodeSpec) { s.Name = strings.Repeat("n", vda.MaxNameLen) }},
			{"longest description", func(s *store.NodeSpec) {
				s.Description = strings.Repeat("é", vda.MaxDescriptionLen/2) // 1024 bytes
			}},
		}
		for i, tt := range limits {
			t.Run(tt.name, func(t *testing.T) {
				spec := nodeSpec(fmt.Sprintf("limit-%d", i))
				tt.modify(&spec)
				n := api.mustInsert(t, db, spec)
				got := api.mustGet(t, db, n.id)
				assert.Equal(t, n, got)
				assert.Equal(t, spec.HashCode, got.HashCode)
				assert.Equal(t, spec.Description, got.Description)
			})
		}
	})
}

func TestDNAndCNShareNames(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		t.Parallel()
		dn := insertDN(t, db, "node")
		cn := insertCN(t, db, "node")
		assert.NotEqual(t, string(dn.ID), string(cn.ID))
		gotDN := view(t, db, func(ctx context.Context, tx *store.Tx) (store.DN, error) { return tx.DN(ctx, "node") })
		gotCN := view(t, db, func(ctx context.Context, tx *store.Tx) (store.CN, error) { return tx.CN(ctx, "node") })
		assert.Equal(t, dn, gotDN)
		assert.Equal(t, cn, gotCN)
		assert.Equal(t, store.Counts{DNs: 1, CNs: 1}, counts(t, db))

		// DeleteDN of a dn that still has a pd fails through the foreign
		// key and leaves it all in place.
		pd := insertPD(t, db, dn.ID, "pd")
		err := db.Update(t.Context(), func(ctx context.Context, tx *store.Tx) error { return tx.DeleteDN(ctx, dn) })
		require.Error(t, err)
		assert.ErrorIs(t, err, vda.ErrFailedPrecondition)
		assert.Equal(t, dn, view(t, db, func(ctx context.Context, tx *store.Tx) (store.DN, error) { return tx.DNByID(ctx, dn.ID) }))
		_, err = viewErr(t, db, func(ctx context.Context, tx *store.Tx) (store.NodeStatus, error) { return tx.DNStatus(ctx, dn.ID) })
		assert.NoError(t, err, "the dn's status remains")
		assert.Equal(t, pd, getPD(t, db, pd.ID))

		// Without the pd the dn goes, and the cn of the same name stays.
		mustUpdate(t, db, func(ctx context.Context, tx *store.Tx) error {
			if err := tx.DeletePD(ctx, pd); err != nil {
				return err
			}
			return tx.DeleteDN(ctx, dn)
		})
		assert.Equal(t, store.Counts{CNs: 1}, counts(t, db))
		assert.Equal(t, cn, view(t, db, func(ctx context.Context, tx *store.Tx) (store.CN, error) { return tx.CN(ctx, "node") }))
	})
}

func TestNodeNotFound(t *testing.T) {
	t.Parallel()
	eachNodeKind(t, func(t *testing.T, db *store.DB, api nodeAPI) {
		// A node of the other kind is not found through this kind's doors.
		other := api.other()
		o := other.mustInsert(t, db, nodeSpec("other-"+api.kind))
		tests := []struct {
			name string
			fn   func(ctx context.Context, tx *store.Tx) (node, error)
		}{
			{"by name", func(ctx context.Context, tx *store.Tx) (node, error) { return api.get(ctx, tx, "nobody") }},
			{"by id", func(ctx context.Context, tx *store.Tx) (node, error) { return api.byID(ctx, tx, missingID(1)) }},
			{"other kind by name", func(ctx context.Context, tx *store.Tx) (node, error) { return api.get(ctx, tx, o.Name) }},
			{"other kind by id", func(ctx context.Context, tx *store.Tx) (node, error) { return api.byID(ctx, tx, o.id) }},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				_, err := viewErr(t, db, tt.fn)
				assert.ErrorIs(t, err, vda.ErrNotFound)
			})
		}
		writes := []struct {
			name string
			fn   txFn
		}{
			{"update", func(ctx context.Context, tx *store.Tx) error {
				n := node{id: missingID(2), NodeSpec: nodeSpec("ghost")}
				n.Generation = 1
				return api.update(ctx, tx, &n)
			}},
			{"touch", func(ctx context.Context, tx *store.Tx) error {
				_, err := api.touch(ctx, tx, missingID(3), 1)
				return err
			}},
			{"delete", func(ctx context.Context, tx *store.Tx) error {
				return api.delete(ctx, tx, node{id: missingID(4), NodeSpec: store.NodeSpec{Generation: 1}})
			}},
			// Not a conflict, which Update would retry in vain.
			{"update other kind", func(ctx context.Context, tx *store.Tx) error {
				n := o
				return api.update(ctx, tx, &n)
			}},
			{"touch other kind", func(ctx context.Context, tx *store.Tx) error {
				_, err := api.touch(ctx, tx, o.id, o.Generation)
				return err
			}},
			{"delete other kind", func(ctx context.Context, tx *store.Tx) error { return api.delete(ctx, tx, o) }},
		}
		for _, tt := range writes {
			t.Run(tt.name, func(t *testing.T) {
				err := once(t, db, tt.fn)
				assert.ErrorIs(t, err, vda.ErrNotFound)
			})
		}
		assert.Equal(t, o, other.mustGet(t, db, o.id), "the other kind's node is untouched")
		_, err := viewErr(t, db, func(ctx context.Context, tx *store.Tx) (store.NodeStatus, error) { return other.status(ctx, tx, o.id) })
		assert.NoError(t, err, "and keeps its status")
	})
}

// byteOrderNames are names whose byte order differs from case-insensitive
// and locale orders: every database must sort them alike.
var byteOrderNames = []string{"b", "B", "a", "A", "a-1", "a_1", "a.1", "a1", "0", "Z9", "a-10", "a-2", "z"}

func TestNodeListOrderAndPages(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		t.Parallel()
		// A node of each kind that the other kind's list must not show.
		only := map[string]string{
			"dn": insertDN(t, db, "dn-only").Name,
			"cn": insertCN(t, db, "cn-only").Name,
		}
		for _, api := range nodeAPIs {
			t.Run(api.kind, func(t *testing.T) {
				shuffled := slices.Clone(byteOrderNames)
				rand.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
				ids := map[string]string{only[api.kind]: view(t, db, func(ctx context.Context, tx *store.Tx) (node, error) {
					return api.get(ctx, tx, only[api.kind])
				}).id}
				mustUpdate(t, db, func(ctx context.Context, tx *store.Tx) error {
					for _, name := range shuffled {
						s := nodeSpec(name)
						id, err := api.insert(ctx, tx, &s)
						if err != nil {
							return err
						}
						ids[name] = id
					}
					return nil
				})
				want := append(slices.Clone(byteOrderNames), only[api.kind])
				slices.Sort(want) // Go compares strings bytewise
				list := func(p store.Page) []string {
					nodes := view(t, db, func(ctx context.Context, tx *store.Tx) ([]node, error) { return api.list(ctx, tx, p) })
					for _, n := range nodes {
						assert.Equal(t, ids[n.Name], n.id, "id of %s", n.Name)
					}
					return names(nodes, func(n node) string { return n.Name })
				}

				assert.Equal(t, want, list(store.Page{}), "no limit")
				for _, limit := range []int{1, 2, 5, len(want), len(want) + 1} {
					pages := pageAll(t, limit, list)
					assert.Equal(t, want, slices.Concat(pages...), "limit %d", limit)
					assert.Len(t, pages, (len(want)+limit-1)/limit, "limit %d", limit)
				}
				tests := []struct {
					name string
					page store.Page
					want []string
				}{
					{"after A", store.Page{After: "A"}, want[slices.Index(want, "A")+1:]},
					{"after a name that is not there", store.Page{After: "a-", Limit: 3}, []string{"a-1", "a-10", "a-2"}},
					{"after the last", store.Page{After: "z"}, []string{}},
					{"after everything", store.Page{After: "~", Limit: 2}, []string{}},
				}
				for _, tt := range tests {
					t.Run(tt.name, func(t *testing.T) {
						assert.Equal(t, tt.want, list(tt.page))
					})
				}
			})
		}
	})
}

func TestNodeUpdateAndTouch(t *testing.T) {
	t.Parallel()
	eachNodeKind(t, func(t *testing.T, db *store.DB, api nodeAPI) {
		n := api.mustInsert(t, db, nodeSpec("n"))
		created := n.CreatedAt

		changed := n
		changed.AgentAddr = "10.0.0.9:9520"
		changed.Listener = store.Listener{TrType: "rdma", AdrFam: "ipv6", TrAddr: "fe80::1", TrSvcID: "4421"}
		changed.Location = "rack-9"
		changed.Offline = false
		changed.HashCode = math.MaxUint32
		changed.Description = "ünïcödé ✓"
		changed.Name = "renamed" // names are immutable: not written
		changed.CreatedAt = time.Time{}
		mustUpdate(t, db, func(ctx context.Context, tx *store.Tx) error { return api.update(ctx, tx, &changed) })
		assert.Equal(t, uint64(2), changed.Generation, "the caller's copy moves on")

		got := api.mustGet(t, db, n.id)
		want := changed
		want.Name, want.CreatedAt = "n", created
		assert.Equal(t, want, got)

		// The same write again names generation 1, which is gone.
		stale := changed
		stale.Generation = 1
		stale.Location = "stale"
		err := once(t, db, func(ctx context.Context, tx *store.Tx) error { return api.update(ctx, tx, &stale) })
		assert.ErrorIs(t, err, store.ErrConflict)
		assert.ErrorIs(t, err, vda.ErrStaleGeneration)
		assert.Equal(t, uint64(1), stale.Generation, "a failed update leaves the caller's generation")
		assert.Equal(t, want, api.mustGet(t, db, n.id), "a stale update changes nothing")

		// A future generation is a conflict too.
		stale.Generation = 3
		err = once(t, db, func(ctx context.Context, tx *store.Tx) error { return api.update(ctx, tx, &stale) })
		assert.ErrorIs(t, err, store.ErrConflict)
		assert.Equal(t, want, api.mustGet(t, db, n.id))

		t.Run("touch", func(t *testing.T) {
			var gen uint64
			mustUpdate(t, db, func(ctx context.Context, tx *store.Tx) error {
				var err error
				gen, err = api.touch(ctx, tx, n.id, 2)
				return err
			})
			assert.Equal(t, uint64(3), gen)
			want.Generation = 3
			assert.Equal(t, want, api.mustGet(t, db, n.id), "touch changes the generation alone")

			err := once(t, db, func(ctx context.Context, tx *store.Tx) error {
				_, err := api.touch(ctx, tx, n.id, 2)
				return err
			})
			assert.ErrorIs(t, err, store.ErrConflict)
			assert.ErrorIs(t, err, vda.ErrStaleGeneration)
			assert.Equal(t, want, api.mustGet(t, db, n.id), "a stale touch changes nothing")

			// Several touches in one transaction each move it on.
			mustUpdate(t, db, func(ctx context.Context, tx *store.Tx) error {
				g := uint64(3)
				for range 3 {
					var err error
					if g, err = api.touch(ctx, tx, n.id, g); err != nil {
						return err
					}
				}
				return nil
			})
			assert.Equal(t, uint64(6), api.mustGet(t, db, n.id).Generation)
		})
	})
}

func TestNodeDelete(t *testing.T) {
	t.Parallel()
	eachNodeKind(t, func(t *testing.T, db *store.DB, api nodeAPI) {
		n := api.mustInsert(t, db, nodeSpec("doomed"))
		keep := api.mustInsert(t, db, nodeSpec("keep"))
		mustUpdate(t, db, func(ctx context.Context, tx *store.Tx) error {
			_, err := api.touch(ctx, tx, n.id, 1)
			return err
		})

		err := once(t, db, func(ctx context.Context, tx *store.Tx) error { return api.delete(ctx, tx, n) })
		assert.ErrorIs(t, err, store.ErrConflict, "delete names generation 1, the node is at 2")
		got := api.mustGet(t, db, n.id)
		assert.Equal(t, uint64(2), got.Generation, "a stale delete leaves the node")
		_, err = viewErr(t, db, func(ctx context.Context, tx *store.Tx) (store.NodeStatus, error) { return api.status(ctx, tx, n.id) })
		assert.NoError(t, err, "a stale delete leaves the node's status")

		mustUpdate(t, db, func(ctx context.Context, tx *store.Tx) error { return api.delete(ctx, tx, got) })
		_, err = viewErr(t, db, func(ctx context.Context, tx *store.Tx) (node, error) { return api.byID(ctx, tx, n.id) })
		assert.ErrorIs(t, err, vda.ErrNotFound)
		_, err = viewErr(t, db, func(ctx context.Context, tx *store.Tx) (node, error) { return api.get(ctx, tx, "doomed") })
		assert.ErrorIs(t, err, vda.ErrNotFound)
		_, err = viewErr(t, db, func(ctx context.Context, tx *store.Tx) (store.NodeStatus, error) { return api.status(ctx, tx, n.id) })
		assert.ErrorIs(t, err, vda.ErrNotFound, "the status goes with the node")

		assert.Equal(t, keep, api.mustGet(t, db, keep.id), "other nodes stay")
		_, err = viewErr(t, db, func(ctx context.Context, tx *store.Tx) (store.NodeStatus, error) { return api.status(ctx, tx, keep.id) })
		assert.NoError(t, err)

		err = once(t, db, func(ctx context.Context, tx *store.Tx) error { return api.delete(ctx, tx, got) })
		assert.ErrorIs(t, err, vda.ErrNotFound, "deleting twice")

		// The name is free again.
		again := api.mustInsert(t, db, nodeSpec("doomed"))
		assert.NotEqual(t, n.id, again.id)
	})
}
