// Package jsonrpc is a JSON-RPC 2.0 server on a stream socket that behaves,
// byte for byte, like the one inside an SPDK application (v26.05), so that a
// fake or embedded SPDK is indistinguishable from the real one to a client.
//
// What a client sees, as captured from SPDK v26.05 and read in SPDK's
// lib/jsonrpc and lib/json:
//
//   - No framing: requests are a stream of concatenated JSON values, and
//     each answer is one compact JSON value followed by "\n". The id comes
//     back verbatim (a string, 0, a negative number, uint64-max, a fraction).
//   - A request without an id, or with id null, is run but gets no result;
//     an error is still sent, with id null (an unknown method, say: SPDK's
//     spdk_jsonrpc_send_error_response does not check for notifications).
//   - Answers to asynchronous methods ([AsyncMethods]) may overtake answers
//     to later requests; the others are answered in arrival order.
//   - Batches get one array answer, in element order, without entries for
//     notifications (nothing at all if every element is one); [] gets a
//     single -32600 object; a non-object element gets a -32600 entry. A batch
//     with an asynchronous element is answered when all its elements are.
//   - "jsonrpc" may be missing; "jsonrpc" other than "2.0", a missing or
//     non-string method, an id that is not a string, number or null, or any
//     other top-level member get -32600 "Invalid request" with id null. A
//     params that is not an object, array or null gets -32600 with the id.
//     A top-level value that is neither object nor array gets -32600.
//   - params is handed to the [Handler] as it was sent ({} included), or nil
//     when it was missing or null: whether a method takes params, and how
//     they decode, is the handler's business.
//   - Malformed JSON gets no answer at all: the server logs "jsonrpc parse
//     request failed" and closes the connection, dropping the answers to
//     the other requests that came in the same read. Incomplete JSON is
//     waited for.
//   - SPDK's limits hold: 64 connections (more wait unaccepted), 32 KiB for
//     one request, 1024 JSON values per request, nesting depth 64.
//
// The answers' strings are escaped as SPDK escapes them: non-ASCII as
// \uXXXX.
package jsonrpc
