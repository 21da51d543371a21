package portal

import (
	"context"
	"errors"
	"log/slog"
	"strings"

	"connectrpc.com/connect"
	"github.com/virtual-disk-array/vda"
)

// codeOf maps the root package's sentinels to Connect codes; anything else
// is CodeInternal.
func codeOf(err error) connect.Code {
	switch {
	case errors.Is(err, vda.ErrInvalidArgument):
		return connect.CodeInvalidArgument
	case errors.Is(err, vda.ErrNotFound):
		return connect.CodeNotFound
	case errors.Is(err, vda.ErrAlreadyExists):
		return connect.CodeAlreadyExists
	case errors.Is(err, vda.ErrFailedPrecondition):
		return connect.CodeFailedPrecondition
	case errors.Is(err, vda.ErrNoCapacity):
		return connect.CodeResourceExhausted
	case errors.Is(err, vda.ErrStaleGeneration):
		return connect.CodeAborted
	case errors.Is(err, vda.ErrUnavailable):
		return connect.CodeUnavailable
	case errors.Is(err, context.Canceled):
		return connect.CodeCanceled
	case errors.Is(err, context.DeadlineExceeded):
		return connect.CodeDeadlineExceeded
	}
	return connect.CodeInternal
}

// toConnect turns a service error into a *connect.Error. Internal errors are
// logged here, once, with their cause, and reach the client without it, so
// that SQL and driver text stay on the server.
func toConnect(ctx context.Context, log *slog.Logger, procedure string, err error) error {
	if err == nil {
		return nil
	}
	var ce *connect.Error
	if errors.As(err, &ce) {
		return err
	}
	code := codeOf(err)
	if code == connect.CodeInternal {
		log.ErrorContext(ctx, "internal error", "procedure", procedure, "err", err)
		return connect.NewError(code, errors.New("internal error; see the portal log"))
	}
	return connect.NewError(code, &clientError{err})
}

// clientError is the message a client sees: the error's text without the
// sentinel's own words, which the Connect code already says.
type clientError struct{ err error }

func (e *clientError) Unwrap() error { return e.err }

func (e *clientError) Error() string {
	msg := e.err.Error()
	for _, s := range []error{vda.ErrInvalidArgument, vda.ErrNotFound, vda.ErrAlreadyExists, vda.ErrFailedPrecondition,
		vda.ErrNoCapacity, vda.ErrStaleGeneration, vda.ErrUnavailable} {
		text := s.Error()
		if m, ok := strings.CutSuffix(msg, ": "+text); ok {
			return m
		}
		if m, ok := strings.CutPrefix(msg, text+": "); ok {
			return m
		}
		if m, ok := strings.CutPrefix(msg, text+"; "); ok {
			return m
		}
	}
	return msg
}
