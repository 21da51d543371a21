package spdk

import (
	"errors"
	"fmt"
	"strings"
)

// Error is an error object SPDK returned for a call.
//
// SPDK reports most failures as a negative errno with its strerror text
// (-17 "File exists"); some modules wrap the reason in their own text, and
// the JSON-RPC layer and the nvmf module use the -326xx codes. The same
// type is what a fake or embedded SPDK returns to have an error object sent.
type Error struct {
	Method  string // the method called
	Code    int    // JSON-RPC error code: a negative errno, or -326xx
	Message string
}

// NewError returns the error object SPDK sends for method with code and
// message.
func NewError(method string, code int, message string) *Error {
	return &Error{Method: method, Code: code, Message: message}
}

// Error reads like "spdk bdev_malloc_create: File exists (-17)".
func (e *Error) Error() string {
	if e.Method == "" {
		return fmt.Sprintf("spdk: %s (%d)", e.Message, e.Code)
	}
	return fmt.Sprintf("spdk %s: %s (%d)", e.Method, e.Message, e.Code)
}

// Is matches the sentinel with the same code (and, for ErrNoSpace, also a
// message containing "No space left on device", which lvol reports as -32602).
// A target *Error that names a method matches only errors of that method, so
// errors.Is(err, NewError("bdev_get_bdevs", -19, "")) works as expected.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	if !ok {
		return false
	}
	if t.Method != "" && t.Method != e.Method {
		return false
	}
	if e.Code == t.Code {
		return true
	}
	// bdev_lvol_create and bdev_lvol_resize report ENOSPC with the
	// invalid-params code and strerror's text.
	return t.Code == codeNoSpace && e.Code == codeInvalidParams &&
		strings.Contains(e.Message, noSpaceText)
}

var _ error = (*Error)(nil)

const (
	codeNoSpace       = -28
	codeInvalidParams = -32602
	noSpaceText       = "No space left on device"
)

// Sentinels, one per code SPDK is known to return. Each carries SPDK's own
// message for its code, so a fake SPDK may return them as they are. Compare
// with errors.Is; every *Error with the same code matches.
var (
	ErrNotPermitted      = &Error{Code: -1, Message: "Operation not permitted"}
	ErrNoEntry           = &Error{Code: -2, Message: "No such file or directory"}
	ErrIO                = &Error{Code: -5, Message: "Input/output error"}
	ErrNoDeviceOrAddress = &Error{Code: -6, Message: "No such device or address"}
	ErrExist             = &Error{Code: -17, Message: "File exists"}
	ErrNoDevice          = &Error{Code: -19, Message: "No such device"}
	ErrInvalid           = &Error{Code: -22, Message: "Invalid argument"}
	ErrNoSpace           = &Error{Code: codeNoSpace, Message: noSpaceText}
	ErrTimedOut          = &Error{Code: -110, Message: "Connection timed out"}
	ErrAlready           = &Error{Code: -114, Message: "Operation already in progress"}
	ErrParse             = &Error{Code: -32700, Message: "Parse error"}
	ErrInvalidRequest    = &Error{Code: -32600, Message: "Invalid request"}
	ErrMethodNotFound    = &Error{Code: -32601, Message: "Method not found"}
	ErrInvalidParams     = &Error{Code: codeInvalidParams, Message: "Invalid parameters"}
	ErrInternal          = &Error{Code: -32603, Message: "Internal error"}
)

// ErrorCode returns the code of the *Error in err's chain, and false if err
// did not come from SPDK (a transport error, a context error, nil).
func ErrorCode(err error) (int, bool) {
	var e *Error
	if errors.As(err, &e) {
		return e.Code, true
	}
	return 0, false
}

// Transport sentinels: the call did not get an answer from SPDK.
var (
	// ErrDisconnected: the socket dropped (EOF, reset, or SPDK closed it)
	// while the call was in flight. The call may or may not have run; the
	// next call dials again.
	ErrDisconnected = errors.New("spdk: disconnected")
	// ErrClosed: the Conn was closed.
	ErrClosed = errors.New("spdk: connection closed")
)
