// Package model is an in-memory model of one SPDK application's object
// graph, answering SPDK's JSON-RPC methods with SPDK v26.05's semantics,
// error codes and messages.
//
// A [Target] holds the graph: bdevs (malloc, null, aio, lvol, raid, NVMe
// namespaces) in one namespace of names and aliases, the claims between
// them (an lvstore claims its base read_many_write_one; a raid its members
// and an NVMe-oF namespace its bdev exclusive_write), lvstores with their
// lvols, snapshots and clones, raids, NVMe-oF transports and subsystems
// with namespaces, listeners and hosts, and NVMe-oF initiator controllers.
// Deleting a claimed bdev is not refused; it cascades as SPDK's hot-remove
// does (the lvstore goes, a raid0 goes offline, the namespace is removed).
//
// Target.Handle serves one request and is the jsonrpc.Handler of the fake
// SPDK socket (package spdktest); the embedded data plane grows the same
// objects into a real data path. Targets on one [Fabric] reach each
// other's listeners: bdev_nvme_attach_controller connects to a remote
// subsystem with the host checks of a real target, which is how fencing
// (nvmf_subsystem_remove_host) can be tested.
//
// The behaviour follows shared/spdk/README.md and the reference captures
// replayed by this package's tests; where SPDK's behaviour was not
// observed, the doc comment of the handler says what the model guesses.
package model
