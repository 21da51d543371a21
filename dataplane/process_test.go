package dataplane_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/virtual-disk-array/vda/nvmetcp/host"
	"github.com/virtual-disk-array/vda/spdk"
)

// The Go initiator against the Go target, as separate processes: two dn
// data planes each export one lvol of an aio file, a cn data plane
// attaches both over NVMe/TCP, stripes them in a RAID0 and exports it;
// this test process is the host (nvmetcp/host).

const (
	procBS       = 4096
	procStripKB  = 16
	procLvolMiB  = 32
	procCNHost   = "nqn.2016-06.io.vda:proc-cn"
	procTestHost = "nqn.2016-06.io.vda:proc-test"
)

// dpProc is one vda-dataplane process.
type dpProc struct {
	name, bin, sock string
	cmd             *exec.Cmd
	exited          chan struct{}
	mu              sync.Mutex
	log             bytes.Buffer
	conn            *spdk.Conn
	rpc             *spdk.Client
}

// buildDataplane builds vda-dataplane into a temporary directory.
func buildDataplane(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "vda-dataplane")
	out, err := exec.Command("go", "build", "-o", bin, "github.com/virtual-disk-array/vda/daemons/dataplane").CombinedOutput()
	require.NoError(t, err, "go build vda-dataplane: %s", out)
	return bin
}

// startProc starts a data plane serving sock and waits until it serves.
func startProc(t *testing.T, bin, name, sock string) *dpProc {
	t.Helper()
	d := &dpProc{name: name, bin: bin, sock: sock, exited: make(chan struct{})}
	d.cmd = exec.Command(bin, "--socket", sock, "--listen", "127.0.0.1:0", "--log-format", "json", "--log-level", "debug")
	stderr, err := d.cmd.StderrPipe()
	require.NoError(t, err)
	require.NoError(t, d.cmd.Start())
	ready := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		once := sync.Once{}
		for sc.Scan() {
			line := sc.Text()
			d.mu.Lock()
			if d.log.Len() < 4<<20 {
				d.log.WriteString(line + "\n")
			}
			d.mu.Unlock()
			var rec struct {
				Msg string `json:"msg"`
			}
			if json.Unmarshal([]byte(line), &rec) == nil && rec.Msg == "data plane serving" {
				once.Do(func() { close(ready) })
			}
		}
		_ = d.cmd.Wait()
		close(d.exited)
	}()
	t.Cleanup(func() {
		d.stop()
		if t.Failed() {
			t.Logf("%s (pid %d) log:\n%s", d.name, d.cmd.Process.Pid, d.logs())
		}
	})
	select {
	case <-ready:
	case <-d.exited:
		t.Fatalf("%s exited at start:\n%s", name, d.logs())
	case <-time.After(20 * time.Second):
		t.Fatalf("%s did not serve within 20 s:\n%s", name, d.logs())
	}
	d.conn = spdk.Dial(sock, spdk.ConnConfig{})
	d.rpc = spdk.New(d.conn)
	return d
}

func (d *dpProc) logs() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.log.String()
}

// stop sends SIGTERM and waits for the exit (SIGKILL after 10 s).
func (d *dpProc) stop() {
	if d.conn != nil {
		d.conn.Close()
		d.conn = nil
	}
	select {
	case <-d.exited:
		return
	default:
	}
	_ = d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-d.exited:
	case <-time.After(10 * time.Second):
		_ = d.cmd.Process.Kill()
		<-d.exited
	}
}

// dnNQN is dn i's subsystem.
func dnNQN(i int) string { return fmt.Sprintf("nqn.2016-06.io.vda:proc-dn%d", i+1) }

// setupDN makes (create) or finds again (restart: the aio bdev's examine
// loads the lvstore and its lvol) dn i's lvol and exports it on port,
// allowing the cn and the test host. It returns the lvol's uuid.
func setupDN(t *testing.T, d *dpProc, i int, file string, create bool, lvol, port string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c := d.rpc
	_, err := c.BdevAioCreate(ctx, spdk.BdevAioCreateRequest{Name: "pd", Filename: file, BlockSize: procBS})
	require.NoError(t, err)
	lvs := fmt.Sprintf("lvs_dn%d", i+1)
	if create {
		_, err = c.BdevLvolCreateLvstore(ctx, spdk.BdevLvolCreateLvstoreRequest{BdevName: "pd", LvsName: lvs, ClusterSize: 1 << 20})
		require.NoError(t, err)
		lvol, err = c.BdevLvolCreate(ctx, spdk.BdevLvolCreateRequest{LvsName: lvs, LvolName: "vd", SizeInMiB: procLvolMiB})
		require.NoError(t, err)
	} else {
		lvols, err := c.BdevLvolGetLvols(ctx, spdk.BdevLvolGetLvolsRequest{})
		require.NoError(t, err)
		require.Len(t, lvols, 1, "the restarted dn finds its lvol on the aio file")
		require.Equal(t, lvol, lvols[0].UUID)
	}
	require.NoError(t, c.NvmfCreateTransport(ctx, spdk.NvmfCreateTransportRequest{Trtype: "TCP"}))
	require.NoError(t, c.NvmfCreateSubsystem(ctx, spdk.NvmfCreateSubsystemRequest{NQN: dnNQN(i)}))
	_, err = c.NvmfSubsystemAddNs(ctx, spdk.NvmfSubsystemAddNsRequest{NQN: dnNQN(i), Namespace: spdk.NamespaceParams{BdevName: lvol}})
	require.NoError(t, err)
	for _, h := range []string{procCNHost, procTestHost} {
		require.NoError(t, c.NvmfSubsystemAddHost(ctx, dnNQN(i), h))
	}
	require.NoError(t, c.NvmfSubsystemAddListener(ctx, spdk.NvmfSubsystemAddListenerRequest{NQN: dnNQN(i), ListenAddress: tcp(port)}))
	return lvol
}

// stamp fills b, which starts at block lba, with blocks that each carry
// their LBA and seed and a filler derived from both.
func stamp(b []byte, lba, seed uint64) {
	for k := 0; k < len(b); k += procBS {
		l := lba + uint64(k/procBS)
		binary.LittleEndian.PutUint64(b[k:], l)
		binary.LittleEndian.PutUint64(b[k+8:], seed)
		for j := 16; j < procBS; j += 8 {
			binary.LittleEndian.PutUint64(b[k+j:], l*0x9E3779B97F4A7C15^seed^uint64(j))
		}
	}
}

// checkStamps reports the first block of b (starting at block first)
// that is not stamped with want(block)'s LBA and seed.
func checkStamps(b []byte, first uint64, want func(block uint64) (lba, seed uint64)) error {
	exp := make([]byte, procBS)
	for k := 0; k < len(b); k += procBS {
		blk := first + uint64(k/procBS)
		lba, seed := want(blk)
		stamp(exp, lba, seed)
		if !bytes.Equal(b[k:k+procBS], exp) {
			return fmt.Errorf("block %d holds LBA %d seed %#x, want LBA %d seed %#x", blk,
				binary.LittleEndian.Uint64(b[k:]), binary.LittleEndian.Uint64(b[k+8:]), lba, seed)
		}
	}
	return nil
}

// dialHost connects nvmetcp/host to nqn at addr.
func dialHost(t *testing.T, addr, nqn string, cfg host.Config) *host.Controller {
	t.Helper()
	cfg.SubNQN, cfg.HostNQN = nqn, procTestHost
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := host.Dial(ctx, addr, cfg)
	require.NoError(t, err, "connect to %s at %s", nqn, addr)
	t.Cleanup(func() { c.Close() })
	return c
}

type procCase struct {
	queues, depth int
	digests       bool
	ioSize        int
}

func (c procCase) String() string {
	return fmt.Sprintf("queues=%d,depth=%d,digests=%v,io=%dk", c.queues, c.depth, c.digests, c.ioSize>>10)
}

// TestProcessRAID0: data written through a RAID0 of two lvols on two
// separate target processes reads back identical, over one and four I/O
// queues, queue depths 1 and 32, with digests (header and data, on the
// host's connection to the cn and on the cn's to the dns) off and on; each
// dn's lvol, read directly, holds the strips RAID0 puts there; after both
// dns are stopped (SIGTERM) and started again on their aio files (the
// lvstore and lvol found again by examine, exported again on the same
// ports) the cn reconnects within its ctrlr_loss_timeout_sec and the data
// reads back identical through it.
func TestProcessRAID0(t *testing.T) {
	if testing.Short() {
		t.Skip("starts three vda-dataplane processes")
	}
	bin := buildDataplane(t)
	dir := t.TempDir()
	ctx := context.Background()

	var dns [2]*dpProc
	var files, lvols, ports [2]string
	for i := range dns {
		files[i] = filepath.Join(dir, fmt.Sprintf("dn%d.img", i+1))
		require.NoError(t, os.WriteFile(files[i], nil, 0o600))
		require.NoError(t, os.Truncate(files[i], (procLvolMiB+8)<<20))
		ports[i] = freePort(t)
		dns[i] = startProc(t, bin, fmt.Sprintf("dn%d", i+1), filepath.Join(dir, fmt.Sprintf("dn%d.sock", i+1)))
		lvols[i] = setupDN(t, dns[i], i, files[i], true, "", ports[i])
	}

	// The cn, per digest setting in turn (a namespace's uuid is one bdev
	// at a time): both dns attached, a RAID0 over them, exported.
	cn := startProc(t, bin, "cn", filepath.Join(dir, "cn.sock"))
	require.NoError(t, cn.rpc.NvmfCreateTransport(ctx, spdk.NvmfCreateTransportRequest{Trtype: "TCP"}))
	cnPort := freePort(t)
	cnAddr := net.JoinHostPort("127.0.0.1", cnPort)
	const raidNQN = "nqn.2016-06.io.vda:proc-raid"
	buildCN := func(t *testing.T, dg bool) {
		var members []string
		for i := range dns {
			names, err := cn.rpc.BdevNvmeAttachController(ctx, spdk.BdevNvmeAttachControllerRequest{
				Name: fmt.Sprintf("vd%d", i+1), Trtype: "tcp", Adrfam: "ipv4", Traddr: "127.0.0.1", Trsvcid: ports[i],
				Subnqn: dnNQN(i), Hostnqn: procCNHost, Hdgst: dg, Ddgst: dg,
				CtrlrLossTimeoutSec: intp(30), ReconnectDelaySec: intp(1),
			})
			require.NoError(t, err)
			require.Len(t, names, 1)
			members = append(members, names[0])
		}
		require.NoError(t, cn.rpc.BdevRaidCreate(ctx, spdk.BdevRaidCreateRequest{Name: "raid0", RaidLevel: spdk.RaidLevel0,
			StripSizeKB: procStripKB, BaseBdevs: members}))
		require.NoError(t, cn.rpc.NvmfCreateSubsystem(ctx, spdk.NvmfCreateSubsystemRequest{NQN: raidNQN}))
		_, err := cn.rpc.NvmfSubsystemAddNs(ctx, spdk.NvmfSubsystemAddNsRequest{NQN: raidNQN, Namespace: spdk.NamespaceParams{BdevName: "raid0"}})
		require.NoError(t, err)
		require.NoError(t, cn.rpc.NvmfSubsystemAddHost(ctx, raidNQN, procTestHost))
		require.NoError(t, cn.rpc.NvmfSubsystemAddListener(ctx, spdk.NvmfSubsystemAddListenerRequest{NQN: raidNQN, ListenAddress: tcp(cnPort)}))
	}
	teardownCN := func(t *testing.T) {
		require.NoError(t, cn.rpc.NvmfDeleteSubsystem(ctx, raidNQN))
		require.NoError(t, cn.rpc.BdevRaidDelete(ctx, "raid0"))
		for i := range dns {
			require.NoError(t, cn.rpc.BdevNvmeDetachController(ctx, spdk.BdevNvmeDetachControllerRequest{Name: fmt.Sprintf("vd%d", i+1)}))
		}
	}

	// The cases, each on its own region of the raid.
	var cases []procCase
	for _, dg := range []bool{false, true} {
		for _, q := range []int{1, 4} {
			for _, d := range []int{1, 32} {
				// 4 KiB within a strip, or 36 KiB across strips at
				// offsets not aligned to them; each (queues, depth)
				// gets both sizes over the two digest settings.
				io := 4 << 10
				if (q == 4) != dg {
					io = 36 << 10
				}
				cases = append(cases, procCase{queues: q, depth: d, digests: dg, ioSize: io})
			}
		}
	}
	raidBlocks := uint64(2*procLvolMiB<<20) / procBS
	region := raidBlocks / uint64(len(cases))
	seedOf := func(blk uint64) uint64 { return uint64(blk/region) + 0x5eed00 }
	want := func(blk uint64) (uint64, uint64) { return blk, seedOf(blk) }

	built, dgBuilt := false, false
	for ci, tc := range cases {
		if !built || dgBuilt != tc.digests {
			if built {
				teardownCN(t)
			}
			buildCN(t, tc.digests)
			built, dgBuilt = true, tc.digests
		}
		t.Run(tc.String(), func(t *testing.T) {
			c := dialHost(t, cnAddr, raidNQN, host.Config{IOQueues: tc.queues, QueueDepth: tc.depth,
				HeaderDigest: tc.digests, DataDigest: tc.digests})
			require.Equal(t, raidBlocks*procBS, c.Size())
			require.Equal(t, tc.queues, c.IOQueues())
			first := uint64(ci) * region
			perIO := uint64(tc.ioSize / procBS)
			ios := (region + perIO - 1) / perIO // the last one shorter
			workers := tc.queues * tc.depth
			run := func(write bool) error {
				var wg sync.WaitGroup
				errs := make(chan error, workers)
				for w := range workers {
					wg.Go(func() {
						full := make([]byte, tc.ioSize)
						for i := uint64(w); i < ios; i += uint64(workers) {
							lba := first + i*perIO
							buf := full[:min(perIO, region-i*perIO)*procBS]
							if write {
								stamp(buf, lba, seedOf(lba))
								if err := c.WriteAt(ctx, buf, lba*procBS); err != nil {
									errs <- fmt.Errorf("write LBA %d: %w", lba, err)
									return
								}
								continue
							}
							clear(buf)
							if err := c.ReadAt(ctx, buf, lba*procBS); err != nil {
								errs <- fmt.Errorf("read LBA %d: %w", lba, err)
								return
							}
							if err := checkStamps(buf, lba, want); err != nil {
								errs <- err
								return
							}
						}
					})
				}
				wg.Wait()
				close(errs)
				var all []error
				for err := range errs {
					all = append(all, err)
				}
				return errors.Join(all...)
			}
			require.NoError(t, run(true))
			require.NoError(t, run(false))
		})
	}
	if t.Failed() {
		return
	}

	// Each dn's lvol, read directly, holds every other strip.
	stripBlocks := uint64(procStripKB<<10) / procBS
	checkDN := func(t *testing.T, i int, port string) {
		c := dialHost(t, net.JoinHostPort("127.0.0.1", port), dnNQN(i), host.Config{IOQueues: 2, DataDigest: true})
		buf := make([]byte, procLvolMiB<<20)
		require.NoError(t, c.ReadAt(ctx, buf, 0))
		member := func(m uint64) (uint64, uint64) {
			s := (m/stripBlocks)*2 + uint64(i) // the raid's strip
			return want(s*stripBlocks + m%stripBlocks)
		}
		require.NoError(t, checkStamps(buf, 0, member), "dn%d's lvol", i+1)
		c.Close()
	}
	for i := range dns {
		checkDN(t, i, ports[i])
	}

	// Both dns stop and come back on their aio files and ports; the cn's
	// controllers (digests on) reconnect and the data reads back through
	// it.
	c := dialHost(t, cnAddr, raidNQN, host.Config{IOQueues: 2, HeaderDigest: true, DataDigest: true})
	for i := range dns {
		dns[i].stop()
	}
	t0 := time.Now()
	for i := range dns {
		dns[i] = startProc(t, bin, fmt.Sprintf("dn%d-again", i+1), dns[i].sock)
		require.Equal(t, lvols[i], setupDN(t, dns[i], i, files[i], false, lvols[i], ports[i]))
	}
	buf := make([]byte, raidBlocks*procBS)
	deadline := time.Now().Add(30 * time.Second)
	for {
		err := c.ReadAt(ctx, buf, 0)
		if err == nil {
			break
		}
		require.True(t, time.Now().Before(deadline), "reading through the cn after the dns restarted: %v", err)
		time.Sleep(200 * time.Millisecond)
	}
	require.NoError(t, checkStamps(buf, 0, want), "through the cn after the restart")
	t.Logf("the cn's controllers reconnected and served the data %v after the dns started again", time.Since(t0).Round(time.Millisecond))
	cs, err := cn.rpc.BdevNvmeGetControllers(ctx, "")
	require.NoError(t, err)
	for _, c := range cs {
		for _, p := range c.Ctrlrs {
			require.Equal(t, spdk.NvmeCtrlrEnabled, p.State, "controller %s", c.Name)
		}
	}
	// And the dns, read directly again, still hold their strips.
	for i := range dns {
		checkDN(t, i, ports[i])
	}
}
