package e2e

import (
	"cmp"
	"context"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/virtual-disk-array/vda/internal/guest"
	vdav1 "github.com/virtual-disk-array/vda/proto/vda/v1"
)

// failoverResult is what one kill of da0's primary under I/O measured.
type failoverResult struct {
	primary string        // the cn killed
	resumed time.Duration // kill -> the first completion after the stall (host clock)
	gap     float64       // the largest gap between completions, s (guest clock)
	// promoted is kill -> the store names a new primary (0: never seen).
	promoted time.Duration
	written  map[int]int // blocks each writer wrote, from failoverBase on
}

// failover connects the guest to da0 through both controllers; there
// failoverWriters loops write the pattern p from block failoverBase on for
// writeSecs seconds (guest clock), and after their 40th completion the test
// kill -9s the primary's data plane and agent. It checks that no write
// failed and each writer's blocks read back as written in the guest, and
// measures the stall.
func failover(t *testing.T, c *cluster, k *guest.Kernel, p []byte, writeSecs int) failoverResult {
	t.Helper()
	ctx := context.Background()
	written := map[int]int{}
	var promotedAfter time.Duration
	a := c.access(ctx)
	primary := a.paths[0].cn
	// failoverWriters loops write at once, each block b of its own
	// share of the region with the pattern's block b, one O_DIRECT
	// dd at a time, and print each completion with the guest's
	// clock; then each reads its share back and compares.
	script := connectScript(a) + fmt.Sprintf(`
for f in /sys/block/nvme*c*n1/ana_state; do echo "ana-before $(cat $f)"; done
per=%d; base=%d
read up idle </proc/uptime
end=$(( ${up%%.*} + %d ))
writer() { # w
  i=0
  while :; do
    read up idle </proc/uptime
    [ ${up%%.*} -ge $end ] && break
    b=$(( $1 * per + i %% per ))
    if ! dd if=/data/pattern of=$dev bs=4096 skip=$b seek=$((b + base)) count=1 oflag=direct conv=notrunc 2>/tmp/err$1; then
      echo "DD-FAILED writer $1 block $b: $(cat /tmp/err$1)"; break
    fi
    read up idle </proc/uptime
    echo "done $1 $i $up"
    i=$((i + 1))
  done
  n=$i; [ $n -gt $per ] && n=$per
  echo "written $1 $n"
  dd if=$dev of=/tmp/back$1 bs=4096 skip=$(( base + $1 * per )) count=$n iflag=direct 2>/tmp/err$1 || echo "READBACK-FAILED writer $1: $(cat /tmp/err$1)"
  dd if=/data/pattern of=/tmp/want$1 bs=4096 skip=$(( $1 * per )) count=$n 2>/dev/null
  cmp /tmp/want$1 /tmp/back$1 && echo "VERIFY-OK $1" || echo "VERIFY-FAILED $1"
}
w=0; while [ $w -lt %d ]; do writer $w & w=$((w + 1)); done
wait
for c in /sys/class/nvme/nvme[0-9]*; do echo "ctrl $(basename $c) $(cat $c/state) $(cat $c/address | tr ',' ' ')"; done
for f in /sys/block/nvme*c*n1/ana_state; do echo "ana-after $f $(cat $f)"; done
dmesg | grep -i nvme | grep -v -i 'reconnect\|failed to connect' | tail -30
`, failoverBlocks/failoverWriters, failoverBase, writeSecs, failoverWriters)

	// The guest's console streams here: the host kills the primary
	// once the writes have run for a while, and notes when each
	// completion arrived.
	type done struct {
		guestT  float64
		arrived time.Time
	}
	var (
		mu     sync.Mutex
		dones  []done
		killed time.Time
	)
	kill := make(chan struct{}, 1)
	doneRE := regexp.MustCompile(`^done (\d+) (\d+) ([0-9.]+)$`)
	out := guest.Lines(func(line string) {
		m := doneRE.FindStringSubmatch(strings.TrimSpace(line))
		if m == nil {
			return
		}
		g, _ := strconv.ParseFloat(m[3], 64)
		mu.Lock()
		dones = append(dones, done{g, time.Now()})
		n := len(dones)
		mu.Unlock()
		if n == 40 {
			kill <- struct{}{}
		}
	})
	// The killer: it runs beside the guest and ends with the subtest.
	promoted := make(chan time.Duration, 1)
	killErr := make(chan error, 1)
	killedAt := make(chan time.Time, 1)
	stop := make(chan struct{})
	var killer sync.WaitGroup
	defer func() { close(stop); killer.Wait() }()
	pids := []int{c.pid(primary + "-dataplane"), c.pid(primary + "-agent")}
	killer.Go(func() {
		select {
		case <-kill:
		case <-stop:
			return
		}
		killedAt <- time.Now()
		for _, pid := range pids {
			if err := syscall.Kill(-pid, syscall.SIGKILL); err != nil {
				killErr <- fmt.Errorf("kill -9 %d: %w", pid, err)
				return
			}
		}
		for start := time.Now(); ; time.Sleep(20 * time.Millisecond) {
			select {
			case <-stop:
				return
			default:
			}
			resp, err := c.api.GetDa(ctx, connect.NewRequest(&vdav1.GetDaRequest{Name: "da0"}))
			if err != nil {
				continue
			}
			for _, ct := range resp.Msg.GetDa().GetCntlrs() {
				if ct.GetRole() == vdav1.CntlrRole_CNTLR_ROLE_PRIMARY && ct.GetCnName() != primary {
					promoted <- time.Since(start)
					return
				}
			}
		}
	})
	res, err := k.Boot(ctx, guest.Run{Modules: []string{"nvme-tcp"}, Script: script,
		Files: map[string][]byte{"/data/pattern": p}, Timeout: time.Duration(writeSecs+105) * time.Second, Output: out})
	require.NoError(t, err)
	t.Log(res.Output)
	require.Equal(t, 0, res.Status, res.Console)
	mu.Lock()
	defer mu.Unlock()
	select {
	case killed = <-killedAt:
	default:
		t.Fatal("the guest never wrote 40 blocks")
	}
	select {
	case err := <-killErr:
		require.NoError(t, err)
	default:
	}
	t.Logf("killed %s's data plane and agent (kill -9)", primary)
	select {
	case d := <-promoted:
		promotedAfter = d
		t.Logf("the store names a new primary %s after the kill", d.Round(time.Millisecond))
	default:
		t.Error("the store never named a new primary")
	}
	assert.NotContains(t, res.Output, "DD-FAILED", "no write failed")
	assert.NotContains(t, res.Output, "READBACK-FAILED")
	assert.NotContains(t, res.Output, "VERIFY-FAILED")
	for w := range failoverWriters {
		assert.Contains(t, res.Output, fmt.Sprintf("VERIFY-OK %d", w), "every block writer %d wrote reads back as written", w)
	}

	// The stall: the largest gap between completions by the guest's
	// clock, and the first completion the host saw after the kill.
	slices.SortFunc(dones, func(x, y done) int { return cmp.Compare(x.guestT, y.guestT) })
	var gap float64
	gapAt := 0
	for j := 1; j < len(dones); j++ {
		if d := dones[j].guestT - dones[j-1].guestT; d > gap {
			gap, gapAt = d, j
		}
	}
	after := 0
	for _, d := range dones {
		if d.arrived.After(killed) {
			after++
		}
	}
	// Writes in flight at the kill may complete just after it; I/O
	// resumed with the first completion after the stall.
	resumed := dones[gapAt].arrived.Sub(killed)
	r := failoverResult{primary: primary, resumed: resumed, gap: gap, promoted: promotedAfter, written: written}
	t.Logf("FAILOVER: kill -9 of %s -> I/O resumed %s later (host clock: the first completion after the stall); largest gap between completions %.2fs (guest clock); %d writes before the kill, %d after (%d writers)",
		primary, resumed.Round(time.Millisecond), gap, len(dones)-after, after, failoverWriters)
	assert.Positive(t, after, "writes completed after the kill")
	assert.Less(t, gap, 5.0, "I/O resumed within 5 s")
	for _, m := range regexp.MustCompile(`written (\d+) (\d+)`).FindAllStringSubmatch(res.Output, -1) {
		w, _ := strconv.Atoi(m[1])
		n, _ := strconv.Atoi(m[2])
		written[w] = n
	}
	require.Len(t, written, failoverWriters)
	return r
}

// TestFailoverRuns measures the failover N times on one cluster
// (VDA_TEST_E2E_FAILOVER_RUNS=N; skipped otherwise): per run the guest
// writes through both controllers, the test kill -9s the current primary's
// data plane and agent and measures the stall, then starts both again from
// their <name>.args and waits until da0 is all OK again, the revived cn a
// secondary, before the next run. It prints each run and the p50 and max.
func TestFailoverRuns(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("VDA_TEST_E2E_FAILOVER_RUNS"))
	if n <= 0 {
		t.Skip("VDA_TEST_E2E_FAILOVER_RUNS=N measures N failovers")
	}
	needBinaries(t)
	k := kernel(t)
	ctx := context.Background()
	c := newCluster(t)
	var rs []failoverResult
	for i := range n {
		ok := t.Run(fmt.Sprintf("run%d", i), func(t *testing.T) {
			defer c.as(t)()
			r := failover(t, c, k, pattern(uint64(100+i), failoverBlocks), 8)
			checkFailoverRegion(t, c, pattern(uint64(100+i), failoverBlocks), r.written)
			// The killed cn comes back by hand, as a person would bring it
			// back; it must rejoin as a secondary.
			since := time.Now()
			c.restart(r.primary + "-dataplane")
			c.restart(r.primary + "-agent")
			c.waitRevived(ctx, r.primary, since, 90*time.Second)
			back := time.Since(since)
			t.Logf("RUN %d: killed %s; I/O resumed %s after the kill (largest gap %.2fs, new primary named %s after the kill); da0 all OK %s after the restart",
				i, r.primary, r.resumed.Round(time.Millisecond), r.gap, r.promoted.Round(time.Millisecond), back.Round(time.Millisecond))
			rs = append(rs, r)
		})
		if !ok {
			break
		}
	}
	if len(rs) == 0 {
		return
	}
	var resumed, promoted []time.Duration
	var gaps []float64
	for _, r := range rs {
		resumed = append(resumed, r.resumed)
		promoted = append(promoted, r.promoted)
		gaps = append(gaps, r.gap)
	}
	slices.Sort(resumed)
	slices.Sort(promoted)
	slices.Sort(gaps)
	p50 := func(n int) int { return (n+1)/2 - 1 } // nearest rank
	t.Logf("FAILOVER RUNS: %d runs at --monitor-period %s: kill -9 -> I/O resumed p50 %s, min %s, max %s; largest gap (guest clock) p50 %.2fs, max %.2fs; new primary named p50 %s, max %s",
		len(rs), monitorPeriod(), resumed[p50(len(rs))].Round(time.Millisecond), resumed[0].Round(time.Millisecond), resumed[len(rs)-1].Round(time.Millisecond),
		gaps[p50(len(rs))], gaps[len(rs)-1], promoted[p50(len(rs))].Round(time.Millisecond), promoted[len(rs)-1].Round(time.Millisecond))
}

// waitRevived waits until the cn named is OK again with a heartbeat after
// since, its controller of da0 a secondary that reported OK after since,
// and everything else of da0 OK.
func (c *cluster) waitRevived(ctx context.Context, cn string, since time.Time, within time.Duration) {
	c.t.Helper()
	deadline := time.Now().Add(within)
	var last []string
	for time.Now().Before(deadline) {
		last = nil
		resp, err := c.api.GetCn(ctx, connect.NewRequest(&vdav1.GetCnRequest{Name: cn}))
		require.NoError(c.t, err)
		if st := resp.Msg.GetCn().GetStatus(); st.GetHealth() != vdav1.Health_HEALTH_OK || st.GetReportedAtMs() < since.UnixMilli() {
			last = append(last, fmt.Sprintf("cn %s: %s, reported %s", cn, st.GetHealth(), time.UnixMilli(st.GetReportedAtMs()).Format(time.TimeOnly)))
		}
		da := c.da(ctx)
		last = append(last, notReady(da, since)...)
		for _, ct := range da.GetCntlrs() {
			if ct.GetCnName() != cn {
				continue
			}
			if ct.GetRole() != vdav1.CntlrRole_CNTLR_ROLE_SECONDARY {
				last = append(last, fmt.Sprintf("cntlr on %s: %s, not secondary", cn, role(ct.GetRole())))
			} else if ct.GetStatus().GetReportedAtMs() < since.UnixMilli() {
				last = append(last, fmt.Sprintf("cntlr on %s: no report since the restart", cn))
			}
		}
		if len(last) == 0 {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	c.t.Fatalf("%s not back within %s: %s", cn, within, strings.Join(last, "; "))
}
