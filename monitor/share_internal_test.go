package monitor

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/virtual-disk-array/vda/store"
)

func TestFairShare(t *testing.T) {
	for _, tc := range []struct {
		members []string
		want    map[string]int
	}{
		{[]string{"a"}, map[string]int{"a": store.LeaseShards}},
		{[]string{"a", "b"}, map[string]int{"a": 32, "b": 32}},
		{[]string{"a", "b", "c"}, map[string]int{"a": 22, "b": 21, "c": 21}},
		{nil, map[string]int{"x": store.LeaseShards}},
		{[]string{"a", "c"}, map[string]int{"b": 21}},
	} {
		total := 0
		for name, want := range tc.want {
			got := fairShare(tc.members, name)
			assert.Equal(t, want, got, "%v %s", tc.members, name)
			total += got
		}
		if len(tc.want) == len(tc.members) {
			assert.Equal(t, store.LeaseShards, total, "shares of %v add up", tc.members)
		}
	}
}
