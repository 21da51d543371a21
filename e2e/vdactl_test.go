package e2e

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestBadInput sends the cluster requests it must refuse, through vdactl
// as a person would: each gets a clear error naming what is wrong, and
// the cluster is unchanged afterwards (its arrays, nodes and pds, with
// their generations, and the cluster summary). It needs no guest.
func TestBadInput(t *testing.T) {
	needBinaries(t)
	c := newCluster(t)
	before := c.snapshot()
	for _, tc := range []struct {
		name string
		args []string
		want []string
	}{
		{"too large", []string{"da", "create", "huge", "--size", "100TiB"},
			[]string{"resource_exhausted", "no capacity", "100.0 TiB"}},
		{"larger than a vd may be", []string{"da", "create", "huge2", "--size", "600MiB", "--vd-count", "1"},
			[]string{"resource_exhausted", "no capacity"}},
		{"forbidden characters", []string{"da", "create", "bad/name!", "--size", "64MiB"},
			[]string{"invalid_argument", `"bad/name!"`, "letters, digits"}},
		{"size not a multiple of 4 KiB", []string{"da", "create", "odd", "--size", "1000"},
			[]string{"invalid_argument", "size 1000 is not a multiple of 4096"}},
		{"dn that holds vds", []string{"dn", "delete", "dn0"},
			[]string{"failed_precondition", "dn dn0 still has 2 pd(s)"}},
		{"pd that holds vds", []string{"pd", "delete", "--dn", "dn1", "aio0"},
			[]string{"failed_precondition", "pd aio0 on dn dn1 holds 1 vd(s) of array(s) da0"}},
		{"array with an exporter", []string{"da", "delete", "da0"},
			[]string{"failed_precondition", "exp"}},
		{"exporter of an array that does not exist", []string{"exp", "create", "--da", "nope", "h", "--host-nqn", "nqn.2014-08.org.example:h"},
			[]string{"not_found", "nope"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, err := c.vdactl(tc.args...)
			require.Error(t, err, "vdactl %v must fail: %s", tc.args, out)
			for _, w := range tc.want {
				assert.Contains(t, out, w, "vdactl %v", tc.args)
			}
			assert.Equal(t, before, c.snapshot(), "the cluster is unchanged after vdactl %v", tc.args)
		})
	}
}

// snapshot is what vdactl shows of the cluster, as JSON, without the
// status reports (which the monitor refreshes on its own).
func (c *cluster) snapshot() map[string]any {
	c.t.Helper()
	out := map[string]any{}
	for name, args := range map[string][]string{
		"das":     {"-o", "json", "da", "list"},
		"dns":     {"-o", "json", "dn", "list"},
		"cns":     {"-o", "json", "cn", "list"},
		"pds dn0": {"-o", "json", "pd", "list", "--dn", "dn0"},
		"pds dn1": {"-o", "json", "pd", "list", "--dn", "dn1"},
		"da0":     {"-o", "json", "da", "get", "da0"},
		"summary": {"-o", "json", "cluster", "summary"},
	} {
		text, err := c.vdactl(args...)
		require.NoError(c.t, err, "vdactl %v: %s", args, text)
		var v any
		require.NoError(c.t, json.Unmarshal([]byte(text), &v), "vdactl %v: %s", args, text)
		out[name] = dropStatus(v)
	}
	return out
}

func dropStatus(v any) any {
	switch v := v.(type) {
	case map[string]any:
		for k, e := range v {
			if k == "status" || k == "health" || k == "capacity" || k == "online_free" || k == "free" {
				delete(v, k)
				continue
			}
			v[k] = dropStatus(e)
		}
	case []any:
		for i, e := range v {
			v[i] = dropStatus(e)
		}
	}
	return v
}
