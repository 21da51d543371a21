// Package spdk is a typed client for the JSON-RPC interface of an SPDK
// application, written against the behaviour of SPDK v26.05.
//
// The contract:
//
//   - Every call goes through a [Caller], one method that sends a request and
//     decodes its result. [Conn] is the Caller over SPDK's Unix socket; the
//     embedded data plane is another; a test wraps one to inject faults.
//   - [Conn] dials lazily and redials after the socket drops, so a program
//     may start before SPDK and outlive its restarts. Calls in flight when
//     the socket drops fail with [ErrDisconnected]: they may or may not have
//     run, so callers re-read SPDK's state before they retry.
//   - [Client] holds the typed methods. Each mirrors one RPC, named after it
//     (bdev_raid_create → [Client.BdevRaidCreate]), with request structs that
//     send exactly the fields the caller set, and response structs that
//     ignore fields they do not know. [Client.Call] is the raw door for any
//     other method.
//   - An error object from SPDK is a *[Error] carrying the method, code and
//     message. SPDK mostly reports a negative errno (compare with the
//     sentinels: errors.Is(err, ErrExist)); the nvmf methods mostly report a
//     generic -32602 or -32603 whatever the cause, so reconcile by listing
//     objects rather than by guessing from codes.
//   - Every call is bounded by its context; a call whose context ends
//     returns ctx.Err().
//
// Package spdk imports only the standard library. Its server side, a
// JSON-RPC server with SPDK's exact protocol behaviour, is in the jsonrpc
// subpackage.
package spdk
