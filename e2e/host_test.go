package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/virtual-disk-array/vda/internal/guest"
)

// The regions of da0 the tests write, in 4 KiB blocks.
const (
	pathsBlocks    = 2048 // TestLinuxHost/paths writes blocks 0..2047 (8 MiB)
	failoverBase   = 4096 // TestLinuxHost/failover writes from 16 MiB on
	failoverBlocks = 2048 // ... at most this many blocks
	// failoverWriters write at once, each its share of the blocks.
	failoverWriters = 4
	// failoverWrite is how long the guest keeps writing in the failover
	// test, by its own clock; the host kills the primary about a second
	// after the writes started.
	failoverWrite = 15
)

// TestLinuxHost drives one cluster through its life with the real Linux
// NVMe/TCP initiator: a host on both controllers (one namespace, two
// paths) writing and reading a pattern; the death of the primary's node
// (agent and data plane, kill -9) under I/O, which the host must ride
// through without an error; a full stop and restart of the cluster; a
// restart of a disk node's data plane. Each step checks that every block
// written before reads back as written. The subtests run in order, on one
// cluster, and each needs the ones before it.
func TestLinuxHost(t *testing.T) {
	needBinaries(t)
	k := kernel(t)
	ctx := context.Background()
	c := newCluster(t)
	seed1, seed2 := uint64(1), uint64(2)
	p1, p2 := pattern(seed1, pathsBlocks), pattern(seed2, failoverBlocks)
	failoverWritten := map[int]int{} // blocks each writer of the failover test wrote

	ok := t.Run("paths", func(t *testing.T) {
		defer c.as(t)()
		a := c.access(ctx)
		script := connectScript(a) + fmt.Sprintf(`
echo "disks: $(ls /dev | grep -E '^nvme[0-9]+n[0-9]+$' | tr '\n' ' ')"
for s in /sys/class/nvme-subsystem/nvme-subsys*; do
  echo "subsys $(cat $s/subsysnqn) controllers=$(ls $s | grep -cE '^nvme[0-9]+$') disks=$(ls $s | grep -cE '^nvme[0-9]+n[0-9]+$')"
done
for f in /sys/block/nvme*c*n1/ana_state; do echo "ana $(cat $f)"; done
echo "size $(cat /sys/block/$(basename $dev)/size)"
dd if=/data/pattern of=$dev bs=4096 oflag=direct 2>/tmp/err && echo WRITE-OK || cat /tmp/err
dd if=$dev of=/tmp/back bs=4096 count=%d iflag=direct 2>/tmp/err && echo READ-OK || cat /tmp/err
echo "md5 want=$(md5sum </data/pattern | cut -c1-32) got=$(md5sum </tmp/back | cut -c1-32)"
cmp /data/pattern /tmp/back && echo DIRECT-OK
`, pathsBlocks)
		res, err := k.Boot(ctx, guest.Run{Modules: []string{"nvme-tcp"}, Script: script,
			Files: map[string][]byte{"/data/pattern": p1}, Timeout: 90 * time.Second})
		require.NoError(t, err)
		out := res.Output
		t.Log(out)
		require.Equal(t, 0, res.Status, res.Console)
		require.NotContains(t, out, "FAILED")
		assert.Regexp(t, `disks: nvme\d+n1 \n`, out, "one disk")
		assert.Contains(t, out, "subsys "+a.nqn+" controllers=2 disks=1", "one subsystem, two controllers, one namespace")
		assert.Equal(t, 1, strings.Count(out, "subsys "), "one subsystem")
		assert.ElementsMatch(t, []string{"optimized", "non-optimized"}, fields(out, "ana"), "one namespace, two paths")
		assert.Contains(t, out, "size "+strconv.Itoa(128<<20/512))
		assert.Contains(t, out, "WRITE-OK")
		assert.Contains(t, out, "READ-OK")
		assert.Contains(t, out, "DIRECT-OK")
		// The host side reads the array itself: the bytes are where the
		// guest put them.
		got := c.readArray(ctx, 0, len(p1))
		assert.Empty(t, firstBad(p1, got), "da0 read from the host")
	})
	require.True(t, ok)

	ok = t.Run("failover", func(t *testing.T) {
		defer c.as(t)()
		r := failover(t, c, k, p2, failoverWrite)
		failoverWritten = r.written
		// The new primary holds what the guest wrote, read from the host.
		checkFailoverRegion(t, c, p2, failoverWritten)
		assert.Empty(t, firstBad(p1, c.readArray(ctx, 0, len(p1))), "the region written before the failover")
	})
	require.True(t, ok)

	ok = t.Run("restart-all", func(t *testing.T) {
		defer c.as(t)()
		pids := map[string]int{}
		files, _ := filepath.Glob(filepath.Join(c.state, "run", "*.pid"))
		for _, f := range files {
			name := strings.TrimSuffix(filepath.Base(f), ".pid")
			pids[name] = c.pid(name)
		}
		require.NotEmpty(t, pids)
		require.NoError(t, c.stop(), "vda-cluster exits 0 after SIGINT")
		for name, pid := range pids {
			assert.False(t, alive(pid), "%s (pid %d) is gone", name, pid)
		}
		files, _ = filepath.Glob(filepath.Join(c.state, "run", "*.pid"))
		assert.Empty(t, files, "no pid file is left")
		since := time.Now()
		c.start()
		c.waitReady(ctx, since, 60*time.Second, "dn0", "dn1")
		assert.Empty(t, firstBad(p1, c.readArray(ctx, 0, len(p1))), "the paths region after the restart")
		checkFailoverRegion(t, c, p2, failoverWritten)
	})
	require.True(t, ok)

	t.Run("dn-restart", func(t *testing.T) {
		defer c.as(t)()
		da := c.da(ctx)
		dn := da.GetVds()[len(da.GetVds())-1].GetDnName()
		name := dn + "-dataplane"
		c.kill9(name)
		t.Logf("killed %s (kill -9)", name)
		// The monitor notices; the restarted data plane examines the aio
		// file and finds its lvstore and the vd's lvol again.
		time.Sleep(time.Second)
		since := time.Now()
		c.restart(name)
		c.waitReady(ctx, since, 60*time.Second, dn)
		t.Logf("da0 ready again %s after the restart", time.Since(since).Round(time.Millisecond))
		assert.Empty(t, firstBad(p1, c.readArray(ctx, 0, len(p1))), "the paths region after the dn restart")
		checkFailoverRegion(t, c, p2, failoverWritten)
		log, err := os.ReadFile(filepath.Join(c.state, "logs", name+".log"))
		require.NoError(t, err)
		assert.Contains(t, string(log), "restarted by the test")
	})
}

// checkFailoverRegion reads from the host what each writer of the
// failover test wrote, and compares.
func checkFailoverRegion(t *testing.T, c *cluster, p []byte, written map[int]int) {
	t.Helper()
	per := failoverBlocks / failoverWriters
	for w, n := range written {
		if n == 0 {
			continue
		}
		from := w * per * blockSize
		got := c.readArray(context.Background(), int64(failoverBase*blockSize+from), n*blockSize)
		assert.Empty(t, firstBad(p[from:from+n*blockSize], got), "the blocks writer %d wrote, read from the host", w)
	}
}

// connectScript connects the guest to da0 through both controllers and
// sets $dev to its one disk.
func connectScript(a access) string {
	var b strings.Builder
	fmt.Fprintf(&b, `connect() { # port
  exec 3<>/dev/nvme-fabrics || return 1
  echo "transport=tcp,traddr=%s,trsvcid=$1,nqn=%s,hostnqn=%s,reconnect_delay=1,ctrl_loss_tmo=60,fast_io_fail_tmo=20" >&3 || { exec 3>&-; return 1; }
  read -r line <&3; echo "connected $1: $line"; exec 3>&-
}
`, guest.HostAddr, a.nqn, a.hostNQN)
	for _, p := range a.paths {
		fmt.Fprintf(&b, "connect %s || { echo CONNECT-FAILED %s; dmesg | tail -20; exit 1; }\n", p.port, p.port)
	}
	b.WriteString(`for i in $(seq 1 60); do
  [ "$(cat /sys/block/nvme*c*n1/ana_state 2>/dev/null | wc -l)" -ge 2 ] && ls /dev | grep -qE '^nvme[0-9]+n1$' && break
  sleep 0.25
done
dev=/dev/$(ls /dev | grep -E '^nvme[0-9]+n1$' | head -1)
[ -b $dev ] || { echo "NO-DISK-FAILED"; ls /dev /sys/block; dmesg | tail -20; exit 1; }
`)
	return b.String()
}

// fields returns the second field of each output line whose first is key.
func fields(out, key string) []string {
	var vs []string
	for _, line := range strings.Split(out, "\n") {
		if f := strings.Fields(line); len(f) == 2 && f[0] == key {
			vs = append(vs, f[1])
		}
	}
	return vs
}
