// Package proctest helps tests that run VDA's daemons as real processes:
// it builds them, finds free loopback ports for them and collects their
// output.
package proctest

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
)

// Daemons maps each binary vda-cluster runs (and vda-cluster itself) to
// its package under daemons/.
func Daemons() map[string]string {
	return map[string]string{
		"vda-cluster": "cluster", "vda-portal": "portal", "vda-monitor": "monitor", "vda-dnagent": "dnagent",
		"vda-cnagent": "cnagent", "vda-dataplane": "dataplane", "vdactl": "vdactl", "vdabench": "vdabench",
	}
}

// ModuleRoot is the directory of the go.mod above the working directory.
func ModuleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("proctest: no go.mod above the working directory")
		}
		dir = parent
	}
}

// Build builds the named binaries (keys of Daemons; none: all of them)
// into dir, at once, and reports every failure.
func Build(dir string, names ...string) error {
	root, err := ModuleRoot()
	if err != nil {
		return err
	}
	pkgs := Daemons()
	if len(names) == 0 {
		for name := range pkgs {
			names = append(names, name)
		}
		slices.Sort(names)
	}
	var wg sync.WaitGroup
	errs := make([]error, len(names))
	for i, name := range names {
		pkg, ok := pkgs[name]
		if !ok {
			return fmt.Errorf("proctest: no daemon %q", name)
		}
		wg.Go(func() {
			cmd := exec.Command("go", "build", "-o", filepath.Join(dir, name), "./daemons/"+pkg)
			cmd.Dir = root
			if out, err := cmd.CombinedOutput(); err != nil {
				errs[i] = fmt.Errorf("go build ./daemons/%s: %v\n%s", pkg, err, out)
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// FreeRange returns the first of n consecutive loopback ports that were
// free when it looked (another process may take one before the caller
// listens: callers that can, retry).
func FreeRange(n int) (int, error) {
	for range 200 {
		base := 20000 + rand.IntN(40000)
		ok := true
		for p := base; p < base+n && ok; p++ {
			ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p)))
			if err != nil {
				ok = false
				continue
			}
			_ = ln.Close()
		}
		if ok {
			return base, nil
		}
	}
	return 0, fmt.Errorf("proctest: no %d consecutive free ports", n)
}

// Buffer collects a process's output: safe for the goroutine that copies
// into it and the test that reads it.
type Buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *Buffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *Buffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// Tail is the last n lines of s.
func Tail(s string, n int) string {
	lines := strings.Split(s, "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}
