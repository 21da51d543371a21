package spdk_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/virtual-disk-array/vda/spdk"
)

// recordingCaller remembers the last call and answers with err.
type recordingCaller struct {
	method         string
	params, result any
	err            error
}

func (r *recordingCaller) Call(_ context.Context, method string, params, result any) error {
	r.method, r.params, r.result = method, params, result
	return r.err
}

func TestClientCallPassesThrough(t *testing.T) {
	t.Parallel()
	rc := &recordingCaller{err: spdk.ErrNoDevice}
	c := spdk.New(rc)
	params := map[string]string{"name": "Malloc0"}
	var result []any
	err := c.Call(context.Background(), "bdev_get_bdevs", params, &result)
	assert.ErrorIs(t, err, spdk.ErrNoDevice)
	assert.Equal(t, "bdev_get_bdevs", rc.method)
	assert.Equal(t, params, rc.params)
	assert.Same(t, &result, rc.result)
}
