package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// proc is one child process of the cluster.
type proc struct {
	name    string // dn0-agent, portal: the log prefix and the file names
	cmd     *exec.Cmd
	pidFile string
	log     *os.File
	out     *lineWriter
	done    chan struct{} // closed once the process has exited
	err     error         // Wait's, set before done closes
	// stopping is set when the cluster stops the process, so that its
	// exit is not reported as a death.
	stopping atomic.Bool
}

// supervisor starts the cluster's processes and stops them, last started
// first.
type supervisor struct {
	state string
	term  io.Writer   // the terminal: vda-cluster's stderr
	mu    *sync.Mutex // one line at a time on term
	log   *slog.Logger
	level string // the children's --log-level: vda-cluster's own
	procs []*proc
}

// nameWidth is the width of the "dn0-agent |" prefixes: the longest
// fixed name, so the columns line up for up to 100 nodes per kind.
const nameWidth = len("dn00-dataplane")

// start runs bin with args as the process name, its stdout and stderr
// going to <state>/logs/<name>.log and, prefixed, to the terminal. The
// process gets a process group of its own, so that a Ctrl-C at the
// terminal reaches only vda-cluster, which stops its children in order.
func (s *supervisor) start(name, bin string, args ...string) (*proc, error) {
	logFile, err := os.OpenFile(filepath.Join(s.state, "logs", name+".log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	p := &proc{name: name, log: logFile, done: make(chan struct{}), pidFile: filepath.Join(s.state, "run", name+".pid")}
	prefix := fmt.Sprintf("%-*s | ", nameWidth, name)
	p.out = &lineWriter{emit: func(line []byte) {
		plain := stripANSI(line)
		_, _ = fmt.Fprintf(logFile, "%s\n", plain)
		s.mu.Lock()
		defer s.mu.Unlock()
		_, _ = fmt.Fprintf(s.term, "%s%s\n", prefix, plain)
	}}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = p.out, p.out
	// Pdeathsig: if vda-cluster itself dies without stopping its
	// children (kill -9, a SIGPIPE when its terminal's pipe closes), each
	// child gets SIGTERM and stops cleanly rather than running on,
	// orphaned, holding the ports and files of the state directory.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	// The children log text at vda-cluster's level (info by default),
	// whatever this process's environment asks of them.
	cmd.Env = append(os.Environ(), "VDA_LOG_FORMAT=text", "VDA_LOG_LEVEL="+s.level)
	fmt.Fprintf(logFile, "---- %s started at %s: %s %q\n", name, time.Now().Format(time.RFC3339), bin, args)
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p.cmd = cmd
	s.procs = append(s.procs, p)
	if err := os.WriteFile(p.pidFile, []byte(strconv.Itoa(cmd.Process.Pid)+"\n"), 0o644); err != nil {
		s.log.Warn("cannot write the pid file", "file", p.pidFile, "err", err)
	}
	// <name>.args keeps the command line, one argument a line (the
	// program first), so that a person or a test can start the process
	// again by hand after it died or was killed (see docs/e2e.md); it
	// stays after the process exits.
	argsFile := filepath.Join(s.state, "run", name+".args")
	if err := os.WriteFile(argsFile, []byte(strings.Join(append([]string{bin}, args...), "\n")+"\n"), 0o644); err != nil {
		s.log.Warn("cannot write the args file", "file", argsFile, "err", err)
	}
	go func() {
		p.err = cmd.Wait()
		p.out.flush()
		_ = os.Remove(p.pidFile)
		close(p.done)
		if !p.stopping.Load() {
			s.log.Error(fmt.Sprintf("!!! %s DIED: %v; the rest of the cluster keeps running; its log: %s", name, p.err, logFile.Name()))
		}
	}()
	return p, nil
}

// stopAll stops the processes, last started first: SIGTERM to each one's
// process group, then at most within for it to exit, then SIGKILL.
func (s *supervisor) stopAll(within time.Duration) {
	for i := len(s.procs) - 1; i >= 0; i-- {
		s.stop(s.procs[i], within)
	}
	s.procs = nil
}

func (s *supervisor) stop(p *proc, within time.Duration) {
	defer p.log.Close()
	p.stopping.Store(true)
	pid := p.cmd.Process.Pid
	select {
	case <-p.done:
		return
	default:
	}
	_ = syscall.Kill(-pid, syscall.SIGTERM)
	select {
	case <-p.done:
		if p.err != nil {
			s.log.Warn("stopped", "process", p.name, "exit", p.err)
		} else {
			s.log.Info("stopped", "process", p.name)
		}
		return
	case <-time.After(within):
	}
	s.log.Warn("did not stop after SIGTERM: killing it", "process", p.name, "waited", within)
	_ = syscall.Kill(-pid, syscall.SIGKILL)
	select {
	case <-p.done:
	case <-time.After(5 * time.Second):
		s.log.Error("still running after SIGKILL", "process", p.name, "pid", pid)
	}
}

// waitReady waits until ready says p is ready, failing early if p exits
// and at the timeout.
func waitReady(ctx context.Context, p *proc, timeout time.Duration, what string, ready func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var last error
	for {
		if last = ready(ctx); last == nil {
			return nil
		}
		select {
		case <-p.done:
			return fmt.Errorf("%s exited before it was ready (%v): see %s", p.name, p.err, p.log.Name())
		case <-ctx.Done():
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				return fmt.Errorf("%s was not ready within %s (%s: %v): see %s", p.name, timeout, what, last, p.log.Name())
			}
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// httpReady answers nil once GET url+path answers 200.
func httpReady(client *http.Client, url, path string) func(context.Context) error {
	return func(ctx context.Context) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url+path, nil)
		if err != nil {
			return err
		}
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("GET %s: %s", path, resp.Status)
		}
		return nil
	}
}

// socketReady answers nil once the Unix socket accepts a connection.
func socketReady(path string) func(context.Context) error {
	return func(ctx context.Context) error {
		var d net.Dialer
		c, err := d.DialContext(ctx, "unix", path)
		if err != nil {
			return err
		}
		return c.Close()
	}
}

// both is ready once a and b are.
func both(a, b func(context.Context) error) func(context.Context) error {
	return func(ctx context.Context) error {
		if err := a(ctx); err != nil {
			return err
		}
		return b(ctx)
	}
}

// lineWriter hands emit each whole line written to it (a child's stdout
// and stderr, which exec copies from one pipe).
type lineWriter struct {
	mu   sync.Mutex
	buf  []byte
	emit func(line []byte)
}

func (w *lineWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf = append(w.buf, p...)
	for {
		i := bytes.IndexByte(w.buf, '\n')
		if i < 0 {
			break
		}
		w.emit(w.buf[:i])
		w.buf = w.buf[i+1:]
	}
	return len(p), nil
}

// flush emits what is left without a newline, once the process exited.
func (w *lineWriter) flush() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.buf) > 0 {
		w.emit(w.buf)
		w.buf = nil
	}
}

var ansi = regexp.MustCompile(`\x1b\[[0-9;]*m`)

// stripANSI drops the colour codes of the children's text logs (tint
// colours even into a pipe), for the log files and a terminal alike.
func stripANSI(b []byte) []byte { return ansi.ReplaceAll(b, nil) }
