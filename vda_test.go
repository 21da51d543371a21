package vda_test

import (
	"math"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/virtual-disk-array/vda"
)

func TestFormatSize(t *testing.T) {
	t.Parallel()
	tests := []struct {
		n    uint64
		want string
	}{
		{0, "0 B"},
		{1, "1 B"},
		{1023, "1023 B"},
		{1024, "1.0 KiB"},
		{1536, "1.5 KiB"},
		{1 << 20, "1.0 MiB"},
		{1<<20 - 1, "1.0 MiB"}, // 1023.999 KiB would print as 1024.0 KiB
		{4 << 20, "4.0 MiB"},
		{1<<30 - 1<<20, "1023.0 MiB"},
		{1 << 30, "1.0 GiB"},
		{10 << 30, "10.0 GiB"},
		{1<<30 + 1<<29, "1.5 GiB"},
		{3 << 40, "3.0 TiB"},
		{1 << 50, "1.0 PiB"},
		{math.MaxUint64, "16.0 EiB"},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, vda.FormatSize(tt.n), "FormatSize(%d)", tt.n)
	}
}
