package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/uptrace/bun"
)

// A migration moves the schema one version forward. Shipped migrations are
// never edited: a change to the schema is a new migration appended to
// migrations. Each migration is idempotent (IF NOT EXISTS), because on MySQL
// DDL commits implicitly and a crash can leave a migration half-applied; the
// next start then runs it again.
type migration struct {
	version int
	name    string
	up      func(ctx context.Context, db bun.IDB, d Dialect) error
}

// migrations is the ordered set of schema versions.
var migrations = []migration{
	{1, "initial schema", migrateInitial},
	{2, "node event log", migrateMonitor},
	{3, "monitor leases", migrateLeases},
	{4, "api tokens", migrateTokens},
}

// SchemaVersion is the schema version this build creates and understands.
func SchemaVersion() int { return migrations[len(migrations)-1].version }

// ErrSchemaTooNew means the database was migrated by a newer VDA.
var ErrSchemaTooNew = errors.New("database schema is newer than this build")

const migrationsTable = `CREATE TABLE IF NOT EXISTS vda_schema_migrations (
	version INTEGER NOT NULL PRIMARY KEY,
	name VARCHAR(255) NOT NULL,
	applied_at BIGINT NOT NULL
)`

// pgMigrateLock is the advisory lock key that serialises migrations on
// PostgreSQL ("vda" in ASCII, padded).
const pgMigrateLock = 0x76646100

// migrate brings the schema to SchemaVersion. It is safe to run from many
// processes at once: SQLite serialises it in one IMMEDIATE transaction,
// PostgreSQL in one transaction under an advisory lock (DDL is transactional
// there, so a crash rolls everything back), MySQL under a named lock.
func migrate(ctx context.Context, db *bun.DB, d Dialect, now func() time.Time) error {
	switch d {
	case MySQL:
		conn, err := db.Conn(ctx)
		if err != nil {
			return err
		}
		defer conn.Close()
		var got sql.NullInt64
		if err := conn.QueryRowContext(ctx, "SELECT GET_LOCK('vda_schema_migrations', 120)").Scan(&got); err != nil {
			return fmt.Errorf("take migration lock: %w", err)
		}
		if !got.Valid || got.Int64 != 1 {
			return fmt.Errorf("take migration lock: timed out")
		}
		defer func() {
			// A fresh context: release even when ctx is done.
			_, _ = conn.ExecContext(context.Background(), "SELECT RELEASE_LOCK('vda_schema_migrations')")
		}()
		return applyMigrations(ctx, conn, d, now)
	default:
		return db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
			if d == Postgres {
				if _, err := tx.ExecContext(ctx, "SELECT pg_advisory_xact_lock(?)", pgMigrateLock); err != nil {
					return fmt.Errorf("take migration lock: %w", err)
				}
			}
			return applyMigrations(ctx, tx, d, now)
		})
	}
}

func applyMigrations(ctx context.Context, db bun.IDB, d Dialect, now func() time.Time) error {
	if _, err := db.ExecContext(ctx, migrationsTable); err != nil {
		return fmt.Errorf("create migrations table: %w", err)
	}
	var applied []int
	if err := db.NewSelect().Table("vda_schema_migrations").Column("version").Scan(ctx, &applied); err != nil {
		return fmt.Errorf("read applied migrations: %w", err)
	}
	done := map[int]bool{}
	for _, v := range applied {
		done[v] = true
		if v > SchemaVersion() {
			return fmt.Errorf("%w: database has version %d, this build knows up to %d", ErrSchemaTooNew, v, SchemaVersion())
		}
	}
	for _, m := range migrations {
		if done[m.version] {
			continue
		}
		if err := m.up(ctx, db, d); err != nil {
			return fmt.Errorf("migration %d (%s): %w", m.version, m.name, err)
		}
		if _, err := db.NewRaw("INSERT INTO vda_schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
			m.version, m.name, now().UnixMilli()).Exec(ctx); err != nil {
			return fmt.Errorf("record migration %d: %w", m.version, err)
		}
	}
	return nil
}

// execAll runs DDL statements in order. Placeholders in the text: {name} is
// a name column type (byte-ordered, case-sensitive on every database), {tail}
// ends a CREATE TABLE (MySQL: InnoDB, utf8mb4 with byte order).
func execAll(ctx context.Context, db bun.IDB, d Dialect, stmts []string) error {
	nameType := map[Dialect]string{
		SQLite:   "VARCHAR(64)",
		Postgres: `VARCHAR(64) COLLATE "C"`,
		MySQL:    "VARCHAR(64)",
	}[d]
	tail := ""
	if d == MySQL {
		tail = " ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin"
	}
	for _, s := range stmts {
		s = strings.ReplaceAll(s, "{name}", nameType)
		s = strings.ReplaceAll(s, "{tail}", tail)
		if _, err := db.ExecContext(ctx, s); err != nil {
			return fmt.Errorf("%s: %w", firstLine(s), err)
		}
	}
	return nil
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}

// migrateInitial creates the version 1 schema. Desired state (node, pd, da,
// vd, cntlr, exp) and observed status (*_status) are separate tables. Ids are
// 16 hex digits; times are Unix milliseconds, which every database stores
// alike.
func migrateInitial(ctx context.Context, db bun.IDB, d Dialect) error {
	index := func(name, table, cols string) string {
		return fmt.Sprintf("CREATE INDEX IF NOT EXISTS %s ON %s (%s)", name, table, cols)
	}
	inline := func(name, cols string) string {
		if d == MySQL {
			return fmt.Sprintf(",\n\tINDEX %s (%s)", name, cols)
		}
		return ""
	}
	stmts := []string{
		`CREATE TABLE IF NOT EXISTS node (
	id VARCHAR(32) NOT NULL PRIMARY KEY,
	kind VARCHAR(8) NOT NULL,
	name {name} NOT NULL,
	agent_addr VARCHAR(255) NOT NULL,
	trtype VARCHAR(16) NOT NULL,
	adrfam VARCHAR(16) NOT NULL,
	traddr VARCHAR(255) NOT NULL,
	trsvcid VARCHAR(16) NOT NULL,
	location VARCHAR(255) NOT NULL,
	offline BOOLEAN NOT NULL,
	hash_code BIGINT NOT NULL,
	description VARCHAR(1024) NOT NULL,
	generation BIGINT NOT NULL,
	created_at BIGINT NOT NULL,
	CONSTRAINT node_kind_name UNIQUE (kind, name)` + inline("node_hash", "kind, hash_code") + `
){tail}`,
		`CREATE TABLE IF NOT EXISTS node_status (
	node_id VARCHAR(32) NOT NULL PRIMARY KEY,
	health VARCHAR(16) NOT NULL,
	error TEXT NOT NULL,
	generation BIGINT NOT NULL,
	applied_generation BIGINT NOT NULL,
	reported_at BIGINT NOT NULL,
	CONSTRAINT node_status_node FOREIGN KEY (node_id) REFERENCES node (id) ON DELETE CASCADE
){tail}`,
		`CREATE TABLE IF NOT EXISTS pd (
	id VARCHAR(32) NOT NULL PRIMARY KEY,
	dn_id VARCHAR(32) NOT NULL,
	name {name} NOT NULL,
	kind VARCHAR(16) NOT NULL,
	size BIGINT NOT NULL,
	path VARCHAR(4096) NOT NULL,
	pcie_addr VARCHAR(32) NOT NULL,
	offline BOOLEAN NOT NULL,
	description VARCHAR(1024) NOT NULL,
	capacity_estimate BIGINT NOT NULL,
	allocated BIGINT NOT NULL,
	generation BIGINT NOT NULL,
	created_at BIGINT NOT NULL,
	CONSTRAINT pd_dn_name UNIQUE (dn_id, name),
	CONSTRAINT pd_dn FOREIGN KEY (dn_id) REFERENCES node (id)
){tail}`,
		`CREATE TABLE IF NOT EXISTS pd_status (
	pd_id VARCHAR(32) NOT NULL PRIMARY KEY,
	health VARCHAR(16) NOT NULL,
	error TEXT NOT NULL,
	reported_at BIGINT NOT NULL,
	capacity BIGINT NOT NULL,
	free BIGINT NOT NULL,
	CONSTRAINT pd_status_pd FOREIGN KEY (pd_id) REFERENCES pd (id) ON DELETE CASCADE
){tail}`,
		`CREATE TABLE IF NOT EXISTS da (
	id VARCHAR(32) NOT NULL PRIMARY KEY,
	name {name} NOT NULL,
	size BIGINT NOT NULL,
	raid_level VARCHAR(16) NOT NULL,
	vd_count INTEGER NOT NULL,
	strip_size_kb INTEGER NOT NULL,
	cntlr_count INTEGER NOT NULL,
	description VARCHAR(1024) NOT NULL,
	generation BIGINT NOT NULL,
	created_at BIGINT NOT NULL,
	CONSTRAINT da_name UNIQUE (name)
){tail}`,
		`CREATE TABLE IF NOT EXISTS vd (
	id VARCHAR(32) NOT NULL PRIMARY KEY,
	da_id VARCHAR(32) NOT NULL,
	idx INTEGER NOT NULL,
	dn_id VARCHAR(32) NOT NULL,
	pd_id VARCHAR(32) NOT NULL,
	size BIGINT NOT NULL,
	CONSTRAINT vd_da_idx UNIQUE (da_id, idx),
	CONSTRAINT vd_da FOREIGN KEY (da_id) REFERENCES da (id),
	CONSTRAINT vd_dn FOREIGN KEY (dn_id) REFERENCES node (id),
	CONSTRAINT vd_pd FOREIGN KEY (pd_id) REFERENCES pd (id)` + inline("vd_dn_idx", "dn_id") + inline("vd_pd_idx", "pd_id") + `
){tail}`,
		`CREATE TABLE IF NOT EXISTS vd_status (
	vd_id VARCHAR(32) NOT NULL PRIMARY KEY,
	health VARCHAR(16) NOT NULL,
	error TEXT NOT NULL,
	reported_at BIGINT NOT NULL,
	CONSTRAINT vd_status_vd FOREIGN KEY (vd_id) REFERENCES vd (id) ON DELETE CASCADE
){tail}`,
		`CREATE TABLE IF NOT EXISTS cntlr (
	id VARCHAR(32) NOT NULL PRIMARY KEY,
	da_id VARCHAR(32) NOT NULL,
	idx INTEGER NOT NULL,
	cn_id VARCHAR(32) NOT NULL,
	is_primary BOOLEAN NOT NULL,
	CONSTRAINT cntlr_da_idx UNIQUE (da_id, idx),
	CONSTRAINT cntlr_da FOREIGN KEY (da_id) REFERENCES da (id),
	CONSTRAINT cntlr_cn FOREIGN KEY (cn_id) REFERENCES node (id)` + inline("cntlr_cn_idx", "cn_id") + `
){tail}`,
		`CREATE TABLE IF NOT EXISTS cntlr_status (
	cntlr_id VARCHAR(32) NOT NULL PRIMARY KEY,
	health VARCHAR(16) NOT NULL,
	error TEXT NOT NULL,
	reported_at BIGINT NOT NULL,
	CONSTRAINT cntlr_status_cntlr FOREIGN KEY (cntlr_id) REFERENCES cntlr (id) ON DELETE CASCADE
){tail}`,
		`CREATE TABLE IF NOT EXISTS exp (
	id VARCHAR(32) NOT NULL PRIMARY KEY,
	da_id VARCHAR(32) NOT NULL,
	name {name} NOT NULL,
	host_nqn VARCHAR(223) NOT NULL,
	description VARCHAR(1024) NOT NULL,
	generation BIGINT NOT NULL,
	created_at BIGINT NOT NULL,
	CONSTRAINT exp_da_name UNIQUE (da_id, name),
	CONSTRAINT exp_da_host UNIQUE (da_id, host_nqn),
	CONSTRAINT exp_da FOREIGN KEY (da_id) REFERENCES da (id)
){tail}`,
	}
	stmts = append(stmts,
		`CREATE TABLE IF NOT EXISTS placement_lock (
	id INTEGER NOT NULL PRIMARY KEY,
	placements BIGINT NOT NULL
){tail}`)
	if d != MySQL {
		stmts = append(stmts,
			index("node_hash", "node", "kind, hash_code"),
			index("vd_dn_idx", "vd", "dn_id"),
			index("vd_pd_idx", "vd", "pd_id"),
			index("cntlr_cn_idx", "cntlr", "cn_id"),
		)
	}
	if err := execAll(ctx, db, d, stmts); err != nil {
		return err
	}
	// The one row LockPlacement updates; the migration may run again on
	// MySQL after a crash, so insert it only when missing.
	n, err := db.NewSelect().Table("placement_lock").Count(ctx)
	if err != nil || n > 0 {
		return err
	}
	_, err = db.NewRaw("INSERT INTO placement_lock (id, placements) VALUES (1, 0)").Exec(ctx)
	return err
}
