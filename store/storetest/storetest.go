// Package storetest gives tests a fresh, migrated store on every database
// this machine offers: SQLite always, PostgreSQL when VDA_TEST_POSTGRES_DSN
// is set, MySQL/MariaDB when VDA_TEST_MYSQL_DSN is set. Each call creates a
// new database (a file, or CREATE DATABASE on the server) and drops it when
// the test ends, so tests can run in parallel. A DSN that is set but
// unreachable fails the test: CI must not pass by skipping a database.
package storetest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" driver
	"github.com/stretchr/testify/require"
	"github.com/virtual-disk-array/vda/store"
)

// Environment variables naming the test servers. The database in the DSN
// must exist; tests create their own databases beside it.
const (
	PostgresEnv = "VDA_TEST_POSTGRES_DSN"
	MySQLEnv    = "VDA_TEST_MYSQL_DSN"
)

// Backend is one database family to test on.
type Backend struct {
	Dialect store.Dialect
	// admin is the DSN from the environment; empty for SQLite.
	admin string
}

// Backends lists SQLite and every server whose DSN is set.
func Backends() []Backend {
	bs := []Backend{{Dialect: store.SQLite}}
	if dsn := os.Getenv(PostgresEnv); dsn != "" {
		bs = append(bs, Backend{Dialect: store.Postgres, admin: dsn})
	}
	if dsn := os.Getenv(MySQLEnv); dsn != "" {
		bs = append(bs, Backend{Dialect: store.MySQL, admin: strings.TrimPrefix(dsn, "mysql://")})
	}
	return bs
}

// Each runs fn as a subtest per backend, each with its own fresh store.
func Each(t *testing.T, fn func(t *testing.T, db *store.DB)) {
	t.Helper()
	for _, b := range Backends() {
		t.Run(string(b.Dialect), func(t *testing.T) {
			fn(t, Open(t, b))
		})
	}
}

// Open returns a migrated store on a fresh database of backend b, closed and
// dropped when t ends.
func Open(t testing.TB, b Backend) *store.DB {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	db, err := store.Open(ctx, store.Config{DSN: NewDSN(t, b)})
	require.NoError(t, err)
	t.Cleanup(func() { _ = db.Close() })
	return db
}

// NewDSN creates a fresh empty database on backend b and returns its DSN,
// for tests that open it several times (several portals on one store).
func NewDSN(t testing.TB, b Backend) string {
	t.Helper()
	name := "vda_test_" + randomHex()
	switch b.Dialect {
	case store.SQLite:
		return "sqlite:" + filepath.Join(t.TempDir(), name+".db")
	case store.Postgres:
		u, err := url.Parse(b.admin)
		require.NoError(t, err, "parse %s", PostgresEnv)
		admin := openAdmin(t, "pgx", b.admin, PostgresEnv)
		exec(t, admin, `CREATE DATABASE "`+name+`"`)
		t.Cleanup(func() { exec(t, admin, `DROP DATABASE IF EXISTS "`+name+`" WITH (FORCE)`) })
		u.Path = "/" + name
		return u.String()
	case store.MySQL:
		cfg, err := mysql.ParseDSN(b.admin)
		require.NoError(t, err, "parse %s", MySQLEnv)
		admin := openAdmin(t, "mysql", b.admin, MySQLEnv)
		exec(t, admin, "CREATE DATABASE `"+name+"` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin")
		t.Cleanup(func() { exec(t, admin, "DROP DATABASE IF EXISTS `"+name+"`") })
		cfg.DBName = name
		return "mysql://" + cfg.FormatDSN()
	}
	t.Fatalf("unknown backend %q", b.Dialect)
	return ""
}

func openAdmin(t testing.TB, driver, dsn, env string) *sql.DB {
	t.Helper()
	db, err := sql.Open(driver, dsn)
	require.NoError(t, err, "open %s", env)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	require.NoError(t, db.PingContext(ctx), "%s is set but the server does not answer", env)
	t.Cleanup(func() { _ = db.Close() })
	return db
}

func exec(t testing.TB, db *sql.DB, q string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err := db.ExecContext(ctx, q)
	require.NoError(t, err, q)
}

func randomHex() string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
