package main

import (
	"bytes"
	"context"
	"net"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestDemoScript runs the README's first command as a user would, with real
// processes: the portal binary on an SQLite file and vdactl against it, then
// runs it again on the same state directory.
func TestDemoScript(t *testing.T) {
	if testing.Short() {
		t.Skip("builds binaries")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "bin")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	for name, pkg := range map[string]string{"vda-portal": ".", "vdactl": "../vdactl"} {
		out, err := exec.CommandContext(ctx, "go", "build", "-o", filepath.Join(bin, name), pkg).CombinedOutput()
		require.NoError(t, err, string(out))
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	demo := func() string {
		cmd := exec.CommandContext(ctx, "../../scripts/demo.sh", "--once", "--bin", bin,
			"--state-dir", filepath.Join(dir, "state"), "--listen", addr)
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		require.NoError(t, cmd.Run(), out.String())
		return out.String()
	}
	first := demo()
	assert.Contains(t, first, "nvme connect -t tcp -a 127.0.0.1 -s 443")
	assert.Contains(t, first, "vdactl: invalid_argument: name \"bad name\"")
	assert.Contains(t, first, "vdactl: resource_exhausted:")
	assert.Contains(t, first, "vdactl: failed_precondition: dn dn0 still has")
	assert.Regexp(t, `Disk arrays:\s+1\n`, first)
	second := demo()
	assert.Contains(t, second, "found the cluster from an earlier run")
	assert.Regexp(t, `Disk arrays:\s+1\n`, second, "the bad inputs changed nothing")
}
