package dataplane_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/virtual-disk-array/vda/dataplane"
	"github.com/virtual-disk-array/vda/dataplane/dataplanetest"
	"github.com/virtual-disk-array/vda/internal/guest"
	"github.com/virtual-disk-array/vda/spdk"
)

// start runs a data plane on a temporary socket until the test ends.
func start(t *testing.T) (*dataplane.DataPlane, *spdk.Client) {
	t.Helper()
	s := dataplanetest.Start(t, dataplane.Config{})
	return s.DataPlane, s.Client
}

// nvmeCLI is the host's nvme-cli, which the guest runs to read the
// discovery log (busybox cannot issue the admin command); CI installs it.
func nvmeCLI(t *testing.T) string {
	t.Helper()
	const path = "/usr/sbin/nvme"
	if _, err := os.Stat(path); err != nil {
		if os.Getenv("VDA_TEST_GUEST") != "1" {
			t.Skipf("nvme-cli: %v (VDA_TEST_GUEST=1 makes this a failure)", err)
		}
		t.Fatalf("nvme-cli: %v (apt-get install nvme-cli)", err)
	}
	return path
}

// freePort returns a TCP port of 127.0.0.1 that was free a moment ago.
func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	return strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
}

func tcp(port string) spdk.ListenAddress {
	return spdk.ListenAddress{Trtype: "tcp", Adrfam: "ipv4", Traddr: "127.0.0.1", Trsvcid: port}
}

// TestListeners: nvmf_subsystem_add_listener opens a real TCP socket and
// its removal closes it; an address the data plane cannot listen on (in
// use by another process) fails the call with "Invalid parameters".
func TestListeners(t *testing.T) {
	_, c := start(t)
	ctx := context.Background()
	const nqn = "nqn.2016-06.io.vda:listeners"
	require.NoError(t, c.NvmfCreateTransport(ctx, spdk.NvmfCreateTransportRequest{Trtype: "TCP"}))
	require.NoError(t, c.NvmfCreateSubsystem(ctx, spdk.NvmfCreateSubsystemRequest{NQN: nqn}))
	port := freePort(t)
	require.NoError(t, c.NvmfSubsystemAddListener(ctx, spdk.NvmfSubsystemAddListenerRequest{NQN: nqn, ListenAddress: tcp(port)}))
	conn, err := net.Dial("tcp", "127.0.0.1:"+port)
	require.NoError(t, err, "the listener is a real socket")
	conn.Close()
	require.NoError(t, c.NvmfSubsystemRemoveListener(ctx, nqn, tcp(port)))
	require.Eventually(t, func() bool {
		conn, err := net.Dial("tcp", "127.0.0.1:"+port)
		if err == nil {
			conn.Close()
		}
		return err != nil
	}, 5*time.Second, 10*time.Millisecond, "the socket closes with its last listener")

	busy, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer busy.Close()
	err = c.NvmfSubsystemAddListener(ctx, spdk.NvmfSubsystemAddListenerRequest{NQN: nqn,
		ListenAddress: tcp(strconv.Itoa(busy.Addr().(*net.TCPAddr).Port))})
	var se *spdk.Error
	require.ErrorAs(t, err, &se)
	assert.Equal(t, -32602, se.Code)
}

// TestLinuxHost builds subsystems over JSON-RPC, as an agent does, and
// the real Linux NVMe/TCP initiator (in a QEMU guest) uses them: it writes
// a pattern with O_DIRECT and reads it back (the bytes are in the malloc
// bdev, read through the model); it cannot reach a subsystem through an
// address that subsystem does not listen on, nor one whose host was
// removed; removing its host while it is connected cuts it off at once
// (its next I/O fails: the fence of a deposed primary); and a subsystem with two listeners, one optimized and one
// non_optimized, is one namespace with two paths in those ANA states.
// nvme-cli's discover, through one port, lists every listener (any port)
// of the subsystems the host may reach, and not the others; a namespace
// added while the host is connected appears in the guest, and an ANA
// state changed reaches its path (asynchronous event notices).
func TestLinuxHost(t *testing.T) {
	k, err := guest.Find("")
	if errors.Is(err, guest.ErrUnavailable) && os.Getenv("VDA_TEST_GUEST") != "1" {
		t.Skipf("%v (VDA_TEST_GUEST=1 makes this a failure)", err)
	}
	require.NoError(t, err)

	dp, c := start(t)
	ctx := context.Background()
	const (
		nqn1   = "nqn.2016-06.io.vda:dp-data"
		nqn2   = "nqn.2016-06.io.vda:dp-ana"
		fenced = "nqn.2016-06.io.vda:dp-fenced"
		other  = "nqn.2016-06.io.vda:dp-other" // another host's
		disc   = "nqn.2014-08.org.nvmexpress.discovery"
		host   = "nqn.2014-08.org.example:guest"
		size   = 16 << 20
	)
	p1, p2, p3 := freePort(t), freePort(t), freePort(t)
	require.NoError(t, c.NvmfCreateTransport(ctx, spdk.NvmfCreateTransportRequest{Trtype: "TCP"}))
	for i, nqn := range []string{nqn1, nqn2, fenced} {
		bdev := fmt.Sprintf("m%d", i)
		_, err := c.BdevMallocCreate(ctx, spdk.BdevMallocCreateRequest{Name: bdev, NumBlocks: size / 512, BlockSize: 512})
		require.NoError(t, err)
		require.NoError(t, c.NvmfCreateSubsystem(ctx, spdk.NvmfCreateSubsystemRequest{NQN: nqn,
			SerialNumber: fmt.Sprintf("VDA%d", i), ModelNumber: "VDA Disk Array", AnaReporting: nqn == nqn2}))
		_, err = c.NvmfSubsystemAddNs(ctx, spdk.NvmfSubsystemAddNsRequest{NQN: nqn,
			Namespace: spdk.NamespaceParams{BdevName: bdev}})
		require.NoError(t, err)
		require.NoError(t, c.NvmfSubsystemAddHost(ctx, nqn, host))
	}
	add := func(nqn, port, ana string) {
		require.NoError(t, c.NvmfSubsystemAddListener(ctx, spdk.NvmfSubsystemAddListenerRequest{NQN: nqn,
			ListenAddress: tcp(port), AnaState: ana}))
	}
	add(nqn1, p1, "")
	add(fenced, p1, "")
	add(nqn2, p2, "")
	add(nqn2, p3, "")
	add(disc, p1, "")
	require.NoError(t, c.NvmfCreateSubsystem(ctx, spdk.NvmfCreateSubsystemRequest{NQN: other}))
	require.NoError(t, c.NvmfSubsystemAddHost(ctx, other, "nqn.2014-08.org.example:someone-else"))
	add(other, p1, "")
	require.NoError(t, c.NvmfSubsystemListenerSetAnaState(ctx, spdk.NvmfSubsystemListenerSetAnaStateRequest{
		NQN: nqn2, ListenAddress: tcp(p3), AnaState: "non_optimized"}))
	require.NoError(t, c.NvmfSubsystemRemoveHost(ctx, fenced, host))

	// The guest's marker: it connects here (nc) when it is ready to be
	// fenced, and again to have its host added back; the answer comes
	// once the JSON-RPC call is done.
	marker, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer marker.Close()
	go func() {
		for {
			conn, err := marker.Accept()
			if err != nil {
				return
			}
			var b [16]byte
			n, _ := conn.Read(b[:])
			switch strings.TrimSpace(string(b[:n])) {
			case "fence":
				err = c.NvmfSubsystemRemoveHost(ctx, nqn1, host)
			case "readd":
				err = c.NvmfSubsystemAddHost(ctx, nqn1, host)
			case "addns":
				_, err = c.BdevMallocCreate(ctx, spdk.BdevMallocCreateRequest{Name: "m9", NumBlocks: size / 512,
					BlockSize: 512})
				if err == nil {
					_, err = c.NvmfSubsystemAddNs(ctx, spdk.NvmfSubsystemAddNsRequest{NQN: nqn2,
						Namespace: spdk.NamespaceParams{BdevName: "m9"}})
				}
			case "ana":
				err = c.NvmfSubsystemListenerSetAnaState(ctx, spdk.NvmfSubsystemListenerSetAnaStateRequest{
					NQN: nqn2, ListenAddress: tcp(p2), AnaState: "inaccessible"})
			default:
				err = fmt.Errorf("marker %q", b[:n])
			}
			if err != nil {
				t.Errorf("marker: %v", err)
			}
			fmt.Fprintln(conn, "ok")
			conn.Close()
		}
	}()
	mport := strconv.Itoa(marker.Addr().(*net.TCPAddr).Port)

	pattern := make([]byte, 1<<20)
	r := rand.New(rand.NewPCG(9, 9))
	for i := range pattern {
		pattern[i] = byte(r.Uint32())
	}
	script := fmt.Sprintf(`
connect() { # nqn port [options]
  exec 3<>/dev/nvme-fabrics || return 1
  echo "nqn=$1,transport=tcp,traddr=%s,trsvcid=$2,hostnqn=%s$3" >&3 || { exec 3>&-; return 1; }
  read -r line <&3; echo "connected: $line"; exec 3>&-
}
connect %s %s ,reconnect_delay=1,ctrl_loss_tmo=2 || { echo CONNECT-FAILED; dmesg | tail -20; exit 1; }
for i in 1 2 3 4 5 6 7 8 9 10; do [ -e /sys/block/nvme0n1 ] && break; sleep 0.5; done
echo "serial=$(cat /sys/class/nvme/nvme0/serial)"
dd if=/data/pattern of=/dev/nvme0n1 bs=4096 count=256 seek=16 oflag=direct 2>/dev/null || echo WRITE-FAILED
dd if=/dev/nvme0n1 of=/tmp/back bs=4096 count=256 skip=16 iflag=direct 2>/dev/null || echo READ-FAILED
cmp /data/pattern /tmp/back && echo DIRECT-OK
echo "fence marker: $(echo fence | nc %s %s)"
sleep 0.2
echo "fenced state=$(cat /sys/class/nvme/nvme0/state 2>/dev/null || echo gone)"
timeout 30 dd if=/dev/nvme0n1 of=/dev/null bs=4096 count=1 iflag=direct 2>/dev/null && echo FENCED-IO-DONE || echo FENCED-IO-REFUSED
for i in $(seq 1 40); do [ -e /sys/class/nvme/nvme0 ] || break; sleep 0.25; done
[ -e /sys/class/nvme/nvme0 ] && echo 1 > /sys/class/nvme/nvme0/delete_controller
echo "readd marker: $(echo readd | nc %s %s)"
connect %s %s && echo WRONGPORT-CONNECTED || echo WRONGPORT-REFUSED
connect %s %s && echo FENCED-CONNECTED || echo FENCED-REFUSED
connect %s %s || echo ANA-PATH1-FAILED
connect %s %s || echo ANA-PATH2-FAILED
for i in 1 2 3 4 5 6 7 8 9 10; do [ "$(cat /sys/block/nvme*c*n1/ana_state 2>/dev/null | wc -l)" -ge 2 ] && break; sleep 0.5; done
for f in /sys/block/nvme*c*n1/ana_state; do echo "ana $f $(cat $f)"; done
nvme discover -t tcp -a %s -s %s -q %s >/tmp/disc 2>&1; echo "discover status $?"
sed 's/^/disc /' /tmp/disc
echo "addns marker: $(echo addns | nc %s %s)"
for i in $(seq 1 40); do ls /sys/block | grep -q 'n2$' && break; sleep 0.25; done
echo "ns2: $(ls /sys/block | grep 'n2$' | tr '\n' ' ')"
echo "anachange marker: $(echo ana | nc %s %s)"
for i in $(seq 1 40); do grep -q inaccessible /sys/block/nvme*c*n1/ana_state 2>/dev/null && break; sleep 0.25; done
for f in /sys/block/nvme*c*n1/ana_state; do echo "ana2 $f $(cat $f)"; done
head=
for d in /sys/block/nvme*n1; do
  b=${d##*/}
  case $b in *c*) continue;; esac
  [ "$(cat $d/device/subsysnqn 2>/dev/null)" = "%s" ] && head=/dev/$b
done
echo "head=$head"
dd if=$head of=/dev/null bs=4096 count=64 iflag=direct 2>/dev/null && echo ANA-IO-OK || echo ANA-IO-FAILED
ls /sys/block
dmesg | grep -i nvme | tail -20
`, guest.HostAddr, host, nqn1, p1, guest.HostAddr, mport, guest.HostAddr, mport, nqn1, p2, fenced, p1, nqn2, p2, nqn2, p3,
		guest.HostAddr, p1, host, guest.HostAddr, mport, guest.HostAddr, mport, nqn2)
	res, err := k.Boot(context.Background(), guest.Run{
		Modules:  []string{"nvme-tcp"},
		Script:   script,
		Files:    map[string][]byte{"/data/pattern": pattern},
		Binaries: []string{nvmeCLI(t)},
	})
	require.NoError(t, err)
	out := res.Output
	t.Log(out)
	require.Equal(t, 0, res.Status, res.Console)
	assert.Contains(t, out, "serial=VDA0")
	assert.Contains(t, out, "DIRECT-OK")
	assert.Contains(t, out, "fence marker: ok")
	assert.NotContains(t, out, "fenced state=live", "the fenced host lost its connection at once")
	assert.Contains(t, out, "FENCED-IO-REFUSED")
	assert.Contains(t, out, "readd marker: ok")
	assert.Contains(t, out, "WRONGPORT-REFUSED")
	assert.Contains(t, out, "FENCED-REFUSED")
	assert.NotContains(t, out, "FAILED")

	var states, states2, discovered []string
	port := ""
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		switch {
		case len(f) == 3 && f[0] == "ana":
			states = append(states, f[2])
		case len(f) == 3 && f[0] == "ana2":
			states2 = append(states2, f[2])
		case len(f) == 3 && f[0] == "disc" && f[1] == "trsvcid:":
			port = f[2]
		case len(f) == 3 && f[0] == "disc" && f[1] == "subnqn:":
			discovered = append(discovered, f[2]+"@"+port)
		}
	}
	assert.ElementsMatch(t, []string{"optimized", "non-optimized"}, states, "one namespace, two paths")
	assert.Contains(t, out, "discover status 0")
	assert.ElementsMatch(t, []string{disc + "@" + p1, nqn1 + "@" + p1, nqn2 + "@" + p2, nqn2 + "@" + p3}, discovered,
		"every listener of what the host may reach, on any port; not %s nor %s", fenced, other)
	assert.Contains(t, out, "addns marker: ok")
	assert.Regexp(t, `ns2: .*\bnvme\d+n2\b`, out, "the namespace added after Connect appeared")
	assert.Contains(t, out, "anachange marker: ok")
	assert.ElementsMatch(t, []string{"inaccessible", "non-optimized"}, states2, "the ANA change reached the path")
	assert.Contains(t, out, "ANA-IO-OK", "the namespace still serves through the other path")

	d, err := dp.Target.Open("m0")
	require.NoError(t, err)
	got := make([]byte, len(pattern))
	require.NoError(t, d.ReadAt(ctx, got, 16*4096))
	assert.True(t, bytes.Equal(pattern, got), "the bytes are in the malloc bdev")
}

// TestSocketOwnerOnly: the JSON-RPC socket, which can delete every volume,
// is for the data plane's own user only, whatever the umask.
func TestSocketOwnerOnly(t *testing.T) {
	s := dataplanetest.Start(t, dataplane.Config{})
	fi, err := os.Stat(s.Socket)
	require.NoError(t, err)
	assert.Equal(t, os.ModeSocket, fi.Mode().Type())
	assert.Equal(t, os.FileMode(0o600), fi.Mode().Perm())
}
