package store

import (
	"context"
	"crypto/rand"
	"database/sql"
	"database/sql/driver"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	mrand "math/rand/v2"
	"net"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/jackc/pgx/v5/pgconn"
	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" driver
	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect/mysqldialect"
	"github.com/uptrace/bun/dialect/pgdialect"
	"github.com/uptrace/bun/dialect/sqlitedialect"
	"github.com/virtual-disk-array/vda"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// Config configures Open. Zero values mean defaults.
type Config struct {
	// DSN selects the database: sqlite:<path>, postgres://... or
	// mysql://user:pass@tcp(host:port)/db. Required.
	DSN string
	// Logger receives retries and migrations; nil means slog.Default().
	Logger *slog.Logger
	// Now is the clock for created_at and reported_at; nil means time.Now.
	Now func() time.Time
	// MaxAttempts bounds how often Update runs fn when transactions
	// conflict; 0 means 20.
	MaxAttempts int
	// MaxOpenConns bounds the connection pool; 0 means 16.
	MaxOpenConns int
}

func (c Config) withDefaults() Config {
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.MaxAttempts == 0 {
		c.MaxAttempts = 20
	}
	if c.MaxOpenConns == 0 {
		c.MaxOpenConns = 16
	}
	return c
}

// Validate reports every problem with the configuration at once.
func (c Config) Validate() error {
	var errs []error
	if _, err := parseDSN(c.DSN); err != nil {
		errs = append(errs, err)
	}
	if c.MaxAttempts < 0 {
		errs = append(errs, vda.Invalidf("MaxAttempts is negative"))
	}
	if c.MaxOpenConns < 0 {
		errs = append(errs, vda.Invalidf("MaxOpenConns is negative"))
	}
	return errors.Join(errs...)
}

// DB is an open store. It is safe for concurrent use; run every read in View
// and every change in Update.
type DB struct {
	cfg     Config
	bun     *bun.DB
	dialect Dialect
	// writeMu serialises this process's write transactions on SQLite, which
	// allows one writer at a time anyway; waiting here is cheaper than
	// SQLite's busy-retry loop. Other processes still wait on busy_timeout.
	writeMu sync.Mutex
}

// Open connects to the database named by cfg.DSN and migrates its schema to
// SchemaVersion. A SQLite file is created if missing.
func Open(ctx context.Context, cfg Config) (*DB, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	src, _ := parseDSN(cfg.DSN)
	sqldb, err := sql.Open(src.driver, src.dsn)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", src.dialect, err)
	}
	sqldb.SetMaxOpenConns(cfg.MaxOpenConns)
	sqldb.SetMaxIdleConns(cfg.MaxOpenConns)
	sqldb.SetConnMaxIdleTime(5 * time.Minute)
	var bdb *bun.DB
	switch src.dialect {
	case SQLite:
		bdb = bun.NewDB(sqldb, sqlitedialect.New())
	case Postgres:
		bdb = bun.NewDB(sqldb, pgdialect.New())
	case MySQL:
		bdb = bun.NewDB(sqldb, mysqldialect.New())
	}
	if err := sqldb.PingContext(ctx); err != nil {
		_ = sqldb.Close()
		return nil, fmt.Errorf("connect to %s %s: %w: %w", src.dialect, redact(cfg.DSN), vda.ErrUnavailable, err)
	}
	if err := migrate(ctx, bdb, src.dialect, cfg.Now); err != nil {
		_ = sqldb.Close()
		return nil, fmt.Errorf("migrate %s schema: %w", src.dialect, err)
	}
	cfg.Logger.Debug("store open", "dialect", src.dialect, "schema", SchemaVersion())
	return &DB{cfg: cfg, bun: bdb, dialect: src.dialect}, nil
}

// Dialect says which database family the store runs on.
func (db *DB) Dialect() Dialect { return db.dialect }

// Close closes the connection pool.
func (db *DB) Close() error { return db.bun.Close() }

// Ping checks that the database answers.
func (db *DB) Ping(ctx context.Context) error { return db.bun.PingContext(ctx) }

// ErrConflict means a guarded write found its row changed by a concurrent
// transaction. Update retries fn when fn returns it (wrapped or not).
var ErrConflict = fmt.Errorf("%w: concurrent update", vda.ErrStaleGeneration)

// Update runs fn in a read-write transaction and commits if fn returns nil.
// When the transaction conflicts with another (a guarded write returns
// ErrConflict, or the database reports a serialization failure or
// deadlock), it rolls back and runs fn again, up to MaxAttempts times, so fn
// must be safe to re-run and must not do anything outside the transaction.
func (db *DB) Update(ctx context.Context, fn func(ctx context.Context, tx *Tx) error) error {
	var err error
	for attempt := 1; ; attempt++ {
		err = db.runTx(ctx, false, fn)
		if err == nil || !retryable(err) || attempt >= db.cfg.MaxAttempts {
			break
		}
		db.cfg.Logger.Debug("store transaction conflict, retrying", "attempt", attempt, "err", err)
		// Jittered exponential backoff: 1 ms, 2 ms, ... capped at 100 ms.
		d := min(time.Millisecond<<min(attempt-1, 7), 100*time.Millisecond)
		d = d/2 + mrand.N(d/2+1)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(d):
		}
	}
	return err
}

// View runs fn in a read-only transaction: one consistent snapshot on
// PostgreSQL (repeatable read) and MySQL, and on SQLite.
func (db *DB) View(ctx context.Context, fn func(ctx context.Context, tx *Tx) error) error {
	return db.runTx(ctx, true, fn)
}

func (db *DB) runTx(ctx context.Context, readOnly bool, fn func(ctx context.Context, tx *Tx) error) error {
	opts := &sql.TxOptions{ReadOnly: readOnly}
	if readOnly && db.dialect != SQLite {
		opts.Isolation = sql.LevelRepeatableRead
	}
	if !readOnly && db.dialect == SQLite {
		db.writeMu.Lock()
		defer db.writeMu.Unlock()
	}
	btx, err := db.bun.BeginTx(ctx, opts)
	if err != nil {
		return unreachable(classify(fmt.Errorf("begin: %w", err)), true)
	}
	tx := &Tx{tx: btx, now: db.cfg.Now, dialect: db.dialect}
	if err := fn(ctx, tx); err != nil {
		_ = btx.Rollback()
		// A transaction whose connection dropped was rolled back: running
		// fn again is safe.
		return unreachable(classify(err), true)
	}
	if err := btx.Commit(); err != nil {
		// The commit may or may not have happened: not retried.
		return unreachable(classify(fmt.Errorf("commit: %w", err)), false)
	}
	return nil
}

// unreachable marks an error of a lost or refused database connection as
// vda.ErrUnavailable, and as retryable if retry: Update tries again (with
// backoff, up to MaxAttempts) and a caller sees the store's absence as
// such, not as an internal error.
func unreachable(err error, retry bool) error {
	if err == nil || !connLost(err) {
		return err
	}
	if retry {
		return fmt.Errorf("store unreachable: %w: %w: %w", vda.ErrUnavailable, errRetry, err)
	}
	return fmt.Errorf("store unreachable, the change may or may not have been made: %w: %w", vda.ErrUnavailable, err)
}

// connLost says whether err comes from a database connection that failed
// or dropped, rather than from the database's answer.
func connLost(err error) bool {
	var opErr *net.OpError
	var connectErr *pgconn.ConnectError
	return errors.Is(err, driver.ErrBadConn) || errors.Is(err, mysql.ErrInvalidConn) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNREFUSED) ||
		errors.Is(err, syscall.ECONNRESET) || errors.As(err, &opErr) || errors.As(err, &connectErr) ||
		strings.Contains(err.Error(), "conn closed")
}

// Tx is one transaction. Its methods are the store's typed queries. A Tx is
// not safe for concurrent use and is valid only inside the function given to
// Update or View.
type Tx struct {
	tx      bun.Tx
	now     func() time.Time
	dialect Dialect
}

// newID returns 16 random hex digits.
func newID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// errRetry marks database errors that a new attempt may not hit.
var errRetry = errors.New("transaction conflict")

// classify turns driver errors into the sentinels callers branch on, keeping
// the driver error in the chain for the message.
func classify(err error) error {
	if err == nil || errors.Is(err, vda.ErrAlreadyExists) || errors.Is(err, errRetry) || errors.Is(err, vda.ErrFailedPrecondition) {
		return err
	}
	var pgErr *pgconn.PgError
	var myErr *mysql.MySQLError
	var liteErr *sqlite.Error
	switch {
	case errors.As(err, &pgErr):
		switch pgErr.Code {
		case "23505":
			return fmt.Errorf("%w: %w", vda.ErrAlreadyExists, err)
		case "23503":
			return fkViolation(err)
		case "40001", "40P01":
			return fmt.Errorf("%w: %w", errRetry, err)
		}
	case errors.As(err, &myErr):
		switch myErr.Number {
		case 1062:
			return fmt.Errorf("%w: %w", vda.ErrAlreadyExists, err)
		case 1451, 1452:
			return fkViolation(err)
		case 1213, 1205:
			return fmt.Errorf("%w: %w", errRetry, err)
		}
	case errors.As(err, &liteErr):
		switch code := liteErr.Code(); {
		case code == sqlite3.SQLITE_CONSTRAINT_UNIQUE, code == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY:
			return fmt.Errorf("%w: %w", vda.ErrAlreadyExists, err)
		case code == sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY:
			return fkViolation(err)
		case code&0xff == sqlite3.SQLITE_BUSY, code&0xff == sqlite3.SQLITE_LOCKED:
			return fmt.Errorf("%w: %w", errRetry, err)
		}
	}
	return err
}

// fkViolation classifies a foreign-key violation. Callers read a row's
// parent (or check its children) in the same transaction before they write,
// so a violation means a concurrent transaction deleted the parent (or added
// a child) since: a conflict, retried like one, after which the fresh read
// answers in the caller's words. If it persists it is
// vda.ErrFailedPrecondition.
func fkViolation(err error) error {
	return fmt.Errorf("%w: %w: %w", vda.ErrFailedPrecondition, errRetry, err)
}

func retryable(err error) bool {
	return errors.Is(err, ErrConflict) || errors.Is(err, errRetry)
}
