// Package guest boots Debian's Linux kernel under QEMU with a small
// initramfs and runs a shell script in it, so that tests can drive the real
// Linux NVMe/TCP initiator against VDA's targets on the host: the host's
// own kernel has no NVMe modules (see docs/development.md).
//
// The kernel comes from scripts/guest-kernel.sh, which unpacks Debian's
// cloud kernel package into a directory (VDA_GUEST_DIR, default
// .tmp/guest at the module root). The initramfs is built here, in Go: busybox
// from the host's busybox-static, the kernel modules a test asks for with
// their dependencies (resolved with the host's modprobe against the
// unpacked tree), and an /init that loads them, brings up the network and
// runs the script. The guest reaches the host's loopback at 10.0.2.2.
package guest

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/virtual-disk-array/vda/internal/proctest"
)

// HostAddr is the host's loopback as the guest sees it (QEMU user
// networking).
const HostAddr = "10.0.2.2"

// ErrUnavailable means the kernel, QEMU or busybox is missing here.
var ErrUnavailable = errors.New("guest: unavailable")

// Kernel is an unpacked guest kernel.
type Kernel struct {
	Dir     string // holds vmlinuz, kver and root/lib/modules
	Version string
}

// Find locates the unpacked kernel: dir if not empty, else VDA_GUEST_DIR,
// else .tmp/guest at the module root (found from the working directory).
// It wraps ErrUnavailable when the kernel or the host tools are missing.
func Find(dir string) (*Kernel, error) {
	if dir == "" {
		dir = os.Getenv("VDA_GUEST_DIR")
	}
	if dir == "" {
		root, err := proctest.ModuleRoot()
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrUnavailable, err)
		}
		dir = filepath.Join(root, ".tmp", "guest")
	}
	kver, err := os.ReadFile(filepath.Join(dir, "kver"))
	if err != nil {
		return nil, fmt.Errorf("%w: no kernel in %s (run scripts/guest-kernel.sh): %w", ErrUnavailable, dir, err)
	}
	for _, tool := range []string{"qemu-system-x86_64", "modprobe"} {
		if _, err := exec.LookPath(tool); err != nil {
			return nil, fmt.Errorf("%w: %s: %w", ErrUnavailable, tool, err)
		}
	}
	if _, err := os.Stat(busybox); err != nil {
		return nil, fmt.Errorf("%w: busybox-static: %w", ErrUnavailable, err)
	}
	return &Kernel{Dir: dir, Version: strings.TrimSpace(string(kver))}, nil
}

const busybox = "/bin/busybox"

// Run is one boot of the guest.
type Run struct {
	// Modules to load, in order, each after its dependencies; the
	// network's (virtio_net, virtio_pci) are always loaded.
	Modules []string
	// Script runs as root in the guest after the network is up; its
	// output and exit status come back in Result.
	Script string
	// Files are put into the initramfs, by absolute path, mode 0755.
	Files map[string][]byte
	// Binaries are host executables (absolute paths, e.g. /usr/sbin/nvme
	// from the host's nvme-cli) copied to the same paths in the guest,
	// with the shared libraries ldd finds for them and the ELF
	// interpreter, so that dynamically linked tools run there (the guest
	// and the host are both Debian 12 amd64).
	Binaries []string
	// Memory for the guest; "" means 512M.
	Memory string
	// Timeout bounds one boot, script included; 0 means 2 minutes.
	Timeout time.Duration
	// BootTimeout bounds the time from starting QEMU to the script
	// starting; 0 means 45 seconds (a boot takes about 3). A boot that
	// misses it is killed and tried again, up to two more times: a TCG
	// guest now and then hangs in early boot on a loaded machine, before
	// the script has done anything, so a retry is safe.
	BootTimeout time.Duration
	// Output, if not nil, receives the serial console as the guest
	// writes it (kernel messages and the script's output, with the
	// console's carriage returns), so that a test can follow a script
	// while it runs: see Lines.
	Output io.Writer
}

// Result is what the script printed and how it ended.
type Result struct {
	Output string // the script's stdout and stderr
	Status int    // its exit status
	// Console is the whole serial console, kernel messages included, for
	// diagnosing a failure.
	Console string
}

// Markers the guest's /init prints around the script's output. The
// console carries escape sequences, so each starts on a fresh line.
const (
	markBegin  = "===VDA-GUEST-BEGIN==="
	markStatus = "===VDA-GUEST-STATUS="
)

var statusRE = regexp.MustCompile(markStatus + `(\d+)===`)

// Boot builds the initramfs for r, boots the kernel under QEMU (TCG: the
// host's KVM runs no stock kernel) and returns the script's result. An
// error means the guest did not get to report: it includes the console's
// tail.
func (k *Kernel) Boot(ctx context.Context, r Run) (Result, error) {
	if r.Memory == "" {
		r.Memory = "512M"
	}
	if r.Timeout == 0 {
		r.Timeout = 2 * time.Minute
	}
	if r.BootTimeout == 0 {
		r.BootTimeout = 45 * time.Second
	}
	initrd, err := k.initramfs(r)
	if err != nil {
		return Result{}, err
	}
	dir, err := os.MkdirTemp("", "vda-guest-")
	if err != nil {
		return Result{}, err
	}
	defer os.RemoveAll(dir)
	initrdPath := filepath.Join(dir, "initrd")
	if err := os.WriteFile(initrdPath, initrd, 0o644); err != nil {
		return Result{}, err
	}
	var (
		console string
		runErr  error
	)
	for attempt := 1; ; attempt++ {
		var hung bool
		console, hung, runErr = k.boot(ctx, r, initrdPath)
		if !hung || attempt == bootAttempts || ctx.Err() != nil {
			break
		}
		if r.Output != nil {
			fmt.Fprintf(r.Output, "\n[guest: no script after %v, boot attempt %d of %d failed; retrying]\n", r.BootTimeout, attempt, bootAttempts)
		}
	}
	res := Result{Console: console}
	begin := strings.Index(console, markBegin)
	m := statusRE.FindAllStringSubmatchIndex(console, -1)
	if begin < 0 || len(m) == 0 {
		return res, fmt.Errorf("guest did not report (qemu: %v); console tail:\n%s", runErr, tail(console, 3000))
	}
	last := m[len(m)-1]
	res.Status, _ = strconv.Atoi(console[last[2]:last[3]])
	res.Output = strings.TrimSpace(strings.ReplaceAll(console[begin+len(markBegin):last[0]], "\r", ""))
	return res, nil
}

// bootAttempts is how many times Boot starts QEMU before giving up on a
// guest that hangs before its script.
const bootAttempts = 3

// boot runs QEMU once, for at most r.Timeout. hung reports that the
// script had not started within r.BootTimeout, so QEMU was killed.
func (k *Kernel) boot(ctx context.Context, r Run, initrdPath string) (console string, hung bool, err error) {
	ctx, cancel := context.WithTimeout(ctx, r.Timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "qemu-system-x86_64",
		"-accel", "tcg,thread=multi", "-cpu", "max", "-m", r.Memory, "-smp", "2",
		"-nographic", "-nodefaults", "-serial", "stdio", "-monitor", "none", "-no-reboot",
		"-kernel", filepath.Join(k.Dir, "vmlinuz"), "-initrd", initrdPath,
		"-append", "console=ttyS0 panic=-1 quiet loglevel=4",
		"-netdev", "user,id=n0", "-device", "virtio-net-pci,netdev=n0,romfile=")
	w := &consoleLog{begun: make(chan struct{})}
	var out io.Writer = w
	if r.Output != nil {
		out = io.MultiWriter(w, r.Output)
	}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		return "", false, err
	}
	var fired atomic.Bool
	watchdog := time.AfterFunc(r.BootTimeout, func() {
		select {
		case <-w.begun:
		default:
			fired.Store(true)
			cancel()
		}
	})
	err = cmd.Wait()
	watchdog.Stop()
	return w.String(), fired.Load(), err
}

// consoleLog collects QEMU's output and closes begun once the script's
// begin marker shows up.
type consoleLog struct {
	mu    sync.Mutex
	buf   bytes.Buffer
	begun chan struct{}
	seen  bool
}

func (c *consoleLog) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	// Look only at the new bytes and the marker's length before them: the
	// marker may arrive split across writes.
	from := max(c.buf.Len()-len(markBegin), 0)
	c.buf.Write(p)
	if !c.seen && bytes.Contains(c.buf.Bytes()[from:], []byte(markBegin)) {
		c.seen = true
		close(c.begun)
	}
	return len(p), nil
}

func (c *consoleLog) String() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.buf.String()
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// initramfs builds the guest's root: busybox, the modules and /init.
func (k *Kernel) initramfs(r Run) ([]byte, error) {
	var a archive
	for _, d := range []string{"/bin", "/sbin", "/dev", "/proc", "/sys", "/tmp", "/lib", "/lib/modules", "/mnt"} {
		a.dir(d)
	}
	bb, err := os.ReadFile(busybox)
	if err != nil {
		return nil, err
	}
	a.file("/bin/busybox", bb, 0o755)
	a.symlink("/bin/sh", "busybox")

	mods, err := k.resolve(append([]string{"virtio_pci", "virtio_net"}, r.Modules...))
	if err != nil {
		return nil, err
	}
	var load strings.Builder
	for i, path := range mods {
		data, err := os.ReadFile(path)
		if err != nil {
			return nil, err
		}
		name := fmt.Sprintf("/lib/modules/%02d-%s", i, filepath.Base(path))
		a.file(name, data, 0o644)
		fmt.Fprintf(&load, "insmod %s || echo \"insmod %s failed\"\n", name, filepath.Base(path))
	}
	for path, data := range r.Files {
		a.file(path, data, 0o755)
	}
	if err := addBinaries(&a, r.Binaries); err != nil {
		return nil, err
	}
	a.file("/script", []byte(r.Script), 0o755)
	a.file("/init", []byte(fmt.Sprintf(initScript, load.String(), markBegin, markStatus)), 0o755)
	return a.bytes(), nil
}

// initScript is the guest's /init: mounts, modules, network, the script,
// its status, power off.
const initScript = `#!/bin/sh
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mkdir -p /dev/pts && mount -t devpts devpts /dev/pts
%s
ip link set lo up
ip link set eth0 up
ip addr add 10.0.2.15/24 dev eth0
ip route add default via 10.0.2.2
echo
echo '%s'
sh /script 2>&1
st=$?
echo
echo "%s${st}==="
sync
poweroff -f
`

// addBinaries copies executables and, once each, the libraries they
// need, following symbolic links (each lands at the path the loader looks
// for).
func addBinaries(a *archive, bins []string) error {
	seen := map[string]bool{}
	add := func(path string, perm int) error {
		if seen[path] {
			return nil
		}
		seen[path] = true
		data, err := os.ReadFile(path)
		if err != nil {
			return fmt.Errorf("guest: binary: %w", err)
		}
		a.file(path, data, perm)
		return nil
	}
	for _, bin := range bins {
		if err := add(bin, 0o755); err != nil {
			return err
		}
		libs, err := sharedLibraries(bin)
		if err != nil {
			return err
		}
		for _, lib := range libs {
			if err := add(lib, 0o755); err != nil {
				return err
			}
		}
	}
	return nil
}

// sharedLibraries lists the libraries ldd resolves for bin, the ELF
// interpreter included.
func sharedLibraries(bin string) ([]string, error) {
	out, err := exec.Command("ldd", bin).Output()
	if err != nil {
		return nil, fmt.Errorf("guest: ldd %s: %w", bin, err)
	}
	var libs []string
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		switch {
		case len(f) >= 3 && f[1] == "=>" && strings.HasPrefix(f[2], "/"):
			libs = append(libs, f[2]) // libx.so => /lib/.../libx.so (0x…)
		case len(f) >= 1 && strings.HasPrefix(f[0], "/"):
			libs = append(libs, f[0]) // the interpreter
		case len(f) >= 3 && f[1] == "=>" && f[2] == "not":
			return nil, fmt.Errorf("guest: %s: %s not found", bin, f[0])
		}
	}
	return libs, nil
}

// resolve lists the module files to load for names, each after its
// dependencies, once each; built-in modules need no file.
func (k *Kernel) resolve(names []string) ([]string, error) {
	seen := map[string]bool{}
	var out []string
	for _, name := range names {
		cmd := exec.Command("modprobe", "-d", filepath.Join(k.Dir, "root"), "-S", k.Version, "--show-depends", name)
		text, err := cmd.Output()
		if err != nil {
			return nil, fmt.Errorf("resolve module %s: %w", name, err)
		}
		sc := bufio.NewScanner(bytes.NewReader(text))
		for sc.Scan() {
			f := strings.Fields(sc.Text())
			if len(f) < 2 || f[0] != "insmod" || seen[f[1]] {
				continue // "builtin x"
			}
			seen[f[1]] = true
			out = append(out, f[1])
		}
	}
	return out, nil
}

// archive writes a cpio "newc" archive, the format the kernel unpacks as
// an initramfs.
type archive struct {
	buf  bytes.Buffer
	ino  int
	dirs map[string]bool
}

func (a *archive) entry(name string, mode int, data []byte) {
	a.ino++
	name = strings.TrimPrefix(name, "/")
	fmt.Fprintf(&a.buf, "070701%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X",
		a.ino, mode, 0, 0, 1, 0, len(data), 0, 0, 0, 0, len(name)+1, 0)
	a.buf.WriteString(name)
	a.buf.WriteByte(0)
	a.pad()
	a.buf.Write(data)
	a.pad()
}

func (a *archive) pad() {
	for a.buf.Len()%4 != 0 {
		a.buf.WriteByte(0)
	}
}

func (a *archive) dir(name string) {
	if a.dirs == nil {
		a.dirs = map[string]bool{"/": true}
	}
	if a.dirs[name] {
		return
	}
	a.dir(filepath.Dir(name))
	a.dirs[name] = true
	a.entry(name, 0o040755, nil)
}

// file adds a file, and its parent directories if missing.
func (a *archive) file(name string, data []byte, perm int) {
	a.dir(filepath.Dir(name))
	a.entry(name, 0o100000|perm, data)
}

func (a *archive) symlink(name, target string) { a.entry(name, 0o120777, []byte(target)) }

func (a *archive) bytes() []byte {
	a.entry("TRAILER!!!", 0, nil)
	return a.buf.Bytes()
}

// Lines is an io.Writer for Run.Output that hands fn each whole line of
// the console as it arrives, without its carriage return. Console output
// arrives from one goroutine, so fn needs no locking of its own.
func Lines(fn func(line string)) io.Writer { return &lines{fn: fn} }

type lines struct {
	buf []byte
	fn  func(string)
}

func (l *lines) Write(p []byte) (int, error) {
	l.buf = append(l.buf, p...)
	for {
		i := bytes.IndexByte(l.buf, '\n')
		if i < 0 {
			return len(p), nil
		}
		l.fn(strings.TrimRight(string(l.buf[:i]), "\r"))
		l.buf = l.buf[i+1:]
	}
}
