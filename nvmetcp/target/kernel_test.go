package target_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/virtual-disk-array/vda/internal/guest"
	"github.com/virtual-disk-array/vda/nvmetcp/target"
)

// TestLinuxInitiator connects the real Linux NVMe/TCP initiator (Debian's
// kernel under QEMU) to the target: it connects, sees the namespace's
// size, model and serial, writes a pattern with O_DIRECT and reads it back
// identical (and again through the page cache after dropping it), and a
// host NQN the subsystem does not allow fails to connect. The bytes are
// checked on the target's side too.
func TestLinuxInitiator(t *testing.T) {
	k, err := guest.Find("")
	if errors.Is(err, guest.ErrUnavailable) && os.Getenv("VDA_TEST_GUEST") != "1" {
		t.Skipf("%v (VDA_TEST_GUEST=1 makes this a failure)", err)
	}
	require.NoError(t, err)

	const (
		nqn     = "nqn.2016-06.io.vda:da-kernel"
		host    = "nqn.2014-08.org.example:guest"
		badHost = "nqn.2014-08.org.example:intruder"
		size    = 16 << 20
	)
	dev := newMem(512, size)
	cat := catalog{nqn: {NQN: nqn, Serial: "VDAkernel", Model: "VDA Disk Array", Hosts: []string{host},
		Namespaces: []target.NS{{NSID: 1, NGUID: [16]byte{1, 2, 3}, UUID: [16]byte{4, 5, 6}, Dev: dev}}}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- target.Serve(ctx, ln, cat, target.Config{}) }()
	t.Cleanup(func() { cancel(); <-done })
	port := ln.Addr().(*net.TCPAddr).Port

	pattern := make([]byte, 1<<20)
	r := rand.New(rand.NewPCG(7, 7))
	for i := range pattern {
		pattern[i] = byte(r.Uint32())
	}
	script := fmt.Sprintf(`
connect() { # nqn hostnqn
  exec 3<>/dev/nvme-fabrics || return 1
  echo "nqn=$1,transport=tcp,traddr=%s,trsvcid=%d,hostnqn=$2" >&3 || { exec 3>&-; return 1; }
  read -r line <&3; echo "connected: $line"; exec 3>&-
}
connect %s %s || { echo CONNECT-FAILED; dmesg | tail -20; exit 1; }
for i in 1 2 3 4 5 6 7 8 9 10; do [ -e /sys/block/nvme0n1 ] && break; sleep 0.5; done
echo "model=$(cat /sys/class/nvme/nvme0/model)"
echo "serial=$(cat /sys/class/nvme/nvme0/serial)"
echo "subsysnqn=$(cat /sys/class/nvme/nvme0/subsysnqn)"
echo "state=$(cat /sys/class/nvme/nvme0/state)"
echo "sectors=$(cat /sys/block/nvme0n1/size)"
dd if=/data/pattern of=/dev/nvme0n1 bs=4096 count=256 seek=16 oflag=direct 2>/dev/null || echo WRITE-FAILED
dd if=/dev/nvme0n1 of=/tmp/back bs=4096 count=256 skip=16 iflag=direct 2>/dev/null || echo READ-FAILED
cmp /data/pattern /tmp/back && echo DIRECT-OK
echo 3 > /proc/sys/vm/drop_caches
dd if=/dev/nvme0n1 of=/tmp/back2 bs=4096 count=256 skip=16 2>/dev/null
cmp /data/pattern /tmp/back2 && echo BUFFERED-OK
connect %s %s && echo INTRUDER-CONNECTED || echo INTRUDER-REFUSED
echo 1 > /sys/class/nvme/nvme0/delete_controller
dmesg | grep -i nvme | tail -20
`, guest.HostAddr, port, nqn, host, nqn, badHost)
	res, err := k.Boot(context.Background(), guest.Run{
		Modules: []string{"nvme-tcp"},
		Script:  script,
		Files:   map[string][]byte{"/data/pattern": pattern},
	})
	require.NoError(t, err)
	out := res.Output
	t.Log(out)
	require.Equal(t, 0, res.Status, res.Console)
	assert.Contains(t, out, "model=VDA Disk Array")
	assert.Contains(t, out, "serial=VDAkernel")
	assert.Contains(t, out, "subsysnqn="+nqn)
	assert.Contains(t, out, "state=live")
	assert.Contains(t, out, fmt.Sprintf("sectors=%d", size/512))
	assert.Contains(t, out, "DIRECT-OK")
	assert.Contains(t, out, "BUFFERED-OK")
	assert.Contains(t, out, "INTRUDER-REFUSED")
	assert.NotContains(t, out, "FAILED")
	assert.True(t, bytes.Equal(pattern, dev.snapshot()[16*4096:16*4096+len(pattern)]), "the bytes are on the target's device")
}

// snapshot copies the device's bytes.
func (d *memDev) snapshot() []byte {
	d.mu.Lock()
	defer d.mu.Unlock()
	return bytes.Clone(d.data)
}
