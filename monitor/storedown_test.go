package monitor_test

import (
	"context"
	"io"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/virtual-disk-array/vda"
	vdav1 "github.com/virtual-disk-array/vda/proto/vda/v1"
	"github.com/virtual-disk-array/vda/store"
	"github.com/virtual-disk-array/vda/store/storetest"
)

// proxy forwards TCP connections to a database; cut makes the database
// unreachable (open connections drop, new ones are refused at once) until
// restore, as when the server goes down and comes back.
type proxy struct {
	ln     net.Listener
	target string

	mu    sync.Mutex
	down  bool
	conns []net.Conn
}

func startProxy(t *testing.T, target string) *proxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	p := &proxy{ln: ln, target: target}
	go p.serve()
	t.Cleanup(func() { _ = ln.Close(); p.cut() })
	return p
}

func (p *proxy) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		down := p.down
		p.mu.Unlock()
		if down {
			_ = c.Close()
			continue
		}
		s, err := net.Dial("tcp", p.target)
		if err != nil {
			_ = c.Close()
			continue
		}
		p.mu.Lock()
		p.conns = append(p.conns, c, s)
		p.mu.Unlock()
		go func() { _, _ = io.Copy(s, c); _ = s.Close() }()
		go func() { _, _ = io.Copy(c, s); _ = c.Close() }()
	}
}

func (p *proxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down = true
	for _, c := range p.conns {
		_ = c.Close()
	}
	p.conns = nil
}

func (p *proxy) restore() {
	p.mu.Lock()
	p.down = false
	p.mu.Unlock()
}

// TestStoreDown: PostgreSQL or MySQL goes away for a while. A change
// asked meanwhile fails with a clear error and writes nothing; the
// monitor skips its rounds; a node whose SPDK restarted meanwhile is
// rebuilt once the store is back; the change asked again then succeeds and
// reaches the agents.
func TestStoreDown(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		if db.Dialect() == store.SQLite {
			t.Skip("an SQLite store is a file: it does not go down")
		}
		dsn := storetest.NewDSN(t, backendFor(t, db.Dialect()))
		hostport := dbAddr(t, dsn)
		p := startProxy(t, hostport)
		pdb, err := store.Open(t.Context(), store.Config{DSN: strings.Replace(dsn, hostport, p.ln.Addr().String(), 1), Logger: quiet()})
		require.NoError(t, err)
		t.Cleanup(func() { _ = pdb.Close() })

		l := newLab(t, pdb, 2, 2)
		da := l.createArray()
		l.monitor("m1")
		time.Sleep(200 * time.Millisecond)

		p.cut()
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		_, err = l.svc.CreateExp(ctx, connect.NewRequest(&vdav1.CreateExpRequest{DaName: "da1", Name: "exp2", HostNqn: host2}))
		cancel()
		require.Error(t, err, "no store, no change")
		// (The service's errors become Connect codes in its handler's
		// interceptor: Unavailable.)
		assert.ErrorIs(t, err, vda.ErrUnavailable)
		assert.ErrorContains(t, err, "store unreachable")
		// A secondary's SPDK restarts while nobody can record anything.
		var secondary *vdav1.Cntlr
		for _, c := range da.GetCntlrs() {
			if c.GetRole() == vdav1.CntlrRole_CNTLR_ROLE_SECONDARY {
				secondary = c
			}
		}
		l.nodes[secondary.GetCnName()].fake.Restart()
		time.Sleep(500 * time.Millisecond)
		p.restore()

		// The monitor rebuilds the restarted node.
		nqn := vda.ArrayNQN(vda.DAID(da.GetId()))
		eventually(t, 15*time.Second, func() error {
			s, err := l.subsystem(secondary.GetCnName(), nqn)
			if err != nil {
				return err
			}
			if nsBdev(s) == "" {
				return notYet("secondary not exporting yet")
			}
			return nil
		})
		got := l.da("da1")
		assert.Equal(t, da.GetGeneration(), got.GetGeneration(), "the failed change wrote nothing")

		_, err = l.svc.CreateExp(context.Background(), connect.NewRequest(&vdav1.CreateExpRequest{DaName: "da1", Name: "exp2", HostNqn: host2}))
		require.NoError(t, err)
		eventually(t, 10*time.Second, func() error {
			for _, c := range da.GetCntlrs() {
				s, err := l.subsystem(c.GetCnName(), nqn)
				if err != nil {
					return err
				}
				if !slices.Contains(hostsOf(s), host2) {
					return notYet("%s does not allow %s", c.GetCnName(), host2)
				}
			}
			return nil
		})
	})
}

const host2 = "nqn.2014-08.org.example:host2"

func backendFor(t testing.TB, d store.Dialect) storetest.Backend {
	for _, b := range storetest.Backends() {
		if b.Dialect == d {
			return b
		}
	}
	t.Fatalf("no backend %s", d)
	return storetest.Backend{}
}

// dbAddr finds the host:port of a PostgreSQL or MySQL DSN.
func dbAddr(t *testing.T, dsn string) string {
	if i := strings.Index(dsn, "tcp("); i >= 0 {
		rest := dsn[i+4:]
		return rest[:strings.IndexByte(rest, ')')]
	}
	rest := dsn[strings.Index(dsn, "://")+3:]
	if at := strings.IndexByte(rest, '@'); at >= 0 {
		rest = rest[at+1:]
	}
	end := strings.IndexAny(rest, "/?")
	require.Positive(t, end, "no host in %s", dsn)
	return rest[:end]
}
