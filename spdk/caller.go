package spdk

import "context"

// A Caller sends one JSON-RPC request and decodes its result into result.
// params nil means the request carries no "params" member (SPDK rejects
// even {} for methods that take none); result nil means discard. Errors
// reported by SPDK are *Error; transport errors are wrapped as they come.
//
// A Caller must be safe for concurrent use, and Call must return when ctx
// ends (with ctx.Err()). [Conn] is the Caller over SPDK's Unix socket; an
// in-process data plane is the other.
type Caller interface {
	Call(ctx context.Context, method string, params, result any) error
}

// An Epocher is a Caller that can say when the application behind it may
// have restarted: its Epoch changes then. [Conn] is one (a new socket may
// reach a new process); an in-process data plane that cannot restart need
// not be.
type Epocher interface {
	Epoch() uint64
}
