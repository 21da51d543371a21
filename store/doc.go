// Package store keeps a VDA cluster's state in one SQL database (SQLite,
// PostgreSQL or MySQL/MariaDB, chosen by the DSN) through uptrace/bun.
//
// The contract:
//   - Open migrates the schema (versioned, idempotent, safe from several
//     processes at once) before it returns.
//   - Every read runs in [DB.View] and every change in [DB.Update]; a *Tx is
//     the typed query surface and lives only inside that call.
//   - Optimistic concurrency: every row carries a generation. A write names
//     the generation it read and fails with [ErrConflict] if the row moved
//     on or is gone; Update then runs the whole function again (so it must
//     be safe to re-run and must do nothing outside the transaction), and
//     the fresh read reports what is true now. A foreign-key violation (a
//     parent deleted, or a child added, since the function read it) is
//     retried the same way, as are serialization failures and deadlocks.
//   - Every dn and cn generation increments with every change touching the
//     node; agents apply desired state per node generation.
//   - Desired state and observed status are separate tables; a status write
//     (Put*Status) never changes desired state or a generation, and a node
//     status about an old generation is refused.
//   - Errors wrap the root package's sentinels: vda.ErrNotFound,
//     vda.ErrAlreadyExists, vda.ErrFailedPrecondition (foreign keys),
//     vda.ErrStaleGeneration (ErrConflict), vda.ErrUnavailable.
//
// bun struct tags and SQL never leave this package: callers see the plain
// types of model.go.
package store
