package agent_test

import (
	"context"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/virtual-disk-array/vda/spdk"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// golden compares got with testdata/<name>.golden, or rewrites it with
// -update.
func golden(t *testing.T, name string, got []string) {
	t.Helper()
	path := filepath.Join("testdata", name+".golden")
	text := strings.Join(got, "\n") + "\n"
	if *update {
		require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o755))
		require.NoError(t, os.WriteFile(path, []byte(text), 0o644))
		return
	}
	want, err := os.ReadFile(path)
	require.NoError(t, err, "run go test -update to create it")
	require.Equal(t, string(want), text, "SPDK state differs from %s", path)
}

// readOnly are the methods that change nothing.
var readOnly = map[string]bool{
	"spdk_get_version": true, "bdev_get_bdevs": true, "bdev_lvol_get_lvstores": true, "bdev_lvol_get_lvols": true,
	"bdev_nvme_get_controllers": true, "bdev_raid_get_bdevs": true, "nvmf_get_transports": true,
	"nvmf_get_subsystems": true, "nvmf_subsystem_get_listeners": true, "bdev_get_iostat": true,
}

var errInjected = errors.New("injected fault")

// recorder is a Caller that counts the calls that change SPDK, and can fail
// the n-th of them: before it reaches SPDK, or after (SPDK acted, the
// answer is lost, as when the socket drops).
type recorder struct {
	next spdk.Caller

	mu       sync.Mutex
	calls    int // all calls
	mutating int
	listings int // bdev_get_bdevs of everything: one per full listing
	methods  []string
	failAt   int
	after    bool
}

func (r *recorder) Call(ctx context.Context, method string, params, result any) error {
	r.mu.Lock()
	r.calls++
	if params == nil && method == "bdev_get_bdevs" {
		r.listings++
	}
	fail, after := false, r.after
	if !readOnly[method] {
		r.mutating++
		r.methods = append(r.methods, method)
		fail = r.failAt == r.mutating
	}
	r.mu.Unlock()
	if fail && !after {
		return errInjected
	}
	err := r.next.Call(ctx, method, params, result)
	if fail {
		return errInjected
	}
	return err
}

// arm fails the n-th mutating call from now; 0 disarms.
func (r *recorder) arm(n int, after bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.failAt, r.after = 0, after
	if n > 0 {
		r.failAt = r.mutating + n
	}
}

// counts returns the calls and mutating calls so far.
func (r *recorder) counts() (calls, mutating int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.calls, r.mutating
}

// listed is how many times the whole node was listed.
func (r *recorder) listed() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.listings
}
