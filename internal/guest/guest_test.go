package guest_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/virtual-disk-array/vda/internal/guest"
)

// kernel finds the guest kernel, or skips: unless VDA_TEST_GUEST=1 (CI),
// which makes a missing kernel a failure.
func kernel(t *testing.T) *guest.Kernel {
	k, err := guest.Find("")
	if errors.Is(err, guest.ErrUnavailable) && os.Getenv("VDA_TEST_GUEST") != "1" {
		t.Skipf("%v (VDA_TEST_GUEST=1 makes this a failure)", err)
	}
	require.NoError(t, err)
	return k
}

// TestBoot boots the guest with the NVMe/TCP initiator: the script runs,
// its output and exit status come back, /dev/nvme-fabrics exists, and the
// host's loopback answers at 10.0.2.2.
func TestBoot(t *testing.T) {
	k := kernel(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	got := make(chan string, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		line, _ := bufio.NewReader(c).ReadString('\n')
		got <- line
	}()
	port := ln.Addr().(*net.TCPAddr).Port
	res, err := k.Boot(context.Background(), guest.Run{
		Modules: []string{"nvme-tcp"},
		Script: fmt.Sprintf(`uname -r
test -c /dev/nvme-fabrics && echo fabrics-ok
cat /data/hello.txt
echo from-guest | nc %s %d
exit 3`, guest.HostAddr, port),
		Files: map[string][]byte{"/data/hello.txt": []byte("hello file\n")},
	})
	require.NoError(t, err)
	assert.Equal(t, 3, res.Status, res.Console)
	assert.Contains(t, res.Output, k.Version)
	assert.Contains(t, res.Output, "fabrics-ok")
	assert.Contains(t, res.Output, "hello file")
	select {
	case line := <-got:
		assert.Equal(t, "from-guest\n", line)
	case <-time.After(5 * time.Second):
		t.Fatal("the host never heard from the guest")
	}
}
