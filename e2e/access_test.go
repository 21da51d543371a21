package e2e

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/virtual-disk-array/vda/internal/guest"
)

// strangerNQN is a well-formed host NQN that is on no exporter.
const strangerNQN = "nqn.2014-08.org.example:stranger"

// cutWithin bounds the time from the exporter's deletion to the guest's
// first failed read.
const cutWithin = 10 * time.Second

// TestAccessLinuxHost checks NVMe-oF host access end to end with the real
// Linux initiator: a host NQN on no exporter of da0 cannot connect to any
// controller of the array; the exporter's host NQN connects through both
// and reads; deleting the exporter cuts that host off (its O_DIRECT reads
// fail within cutWithin) and a new connect with its NQN is refused.
func TestAccessLinuxHost(t *testing.T) {
	needBinaries(t)
	k := kernel(t)
	ctx := context.Background()
	c := newCluster(t)
	a := c.access(ctx) // before the exporter goes

	// try connects as $2 to the controller on port $1 (ctrl_loss_tmo $3)
	// and says which happened; the kernel answers a refused connect with
	// an error on the write.
	var b strings.Builder
	fmt.Fprintf(&b, `try() { # port hostnqn ctrl_loss_tmo
  exec 3<>/dev/nvme-fabrics || { echo "NO-FABRICS"; return 2; }
  if echo "transport=tcp,traddr=%s,trsvcid=$1,nqn=%s,hostnqn=$2,reconnect_delay=1,ctrl_loss_tmo=$3,fast_io_fail_tmo=1" >&3 2>/tmp/cerr; then
    read -r line <&3; exec 3>&-; echo "connected $1 as $2: $line"; return 0
  fi
  exec 3>&-; echo "refused $1 as $2: $(cat /tmp/cerr)"; return 1
}
disks() { ls /dev | grep -E '^nvme[0-9]+n[0-9]+$' | tr '\n' ' '; }
up() { read u _ </proc/uptime; echo $u; }
`, guest.HostAddr, a.nqn)
	// 1. The stranger, on every controller.
	for _, p := range a.paths {
		fmt.Fprintf(&b, "try %s %s 2 && echo STRANGER-CONNECTED %s || echo STRANGER-REFUSED %s\n", p.port, strangerNQN, p.port, p.port)
	}
	b.WriteString(`echo "stranger-disks: $(disks)"
ls /sys/class/nvme 2>/dev/null | grep -q nvme && echo "STRANGER-CTRL $(ls /sys/class/nvme)"
`)
	// 2. The exporter's host, through both controllers, reads a block.
	for _, p := range a.paths {
		fmt.Fprintf(&b, "try %s %s 5 || { echo CONNECT-FAILED %s; dmesg | tail -20; exit 1; }\n", p.port, a.hostNQN, p.port)
	}
	b.WriteString(`for i in $(seq 1 60); do
  [ "$(cat /sys/block/nvme*c*n1/ana_state 2>/dev/null | wc -l)" -ge 2 ] && ls /dev | grep -qE '^nvme[0-9]+n1$' && break
  sleep 0.25
done
dev=/dev/$(ls /dev | grep -E '^nvme[0-9]+n1$' | head -1)
[ -b $dev ] || { echo "NO-DISK-FAILED"; ls /dev /sys/block; dmesg | tail -20; exit 1; }
echo "paths $(cat /sys/block/nvme*c*n1/ana_state | tr '\n' ' ')"
dd if=$dev of=/dev/null bs=4096 count=1 iflag=direct 2>/tmp/err && echo READ-OK || { echo "READ-FAILED $(cat /tmp/err)"; exit 1; }
# 3. The host deletes the exporter once it sees CONNECTED; the guest
# reads until a read fails.
echo CONNECTED
start=$(up); n=0; cut=""
while :; do
  if ! dd if=$dev of=/dev/null bs=4096 count=1 iflag=direct 2>/tmp/err; then
    cut=$(up); echo "CUT $n reads, $(awk "BEGIN{print $cut - $start}")s after CONNECTED: $(cat /tmp/err)"; break
  fi
  n=$((n + 1))
  [ $(awk "BEGIN{print ($(up) - $start > 60)}") = 1 ] && { echo "NEVER-CUT after $n reads"; break; }
  sleep 0.1
done
for c in /sys/class/nvme/nvme[0-9]*; do echo "ctrl $(basename $c) $(cat $c/state)"; done
# The old controllers go (ctrl_loss_tmo, or now by hand), then the host
# tries again with its own NQN.
for c in /sys/class/nvme/nvme[0-9]*; do [ -e $c/delete_controller ] && echo 1 >$c/delete_controller; done
for i in $(seq 1 40); do ls /sys/class/nvme 2>/dev/null | grep -q nvme || break; sleep 0.25; done
echo "after-disks: $(disks)"
`)
	for _, p := range a.paths {
		fmt.Fprintf(&b, "try %s %s 2 && echo RECONNECTED %s || echo RECONNECT-REFUSED %s\n", p.port, a.hostNQN, p.port, p.port)
	}
	b.WriteString(`echo "final-disks: $(disks)"
dmesg | grep -i nvme | tail -30
`)

	// The guest's console streams here: the host deletes the exporter
	// when the guest is connected, and notes when the guest's reads fail.
	var (
		mu       sync.Mutex
		delStart time.Time // the exporter's deletion started
		deleted  time.Time
		cutAt    time.Time
		delOut   string
		delErr   error
		deleting sync.WaitGroup
	)
	out := guest.Lines(func(line string) {
		line = strings.TrimSpace(line)
		switch {
		case line == "CONNECTED":
			mu.Lock()
			delStart = time.Now()
			mu.Unlock()
			deleting.Go(func() {
				o, err := c.vdactl("exp", "delete", "--da", "da0", "host0")
				mu.Lock()
				defer mu.Unlock()
				deleted, delOut, delErr = time.Now(), o, err
			})
		case strings.HasPrefix(line, "CUT "):
			mu.Lock()
			cutAt = time.Now()
			mu.Unlock()
		}
	})
	start := time.Now()
	res, err := k.Boot(ctx, guest.Run{Modules: []string{"nvme-tcp"}, Script: b.String(), Timeout: 150 * time.Second, Output: out})
	deleting.Wait()
	require.NoError(t, err)
	t.Log(res.Output)
	t.Logf("guest ran %s", time.Since(start).Round(time.Millisecond))
	require.Equal(t, 0, res.Status, res.Console)

	// 1.
	for _, p := range a.paths {
		assert.Contains(t, res.Output, "STRANGER-REFUSED "+p.port, "a host NQN on no exporter cannot connect to %s's controller", p.cn)
		assert.NotContains(t, res.Output, "STRANGER-CONNECTED "+p.port)
	}
	assert.Regexp(t, `(?m)^stranger-disks: *$`, res.Output, "no disk for the stranger")
	assert.NotContains(t, res.Output, "STRANGER-CTRL", "no controller left for the stranger")
	// Refused by the subsystem's host list (Connect Invalid Host), not for
	// another reason.
	assert.Contains(t, res.Output, "is not allowed, hostnqn: "+strangerNQN)
	// 2.
	assert.Regexp(t, `paths (non-)?optimized (non-)?optimized`, res.Output, "one namespace, two paths")
	assert.Contains(t, res.Output, "READ-OK")
	// 3.
	mu.Lock()
	defer mu.Unlock()
	require.False(t, deleted.IsZero(), "the exporter was never deleted")
	require.NoError(t, delErr, "vdactl exp delete: %s", delOut)
	assert.NotContains(t, res.Output, "NEVER-CUT", "reads fail after the exporter is deleted")
	require.False(t, cutAt.IsZero(), "the guest never reported its reads cut")
	// The guest reads until the first failure; the first may not come
	// before the delete returned (vdactl's round trip may end after the
	// agents acted), but must come within cutWithin of it.
	require.True(t, cutAt.After(delStart), "the guest's reads failed before the exporter's deletion started")
	cut := cutAt.Sub(deleted)
	t.Logf("ACCESS: exporter deleted (vdactl took %s) -> the guest's reads fail %s after vdactl returned (host clock; %s)",
		deleted.Sub(delStart).Round(time.Millisecond), cut.Round(time.Millisecond),
		regexp.MustCompile(`CUT [^\n]*`).FindString(res.Output))
	assert.Less(t, cut, cutWithin, "the host is cut off within %s", cutWithin)
	for _, p := range a.paths {
		assert.Contains(t, res.Output, "RECONNECT-REFUSED "+p.port, "the deleted exporter's host NQN cannot reconnect to %s's controller", p.cn)
		assert.NotContains(t, res.Output, "RECONNECTED "+p.port)
	}
	assert.Contains(t, res.Output, "is not allowed, hostnqn: "+a.hostNQN, "refused by the host list")
	assert.Regexp(t, `(?m)^final-disks: *$`, res.Output, "no disk after the exporter is gone")
}

// TestAccessBadHostNQN checks that the portal refuses a malformed host NQN
// at exporter creation with InvalidArgument, naming the problem, and that
// da0's exporters are unchanged. It needs no guest.
func TestAccessBadHostNQN(t *testing.T) {
	needBinaries(t)
	c := newCluster(t)
	exps := func() string {
		t.Helper()
		out, err := c.vdactl("-o", "json", "exp", "list", "--da", "da0")
		require.NoError(t, err, out)
		return out
	}
	before, snap := exps(), c.snapshot()
	long := "nqn.2014-08.org.example:" + strings.Repeat("h", 224-len("nqn.2014-08.org.example:"))
	for _, tc := range []struct {
		name, nqn string
		want      []string
	}{
		{"longer than 223 bytes", long, []string{"invalid_argument", "host_nqn is 224 bytes, longer than NVMe's 223"}},
		{"no nqn. prefix", "iqn.2014-08.org.example:h", []string{"invalid_argument", "is not an NQN"}},
		{"space in the name", "nqn.2014-08.org.example:h 1", []string{"invalid_argument", "is not an NQN"}},
		{"malformed UUID NQN", "nqn.2014-08.org.nvmexpress:uuid:not-a-uuid", []string{"invalid_argument", "malformed UUID NQN"}},
		{"the discovery NQN", "nqn.2014-08.org.nvmexpress.discovery", []string{"invalid_argument", "discovery NQN"}},
		{"no :name (SPDK refuses it)", "nqn.2014-08.org.example", []string{"invalid_argument", "is not an NQN"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, err := c.vdactl("exp", "create", "--da", "da0", "bad0", "--host-nqn", tc.nqn)
			require.Error(t, err, "vdactl exp create with host NQN %q must fail: %s", tc.nqn, out)
			for _, w := range tc.want {
				assert.Contains(t, out, w, "host NQN %q", tc.nqn)
			}
			assert.Equal(t, before, exps(), "da0's exporters are unchanged")
		})
	}
	assert.Equal(t, snap, c.snapshot(), "the cluster is unchanged")
}
