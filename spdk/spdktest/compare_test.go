package spdktest_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

// The replay's comparator must be strict, or the replay proves nothing.
func TestCompareJSON(t *testing.T) {
	const u1, u2, u3 = "9e6def5b-8afa-4832-a26c-4f379bfe5edd", "11111111-2222-3333-4444-555555555555",
		"aaaaaaaa-bbbb-cccc-dddd-000000000001"
	tests := []struct {
		name      string
		want, got string
		ok        bool
	}{
		{"equal", `{"a":1,"b":[true,null,"x"]}`, `{"a":1,"b":[true,null,"x"]}`, true},
		{"whitespace", `{"a": 1}`, `{"a":1}`, true},
		{"number differs", `{"a":1}`, `{"a":2}`, false},
		{"number text differs", `{"a":1}`, `{"a":1.0}`, false},
		{"key order", `{"a":1,"b":2}`, `{"b":2,"a":1}`, false},
		{"missing key", `{"a":1,"b":2}`, `{"a":1}`, false},
		{"extra key", `{"a":1}`, `{"a":1,"b":2}`, false},
		{"type", `{"a":"1"}`, `{"a":1}`, false},
		{"array length", `[1,2]`, `[1]`, false},
		{"uuid paired", `["` + u1 + `","` + u1 + `"]`, `["` + u2 + `","` + u2 + `"]`, true},
		{"uuid not consistent", `["` + u1 + `","` + u1 + `"]`, `["` + u2 + `","` + u3 + `"]`, false},
		{"two uuids one model uuid", `["` + u1 + `","` + u3 + `"]`, `["` + u2 + `","` + u2 + `"]`, false},
		{"uuid inside string", `"nqn:uuid:` + u1 + `"`, `"nqn:uuid:` + u2 + `"`, true},
		{"text around uuid", `"nqn:uuid:` + u1 + `"`, `"nqx:uuid:` + u2 + `"`, false},
		{"nguid paired with uuid", `["` + u1 + `","9E6DEF5B8AFA4832A26C4F379BFE5EDD"]`,
			`["` + u2 + `","11111111222233334444555555555555"]`, true},
		{"nguid not paired", `["` + u1 + `","9E6DEF5B8AFA4832A26C4F379BFE5EDD"]`,
			`["` + u2 + `","AAAAAAAABBBBCCCCDDDD000000000001"]`, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := compareJSON("x", []byte(tt.want), []byte(tt.got), newIDMap())
			if tt.ok {
				assert.NoError(t, err)
			} else {
				assert.Error(t, err)
			}
		})
	}
}

func TestShapeOnlyIsNarrow(t *testing.T) {
	used, err := compareJSON("iostat_all", []byte(`{"result":{"tick_rate":1,"ticks":5}}`),
		[]byte(`{"result":{"tick_rate":1,"ticks":7}}`), newIDMap())
	assert.NoError(t, err)
	assert.True(t, used)
	_, err = compareJSON("iostat_all", []byte(`{"result":{"tick_rate":1,"ticks":5}}`),
		[]byte(`{"result":{"tick_rate":2,"ticks":5}}`), newIDMap())
	assert.Error(t, err, "tick_rate is compared exactly")
	_, err = compareJSON("iostat_all", []byte(`{"result":{"ticks":5}}`), []byte(`{"result":{"ticks":"5"}}`), newIDMap())
	assert.Error(t, err, "shape-only still compares the type")
}
