package store

import (
	"fmt"
	"net/url"
	"path/filepath"
	"strings"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/virtual-disk-array/vda"
)

// Dialect names a database family.
type Dialect string

const (
	SQLite   Dialect = "sqlite"
	Postgres Dialect = "postgres"
	MySQL    Dialect = "mysql"
)

// source is a parsed DSN: the database/sql driver name and its own DSN.
type source struct {
	dialect Dialect
	driver  string
	dsn     string
	// path is the SQLite file, empty for the other dialects.
	path string
}

// parseDSN accepts:
//
//	sqlite:<path> | sqlite://<path> | a path ending in .db, .sqlite or .sqlite3
//	postgres://... | postgresql://...     (pgx)
//	mysql://user:pass@tcp(host:port)/db    (go-sql-driver/mysql syntax after the scheme)
//
// It adds the connection settings VDA relies on (SQLite: WAL, a busy timeout,
// foreign keys and IMMEDIATE write transactions; MySQL: UTC and parseTime).
func parseDSN(dsn string) (source, error) {
	switch {
	case dsn == "":
		return source{}, vda.Invalidf("empty DSN")
	case strings.HasPrefix(dsn, "postgres://"), strings.HasPrefix(dsn, "postgresql://"):
		return source{dialect: Postgres, driver: "pgx", dsn: dsn}, nil
	case strings.HasPrefix(dsn, "mysql://"):
		cfg, err := mysql.ParseDSN(strings.TrimPrefix(dsn, "mysql://"))
		if err != nil {
			return source{}, vda.Invalidf("mysql DSN: %v", err)
		}
		cfg.ParseTime = true
		cfg.Loc = time.UTC
		cfg.MultiStatements = false
		// Guarded writes count matched rows, not changed ones.
		cfg.ClientFoundRows = true
		if cfg.Params == nil {
			cfg.Params = map[string]string{}
		}
		// Strict mode turns silent truncation into errors.
		cfg.Params["sql_mode"] = "'STRICT_ALL_TABLES,NO_ENGINE_SUBSTITUTION'"
		return source{dialect: MySQL, driver: "mysql", dsn: cfg.FormatDSN()}, nil
	}
	path := ""
	switch {
	case strings.HasPrefix(dsn, "sqlite://"):
		path = strings.TrimPrefix(dsn, "sqlite://")
	case strings.HasPrefix(dsn, "sqlite:"):
		path = strings.TrimPrefix(dsn, "sqlite:")
	case strings.HasSuffix(dsn, ".db"), strings.HasSuffix(dsn, ".sqlite"), strings.HasSuffix(dsn, ".sqlite3"):
		path = dsn
	default:
		return source{}, vda.Invalidf("DSN %q: want sqlite:<path>, postgres://... or mysql://...", redact(dsn))
	}
	if path == "" || strings.Contains(path, "?") || path == ":memory:" {
		return source{}, vda.Invalidf("sqlite DSN %q: want a file path without options (in-memory databases are per connection)", dsn)
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return source{}, fmt.Errorf("sqlite path %q: %w", path, err)
	}
	q := url.Values{}
	q.Add("_pragma", "busy_timeout(10000)")
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "synchronous(FULL)")
	q.Add("_pragma", "foreign_keys(1)")
	q.Set("_txlock", "immediate")
	return source{dialect: SQLite, driver: "sqlite", dsn: "file:" + abs + "?" + q.Encode(), path: abs}, nil
}

// redact hides a password in a DSN, for error messages and logs.
func redact(dsn string) string {
	if rest, ok := strings.CutPrefix(dsn, "mysql://"); ok {
		// go-sql-driver syntax, which url.Parse rejects:
		// user:pass@tcp(host:port)/db, the password up to the last '@'.
		if cfg, err := mysql.ParseDSN(rest); err == nil {
			if cfg.Passwd == "" {
				return dsn
			}
			return "mysql://" + cfg.User + ":xxxxx" + rest[len(cfg.User)+1+len(cfg.Passwd):]
		}
		if i := strings.LastIndexByte(rest, '@'); i >= 0 {
			return "mysql://xxxxx" + rest[i:]
		}
		return dsn
	}
	u, err := url.Parse(dsn)
	if err != nil || u.User == nil {
		return dsn
	}
	if _, ok := u.User.Password(); ok {
		u.User = url.UserPassword(u.User.Username(), "xxxxx")
	}
	return u.String()
}
