package target_test

import (
	"context"
	"errors"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/virtual-disk-array/vda/nvmetcp/target"
)

// serveServer runs srv on a fresh listener until the test ends.
func serveServer(t *testing.T, srv *target.Server) *env {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return &env{addr: ln.Addr().String()}
}

func wantEOF(t *testing.T, what string, c *client) {
	t.Helper()
	c.nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.r.Read(); !errors.Is(err, io.EOF) {
		t.Fatalf("%s: %v, want EOF", what, err)
	}
}

// TestServerDisconnect: Disconnect drops the matching controllers, closing
// their admin and I/O queues, and leaves the others.
func TestServerDisconnect(t *testing.T) {
	sub := &target.Subsystem{NQN: subNQN, AllowAnyHost: true,
		Namespaces: []target.NS{{NSID: 1, Dev: modelNS{newMem(4096, 1<<20)}}}}
	srv, err := target.NewServer(catalog{subNQN: sub}, target.Config{})
	if err != nil {
		t.Fatal(err)
	}
	e := serveServer(t, srv)
	a, cntlid := bringUp(t, e, 0, 0)
	io1 := dial(t, e.addr, 0)
	ok(t, "io connect", io1.connect(1, cntlid, subNQN, hostNQN, 0))
	other := dial(t, e.addr, 0)
	const otherHost = "nqn.2014-08.org.nvmexpress:uuid:host-b"
	ok(t, "other host", other.connect(0, 0xFFFF, subNQN, otherHost, 0))

	if n := srv.Disconnect(func(s, h string) bool { return s == "nqn.2016-06.io.vda:nope" }); n != 0 {
		t.Fatalf("Disconnect of nothing: %d", n)
	}
	if n := srv.Disconnect(func(s, h string) bool { return s == subNQN && h == hostNQN }); n != 1 {
		t.Fatalf("Disconnect: %d controllers, want 1", n)
	}
	wantEOF(t, "admin queue", a)
	wantEOF(t, "I/O queue", io1)
	c := dial(t, e.addr, 0)
	cqe := c.connect(1, cntlid, subNQN, hostNQN, 0)
	wantStatus(t, "I/O connect to the dropped controller", cqe, 1, 0x82)
	cqe = other.property(false, 0x1C, false, 0)
	ok(t, "the other host's controller", cqe)
}

// racyCatalog calls before on its first lookup, then answers with sub as
// it is then.
type racyCatalog struct {
	mu     sync.Mutex
	sub    *target.Subsystem
	before func()
}

func (c *racyCatalog) Subsystem(nqn string) (*target.Subsystem, bool) {
	c.mu.Lock()
	s, f := c.sub, c.before
	c.before = nil
	c.mu.Unlock()
	if f != nil {
		f() // the host is removed after this lookup, before the controller exists
	}
	return s, s != nil && s.NQN == nqn
}

// TestServerDisconnectDuringConnect: a Connect whose lookup overlapped a
// Disconnect looks the subsystem up again, and so sees the host removed.
func TestServerDisconnectDuringConnect(t *testing.T) {
	allowed := &target.Subsystem{NQN: subNQN, Hosts: []string{hostNQN}}
	cat := &racyCatalog{sub: allowed}
	srv, err := target.NewServer(cat, target.Config{})
	if err != nil {
		t.Fatal(err)
	}
	cat.before = func() {
		cat.mu.Lock()
		cat.sub = &target.Subsystem{NQN: subNQN} // host removed
		cat.mu.Unlock()
		srv.Disconnect(func(s, h string) bool { return s == subNQN && h == hostNQN })
	}
	e := serveServer(t, srv)
	c := dial(t, e.addr, 0)
	wantStatus(t, "connect racing the removal", c.connect(0, 0xFFFF, subNQN, hostNQN, 0), 1, 0x84)
}
