package allocator

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestPlural(t *testing.T) {
	t.Parallel()
	assert.Equal(t, "0 vds", plural(0, "vd", "vds"))
	assert.Equal(t, "1 vd", plural(1, "vd", "vds"))
	assert.Equal(t, "2 vds", plural(2, "vd", "vds"))
}
