package store_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/virtual-disk-array/vda"
	"github.com/virtual-disk-array/vda/store"
	"github.com/virtual-disk-array/vda/store/storetest"
)

// txFn is the shape of the functions given to Update and View.
type txFn = func(ctx context.Context, tx *store.Tx) error

// backendOf returns the storetest backend db runs on, for tests that need a
// second database of the same kind (their own Config, or raw SQL access).
func backendOf(t *testing.T, db *store.DB) storetest.Backend {
	t.Helper()
	for _, b := range storetest.Backends() {
		if b.Dialect == db.Dialect() {
			return b
		}
	}
	t.Fatalf("no storetest backend for dialect %q", db.Dialect())
	return storetest.Backend{}
}

// openStore opens dsn with cfg (cfg.DSN is set here) and closes it when t
// ends.
func openStore(t *testing.T, dsn string, cfg store.Config) *store.DB {
	t.Helper()
	cfg.DSN = dsn
	db, err := store.Open(t.Context(), cfg)
	require.NoError(t, err)
	t.Cleanup(func() { _ = db.Close() })
	return db
}

// freshStore opens a new, empty store on db's backend with cfg.
func freshStore(t *testing.T, db *store.DB, cfg store.Config) *store.DB {
	t.Helper()
	return openStore(t, storetest.NewDSN(t, backendOf(t, db)), cfg)
}

// rawDB opens a storetest DSN with the plain database/sql driver the store
// uses, for looking at tables the store's API does not expose.
func rawDB(t *testing.T, dsn string) *sql.DB {
	t.Helper()
	var driver, src string
	switch {
	case strings.HasPrefix(dsn, "sqlite:"):
		driver, src = "sqlite", strings.TrimPrefix(dsn, "sqlite:")
	case strings.HasPrefix(dsn, "postgres://"):
		driver, src = "pgx", dsn
	case strings.HasPrefix(dsn, "mysql://"):
		driver, src = "mysql", strings.TrimPrefix(dsn, "mysql://")
	default:
		t.Fatalf("rawDB: unknown DSN %q", dsn)
	}
	db, err := sql.Open(driver, src)
	require.NoError(t, err)
	t.Cleanup(func() { _ = db.Close() })
	return db
}

// countRows counts the rows of a table through a raw connection.
func countRows(t *testing.T, db *sql.DB, table string) int {
	t.Helper()
	var n int
	require.NoError(t, db.QueryRowContext(t.Context(), "SELECT COUNT(*) FROM "+table).Scan(&n))
	return n
}

// mustUpdate runs fn in an Update that must succeed.
func mustUpdate(t *testing.T, db *store.DB, fn txFn) {
	t.Helper()
	require.NoError(t, db.Update(t.Context(), fn))
}

// errNoRetry stands in for a conflict inside once, to keep Update from
// running fn again.
var errNoRetry = errors.New("conflict, not retried")

// once runs fn in one Update attempt and returns its error. Update retries a
// conflict with backoff up to MaxAttempts times; tests that expect a
// conflict from a stale generation want fn's error at once instead. Other
// errors come back as Update returns them (classified: foreign keys are
// vda.ErrFailedPrecondition and so on).
func once(t *testing.T, db *store.DB, fn txFn) error {
	t.Helper()
	calls := 0
	var conflict error
	err := db.Update(t.Context(), func(ctx context.Context, tx *store.Tx) error {
		calls++
		err := fn(ctx, tx)
		if errors.Is(err, store.ErrConflict) {
			conflict = err
			return errNoRetry
		}
		return err
	})
	require.Equal(t, 1, calls, "fn runs once")
	if conflict != nil {
		require.ErrorIs(t, err, errNoRetry)
		return conflict
	}
	return err
}

// view runs fn in a View that must succeed and returns its result.
func view[T any](t *testing.T, db *store.DB, fn func(ctx context.Context, tx *store.Tx) (T, error)) T {
	t.Helper()
	out, err := viewErr(t, db, fn)
	require.NoError(t, err)
	return out
}

// viewErr runs fn in a View and returns its result and error.
func viewErr[T any](t *testing.T, db *store.DB, fn func(ctx context.Context, tx *store.Tx) (T, error)) (T, error) {
	t.Helper()
	var out T
	err := db.View(t.Context(), func(ctx context.Context, tx *store.Tx) error {
		var err error
		out, err = fn(ctx, tx)
		return err
	})
	return out, err
}

// nodeSpec returns a node's desired state with every field set, so that a
// round trip checks every column.
func nodeSpec(name string) store.NodeSpec {
	return store.NodeSpec{
		Name:      name,
		AgentAddr: "10.0.0.1:9520",
		Listener:  store.Listener{TrType: "tcp", AdrFam: "ipv4", TrAddr: "10.0.0.1", TrSvcID: "4420"},
		Location:  "rack-1",
		Offline:   true,
		HashCode:  12345,
		// Multi-byte UTF-8, including a 4-byte rune (MySQL's utf8mb4).
		Description: "disk node — données, 日本語, 🚀",
	}
}

func insertDN(t *testing.T, db *store.DB, name string) store.DN {
	t.Helper()
	dn := store.DN{NodeSpec: nodeSpec(name)}
	mustUpdate(t, db, func(ctx context.Context, tx *store.Tx) error { return tx.InsertDN(ctx, &dn) })
	return dn
}

func insertCN(t *testing.T, db *store.DB, name string) store.CN {
	t.Helper()
	cn := store.CN{NodeSpec: nodeSpec(name)}
	mustUpdate(t, db, func(ctx context.Context, tx *store.Tx) error { return tx.InsertCN(ctx, &cn) })
	return cn
}

func newPD(dn vda.DNID, name string) store.PD {
	return store.PD{
		DNID: dn, Name: name, Kind: store.PDMalloc, Size: 64 * vda.GiB,
		CapacityEstimate: vda.EstimatedLvstoreCapacity(64 * vda.GiB), Description: "pd " + name,
	}
}

func insertPD(t *testing.T, db *store.DB, dn vda.DNID, name string) store.PD {
	t.Helper()
	pd := newPD(dn, name)
	mustUpdate(t, db, func(ctx context.Context, tx *store.Tx) error { return tx.InsertPD(ctx, &pd) })
	return pd
}

func newDA(name string) store.DA {
	return store.DA{
		Name: name, Size: 8 * vda.GiB, RaidLevel: store.Raid0, VDCount: 2, StripSizeKB: 64,
		CntlrCount: 2, Description: "array " + name,
	}
}

// fixture is a small cluster: two dns with a pd each, two cns.
type fixture struct {
	dn1, dn2 store.DN
	pd1, pd2 store.PD
	cn1, cn2 store.CN
}

func newFixture(t *testing.T, db *store.DB) fixture {
	t.Helper()
	var f fixture
	f.dn1, f.dn2 = insertDN(t, db, "dn1"), insertDN(t, db, "dn2")
	f.pd1, f.pd2 = insertPD(t, db, f.dn1.ID, "pd1"), insertPD(t, db, f.dn2.ID, "pd2")
	f.cn1, f.cn2 = insertCN(t, db, "cn1"), insertCN(t, db, "cn2")
	return f
}

// placedDA is an array inserted with its children.
type placedDA struct {
	da     store.DA
	vds    []store.VD
	cntlrs []store.Cntlr
}

// insertDA inserts an array with a vd on each of f's pds and a controller
// on each of its cns. The children are given in reverse index order, so
// that reads must sort them.
func insertDA(t *testing.T, db *store.DB, f fixture, name string) placedDA {
	t.Helper()
	p := placedDA{
		da: newDA(name),
		vds: []store.VD{
			{Index: 1, DNID: f.dn2.ID, PDID: f.pd2.ID, Size: 4 * vda.GiB},
			{Index: 0, DNID: f.dn1.ID, PDID: f.pd1.ID, Size: 4 * vda.GiB},
		},
		cntlrs: []store.Cntlr{
			{Index: 1, CNID: f.cn2.ID},
			{Index: 0, CNID: f.cn1.ID, Primary: true},
		},
	}
	mustUpdate(t, db, func(ctx context.Context, tx *store.Tx) error {
		return tx.InsertDA(ctx, &p.da, p.vds, p.cntlrs)
	})
	return p
}

// counts returns the store's Counts.
func counts(t *testing.T, db *store.DB) store.Counts {
	t.Helper()
	return view(t, db, func(ctx context.Context, tx *store.Tx) (store.Counts, error) { return tx.Counts(ctx) })
}

// requireRecent checks a CreatedAt set by the store: UTC, whole
// milliseconds, between before and now.
func requireRecent(t *testing.T, before, got time.Time) {
	t.Helper()
	require.Equal(t, time.UTC, got.Location(), "CreatedAt is UTC")
	require.Zero(t, got.Nanosecond()%int(time.Millisecond), "CreatedAt has whole milliseconds")
	require.False(t, got.Before(before.Truncate(time.Millisecond)), "CreatedAt %v before %v", got, before)
	require.False(t, got.After(time.Now()), "CreatedAt %v in the future", got)
}

// names returns each item's name.
func names[T any](items []T, name func(T) string) []string {
	out := make([]string, len(items))
	for i, it := range items {
		out[i] = name(it)
	}
	return out
}

// pageAll lists with Page{Limit: limit}, following After from page to page
// until a short page, and returns the pages.
func pageAll(t *testing.T, limit int, list func(p store.Page) []string) [][]string {
	t.Helper()
	var pages [][]string
	after := ""
	for i := 0; ; i++ {
		require.Less(t, i, 100, "pagination does not end")
		page := list(store.Page{After: after, Limit: limit})
		require.LessOrEqual(t, len(page), limit, "page %d longer than the limit", i)
		if len(page) > 0 {
			pages = append(pages, page)
			after = page[len(page)-1]
		}
		if len(page) < limit {
			return pages
		}
	}
}

// missingID returns a string with an id's shape that no row has.
func missingID(i int) string { return fmt.Sprintf("%016x", 0xdead0000+i) }
