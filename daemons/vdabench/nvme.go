package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/bits"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/metrics"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/virtual-disk-array/vda/nvmetcp/host"
	"github.com/virtual-disk-array/vda/spdk"
	"golang.org/x/sys/unix"
)

// nvmeCmd is `vdabench nvme`: VDA's Go initiator as a load generator.
//
// --qd is the number of I/Os in flight in all: the load generator runs qd
// goroutines, each with one synchronous I/O at a time (host.Controller's
// ReadAt and WriteAt block), spread round robin over --queues I/O queues
// (one TCP connection each). There is therefore no separate --jobs.
type nvmeCmd struct {
	Addr      string        `help:"The target's NVMe/TCP address, host:port (not with --spawn)."`
	SubNQN    string        `name:"subnqn" help:"Subsystem NQN to connect to (with --spawn, the one created)." default:"nqn.2016-06.io.vda:bench"`
	HostNQN   string        `name:"hostnqn" help:"Host NQN presented." default:"nqn.2016-06.io.vda:vdabench"`
	Workload  string        `help:"randread, randwrite, read (sequential), write (sequential) or all: the issue's matrix (4 KiB random read and write at QD1 and QD32, 128 KiB sequential read and write at QD8)." enum:"randread,randwrite,read,write,all" default:"all"`
	BS        string        `name:"bs" help:"I/O size of a single workload (4k, 128k, ...); empty: 4 KiB random, 128 KiB sequential. Ignored by all."`
	QD        int           `name:"qd" help:"I/Os in flight in all (goroutines issuing I/O) of a single workload; 0: 32 random, 8 sequential. Ignored by all."`
	Submit    bool          `help:"Issue I/O with the initiator's asynchronous submission (SubmitRead/SubmitWrite: the next I/O of each of the QD chains is submitted from the previous one's completion callback, as SPDK's perf does) instead of one goroutine per I/O in flight with ReadAt/WriteAt."`
	Queues    int           `help:"I/O queues (TCP connections) the I/Os are spread over." default:"1"`
	Duration  time.Duration `help:"Measured time of each workload." default:"10s"`
	Warmup    time.Duration `help:"Unmeasured time before each workload's measurement." default:"2s"`
	Size      string        `help:"Bytes of the namespace used, from offset 0 (0: all of it); with --spawn also the malloc bdev's size." default:"1GiB"`
	HDgst     bool          `name:"hdgst" help:"Header digest."`
	DDgst     bool          `name:"ddgst" help:"Data digest."`
	TargetPID []int         `name:"target-pid" help:"Pids whose CPU time (/proc/<pid>/stat) is sampled over each measured window (repeatable)."`
	JSON      bool          `name:"json" help:"Print the results as JSON instead of a table."`

	Spawn     bool   `help:"Start vda-dataplane targets, configure them over JSON-RPC (malloc bdev, TCP transport, subsystem, listener), run against them and stop them."`
	Chain     bool   `help:"With --spawn: two dn data planes each export a malloc bdev, a cn data plane attaches both, builds a RAID0 over them and exports it; the load runs against the cn."`
	Dataplane string `help:"The vda-dataplane binary for --spawn; empty: next to vdabench, else on PATH."`
	TargetCPU string `name:"target-cpu" help:"With --spawn: CPU list (taskset -c) of the targets, which run with GOMAXPROCS=1; empty: not pinned." default:"0"`
	ClientCPU string `name:"client-cpu" help:"With --spawn: CPU list the load generator pins itself to (GOMAXPROCS = their number); empty: not pinned." default:"1"`
	BlockSize uint32 `name:"block-size" help:"With --spawn: block size of the malloc bdevs." default:"4096"`
	Profile   string `help:"With --spawn: a directory to write CPU profiles of the targets (served with --pprof) and of the load generator, taken over the randread QD32 window (or the single workload's)."`
}

// workload is one row of the matrix.
type workload struct {
	Name   string `json:"workload"`
	BS     int    `json:"bs"`
	QD     int    `json:"qd"`
	random bool
	write  bool
}

func (w workload) label() string { return fmt.Sprintf("%s %s QD%d", w.Name, sizeStr(w.BS), w.QD) }

func matrix(c nvmeCmd) ([]workload, error) {
	mk := func(name string, bs, qd int) workload {
		return workload{Name: name, BS: bs, QD: qd, random: strings.HasPrefix(name, "rand"), write: strings.HasSuffix(name, "write")}
	}
	if c.Workload == "all" {
		return []workload{
			mk("randread", 4096, 1), mk("randread", 4096, 32),
			mk("randwrite", 4096, 1), mk("randwrite", 4096, 32),
			mk("read", 128<<10, 8), mk("write", 128<<10, 8),
		}, nil
	}
	w := mk(c.Workload, 128<<10, 8)
	if w.random {
		w.BS, w.QD = 4096, 32
	}
	if c.BS != "" {
		bs, err := parseSize(c.BS)
		if err != nil || bs <= 0 {
			return nil, fmt.Errorf("--bs %q: not a size", c.BS)
		}
		w.BS = int(bs)
	}
	if c.QD > 0 {
		w.QD = c.QD
	}
	return []workload{w}, nil
}

// result is one workload's figures.
type result1 struct {
	workload
	IOs          uint64  `json:"ios"`
	Seconds      float64 `json:"seconds"`
	IOPS         float64 `json:"iops"`
	MiBps        float64 `json:"mib_per_s"`
	P50us        float64 `json:"p50_us"`
	P99us        float64 `json:"p99_us"`
	P999us       float64 `json:"p999_us"`
	MaxUs        float64 `json:"max_us"`
	ClientCPU    float64 `json:"client_cpu_s"`
	ClientPerMIO float64 `json:"client_cpu_s_per_mio"`
	// ClientAllocs and ClientAllocBytes are heap allocations of the load
	// generator per I/O.
	ClientAllocs     float64     `json:"client_allocs_per_io"`
	ClientAllocBytes float64     `json:"client_alloc_bytes_per_io"`
	Targets          []targetCPU `json:"targets,omitempty"`
}

type targetCPU struct {
	Name   string  `json:"name"`
	PID    int     `json:"pid"`
	CPU    float64 `json:"cpu_s"`
	PerMIO float64 `json:"cpu_s_per_mio"`
	// Allocs and AllocBytes are the target's heap allocations per I/O, from
	// go_memstats_mallocs_total and go_memstats_alloc_bytes_total of its
	// /metrics (spawned targets only).
	Allocs     float64 `json:"allocs_per_io,omitempty"`
	AllocBytes float64 `json:"alloc_bytes_per_io,omitempty"`
	ticks0     uint64
	sampleOK   bool
	mem0       memSample
	memOK      bool
	metrics    bool
}

// proc is a process whose CPU time is sampled.
type proc struct {
	name string
	pid  int
	// profile, if not empty, is the http address serving /debug/pprof.
	profile string
}

func runNVMe(ctx context.Context, c nvmeCmd, out io.Writer) error {
	ws, err := matrix(c)
	if err != nil {
		return err
	}
	if c.Queues <= 0 {
		c.Queues = 1
	}
	size, err := parseSize(c.Size)
	if err != nil {
		return fmt.Errorf("--size %q: not a size", c.Size)
	}
	var procs []proc
	for _, pid := range c.TargetPID {
		procs = append(procs, proc{name: "pid " + strconv.Itoa(pid), pid: pid})
	}
	if c.Chain && !c.Spawn {
		return errors.New("--chain needs --spawn")
	}
	if c.Profile != "" && !c.Spawn {
		return errors.New("--profile needs --spawn")
	}
	if c.Spawn {
		if c.Addr != "" {
			return errors.New("--addr and --spawn exclude each other")
		}
		if size <= 0 {
			return errors.New("--spawn needs a --size for the malloc bdevs")
		}
		b, err := spawn(ctx, c, size)
		if b != nil {
			defer b.stop()
		}
		if err != nil {
			return err
		}
		c.Addr = b.addr
		procs = append(procs, b.procs()...)
		if c.ClientCPU != "" && b.pinned {
			n, err := pinSelf(c.ClientCPU)
			if err != nil {
				return fmt.Errorf("pin the load generator to CPUs %s: %w", c.ClientCPU, err)
			}
			defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(n))
		}
		if c.Profile != "" {
			if err := os.MkdirAll(c.Profile, 0o755); err != nil {
				return err
			}
		}
		if !c.JSON {
			fmt.Fprintf(out, "spawned: %s; targets GOMAXPROCS=1", b.describe())
			if b.pinned {
				fmt.Fprintf(out, " on CPU %s, load generator on CPU %s", c.TargetCPU, c.ClientCPU)
			}
			fmt.Fprintln(out)
		}
	}
	if c.Addr == "" {
		return errors.New("--addr or --spawn is needed")
	}
	profiled := -1
	for i, w := range ws {
		if len(ws) == 1 || (w.Name == "randread" && w.QD == 32) {
			profiled = i
			break
		}
	}
	var rs []result1
	for i, w := range ws {
		prof := ""
		if i == profiled {
			prof = c.Profile
		}
		fmt.Fprintf(os.Stderr, "vdabench: %s against %s for %v (+%v warm-up)\n", w.label(), c.Addr, c.Duration, c.Warmup)
		r, err := runWorkload(ctx, c, w, size, procs, prof)
		if err != nil {
			return fmt.Errorf("%s: %w", w.label(), err)
		}
		rs = append(rs, r)
	}
	return report(out, c.JSON, rs)
}

func report(out io.Writer, asJSON bool, rs []result1) error {
	if asJSON {
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		return enc.Encode(rs)
	}
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', tabwriter.AlignRight)
	hdr := "workload\tIOPS\tMiB/s\tp50 µs\tp99 µs\tp99.9 µs\tclient CPU s/M I/O\tclient allocs/I/O"
	if len(rs) > 0 {
		for _, t := range rs[0].Targets {
			hdr += "\t" + t.Name + " CPU s/M I/O"
			if t.metrics {
				hdr += "\t" + t.Name + " allocs/I/O"
			}
		}
	}
	fmt.Fprintln(tw, hdr+"\t")
	for _, r := range rs {
		line := fmt.Sprintf("%s\t%.0f\t%.1f\t%.1f\t%.1f\t%.1f\t%.2f\t%.2f", r.label(), r.IOPS, r.MiBps, r.P50us, r.P99us, r.P999us, r.ClientPerMIO, r.ClientAllocs)
		for _, t := range r.Targets {
			if t.sampleOK {
				line += fmt.Sprintf("\t%.2f", t.PerMIO)
			} else {
				line += "\t-"
			}
			switch {
			case t.memOK:
				line += fmt.Sprintf("\t%.2f", t.Allocs)
			case t.metrics:
				line += "\t-"
			}
		}
		fmt.Fprintln(tw, line+"\t")
	}
	return tw.Flush()
}

// runWorkload connects, runs w for the warm-up and the measured window and
// returns the window's figures.
func runWorkload(ctx context.Context, c nvmeCmd, w workload, size int64, procs []proc, profDir string) (result1, error) {
	dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	ctrl, err := host.Dial(dctx, c.Addr, host.Config{
		SubNQN: c.SubNQN, HostNQN: c.HostNQN, IOQueues: c.Queues,
		// Slots per queue: commands go round robin, so one queue may hold
		// more than its share, but never more than the I/Os in flight in
		// all (QD1 runs with QueueDepth 1).
		QueueDepth:   min(w.QD, 128),
		HeaderDigest: c.HDgst, DataDigest: c.DDgst,
	})
	cancel()
	if err != nil {
		return result1{}, err
	}
	defer ctrl.Close()
	span := int64(ctrl.Size())
	if size > 0 && size < span {
		span = size
	}
	if w.BS <= 0 || w.BS%int(ctrl.BlockSize()) != 0 {
		return result1{}, fmt.Errorf("I/O size %d is not a multiple of the block size %d", w.BS, ctrl.BlockSize())
	}
	blocks := uint64(span / int64(w.BS))
	if blocks == 0 {
		return result1{}, fmt.Errorf("the range used (%d bytes) holds no %d-byte I/O", span, w.BS)
	}

	var (
		measuring, stop atomic.Bool
		seq             atomic.Uint64
		errOnce         sync.Once
		firstErr        error
		wg              sync.WaitGroup
	)
	hists := make([]*histogram, w.QD)
	for j := range w.QD {
		h := new(histogram)
		hists[j] = h
		if c.Submit {
			// One chain: each completion submits the next I/O, on the
			// initiator's reader goroutine; no goroutine waits.
			rng := rand.New(rand.NewPCG(uint64(j)+1, uint64(time.Now().UnixNano())))
			buf := make([]byte, w.BS)
			for i := range buf {
				buf[i] = byte(i*7 + j)
			}
			var t0 time.Time
			var next func(error)
			submit := func() error {
				var off uint64
				if w.random {
					off = rng.Uint64N(blocks) * uint64(w.BS)
				} else {
					off = (seq.Add(1) - 1) % blocks * uint64(w.BS)
				}
				t0 = time.Now()
				if w.write {
					return ctrl.SubmitWrite(buf, off, next)
				}
				return ctrl.SubmitRead(buf, off, next)
			}
			next = func(err error) {
				if err == nil && measuring.Load() {
					h.add(uint64(time.Since(t0)))
				}
				if err == nil && !stop.Load() {
					err = submit()
					if err == nil {
						return
					}
				}
				if err != nil {
					errOnce.Do(func() { firstErr = err })
					stop.Store(true)
				}
				wg.Done()
			}
			wg.Add(1)
			if err := submit(); err != nil {
				next(err)
			}
			continue
		}
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(j)+1, uint64(time.Now().UnixNano())))
			buf := make([]byte, w.BS)
			for i := range buf {
				buf[i] = byte(i*7 + j)
			}
			for !stop.Load() {
				var off uint64
				if w.random {
					off = rng.Uint64N(blocks) * uint64(w.BS)
				} else {
					off = (seq.Add(1) - 1) % blocks * uint64(w.BS)
				}
				t0 := time.Now()
				var err error
				if w.write {
					err = ctrl.WriteAt(ctx, buf, off)
				} else {
					err = ctrl.ReadAt(ctx, buf, off)
				}
				d := time.Since(t0)
				if err != nil {
					errOnce.Do(func() { firstErr = err })
					stop.Store(true)
					return
				}
				if measuring.Load() {
					h.add(uint64(d))
				}
			}
		})
	}
	finish := func() error {
		stop.Store(true)
		wg.Wait()
		return firstErr
	}
	if !sleep(ctx, c.Warmup, &stop) {
		if err := finish(); err != nil {
			return result1{}, err
		}
		return result1{}, ctx.Err()
	}

	var profWG sync.WaitGroup
	var profErrs []error
	var profMu sync.Mutex
	var clientProf *os.File
	if profDir != "" {
		secs := max(1, int(c.Duration.Round(time.Second)/time.Second))
		for _, p := range procs {
			if p.profile == "" {
				continue
			}
			profWG.Go(func() {
				err := fetchProfile(ctx, p.profile, secs, filepath.Join(profDir, fmt.Sprintf("%s-%s-qd%d.pprof", p.name, w.Name, w.QD)))
				if err != nil {
					profMu.Lock()
					profErrs = append(profErrs, fmt.Errorf("profile of %s: %w", p.name, err))
					profMu.Unlock()
				}
			})
		}
		f, err := os.Create(filepath.Join(profDir, fmt.Sprintf("vdabench-%s-qd%d.pprof", w.Name, w.QD)))
		if err == nil {
			if err = pprof.StartCPUProfile(f); err != nil {
				f.Close()
			} else {
				clientProf = f
			}
		}
		if err != nil {
			profErrs = append(profErrs, err)
		}
	}

	tcpu := make([]targetCPU, len(procs))
	for i, p := range procs {
		tcpu[i] = targetCPU{Name: p.name, PID: p.pid}
		tcpu[i].ticks0, tcpu[i].sampleOK = procTicks(p.pid)
		if p.profile != "" {
			tcpu[i].metrics = true
			tcpu[i].mem0, tcpu[i].memOK = scrapeMem(ctx, p.profile)
		}
	}
	ru0, mem0 := rusage(), selfMem()
	measuring.Store(true)
	t0 := time.Now()
	completed := sleep(ctx, c.Duration, &stop)
	measuring.Store(false)
	elapsed := time.Since(t0)
	ru1, mem1 := rusage(), selfMem()
	for i, p := range procs {
		t1, ok := procTicks(p.pid)
		if tcpu[i].sampleOK = tcpu[i].sampleOK && ok; tcpu[i].sampleOK {
			tcpu[i].CPU = float64(t1-tcpu[i].ticks0) / clockTicks
		}
		if tcpu[i].memOK {
			m1, ok := scrapeMem(ctx, p.profile)
			tcpu[i].memOK = ok
			tcpu[i].mem0 = memSample{m1.allocs - tcpu[i].mem0.allocs, m1.bytes - tcpu[i].mem0.bytes}
		}
	}
	if clientProf != nil {
		pprof.StopCPUProfile()
		clientProf.Close()
	}
	err = finish()
	profWG.Wait()
	if err != nil {
		return result1{}, err
	}
	if !completed {
		return result1{}, ctx.Err()
	}
	if len(profErrs) > 0 {
		return result1{}, errors.Join(profErrs...)
	}

	var h histogram
	for _, x := range hists {
		h.merge(x)
	}
	r := result1{workload: w, IOs: h.n, Seconds: elapsed.Seconds(), Targets: tcpu}
	r.IOPS = float64(h.n) / elapsed.Seconds()
	r.MiBps = r.IOPS * float64(w.BS) / (1 << 20)
	r.P50us, r.P99us, r.P999us = h.quantile(0.50)/1e3, h.quantile(0.99)/1e3, h.quantile(0.999)/1e3
	r.MaxUs = float64(h.max) / 1e3
	r.ClientCPU = (ru1 - ru0).Seconds()
	if h.n > 0 {
		mio := float64(h.n) / 1e6
		r.ClientPerMIO = r.ClientCPU / mio
		r.ClientAllocs = float64(mem1.allocs-mem0.allocs) / float64(h.n)
		r.ClientAllocBytes = float64(mem1.bytes-mem0.bytes) / float64(h.n)
		for i, t := range r.Targets {
			r.Targets[i].PerMIO = t.CPU / mio
			if t.memOK {
				r.Targets[i].Allocs = float64(t.mem0.allocs) / float64(h.n)
				r.Targets[i].AllocBytes = float64(t.mem0.bytes) / float64(h.n)
			}
		}
	}
	return r, nil
}

// sleep waits d, or less if ctx ends or stop is set (an I/O failed); it
// reports whether it waited all of d.
func sleep(ctx context.Context, d time.Duration, stop *atomic.Bool) bool {
	end := time.Now().Add(d)
	for {
		left := time.Until(end)
		if left <= 0 {
			return true
		}
		t := time.NewTimer(min(left, 20*time.Millisecond))
		select {
		case <-ctx.Done():
			t.Stop()
			return false
		case <-t.C:
		}
		if stop.Load() {
			return false
		}
	}
}

func fetchProfile(ctx context.Context, addr string, secs int, path string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", addr, secs), nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return fmt.Errorf("%s: %s", resp.Status, strings.TrimSpace(string(b)))
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// rusage is the process's user+system CPU time (getrusage RUSAGE_SELF).
func rusage() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// memSample is a count of heap allocations.
type memSample struct{ allocs, bytes uint64 }

// selfMem is this process's heap allocations so far.
func selfMem() memSample {
	s := []metrics.Sample{{Name: "/gc/heap/allocs:objects"}, {Name: "/gc/heap/allocs:bytes"}}
	metrics.Read(s)
	return memSample{s[0].Value.Uint64(), s[1].Value.Uint64()}
}

// scrapeMem reads a Go process's allocation counters from its Prometheus
// /metrics at addr.
func scrapeMem(ctx context.Context, addr string) (memSample, bool) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/metrics", nil)
	if err != nil {
		return memSample{}, false
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return memSample{}, false
	}
	defer resp.Body.Close()
	var m memSample
	found := 0
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		name, val, ok := strings.Cut(sc.Text(), " ")
		if !ok {
			continue
		}
		var dst *uint64
		switch name {
		case "go_memstats_mallocs_total":
			dst = &m.allocs
		case "go_memstats_alloc_bytes_total":
			dst = &m.bytes
		default:
			continue
		}
		f, err := strconv.ParseFloat(strings.TrimSpace(val), 64)
		if err != nil {
			return memSample{}, false
		}
		*dst = uint64(f)
		found++
	}
	return m, found == 2 && resp.StatusCode == http.StatusOK
}

// clockTicks is Linux's USER_HZ, the unit of /proc/<pid>/stat's times
// (100 on every architecture Go supports).
const clockTicks = 100

// procTicks is utime+stime of pid in clock ticks.
func procTicks(pid int) (uint64, bool) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, false
	}
	f := strings.Fields(s[i+1:])
	// f[0] is field 3 (state); utime and stime are fields 14 and 15.
	if len(f) < 13 {
		return 0, false
	}
	u, err1 := strconv.ParseUint(f[11], 10, 64)
	st, err2 := strconv.ParseUint(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, false
	}
	return u + st, true
}

// histogram is a log-linear latency histogram in nanoseconds: exact below
// 128 ns, then 64 buckets per power of two (under 1.6% error). Adding is
// allocation-free.
type histogram struct {
	counts [64 * 60]uint64
	n, max uint64
}

func bucket(v uint64) int {
	if v < 128 {
		return int(v)
	}
	shift := bits.Len64(v) - 7
	return shift*64 + int(v>>shift)
}

// bucketMid is the middle of bucket i's range.
func bucketMid(i int) float64 {
	if i < 128 {
		return float64(i)
	}
	shift := i/64 - 1
	lo := uint64(i%64+64) << shift
	return float64(lo) + float64(uint64(1)<<shift)/2
}

func (h *histogram) add(v uint64) {
	i := bucket(v)
	if i >= len(h.counts) {
		i = len(h.counts) - 1
	}
	h.counts[i]++
	h.n++
	h.max = max(h.max, v)
}

func (h *histogram) merge(o *histogram) {
	for i, c := range o.counts {
		h.counts[i] += c
	}
	h.n += o.n
	h.max = max(h.max, o.max)
}

// quantile is the value at quantile q (0..1), 0 if empty.
func (h *histogram) quantile(q float64) float64 {
	if h.n == 0 {
		return 0
	}
	rank := uint64(q*float64(h.n) + 0.5)
	rank = min(max(rank, 1), h.n)
	var seen uint64
	for i, c := range h.counts {
		if seen += c; seen >= rank {
			return min(bucketMid(i), float64(h.max))
		}
	}
	return float64(h.max)
}

// parseSize reads 4096, 4k, 4KiB, 128K, 1g, 1GiB (powers of 1024).
func parseSize(s string) (int64, error) {
	t := strings.TrimSuffix(strings.TrimSuffix(strings.ToLower(strings.TrimSpace(s)), "b"), "i")
	mul := int64(1)
	if t != "" {
		switch t[len(t)-1] {
		case 'k':
			mul = 1 << 10
		case 'm':
			mul = 1 << 20
		case 'g':
			mul = 1 << 30
		case 't':
			mul = 1 << 40
		}
		if mul > 1 {
			t = t[:len(t)-1]
		}
	}
	n, err := strconv.ParseInt(t, 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("not a size: %q", s)
	}
	return n * mul, nil
}

func sizeStr(n int) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%dM", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%dk", n>>10)
	}
	return strconv.Itoa(n)
}

// pinSelf binds every thread of the process to cpus (a taskset -c list)
// and returns how many CPUs that is. Threads started later inherit it.
func pinSelf(cpus string) (int, error) {
	list, err := parseCPUList(cpus)
	if err != nil {
		return 0, err
	}
	var set unix.CPUSet
	for _, c := range list {
		set.Set(c)
	}
	// Hold this thread so that it is one of those pinned while the others
	// are.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	for range 2 { // twice: a thread may have started during the first pass
		tasks, err := os.ReadDir("/proc/self/task")
		if err != nil {
			return 0, err
		}
		for _, t := range tasks {
			tid, err := strconv.Atoi(t.Name())
			if err != nil {
				continue
			}
			if err := unix.SchedSetaffinity(tid, &set); err != nil && !errors.Is(err, unix.ESRCH) {
				return 0, err
			}
		}
	}
	return len(list), nil
}

func parseCPUList(s string) ([]int, error) {
	var out []int
	for part := range strings.SplitSeq(s, ",") {
		lo, hi, isRange := strings.Cut(strings.TrimSpace(part), "-")
		a, err := strconv.Atoi(lo)
		if err != nil {
			return nil, fmt.Errorf("CPU list %q", s)
		}
		b := a
		if isRange {
			if b, err = strconv.Atoi(hi); err != nil || b < a {
				return nil, fmt.Errorf("CPU list %q", s)
			}
		}
		for c := a; c <= b; c++ {
			out = append(out, c)
		}
	}
	return out, nil
}

// bench is the set of data planes --spawn started.
type bench struct {
	dir    string
	dps    []*dataplaneProc
	addr   string // NVMe/TCP address the load runs against
	pinned bool
}

type dataplaneProc struct {
	name    string
	cmd     *exec.Cmd
	sock    string
	metrics string
	rpc     *spdk.Client
	conn    *spdk.Conn
	mu      sync.Mutex
	log     strings.Builder
	exited  chan struct{}
}

func (b *bench) procs() []proc {
	var ps []proc
	for _, d := range b.dps {
		ps = append(ps, proc{name: d.name, pid: d.cmd.Process.Pid, profile: d.metrics})
	}
	return ps
}

func (b *bench) describe() string {
	var parts []string
	for _, d := range b.dps {
		parts = append(parts, fmt.Sprintf("%s (pid %d)", d.name, d.cmd.Process.Pid))
	}
	return strings.Join(parts, ", ") + "; load on " + b.addr
}

func (b *bench) stop() {
	for _, d := range b.dps {
		d.stop()
	}
	if b.dir != "" {
		os.RemoveAll(b.dir)
	}
}

func (d *dataplaneProc) stop() {
	if d.conn != nil {
		d.conn.Close()
	}
	select {
	case <-d.exited:
		return
	default:
	}
	_ = d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-d.exited:
	case <-time.After(15 * time.Second):
		_ = d.cmd.Process.Kill()
		<-d.exited
	}
}

func (d *dataplaneProc) logs() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.log.String()
}

func dataplaneBinary(path string) (string, error) {
	if path != "" {
		return path, nil
	}
	if exe, err := os.Executable(); err == nil {
		p := filepath.Join(filepath.Dir(exe), "vda-dataplane")
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	p, err := exec.LookPath("vda-dataplane")
	if err != nil {
		return "", errors.New("vda-dataplane not found next to vdabench nor on PATH: build it (make build) or give --dataplane")
	}
	return p, nil
}

// startDataplane starts one vda-dataplane with GOMAXPROCS=1, pinned with
// taskset if taskset is not empty, and waits until it serves.
func startDataplane(ctx context.Context, bin, taskset, cpus, dir, name string, withPprof bool) (*dataplaneProc, error) {
	d := &dataplaneProc{name: name, sock: filepath.Join(dir, name+".sock"), exited: make(chan struct{})}
	args := []string{"--socket", d.sock, "--listen", "127.0.0.1:0", "--log-format", "json"}
	if withPprof {
		args = append(args, "--pprof")
	}
	if taskset != "" {
		d.cmd = exec.Command(taskset, append([]string{"-c", cpus, bin}, args...)...)
	} else {
		d.cmd = exec.Command(bin, args...)
	}
	d.cmd.Env = append(os.Environ(), "GOMAXPROCS=1")
	stderr, err := d.cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	if err := d.cmd.Start(); err != nil {
		return nil, err
	}
	ready := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			line := sc.Text()
			d.mu.Lock()
			if d.log.Len() < 1<<20 {
				d.log.WriteString(line + "\n")
			}
			d.mu.Unlock()
			var rec struct {
				Msg     string `json:"msg"`
				Metrics string `json:"metrics"`
			}
			if json.Unmarshal([]byte(line), &rec) == nil && rec.Msg == "data plane serving" {
				select {
				case ready <- rec.Metrics:
				default:
				}
			}
		}
		_ = d.cmd.Wait()
		close(d.exited)
	}()
	select {
	case d.metrics = <-ready:
	case <-d.exited:
		return d, fmt.Errorf("%s exited at start: %s", name, d.logs())
	case <-time.After(15 * time.Second):
		return d, fmt.Errorf("%s did not start serving within 15s: %s", name, d.logs())
	case <-ctx.Done():
		return d, ctx.Err()
	}
	d.conn = spdk.Dial(d.sock, spdk.ConnConfig{})
	d.rpc = spdk.New(d.conn)
	return d, nil
}

func freePort() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	_, port, err := net.SplitHostPort(ln.Addr().String())
	return port, err
}

// export creates the TCP transport (unless done), a subsystem allowing any
// host with bdev as its namespace, and a listener on 127.0.0.1 at a free
// port, which it returns.
func export(ctx context.Context, rpc *spdk.Client, nqn, bdev string) (string, error) {
	if err := rpc.NvmfCreateSubsystem(ctx, spdk.NvmfCreateSubsystemRequest{
		NQN: nqn, AllowAnyHost: true, SerialNumber: "VDABENCH0001", ModelNumber: "VDA bench",
	}); err != nil {
		return "", fmt.Errorf("nvmf_create_subsystem: %w", err)
	}
	if _, err := rpc.NvmfSubsystemAddNs(ctx, spdk.NvmfSubsystemAddNsRequest{NQN: nqn, Namespace: spdk.NamespaceParams{BdevName: bdev}}); err != nil {
		return "", fmt.Errorf("nvmf_subsystem_add_ns: %w", err)
	}
	var err error
	for range 5 { // a free port may be taken between the probe and the listen
		var port string
		if port, err = freePort(); err != nil {
			return "", err
		}
		err = rpc.NvmfSubsystemAddListener(ctx, spdk.NvmfSubsystemAddListenerRequest{NQN: nqn, ListenAddress: spdk.ListenAddress{
			Trtype: spdk.TrtypeTCP, Adrfam: spdk.AdrfamIPv4, Traddr: "127.0.0.1", Trsvcid: port,
		}})
		if err == nil {
			return net.JoinHostPort("127.0.0.1", port), nil
		}
	}
	return "", fmt.Errorf("nvmf_subsystem_add_listener: %w", err)
}

// spawn starts and configures the data planes of --spawn (and --chain).
func spawn(ctx context.Context, c nvmeCmd, size int64) (*bench, error) {
	bin, err := dataplaneBinary(c.Dataplane)
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "vdabench-nvme")
	if err != nil {
		return nil, err
	}
	b := &bench{dir: dir}
	taskset := ""
	if c.TargetCPU != "" {
		if p, err := exec.LookPath("taskset"); err == nil && runtime.NumCPU() >= 2 {
			taskset, b.pinned = p, true
		}
	}
	names := []string{"target"}
	if c.Chain {
		names = []string{"dn1", "dn2", "cn"}
	}
	for _, name := range names {
		d, err := startDataplane(ctx, bin, taskset, c.TargetCPU, dir, name, c.Profile != "")
		if d != nil {
			b.dps = append(b.dps, d)
		}
		if err != nil {
			return b, err
		}
	}
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for _, d := range b.dps {
		if err := d.rpc.NvmfCreateTransport(cctx, spdk.NvmfCreateTransportRequest{Trtype: spdk.TrtypeTCP}); err != nil {
			return b, fmt.Errorf("%s: nvmf_create_transport: %w", d.name, err)
		}
	}
	bs := uint64(c.BlockSize)
	if bs == 0 || uint64(size)%bs != 0 {
		return b, fmt.Errorf("--size %d is not a multiple of --block-size %d", size, bs)
	}
	if !c.Chain {
		d := b.dps[0]
		if _, err := d.rpc.BdevMallocCreate(cctx, spdk.BdevMallocCreateRequest{Name: "Malloc0", NumBlocks: uint64(size) / bs, BlockSize: c.BlockSize}); err != nil {
			return b, fmt.Errorf("bdev_malloc_create: %w", err)
		}
		b.addr, err = export(cctx, d.rpc, c.SubNQN, "Malloc0")
		if err != nil {
			return b, fmt.Errorf("%s: %w", d.name, err)
		}
		return b, nil
	}
	// The chain: each dn exports half of the array; the cn stripes them.
	cn := b.dps[2]
	var members []string
	for i, d := range b.dps[:2] {
		nqn := fmt.Sprintf("nqn.2016-06.io.vda:bench-%s", d.name)
		if _, err := d.rpc.BdevMallocCreate(cctx, spdk.BdevMallocCreateRequest{Name: "Malloc0", NumBlocks: uint64(size) / bs / 2, BlockSize: c.BlockSize}); err != nil {
			return b, fmt.Errorf("%s: bdev_malloc_create: %w", d.name, err)
		}
		addr, err := export(cctx, d.rpc, nqn, "Malloc0")
		if err != nil {
			return b, fmt.Errorf("%s: %w", d.name, err)
		}
		h, p, _ := net.SplitHostPort(addr)
		bdevs, err := cn.rpc.BdevNvmeAttachController(cctx, spdk.BdevNvmeAttachControllerRequest{
			Name: fmt.Sprintf("vd%d", i+1), Trtype: spdk.TrtypeTCP, Adrfam: spdk.AdrfamIPv4, Traddr: h, Trsvcid: p,
			Subnqn: nqn, Hostnqn: "nqn.2016-06.io.vda:bench-cn",
		})
		if err != nil {
			return b, fmt.Errorf("cn: bdev_nvme_attach_controller to %s: %w", d.name, err)
		}
		if len(bdevs) != 1 {
			return b, fmt.Errorf("cn: bdev_nvme_attach_controller to %s made bdevs %v", d.name, bdevs)
		}
		members = append(members, bdevs[0])
	}
	if err := cn.rpc.BdevRaidCreate(cctx, spdk.BdevRaidCreateRequest{Name: "raid0", RaidLevel: spdk.RaidLevel0, StripSizeKB: 64, BaseBdevs: members}); err != nil {
		return b, fmt.Errorf("cn: bdev_raid_create: %w", err)
	}
	b.addr, err = export(cctx, cn.rpc, c.SubNQN, "raid0")
	if err != nil {
		return b, fmt.Errorf("cn: %w", err)
	}
	return b, nil
}
