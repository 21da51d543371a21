package main

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/virtual-disk-array/vda/nvmetcp/target"
	"github.com/virtual-disk-array/vda/portal"
	vdav1 "github.com/virtual-disk-array/vda/proto/vda/v1"
	"github.com/virtual-disk-array/vda/proto/vda/v1/vdav1connect"
	"github.com/virtual-disk-array/vda/store"
)

// lateCatalog serves every array NQN, to hostNQN only, but answers "no
// such subsystem" to the first misses lookups of each, as a cn does until
// its agent has built the array. never, if set, is an NQN it never serves.
type lateCatalog struct {
	hostNQN string
	misses  int
	mu      sync.Mutex
	seen    map[string]int
	subs    map[string]*target.Subsystem
	never   func(nqn string) bool
}

func (c *lateCatalog) Subsystem(nqn string) (*target.Subsystem, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.never != nil && c.never(nqn) {
		return nil, false
	}
	if c.seen[nqn]++; c.seen[nqn] <= c.misses {
		return nil, false
	}
	s, ok := c.subs[nqn]
	if !ok {
		s = &target.Subsystem{NQN: nqn, Serial: "B1", Model: "bench", Hosts: []string{c.hostNQN},
			Namespaces: []target.NS{{NSID: 1, Dev: &memNS{data: make([]byte, 1<<20)}}}}
		c.subs[nqn] = s
	}
	return s, true
}

// benchCluster is an in-process portal on a fresh SQLite store with two
// dns (a malloc pd each) and two cns whose listeners are in-process targets serving
// cat.
func benchCluster(t *testing.T, cats [2]*lateCatalog) (string, vdav1connect.PortalServiceClient) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	db, err := store.Open(ctx, store.Config{DSN: "sqlite:" + filepath.Join(t.TempDir(), "bench.db"), Logger: quiet})
	require.NoError(t, err)
	svc, err := portal.New(portal.Config{DB: db, Logger: quiet})
	require.NoError(t, err)
	// Insecure: an in-process portal only this test reaches.
	h, err := portal.NewHandler(svc, portal.HandlerConfig{Insecure: true})
	require.NoError(t, err)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	served := make(chan struct{})
	go func() { _ = portal.Serve(ctx, ln, h, time.Second); close(served) }()
	var targets []chan error
	t.Cleanup(func() {
		cancel()
		<-served
		for _, d := range targets {
			<-d
		}
		db.Close()
	})
	url := "http://" + ln.Addr().String()
	api := vdav1connect.NewPortalServiceClient(h2cClient(), url)
	for _, dn := range []string{"dn0", "dn1"} {
		_, err = api.CreateDn(ctx, connect.NewRequest(&vdav1.CreateDnRequest{Name: dn, AgentAddress: "127.0.0.1:1",
			Listener: &vdav1.NvmfListener{Traddr: "127.0.0.1", Trsvcid: "1"}}))
		require.NoError(t, err)
		_, err = api.CreatePd(ctx, connect.NewRequest(&vdav1.CreatePdRequest{DnName: dn, Name: "pd0",
			Backend: &vdav1.CreatePdRequest_Malloc{Malloc: &vdav1.PdMalloc{Size: 1 << 30}}}))
		require.NoError(t, err)
	}
	for i, cn := range []string{"cn0", "cn1"} {
		cat := cats[i]
		tl, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		done := make(chan error, 1)
		go func() { done <- target.Serve(ctx, tl, cat, target.Config{C2HSuccess: true}) }()
		targets = append(targets, done)
		host, port, _ := net.SplitHostPort(tl.Addr().String())
		_, err = api.CreateCn(ctx, connect.NewRequest(&vdav1.CreateCnRequest{Name: cn, AgentAddress: "127.0.0.1:1",
			Listener: &vdav1.NvmfListener{Traddr: host, Trsvcid: port}}))
		require.NoError(t, err)
	}
	return url, api
}

func listDas(t *testing.T, api vdav1connect.PortalServiceClient) []string {
	t.Helper()
	resp, err := api.ListDa(context.Background(), connect.NewRequest(&vdav1.ListDaRequest{}))
	require.NoError(t, err)
	var names []string
	for _, d := range resp.Msg.GetDas() {
		names = append(names, d.GetName())
	}
	return names
}

// TestCluster creates arrays against an in-process portal whose cns'
// targets serve an array only after a few connection attempts, and checks
// the figures, that every controller was tried, and that the arrays (and
// one left by an earlier run) are gone at the end.
func TestCluster(t *testing.T) {
	const hostNQN = "nqn.2016-06.io.vda:bench-host"
	var cats [2]*lateCatalog
	for i := range cats {
		cats[i] = &lateCatalog{hostNQN: hostNQN, misses: 2 + i, seen: map[string]int{}, subs: map[string]*target.Subsystem{}}
	}
	url, api := benchCluster(t, cats)
	// A leftover of an interrupted run.
	_, err := api.CreateDa(context.Background(), connect.NewRequest(&vdav1.CreateDaRequest{Name: "da-bench-1", Size: 8 << 20,
		Raid: &vdav1.CreateDaRequest_Raid0{Raid0: &vdav1.Raid0{VdCount: 1}}, CntlrCount: 1}))
	require.NoError(t, err)

	var out strings.Builder
	err = run(context.Background(), []string{"cluster", "--portal", strings.TrimPrefix(url, "http://"), "--count", "3",
		"--size", "16MiB", "--hostnqn", hostNQN, "--poll", "5ms", "--json"}, &out)
	require.NoError(t, err)
	var res clusterResult
	require.NoError(t, json.Unmarshal([]byte(out.String()), &res), out.String())
	require.Len(t, res.Rows, 3)
	for i, r := range res.Rows {
		assert.Equal(t, "da-bench-"+string(rune('0'+i)), r.Name)
		assert.Equal(t, 4, r.Checks, "cn0 serves at the third check, cn1 at the fourth")
		assert.Greater(t, r.ConnectableMs, r.CreateMs+r.ExpMs)
	}
	assert.LessOrEqual(t, res.MinMs, res.P50Ms)
	assert.LessOrEqual(t, res.P50Ms, res.MaxMs)
	for i, cat := range cats {
		cat.mu.Lock()
		assert.Len(t, cat.subs, 3, "each array's NQN was served by cn%d", i)
		for nqn, n := range cat.seen {
			assert.Equal(t, 2+i+2, n, "%s on cn%d: missed 2+%d times, then looked up once per queue (admin, I/O) and no more", nqn, i, i)
		}
		cat.mu.Unlock()
	}
	assert.Equal(t, []string(nil), listDas(t, api), "every array deleted, the leftover too")
}

// TestClusterInterrupted cancels the run (Ctrl-C) while an array never
// becomes connectable: the arrays made are deleted all the same.
func TestClusterInterrupted(t *testing.T) {
	var (
		mu    sync.Mutex
		first string
	)
	never := func(nqn string) bool {
		mu.Lock()
		defer mu.Unlock()
		if first == "" {
			first = nqn
		}
		return nqn != first // the second array never comes
	}
	var cats [2]*lateCatalog
	for i := range cats {
		cats[i] = &lateCatalog{hostNQN: "nqn.2016-06.io.vda:vdabench", seen: map[string]int{}, subs: map[string]*target.Subsystem{}, never: never}
	}
	url, api := benchCluster(t, cats)
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(500*time.Millisecond, cancel)
	var out strings.Builder
	err := run(ctx, []string{"cluster", "--portal", url, "--count", "3", "--size", "16MiB", "--json"}, &out)
	require.ErrorIs(t, err, context.Canceled)
	var res clusterResult
	require.NoError(t, json.Unmarshal([]byte(out.String()), &res), out.String())
	require.Len(t, res.Rows, 1, "the first array was measured")
	assert.Equal(t, []string(nil), listDas(t, api))
}
