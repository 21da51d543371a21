// Package allocator decides where an array's vds and controllers go; it does
// no I/O.
//
// The caller reads the candidates (pds with their dn's facts, cns with their
// load) from the store, calls [PlaceVDs] and [PlaceCntlrs], and records the
// result. The contract:
//
//   - Deterministic: the same candidates give the same placement, whatever
//     the order of the input slices. The allocator sorts by stable keys and
//     never consults a clock or a random source, so a placement can be
//     replayed in a test or a golden file.
//   - Spread first: each successive pick goes to the failure domain
//     (location) used the fewest times so far, so an array loses as little
//     as possible to one location's failure. Within that, vds go where free
//     space is greatest and controllers where load is lowest.
//   - Ties break by id ascending (pd id then dn id; cn id), never by input
//     position.
//   - No bookkeeping: the allocator neither reserves nor commits capacity.
//     The caller must debit the chosen pds' free space and bump the cns' load
//     in the same store transaction that read the candidates and writes the
//     placement, so that two concurrent placements cannot both spend the same
//     bytes: one of them commits, the other conflicts and is retried on fresh
//     candidates.
//
// Errors wrap [vda.ErrInvalidArgument] for a malformed request and
// [vda.ErrNoCapacity] when no placement fits; the latter's message says what
// was needed and why candidates were excluded.
package allocator
