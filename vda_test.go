package vda_test

import (
	"math"
	"strings"
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

func TestValidateNQN(t *testing.T) {
	long := "nqn.2014-08.org.example:" + strings.Repeat("h", vda.MaxNQNLen-len("nqn.2014-08.org.example:"))
	for _, tc := range []struct {
		nqn  string
		want string // "" means valid
	}{
		{"nqn.2014-08.org.example:host0", ""},
		{"nqn.2016-06.io.vda:da-0123", ""},
		{"nqn.2014-08.org.nvmexpress:uuid:0f8fad5b-d9cb-469f-a165-70867728950e", ""},
		{"nqn.2024-12.com.example.storage:nvme:nvm-subsystem-sn-d78432", ""},
		{long, ""},
		{long + "x", "longer than NVMe's 223"},
		{"", "is empty"},
		{"nqn.2014-08.org.example", "is not an NQN"},
		{"nqn.2014-08.org.example:", "is not an NQN"},
		{"nqn.2014-08.org.example:with space", "is not an NQN"},
		{"nqn.2014-13.org.example:h", "is not an NQN"},
		{"nqn.14-08.org.example:h", "is not an NQN"},
		{"iqn.2014-08.org.example:h", "is not an NQN"},
		{"nqn.2014-08.-bad.example:h", "is not an NQN"},
		{"nqn.2014-08.org.nvmexpress:uuid:not-a-uuid", "malformed UUID NQN"},
		{vda.DiscoveryNQN, "is the discovery NQN"},
		{"nqn.2014-08.org.example:h\x00", "is not an NQN"},
	} {
		err := vda.ValidateNQN("host_nqn", tc.nqn)
		if tc.want == "" {
			assert.NoError(t, err, tc.nqn)
			continue
		}
		assert.ErrorIs(t, err, vda.ErrInvalidArgument, tc.nqn)
		assert.ErrorContains(t, err, tc.want, tc.nqn)
	}
}
