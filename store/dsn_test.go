package store

import (
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/virtual-disk-array/vda"
)

func TestParseDSN(t *testing.T) {
	t.Parallel()
	abs := func(p string) string {
		a, err := filepath.Abs(p)
		require.NoError(t, err)
		return a
	}
	dir := t.TempDir()
	tests := []struct {
		name    string
		dsn     string
		dialect Dialect
		driver  string
		path    string   // sqlite only
		exact   string   // the driver DSN, when it is passed on unchanged
		has     []string // substrings of the driver DSN
	}{
		{name: "sqlite colon", dsn: "sqlite:" + dir + "/a.db", dialect: SQLite, driver: "sqlite", path: dir + "/a.db"},
		{name: "sqlite relative", dsn: "sqlite:rel/b.db", dialect: SQLite, driver: "sqlite", path: abs("rel/b.db")},
		{name: "sqlite slashes", dsn: "sqlite://" + dir + "/c.db", dialect: SQLite, driver: "sqlite", path: dir + "/c.db"},
		{name: "sqlite no extension", dsn: "sqlite:" + dir + "/state", dialect: SQLite, driver: "sqlite", path: dir + "/state"},
		{name: "bare .db", dsn: "x.db", dialect: SQLite, driver: "sqlite", path: abs("x.db")},
		{name: "bare .sqlite", dsn: dir + "/y.sqlite", dialect: SQLite, driver: "sqlite", path: dir + "/y.sqlite"},
		{name: "bare .sqlite3", dsn: "z.sqlite3", dialect: SQLite, driver: "sqlite", path: abs("z.sqlite3")},
		{
			name: "postgres", dsn: "postgres://u:p@db.example:5432/vda?sslmode=disable",
			dialect: Postgres, driver: "pgx", exact: "postgres://u:p@db.example:5432/vda?sslmode=disable",
		},
		{
			name: "postgresql", dsn: "postgresql://u@db.example/vda",
			dialect: Postgres, driver: "pgx", exact: "postgresql://u@db.example/vda",
		},
		{
			name: "mysql", dsn: "mysql://root:pw@tcp(127.0.0.1:3306)/vda",
			dialect: MySQL, driver: "mysql",
			has: []string{"root:pw@tcp(127.0.0.1:3306)/vda?", "parseTime=true", "clientFoundRows=true", "sql_mode="},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			src, err := parseDSN(tt.dsn)
			require.NoError(t, err)
			assert.Equal(t, tt.dialect, src.dialect)
			assert.Equal(t, tt.driver, src.driver)
			assert.Equal(t, tt.path, src.path)
			if tt.exact != "" {
				assert.Equal(t, tt.exact, src.dsn)
			}
			for _, s := range tt.has {
				assert.Contains(t, src.dsn, s)
			}
			if tt.dialect == SQLite {
				// The settings VDA relies on: foreign keys and IMMEDIATE
				// write transactions.
				assert.Equal(t, "file:"+tt.path+"?", src.dsn[:len("file:"+tt.path+"?")])
				assert.Contains(t, src.dsn, "foreign_keys%281%29")
				assert.Contains(t, src.dsn, "busy_timeout")
				assert.Contains(t, src.dsn, "_txlock=immediate")
			}
		})
	}
}

func TestParseDSNRejects(t *testing.T) {
	t.Parallel()
	tests := []struct{ name, dsn string }{
		{"empty", ""},
		{"garbage", "garbage"},
		{"unknown scheme", "redis://h:6379/0"},
		{"sqlite memory", "sqlite::memory:"},
		{"sqlite slashes memory", "sqlite://:memory:"},
		{"sqlite no path", "sqlite:"},
		{"sqlite slashes no path", "sqlite://"},
		{"sqlite options", "sqlite:a.db?_pragma=foreign_keys(0)"},
		{"mysql not a dsn", "mysql://root@127.0.0.1:3306"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := parseDSN(tt.dsn)
			require.Error(t, err)
			assert.ErrorIs(t, err, vda.ErrInvalidArgument)
		})
	}
}

func TestRedact(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, dsn string
		keep      []string // what the redacted DSN still shows
	}{
		{"postgres", "postgres://vda:hunter2@db.example:5432/vda?sslmode=disable", []string{"vda:", "db.example:5432/vda", "sslmode=disable"}},
		{"mysql", "mysql://vda:hunter2@tcp(db.example:3306)/vda", []string{"vda", "db.example:3306", "/vda"}},
		{"mysql password with @", "mysql://vda:hun@ter2@tcp(db.example:3306)/vda", []string{"db.example:3306"}},
		{"mysql unparseable", "mysql://vda:hunter2@tcp(db.example:3306)", []string{"db.example:3306"}},
		{"unknown scheme", "redis://vda:hunter2@db.example/0", []string{"db.example"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := redact(tt.dsn)
			assert.NotContains(t, got, "hunter2")
			assert.NotContains(t, got, "ter2")
			for _, s := range tt.keep {
				assert.Contains(t, got, s)
			}
		})
	}
	t.Run("no password", func(t *testing.T) {
		t.Parallel()
		for _, dsn := range []string{"postgres://vda@db.example/vda", "mysql://vda@tcp(db.example:3306)/vda", "sqlite:/var/lib/vda.db"} {
			assert.Equal(t, dsn, redact(dsn))
		}
	})
}

func TestDSNErrorsHidePasswords(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		dsn  string
		want error
	}{
		{"unknown scheme", "redis://vda:hunter2@db.example/0", vda.ErrInvalidArgument},
		// Nothing listens on port 1: Open fails to connect.
		{"postgres unreachable", "postgres://vda:hunter2@127.0.0.1:1/vda?sslmode=disable&connect_timeout=5", vda.ErrUnavailable},
		{"mysql unreachable", "mysql://vda:hunter2@tcp(127.0.0.1:1)/vda?timeout=5s", vda.ErrUnavailable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			db, err := Open(t.Context(), Config{DSN: tt.dsn})
			if db != nil {
				_ = db.Close()
			}
			require.Error(t, err)
			assert.ErrorIs(t, err, tt.want)
			assert.NotContains(t, err.Error(), "hunter2")
		})
	}
}

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		cfg   Config
		wants []string // substrings of the error; none means valid
	}{
		{"valid", Config{DSN: "sqlite:a.db"}, nil},
		{"valid with limits", Config{DSN: "sqlite:a.db", MaxAttempts: 1, MaxOpenConns: 1}, nil},
		{"no dsn", Config{}, []string{"empty DSN"}},
		{"everything wrong", Config{DSN: "", MaxAttempts: -1, MaxOpenConns: -1}, []string{"empty DSN", "MaxAttempts", "MaxOpenConns"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := tt.cfg.Validate()
			if tt.wants == nil {
				assert.NoError(t, err)
				return
			}
			require.Error(t, err)
			assert.ErrorIs(t, err, vda.ErrInvalidArgument)
			for _, w := range tt.wants {
				assert.Contains(t, err.Error(), w)
			}
		})
	}
}
