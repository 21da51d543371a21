package host_test

import (
	"bytes"
	"context"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/virtual-disk-array/vda/nvmetcp"
	"github.com/virtual-disk-array/vda/nvmetcp/host"
	"github.com/virtual-disk-array/vda/nvmetcp/target"
)

// TestNamespaces: a subsystem with two namespaces of different block
// sizes, identities and ANA states; the host lists them, reads the ANA
// log, does I/O to each (Unmap included), and sees the loss of the
// connection on Done.
func TestNamespaces(t *testing.T) {
	d1, d2 := newMem(512, 1<<20), newMem(4096, 2<<20)
	for i := range d1.data {
		d1.data[i] = 0xAA
	}
	g1 := [16]byte{1, 2, 3}
	u2 := [16]byte{9, 8, 7}
	cat := catalog{subNQN: {
		NQN: subNQN, Serial: "SER1", Model: "MODEL1", Hosts: []string{hostNQN}, ANAReporting: true,
		Namespaces: []target.NS{
			{NSID: 1, NGUID: g1, Dev: d1},
			{NSID: 3, UUID: u2, Dev: d2, ANAState: nvmetcp.ANANonOptimized},
		},
	}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv, err := target.NewServer(cat, target.Config{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	t.Cleanup(func() { cancel(); <-done })

	c, err := host.Dial(context.Background(), ln.Addr().String(),
		host.Config{SubNQN: subNQN, HostNQN: hostNQN, IOQueues: 2, Poll: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	id := c.Identify()
	if id.Model != "MODEL1" || id.Serial != "SER1" || id.SubNQN != subNQN || id.CNTLID == 0 || !id.ANAReporting {
		t.Fatalf("identity %+v", id)
	}
	nss := c.Namespaces()
	if len(nss) != 2 {
		t.Fatalf("namespaces %+v", nss)
	}
	if n := nss[0]; n.NSID != 1 || n.BlockSize != 512 || n.Blocks != 2048 || n.NGUID != g1 ||
		n.ANAGroup != 1 || n.ANAState != nvmetcp.ANAOptimized {
		t.Errorf("ns 1: %+v", n)
	}
	if n := nss[1]; n.NSID != 3 || n.BlockSize != 4096 || n.Blocks != 512 || n.UUID != u2 ||
		n.ANAGroup != 3 || n.ANAState != nvmetcp.ANANonOptimized {
		t.Errorf("ns 3: %+v", n)
	}
	if c.NSID() != 1 || c.BlockSize() != 512 || c.Size() != 1<<20 {
		t.Errorf("first namespace %d %d %d", c.NSID(), c.BlockSize(), c.Size())
	}
	groups, err := c.ANALog(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(groups) != 2 || groups[1].ID != 3 || groups[1].State != nvmetcp.ANANonOptimized ||
		len(groups[1].NSIDs) != 1 || groups[1].NSIDs[0] != 3 {
		t.Errorf("ANA log %+v", groups)
	}

	ns3 := c.Namespace(3)
	p := bytes.Repeat([]byte{0x5A}, 8192)
	if err := ns3.WriteAt(ctx, p, 4096); err != nil {
		t.Fatal(err)
	}
	d2.mu.Lock()
	landed := bytes.Equal(d2.data[4096:4096+8192], p)
	d2.mu.Unlock()
	if !landed {
		t.Fatal("write to namespace 3 did not land")
	}
	if err := ns3.Unmap(ctx, 4096, 4096); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, 8192)
	if err := ns3.ReadAt(ctx, got, 4096); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got[:4096], make([]byte, 4096)) || !bytes.Equal(got[4096:], p[4096:]) {
		t.Fatal("unmap did not zero exactly its range")
	}
	if err := ns3.WriteAt(ctx, p[:512], 0); err == nil {
		t.Error("a 512-byte write to a 4096-byte namespace succeeded")
	}
	if err := c.Namespace(2).Flush(ctx); !errors.Is(err, host.ErrNoNamespace) {
		t.Errorf("flush of an inactive namespace: %v", err)
	}
	// The Controller's own methods go to namespace 1.
	if err := c.ReadAt(ctx, got[:512], 512); err != nil || got[0] != 0xAA {
		t.Fatalf("read of ns 1: %v %x", err, got[0])
	}
	if err := c.Namespace(1).WriteZeroes(ctx, 0, 1024); err != nil {
		t.Fatalf("write zeroes: %v", err)
	}
	d1.mu.Lock()
	zeroed := d1.data[1000] == 0 && d1.data[1024] == 0xAA
	d1.mu.Unlock()
	if !zeroed {
		t.Fatal("write zeroes did not zero exactly its range")
	}

	// The view stays (the poll sees nothing new) and Done closes when
	// the target drops the controller.
	v := c.Version()
	time.Sleep(150 * time.Millisecond)
	if c.Version() != v {
		t.Errorf("view version moved from %d to %d with no change", v, c.Version())
	}
	select {
	case <-c.Done():
		t.Fatal("Done closed early")
	default:
	}
	if n := srv.Disconnect(func(string, string) bool { return true }); n != 1 {
		t.Fatalf("disconnected %d controllers", n)
	}
	select {
	case <-c.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("Done not closed after the target dropped the controller")
	}
	if err := ns3.ReadAt(ctx, got, 0); !errors.Is(err, host.ErrDisconnected) {
		t.Errorf("read after loss: %v", err)
	}
}

// TestNoNamespace: a subsystem without namespaces connects (an attach
// sees no bdev); I/O fails with ErrNoNamespace.
func TestNoNamespace(t *testing.T) {
	cat := catalog{subNQN: {NQN: subNQN, Serial: "S", Model: "M", AllowAnyHost: true}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- target.Serve(ctx, ln, cat, target.Config{}) }()
	t.Cleanup(func() { cancel(); <-done })
	c, err := host.Dial(ctx, ln.Addr().String(), host.Config{SubNQN: subNQN, HostNQN: hostNQN})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if len(c.Namespaces()) != 0 || c.NSID() != 0 {
		t.Fatalf("namespaces %+v", c.Namespaces())
	}
	if err := c.Flush(ctx); !errors.Is(err, host.ErrNoNamespace) {
		t.Fatalf("flush: %v", err)
	}
}
