package spdk_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/virtual-disk-array/vda/spdk"
)

func TestErrorIs(t *testing.T) {
	t.Parallel()
	exist := spdk.NewError("bdev_malloc_create", -17, "File exists")
	raidExist := spdk.NewError("bdev_raid_create", -17, "Failed to create RAID bdev r0: File exists")
	lvolNoSpace := spdk.NewError("bdev_lvol_create", -32602, "No space left on device")
	nvmfInvalid := spdk.NewError("nvmf_subsystem_add_ns", -32602, "Invalid parameters")
	tests := []struct {
		name   string
		err    error
		target error
		want   bool
	}{
		{"same code", exist, spdk.ErrExist, true},
		{"other code", exist, spdk.ErrNoDevice, false},
		{"wrapped", fmt.Errorf("reconcile: %w", exist), spdk.ErrExist, true},
		{"module text, errno code", raidExist, spdk.ErrExist, true},
		{"ENOSPC as -32602", lvolNoSpace, spdk.ErrNoSpace, true},
		{"ENOSPC as -32602 is also invalid params", lvolNoSpace, spdk.ErrInvalidParams, true},
		{"plain -32602 is not ENOSPC", nvmfInvalid, spdk.ErrNoSpace, false},
		{"-28", spdk.NewError("x", -28, "No space left on device"), spdk.ErrNoSpace, true},
		{"target naming the same method", exist, spdk.NewError("bdev_malloc_create", -17, ""), true},
		{"target naming another method", exist, spdk.NewError("bdev_null_create", -17, ""), false},
		{"not an *Error target", exist, errors.New("File exists"), false},
		{"transport error is no SPDK error", fmt.Errorf("call x: %w", spdk.ErrDisconnected), spdk.ErrInternal, false},
		{"unknown method", spdk.NewError("nope", -32601, "Method not found"), spdk.ErrMethodNotFound, true},
		{"raid decode error is -32700", spdk.NewError("bdev_raid_create", -32700, "spdk_json_decode_object failed"), spdk.ErrParse, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			assert.Equal(t, tt.want, errors.Is(tt.err, tt.target))
		})
	}
}

func TestErrorText(t *testing.T) {
	t.Parallel()
	assert.Equal(t, "spdk bdev_malloc_create: File exists (-17)",
		spdk.NewError("bdev_malloc_create", -17, "File exists").Error())
	assert.Equal(t, "spdk: No such device (-19)", spdk.ErrNoDevice.Error())

	var e *spdk.Error
	require.True(t, errors.As(fmt.Errorf("wrapped: %w", spdk.NewError("m", -5, "Input/output error")), &e))
	assert.Equal(t, spdk.Error{Method: "m", Code: -5, Message: "Input/output error"}, *e)
}

// The sentinels carry SPDK's own code and message, so that a fake SPDK can
// return them as they are.
func TestSentinels(t *testing.T) {
	t.Parallel()
	tests := []struct {
		err     *spdk.Error
		code    int
		message string
	}{
		{spdk.ErrNotPermitted, -1, "Operation not permitted"},
		{spdk.ErrNoEntry, -2, "No such file or directory"},
		{spdk.ErrIO, -5, "Input/output error"},
		{spdk.ErrNoDeviceOrAddress, -6, "No such device or address"},
		{spdk.ErrExist, -17, "File exists"},
		{spdk.ErrNoDevice, -19, "No such device"},
		{spdk.ErrInvalid, -22, "Invalid argument"},
		{spdk.ErrNoSpace, -28, "No space left on device"},
		{spdk.ErrTimedOut, -110, "Connection timed out"},
		{spdk.ErrAlready, -114, "Operation already in progress"},
		{spdk.ErrParse, -32700, "Parse error"},
		{spdk.ErrInvalidRequest, -32600, "Invalid request"},
		{spdk.ErrMethodNotFound, -32601, "Method not found"},
		{spdk.ErrInvalidParams, -32602, "Invalid parameters"},
		{spdk.ErrInternal, -32603, "Internal error"},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.code, tt.err.Code, tt.message)
		assert.Equal(t, tt.message, tt.err.Message)
		assert.Empty(t, tt.err.Method)
	}
}

func TestErrorCode(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		err  error
		code int
		ok   bool
	}{
		{"spdk error", spdk.NewError("m", -19, "No such device"), -19, true},
		{"wrapped", fmt.Errorf("x: %w", spdk.NewError("m", -32603, "Internal error")), -32603, true},
		{"transport", fmt.Errorf("call m: %w", spdk.ErrDisconnected), 0, false},
		{"nil", nil, 0, false},
	}
	for _, tt := range tests {
		code, ok := spdk.ErrorCode(tt.err)
		assert.Equal(t, tt.code, code, tt.name)
		assert.Equal(t, tt.ok, ok, tt.name)
	}
}
